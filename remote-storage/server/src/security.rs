//! Everything `--grpc.tls.*`, `--writer.tls.*`, `--admin.tls.*` and `--auth.*` set up, loaded
//! once at start-up (a bad file fails the start, naming it and its flag) and then kept current
//! by the reloader.

use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::{BearerTokens, purge};
use crate::config::{SecurityConfig, TenancyConfig};
use crate::reload::{Reloadable, spawn_reloader};
use crate::tls::{GRPC_ALPN, HTTP_ALPN, ReloadingTls};

/// TLS per listener and the accepted tokens; `None` means plaintext or no authentication.
#[derive(Debug)]
pub(crate) struct Security {
    pub(crate) grpc_tls: Option<Arc<ReloadingTls>>,
    /// The writer's own files, or the gRPC listener's when it has none.
    pub(crate) writer_tls: Option<Arc<ReloadingTls>>,
    /// The admin and purger listeners'.
    pub(crate) admin_tls: Option<Arc<ReloadingTls>>,
    pub(crate) tokens: Option<Arc<BearerTokens>>,
    reload_interval: std::time::Duration,
}

impl Security {
    pub(crate) fn load(config: &SecurityConfig, tenancy: &TenancyConfig) -> anyhow::Result<Self> {
        let grpc_tls = config
            .grpc_tls
            .as_ref()
            .map(|files| ReloadingTls::load(files, "--grpc.tls", GRPC_ALPN))
            .transpose()?;
        let writer_tls = match &config.writer_tls {
            Some(files) => Some(ReloadingTls::load(files, "--writer.tls", GRPC_ALPN)?),
            None => grpc_tls.clone(),
        };
        let admin_tls = config
            .admin_tls
            .as_ref()
            .map(|files| ReloadingTls::load(files, "--admin.tls", HTTP_ALPN))
            .transpose()?;
        let tokens = config
            .bearer_tokens_file
            .as_deref()
            .map(|path| BearerTokens::load(path, tenancy.enabled))
            .transpose()?;
        Ok(Self {
            grpc_tls,
            writer_tls,
            admin_tls,
            tokens,
            reload_interval: config.reload_interval,
        })
    }

    /// Keeps certificates and tokens current until shutdown.
    pub(crate) fn spawn_reloader(&self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut items: Vec<Arc<dyn Reloadable>> = Vec::new();
        for tls in [&self.grpc_tls, &self.writer_tls, &self.admin_tls]
            .into_iter()
            .flatten()
        {
            // The writer may share the gRPC listener's holder: reload it once.
            let already_listed = items
                .iter()
                .any(|item| std::ptr::addr_eq(Arc::as_ptr(item), Arc::as_ptr(tls)));
            if !already_listed {
                items.push(Arc::clone(tls) as Arc<dyn Reloadable>);
            }
        }
        if let Some(tokens) = &self.tokens {
            items.push(Arc::clone(tokens) as Arc<dyn Reloadable>);
        }
        spawn_reloader(items, self.reload_interval, shutdown)
    }

    /// The purge router, behind the token check when authentication is on.
    pub(crate) fn protect_purger(&self, router: axum::Router) -> axum::Router {
        match &self.tokens {
            Some(tokens) => purge::require_token(router, Arc::clone(tokens)),
            None => router,
        }
    }

    /// How a listener's transport is described in the start-up log line.
    pub(crate) fn describe(tls: Option<&Arc<ReloadingTls>>) -> &'static str {
        match tls {
            None => "plaintext",
            Some(tls) if tls.is_mutual() => "mtls",
            Some(_) => "tls",
        }
    }
}
