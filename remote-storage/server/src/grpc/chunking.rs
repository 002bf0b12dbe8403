//! Splitting traces into streamed `TracesData` chunks, and summaries into response batches.
//!
//! Rules (trace_storage.proto and Jaeger's client): a chunk holds spans of exactly one trace,
//! the chunks of one trace are consecutive, no chunk is empty, and every chunk stays well under
//! the Go client's 4 MiB receive limit. Sizes are computed with prost's `encoded_len` plus a
//! conservative allowance for the enclosing messages, so the real encoded size never exceeds
//! the estimate.

use std::num::NonZeroUsize;
use std::sync::Arc;

use jaeger_remote_proto::encoded::EncodedTracesData;
use jaeger_remote_proto::storage::v2::TraceSummary as ProtoTraceSummary;
use prost::Message as _;
use remote_storage_core::{EncodedTrace, Span, Trace};

use super::traces_encoding::{SpanRun, encode_traces_data};

/// The longest possible varint, used where the real length is not known yet.
const MAX_VARINT_LEN: usize = 10;

/// Limits of one streamed chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkBudget {
    /// Most spans (or summaries) in one chunk.
    pub(crate) max_items: NonZeroUsize,
    /// Most encoded bytes in one chunk, unless a single item is larger on its own.
    pub(crate) max_bytes: NonZeroUsize,
}

/// The chunks of one trace, produced lazily so a huge trace is never fully duplicated in
/// memory.
pub(crate) fn trace_chunks(trace: &Trace, budget: ChunkBudget) -> TraceChunks<'_, [Span]> {
    span_chunks(trace.spans.as_slice(), budget)
}

/// The chunks of one trace whose spans are already encoded; see [`trace_chunks`].
pub(crate) fn encoded_trace_chunks(
    trace: &EncodedTrace,
    budget: ChunkBudget,
) -> TraceChunks<'_, EncodedTrace> {
    span_chunks(trace, budget)
}

fn span_chunks<S: SpanRun + ?Sized>(spans: &S, budget: ChunkBudget) -> TraceChunks<'_, S> {
    TraceChunks {
        spans,
        next: 0,
        budget,
    }
}

/// Iterator over the chunks of one trace; see [`trace_chunks`].
pub(crate) struct TraceChunks<'a, S: ?Sized> {
    spans: &'a S,
    /// The first span not sent yet.
    next: usize,
    budget: ChunkBudget,
}

impl<S: SpanRun + ?Sized> Iterator for TraceChunks<'_, S> {
    type Item = EncodedTracesData;

    fn next(&mut self) -> Option<EncodedTracesData> {
        let mut span_lens = Vec::new();
        let length = next_chunk_len(self.spans, self.next, self.budget, &mut span_lens);
        if length == 0 {
            return None;
        }
        let chunk = self.next..self.next + length;
        self.next = chunk.end;
        let mut bytes = Vec::new();
        encode_traces_data(self.spans, chunk, &span_lens, &mut bytes);
        Some(EncodedTracesData(bytes))
    }
}

/// How many spans from `first` on fit in one chunk: at least one (so an oversized span still
/// goes out, alone), zero only when no spans remain. The encoded length of each span taken goes
/// to `span_lens`, for the encoder.
fn next_chunk_len<S: SpanRun + ?Sized>(
    spans: &S,
    first: usize,
    budget: ChunkBudget,
    span_lens: &mut Vec<usize>,
) -> usize {
    let mut bytes = 0;
    let mut previous: Option<usize> = None;
    for index in first..spans.span_count() {
        let span_len = spans.span_len(index);
        let cost = span_cost(spans, previous, index, span_len);
        let count = span_lens.len();
        let full = count == budget.max_items.get() || bytes + cost > budget.max_bytes.get();
        if count > 0 && full {
            break;
        }
        bytes += cost;
        span_lens.push(span_len);
        previous = Some(index);
    }
    span_lens.len()
}

/// Upper bound of the bytes span `index` (of encoded length `span_len`) adds to a chunk whose
/// last span is `previous`, mirroring how the encoder (and `resource_spans_from_spans`) groups
/// consecutive spans sharing a resource and scope.
fn span_cost<S: SpanRun + ?Sized>(
    spans: &S,
    previous: Option<usize>,
    index: usize,
    span_len: usize,
) -> usize {
    let mut cost = field_len(span_len);
    let resource = spans.resource(index);
    let scope = spans.scope(index);
    let new_resource =
        previous.is_none_or(|previous| !Arc::ptr_eq(spans.resource(previous), resource));
    let new_scope =
        new_resource || previous.is_none_or(|previous| !Arc::ptr_eq(spans.scope(previous), scope));
    if new_resource {
        // ResourceSpans entry: tag + unknown length, resource message, schema URL.
        cost += 1
            + MAX_VARINT_LEN
            + field_len(resource.otlp().encoded_len())
            + field_len(resource.schema_url().len());
    }
    if new_scope {
        // ScopeSpans entry: tag + unknown length, scope message, schema URL.
        cost += 1
            + MAX_VARINT_LEN
            + field_len(scope.otlp().encoded_len())
            + field_len(scope.schema_url().len());
    }
    cost
}

/// Encoded size of a length-delimited field with a one-byte tag.
pub(crate) fn field_len(payload_len: usize) -> usize {
    1 + prost::length_delimiter_len(payload_len) + payload_len
}

/// Groups a stream of summaries into response batches under the same budget. Several
/// summaries share a batch (fewer, larger messages); a batch is never empty.
#[derive(Debug)]
pub(crate) struct SummaryBatcher {
    budget: ChunkBudget,
    current: Vec<ProtoTraceSummary>,
    bytes: usize,
}

impl SummaryBatcher {
    pub(crate) fn new(budget: ChunkBudget) -> Self {
        Self {
            budget,
            current: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds a summary; returns the previous batch when this one no longer fits in it.
    pub(crate) fn push(&mut self, summary: ProtoTraceSummary) -> Option<Vec<ProtoTraceSummary>> {
        let cost = field_len(summary.encoded_len());
        let full = self.current.len() == self.budget.max_items.get()
            || self.bytes + cost > self.budget.max_bytes.get();
        let finished = if !self.current.is_empty() && full {
            self.bytes = 0;
            Some(std::mem::take(&mut self.current))
        } else {
            None
        };
        self.bytes += cost;
        self.current.push(summary);
        finished
    }

    /// The last, partial batch, if any summary is left.
    pub(crate) fn finish(self) -> Option<Vec<ProtoTraceSummary>> {
        if self.current.is_empty() {
            None
        } else {
            Some(self.current)
        }
    }
}

#[cfg(test)]
mod tests {
    use jaeger_remote_proto::otlp::trace::TracesData;
    use remote_storage_core::testing::{span, trace_of};
    use remote_storage_core::{Scope, TraceId};

    use super::*;

    fn budget(max_items: usize, max_bytes: usize) -> ChunkBudget {
        ChunkBudget {
            max_items: NonZeroUsize::new(max_items).unwrap(),
            max_bytes: NonZeroUsize::new(max_bytes).unwrap(),
        }
    }

    /// A trace of `count` spans over a few resources and scopes, some with large attributes.
    fn big_trace(count: usize) -> Trace {
        let services = [
            remote_storage_core::testing::resource("svc-a"),
            remote_storage_core::testing::resource("svc-b"),
        ];
        let scope = Arc::new(Scope::default());
        let spans = (0..count)
            .map(|index| {
                let template = span(7, 1, None, "unused", "op", 100, 200, false);
                let mut otlp = template.otlp().clone();
                otlp.span_id = u64::try_from(index + 1).unwrap().to_be_bytes().to_vec();
                otlp.name = format!("operation-{}", index % 17);
                otlp.attributes = vec![jaeger_remote_proto::otlp::common::KeyValue {
                    key: "payload".into(),
                    value: Some(jaeger_remote_proto::otlp::common::AnyValue {
                        value: Some(
                            jaeger_remote_proto::otlp::common::any_value::Value::StringValue(
                                "x".repeat(index % 300),
                            ),
                        ),
                    }),
                    ..Default::default()
                }];
                // Runs of 50 spans share a resource, so groups change inside chunks too.
                let resource = Arc::clone(&services[(index / 50) % 2]);
                Span::new(resource, Arc::clone(&scope), otlp).unwrap()
            })
            .collect();
        Trace {
            trace_id: TraceId([7; 16]),
            spans,
        }
    }

    fn decoded(chunk: EncodedTracesData) -> TracesData {
        TracesData::decode(chunk.0.as_slice()).expect("a chunk decodes as TracesData")
    }

    fn span_ids(data: &TracesData) -> Vec<Vec<u8>> {
        data.resource_spans
            .iter()
            .flat_map(|group| &group.scope_spans)
            .flat_map(|scope| &scope.spans)
            .map(|span| span.span_id.clone())
            .collect()
    }

    #[test]
    fn a_large_trace_is_split_into_bounded_consecutive_chunks() {
        let trace = big_trace(20_000);
        let limits = budget(1000, 256 * 1024);
        let chunks: Vec<TracesData> = trace_chunks(&trace, limits).map(decoded).collect();
        assert!(chunks.len() >= 20, "only {} chunks", chunks.len());
        let mut seen = Vec::new();
        for chunk in &chunks {
            let ids = span_ids(chunk);
            assert!(!ids.is_empty(), "empty chunk");
            assert!(ids.len() <= 1000);
            assert!(
                chunk.encoded_len() <= 256 * 1024,
                "chunk of {} bytes",
                chunk.encoded_len()
            );
            let only_this_trace = chunk
                .resource_spans
                .iter()
                .flat_map(|group| &group.scope_spans)
                .flat_map(|scope| &scope.spans)
                .all(|span| span.trace_id == vec![7; 16]);
            assert!(only_this_trace);
            seen.extend(ids);
        }
        // Every span exactly once, in the stored order.
        let expected: Vec<Vec<u8>> = trace
            .spans
            .iter()
            .map(|span| span.otlp().span_id.clone())
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn encoded_spans_are_chunked_into_the_same_bytes() {
        let trace = big_trace(3_000);
        for limits in [
            budget(1000, 256 * 1024),
            budget(7, 1 << 20),
            budget(1000, 900),
        ] {
            let from_spans: Vec<EncodedTracesData> = trace_chunks(&trace, limits).collect();
            let encoded = EncodedTrace::from_trace(&trace);
            let from_bytes: Vec<EncodedTracesData> =
                encoded_trace_chunks(&encoded, limits).collect();
            assert_eq!(from_bytes.len(), from_spans.len());
            assert!(
                from_bytes.iter().zip(&from_spans).all(|(a, b)| a.0 == b.0),
                "the chunks differ"
            );
        }
    }

    #[test]
    fn the_span_budget_alone_limits_chunks() {
        let trace = big_trace(2_500);
        let sizes: Vec<usize> = trace_chunks(&trace, budget(1000, usize::MAX))
            .map(|chunk| span_ids(&decoded(chunk)).len())
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
    }

    #[test]
    fn a_span_larger_than_the_byte_budget_goes_out_alone() {
        let small = span(3, 1, None, "svc", "small", 1, 2, false);
        let mut huge_otlp = span(3, 2, None, "svc", "huge", 1, 2, false).otlp().clone();
        huge_otlp.name = "h".repeat(10_000);
        let huge = Span::new(
            Arc::clone(small.resource()),
            Arc::clone(small.scope()),
            huge_otlp,
        )
        .unwrap();
        let trace = trace_of(vec![small.clone(), huge, small]);
        let sizes: Vec<usize> = trace_chunks(&trace, budget(1000, 1_000))
            .map(|chunk| span_ids(&decoded(chunk)).len())
            .collect();
        assert_eq!(sizes, [1, 1, 1]);
    }

    #[test]
    fn an_empty_trace_yields_no_chunk() {
        let trace = Trace {
            trace_id: TraceId([1; 16]),
            spans: Vec::new(),
        };
        assert_eq!(trace_chunks(&trace, budget(10, 1000)).count(), 0);
    }

    fn batch_sizes(count: u8, limits: ChunkBudget) -> Vec<usize> {
        let mut batcher = SummaryBatcher::new(limits);
        let mut sizes = Vec::new();
        for byte in 1..=count {
            let summary = ProtoTraceSummary {
                trace_id: vec![byte; 16],
                root_service_name: "svc".into(),
                ..Default::default()
            };
            sizes.extend(batcher.push(summary).map(|batch| batch.len()));
        }
        sizes.extend(batcher.finish().map(|batch| batch.len()));
        sizes
    }

    #[test]
    fn summaries_are_batched_without_empty_batches() {
        assert_eq!(batch_sizes(5, budget(2, 1 << 20)), [2, 2, 1]);
        assert_eq!(batch_sizes(0, budget(2, 1 << 20)), Vec::<usize>::new());
        assert_eq!(batch_sizes(3, budget(100, 1)), [1, 1, 1]);
    }
}
