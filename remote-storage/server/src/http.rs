//! The admin HTTP listener: `GET /` readiness (200 ready, 503 not) and `GET /metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use remote_storage_core::StoreLifecycle;

use crate::metrics::ServerMetrics;
use crate::readiness::Readiness;

/// OpenMetrics text, which Prometheus scrapes natively.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct AdminState {
    readiness: Arc<Readiness>,
    metrics: Arc<ServerMetrics>,
    lifecycle: Arc<dyn StoreLifecycle>,
}

pub(crate) fn admin_router(
    readiness: Arc<Readiness>,
    metrics: Arc<ServerMetrics>,
    lifecycle: Arc<dyn StoreLifecycle>,
) -> Router {
    Router::new()
        .route("/", get(health))
        .route("/metrics", get(render_metrics))
        .with_state(AdminState {
            readiness,
            metrics,
            lifecycle,
        })
}

async fn health(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let text = state
        .metrics
        .render(state.lifecycle.stats(), state.readiness.is_ready());
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text)
}
