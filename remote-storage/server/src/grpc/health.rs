//! gRPC health whose Watch streams end when the server stops.
//!
//! tonic-health's Watch streams never end on their own, and a graceful shutdown waits for
//! every open stream, so one watching client (a load balancer, a sidecar) would hold a
//! stopping server for the whole drain timeout. Here a Watch stream passes on the final
//! NOT_SERVING published at shutdown and then ends.

use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::HealthService;

/// tonic-health's service, with Watch streams cut at shutdown.
pub(crate) struct EndingHealth {
    inner: HealthService,
    /// Turns true when shutdown begins.
    stopping: watch::Receiver<bool>,
}

impl EndingHealth {
    pub(crate) fn new(inner: HealthService, stopping: watch::Receiver<bool>) -> Self {
        Self { inner, stopping }
    }
}

#[tonic::async_trait]
impl Health for EndingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        Ok(Response::new(
            until_stopping(statuses.boxed(), self.stopping.clone()).boxed(),
        ))
    }
}

/// Passes `statuses` on until `stopping` turns true (or its sender is gone), then ends. A
/// status that is waiting when both are ready goes first, so watchers see the NOT_SERVING
/// published just before the stop.
fn until_stopping<T: Send + 'static>(
    statuses: BoxStream<'static, T>,
    stopping: watch::Receiver<bool>,
) -> BoxStream<'static, T> {
    futures::stream::unfold(
        (statuses, stopping),
        |(mut statuses, mut stopping)| async move {
            let status = tokio::select! {
                biased;
                status = statuses.next() => status?,
                _ = stopping.wait_for(|stopping| *stopping) => return None,
            };
            Some((status, (statuses, stopping)))
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_watch_delivers_the_last_status_then_ends_at_shutdown() {
        let (status_sender, status_receiver) = watch::channel("serving");
        let (stop_sender, stop_receiver) = watch::channel(false);
        let statuses = tokio_stream::wrappers::WatchStream::new(status_receiver).boxed();
        let mut watch = until_stopping(statuses, stop_receiver);
        assert_eq!(watch.next().await, Some("serving"));

        status_sender.send_replace("not serving");
        stop_sender.send_replace(true);
        let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(5), watch.collect())
            .await
            .expect("the stream ends once stopping");
        assert_eq!(rest, ["not serving"]);
    }
}
