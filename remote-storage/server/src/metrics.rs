//! Prometheus metrics of one server instance. Each [`ServerMetrics`] owns its own registry, so
//! several servers can run in one process (tests) without sharing counters.
//!
//! Names (prefix `jaeger_remote_storage_`):
//! - `spans_received_total{backend}`: spans that arrived in OTLP Export requests.
//! - `spans_rejected_total{backend, reason}`: spans not stored; `reason` is `invalid`
//!   (refused by validation, reported as partial success) or `write_failed`.
//! - `grpc_requests_total{method, code}`: finished RPCs by method and gRPC status code.
//! - `grpc_request_duration_seconds{method}`: RPC latency until the last response byte.
//! - `stored_traces{backend}`, `stored_spans{backend}`: what the backend holds, read from
//!   `StoreLifecycle::stats` at scrape time (absent if the backend does not report them).
//! - `backend_ready{backend}`: 1 while the backend passes its readiness check (admin `/`
//!   answers 200), 0 otherwise; read at scrape time, so an alert needs no probe of its own.
//! - `grpc_throttled_total{bound}`, `inflight_write_bytes`: backpressure (`grpc::admission`).

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use remote_storage_core::StoreStats;

/// Prefix of every metric name.
const PREFIX: &str = "jaeger_remote_storage";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendLabels {
    backend: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectedLabels {
    backend: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RpcLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

/// Why spans were not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectReason {
    /// Refused by validation (bad IDs, end before start…).
    Invalid,
    /// Valid, but the backend write failed.
    WriteFailed,
}

/// The metrics of one server and the registry that exposes them.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    registry: Registry,
    backend: &'static str,
    spans_received: Family<BackendLabels, Counter>,
    spans_rejected: Family<RejectedLabels, Counter>,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
    stored_traces: Family<BackendLabels, Gauge>,
    stored_spans: Family<BackendLabels, Gauge>,
    backend_ready: Family<BackendLabels, Gauge>,
    throttled: Family<ThrottledLabels, Counter>,
    inflight_bytes: Gauge,
}

/// Labels of a call turned away by a bound (`grpc::admission`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThrottledLabels {
    bound: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl ServerMetrics {
    pub(crate) fn new(backend: &'static str) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let spans_received = Family::<BackendLabels, Counter>::default();
        registry.register(
            "spans_received",
            "Spans received in OTLP Export requests",
            spans_received.clone(),
        );
        let spans_rejected = Family::<RejectedLabels, Counter>::default();
        registry.register(
            "spans_rejected",
            "Spans not stored, by reason (invalid, write_failed)",
            spans_rejected.clone(),
        );
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "grpc_requests",
            "Finished gRPC requests by method and status code",
            rpc_requests.clone(),
        );
        let rpc_duration: Family<MethodLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC request latency until the last response byte, by method",
            rpc_duration.clone(),
        );
        let stored_traces = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "stored_traces",
            "Traces held by the backend",
            stored_traces.clone(),
        );
        let stored_spans = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "stored_spans",
            "Spans held by the backend",
            stored_spans.clone(),
        );
        let backend_ready = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "backend_ready",
            "1 while the backend passes its readiness check (admin / answers 200), 0 otherwise",
            backend_ready.clone(),
        );
        let throttled = Family::<ThrottledLabels, Counter>::default();
        registry.register(
            "grpc_throttled",
            "Calls answered UNAVAILABLE with RetryInfo because a bound was reached, by bound \
             (concurrent_writes, inflight_bytes, concurrent_reads)",
            throttled.clone(),
        );
        let inflight_bytes = Gauge::default();
        registry.register(
            "inflight_write_bytes",
            "Request bytes of admitted write calls held now (bounded by --max-inflight-bytes)",
            inflight_bytes.clone(),
        );
        Self {
            registry,
            backend,
            spans_received,
            spans_rejected,
            rpc_requests,
            rpc_duration,
            stored_traces,
            stored_spans,
            backend_ready,
            throttled,
            inflight_bytes,
        }
    }

    /// Counts a call turned away by `bound`.
    pub(crate) fn record_throttled(&self, bound: &'static str) {
        self.throttled
            .get_or_create(&ThrottledLabels { bound })
            .inc();
    }

    /// Sets the request bytes held by admitted write calls.
    pub(crate) fn set_inflight_bytes(&self, bytes: usize) {
        self.inflight_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub(crate) fn spans_received(&self, count: u64) {
        self.spans_received
            .get_or_create(&BackendLabels {
                backend: self.backend,
            })
            .inc_by(count);
    }

    pub(crate) fn spans_rejected(&self, reason: RejectReason, count: u64) {
        let reason = match reason {
            RejectReason::Invalid => "invalid",
            RejectReason::WriteFailed => "write_failed",
        };
        self.spans_rejected
            .get_or_create(&RejectedLabels {
                backend: self.backend,
                reason,
            })
            .inc_by(count);
    }

    /// Records one finished RPC. `method` and `code` come from fixed sets (see
    /// `grpc::rpc_metrics`), so label cardinality stays bounded.
    pub(crate) fn rpc_finished(&self, method: &'static str, code: &'static str, elapsed: Duration) {
        self.rpc_requests
            .get_or_create(&RpcLabels { method, code })
            .inc();
        self.rpc_duration
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }

    /// Renders the OpenMetrics text exposition, refreshing the storage and readiness gauges
    /// first (`ready` is what the admin `/` endpoint would answer now).
    pub(crate) fn render(&self, stats: Option<StoreStats>, ready: bool) -> String {
        let labels = BackendLabels {
            backend: self.backend,
        };
        self.backend_ready
            .get_or_create(&labels)
            .set(i64::from(ready));
        if let Some(stats) = stats {
            self.stored_traces
                .get_or_create(&labels)
                .set(i64::try_from(stats.traces).unwrap_or(i64::MAX));
            self.stored_spans
                .get_or_create(&labels)
                .set(i64::try_from(stats.spans).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        if let Err(format_error) =
            prometheus_client::encoding::text::encode(&mut text, &self.registry)
        {
            // Only fails if a metric cannot be formatted; serve what we have and say why.
            let _ = writeln!(text, "# encoding error: {format_error}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_contains_every_metric_with_labels() {
        let metrics = ServerMetrics::new("memory");
        metrics.spans_received(5);
        metrics.spans_rejected(RejectReason::Invalid, 2);
        metrics.rpc_finished(
            "jaeger.storage.v2.TraceReader/GetTraces",
            "OK",
            Duration::from_millis(3),
        );
        let text = metrics.render(
            Some(StoreStats {
                traces: 7,
                spans: 11,
            }),
            true,
        );
        for expected in [
            "jaeger_remote_storage_spans_received_total{backend=\"memory\"} 5",
            "jaeger_remote_storage_spans_rejected_total{backend=\"memory\",reason=\"invalid\"} 2",
            "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v2.TraceReader/GetTraces\",code=\"OK\"} 1",
            "jaeger_remote_storage_grpc_request_duration_seconds_count{method=\"jaeger.storage.v2.TraceReader/GetTraces\"} 1",
            "jaeger_remote_storage_stored_traces{backend=\"memory\"} 7",
            "jaeger_remote_storage_stored_spans{backend=\"memory\"} 11",
            "jaeger_remote_storage_backend_ready{backend=\"memory\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }

    #[test]
    fn backend_ready_follows_each_scrape_both_ways() {
        let metrics = ServerMetrics::new("lsm");
        let ready_line = |text: &str| {
            text.lines()
                .find(|line| line.starts_with("jaeger_remote_storage_backend_ready{"))
                .map(str::to_owned)
        };
        // Not ready yet: the series exists (an alert on `== 0` fires) rather than being absent.
        let before = metrics.render(None, false);
        assert_eq!(
            ready_line(&before).as_deref(),
            Some("jaeger_remote_storage_backend_ready{backend=\"lsm\"} 0")
        );
        let ready = metrics.render(None, true);
        assert_eq!(
            ready_line(&ready).as_deref(),
            Some("jaeger_remote_storage_backend_ready{backend=\"lsm\"} 1")
        );
        // A backend that fails later (disk full, database gone) turns it back to 0.
        let failed = metrics.render(None, false);
        assert_eq!(
            ready_line(&failed).as_deref(),
            Some("jaeger_remote_storage_backend_ready{backend=\"lsm\"} 0")
        );
    }
}
