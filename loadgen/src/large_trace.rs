//! One very large trace for the GetTraces benchmark (Jaeger's GetLargeTrace shape, at the
//! size the benchmark issue asks about: 10,000 spans).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, ensure};
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use tonic::transport::Channel;

use crate::conn::{MAX_MESSAGE_BYTES, Tenant};

/// Spans per Export while writing the trace.
const SPANS_PER_EXPORT: u32 = 1000;

fn string_attribute(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// The trace ID used for a run: a marker prefix and the run ID, distinct from workload traces.
pub(crate) fn trace_id(run_id: u64) -> Vec<u8> {
    let mut id = b"largetr\x01".to_vec();
    id.extend_from_slice(&run_id.to_be_bytes());
    id
}

fn span(trace_id: &[u8], index: u32, start: u64) -> Span {
    let span_id = (u64::from(index) + 1).to_be_bytes().to_vec();
    Span {
        trace_id: trace_id.to_vec(),
        span_id,
        parent_span_id: if index == 0 {
            Vec::new()
        } else {
            1u64.to_be_bytes().to_vec()
        },
        name: format!("large-op-{}", index % 50),
        kind: if index == 0 {
            SpanKind::Server
        } else {
            SpanKind::Client
        } as i32,
        start_time_unix_nano: start + u64::from(index) * 1_000,
        end_time_unix_nano: start + u64::from(index) * 1_000 + 500_000,
        // Eleven attributes, as in the load workload, so spans are of realistic size.
        attributes: (0..11)
            .map(|attribute| {
                string_attribute(
                    format!("large.key.{attribute}"),
                    format!("value-{:03}", (index + attribute) % 1000),
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// Writes one trace of `spans` spans through Export and returns its ID.
pub(crate) async fn write(
    channel: Channel,
    tenant: &Tenant,
    spans: u32,
    run_id: u64,
) -> Result<Vec<u8>> {
    let trace_id = trace_id(run_id);
    let start = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    )
    .unwrap_or(u64::MAX)
    .saturating_sub(60_000_000_000);
    let mut client = TraceServiceClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut first = 0;
    while first < spans {
        let last = (first + SPANS_PER_EXPORT).min(spans);
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string_attribute(
                        "service.name".into(),
                        "loadgen-large".into(),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (first..last)
                        .map(|index| span(&trace_id, index, start))
                        .collect(),
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        };
        let response = client
            .export(tenant.request(request))
            .await
            .context("exporting the large trace")?
            .into_inner();
        let rejected = response
            .partial_success
            .map_or(0, |partial| partial.rejected_spans);
        ensure!(
            rejected == 0,
            "the server rejected {rejected} spans of the large trace"
        );
        first = last;
    }
    Ok(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_form_one_rooted_trace() {
        let id = trace_id(7);
        assert_eq!(id.len(), 16);
        let root = span(&id, 0, 100);
        let child = span(&id, 9_999, 100);
        assert!(root.parent_span_id.is_empty());
        assert_eq!(child.parent_span_id, root.span_id);
        assert_eq!(child.attributes.len(), 11);
        assert!(child.end_time_unix_nano > child.start_time_unix_nano);
    }
}
