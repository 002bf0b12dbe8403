//! Server settings, independent of how they were given (CLI, env or tests).

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;

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
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_recv_bytes: DEFAULT_MAX_RECV_BYTES,
            max_chunk_spans: DEFAULT_MAX_CHUNK_SPANS,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
            query: QueryLimits::default(),
        }
    }
}
