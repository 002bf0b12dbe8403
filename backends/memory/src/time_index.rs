//! Walking several services' time indexes as one.
//!
//! Every span is in exactly one service's index (a span has one service), so the union of the
//! services' indexes is every span by start time. Keeping no global index besides them saves
//! a B-tree insert per stored span (a cache miss or more per span once the data outgrows the
//! CPU caches) and ~20 bytes per span; a search that names no service, or several, merges the
//! services' ranges instead.

use std::collections::btree_set::Range;
use std::collections::{BTreeSet, BinaryHeap};
use std::iter::Rev;

use crate::records::SpanKey;

/// The keys within `lower..=upper` of several indexes, newest first. See [`newest_first`].
pub(crate) struct NewestFirst<'a> {
    /// The next key of each range not yet exhausted, with the range's position.
    heads: BinaryHeap<(SpanKey, usize)>,
    ranges: Vec<Rev<Range<'a, SpanKey>>>,
}

/// Merges the ranges `lower..=upper` of `indexes` into one walk, newest key first. The
/// indexes must not share keys (a key found in two would come out twice).
pub(crate) fn newest_first<'a>(
    indexes: impl IntoIterator<Item = &'a BTreeSet<SpanKey>>,
    lower: SpanKey,
    upper: SpanKey,
) -> NewestFirst<'a> {
    let mut ranges: Vec<_> = indexes
        .into_iter()
        .map(|index| index.range(lower..=upper).rev())
        .collect();
    let heads = ranges
        .iter_mut()
        .enumerate()
        .filter_map(|(position, range)| Some((*range.next()?, position)))
        .collect();
    NewestFirst { heads, ranges }
}

impl Iterator for NewestFirst<'_> {
    type Item = SpanKey;

    fn next(&mut self) -> Option<SpanKey> {
        let (key, position) = self.heads.pop()?;
        if let Some(next) = self.ranges.get_mut(position).and_then(Iterator::next) {
            self.heads.push((*next, position));
        }
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use remote_storage_core::UnixNanos;

    use super::*;
    use crate::records::SpanSlot;

    fn key(start: u64, sequence: u64) -> SpanKey {
        SpanKey {
            start: UnixNanos(start),
            slot: SpanSlot::new(sequence, 0),
        }
    }

    #[test]
    fn merged_ranges_come_out_newest_first_within_the_bounds() {
        let a: BTreeSet<SpanKey> = [key(10, 1), key(30, 2), key(50, 3), key(70, 4)].into();
        let b: BTreeSet<SpanKey> = [key(20, 5), key(30, 6), key(60, 7)].into();
        let empty = BTreeSet::new();
        let walked: Vec<SpanKey> = newest_first(
            [&a, &empty, &b],
            SpanKey::lowest(UnixNanos(20)),
            SpanKey::highest(UnixNanos(60)),
        )
        .collect();
        assert_eq!(
            walked,
            [key(60, 7), key(50, 3), key(30, 6), key(30, 2), key(20, 5)]
        );
        let mut all: Vec<SpanKey> = a.union(&b).copied().collect();
        all.reverse();
        let unbounded: Vec<SpanKey> = newest_first(
            [&a, &b],
            SpanKey::lowest(UnixNanos(0)),
            SpanKey::highest(UnixNanos(u64::MAX)),
        )
        .collect();
        assert_eq!(unbounded, all);
        assert_eq!(
            newest_first(
                Vec::new(),
                SpanKey::lowest(UnixNanos(0)),
                SpanKey::highest(UnixNanos(9))
            )
            .count(),
            0
        );
    }
}
