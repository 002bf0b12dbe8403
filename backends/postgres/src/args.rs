//! The PostgreSQL backend's command-line flags (`--postgres.*`, feature `cli`).

use std::num::NonZeroU32;

use remote_storage_core::StoreError;
use remote_storage_core::units::HumanDuration;

use crate::config::{PartitionSpan, PostgresConfig};

/// Flags of the PostgreSQL backend. Every flag also reads
/// `JAEGER_REMOTE_STORAGE_POSTGRES_<NAME>`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "PostgreSQL backend (--backend postgres)")]
pub struct PostgresArgs {
    /// Connection URL, e.g. `postgres://user:password@host:5432/db?sslmode=require` (TLS is
    /// chosen by `sslmode`). Required with `--backend postgres`.
    #[arg(
        long = "postgres.url",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,

    /// Schema holding the tables (created if missing).
    #[arg(
        long = "postgres.schema",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_SCHEMA",
        default_value = PostgresConfig::DEFAULT_SCHEMA
    )]
    pub schema: String,

    /// Most pooled connections.
    #[arg(
        long = "postgres.max-connections",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_MAX_CONNECTIONS",
        default_value_t = PostgresConfig::DEFAULT_MAX_CONNECTIONS
    )]
    pub max_connections: NonZeroU32,

    /// How long to wait for a new connection.
    #[arg(
        long = "postgres.connect-timeout",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_CONNECT_TIMEOUT",
        default_value_t = HumanDuration(PostgresConfig::DEFAULT_CONNECT_TIMEOUT)
    )]
    pub connect_timeout: HumanDuration,

    /// How long a request waits for a pooled connection.
    #[arg(
        long = "postgres.acquire-timeout",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_ACQUIRE_TIMEOUT",
        default_value_t = HumanDuration(PostgresConfig::DEFAULT_ACQUIRE_TIMEOUT)
    )]
    pub acquire_timeout: HumanDuration,

    /// Statement timeout of each query.
    #[arg(
        long = "postgres.query-timeout",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_QUERY_TIMEOUT",
        default_value_t = HumanDuration(PostgresConfig::DEFAULT_QUERY_TIMEOUT)
    )]
    pub query_timeout: HumanDuration,

    /// How long spans are kept; whole partitions are dropped once expired.
    #[arg(
        id = "postgres.retention",
        value_name = "DURATION",
        long = "postgres.retention",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_RETENTION",
        default_value_t = HumanDuration(PostgresConfig::DEFAULT_RETENTION)
    )]
    pub retention: HumanDuration,

    /// Partition width, `day` or `hour` (fixed when the schema is created).
    #[arg(
        id = "postgres.partition-span",
        value_name = "SPAN",
        long = "postgres.partition-span",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_PARTITION_SPAN",
        default_value_t = PartitionSpan::default()
    )]
    pub partition_span: PartitionSpan,

    /// How often partitions are created ahead and expired ones dropped.
    #[arg(
        long = "postgres.maintenance-interval",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_MAINTENANCE_INTERVAL",
        default_value_t = HumanDuration(PostgresConfig::DEFAULT_MAINTENANCE_INTERVAL)
    )]
    pub maintenance_interval: HumanDuration,

    /// Do not apply the embedded migrations at start-up (for operators who migrate
    /// separately).
    #[arg(
        long = "postgres.skip-migrations",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_SKIP_MIGRATIONS"
    )]
    pub skip_migrations: bool,
}

impl TryFrom<&PostgresArgs> for PostgresConfig {
    type Error = StoreError;

    /// The settings the flags describe, validated; errors name the flag.
    fn try_from(args: &PostgresArgs) -> Result<Self, Self::Error> {
        let Some(url) = &args.url else {
            return Err(StoreError::invalid_argument(
                "--backend postgres needs --postgres.url URL",
            ));
        };
        let config = Self {
            schema: args.schema.clone(),
            max_connections: args.max_connections,
            connect_timeout: args.connect_timeout.get(),
            acquire_timeout: args.acquire_timeout.get(),
            query_timeout: args.query_timeout.get(),
            retention: args.retention.get(),
            partition_span: args.partition_span,
            maintenance_interval: args.maintenance_interval.get(),
            skip_migrations: args.skip_migrations,
            ..Self::new(url.clone())
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
        postgres: PostgresArgs,
    }

    fn config(arguments: &[&str]) -> Result<PostgresConfig, String> {
        let all = std::iter::once("test").chain(arguments.iter().copied());
        let command = Command::try_parse_from(all).map_err(|error| error.to_string())?;
        PostgresConfig::try_from(&command.postgres).map_err(|error| error.to_string())
    }

    #[test]
    fn flags_build_the_config_and_defaults_are_the_config_defaults() {
        let postgres = config(&[
            "--postgres.url=postgres://u:secret@db:5432/traces",
            "--postgres.schema=tracing",
            "--postgres.retention=48h",
            "--postgres.partition-span=hour",
            "--postgres.skip-migrations",
        ])
        .unwrap();
        assert_eq!(postgres.schema, "tracing");
        assert_eq!(postgres.retention, Duration::from_secs(48 * 3600));
        assert_eq!(postgres.partition_span, PartitionSpan::Hour);
        assert!(postgres.skip_migrations);
        assert!(
            !format!("{postgres:?}").contains("secret"),
            "the password never reaches logs"
        );
        let defaults = config(&["--postgres.url=postgres://db/traces"]).unwrap();
        let expected = PostgresConfig::new("postgres://db/traces");
        assert_eq!(format!("{defaults:?}"), format!("{expected:?}"));
    }

    #[test]
    fn a_url_and_valid_values_are_required() {
        assert!(config(&[]).unwrap_err().contains("--postgres.url"));
        let error = config(&[
            "--postgres.url=postgres://db/x",
            "--postgres.schema=Bad-Name",
        ])
        .unwrap_err();
        assert!(error.contains("postgres.schema"), "{error}");
        assert!(
            config(&[
                "--postgres.url=postgres://db/x",
                "--postgres.partition-span=week"
            ])
            .is_err()
        );
    }
}
