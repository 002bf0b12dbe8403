//! Command line: every flag also reads an environment variable `JAEGER_REMOTE_STORAGE_<FLAG>`
//! (dots and dashes become underscores). Backend-specific flags are prefixed with the backend
//! name (`--memory.max-traces`).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;
use clap::{Args, Parser, ValueEnum};
use remote_storage_core::QueryLimits;
use tracing::{info, warn};

use crate::backend::{BackendConfig, open_backend};
use crate::config::{ServerConfig, ServerLimits, TenancyConfig};
use crate::logging::LogFormat;
use crate::serve::{RunningServer, wait_for_termination_signal};

/// gRPC remote storage for Jaeger v2 (Jaeger's `grpc` storage type).
#[derive(Debug, Parser)]
#[command(name = "jaeger-remote-storage", version, about, long_about = None)]
pub struct Cli {
    /// Storage backend.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_BACKEND", value_enum, default_value_t = BackendKind::Memory)]
    pub backend: BackendKind,

    /// gRPC listener: TraceReader, DependencyReader, Capabilities, OTLP Export, health,
    /// reflection.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_GRPC_ADDR",
        default_value = "0.0.0.0:17271"
    )]
    pub grpc_addr: SocketAddr,

    /// Optional extra gRPC listener serving only OTLP Export and health (Jaeger's
    /// `writer.endpoint`).
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_WRITER_ADDR")]
    pub writer_addr: Option<SocketAddr>,

    /// Admin HTTP listener: `/` readiness (200 or 503) and `/metrics` (Prometheus).
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_ADMIN_ADDR",
        default_value = "0.0.0.0:17270"
    )]
    pub admin_addr: SocketAddr,

    /// Enables `POST /purge` on this address, which DELETES ALL DATA (for Jaeger's e2e tests,
    /// e.g. 127.0.0.1:9231). Off when not given.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_PURGER_ADDR")]
    pub purger_addr: Option<SocketAddr>,

    /// Require a tenant header on every request and keep each tenant's data apart.
    #[arg(
        long = "multi-tenancy.enabled",
        env = "JAEGER_REMOTE_STORAGE_MULTI_TENANCY_ENABLED"
    )]
    pub multi_tenancy_enabled: bool,

    /// gRPC metadata key carrying the tenant.
    #[arg(
        long = "multi-tenancy.header",
        env = "JAEGER_REMOTE_STORAGE_MULTI_TENANCY_HEADER",
        default_value = crate::config::DEFAULT_TENANT_HEADER
    )]
    pub multi_tenancy_header: String,

    /// Comma-separated allowed tenants; empty allows any tenant.
    #[arg(
        long = "multi-tenancy.tenants",
        env = "JAEGER_REMOTE_STORAGE_MULTI_TENANCY_TENANTS",
        value_delimiter = ','
    )]
    pub multi_tenancy_tenants: Vec<String>,

    /// Largest accepted request (e.g. an OTLP Export batch), in bytes or with a unit:
    /// 67108864, 512KiB, 64MiB, 1GiB.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_MAX_RECV_MSG_SIZE", default_value = "64MiB", value_parser = parse_byte_size)]
    pub max_recv_msg_size: usize,

    /// Most spans in one streamed TracesData chunk; larger traces are split.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_MAX_CHUNK_SPANS",
        default_value = "1000"
    )]
    pub max_chunk_spans: NonZeroUsize,

    /// Target maximum size of one streamed chunk (bytes or with a unit); keep it well under
    /// the client's receive limit (4 MiB by default).
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_MAX_CHUNK_BYTES", default_value = "2MiB", value_parser = parse_nonzero_byte_size)]
    pub max_chunk_bytes: NonZeroUsize,

    /// Search depth used when a query asks for 0 or fewer traces.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_DEFAULT_SEARCH_DEPTH",
        default_value = "100"
    )]
    pub default_search_depth: NonZeroUsize,

    /// Largest accepted search depth; deeper queries are refused with INVALID_ARGUMENT.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_MAX_SEARCH_DEPTH",
        default_value = "10000"
    )]
    pub max_search_depth: NonZeroUsize,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub memory: MemoryArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub lsm: LsmArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub postgres: PostgresArgs,

    /// Log line format.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in RUST_LOG syntax, e.g. `info` or `info,remote_storage=debug`.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Available backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// In process memory, bounded; data is lost on exit.
    Memory,
    /// Embedded LSM store (fjall) in `--lsm.data-dir`: persistent, single node.
    Lsm,
    /// PostgreSQL at `--postgres.url`: time-partitioned tables, shared by many servers.
    Postgres,
    /// Stores nothing: spans are decoded and dropped, reads answer empty (the decode-only
    /// baseline of benchmarks).
    Discard,
}

/// Flags of the memory backend.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Memory backend: traces kept per tenant; the oldest is evicted beyond this.
    #[arg(
        long = "memory.max-traces",
        env = "JAEGER_REMOTE_STORAGE_MEMORY_MAX_TRACES",
        default_value = "100000"
    )]
    pub max_traces: NonZeroUsize,
}

/// Flags of the LSM backend.
#[derive(Debug, Args)]
pub struct LsmArgs {
    /// LSM backend: data directory (created if missing). Required with `--backend lsm` unless
    /// `--lsm.ephemeral` is given.
    #[arg(long = "lsm.data-dir", env = "JAEGER_REMOTE_STORAGE_LSM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// LSM backend: use a fresh temporary directory, deleted on exit (for tests and demos).
    #[arg(
        long = "lsm.ephemeral",
        env = "JAEGER_REMOTE_STORAGE_LSM_EPHEMERAL",
        conflicts_with = "data_dir"
    )]
    pub ephemeral: bool,

    /// LSM backend: how long spans are kept (e.g. 72h, 7d); whole time partitions are dropped
    /// once expired, freeing their disk space. `0` keeps data forever.
    #[arg(
        id = "lsm.retention",
        long = "lsm.retention",
        env = "JAEGER_REMOTE_STORAGE_LSM_RETENTION",
        default_value = "72h",
        value_parser = parse_duration
    )]
    pub retention: Duration,

    /// LSM backend: width of one time partition (e.g. 1h); by default a sixth of the retention,
    /// between 1h and 1d.
    #[arg(
        id = "lsm.partition-span",
        long = "lsm.partition-span",
        env = "JAEGER_REMOTE_STORAGE_LSM_PARTITION_SPAN",
        value_parser = parse_duration
    )]
    pub partition_span: Option<Duration>,

    /// LSM backend: when writes are fsynced. `batch`: before each Export is acknowledged
    /// (survives power loss); `periodic` or `periodic:<ms>`: from a background thread (a
    /// process crash still loses nothing; power loss may lose up to one interval).
    #[arg(
        long = "lsm.sync",
        env = "JAEGER_REMOTE_STORAGE_LSM_SYNC",
        default_value = "batch"
    )]
    pub sync: String,

    /// LSM backend: block cache size (bytes or with a unit, e.g. 256MiB).
    #[arg(
        long = "lsm.cache-size",
        env = "JAEGER_REMOTE_STORAGE_LSM_CACHE_SIZE",
        default_value = "64MiB",
        value_parser = parse_byte_size
    )]
    pub cache_size: usize,
}

/// Flags of the PostgreSQL backend.
#[derive(Debug, Args)]
pub struct PostgresArgs {
    /// PostgreSQL backend: connection URL, e.g.
    /// `postgres://user:password@host:5432/db?sslmode=require` (TLS is chosen by `sslmode`).
    /// Required with `--backend postgres`.
    #[arg(
        long = "postgres.url",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,

    /// PostgreSQL backend: schema holding the tables (created if missing).
    #[arg(
        long = "postgres.schema",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_SCHEMA",
        default_value = "jaeger"
    )]
    pub schema: String,

    /// PostgreSQL backend: most pooled connections.
    #[arg(
        long = "postgres.max-connections",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_MAX_CONNECTIONS",
        default_value = "10"
    )]
    pub max_connections: std::num::NonZeroU32,

    /// PostgreSQL backend: how long to wait for a new connection.
    #[arg(
        long = "postgres.connect-timeout",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_CONNECT_TIMEOUT",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub connect_timeout: Duration,

    /// PostgreSQL backend: how long a request waits for a pooled connection.
    #[arg(
        long = "postgres.acquire-timeout",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_ACQUIRE_TIMEOUT",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub acquire_timeout: Duration,

    /// PostgreSQL backend: statement timeout of each query.
    #[arg(
        long = "postgres.query-timeout",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_QUERY_TIMEOUT",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub query_timeout: Duration,

    /// PostgreSQL backend: how long spans are kept; whole partitions are dropped once expired.
    #[arg(
        id = "postgres.retention",
        long = "postgres.retention",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_RETENTION",
        default_value = "7d",
        value_parser = parse_duration
    )]
    pub retention: Duration,

    /// PostgreSQL backend: partition width, `day` or `hour` (fixed when the schema is created).
    #[arg(
        id = "postgres.partition-span",
        long = "postgres.partition-span",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_PARTITION_SPAN",
        default_value = "day"
    )]
    pub partition_span: backend_postgres::PartitionSpan,

    /// PostgreSQL backend: how often partitions are created ahead and expired ones dropped.
    #[arg(
        long = "postgres.maintenance-interval",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_MAINTENANCE_INTERVAL",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub maintenance_interval: Duration,

    /// PostgreSQL backend: do not apply the embedded migrations at start-up (for operators
    /// who migrate separately).
    #[arg(
        long = "postgres.skip-migrations",
        env = "JAEGER_REMOTE_STORAGE_POSTGRES_SKIP_MIGRATIONS"
    )]
    pub skip_migrations: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|error| format!("{error} (e.g. 72h, 30m, 7d)"))
}

impl Cli {
    /// The server settings these flags describe.
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        ensure!(
            self.default_search_depth <= self.max_search_depth,
            "--default-search-depth ({}) must not exceed --max-search-depth ({})",
            self.default_search_depth,
            self.max_search_depth
        );
        Ok(ServerConfig {
            grpc_addr: self.grpc_addr,
            writer_addr: self.writer_addr,
            admin_addr: Some(self.admin_addr),
            purger_addr: self.purger_addr,
            tenancy: TenancyConfig {
                enabled: self.multi_tenancy_enabled,
                header: self.multi_tenancy_header.clone(),
                tenants: self
                    .multi_tenancy_tenants
                    .iter()
                    .map(|tenant| tenant.trim().to_owned())
                    .filter(|tenant| !tenant.is_empty())
                    .collect(),
            },
            limits: ServerLimits {
                max_recv_bytes: self.max_recv_msg_size,
                max_chunk_spans: self.max_chunk_spans,
                max_chunk_bytes: self.max_chunk_bytes,
                query: QueryLimits {
                    default_search_depth: self.default_search_depth,
                    max_search_depth: self.max_search_depth,
                },
            },
        })
    }

    /// The backend these flags select.
    pub fn backend_config(&self) -> anyhow::Result<BackendConfig> {
        let config = match self.backend {
            BackendKind::Memory => BackendConfig::Memory(backend_memory::MemoryConfig {
                max_traces: self.memory.max_traces,
            }),
            BackendKind::Lsm => BackendConfig::Lsm(self.lsm_config()?),
            BackendKind::Postgres => BackendConfig::Postgres(self.postgres_config()?),
            BackendKind::Discard => BackendConfig::Discard,
        };
        Ok(config)
    }

    fn postgres_config(&self) -> anyhow::Result<backend_postgres::PostgresConfig> {
        let Some(url) = &self.postgres.url else {
            anyhow::bail!("--backend postgres needs --postgres.url URL");
        };
        let mut config = backend_postgres::PostgresConfig::new(url.clone());
        config.schema = self.postgres.schema.clone();
        config.max_connections = self.postgres.max_connections;
        config.connect_timeout = self.postgres.connect_timeout;
        config.acquire_timeout = self.postgres.acquire_timeout;
        config.query_timeout = self.postgres.query_timeout;
        config.retention = self.postgres.retention;
        config.partition_span = self.postgres.partition_span;
        config.maintenance_interval = self.postgres.maintenance_interval;
        config.skip_migrations = self.postgres.skip_migrations;
        config.validate()?;
        Ok(config)
    }

    fn lsm_config(&self) -> anyhow::Result<backend_lsm::LsmConfig> {
        let location = match (&self.lsm.data_dir, self.lsm.ephemeral) {
            (Some(directory), _) => backend_lsm::StorageLocation::Directory(directory.clone()),
            (None, true) => backend_lsm::StorageLocation::Ephemeral,
            (None, false) => {
                anyhow::bail!("--backend lsm needs --lsm.data-dir DIR (or --lsm.ephemeral)")
            }
        };
        let config = backend_lsm::LsmConfig {
            location,
            retention: self.lsm.retention,
            partition_span: self.lsm.partition_span,
            sync: self.lsm.sync.parse()?,
            cache_size_bytes: u64::try_from(self.lsm.cache_size)?,
            ..backend_lsm::LsmConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}

/// Runs the server the flags describe until SIGTERM or Ctrl-C, then stops it gracefully.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.server_config()?;
    let backend_config = cli.backend_config()?;
    info!(
        backend = backend_config.name(),
        ?backend_config,
        "opening backend"
    );
    let backend = open_backend(&backend_config).await?;
    let server = RunningServer::start(config, backend).await?;
    tokio::select! {
        signal = wait_for_termination_signal() => {
            signal?;
            info!("termination signal received");
        }
        () = server.wait_for_shutdown_request() => {
            warn!("a listener stopped unexpectedly");
        }
    }
    server.stop().await
}

/// Parses `1048576`, `512KiB`, `64MiB`, `1GiB` (also `K`, `M`, `G`, `B`; case-insensitive).
/// Units are binary: 1 MiB = 1,048,576 bytes.
fn parse_byte_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 1048576, 512KiB or 64MiB"))?;
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn parse_nonzero_byte_size(text: &str) -> Result<NonZeroUsize, String> {
    NonZeroUsize::new(parse_byte_size(text)?).ok_or_else(|| "size must not be zero".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(arguments: &[&str]) -> Cli {
        let mut all = vec!["jaeger-remote-storage"];
        all.extend_from_slice(arguments);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn lsm_flags_build_an_lsm_config() {
        let cli = parse(&[
            "--backend=lsm",
            "--lsm.data-dir=/var/lib/traces",
            "--lsm.retention=7d",
            "--lsm.sync=periodic:250",
            "--lsm.cache-size=256MiB",
        ]);
        let Ok(BackendConfig::Lsm(lsm)) = cli.backend_config() else {
            panic!("lsm selected");
        };
        assert_eq!(
            lsm.location,
            backend_lsm::StorageLocation::Directory(PathBuf::from("/var/lib/traces"))
        );
        assert_eq!(lsm.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            lsm.sync,
            backend_lsm::SyncPolicy::Periodic(Duration::from_millis(250))
        );
        assert_eq!(lsm.cache_size_bytes, 256 << 20);

        let ephemeral = parse(&["--backend=lsm", "--lsm.ephemeral", "--lsm.retention=0"]);
        let Ok(BackendConfig::Lsm(lsm)) = ephemeral.backend_config() else {
            panic!("lsm selected");
        };
        assert_eq!(lsm.location, backend_lsm::StorageLocation::Ephemeral);
        assert_eq!(lsm.retention, Duration::ZERO);
    }

    #[test]
    fn postgres_flags_build_a_postgres_config() {
        let cli = parse(&[
            "--backend=postgres",
            "--postgres.url=postgres://u:secret@db:5432/traces",
            "--postgres.schema=tracing",
            "--postgres.retention=48h",
            "--postgres.partition-span=hour",
            "--postgres.skip-migrations",
        ]);
        let Ok(BackendConfig::Postgres(postgres)) = cli.backend_config() else {
            panic!("postgres selected");
        };
        assert_eq!(postgres.schema, "tracing");
        assert_eq!(postgres.retention, Duration::from_secs(48 * 3600));
        assert_eq!(
            postgres.partition_span,
            backend_postgres::PartitionSpan::Hour
        );
        assert!(postgres.skip_migrations);
        assert!(
            !format!("{postgres:?}").contains("secret"),
            "the password never reaches logs"
        );
        let error = parse(&["--backend=postgres"]).backend_config().unwrap_err();
        assert!(error.to_string().contains("--postgres.url"), "{error}");
    }

    #[test]
    fn lsm_needs_a_data_dir_and_a_known_sync_policy() {
        let error = parse(&["--backend=lsm"]).backend_config().unwrap_err();
        assert!(error.to_string().contains("--lsm.data-dir"), "{error}");
        let error = parse(&["--backend=lsm", "--lsm.ephemeral", "--lsm.sync=sometimes"])
            .backend_config()
            .unwrap_err();
        assert!(error.to_string().contains("lsm.sync"), "{error}");
        assert!(
            Cli::try_parse_from([
                "jaeger-remote-storage",
                "--lsm.ephemeral",
                "--lsm.data-dir=/x"
            ])
            .is_err()
        );
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_jaeger_ports_and_the_documented_limits() {
        let cli = parse(&[]);
        assert_eq!(cli.backend, BackendKind::Memory);
        let config = cli.server_config().unwrap();
        assert_eq!(config.grpc_addr, "0.0.0.0:17271".parse().unwrap());
        assert_eq!(config.admin_addr, Some("0.0.0.0:17270".parse().unwrap()));
        assert_eq!(config.writer_addr, None);
        assert_eq!(config.purger_addr, None);
        assert_eq!(config.tenancy, TenancyConfig::default());
        assert_eq!(config.limits.max_recv_bytes, 64 << 20);
        assert_eq!(config.limits.max_chunk_spans.get(), 1000);
        assert_eq!(config.limits.max_chunk_bytes.get(), 2 << 20);
        assert_eq!(config.limits.query.max_search_depth.get(), 10_000);
        assert_eq!(config.limits.query.default_search_depth.get(), 100);
        let Ok(BackendConfig::Memory(memory)) = cli.backend_config() else {
            panic!("memory is the default backend");
        };
        assert_eq!(memory.max_traces.get(), 100_000);
        assert_eq!(cli.log_format, LogFormat::Text);
    }

    #[test]
    fn every_flag_is_read() {
        let cli = parse(&[
            "--grpc-addr=127.0.0.1:1",
            "--writer-addr=127.0.0.1:2",
            "--admin-addr=127.0.0.1:3",
            "--purger-addr=127.0.0.1:9231",
            "--multi-tenancy.enabled",
            "--multi-tenancy.header=x-org",
            "--multi-tenancy.tenants=acme, globex,",
            "--max-recv-msg-size=8MiB",
            "--max-chunk-spans=50",
            "--max-chunk-bytes=65536",
            "--default-search-depth=20",
            "--max-search-depth=500",
            "--memory.max-traces=7",
            "--log-format=json",
            "--log-level=debug",
        ]);
        let config = cli.server_config().unwrap();
        assert_eq!(config.writer_addr, Some("127.0.0.1:2".parse().unwrap()));
        assert_eq!(config.purger_addr, Some("127.0.0.1:9231".parse().unwrap()));
        assert!(config.tenancy.enabled);
        assert_eq!(config.tenancy.header, "x-org");
        assert_eq!(config.tenancy.tenants, ["acme", "globex"]);
        assert_eq!(config.limits.max_recv_bytes, 8 << 20);
        assert_eq!(config.limits.max_chunk_spans.get(), 50);
        assert_eq!(config.limits.max_chunk_bytes.get(), 65_536);
        assert_eq!(config.limits.query.default_search_depth.get(), 20);
        assert_eq!(config.limits.query.max_search_depth.get(), 500);
        let Ok(BackendConfig::Memory(memory)) = cli.backend_config() else {
            panic!("memory is the default backend");
        };
        assert_eq!(memory.max_traces.get(), 7);
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn every_flag_has_an_env_var_and_help() {
        let command = Cli::command();
        for argument in command.get_arguments() {
            let id = argument.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let env = argument
                .get_env()
                .unwrap_or_else(|| panic!("--{id} has no env var"));
            assert!(
                env.to_string_lossy().starts_with("JAEGER_REMOTE_STORAGE_"),
                "{id}: {env:?}"
            );
            assert!(argument.get_help().is_some(), "--{id} has no help");
        }
    }

    #[test]
    fn invalid_values_are_refused() {
        let refused = |arguments: &[&str]| {
            let mut all = vec!["jaeger-remote-storage"];
            all.extend_from_slice(arguments);
            Cli::try_parse_from(all).is_err()
        };
        assert!(refused(&["--max-chunk-spans=0"]));
        assert!(refused(&["--max-chunk-bytes=0"]));
        assert!(refused(&["--max-recv-msg-size=12parsecs"]));
        assert!(refused(&["--backend=cassandra"]));
        assert!(refused(&["--memory.max-traces=0"]));
        let inverted = parse(&["--default-search-depth=500", "--max-search-depth=100"]);
        assert!(inverted.server_config().is_err());
    }

    #[test]
    fn byte_sizes_accept_plain_numbers_and_binary_units() {
        assert_eq!(parse_byte_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_byte_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_byte_size("64mib"), Ok(64 << 20));
        assert_eq!(parse_byte_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_byte_size("1G"), Ok(1 << 30));
        assert_eq!(parse_byte_size("10B"), Ok(10));
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("5TB").is_err());
        assert!(parse_byte_size("99999999999999999999GiB").is_err());
    }
}
