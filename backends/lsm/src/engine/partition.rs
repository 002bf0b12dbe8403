//! A time partition: its ID and keyspace naming, its two keyspaces and how they are
//! configured, and the approximate counts persisted with it. The engine ([`super`]) creates,
//! finds and drops partitions; reads and writes use their keyspaces directly.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use fjall::config::{BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions};
use parking_lot::Mutex;

use crate::error::LsmError;
use crate::keys;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

const SPANS_KIND: &str = "spans";
const INDEX_KIND: &str = "index";

/// A time partition: spans whose start lies in `[start, start + span)` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PartitionId {
    pub(crate) start_secs: u64,
    pub(crate) span_secs: u64,
}

impl PartitionId {
    pub(crate) fn for_time(nanos: u64, span_secs: u64) -> Self {
        let seconds = nanos / NANOS_PER_SECOND;
        Self {
            start_secs: seconds - seconds % span_secs,
            span_secs,
        }
    }

    pub(crate) fn start_nanos(&self) -> u64 {
        self.start_secs.saturating_mul(NANOS_PER_SECOND)
    }

    /// Exclusive end.
    pub(crate) fn end_nanos(&self) -> u64 {
        self.start_secs
            .saturating_add(self.span_secs)
            .saturating_mul(NANOS_PER_SECOND)
    }

    /// Whether a span starting in `min..=max` may live here.
    pub(crate) fn overlaps(&self, min: u64, max: u64) -> bool {
        self.start_nanos() <= max && self.end_nanos() > min
    }

    /// `p<start seconds>-<width seconds>-<kind>`, zero-padded so names sort by time.
    fn keyspace_name(&self, kind: &str) -> String {
        format!("p{:012}-{:08}-{kind}", self.start_secs, self.span_secs)
    }

    pub(super) fn parse(name: &str) -> Option<(Self, &str)> {
        let mut parts = name.strip_prefix('p')?.splitn(3, '-');
        let start_secs = parts.next()?.parse().ok()?;
        let span_secs: u64 = parts.next()?.parse().ok()?;
        let kind = parts.next()?;
        (span_secs > 0).then_some((
            Self {
                start_secs,
                span_secs,
            },
            kind,
        ))
    }
}

/// Approximate counts of one partition, persisted in its `Z` record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) spans: u64,
    /// Root spans written: a trace is counted where its root lands.
    pub(crate) traces: u64,
}

impl Counts {
    pub(super) fn encode(self) -> Vec<u8> {
        let mut value = Vec::with_capacity(16);
        value.extend_from_slice(&self.spans.to_be_bytes());
        value.extend_from_slice(&self.traces.to_be_bytes());
        value
    }

    fn decode(value: &[u8]) -> Self {
        let read = |range: std::ops::Range<usize>| {
            value
                .get(range)
                .and_then(|bytes| bytes.try_into().ok())
                .map_or(0, u64::from_be_bytes)
        };
        Self {
            spans: read(0..8),
            traces: read(8..16),
        }
    }
}

/// One time partition's keyspaces: `spans` (span groups) and `index` (everything else).
pub(crate) struct Partition {
    pub(crate) id: PartitionId,
    pub(crate) spans: Keyspace,
    pub(crate) index: Keyspace,
    /// Keys of once-per-partition records (resources, scopes, services, operations) already
    /// committed, so a write does not repeat them.
    pub(super) written: Mutex<HashSet<Vec<u8>>>,
    pub(super) counts: Mutex<Counts>,
    /// Call records may have been added since the last fold (true after open: unknown).
    pub(super) unfolded_calls: AtomicBool,
}

impl Partition {
    /// Opens (or creates) the two keyspaces of partition `id` and reads its counts record. New
    /// keyspaces get `memtable_size_bytes` memtables; fjall keeps an existing one's size.
    pub(super) fn open(
        db: &Database,
        id: PartitionId,
        memtable_size_bytes: u64,
    ) -> Result<Self, LsmError> {
        // Span groups are lz4-compressed already, so neither tables nor blob files compress
        // them again. Groups over 1 KiB go to blob files, so compaction moves only small keys.
        // Reads find groups by prefix scans, which bloom filters do not serve.
        let spans = db.keyspace(&id.keyspace_name(SPANS_KIND), || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(memtable_size_bytes)
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
                .filter_policy(FilterPolicy::disabled())
                .with_kv_separation(Some(
                    KvSeparationOptions::default().compression(CompressionType::None),
                ))
        })?;
        // Index entries compress well at every level. They are read by range scans, except
        // trace markers, which a write looks up in every partition for each trace it does
        // not remember: bloom filters make a miss cost no block read (about 1.25 bytes per
        // index record, and index records are few per span).
        let index = db.keyspace(&id.keyspace_name(INDEX_KIND), || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(memtable_size_bytes)
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                .filter_policy(FilterPolicy::all(FilterPolicyEntry::Bloom(
                    BloomConstructionPolicy::BitsPerKey(10.0),
                )))
        })?;
        let counts = index
            .get(keys::counts_key())?
            .map(|value| Counts::decode(&value))
            .unwrap_or_default();
        Ok(Self {
            id,
            spans,
            index,
            written: Mutex::new(HashSet::new()),
            counts: Mutex::new(counts),
            unfolded_calls: AtomicBool::new(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_and_sort_by_time() {
        let early = PartitionId::for_time(3_600 * NANOS_PER_SECOND + 5, 3_600);
        assert_eq!(early.start_secs, 3_600);
        let late = PartitionId::for_time(36_000 * NANOS_PER_SECOND, 3_600);
        let early_name = early.keyspace_name(INDEX_KIND);
        let late_name = late.keyspace_name(INDEX_KIND);
        assert!(early_name < late_name);
        assert_eq!(PartitionId::parse(&early_name), Some((early, INDEX_KIND)));
        assert_eq!(PartitionId::parse("meta"), None);
        assert!(early.overlaps(early.start_nanos(), early.start_nanos()));
        assert!(!early.overlaps(early.end_nanos(), u64::MAX));
    }
}
