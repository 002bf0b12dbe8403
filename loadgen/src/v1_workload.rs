//! The workload as Jaeger v1's collector sends it: every generated span translated to Jaeger's
//! v1 model (a `jaeger.api_v2.Span` carrying its own process) with the server's own OTLP → v1
//! translation, and encoded as one `WriteSpanRequest` message per span, all before the clock
//! starts. In the timed loop a request's messages are copied and their trace IDs (the span's
//! and its parent reference's) patched, exactly as the OTLP templates are.

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::storage::v1::WriteSpanRequest;
use loadgen::workload::{self, RequestTemplate, Template, Workload, WorkloadConfig};
use prost::Message as _;
use remote_storage_core::v1::from_otlp::resource_spans_to_v1;

/// The `WriteSpanRequest` messages of one generated request, back to back.
#[derive(Debug, Clone)]
pub(crate) struct V1Template {
    messages: Template,
    /// End offset of each message within `messages`.
    ends: Vec<usize>,
}

impl RequestTemplate for V1Template {
    fn spans(&self) -> u64 {
        self.ends.len() as u64
    }

    fn encoded_len(&self) -> usize {
        self.messages.encoded_len()
    }
}

impl V1Template {
    /// Translates and encodes a generated request (`ids`: its trace IDs, see
    /// [`workload::build_request`]).
    pub(crate) fn new(request: &ExportTraceServiceRequest, ids: &[Vec<u8>]) -> Result<Self> {
        let spans = resource_spans_to_v1(&request.resource_spans);
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(spans.len());
        // Each span holds its trace ID, and so does each reference (the parent's).
        let mut id_positions = 0;
        for span in spans {
            id_positions += 1 + span.references.len();
            WriteSpanRequest { span: Some(span) }
                .encode(&mut bytes)
                .context("encoding a WriteSpanRequest")?;
            ends.push(bytes.len());
        }
        let messages = Template::new(bytes, ids, ends.len() as u64, id_positions)?;
        Ok(Self { messages, ends })
    }

    /// The messages of request number `seq`, its trace IDs patched in as
    /// [`Template::render`] does; they share one buffer.
    pub(crate) fn render(&self, prefix: [u8; 8], seq: u64, traces_per_request: u64) -> Vec<Bytes> {
        let all = self.messages.render(prefix, seq, traces_per_request);
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let message = all.slice(start..end);
                start = end;
                message
            })
            .collect()
    }
}

/// Generates the workload of `cfg` in the v1 encoding.
pub(crate) fn build(cfg: &WorkloadConfig) -> Result<Workload<V1Template>> {
    Workload::build_with(cfg, |request, ids| V1Template::new(&request, &ids))
}

/// The v1 spans of trace number `trace_seq` exactly as they are sent, decoded back from the
/// rendered messages of their request.
pub(crate) fn sent_trace(
    workload: &Workload<V1Template>,
    prefix: [u8; 8],
    trace_seq: u64,
) -> Result<Vec<v1::Span>> {
    let traces_per_request = workload.traces_per_request();
    let seq = trace_seq / traces_per_request;
    let template = workload
        .template(seq)
        .with_context(|| format!("trace {trace_seq} is not part of the workload"))?;
    let trace_id = workload::trace_id(prefix, trace_seq);
    let mut spans = Vec::new();
    for message in template.render(prefix, seq, traces_per_request) {
        let span = WriteSpanRequest::decode(message)?
            .span
            .context("a WriteSpanRequest without a span")?;
        if span.trace_id == trace_id {
            spans.push(span);
        }
    }
    ensure!(!spans.is_empty(), "trace {trace_seq} has no span");
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use jaeger_remote_proto::api_v2::SpanRefType;

    use super::*;

    fn config() -> WorkloadConfig {
        WorkloadConfig {
            seed: 4,
            batch_size: 100,
            ring: 2,
            total_spans: Some(250),
            time_spread: Duration::from_secs(3600),
            now_unix_nanos: 1_800_000_000_000_000_000,
        }
    }

    #[test]
    fn one_message_per_span_with_every_trace_id_patched() {
        let workload = build(&config()).unwrap();
        let prefix = workload::run_prefix(3);
        let mut seen = HashSet::new();
        for seq in 0..3 {
            let template = workload.template(seq).unwrap();
            let messages = template.render(prefix, seq, workload.traces_per_request());
            assert_eq!(messages.len() as u64, template.spans());
            for message in messages {
                let span = WriteSpanRequest::decode(message).unwrap().span.unwrap();
                let trace_seq = u64::from_be_bytes(span.trace_id[8..].try_into().unwrap());
                assert_eq!(span.trace_id, workload::trace_id(prefix, trace_seq));
                assert_eq!(trace_seq / workload.traces_per_request(), seq);
                for reference in &span.references {
                    assert_eq!(reference.trace_id, span.trace_id);
                    assert_eq!(reference.ref_type, i32::from(SpanRefType::ChildOf));
                }
                let process = span.process.as_ref().unwrap();
                assert!(process.service_name.starts_with("loadgen-svc-"));
                assert!(span.tags.iter().any(|tag| tag.key == "span.kind"));
                seen.insert(span.trace_id);
            }
        }
        assert_eq!(workload.template(3).map(RequestTemplate::spans), None);
        assert_eq!(seen.len(), 25);
    }

    #[test]
    fn a_sent_trace_is_one_root_and_nine_children() {
        let workload = build(&config()).unwrap();
        let prefix = workload::run_prefix(8);
        let spans = sent_trace(&workload, prefix, 12).unwrap();
        assert_eq!(spans.len(), workload::SPANS_PER_TRACE);
        assert_eq!(spans.iter().filter(|s| s.references.is_empty()).count(), 1);
        assert!(sent_trace(&workload, prefix, 25).is_err());
    }
}
