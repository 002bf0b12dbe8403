//! Settings of the Cassandra backend, each default written once.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use remote_storage_core::StoreError;

/// Consistency of reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// One replica.
    One,
    /// One replica in the local data centre.
    LocalOne,
    /// A majority of replicas in the local data centre (the default). A write acknowledged at
    /// `LOCAL_QUORUM` and a read at `LOCAL_QUORUM` share a replica, so an acknowledged Export
    /// is readable at once, and one replica down per data centre (with 3 replicas) changes
    /// nothing. `LOCAL_ONE`, Jaeger's default, can answer a read from a replica the write has
    /// not reached yet.
    #[default]
    LocalQuorum,
    /// A majority of all replicas.
    Quorum,
    /// A majority in every data centre.
    EachQuorum,
    /// Every replica.
    All,
}

impl Consistency {
    /// The CQL name, as `--cassandra.consistency` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::One => "ONE",
            Self::LocalOne => "LOCAL_ONE",
            Self::LocalQuorum => "LOCAL_QUORUM",
            Self::Quorum => "QUORUM",
            Self::EachQuorum => "EACH_QUORUM",
            Self::All => "ALL",
        }
    }

    /// Whether a write and a later read at this level always share a replica (with the same
    /// level for both), so a write is visible as soon as it is acknowledged.
    pub fn reads_own_writes(self) -> bool {
        !matches!(self, Self::One | Self::LocalOne)
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let all = [
            Self::One,
            Self::LocalOne,
            Self::LocalQuorum,
            Self::Quorum,
            Self::EachQuorum,
            Self::All,
        ];
        all.into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|level| level.as_str()).collect();
                format!("consistency {text:?} is not one of {}", names.join(", "))
            })
    }
}

/// A password, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// TLS towards the cluster: the CA to trust, and a client certificate when the cluster asks
/// for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the certificate authorities to trust.
    pub ca: PathBuf,
    /// PEM file of the client certificate (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key: Option<PathBuf>,
}

/// Everything the Cassandra backend is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CassandraConfig {
    /// Contact points, `host[:port]`.
    pub servers: Vec<String>,
    /// Keyspace of every table.
    pub keyspace: String,
    /// The local data centre (`LOCAL_*` consistency, and routing); `None`: any.
    pub local_dc: Option<String>,
    /// User name for password authentication.
    pub username: Option<String>,
    /// Its password (read from `--cassandra.password-file`).
    pub password: Option<Password>,
    /// TLS; `None`: plain connections.
    pub tls: Option<TlsFiles>,
    /// Consistency of reads and writes.
    pub consistency: Consistency,
    /// How long spans are kept (the TTL of every row).
    pub retention: Duration,
    /// Create the keyspace and apply the schema at start-up.
    pub create_schema: bool,
    /// Replication of a keyspace this backend creates (a CQL map).
    pub replication: String,
    /// Width of an index time bucket.
    pub bucket: Duration,
    /// Shards per bucket of every index.
    pub shards: u16,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on one request.
    pub request_timeout: Duration,
}

impl CassandraConfig {
    /// Keyspace by default.
    pub const DEFAULT_KEYSPACE: &str = "jaeger_remote_storage";
    /// Contact point when none is given.
    pub const DEFAULT_SERVER: &str = "127.0.0.1:9042";
    /// How long spans are kept by default.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
    /// Replication of a created keyspace by default: one copy, for a single node. Production
    /// clusters pass e.g. `{'class': 'NetworkTopologyStrategy', 'dc1': 3}`.
    pub const DEFAULT_REPLICATION: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
    /// Index bucket width by default. With [`Self::DEFAULT_SHARDS`] an index partition holds
    /// at most 56 × (spans per second) rows: 562,500 rows (about 60 MB at an estimated 100 bytes per row) at 10,000 spans/s (see
    /// [`crate::buckets::Buckets::rows_per_partition`]); raise the shards for more.
    pub const DEFAULT_BUCKET: Duration = Duration::from_secs(900);
    /// Shards per bucket by default.
    pub const DEFAULT_SHARDS: u16 = 16;
    /// Most shards per bucket: a search reads every shard of a bucket.
    pub const MAX_SHARDS: u16 = 1_024;
    /// Connect timeout by default.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Request timeout by default.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// Defaults, against `server`.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            servers: vec![server.into()],
            keyspace: Self::DEFAULT_KEYSPACE.to_owned(),
            local_dc: None,
            username: None,
            password: None,
            tls: None,
            consistency: Consistency::default(),
            retention: Self::DEFAULT_RETENTION,
            create_schema: true,
            replication: Self::DEFAULT_REPLICATION.to_owned(),
            bucket: Self::DEFAULT_BUCKET,
            shards: Self::DEFAULT_SHARDS,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Refuses settings that cannot work, naming the flag.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |flag: &str, why: String| {
            Err(StoreError::invalid_argument(format!(
                "--cassandra.{flag}: {why}"
            )))
        };
        if self.servers.iter().all(|server| server.trim().is_empty()) {
            return invalid("servers", "no contact point given".to_owned());
        }
        if !is_identifier(&self.keyspace) {
            return invalid(
                "keyspace",
                format!(
                    "{:?} is not a keyspace name (letters, digits and _, at most 48, not \
                     starting with a digit)",
                    self.keyspace
                ),
            );
        }
        if !(1..=Self::MAX_SHARDS).contains(&self.shards) {
            return invalid(
                "shards",
                format!("{} must be between 1 and {}", self.shards, Self::MAX_SHARDS),
            );
        }
        let bucket = self.bucket.as_secs();
        if bucket == 0 || self.bucket.subsec_nanos() != 0 || 86_400 % bucket != 0 {
            return invalid(
                "bucket",
                format!(
                    "{:?} must be a whole number of seconds dividing a day",
                    self.bucket
                ),
            );
        }
        // CQL TTLs are at most 20 years, and a TTL of 0 means "forever".
        let retention = self.retention.as_secs();
        if retention == 0 || retention > 630_720_000 {
            return invalid(
                "retention",
                format!("{:?} must be between 1s and 20 years", self.retention),
            );
        }
        if retention < bucket {
            return invalid(
                "retention",
                format!(
                    "{:?} is shorter than one bucket ({:?})",
                    self.retention, self.bucket
                ),
            );
        }
        if self.username.is_some() != self.password.is_some() {
            return invalid(
                "username",
                "--cassandra.username and --cassandra.password-file go together".to_owned(),
            );
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return invalid(
                "tls.cert",
                "--cassandra.tls.cert and --cassandra.tls.key go together".to_owned(),
            );
        }
        let replication = self.replication.trim();
        if !(replication.starts_with('{') && replication.ends_with('}')) {
            return invalid(
                "replication",
                format!(
                    "{replication:?} is not a CQL map such as {}",
                    Self::DEFAULT_REPLICATION
                ),
            );
        }
        Ok(())
    }
}

/// A CQL identifier that needs no quoting.
pub(crate) fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_name_their_flag() {
        let config = CassandraConfig::new("127.0.0.1");
        config.validate().unwrap();
        let refused = |change: fn(&mut CassandraConfig), flag: &str| {
            let mut config = CassandraConfig::new("127.0.0.1");
            change(&mut config);
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(&format!("--cassandra.{flag}")), "{error}");
        };
        refused(|c| c.servers = vec![String::new()], "servers");
        refused(|c| c.keyspace = "1abc".into(), "keyspace");
        refused(|c| c.keyspace = "a-b".into(), "keyspace");
        refused(|c| c.shards = 0, "shards");
        refused(|c| c.shards = 5_000, "shards");
        refused(|c| c.bucket = Duration::from_secs(7 * 3_600), "bucket");
        refused(|c| c.bucket = Duration::from_millis(1_500), "bucket");
        refused(|c| c.retention = Duration::ZERO, "retention");
        refused(|c| c.retention = Duration::from_secs(60), "retention");
        refused(|c| c.replication = "SimpleStrategy".into(), "replication");
    }

    #[test]
    fn consistency_levels_parse_in_any_case_and_say_which_read_their_writes() {
        assert_eq!("local_quorum".parse(), Ok(Consistency::LocalQuorum));
        assert_eq!("ALL".parse(), Ok(Consistency::All));
        assert!(
            "TWO"
                .parse::<Consistency>()
                .unwrap_err()
                .contains("LOCAL_QUORUM")
        );
        assert_eq!(Consistency::default().to_string(), "LOCAL_QUORUM");
        assert!(Consistency::LocalQuorum.reads_own_writes());
        assert!(!Consistency::LocalOne.reads_own_writes());
    }
}
