//! Readiness: one flag, driven by `StoreLifecycle::ready`, shown both as gRPC health statuses
//! and on the admin `/` endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jaeger_remote_proto::otlp::collector::trace_service_server;
use jaeger_remote_proto::storage::v1::{
    dependencies_reader_plugin_server, plugin_capabilities_server, span_reader_plugin_server,
    span_writer_plugin_server, streaming_span_writer_plugin_server,
};
use jaeger_remote_proto::storage::v2::{
    capabilities_server, dependency_reader_server, trace_reader_server,
};
use remote_storage_core::StoreLifecycle;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tracing::{info, warn};

use crate::grpc::health::EndingHealth;

/// How often readiness is re-checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// A readiness probe slower than this counts as not ready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Health service names reported, besides the overall `""`. `TraceWriter` has no service of
/// that name, but Jaeger's reference server reports it and tools may probe it. The v1 names
/// are those Jaeger's reference server reports for its v1 services.
const SERVICE_NAMES: [&str; 10] = [
    trace_reader_server::SERVICE_NAME,
    dependency_reader_server::SERVICE_NAME,
    capabilities_server::SERVICE_NAME,
    "jaeger.storage.v2.TraceWriter",
    trace_service_server::SERVICE_NAME,
    span_writer_plugin_server::SERVICE_NAME,
    streaming_span_writer_plugin_server::SERVICE_NAME,
    span_reader_plugin_server::SERVICE_NAME,
    dependencies_reader_plugin_server::SERVICE_NAME,
    plugin_capabilities_server::SERVICE_NAME,
];

/// Shared readiness state.
pub(crate) struct Readiness {
    ready: AtomicBool,
    reporter: HealthReporter,
    lifecycle: Arc<dyn StoreLifecycle>,
    /// Turns true at shutdown, ending every health Watch stream.
    stopping: watch::Sender<bool>,
}

impl Readiness {
    /// Starts NOT_SERVING for every name (tonic-health would report `""` SERVING at once).
    pub(crate) async fn new(lifecycle: Arc<dyn StoreLifecycle>) -> Arc<Self> {
        let readiness = Arc::new(Self {
            ready: AtomicBool::new(false),
            reporter: HealthReporter::new(),
            lifecycle,
            stopping: watch::Sender::new(false),
        });
        readiness.publish(false).await;
        readiness
    }

    /// A `grpc.health.v1.Health` service over these statuses; one per listener.
    pub(crate) fn health_service(&self) -> HealthServer<EndingHealth> {
        HealthServer::new(EndingHealth::new(
            HealthService::from_health_reporter(self.reporter.clone()),
            self.stopping.subscribe(),
        ))
    }

    /// Ends every health Watch stream (after the status they have not sent yet), so watchers
    /// do not hold a stopping server until the drain timeout.
    pub(crate) fn end_watches(&self) {
        self.stopping.send_replace(true);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Asks the backend once and publishes the answer.
    pub(crate) async fn check(&self) {
        let ready = match tokio::time::timeout(CHECK_TIMEOUT, self.lifecycle.ready()).await {
            Ok(Ok(())) => true,
            Ok(Err(not_ready)) => {
                if self.is_ready() {
                    warn!(error = %not_ready, "backend is no longer ready");
                }
                false
            }
            Err(_elapsed) => {
                warn!(timeout = ?CHECK_TIMEOUT, "backend readiness check timed out");
                false
            }
        };
        if ready && !self.is_ready() {
            info!("backend is ready; serving");
        }
        self.publish(ready).await;
    }

    /// Re-checks every [`CHECK_INTERVAL`] until `shutdown` turns true.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stopping = async {
                let _ = shutdown.wait_for(|stopping| *stopping).await;
            };
            tokio::select! {
                () = tokio::time::sleep(CHECK_INTERVAL) => {}
                () = stopping => return,
            }
            self.check().await;
        }
    }

    /// Sets the flag and every health status.
    pub(crate) async fn publish(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for name in SERVICE_NAMES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use remote_storage_core::{StoreError, StoreResult};
    use tonic::Request;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
    use tonic_health::pb::health_server::Health as _;

    use super::*;

    /// A backend whose readiness the test controls.
    #[derive(Default)]
    struct Switch(AtomicBool);

    #[async_trait]
    impl StoreLifecycle for Switch {
        async fn ready(&self) -> StoreResult<()> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(StoreError::unavailable("warming up", "cache not loaded"))
            }
        }
    }

    async fn wire_status(readiness: &Readiness, service: &str) -> WireStatus {
        let service_impl = HealthService::from_health_reporter(readiness.reporter.clone());
        let request = Request::new(HealthCheckRequest {
            service: service.into(),
        });
        service_impl
            .check(request)
            .await
            .unwrap()
            .into_inner()
            .status()
    }

    #[tokio::test]
    async fn statuses_follow_the_backend_both_ways() {
        let switch = Arc::new(Switch::default());
        let readiness = Readiness::new(Arc::clone(&switch) as Arc<dyn StoreLifecycle>).await;
        // Not ready until a check succeeds, including the overall "" service.
        assert!(!readiness.is_ready());
        assert_eq!(wire_status(&readiness, "").await, WireStatus::NotServing);

        switch.0.store(true, Ordering::SeqCst);
        readiness.check().await;
        assert!(readiness.is_ready());
        for service in std::iter::once("").chain(SERVICE_NAMES) {
            assert_eq!(wire_status(&readiness, service).await, WireStatus::Serving);
        }

        switch.0.store(false, Ordering::SeqCst);
        readiness.check().await;
        assert!(!readiness.is_ready());
        assert_eq!(
            wire_status(&readiness, trace_reader_server::SERVICE_NAME).await,
            WireStatus::NotServing
        );
    }
}
