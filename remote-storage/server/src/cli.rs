//! Command line: every flag also reads an environment variable `JAEGER_REMOTE_STORAGE_<FLAG>`
//! (dots and dashes become underscores). Backend-specific flags are prefixed with the backend
//! name (`--memory.max-traces`) and belong to the backend's crate ([`BackendArgs`]).

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use anyhow::ensure;
use clap::Parser;
use remote_storage_core::QueryLimits;
use remote_storage_core::units::{ByteSize, HumanDuration};
use tracing::{info, warn};

pub use crate::backend::{BackendArgs, BackendKind};
use crate::backend::{BackendConfig, open_backend};
use crate::config::{
    DEFAULT_MAX_CONCURRENT_READS, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONCURRENT_WRITES,
    DEFAULT_THROTTLE_RETRY_DELAY, ServerConfig, ServerLimits, TenancyConfig,
};
use crate::logging::LogFormat;
pub use crate::security_args::SecurityArgs;
use crate::serve::{RunningServer, wait_for_termination_signal};

/// gRPC remote storage for Jaeger v2 (Jaeger's `grpc` storage type).
#[derive(Debug, Parser)]
#[command(
    name = "jaeger-remote-storage",
    version = env!("JAEGER_REMOTE_STORAGE_VERSION_TEXT"),
    about,
    long_about = None
)]
pub struct Cli {
    /// YAML file holding any of these settings, nested by flag name (`memory: {max-traces:
    /// 1000}`); flags and environment variables win over it.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// Print the effective configuration (in --config format, each value with its source,
    /// secrets redacted) and exit.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_PRINT_CONFIG")]
    pub print_config: bool,

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
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_MAX_RECV_MSG_SIZE", default_value_t = ByteSize::mib(64))]
    pub max_recv_msg_size: ByteSize,

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

    /// Write calls (OTLP Export, v1 writes) in flight at once; more are answered UNAVAILABLE
    /// with RetryInfo (the OTLP throttling answer) at once, not queued.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_MAX_CONCURRENT_WRITES",
        default_value_t = DEFAULT_MAX_CONCURRENT_WRITES
    )]
    pub max_concurrent_writes: NonZeroUsize,

    /// Request bytes of write calls held at once, from arrival until answered (bytes or with
    /// a unit); more are throttled. At least --max-recv-msg-size.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_MAX_INFLIGHT_BYTES", default_value = "256MiB", value_parser = parse_nonzero_byte_size)]
    pub max_inflight_bytes: NonZeroUsize,

    /// Read calls in flight at once (until their answer stream ends); more are throttled.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_MAX_CONCURRENT_READS",
        default_value_t = DEFAULT_MAX_CONCURRENT_READS
    )]
    pub max_concurrent_reads: NonZeroUsize,

    /// HTTP/2 streams (calls) one connection may have open at once.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_MAX_CONCURRENT_STREAMS",
        default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS
    )]
    pub max_concurrent_streams: u32,

    /// Interval of HTTP/2 keepalive pings (and TCP keepalive) on gRPC connections, e.g. 30s.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_KEEPALIVE_INTERVAL",
        default_value = "30s"
    )]
    pub keepalive_interval: HumanDuration,

    /// How long a keepalive ping may go unanswered before the connection is closed as dead.
    #[arg(
        long,
        env = "JAEGER_REMOTE_STORAGE_KEEPALIVE_TIMEOUT",
        default_value = "20s"
    )]
    pub keepalive_timeout: HumanDuration,

    /// Log line format.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in RUST_LOG syntax, e.g. `info` or `info,remote_storage=debug`.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Print the schema the selected backend applies at start-up (its DDL, for operators who
    /// apply it themselves) and exit without connecting.
    #[arg(long, env = "JAEGER_REMOTE_STORAGE_PRINT_SCHEMA")]
    pub print_schema: bool,

    /// TLS and authentication.
    #[command(flatten)]
    pub security: SecurityArgs,

    /// Each backend's flags, under its own heading.
    #[command(flatten)]
    pub backends: BackendArgs,
}

impl Cli {
    /// The server settings these flags describe.
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let max_recv_bytes = self
            .max_recv_msg_size
            .to_usize("--max-recv-msg-size")
            .map_err(anyhow::Error::msg)?;
        ensure!(
            self.max_inflight_bytes.get() >= max_recv_bytes,
            "--max-inflight-bytes ({}) must be at least --max-recv-msg-size ({max_recv_bytes}), \
             or the largest accepted message could never be admitted",
            self.max_inflight_bytes
        );
        ensure!(
            self.max_concurrent_streams > 0,
            "--max-concurrent-streams must be at least 1"
        );
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
                max_recv_bytes,
                max_chunk_spans: self.max_chunk_spans,
                max_chunk_bytes: self.max_chunk_bytes,
                query: QueryLimits {
                    default_search_depth: self.default_search_depth,
                    max_search_depth: self.max_search_depth,
                },
                max_concurrent_writes: self.max_concurrent_writes,
                max_inflight_bytes: self.max_inflight_bytes,
                max_concurrent_reads: self.max_concurrent_reads,
                throttle_retry_delay: DEFAULT_THROTTLE_RETRY_DELAY,
                max_concurrent_streams: self.max_concurrent_streams,
                keepalive_interval: self.keepalive_interval.0,
                keepalive_timeout: self.keepalive_timeout.0,
            },
            security: self.security.config(),
        })
    }

    /// The backend these flags select, with its settings.
    pub fn backend_config(&self) -> anyhow::Result<BackendConfig> {
        BackendConfig::from_args(self.backend, &self.backends)
    }
}

/// Runs the server the flags describe until SIGTERM or Ctrl-C, then stops it gracefully.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.server_config()?;
    let backend_config = cli.backend_config()?;
    if cli.print_schema {
        let Some(script) = backend_config.schema_script() else {
            anyhow::bail!(
                "the {} backend has no schema to print",
                backend_config.name()
            );
        };
        print!("{script}");
        return Ok(());
    }
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

fn parse_nonzero_byte_size(text: &str) -> Result<NonZeroUsize, String> {
    let size = text.parse::<ByteSize>()?.to_usize("size")?;
    NonZeroUsize::new(size).ok_or_else(|| "size must not be zero".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SecurityConfig, TlsFiles};
    use clap::CommandFactory as _;
    use std::time::Duration;

    fn parse(arguments: &[&str]) -> Cli {
        let mut all = vec!["jaeger-remote-storage"];
        all.extend_from_slice(arguments);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn a_byte_budget_smaller_than_the_largest_message_is_refused() {
        let error = parse(&["--max-recv-msg-size=64MiB", "--max-inflight-bytes=32MiB"])
            .server_config()
            .unwrap_err();
        assert!(
            error.to_string().contains("--max-inflight-bytes"),
            "{error}"
        );
        let config = parse(&[
            "--max-inflight-bytes=1GiB",
            "--max-concurrent-writes=8",
            "--max-concurrent-reads=4",
            "--keepalive-interval=1m",
        ])
        .server_config()
        .unwrap();
        assert_eq!(config.limits.max_inflight_bytes.get(), 1 << 30);
        assert_eq!(config.limits.max_concurrent_writes.get(), 8);
        assert_eq!(config.limits.max_concurrent_reads.get(), 4);
        assert_eq!(config.limits.keepalive_interval, Duration::from_secs(60));
    }

    #[cfg(feature = "backend-lsm")]
    #[test]
    fn the_lsm_flags_select_an_lsm_config() {
        let cli = parse(&[
            "--backend=lsm",
            "--lsm.data-dir=/var/lib/traces",
            "--lsm.retention=7d",
        ]);
        let Ok(BackendConfig::Lsm(lsm)) = cli.backend_config() else {
            panic!("lsm selected");
        };
        assert_eq!(lsm.retention, std::time::Duration::from_secs(7 * 86_400));
        let error = parse(&["--backend=lsm"]).backend_config().unwrap_err();
        assert!(error.to_string().contains("--lsm.data-dir"), "{error}");
    }

    #[cfg(feature = "backend-postgres")]
    #[test]
    fn the_postgres_flags_select_a_postgres_config() {
        let cli = parse(&[
            "--backend=postgres",
            "--postgres.url=postgres://u:secret@db:5432/traces",
            "--postgres.schema=tracing",
        ]);
        let Ok(BackendConfig::Postgres(postgres)) = cli.backend_config() else {
            panic!("postgres selected");
        };
        assert_eq!(postgres.schema, "tracing");
        let error = parse(&["--backend=postgres"]).backend_config().unwrap_err();
        assert!(error.to_string().contains("--postgres.url"), "{error}");
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag the server has had, by name: `--help` keeps them all in a full build (a new
    /// backend adds its pinned flags here).
    #[cfg(all(
        feature = "backend-memory",
        feature = "backend-lsm",
        feature = "backend-postgres",
        feature = "backend-elasticsearch"
    ))]
    #[test]
    fn every_flag_is_still_offered_under_its_heading() {
        let command = Cli::command();
        let offered: Vec<(String, Option<String>)> = command
            .get_arguments()
            .filter_map(|argument| {
                let long = argument.get_long()?;
                Some((
                    long.to_owned(),
                    argument.get_help_heading().map(str::to_owned),
                ))
            })
            .collect();
        let heading_of = |flag: &str| {
            offered
                .iter()
                .find(|(long, _)| long == flag)
                .unwrap_or_else(|| panic!("--{flag} is no longer offered"))
                .1
                .clone()
        };
        for flag in [
            "backend",
            "grpc-addr",
            "writer-addr",
            "admin-addr",
            "purger-addr",
            "multi-tenancy.enabled",
            "multi-tenancy.header",
            "multi-tenancy.tenants",
            "max-recv-msg-size",
            "max-chunk-spans",
            "max-chunk-bytes",
            "default-search-depth",
            "max-search-depth",
            "log-format",
            "log-level",
            "print-schema",
            "grpc.tls.cert",
            "grpc.tls.key",
            "grpc.tls.client-ca",
            "writer.tls.cert",
            "writer.tls.key",
            "writer.tls.client-ca",
            "admin.tls.cert",
            "admin.tls.key",
            "admin.tls.client-ca",
            "auth.bearer-tokens-file",
        ] {
            assert_eq!(heading_of(flag), None, "--{flag} is a server flag");
        }
        let groups: [(&str, &str, &[&str]); 5] = [
            ("memory", "memory", &["max-traces"]),
            (
                "lsm",
                "lsm",
                &[
                    "data-dir",
                    "ephemeral",
                    "retention",
                    "partition-span",
                    "sync",
                    "cache-size",
                ],
            ),
            (
                "postgres",
                "postgres",
                &[
                    "url",
                    "schema",
                    "max-connections",
                    "connect-timeout",
                    "acquire-timeout",
                    "query-timeout",
                    "retention",
                    "partition-span",
                    "maintenance-interval",
                    "skip-migrations",
                ],
            ),
            (
                "es",
                "elasticsearch",
                &[
                    "server-urls",
                    "index-prefix",
                    "username",
                    "password-file",
                    "api-key-file",
                    "bearer-token-file",
                    "tls.ca",
                    "tls.cert",
                    "tls.key",
                    "tls.insecure-skip-verify",
                    "retention",
                    "index-rotation",
                    "shards",
                    "replicas",
                    "create-templates",
                    "refresh",
                    "http-compression",
                    "request-timeout",
                    "connect-timeout",
                    "maintenance-interval",
                ],
            ),
            (
                "cassandra",
                "cassandra",
                &[
                    "servers",
                    "keyspace",
                    "local-dc",
                    "username",
                    "password-file",
                    "tls.ca",
                    "tls.cert",
                    "tls.key",
                    "consistency",
                    "retention",
                    "create-schema",
                    "replication",
                    "bucket",
                    "shards",
                    "connect-timeout",
                    "request-timeout",
                ],
            ),
        ];
        for (prefix, backend, flags) in groups {
            for flag in flags {
                let heading = heading_of(&format!("{prefix}.{flag}"))
                    .unwrap_or_else(|| panic!("--{prefix}.{flag} has no heading"));
                assert!(
                    heading.contains(&format!("--backend {backend}")),
                    "--{prefix}.{flag} is under {heading:?}"
                );
            }
        }
        // A backend's flags, pinned above or not, sit under that backend's heading.
        for (long, heading) in &offered {
            let server_prefixes = ["multi-tenancy.", "grpc.", "writer.", "admin.", "auth."];
            if long.contains('.')
                && !server_prefixes
                    .iter()
                    .any(|prefix| long.starts_with(prefix))
            {
                assert!(
                    heading.as_deref().is_some_and(|h| h.contains("--backend ")),
                    "--{long} is not under a backend heading: {heading:?}"
                );
            }
        }
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
        assert_eq!(config.security, SecurityConfig::default());
        assert_eq!(config.limits.max_recv_bytes, 64 << 20);
        assert_eq!(config.limits.max_chunk_spans.get(), 1000);
        assert_eq!(config.limits.max_chunk_bytes.get(), 2 << 20);
        assert_eq!(config.limits.query.max_search_depth.get(), 10_000);
        assert_eq!(config.limits.query.default_search_depth.get(), 100);
        assert_eq!(config.limits.max_concurrent_writes.get(), 256);
        assert_eq!(config.limits.max_inflight_bytes.get(), 256 << 20);
        assert_eq!(config.limits.max_concurrent_reads.get(), 128);
        assert_eq!(config.limits.max_concurrent_streams, 200);
        assert_eq!(config.limits.keepalive_interval, Duration::from_secs(30));
        assert_eq!(config.limits.keepalive_timeout, Duration::from_secs(20));
        #[cfg(feature = "backend-memory")]
        {
            let Ok(BackendConfig::Memory(memory)) = cli.backend_config() else {
                panic!("memory is the default backend");
            };
            assert_eq!(memory, backend_memory::MemoryConfig::default());
        }
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
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn tls_and_auth_flags_are_read_and_paired() {
        let cli = parse(&[
            "--writer-addr=127.0.0.1:2",
            "--grpc.tls.cert=/tls/grpc.crt",
            "--grpc.tls.key=/tls/grpc.key",
            "--grpc.tls.client-ca=/tls/clients.crt",
            "--writer.tls.cert=/tls/writer.crt",
            "--writer.tls.key=/tls/writer.key",
            "--admin.tls.cert=/tls/admin.crt",
            "--admin.tls.key=/tls/admin.key",
            "--admin.tls.client-ca=/tls/probes.crt",
            "--auth.bearer-tokens-file=/secrets/tokens",
        ]);
        let security = cli.server_config().unwrap().security;
        let files = |cert: &str, key: &str, client_ca: Option<&str>| TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: client_ca.map(Into::into),
        };
        assert_eq!(
            security.grpc_tls,
            Some(files(
                "/tls/grpc.crt",
                "/tls/grpc.key",
                Some("/tls/clients.crt")
            ))
        );
        assert_eq!(
            security.writer_tls,
            Some(files("/tls/writer.crt", "/tls/writer.key", None))
        );
        assert_eq!(
            security.admin_tls,
            Some(files(
                "/tls/admin.crt",
                "/tls/admin.key",
                Some("/tls/probes.crt")
            ))
        );
        assert_eq!(
            security.bearer_tokens_file.as_deref(),
            Some(std::path::Path::new("/secrets/tokens"))
        );
        // Env vars follow the flag names.
        let command = Cli::command();
        for argument in command.get_arguments() {
            let Some(long) = argument.get_long() else {
                continue;
            };
            if ["grpc.tls.", "writer.tls.", "admin.tls.", "auth."]
                .iter()
                .any(|prefix| long.starts_with(prefix))
            {
                let expected = format!(
                    "JAEGER_REMOTE_STORAGE_{}",
                    long.replace(['.', '-'], "_").to_ascii_uppercase()
                );
                assert_eq!(argument.get_env(), Some(expected.as_ref()), "--{long}");
            }
        }
        // A certificate without its key (or the reverse, or a CA alone) is refused by clap.
        for lonely in [
            &["--grpc.tls.cert=/a"][..],
            &["--grpc.tls.key=/a"],
            &["--grpc.tls.client-ca=/a"],
            &["--admin.tls.cert=/a"],
            &["--writer.tls.cert=/a", "--writer.tls.key=/b"],
        ] {
            let mut all = vec!["jaeger-remote-storage"];
            all.extend_from_slice(lonely);
            assert!(Cli::try_parse_from(all).is_err(), "{lonely:?}");
        }
    }

    #[cfg(feature = "backend-memory")]
    #[test]
    fn the_memory_flags_reach_the_memory_config() {
        let cli = parse(&["--memory.max-traces=7"]);
        let Ok(BackendConfig::Memory(memory)) = cli.backend_config() else {
            panic!("memory is the default backend");
        };
        assert_eq!(memory.max_traces.get(), 7);
    }

    /// The README's "Running it securely" section covers every TLS and auth flag and the
    /// answers a refused caller gets (issue 14, item 8).
    #[test]
    fn the_readme_explains_every_security_flag() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("\n## Running it securely\n")
            .expect("README has a \"Running it securely\" section");
        let rest = &readme[start + 1..];
        let section = rest.find("\n## ").map_or(rest, |end| &rest[..end]);
        let command = Cli::command();
        let mut checked = 0;
        for argument in command.get_arguments() {
            let Some(long) = argument.get_long() else {
                continue;
            };
            if ["grpc.tls.", "writer.tls.", "admin.tls.", "auth."]
                .iter()
                .any(|prefix| long.starts_with(prefix))
            {
                assert!(
                    section.contains(&format!("`--{long}")),
                    "--{long} not explained"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 10);
        for answer in [
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "401",
            "403",
            "SIGHUP",
            "mutual TLS",
            "What none of this does",
        ] {
            assert!(section.contains(answer), "{answer} not in the section");
        }
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
        assert!(refused(&["--backend=mongodb"]));
        let inverted = parse(&["--default-search-depth=500", "--max-search-depth=100"]);
        assert!(inverted.server_config().is_err());
    }
}
