//! Dependency links kept as spans arrive: calls per minute of the callee's start, per (parent
//! service, child service), persisted as signed deltas in the same fjall batch as the spans
//! they count, so GetDependencies over a day sums about one record per 4 hours instead of reading
//! every trace of the day. Each call's exact start is kept too, in per-minute records, so the
//! partial minutes at a window's edges are exact without reading spans.
//!
//! A call is counted once both its spans are stored, whichever arrives first: each write
//! records the calls its spans change in every trace it touches (see [`sites`]: a span's own
//! call, and its ID's children's when it becomes their parent), at a cost of its own spans,
//! not of the whole trace. With duplicated span IDs the parent is the first stored span in
//! the trace's read order (partition, then discriminator), as [`DependencyCounter`] decides
//! over the stored spans; a later span that sorts first moves its children's calls, which is
//! why deltas are signed.
//!
//! A call's delta lives in the older of the partitions holding its two spans, so retention,
//! which drops the oldest partitions first, removes a call exactly when it removes one of its
//! spans (and with it the call, for [`DependencyCounter`]).
//!
//! [`DependencyCounter`]: remote_storage_core::dependencies::DependencyCounter

pub(crate) mod cache;
#[cfg(test)]
mod properties;
mod record;
pub(crate) mod sites;

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::PartitionId;
pub(crate) use record::{decode_calls, encode_calls};

/// Width of a rollup bucket: one minute. A window's partial minutes at either edge are counted
/// from the per-start records ([`split_at_minutes`]), so answers are exact at any window.
///
/// [`split_at_minutes`]: remote_storage_core::dependencies::split_at_minutes
pub(crate) use remote_storage_core::dependencies::MINUTE_NANOS;
/// Minutes per block record: four hours, as posting buckets. A write batch writes one block
/// record per partition and block it adds calls to; folds later replace a block's records by
/// one, leaving a tombstone per replaced record that reads skip until compaction drops it, so
/// wider blocks mean fewer of both.
pub(crate) const MINUTES_PER_RECORD: u64 = 240;

/// The block (record) of a minute.
pub(crate) fn block_of(minute: u64) -> u32 {
    u32::try_from(minute / MINUTES_PER_RECORD).unwrap_or(u32::MAX)
}

/// Where a call delta is recorded and what it counts: the partition holding the record, the
/// callee's start, the parent's service and the child's.
pub(crate) type CallKey = (PartitionId, u64, Arc<str>, Arc<str>);

/// One delta of a record: a position (a minute, or a start in nanoseconds), the parent's
/// service, the child's, and the change in calls.
pub(crate) type Entry = (u64, Arc<str>, Arc<str>, i64);

/// The records of one write batch's call deltas.
#[derive(Debug, Default)]
pub(crate) struct CallRecords {
    /// By (partition, block): deltas per minute.
    pub(crate) blocks: HashMap<(PartitionId, u32), Vec<Entry>>,
    /// By (partition, minute): deltas per callee start.
    pub(crate) minutes: HashMap<(PartitionId, u32), Vec<Entry>>,
}

/// The call deltas of one write batch.
#[derive(Debug, Default)]
pub(crate) struct CallDeltas {
    deltas: HashMap<CallKey, i64>,
}

impl CallDeltas {
    pub(crate) fn add(&mut self, key: CallKey, delta: i64) {
        *self.deltas.entry(key).or_default() += delta;
    }

    /// The non-zero deltas as records: summed per minute in block records (what whole minutes
    /// are read from), and kept per callee start in minute records (what a window's partial
    /// minutes are read from).
    pub(crate) fn records(self) -> CallRecords {
        let mut by_minute: HashMap<CallKey, i64> = HashMap::new();
        let mut records = CallRecords::default();
        for ((partition, start, parent, child), delta) in self.deltas {
            if delta == 0 {
                continue;
            }
            let minute = start / MINUTE_NANOS;
            *by_minute
                .entry((partition, minute, Arc::clone(&parent), Arc::clone(&child)))
                .or_default() += delta;
            records
                .minutes
                .entry((partition, minute_of(start)))
                .or_default()
                .push((start, parent, child, delta));
        }
        for ((partition, minute, parent, child), delta) in by_minute {
            if delta != 0 {
                records
                    .blocks
                    .entry((partition, block_of(minute)))
                    .or_default()
                    .push((minute, parent, child, delta));
            }
        }
        records
    }
}

/// The minute (as a record key) of a time.
pub(crate) fn minute_of(nanos: u64) -> u32 {
    u32::try_from(nanos / MINUTE_NANOS).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_that_cancel_write_nothing() {
        let partition = PartitionId::for_time(0, 3_600);
        let service: Arc<str> = Arc::from("svc");
        let mut deltas = CallDeltas::default();
        let start = 61 * MINUTE_NANOS + 5;
        let key = (partition, start, Arc::clone(&service), Arc::clone(&service));
        deltas.add(key.clone(), 1);
        deltas.add(key, -1);
        // Two calls in minute 2, one moved away from minute 3 and one to it: the minute sums
        // to zero, the starts do not.
        deltas.add(
            (
                partition,
                2 * MINUTE_NANOS,
                Arc::clone(&service),
                Arc::clone(&service),
            ),
            2,
        );
        deltas.add(
            (
                partition,
                3 * MINUTE_NANOS,
                Arc::clone(&service),
                Arc::clone(&service),
            ),
            -1,
        );
        deltas.add(
            (
                partition,
                3 * MINUTE_NANOS + 1,
                Arc::clone(&service),
                service,
            ),
            1,
        );
        let records = deltas.records();
        assert_eq!(records.blocks.len(), 1);
        assert_eq!(records.blocks[&(partition, 0)].len(), 1);
        assert_eq!(records.minutes.len(), 2);
        assert_eq!(records.minutes[&(partition, 3)].len(), 2);
    }
}
