//! The backend's one error type and its one mapping to [`StoreError`].

use remote_storage_core::StoreError;

/// Failures talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    /// No node answered (connection refused, reset, TLS, timeout).
    #[error("no node answered {what}: {source}")]
    Unreachable {
        /// The request.
        what: String,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The engine answered with an error status.
    #[error("{what} answered HTTP {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// An answer that is not the JSON we expect.
    #[error("{what}: unexpected answer: {detail}")]
    Answer {
        /// The request.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A stored document that does not decode back into a span.
    #[error("stored span document does not decode: {0}")]
    Corrupt(String),
    /// The engine or its version is not supported.
    #[error("{0}")]
    Unsupported(String),
    /// A setting that cannot be used (certificate files and the like).
    #[error("{0}")]
    Setting(String),
}

impl EsError {
    /// Overloaded or restarting engines answer these (for a request or for one bulk item);
    /// the client should retry later.
    pub(crate) fn retryable_status(status: u16) -> bool {
        matches!(status, 408 | 429 | 502 | 503 | 504)
    }
}

impl From<EsError> for StoreError {
    fn from(error: EsError) -> Self {
        match &error {
            EsError::Unreachable { .. } => {
                StoreError::unavailable("elasticsearch/opensearch unreachable", error)
            }
            EsError::Status { status, .. } if EsError::retryable_status(*status) => {
                StoreError::unavailable(
                    "elasticsearch/opensearch is overloaded or restarting",
                    error,
                )
            }
            EsError::Unsupported(message) | EsError::Setting(message) => {
                StoreError::invalid_argument(message.clone())
            }
            _ => StoreError::internal("elasticsearch/opensearch failure", error),
        }
    }
}

#[cfg(test)]
mod tests {
    use remote_storage_core::ErrorKind;

    use super::*;

    #[test]
    fn overload_is_unavailable_and_bad_requests_are_internal() {
        let status = |status| EsError::Status {
            what: "bulk".into(),
            status,
            body: String::new(),
        };
        assert_eq!(StoreError::from(status(429)).kind(), ErrorKind::Unavailable);
        assert_eq!(StoreError::from(status(503)).kind(), ErrorKind::Unavailable);
        assert_eq!(StoreError::from(status(400)).kind(), ErrorKind::Internal);
        let unsupported = EsError::Unsupported("Elasticsearch 6.8.0 is not supported".into());
        assert_eq!(
            StoreError::from(unsupported).kind(),
            ErrorKind::InvalidArgument
        );
    }
}
