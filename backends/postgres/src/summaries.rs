//! What a write continuing a trace must know of the trace's stored spans, kept between writes.
//!
//! Stored spans keep their places (a write's `batch_seq` follows every stored one), so the
//! first stored span of an ID never changes, and a write adds calls in two ways only: a new
//! span whose parent ID already has a first span, and a new span that becomes the first of an
//! ID which stored spans name as their parent. A [`TraceSummary`] holds exactly that: the first
//! span of each ID, the spans still waiting for their parent, and the stored chunk keys (a
//! re-sent chunk is skipped by the insert). Without it, every write of a trace arriving in many
//! Exports read and decoded all of the trace's stored rows, twice: quadratic in the Exports.
//!
//! [`SummaryCache`] keeps the summaries of recently written traces in this process, each tagged
//! with the `trace_heads.version` it describes. Every write bumps that version under the
//! trace's row lock, so a summary is used only when no other process wrote the trace since; a
//! missing or outdated one is rebuilt from the stored rows.

use hashbrown::hash_map::Entry;
use std::collections::VecDeque;

use hashbrown::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use remote_storage_core::{Span, SpanId};

use crate::rollups::{CallDeltas, CallKey, ChunkKey, MINUTE_NS};
use crate::schema::{bucket_of, to_db_nanos};

/// Spans whose summaries the cache keeps at most (about 80 bytes each).
const CACHED_SPANS: usize = 250_000;

/// One span as the call count sees it.
#[derive(Debug, Clone)]
pub(crate) struct SpanFacts {
    id: SpanId,
    parent: Option<SpanId>,
    service: Arc<str>,
    /// Stored start nanoseconds.
    start: i64,
}

impl SpanFacts {
    /// The facts of `spans`, in their order, each service name allocated once.
    pub(crate) fn of<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Vec<Self> {
        let mut names: HashMap<&str, Arc<str>> = HashMap::new();
        spans
            .into_iter()
            .map(|span| {
                let service = names
                    .entry(span.service_name())
                    .or_insert_with(|| Arc::from(span.service_name()))
                    .clone();
                Self {
                    id: span.span_id(),
                    parent: span.parent_span_id(),
                    service,
                    start: to_db_nanos(span.start().0),
                }
            })
            .collect()
    }
}

/// The stored spans of one trace, as far as the calls and re-sent chunks are concerned.
#[derive(Debug, Default)]
pub(crate) struct TraceSummary {
    /// The first stored span of each ID: service and stored start.
    first: HashMap<SpanId, (Arc<str>, i64)>,
    /// Spans whose parent ID has no stored span yet, by that ID: start and service.
    waiting: HashMap<SpanId, Vec<(i64, Arc<str>)>>,
    /// `(chunk_hash, min_start)` of every stored chunk.
    chunks: HashSet<ChunkKey>,
    spans: usize,
}

impl TraceSummary {
    /// Adds spans stored after every span already summarised, in storage order, and the calls
    /// they add (as [`DependencyCounter`] counts them over all stored spans) to `deltas`.
    ///
    /// [`DependencyCounter`]: remote_storage_core::dependencies::DependencyCounter
    pub(crate) fn add_spans(&mut self, spans: &[SpanFacts], width: i64, deltas: &mut CallDeltas) {
        // Summed under shared names first: a trace's calls repeat a few keys.
        let mut calls: HashMap<(i64, Arc<str>, Arc<str>, i64), i64> = HashMap::new();
        let mut count = |child_start: i64, child: &Arc<str>, parent: &(Arc<str>, i64)| {
            let key = (
                bucket_of(child_start, MINUTE_NS),
                Arc::clone(&parent.0),
                Arc::clone(child),
                bucket_of(parent.1, width),
            );
            *calls.entry(key).or_default() += 1;
        };
        for span in spans {
            if let Entry::Vacant(slot) = self.first.entry(span.id) {
                let first = slot.insert((Arc::clone(&span.service), span.start));
                for (child_start, child) in self.waiting.remove(&span.id).unwrap_or_default() {
                    count(child_start, &child, first);
                }
            }
            let Some(parent) = span.parent else { continue };
            match self.first.get(&parent) {
                Some(first) => count(span.start, &span.service, first),
                None => self
                    .waiting
                    .entry(parent)
                    .or_default()
                    .push((span.start, Arc::clone(&span.service))),
            }
        }
        self.spans += spans.len();
        for ((minute, parent, child, parent_bucket), delta) in calls {
            deltas.add(
                CallKey {
                    minute,
                    parent: parent.as_bytes().to_vec(),
                    child: child.as_bytes().to_vec(),
                    parent_bucket,
                },
                delta,
            );
        }
    }

    /// Records stored chunks by `(chunk_hash, min_start)`.
    pub(crate) fn add_chunks(&mut self, keys: impl IntoIterator<Item = ChunkKey>) {
        self.chunks.extend(keys);
    }

    /// Whether any of the chunks is already stored (the insert would skip it).
    pub(crate) fn holds_any_chunk(&self, mut keys: impl Iterator<Item = ChunkKey>) -> bool {
        keys.any(|key| self.chunks.contains(&key))
    }
}

/// Summaries of recently written traces, by tenant and trace ID, with the `trace_heads`
/// version each describes; the oldest go first once they hold [`CACHED_SPANS`] spans.
#[derive(Debug, Default)]
pub(crate) struct SummaryCache {
    inner: Mutex<CacheInner>,
}

type CacheKey = (String, [u8; 16]);

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<CacheKey, (i64, TraceSummary)>,
    /// Keys in insertion order; a key taken or put again leaves a stale position behind.
    order: VecDeque<CacheKey>,
    spans: usize,
}

impl SummaryCache {
    /// Removes the trace's summary and returns it if it describes `version`.
    pub(crate) fn take(
        &self,
        tenant: &str,
        trace_id: [u8; 16],
        version: i64,
    ) -> Option<TraceSummary> {
        let mut inner = self.inner.lock();
        let (cached_version, summary) = inner.entries.remove(&(tenant.to_owned(), trace_id))?;
        inner.spans -= summary.spans;
        (cached_version == version).then_some(summary)
    }

    /// Keeps the trace's summary as of `version`.
    pub(crate) fn put(
        &self,
        tenant: &str,
        trace_id: [u8; 16],
        version: i64,
        summary: TraceSummary,
    ) {
        let mut inner = self.inner.lock();
        let key = (tenant.to_owned(), trace_id);
        inner.spans += summary.spans;
        if let Some((_, replaced)) = inner.entries.insert(key.clone(), (version, summary)) {
            inner.spans -= replaced.spans;
        }
        inner.order.push_back(key);
        while inner.spans > CACHED_SPANS || inner.order.len() > 4 * inner.entries.len() + 1024 {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, evicted)) = inner.entries.remove(&oldest) {
                inner.spans -= evicted.spans;
            }
        }
    }

    /// Forgets every summary (after stored spans were dropped).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.entries.clear();
        inner.order.clear();
        inner.spans = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remote_storage_core::testing::span;

    const DAY: i64 = 86_400_000_000_000;

    fn calls(spans: &[Span]) -> Vec<(CallKey, i64)> {
        let mut deltas = CallDeltas::default();
        deltas.add_trace(spans.iter(), DAY, 1);
        deltas.into_sorted()
    }

    /// Every split of a trace into consecutive writes adds up to the calls of the whole trace,
    /// including parents after children, duplicated IDs and a span that is its own parent.
    #[test]
    fn writes_add_up_to_the_calls_of_the_whole_trace() {
        const M: u64 = 60_000_000_000;
        let spans = [
            span(1, 2, Some(1), "b", "child first", M + 11, M + 12, false),
            span(1, 5, Some(4), "c", "waits long", 3 * M, 3 * M + 1, false),
            span(1, 1, None, "a", "root", 10, 20, false),
            span(1, 1, None, "z", "copy of the root", 10, 20, false),
            span(1, 3, Some(1), "b", "child after", 2 * M, 2 * M + 1, false),
            span(1, 6, Some(6), "d", "own parent", 4 * M, 4 * M + 1, false),
            span(1, 4, Some(1), "a", "late parent", 5 * M, 5 * M + 1, false),
            span(1, 7, Some(9), "e", "orphan", 6 * M, 6 * M + 1, false),
        ];
        let whole = calls(&spans);
        assert_eq!(whole.len(), 5, "{whole:?}");
        for cuts in 0..(1u32 << (spans.len() - 1)) {
            let mut summary = TraceSummary::default();
            let mut deltas = CallDeltas::default();
            let mut from = 0;
            for end in 1..=spans.len() {
                if end == spans.len() || cuts & (1 << (end - 1)) != 0 {
                    summary.add_spans(&SpanFacts::of(&spans[from..end]), DAY, &mut deltas);
                    from = end;
                }
            }
            assert_eq!(deltas.into_sorted(), whole, "cuts {cuts:b}");
        }
    }

    #[test]
    fn the_cache_returns_only_the_version_it_holds_and_stays_bounded() {
        let cache = SummaryCache::default();
        let summary = |spans: usize| TraceSummary {
            spans,
            ..TraceSummary::default()
        };
        cache.put("t", [1; 16], 7, summary(1));
        assert!(cache.take("t", [1; 16], 6).is_none(), "another version");
        assert!(
            cache.take("t", [1; 16], 7).is_none(),
            "taken even when outdated"
        );
        cache.put("t", [1; 16], 8, summary(1));
        assert!(cache.take("other", [1; 16], 8).is_none(), "per tenant");
        assert!(cache.take("t", [1; 16], 8).is_some());
        for id in 0..10u8 {
            cache.put("t", [id; 16], 1, summary(CACHED_SPANS / 4));
        }
        assert!(cache.inner.lock().spans <= CACHED_SPANS);
        assert!(cache.take("t", [9; 16], 1).is_some(), "the newest stays");
        assert!(
            cache.take("t", [0; 16], 1).is_none(),
            "the oldest went first"
        );
        for _ in 0..10_000 {
            cache.put("t", [3; 16], 1, summary(1));
        }
        // One live entry: the stale positions stay below 4 per entry plus 1,024.
        assert!(cache.inner.lock().order.len() <= 4 + 1024 + 1);
        cache.clear();
        assert!(cache.take("t", [3; 16], 1).is_none());
    }
}
