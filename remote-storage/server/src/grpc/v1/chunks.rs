//! Splitting a trace into v1 `SpansResponseChunk`s: spans of one trace only, at most
//! `max_items` spans (Jaeger's reference sends 1000) and about `max_bytes` encoded bytes each
//! (well under the Go client's 4 MiB receive limit), never empty. Spans are translated lazily,
//! one chunk at a time, so a huge trace is never held twice.

use std::iter::Peekable;

use jaeger_remote_proto::storage::v1::SpansResponseChunk;
use prost::Message as _;
use remote_storage_core::v1::from_otlp::V1Spans;
use remote_storage_core::{Span, Trace};

use crate::grpc::chunking::{ChunkBudget, field_len};
use crate::grpc::trace_streaming::Chunker;

/// v1 chunks within a budget, for [`crate::grpc::trace_streaming::stream_trace_chunks`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct V1Chunker(pub(crate) ChunkBudget);

impl Chunker for V1Chunker {
    type Trace = Trace;
    type Chunk = SpansResponseChunk;

    fn chunks<'a>(&self, trace: &'a Trace) -> impl Iterator<Item = SpansResponseChunk> + Send + 'a {
        v1_chunks(trace, self.0)
    }
}

/// The chunks of one trace.
pub(crate) fn v1_chunks(trace: &Trace, budget: ChunkBudget) -> V1Chunks<'_> {
    V1Chunks {
        spans: V1Spans::new(&trace.spans).peekable(),
        budget,
    }
}

/// Iterator over the chunks of one trace; see [`v1_chunks`].
pub(crate) struct V1Chunks<'a> {
    spans: Peekable<V1Spans<'a, std::slice::Iter<'a, Span>>>,
    budget: ChunkBudget,
}

impl Iterator for V1Chunks<'_> {
    type Item = SpansResponseChunk;

    fn next(&mut self) -> Option<SpansResponseChunk> {
        let mut spans = Vec::new();
        let mut bytes = 0;
        // A span that does not fit stays in `self.spans` for the next chunk.
        while let Some(span) = self.spans.peek() {
            let cost = field_len(span.encoded_len());
            let full = spans.len() == self.budget.max_items.get()
                || bytes + cost > self.budget.max_bytes.get();
            if !spans.is_empty() && full {
                break;
            }
            bytes += cost;
            spans.extend(self.spans.next());
        }
        (!spans.is_empty()).then_some(SpansResponseChunk { spans })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use remote_storage_core::TraceId;
    use remote_storage_core::testing::{span, trace_of};

    use super::*;

    fn budget(max_items: usize, max_bytes: usize) -> ChunkBudget {
        ChunkBudget {
            max_items: NonZeroUsize::new(max_items).unwrap(),
            max_bytes: NonZeroUsize::new(max_bytes).unwrap(),
        }
    }

    fn trace(count: u8, name_len: usize) -> Trace {
        trace_of(
            (1..=count)
                .map(|id| {
                    let template = span(4, id, None, "svc", "op", 1, 2, false);
                    let mut otlp = template.otlp().clone();
                    otlp.name = "n".repeat(name_len);
                    Span::new(
                        Arc::clone(template.resource()),
                        Arc::clone(template.scope()),
                        otlp,
                    )
                    .unwrap()
                })
                .collect(),
        )
    }

    #[test]
    fn chunks_respect_both_budgets_and_keep_every_span_in_order() {
        let trace = trace(250, 100);
        let by_count: Vec<usize> = v1_chunks(&trace, budget(100, usize::MAX))
            .map(|chunk| chunk.spans.len())
            .collect();
        assert_eq!(by_count, [100, 100, 50]);

        let chunks: Vec<SpansResponseChunk> = v1_chunks(&trace, budget(1000, 4096)).collect();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let mut ids = Vec::new();
        for chunk in &chunks {
            assert!(!chunk.spans.is_empty());
            assert!(chunk.encoded_len() <= 4096, "{} bytes", chunk.encoded_len());
            for span in &chunk.spans {
                assert_eq!(span.trace_id, vec![4; 16]);
                assert_eq!(span.process.as_ref().unwrap().service_name, "svc");
                ids.push(span.span_id[7]);
            }
        }
        let expected: Vec<u8> = (1..=250).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn an_oversized_span_goes_alone_and_an_empty_trace_yields_nothing() {
        let trace = trace(3, 5000);
        let sizes: Vec<usize> = v1_chunks(&trace, budget(1000, 1000))
            .map(|chunk| chunk.spans.len())
            .collect();
        assert_eq!(sizes, [1, 1, 1]);
        let empty = Trace {
            trace_id: TraceId([1; 16]),
            spans: Vec::new(),
        };
        assert_eq!(v1_chunks(&empty, budget(10, 1000)).count(), 0);
    }
}
