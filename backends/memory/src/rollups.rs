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

/// The calls that `spans[old_len..]` add to a trace that held `spans[..old_len]`: as
/// (callee start, parent service, child service).
pub(crate) fn added_calls(
    spans: &[StoredSpan],
    old_len: usize,
    mut each: impl FnMut(u64, u32, u32),
) {
    let (old, new) = spans.split_at(old_len.min(spans.len()));
    let mut first: HashMap<[u8; 8], u32> = HashMap::with_capacity(spans.len());
    for span in old {
        first.entry(span.span_id).or_insert(span.service);
    }
    // Stored spans whose parent was missing until now.
    let orphans: Vec<&StoredSpan> = old
        .iter()
        .filter(|span| {
            span.parent()
                .is_some_and(|parent| !first.contains_key(&parent))
        })
        .collect();
    for span in new {
        first.entry(span.span_id).or_insert(span.service);
    }
    for span in new.iter().chain(orphans) {
        if let Some(&parent) = span.parent().and_then(|parent| first.get(&parent)) {
            each(span.start, parent, span.service);
        }
    }
}

/// Every call of a trace.
pub(crate) fn trace_calls(spans: &[StoredSpan], each: impl FnMut(u64, u32, u32)) {
    added_calls(spans, 0, each);
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
}
