//! The HTTP purge endpoint used by Jaeger's end-to-end tests (`storage_cleaner` contract).
//!
//! `POST /purge` with an empty body deletes every trace, service and operation of every tenant
//! through [`Purger::purge`] and answers `200 purged` only once the store is empty, so the next
//! test can write and read immediately. A failure answers `500` with the error text.
//!
//! The router itself has no authentication: the server serves it only when `--purger-addr` is
//! given, and with `--auth.bearer-tokens-file` wraps it in its bearer-token check. Still mount
//! it only on a listener that tests can reach and nobody else can.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use remote_storage_core::Purger;
use tracing::{error, info, instrument};

/// The path Jaeger's test harness posts to.
pub const PURGE_PATH: &str = "/purge";

/// Builds the router serving `POST /purge` over `purger`.
pub fn router(purger: Arc<dyn Purger>) -> Router {
    Router::new()
        .route(PURGE_PATH, post(purge))
        .with_state(purger)
}

#[instrument(skip_all)]
async fn purge(State(purger): State<Arc<dyn Purger>>) -> (StatusCode, String) {
    match purger.purge().await {
        Ok(()) => {
            info!("purged all stored data");
            (StatusCode::OK, "purged".to_owned())
        }
        Err(purge_error) => {
            error!(error = %purge_error, "purge failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("purge failed: {purge_error}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use axum::body::Body;
    use http::Request;
    use remote_storage_core::{StoreError, StoreResult};
    use tower::ServiceExt as _;

    use super::*;

    /// Counts purges; fails when told to.
    #[derive(Default)]
    struct FakePurger {
        calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl Purger for FakePurger {
        async fn purge(&self) -> StoreResult<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(StoreError::internal("disk on fire", "io error"));
            }
            Ok(())
        }
    }

    async fn send(purger: Arc<FakePurger>, method: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(PURGE_PATH)
            .body(Body::empty())
            .unwrap();
        let response = router(purger).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn post_purges_and_answers_200() {
        let purger = Arc::new(FakePurger::default());
        let (status, body) = send(Arc::clone(&purger), "POST").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "purged");
        assert_eq!(purger.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_purge_answers_500_with_the_reason() {
        let purger = Arc::new(FakePurger {
            fail: true,
            ..FakePurger::default()
        });
        let (status, body) = send(purger, "POST").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("disk on fire"), "{body}");
    }

    #[tokio::test]
    async fn other_methods_do_not_purge() {
        let purger = Arc::new(FakePurger::default());
        let (status, _) = send(Arc::clone(&purger), "GET").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(purger.calls.load(Ordering::SeqCst), 0);
    }
}
