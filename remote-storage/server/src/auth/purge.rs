//! The purger's token check: `POST /purge` deletes every tenant's data, so when authentication
//! is on it needs `Authorization: Bearer <token>` with a token not bound to tenants. A missing
//! or unknown token answers 401, a tenant-bound one 403.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::{BearerTokens, Grant, bearer_credentials};

/// `router` behind the token check.
pub(crate) fn require_token(router: Router, tokens: Arc<BearerTokens>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(tokens, check_token))
}

async fn check_token(
    State(tokens): State<Arc<BearerTokens>>,
    request: Request,
    next: Next,
) -> Response {
    let grant = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer_credentials(value.as_bytes()))
        .and_then(|token| tokens.grant_of(token));
    match grant {
        Some(Grant::AnyTenant) => next.run(request).await,
        Some(Grant::Tenants(_)) => (
            StatusCode::FORBIDDEN,
            "a token bound to tenants cannot purge: purging deletes every tenant's data",
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or invalid bearer token",
        )
            .into_response(),
    }
}
