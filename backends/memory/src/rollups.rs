//! Dependency links kept as they arrive: calls per minute of the callee's start, per (parent
//! service, child service), so GetDependencies over a day reads about 1,440 small maps instead
//! of every span of the day.
//!
//! A call is counted once, when both its spans are stored: with the child, when its parent is
//! already there, or with the parent, when it arrives later (in another Export). The parent is
//! the first stored span with the child's parent ID, which a later span can never displace
//! (spans are only appended), so the count equals [`DependencyCounter`]'s over the stored spans
//! at every moment. An evicted trace takes its calls with it.
//!
//! [`DependencyCounter`]: remote_storage_core::dependencies::DependencyCounter

use std::collections::BTreeMap;
use std::ops::Range;

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::records::StoredSpan;

/// Width of a rollup bucket: one minute. A window's partial minutes at either edge are counted
/// from the spans ([`split_at_minutes`]), so answers are exact at any window.
///
/// [`split_at_minutes`]: remote_storage_core::dependencies::split_at_minutes
pub(crate) use remote_storage_core::dependencies::MINUTE_NANOS as BUCKET_NANOS;

/// Calls by bucket, then by (parent service, child service) number.
#[derive(Debug, Default)]
pub(crate) struct CallRollups {
    buckets: BTreeMap<u64, HashMap<(u32, u32), u64>>,
}

impl CallRollups {
    /// One more call from `parent` to `child` whose callee starts at `start`.
    pub(crate) fn add(&mut self, start: u64, parent: u32, child: u32) {
        *self
            .buckets
            .entry(start / BUCKET_NANOS)
            .or_default()
            .entry((parent, child))
            .or_default() += 1;
    }

    /// One call fewer (its trace was evicted).
    pub(crate) fn remove(&mut self, start: u64, parent: u32, child: u32) {
        let bucket = start / BUCKET_NANOS;
        let Some(calls) = self.buckets.get_mut(&bucket) else {
            return;
        };
        if let Some(count) = calls.get_mut(&(parent, child)) {
            *count -= 1;
            if *count == 0 {
                calls.remove(&(parent, child));
            }
        }
        if calls.is_empty() {
            self.buckets.remove(&bucket);
        }
    }

    /// Every call in `buckets`, as (parent, child, count).
    pub(crate) fn calls(&self, buckets: Range<u64>) -> impl Iterator<Item = (u32, u32, u64)> + '_ {
        self.buckets.range(buckets).flat_map(|(_, calls)| {
            calls
                .iter()
                .map(|(&(parent, child), &count)| (parent, child, count))
        })
    }
}

/// What counting a trace's new calls needs of the spans it already holds: the service of the
/// first span of each ID, and the spans still waiting for their parent (by the parent's ID:
/// callee start and service). Kept between the writes of a trace sent in many Exports, so
/// each write costs its own spans, not the whole trace again (a 10,000-span trace sent 5 spans
/// at a time, as Jaeger's collector may, was quadratic).
#[derive(Debug, Default)]
pub(crate) struct TraceCalls {
    first: HashMap<[u8; 8], u32>,
    waiting: HashMap<[u8; 8], Vec<(u64, u32)>>,
    /// How many of the trace's spans this covers: `spans[..covered]`.
    covered: usize,
}

impl TraceCalls {
    /// An empty state with room for `spans` span IDs.
    fn with_capacity(spans: usize) -> Self {
        Self {
            first: HashMap::with_capacity(spans),
            ..Self::default()
        }
    }

    /// The state of a trace holding `spans`.
    pub(crate) fn of(spans: &[StoredSpan]) -> Self {
        let mut calls = Self::with_capacity(spans.len());
        calls.add(spans, |_, _, _| {});
        calls
    }

    /// How many of the trace's spans this covers.
    pub(crate) fn covered(&self) -> usize {
        self.covered
    }

    /// Adds the trace's next `spans` and calls `each` with every call they complete, as
    /// (callee start, parent service, child service): their own calls, and those of held
    /// spans whose parent is among them.
    pub(crate) fn add(&mut self, spans: &[StoredSpan], mut each: impl FnMut(u64, u32, u32)) {
        for span in spans {
            if let Entry::Vacant(first) = self.first.entry(span.span_id) {
                first.insert(span.service);
                for (start, child) in self.waiting.remove(&span.span_id).unwrap_or_default() {
                    each(start, span.service, child);
                }
            }
        }
        for span in spans {
            let Some(parent) = span.parent() else {
                continue;
            };
            match self.first.get(&parent) {
                Some(&service) => each(span.start, service, span.service),
                None => self
                    .waiting
                    .entry(parent)
                    .or_default()
                    .push((span.start, span.service)),
            }
        }
        self.covered += spans.len();
    }
}

/// Every call of a trace.
pub(crate) fn trace_calls(spans: &[StoredSpan], each: impl FnMut(u64, u32, u32)) {
    TraceCalls::with_capacity(spans.len()).add(spans, each);
}

/// Spans covered by the [`TraceCalls`] kept across writes, over all traces: at most ~40 bytes
/// each, so ~10 MB. A trace forgotten before its next write is recounted from its spans once.
pub(crate) const KEPT_CALL_SPANS: usize = 250_000;

/// The [`TraceCalls`] of traces written more than once, by trace sequence number; the oldest
/// traces are forgotten first when they cover more than the limit's spans.
#[derive(Debug)]
pub(crate) struct KeptCalls {
    traces: BTreeMap<u64, TraceCalls>,
    spans: usize,
    limit: usize,
}

impl Default for KeptCalls {
    fn default() -> Self {
        Self::with_limit(KEPT_CALL_SPANS)
    }
}

impl KeptCalls {
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            traces: BTreeMap::new(),
            spans: 0,
            limit,
        }
    }

    /// The state of trace `sequence`, which holds `spans`: the kept one when it covers them
    /// all, else recounted.
    pub(crate) fn take(&mut self, sequence: u64, spans: &[StoredSpan]) -> TraceCalls {
        match self.forget(sequence) {
            Some(calls) if calls.covered() == spans.len() => calls,
            _ => TraceCalls::of(spans),
        }
    }

    /// Keeps trace `sequence`'s state for its next write.
    pub(crate) fn put(&mut self, sequence: u64, calls: TraceCalls) {
        self.spans += calls.covered();
        if let Some(replaced) = self.traces.insert(sequence, calls) {
            self.spans -= replaced.covered();
        }
        while self.spans > self.limit {
            let Some((_, oldest)) = self.traces.pop_first() else {
                break;
            };
            self.spans -= oldest.covered();
        }
    }

    /// Forgets trace `sequence` (evicted, or taken for a write).
    pub(crate) fn forget(&mut self, sequence: u64) -> Option<TraceCalls> {
        let calls = self.traces.remove(&sequence)?;
        self.spans -= calls.covered();
        Some(calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_every_call_leaves_nothing() {
        let mut rollups = CallRollups::default();
        rollups.add(10, 1, 2);
        rollups.add(11, 1, 2);
        rollups.remove(10, 1, 2);
        assert_eq!(rollups.calls(0..1).collect::<Vec<_>>(), [(1, 2, 1)]);
        rollups.remove(11, 1, 2);
        assert!(rollups.buckets.is_empty());
    }

    #[test]
    fn kept_calls_forget_the_oldest_traces_beyond_the_limit() {
        let spans = |count: usize| TraceCalls {
            covered: count,
            ..TraceCalls::default()
        };
        let mut kept = KeptCalls::with_limit(10);
        kept.put(1, spans(4));
        kept.put(2, spans(4));
        kept.put(1, spans(5));
        assert_eq!(kept.spans, 9);
        kept.put(3, spans(3));
        // Over the limit (12): trace 1, the oldest, goes.
        assert_eq!(kept.traces.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(kept.spans, 7);
        assert_eq!(kept.forget(2).map(|calls| calls.covered()), Some(4));
        assert_eq!(kept.spans, 3);
        assert!(kept.forget(2).is_none());
    }
}
