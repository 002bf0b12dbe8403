//! Time buckets and shards: every index partition key holds a bucket (span start time divided
//! by the bucket width) and a shard (a hash of the span's document ID modulo the shard count),
//! so a partition only ever receives the spans of one bucket's width, spread over the shards:
//! its size is bounded by `span rate × bucket width / shards`, whatever the total data.

use remote_storage_core::UnixNanos;
use xxhash_rust::xxh3::xxh3_64;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Bucket width and shard count of every index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    width_seconds: u64,
    /// Positive (CQL `smallint` is signed).
    shards: i16,
}

impl Buckets {
    /// `width_seconds` ≥ 1 and `shards` in 1 ..= 32,767 (as `CassandraConfig::validate`
    /// ensures; values outside are brought to the nearest bound).
    pub fn new(width_seconds: u64, shards: u16) -> Self {
        Self {
            width_seconds: width_seconds.max(1),
            shards: i16::try_from(shards.max(1)).unwrap_or(i16::MAX),
        }
    }

    /// The bucket of a span starting at `start`: whole widths since the epoch.
    pub fn bucket_of(&self, start: UnixNanos) -> i64 {
        i64::try_from(start.0 / NANOS_PER_SECOND / self.width_seconds).unwrap_or(i64::MAX)
    }

    /// The shard of a span document, from its ID: spans spread evenly, and a re-written span
    /// lands on the row it wrote before.
    pub fn shard_of(&self, document_id: &[u8]) -> i16 {
        let remainder = xxh3_64(document_id) % u64::from(self.shards.unsigned_abs());
        // Below `shards`, so it fits.
        i16::try_from(remainder).unwrap_or(0)
    }

    /// The start times a bucket holds: its first and last nanosecond, inclusive.
    pub fn span_of(&self, bucket: i64) -> (UnixNanos, UnixNanos) {
        let width = self.width_seconds * NANOS_PER_SECOND;
        let first = u64::try_from(bucket).unwrap_or(0).saturating_mul(width);
        (UnixNanos(first), UnixNanos(first.saturating_add(width - 1)))
    }

    /// Every shard number.
    pub fn shards(&self) -> impl Iterator<Item = i16> + Clone {
        0..self.shards
    }

    /// The buckets that can hold spans starting in `min ..= max`, newest first (the order
    /// searches walk them in). An empty window (`min > max`) has none.
    pub fn newest_first(&self, min: UnixNanos, max: UnixNanos) -> impl Iterator<Item = i64> {
        let (first, last) = (self.bucket_of(min), self.bucket_of(max));
        (first..=last).rev()
    }

    /// The most rows an index partition receives at `spans_per_second` (each span writes at
    /// most one row per index partition key).
    pub fn rows_per_partition(&self, spans_per_second: u64) -> u64 {
        (spans_per_second * self.width_seconds).div_ceil(u64::from(self.shards.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = NANOS_PER_SECOND;

    #[test]
    fn buckets_are_whole_widths_and_walked_newest_first() {
        let buckets = Buckets::new(900, 16);
        assert_eq!(buckets.bucket_of(UnixNanos(0)), 0);
        assert_eq!(buckets.bucket_of(UnixNanos(899 * SECOND + 999)), 0);
        assert_eq!(buckets.bucket_of(UnixNanos(900 * SECOND)), 1);
        let walked: Vec<i64> = buckets
            .newest_first(UnixNanos(1_000 * SECOND), UnixNanos(3_600 * SECOND))
            .collect();
        assert_eq!(walked, [4, 3, 2, 1]);
        assert_eq!(
            buckets
                .newest_first(UnixNanos(3_600 * SECOND), UnixNanos(SECOND))
                .count(),
            0
        );
    }

    #[test]
    fn a_bucket_spans_its_width_inclusively() {
        let buckets = Buckets::new(900, 16);
        let (first, last) = buckets.span_of(2);
        assert_eq!(first, UnixNanos(1_800 * SECOND));
        assert_eq!(last, UnixNanos(2_700 * SECOND - 1));
        assert_eq!(buckets.bucket_of(first), 2);
        assert_eq!(buckets.bucket_of(last), 2);
    }

    #[test]
    fn shards_spread_documents_and_are_stable() {
        let buckets = Buckets::new(900, 16);
        let mut seen = [0u32; 16];
        for id in 0u32..16_000 {
            let shard = buckets.shard_of(&id.to_le_bytes());
            assert_eq!(shard, buckets.shard_of(&id.to_le_bytes()));
            seen[usize::try_from(shard).unwrap()] += 1;
        }
        assert!(
            seen.iter().all(|&count| (800..1_200).contains(&count)),
            "{seen:?}"
        );
        assert_eq!(buckets.shards().count(), 16);
    }

    #[test]
    fn the_partition_bound_is_rate_times_width_over_shards() {
        assert_eq!(Buckets::new(900, 16).rows_per_partition(10_000), 562_500);
        assert_eq!(Buckets::new(3_600, 1).rows_per_partition(1), 3_600);
        assert_eq!(Buckets::new(0, 0), Buckets::new(1, 1));
    }
}
