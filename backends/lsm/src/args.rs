//! The LSM backend's command-line flags (`--lsm.*`, feature `cli`).

use std::path::PathBuf;

use remote_storage_core::StoreError;
use remote_storage_core::units::{ByteSize, HumanDuration};

use crate::config::{LsmConfig, StorageLocation, SyncPolicy};

/// Flags of the LSM backend. Every flag also reads `JAEGER_REMOTE_STORAGE_LSM_<NAME>`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "LSM backend (--backend lsm)")]
pub struct LsmArgs {
    /// Data directory (created if missing). Required with `--backend lsm` unless
    /// `--lsm.ephemeral` is given.
    #[arg(long = "lsm.data-dir", env = "JAEGER_REMOTE_STORAGE_LSM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Use a fresh temporary directory, deleted on exit (for tests and demos).
    #[arg(
        long = "lsm.ephemeral",
        env = "JAEGER_REMOTE_STORAGE_LSM_EPHEMERAL",
        conflicts_with = "data_dir"
    )]
    pub ephemeral: bool,

    /// How long spans are kept (e.g. 72h, 7d); whole time partitions are dropped once
    /// expired, freeing their disk space. `0` keeps data forever.
    #[arg(
        id = "lsm.retention",
        value_name = "DURATION",
        long = "lsm.retention",
        env = "JAEGER_REMOTE_STORAGE_LSM_RETENTION",
        default_value_t = HumanDuration(LsmConfig::DEFAULT_RETENTION)
    )]
    pub retention: HumanDuration,

    /// Width of one time partition (e.g. 1h); by default a sixth of the retention, between 1h
    /// and 1d.
    #[arg(
        id = "lsm.partition-span",
        value_name = "DURATION",
        long = "lsm.partition-span",
        env = "JAEGER_REMOTE_STORAGE_LSM_PARTITION_SPAN"
    )]
    pub partition_span: Option<HumanDuration>,

    /// When writes are fsynced. `batch`: before each Export is acknowledged (survives power
    /// loss); `periodic` or `periodic:<ms>`: from a background thread (a process crash still
    /// loses nothing; power loss may lose up to one interval).
    #[arg(
        long = "lsm.sync",
        env = "JAEGER_REMOTE_STORAGE_LSM_SYNC",
        default_value_t = LsmConfig::DEFAULT_SYNC
    )]
    pub sync: SyncPolicy,

    /// Block cache size (bytes or with a unit, e.g. 256MiB).
    #[arg(
        long = "lsm.cache-size",
        env = "JAEGER_REMOTE_STORAGE_LSM_CACHE_SIZE",
        default_value_t = ByteSize(LsmConfig::DEFAULT_CACHE_SIZE_BYTES)
    )]
    pub cache_size: ByteSize,

    /// Memtable size per keyspace (e.g. 16MiB): bounds the memory writes take (a partition
    /// being written holds two), applies to partitions created from then on.
    #[arg(
        long = "lsm.memtable-size",
        env = "JAEGER_REMOTE_STORAGE_LSM_MEMTABLE_SIZE",
        default_value_t = ByteSize(LsmConfig::DEFAULT_MEMTABLE_SIZE_BYTES)
    )]
    pub memtable_size: ByteSize,
}

impl TryFrom<&LsmArgs> for LsmConfig {
    type Error = StoreError;

    /// The settings the flags describe, validated; errors name the flag.
    fn try_from(args: &LsmArgs) -> Result<Self, Self::Error> {
        let location = match (&args.data_dir, args.ephemeral) {
            (Some(directory), _) => StorageLocation::Directory(directory.clone()),
            (None, true) => StorageLocation::Ephemeral,
            (None, false) => {
                return Err(StoreError::invalid_argument(
                    "--backend lsm needs --lsm.data-dir DIR (or --lsm.ephemeral)",
                ));
            }
        };
        let config = Self {
            location,
            retention: args.retention.get(),
            partition_span: args.partition_span.map(HumanDuration::get),
            sync: args.sync,
            cache_size_bytes: args.cache_size.bytes(),
            memtable_size_bytes: args.memtable_size.bytes(),
            ..Self::default()
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        lsm: LsmArgs,
    }

    fn config(arguments: &[&str]) -> Result<LsmConfig, String> {
        let command =
            Command::try_parse_from(std::iter::once("test").chain(arguments.iter().copied()))
                .map_err(|error| error.to_string())?;
        LsmConfig::try_from(&command.lsm).map_err(|error| error.to_string())
    }

    #[test]
    fn flags_build_the_config_and_defaults_are_the_config_defaults() {
        let lsm = config(&[
            "--lsm.data-dir=/var/lib/traces",
            "--lsm.retention=7d",
            "--lsm.sync=periodic:250",
            "--lsm.cache-size=256MiB",
            "--lsm.memtable-size=8MiB",
        ])
        .unwrap();
        assert_eq!(
            lsm.location,
            StorageLocation::Directory(PathBuf::from("/var/lib/traces"))
        );
        assert_eq!(lsm.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(lsm.sync, SyncPolicy::Periodic(Duration::from_millis(250)));
        assert_eq!(lsm.cache_size_bytes, 256 << 20);
        assert_eq!(lsm.memtable_size_bytes, 8 << 20);

        let ephemeral = config(&["--lsm.ephemeral"]).unwrap();
        assert_eq!(ephemeral, LsmConfig::default());
        let forever = config(&["--lsm.ephemeral", "--lsm.retention=0"]).unwrap();
        assert_eq!(forever.retention, Duration::ZERO);
    }

    #[test]
    fn a_location_and_a_known_sync_policy_are_required() {
        assert!(config(&[]).unwrap_err().contains("--lsm.data-dir"));
        assert!(
            config(&["--lsm.ephemeral", "--lsm.sync=sometimes"])
                .unwrap_err()
                .contains("lsm.sync")
        );
        assert!(config(&["--lsm.ephemeral", "--lsm.data-dir=/x"]).is_err());
        assert!(
            config(&["--lsm.ephemeral", "--lsm.partition-span=10ms"])
                .unwrap_err()
                .contains("partition-span")
        );
    }
}
