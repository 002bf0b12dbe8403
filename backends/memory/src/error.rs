//! The backend's one error type and its one mapping to [`StoreError`].

use remote_storage_core::StoreError;

/// Stored bytes that do not read back: a bug, never client input (the bytes are ours).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CorruptSpan {
    #[error("{0}")]
    Layout(&'static str),
    #[error(transparent)]
    Protobuf(#[from] prost::DecodeError),
}

impl From<CorruptSpan> for StoreError {
    fn from(error: CorruptSpan) -> Self {
        StoreError::internal("memory backend: a stored span does not decode", error)
    }
}
