//! The Cassandra backend's command-line flags (`--cassandra.*`, feature `cli`).

use std::path::PathBuf;

use remote_storage_core::StoreError;
use remote_storage_core::secret_file::read_secret_file;
use remote_storage_core::units::HumanDuration;

use crate::config::{CassandraConfig, Consistency, Password, TlsFiles};

/// Flags of the Cassandra backend. Every flag also reads
/// `JAEGER_REMOTE_STORAGE_CASSANDRA_<NAME>`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Cassandra / ScyllaDB backend (--backend cassandra)")]
pub struct CassandraArgs {
    /// Contact points, `host[:port]` (port 9042 by default), comma-separated.
    #[arg(
        id = "cassandra.servers",
        long = "cassandra.servers",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_SERVERS",
        value_delimiter = ',',
        default_value = CassandraConfig::DEFAULT_SERVER
    )]
    pub servers: Vec<String>,

    /// Keyspace of the tables.
    #[arg(
        id = "cassandra.keyspace",
        long = "cassandra.keyspace",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_KEYSPACE",
        default_value = CassandraConfig::DEFAULT_KEYSPACE
    )]
    pub keyspace: String,

    /// The local data centre (for `LOCAL_*` consistency and routing).
    #[arg(
        id = "cassandra.local-dc",
        long = "cassandra.local-dc",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_LOCAL_DC"
    )]
    pub local_dc: Option<String>,

    /// User name (password authentication, with --cassandra.password-file).
    #[arg(
        id = "cassandra.username",
        long = "cassandra.username",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_USERNAME"
    )]
    pub username: Option<String>,

    /// File holding the password.
    #[arg(
        id = "cassandra.password-file",
        long = "cassandra.password-file",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_PASSWORD_FILE"
    )]
    pub password_file: Option<PathBuf>,

    /// PEM file of the certificate authorities to trust: connects with TLS.
    #[arg(
        id = "cassandra.tls.ca",
        long = "cassandra.tls.ca",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_TLS_CA"
    )]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate (with --cassandra.tls.key).
    #[arg(
        id = "cassandra.tls.cert",
        long = "cassandra.tls.cert",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of the client certificate.
    #[arg(
        id = "cassandra.tls.key",
        long = "cassandra.tls.key",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Consistency of reads and writes. LOCAL_QUORUM (the default): an acknowledged write is
    /// readable at once, and one replica of three may be down.
    #[arg(
        id = "cassandra.consistency",
        long = "cassandra.consistency",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_CONSISTENCY",
        default_value_t = Consistency::default()
    )]
    pub consistency: Consistency,

    /// How long spans are kept (the TTL of every row).
    #[arg(
        id = "cassandra.retention",
        value_name = "DURATION",
        long = "cassandra.retention",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_RETENTION",
        default_value_t = HumanDuration(CassandraConfig::DEFAULT_RETENTION)
    )]
    pub retention: HumanDuration,

    /// Create the keyspace and apply the schema at start-up (`false`: it must exist).
    #[arg(
        id = "cassandra.create-schema",
        long = "cassandra.create-schema",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_CREATE_SCHEMA",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub create_schema: bool,

    /// Replication of a keyspace created here, a CQL map, e.g.
    /// `{'class': 'NetworkTopologyStrategy', 'dc1': 3}`.
    #[arg(
        id = "cassandra.replication",
        long = "cassandra.replication",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_REPLICATION",
        default_value = CassandraConfig::DEFAULT_REPLICATION
    )]
    pub replication: String,

    /// Width of an index time bucket (divides a day). With --cassandra.shards it bounds
    /// every index partition: rows ≤ spans/s × bucket ÷ shards.
    #[arg(
        id = "cassandra.bucket",
        value_name = "DURATION",
        long = "cassandra.bucket",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_BUCKET",
        default_value_t = HumanDuration(CassandraConfig::DEFAULT_BUCKET)
    )]
    pub bucket: HumanDuration,

    /// Shards per bucket of every index.
    #[arg(
        id = "cassandra.shards",
        long = "cassandra.shards",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_SHARDS",
        default_value_t = CassandraConfig::DEFAULT_SHARDS
    )]
    pub shards: u16,

    /// Bound on establishing a connection.
    #[arg(
        id = "cassandra.connect-timeout",
        long = "cassandra.connect-timeout",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_CONNECT_TIMEOUT",
        default_value_t = HumanDuration(CassandraConfig::DEFAULT_CONNECT_TIMEOUT)
    )]
    pub connect_timeout: HumanDuration,

    /// Bound on one request.
    #[arg(
        id = "cassandra.request-timeout",
        long = "cassandra.request-timeout",
        env = "JAEGER_REMOTE_STORAGE_CASSANDRA_REQUEST_TIMEOUT",
        default_value_t = HumanDuration(CassandraConfig::DEFAULT_REQUEST_TIMEOUT)
    )]
    pub request_timeout: HumanDuration,
}

impl TryFrom<&CassandraArgs> for CassandraConfig {
    type Error = StoreError;

    /// The settings the flags describe, validated; errors name the flag.
    fn try_from(args: &CassandraArgs) -> Result<Self, Self::Error> {
        let password = match &args.password_file {
            Some(path) => Some(Password(read_secret_file(
                path,
                "--cassandra.password-file",
            )?)),
            None => None,
        };
        let tls = match (&args.tls_ca, &args.tls_cert, &args.tls_key) {
            (Some(ca), cert, key) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, None) => None,
            (None, _, _) => {
                return Err(StoreError::invalid_argument(
                    "--cassandra.tls.cert/--cassandra.tls.key need --cassandra.tls.ca",
                ));
            }
        };
        let config = Self {
            servers: args.servers.clone(),
            keyspace: args.keyspace.clone(),
            local_dc: args.local_dc.clone(),
            username: args.username.clone(),
            password,
            tls,
            consistency: args.consistency,
            retention: args.retention.get(),
            create_schema: args.create_schema,
            replication: args.replication.clone(),
            bucket: args.bucket.get(),
            shards: args.shards,
            connect_timeout: args.connect_timeout.get(),
            request_timeout: args.request_timeout.get(),
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
        cassandra: CassandraArgs,
    }

    fn config(arguments: &[&str]) -> Result<CassandraConfig, String> {
        let all = std::iter::once("test").chain(arguments.iter().copied());
        let command = Command::try_parse_from(all).map_err(|error| error.to_string())?;
        CassandraConfig::try_from(&command.cassandra).map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_are_the_config_defaults_and_flags_set_every_field() {
        assert_eq!(
            config(&[]).unwrap(),
            CassandraConfig::new(CassandraConfig::DEFAULT_SERVER)
        );
        let dir = std::env::temp_dir().join(format!("cassandra-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = dir.join("password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let password_flag = format!("--cassandra.password-file={}", password.display());
        let cassandra = config(&[
            "--cassandra.servers=a:9042,b",
            "--cassandra.keyspace=traces",
            "--cassandra.local-dc=dc1",
            "--cassandra.username=jaeger",
            &password_flag,
            "--cassandra.consistency=local_one",
            "--cassandra.retention=2d",
            "--cassandra.create-schema=false",
            "--cassandra.bucket=1h",
            "--cassandra.shards=32",
        ])
        .unwrap();
        assert_eq!(cassandra.servers, ["a:9042", "b"]);
        assert_eq!(cassandra.keyspace, "traces");
        assert_eq!(cassandra.local_dc.as_deref(), Some("dc1"));
        assert_eq!(cassandra.password, Some(Password("s3cret".into())));
        assert!(!format!("{cassandra:?}").contains("s3cret"), "never logged");
        assert_eq!(cassandra.consistency, Consistency::LocalOne);
        assert_eq!(cassandra.retention, Duration::from_secs(2 * 86_400));
        assert!(!cassandra.create_schema);
        assert_eq!(cassandra.bucket, Duration::from_secs(3_600));
        assert_eq!(cassandra.shards, 32);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (flag, named) in [
            ("--cassandra.shards=0", "cassandra.shards"),
            ("--cassandra.bucket=7h", "cassandra.bucket"),
            ("--cassandra.keyspace=a-b", "cassandra.keyspace"),
            ("--cassandra.username=x", "cassandra.username"),
            ("--cassandra.tls.cert=c.pem", "cassandra.tls.ca"),
            (
                "--cassandra.password-file=/nonexistent/p",
                "cassandra.password-file",
            ),
        ] {
            let error = config(&[flag]).unwrap_err();
            assert!(error.contains(named), "{flag}: {error}");
        }
    }
}
