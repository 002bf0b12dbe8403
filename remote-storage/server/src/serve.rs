//! Starting and stopping the listeners.
//!
//! Every listener is bound before [`RunningServer::start`] returns (so port 0 works and a port
//! conflict fails the start), then served by background tasks that share one shutdown signal.
//! A supervisor task stops all of them when one fails, drains them on shutdown, and finally
//! closes the backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use remote_storage_core::{Backend, StoreLifecycle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::{Instrument as _, error, info, info_span, warn};

use crate::config::{ServerConfig, ServerLimits};
use crate::grpc::admission::{Admission, AdmissionLayer};
use crate::grpc::client_errors::ClientErrorLayer;
use crate::grpc::{self, GrpcContext, rpc_metrics::RpcMetricsLayer};
use crate::http::admin_router;
use crate::metrics::ServerMetrics;
use crate::readiness::Readiness;
use crate::security::Security;
use crate::tenancy::TenancyGuard;
use crate::tls::ReloadingTls;
use crate::tls::listener::accept_tls;

/// The longest a shutdown takes, from its start to the backend closed, whatever state the
/// backend is in: in-flight requests get what [`CLOSE_TIMEOUT`] leaves of it (connections
/// still open then are cut), the backend gets the rest to close. 30 s is also Kubernetes'
/// default grace period before it kills a pod.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The part of [`DRAIN_TIMEOUT`] kept for closing the backend (an LSM store flushes its
/// memtables); a backend that takes longer is left behind, its journal replayed at the next
/// start.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a shutdown may take (see [`DRAIN_TIMEOUT`]); a parameter so tests can shorten it.
#[derive(Debug, Clone, Copy)]
struct ShutdownLimits {
    /// From the start of the shutdown to the backend closed.
    total: Duration,
    /// The part of `total` kept for closing the backend.
    close: Duration,
}

impl ShutdownLimits {
    const SERVER: Self = Self {
        total: DRAIN_TIMEOUT,
        close: CLOSE_TIMEOUT,
    };
}

/// Result of one listener task, named for logs.
type ListenerResult = (&'static str, anyhow::Result<()>);

/// A server serving in the background. Dropping it starts a shutdown without waiting for it;
/// call [`RunningServer::stop`] to wait and close the backend.
#[derive(Debug)]
pub struct RunningServer {
    /// Actual address of the main gRPC listener.
    pub grpc_addr: SocketAddr,
    /// Actual address of the writer listener, if enabled.
    pub writer_addr: Option<SocketAddr>,
    /// Actual address of the admin HTTP listener, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// Actual address of the purge listener, if enabled.
    pub purger_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    supervisor: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Binds every configured listener, checks backend readiness once, and serves in the
    /// background.
    pub async fn start(config: ServerConfig, backend: Backend) -> anyhow::Result<Self> {
        let security = Security::load(&config.security, &config.tenancy)?;
        let tenancy = TenancyGuard::new(&config.tenancy)?.with_auth(security.tokens.clone());
        let grpc_listener = bind(config.grpc_addr, "gRPC").await?;
        let writer_listener = bind_optional(config.writer_addr, "writer").await?;
        let admin_listener = bind_optional(config.admin_addr, "admin").await?;
        let purger_listener = bind_optional(config.purger_addr, "purger").await?;

        let metrics = Arc::new(ServerMetrics::new(backend.name));
        let readiness = Readiness::new(Arc::clone(&backend.lifecycle)).await;
        // One check before returning, so a ready backend is SERVING as soon as start returns.
        readiness.check().await;

        let context = GrpcContext {
            backend: backend.clone(),
            limits: config.limits,
            tenancy,
            metrics: Arc::clone(&metrics),
            readiness: Arc::clone(&readiness),
        };
        // One set of bounds for both gRPC listeners: a flood on either counts against it.
        let grpc_settings = GrpcSettings {
            metrics: Arc::clone(&metrics),
            admission: Admission::new(&config.limits, Arc::clone(&metrics)),
            limits: config.limits,
        };
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let mut listeners = JoinSet::new();
        let grpc_addr = local_addr(&grpc_listener)?;
        listeners.spawn(serve_grpc(
            "gRPC",
            grpc_listener,
            security.grpc_tls.clone(),
            grpc::main_routes(&context)?,
            grpc_settings.clone(),
            shutdown_receiver.clone(),
        ));
        let writer_addr = match writer_listener {
            Some(listener) => {
                let addr = local_addr(&listener)?;
                listeners.spawn(serve_grpc(
                    "writer",
                    listener,
                    security.writer_tls.clone(),
                    grpc::writer_routes(&context),
                    grpc_settings.clone(),
                    shutdown_receiver.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        let admin_addr = match admin_listener {
            Some(listener) => {
                let addr = local_addr(&listener)?;
                let router = admin_router(
                    Arc::clone(&readiness),
                    Arc::clone(&metrics),
                    Arc::clone(&backend.lifecycle),
                );
                listeners.spawn(serve_http(
                    "admin",
                    listener,
                    security.admin_tls.clone(),
                    router,
                    shutdown_receiver.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        let purger_addr = match purger_listener {
            Some(listener) => {
                let addr = local_addr(&listener)?;
                warn!(%addr, "purge endpoint enabled: POST /purge deletes all stored data");
                let router = security.protect_purger(purger::router(Arc::clone(&backend.purger)));
                listeners.spawn(serve_http(
                    "purger",
                    listener,
                    security.admin_tls.clone(),
                    router,
                    shutdown_receiver.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        security.spawn_reloader(shutdown_receiver.clone())?;
        let readiness_task = tokio::spawn(Arc::clone(&readiness).run(shutdown_receiver));
        let supervisor = tokio::spawn(
            supervise(
                listeners,
                shutdown.clone(),
                readiness,
                readiness_task,
                Arc::clone(&backend.lifecycle),
                ShutdownLimits::SERVER,
            )
            .instrument(info_span!("server", backend = backend.name)),
        );
        info!(
            backend = backend.name,
            %grpc_addr,
            writer_addr = %address_text(writer_addr),
            admin_addr = %address_text(admin_addr),
            purger_addr = %address_text(purger_addr),
            grpc_transport = Security::describe(security.grpc_tls.as_ref()),
            writer_transport = Security::describe(security.writer_tls.as_ref()),
            admin_transport = Security::describe(security.admin_tls.as_ref()),
            auth = if security.tokens.is_some() { "bearer-token" } else { "off" },
            "jaeger-remote-storage started"
        );
        Ok(Self {
            grpc_addr,
            writer_addr,
            admin_addr,
            purger_addr,
            shutdown,
            supervisor,
        })
    }

    /// Resolves once a shutdown has begun: after [`RunningServer::stop`], or on its own when a
    /// listener failed. `main` waits on this next to the termination signals.
    pub async fn wait_for_shutdown_request(&self) {
        let mut receiver = self.shutdown.subscribe();
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }

    /// Graceful stop: stops accepting, lets in-flight requests finish (up to 30 s), then
    /// closes the backend. Returns the first listener or close error.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.send_replace(true);
        (&mut self.supervisor)
            .await
            .context("server supervisor task failed")?
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {name} listener on {addr}"))
}

async fn bind_optional(
    addr: Option<SocketAddr>,
    name: &str,
) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(bind(addr, name).await?)),
        None => Ok(None),
    }
}

/// An optional listener address for logs: the address, or `off`.
fn address_text(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_owned(), |addr| addr.to_string())
}

fn local_addr(listener: &TcpListener) -> anyhow::Result<SocketAddr> {
    listener
        .local_addr()
        .context("reading a bound listener's address")
}

/// Resolves when the shutdown flag turns true (or its sender is gone).
async fn stopping(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// What every gRPC listener is served with.
#[derive(Clone)]
struct GrpcSettings {
    metrics: Arc<ServerMetrics>,
    admission: Arc<Admission>,
    limits: ServerLimits,
}

async fn serve_grpc(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    routes: Routes,
    settings: GrpcSettings,
    shutdown: watch::Receiver<bool>,
) -> ListenerResult {
    let limits = settings.limits;
    let server = Server::builder()
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        // Pings find connections whose peer vanished without a FIN (a crashed collector host,
        // a dropped NAT entry), so their streams and buffers are released.
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        // Metrics outermost, so they count the status the client finally gets (throttling
        // included).
        .layer(RpcMetricsLayer::new(settings.metrics))
        .layer(ClientErrorLayer)
        .layer(AdmissionLayer::new(settings.admission))
        .add_routes(routes);
    let served = match tls {
        None => {
            let incoming = TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(limits.keepalive_interval));
            server
                .serve_with_incoming_shutdown(incoming, stopping(shutdown))
                .await
        }
        Some(tls) => {
            let local_addr = match local_addr(&listener) {
                Ok(addr) => addr,
                Err(addr_error) => return (name, Err(addr_error)),
            };
            let incoming = accept_tls(
                listener,
                local_addr,
                tls,
                name,
                Some(limits.keepalive_interval),
            );
            server
                .serve_with_incoming_shutdown(incoming, stopping(shutdown))
                .await
        }
    }
    .with_context(|| format!("{name} gRPC listener failed"));
    (name, served)
}

async fn serve_http(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    router: axum::Router,
    shutdown: watch::Receiver<bool>,
) -> ListenerResult {
    let served = match tls {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(stopping(shutdown))
                .await
        }
        Some(tls) => {
            let local_addr = match local_addr(&listener) {
                Ok(addr) => addr,
                Err(addr_error) => return (name, Err(addr_error)),
            };
            axum::serve(accept_tls(listener, local_addr, tls, name, None), router)
                .with_graceful_shutdown(stopping(shutdown))
                .await
        }
    }
    .with_context(|| format!("{name} HTTP listener failed"));
    (name, served)
}

async fn supervise(
    mut listeners: JoinSet<ListenerResult>,
    shutdown: watch::Sender<bool>,
    readiness: Arc<Readiness>,
    readiness_task: JoinHandle<()>,
    lifecycle: Arc<dyn StoreLifecycle>,
    limits: ShutdownLimits,
) -> anyhow::Result<()> {
    let mut first_error: Option<anyhow::Error> = None;
    let mut record = |joined: Result<ListenerResult, tokio::task::JoinError>| {
        let failure = match joined {
            Ok((_, Ok(()))) => return,
            Ok((_, Err(listener_error))) => listener_error,
            Err(join_error) => anyhow::Error::new(join_error).context("listener task panicked"),
        };
        error!(error = format!("{failure:#}"), "listener stopped");
        first_error.get_or_insert(failure);
    };

    // Serve until asked to stop, or until a listener ends on its own: then stop the others
    // rather than run half a server.
    let mut shutdown_receiver = shutdown.subscribe();
    tokio::select! {
        _ = shutdown_receiver.wait_for(|stopping| *stopping) => {}
        Some(joined) = listeners.join_next() => {
            record(joined);
            shutdown.send_replace(true);
        }
    }
    info!("shutting down: no new connections, draining in-flight requests");
    let shutdown_started = tokio::time::Instant::now();
    let deadline = shutdown_started + limits.total;
    // A readiness probe in flight is of no use any more, and may wait on a stuck backend. It
    // is stopped (and awaited: aborting ends it at its next await point) before NOT_SERVING
    // is published, so a check that finishes late cannot publish SERVING during the drain.
    readiness_task.abort();
    let _ = readiness_task.await;
    readiness.publish(false).await;
    readiness.end_watches();

    let drain_limit = limits.total.saturating_sub(limits.close);
    let drained = tokio::time::timeout_at(shutdown_started + drain_limit, async {
        while let Some(joined) = listeners.join_next().await {
            record(joined);
        }
    })
    .await;
    if drained.is_err() {
        warn!(timeout = ?drain_limit, "connections still open after the drain timeout; closing them");
        listeners.shutdown().await;
    }

    match tokio::time::timeout_at(deadline, lifecycle.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(close_error)) => {
            error!(error = %close_error, "closing the backend failed");
            first_error
                .get_or_insert(anyhow::Error::new(close_error).context("closing the backend"));
        }
        Err(_elapsed) => {
            error!(timeout = ?limits.total, "the backend did not close before the shutdown deadline; stopping without it");
            first_error.get_or_insert(anyhow::anyhow!(
                "closing the backend took longer than the shutdown limit ({:?})",
                limits.total
            ));
        }
    }
    info!("jaeger-remote-storage stopped");
    first_error.map_or(Ok(()), Err)
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn wait_for_termination_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use remote_storage_core::StoreResult;

    use super::*;

    /// A backend whose close never returns, like a storage engine stuck on a dead disk.
    struct StuckClose;

    #[async_trait]
    impl StoreLifecycle for StuckClose {
        async fn close(&self) -> StoreResult<()> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_backend_that_never_closes_does_not_hold_the_shutdown() {
        let lifecycle: Arc<dyn StoreLifecycle> = Arc::new(StuckClose);
        let readiness = Readiness::new(Arc::clone(&lifecycle)).await;
        let (shutdown, receiver) = watch::channel(false);
        let readiness_task = tokio::spawn(Arc::clone(&readiness).run(receiver));
        shutdown.send_replace(true);
        let limits = ShutdownLimits {
            total: Duration::from_millis(300),
            close: Duration::from_millis(100),
        };
        let started = tokio::time::Instant::now();
        let supervised = supervise(
            JoinSet::new(),
            shutdown,
            readiness,
            readiness_task,
            lifecycle,
            limits,
        );
        // Generous, so a slow machine does not fail it; a hang does.
        let stopped = tokio::time::timeout(Duration::from_secs(10), supervised)
            .await
            .expect("the shutdown ends");
        assert!(stopped.is_err(), "a backend that did not close is reported");
        eprintln!("stopped in {:?} with a stuck backend", started.elapsed());
    }
}
