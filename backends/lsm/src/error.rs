//! The backend's error type and its one mapping to [`StoreError`].
//!
//! The orphan rule forbids `impl From<fjall::Error> for StoreError` here (both are foreign), so
//! driver errors first become an [`LsmError`], which converts to [`StoreError`] in one place.

use remote_storage_core::StoreError;

use crate::fault::Fault;

/// Failures inside the LSM backend.
#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    /// The storage engine failed.
    #[error("storage engine: {0}")]
    Fjall(#[from] fjall::Error),
    /// A stored protobuf message did not decode.
    #[error("stored message does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A stored record is malformed.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A file-system operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory holds another on-disk format version.
    #[error("{0}")]
    Format(String),
    /// A stored span failed validation when read back.
    #[error("stored span is invalid: {0}")]
    InvalidSpan(#[source] StoreError),
    /// The store has failed for good (see [`crate::fault`]).
    #[error("lsm store failed: {0}")]
    Fault(Fault),
}

impl LsmError {
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt(message.into())
    }
}

impl From<LsmError> for StoreError {
    fn from(error: LsmError) -> Self {
        match error {
            // Another process holds the directory: retrying later may work.
            LsmError::Fjall(fjall::Error::Locked) => {
                StoreError::unavailable("lsm data directory is locked by another process", error)
            }
            // fsync failed earlier: fjall refuses further writes until the process restarts.
            LsmError::Fjall(fjall::Error::Poisoned) => StoreError::unavailable(
                "lsm store is poisoned after an fsync failure; restart the server",
                error,
            ),
            LsmError::Format(message) => StoreError::invalid_argument(message),
            // Normally answered by the store's health latch, which adds the directory and the
            // remedy; this is the plain form for errors raised outside it.
            LsmError::Fault(_) => StoreError::Unavailable {
                message: error.to_string(),
                source: None,
            },
            other => StoreError::internal("lsm store failure", other),
        }
    }
}
