//! The one error type of the storage framework and its classification.

/// A boxed error from a driver or the operating system.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used by every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// What a caller can do about an error; the server maps each kind to one gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed; retrying it unchanged will fail again.
    InvalidArgument,
    /// The backend does not implement this operation.
    Unsupported,
    /// The backend is temporarily unreachable or not ready; retrying later may succeed.
    Unavailable,
    /// A bug or an unexpected backend failure.
    Internal,
}

/// Any failure of a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A request field is invalid; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The backend does not implement the operation.
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// Backend name, e.g. `memory`.
        backend: &'static str,
        /// Operation name, e.g. `FindTraceSummaries`.
        operation: &'static str,
    },
    /// The backend cannot be reached or is not ready.
    #[error("{message}")]
    Unavailable {
        /// What was being attempted.
        message: String,
        /// The underlying cause, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The store refused some spans of a write for a reason of their own (a document the
    /// database will not take) and stored the others: the client is told how many were
    /// refused (OTLP `partial_success`); re-sending them unchanged fails again.
    #[error("{rejected} span(s) refused by the store: {message}")]
    Rejected {
        /// How many spans of the write were not stored.
        rejected: u64,
        /// Why the first one was refused.
        message: String,
    },
    /// An unexpected failure.
    #[error("{message}")]
    Internal {
        /// What was being attempted.
        message: String,
        /// The underlying cause, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// An invalid request; `message` should name the offending field.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    /// A temporarily unavailable backend.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An unexpected failure with its cause.
    pub fn internal(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Some spans of a write were refused, the others stored (see [`StoreError::Rejected`]).
    pub fn rejected(rejected: u64, message: impl Into<String>) -> Self {
        Self::Rejected {
            rejected,
            message: message.into(),
        }
    }

    /// For [`StoreError::Rejected`]: how many spans were refused and why the first was.
    pub fn rejected_spans(&self) -> Option<(u64, &str)> {
        match self {
            Self::Rejected { rejected, message } => Some((*rejected, message)),
            _ => None,
        }
    }

    /// The classification the server maps to a gRPC status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) | Self::Rejected { .. } => ErrorKind::InvalidArgument,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Internal { .. } => ErrorKind::Internal,
        }
    }
}
