//! Data for the micro-benchmarks of `benches/hot_paths.rs`: loadgen's tracegen-like workload
//! (1 server + 9 client spans per trace, 11 string attributes per span, 10 services), so the
//! benchmarks measure the same spans `loadgen` sends to the server.
//!
//! `cargo bench -p bench-micro` runs them; `cargo bench -p bench-micro -- convert` one group.

use std::time::Duration;

use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use loadgen::workload::{self, WorkloadConfig};
use remote_storage_core::convert::spans_from_resource_spans;
use remote_storage_core::{Span, Trace, TraceId};

/// Start times end at this fixed instant (2025-01-01T00:00:00Z), so runs are comparable.
pub const NOW_UNIX_NANOS: u64 = 1_735_689_600_000_000_000;

/// Spans are spread over the day before [`NOW_UNIX_NANOS`], as in the query benchmark.
pub const TIME_SPREAD: Duration = Duration::from_secs(24 * 3600);

fn config(seed: u64, spans: usize) -> WorkloadConfig {
    WorkloadConfig {
        seed,
        batch_size: spans,
        ring: 1,
        total_spans: None,
        time_spread: TIME_SPREAD,
        now_unix_nanos: NOW_UNIX_NANOS,
    }
}

/// Export request number `index` of the workload with `spans` spans (a multiple of 10), as
/// loadgen builds it before encoding.
pub fn export_request(index: u64, spans: usize) -> ExportTraceServiceRequest {
    workload::build_request(&config(1, spans), index, spans).0
}

/// `requests` requests of `spans_per_request` spans each, converted to model spans.
pub fn model_spans(requests: u64, spans_per_request: usize) -> Vec<Span> {
    let mut spans = Vec::new();
    for index in 0..requests {
        let request = export_request(index, spans_per_request);
        spans.extend(spans_from_resource_spans(request.resource_spans).spans);
    }
    spans
}

/// One trace of `spans` spans (a multiple of 10): the workload's spans, all given one trace ID.
pub fn large_trace(spans: usize) -> Trace {
    let trace_id = [0x5a; 16];
    let mut request = export_request(0, spans);
    for group in &mut request.resource_spans {
        for scope in &mut group.scope_spans {
            for span in &mut scope.spans {
                span.trace_id = trace_id.to_vec();
            }
        }
    }
    // Kept in the order a store returns them: by start time.
    let mut spans: Vec<Span> = spans_from_resource_spans(request.resource_spans).spans;
    spans.sort_by_key(Span::start);
    Trace {
        trace_id: TraceId(trace_id),
        spans,
    }
}
