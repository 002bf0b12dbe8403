//! The one place where a [`StoreError`] becomes a gRPC [`Status`].

use remote_storage_core::{ErrorKind, StoreError};
use tonic::{Code, Status};
use tracing::error;

/// Maps a store error to the status the client sees. Internal errors are logged with their
/// whole source chain; the client gets only the top-level message.
pub(crate) fn store_error_to_status(store_error: StoreError) -> Status {
    // Exhaustive on purpose: a new `ErrorKind` must be mapped here deliberately.
    let code = match store_error.kind() {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    };
    if code == Code::Internal {
        error!(error = %error_chain(&store_error), "storage request failed");
    }
    Status::new(code, store_error.to_string())
}

/// `outer: cause: root cause`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_code_with_the_message() {
        let cases = [
            (
                StoreError::invalid_argument("query.search_depth is too large"),
                Code::InvalidArgument,
            ),
            (
                StoreError::Unsupported {
                    backend: "memory",
                    operation: "FindTraceSummaries",
                },
                Code::Unimplemented,
            ),
            (
                StoreError::unavailable("database unreachable", "connection refused"),
                Code::Unavailable,
            ),
            (
                StoreError::internal("write failed", "disk full"),
                Code::Internal,
            ),
        ];
        for (store_error, expected) in cases {
            let message = store_error.to_string();
            let status = store_error_to_status(store_error);
            assert_eq!(status.code(), expected);
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn internal_details_stay_out_of_the_status() {
        let status = store_error_to_status(StoreError::internal("write failed", "secret path"));
        assert!(!status.message().contains("secret path"));
        let chain = error_chain(&StoreError::internal("write failed", "disk full"));
        assert_eq!(chain, "write failed: disk full");
    }
}
