//! Server settings, independent of how they were given (CLI, env or tests).

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use remote_storage_core::QueryLimits;

/// Default gRPC port (Jaeger's `RemoteStorageGRPC`).
pub const DEFAULT_GRPC_PORT: u16 = 17271;
/// Default admin HTTP port (Jaeger's `RemoteStorageAdminHTTP`).
pub const DEFAULT_ADMIN_PORT: u16 = 17270;
/// Default tenant metadata header, as in Jaeger.
pub const DEFAULT_TENANT_HEADER: &str = "x-tenant";
/// Default largest accepted request: OTLP exports from a busy collector exceed gRPC's 4 MiB.
pub const DEFAULT_MAX_RECV_BYTES: usize = 64 * 1024 * 1024;
/// Default span budget of one streamed `TracesData` chunk.
pub const DEFAULT_MAX_CHUNK_SPANS: NonZeroUsize = NonZeroUsize::new(1000).unwrap();
/// Default byte budget of one streamed chunk: half of the Go client's 4 MiB receive limit.
pub const DEFAULT_MAX_CHUNK_BYTES: NonZeroUsize = NonZeroUsize::new(2 * 1024 * 1024).unwrap();

/// Default bound on write calls (Export, v1 writes) in flight at once.
pub const DEFAULT_MAX_CONCURRENT_WRITES: NonZeroUsize = NonZeroUsize::new(256).unwrap();
/// Default bound on request bytes of write calls held at once: four largest messages.
pub const DEFAULT_MAX_INFLIGHT_BYTES: NonZeroUsize =
    NonZeroUsize::new(4 * DEFAULT_MAX_RECV_BYTES).unwrap();
/// Default bound on read calls in flight at once.
pub const DEFAULT_MAX_CONCURRENT_READS: NonZeroUsize = NonZeroUsize::new(128).unwrap();
/// The delay a throttled client is told to wait (`RetryInfo`).
pub const DEFAULT_THROTTLE_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Default HTTP/2 streams one connection may have open at once.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;
/// Default interval of HTTP/2 keepalive pings (and TCP keepalive) on idle connections.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default wait for a keepalive ping's answer before the connection is closed.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything [`crate::RunningServer::start`] needs besides the backend.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Main gRPC listener: reader, dependencies, capabilities, Export, health, reflection.
    pub grpc_addr: SocketAddr,
    /// Optional second gRPC listener serving only OTLP Export and health.
    pub writer_addr: Option<SocketAddr>,
    /// Admin HTTP listener (`/` readiness, `/metrics`); `None` disables it.
    pub admin_addr: Option<SocketAddr>,
    /// HTTP listener for `POST /purge`; `None` (the default) disables it, because it deletes
    /// everything.
    pub purger_addr: Option<SocketAddr>,
    /// Multi-tenancy guard.
    pub tenancy: TenancyConfig,
    /// Message sizes, stream chunking and search limits.
    pub limits: ServerLimits,
    /// TLS on the listeners and bearer-token authentication; all off by default.
    pub security: SecurityConfig,
}

impl Default for ServerConfig {
    /// Production defaults: gRPC on `0.0.0.0:17271`, admin on `0.0.0.0:17270`, no separate
    /// writer, no purger, tenancy off.
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_GRPC_PORT)),
            writer_addr: None,
            admin_addr: Some(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                DEFAULT_ADMIN_PORT,
            ))),
            purger_addr: None,
            tenancy: TenancyConfig::default(),
            limits: ServerLimits::default(),
            security: SecurityConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Every listener on `127.0.0.1:0` (the OS picks free ports), purger enabled, tenancy off.
    pub fn for_tests() -> Self {
        let any_local_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            grpc_addr: any_local_port,
            writer_addr: Some(any_local_port),
            admin_addr: Some(any_local_port),
            purger_addr: Some(any_local_port),
            tenancy: TenancyConfig::default(),
            limits: ServerLimits::default(),
            security: SecurityConfig::default(),
        }
    }
}

/// Multi-tenancy settings, with Jaeger's `multi_tenancy` semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenancyConfig {
    /// When off, every request uses the empty tenant and no header is read.
    pub enabled: bool,
    /// gRPC metadata key carrying the tenant (case-insensitive).
    pub header: String,
    /// Allowed tenants; empty allows any tenant.
    pub tenants: Vec<String>,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            header: DEFAULT_TENANT_HEADER.to_owned(),
            tenants: Vec::new(),
        }
    }
}

/// Limits on requests, responses and searches.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Largest accepted (decompressed) request message, in bytes.
    pub max_recv_bytes: usize,
    /// Most spans in one streamed `TracesData` chunk.
    pub max_chunk_spans: NonZeroUsize,
    /// Target maximum encoded size of one streamed chunk; a single larger span still goes out
    /// alone.
    pub max_chunk_bytes: NonZeroUsize,
    /// Search-depth defaults and maximum.
    pub query: QueryLimits,
    /// Write calls in flight at once; more are throttled.
    pub max_concurrent_writes: NonZeroUsize,
    /// Request bytes of unary write calls held at once (from arrival until answered); more
    /// are throttled. At least `max_recv_bytes`, so the largest message fits an idle server.
    pub max_inflight_bytes: NonZeroUsize,
    /// Read calls in flight at once (until their answer stream ends); more are throttled.
    pub max_concurrent_reads: NonZeroUsize,
    /// The wait a throttled client is told (`RetryInfo`).
    pub throttle_retry_delay: Duration,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// HTTP/2 keepalive ping (and TCP keepalive) interval.
    pub keepalive_interval: Duration,
    /// Wait for a ping's answer before the connection is closed as dead.
    pub keepalive_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_recv_bytes: DEFAULT_MAX_RECV_BYTES,
            max_chunk_spans: DEFAULT_MAX_CHUNK_SPANS,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
            query: QueryLimits::default(),
            max_concurrent_writes: DEFAULT_MAX_CONCURRENT_WRITES,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            max_concurrent_reads: DEFAULT_MAX_CONCURRENT_READS,
            throttle_retry_delay: DEFAULT_THROTTLE_RETRY_DELAY,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
        }
    }
}

/// How often certificate and token files are checked for changes (SIGHUP reloads at once).
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// TLS per listener and bearer-token authentication. Plaintext and no authentication by
/// default, for local use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// TLS on the main gRPC listener.
    pub grpc_tls: Option<TlsFiles>,
    /// TLS on the writer listener; `None` uses [`SecurityConfig::grpc_tls`], so turning TLS
    /// on for gRPC never leaves the writer in plaintext by omission.
    pub writer_tls: Option<TlsFiles>,
    /// TLS on the admin and purger HTTP listeners.
    pub admin_tls: Option<TlsFiles>,
    /// Accepted bearer tokens, one per line, optionally bound to tenants; `None` turns
    /// authentication off.
    pub bearer_tokens_file: Option<PathBuf>,
    /// How often the certificate and token files are checked for changes.
    pub reload_interval: Duration,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            grpc_tls: None,
            writer_tls: None,
            admin_tls: None,
            bearer_tokens_file: None,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }
}

/// The PEM files of one TLS listener; re-read when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that sign client certificates; when given, clients must present one
    /// (mutual TLS).
    pub client_ca: Option<PathBuf>,
}
