//! LSM backend settings.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use remote_storage_core::StoreError;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A directory that persists across restarts (created if missing).
    Directory(PathBuf),
    /// A fresh temporary directory, deleted when the store is dropped.
    Ephemeral,
}

/// When written data is forced to disk (fsync).
///
/// Either way a write is atomic (one fjall batch per `write_spans` call) and reaches the OS
/// before the call returns, so a crash of the *process* loses nothing; the policy decides what
/// a crash of the *machine* can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `persist(SyncAll)` after every write batch, before the write is acknowledged: an
    /// acknowledged Export survives power loss.
    Batch,
    /// `persist(SyncAll)` from a background thread at this interval: up to one interval of
    /// acknowledged writes can be lost on power loss, in exchange for cheaper writes.
    Periodic(Duration),
}

impl SyncPolicy {
    /// Interval used by `periodic` when none is given.
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(1);
}

impl std::fmt::Display for SyncPolicy {
    /// The form [`SyncPolicy::from_str`] parses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Batch => f.write_str("batch"),
            Self::Periodic(period) => write!(f, "periodic:{}", period.as_millis()),
        }
    }
}

impl FromStr for SyncPolicy {
    type Err = StoreError;

    /// `batch`, `periodic` (every second) or `periodic:<milliseconds>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "batch" => Ok(Self::Batch),
            "periodic" => Ok(Self::Periodic(Self::DEFAULT_PERIOD)),
            other => other
                .strip_prefix("periodic:")
                .and_then(|millis| millis.parse::<u64>().ok())
                .filter(|millis| *millis > 0)
                .map(|millis| Self::Periodic(Duration::from_millis(millis)))
                .ok_or_else(|| {
                    StoreError::invalid_argument(format!(
                        "lsm.sync: expected batch, periodic or periodic:<ms>, got {other:?}"
                    ))
                }),
        }
    }
}

/// Settings of the LSM backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsmConfig {
    /// Data directory, or a temporary one.
    pub location: StorageLocation,
    /// How long spans are kept, by span start time. Whole time partitions are dropped once all
    /// of their spans are older than this. `Duration::ZERO` keeps data forever.
    pub retention: Duration,
    /// Width of one time partition; `None` derives it from the retention (see
    /// [`LsmConfig::effective_partition_span`]). Existing partitions keep their own width when
    /// this changes.
    pub partition_span: Option<Duration>,
    /// fsync policy.
    pub sync: SyncPolicy,
    /// Block cache size in bytes.
    pub cache_size_bytes: u64,
    /// Memtable size of each keyspace, in bytes: a partition being written holds up to two
    /// memtables of this size (spans and index) before fjall writes them out as tables, so this
    /// bounds the memory writes take. Fixed per partition when it is created.
    pub memtable_size_bytes: u64,
    /// How often the background task looks for expired partitions.
    pub expiry_interval: Duration,
}

impl Default for LsmConfig {
    fn default() -> Self {
        Self {
            location: StorageLocation::Ephemeral,
            retention: Self::DEFAULT_RETENTION,
            partition_span: None,
            sync: Self::DEFAULT_SYNC,
            cache_size_bytes: Self::DEFAULT_CACHE_SIZE_BYTES,
            memtable_size_bytes: Self::DEFAULT_MEMTABLE_SIZE_BYTES,
            expiry_interval: Duration::from_secs(60),
        }
    }
}

impl LsmConfig {
    /// How long spans are kept by default.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(72 * 3600);
    /// The default fsync policy: every batch, before it is acknowledged.
    pub const DEFAULT_SYNC: SyncPolicy = SyncPolicy::Batch;
    /// The default block cache size.
    pub const DEFAULT_CACHE_SIZE_BYTES: u64 = 64 << 20;
    /// The default memtable size (fjall's own default).
    pub const DEFAULT_MEMTABLE_SIZE_BYTES: u64 = 64 << 20;
    /// The smallest memtable size accepted: below it fjall would write tiny tables constantly.
    pub const MIN_MEMTABLE_SIZE_BYTES: u64 = 1 << 20;

    /// Defaults, stored in `directory`.
    pub fn in_directory(directory: impl Into<PathBuf>) -> Self {
        Self {
            location: StorageLocation::Directory(directory.into()),
            ..Self::default()
        }
    }

    /// Defaults, stored in a temporary directory.
    pub fn ephemeral() -> Self {
        Self::default()
    }

    /// The partition width in use: the configured one, else a sixth of the retention rounded
    /// up to whole hours and kept within 1 h ..= 1 day (72 h → 12 h partitions, so at most one
    /// sixth of the retention is kept beyond it and a lookup touches about seven partitions);
    /// 1 day when data is kept forever.
    pub fn effective_partition_span(&self) -> Duration {
        if let Some(span) = self.partition_span {
            return span;
        }
        if self.retention.is_zero() {
            return DAY;
        }
        let sixth = self.retention.as_secs().div_ceil(6);
        let hours = sixth.div_ceil(HOUR.as_secs()).max(1);
        Duration::from_secs(hours * HOUR.as_secs()).clamp(HOUR, DAY)
    }

    /// Checks the settings, naming the bad key.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.effective_partition_span() < Duration::from_secs(1) {
            return Err(StoreError::invalid_argument(
                "lsm.partition-span must be at least 1s",
            ));
        }
        if let SyncPolicy::Periodic(period) = self.sync
            && period.is_zero()
        {
            return Err(StoreError::invalid_argument(
                "lsm.sync periodic interval must be above zero",
            ));
        }
        if self.memtable_size_bytes < Self::MIN_MEMTABLE_SIZE_BYTES {
            return Err(StoreError::invalid_argument(
                "lsm.memtable-size must be at least 1MiB",
            ));
        }
        if self.expiry_interval.is_zero() {
            return Err(StoreError::invalid_argument(
                "lsm.expiry-interval must be above zero",
            ));
        }
        if let StorageLocation::Directory(path) = &self.location
            && path.as_os_str().is_empty()
        {
            return Err(StoreError::invalid_argument(
                "lsm.data-dir must not be empty",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_span_follows_retention() {
        let with = |hours: u64| LsmConfig {
            retention: Duration::from_secs(hours * 3600),
            ..LsmConfig::default()
        };
        assert_eq!(with(72).effective_partition_span(), 12 * HOUR);
        assert_eq!(with(24).effective_partition_span(), 4 * HOUR);
        assert_eq!(with(1).effective_partition_span(), HOUR);
        assert_eq!(with(24 * 30).effective_partition_span(), DAY);
        assert_eq!(with(0).effective_partition_span(), DAY);
        let explicit = LsmConfig {
            partition_span: Some(Duration::from_secs(5)),
            ..LsmConfig::default()
        };
        assert_eq!(explicit.effective_partition_span(), Duration::from_secs(5));
    }

    #[test]
    fn sync_policies_parse() {
        assert_eq!("batch".parse::<SyncPolicy>().unwrap(), SyncPolicy::Batch);
        assert_eq!(
            "periodic".parse::<SyncPolicy>().unwrap(),
            SyncPolicy::Periodic(SyncPolicy::DEFAULT_PERIOD)
        );
        assert_eq!(
            "periodic:250".parse::<SyncPolicy>().unwrap(),
            SyncPolicy::Periodic(Duration::from_millis(250))
        );
        assert!("sometimes".parse::<SyncPolicy>().is_err());
        assert!("periodic:0".parse::<SyncPolicy>().is_err());
        for policy in [
            SyncPolicy::Batch,
            SyncPolicy::Periodic(Duration::from_millis(250)),
        ] {
            assert_eq!(policy.to_string().parse::<SyncPolicy>().unwrap(), policy);
        }
    }

    #[test]
    fn validation_names_the_key() {
        let bad = LsmConfig {
            partition_span: Some(Duration::from_millis(10)),
            ..LsmConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("partition-span")
        );
        assert!(LsmConfig::default().validate().is_ok());
    }
}
