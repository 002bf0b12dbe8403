//! `jaeger-remote-storage`: a gRPC remote-storage server for Jaeger v2 and v1.
//!
//! It serves Jaeger's `jaeger.storage.v2` TraceReader, DependencyReader and Capabilities, the
//! OTLP TraceService (Export) for writes, Jaeger v1's `jaeger.storage.v1` API (the gRPC storage
//! plugin API: span writers, reader, dependencies, capabilities), gRPC health and reflection, an
//! admin HTTP listener (readiness and Prometheus metrics) and, when asked, the test-only purge
//! endpoint, all over one [`remote_storage_core::Backend`].
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use remote_storage::{BackendConfig, RunningServer, ServerConfig, open_backend};
//!
//! let backend = open_backend(&BackendConfig::Memory(Default::default())).await?;
//! let server = RunningServer::start(ServerConfig::for_tests(), backend).await?;
//! println!("gRPC on {}", server.grpc_addr);
//! server.stop().await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod backend;
pub mod cli;
mod config;
pub mod config_file;
mod grpc;
mod http;
mod logging;
mod metrics;
mod readiness;
mod reload;
mod security;
mod security_args;
mod serve;
mod tenancy;
mod tls;

pub use backend::{BackendConfig, open_backend};
pub use config::{
    DEFAULT_ADMIN_PORT, DEFAULT_GRPC_PORT, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_CHUNK_BYTES, DEFAULT_MAX_CHUNK_SPANS, DEFAULT_MAX_CONCURRENT_READS,
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONCURRENT_WRITES, DEFAULT_MAX_INFLIGHT_BYTES,
    DEFAULT_MAX_RECV_BYTES, DEFAULT_RELOAD_INTERVAL, DEFAULT_TENANT_HEADER,
    DEFAULT_THROTTLE_RETRY_DELAY, SecurityConfig, ServerConfig, ServerLimits, TenancyConfig,
    TlsFiles,
};
pub use logging::{LogFormat, init_logging};
pub use serve::{RunningServer, wait_for_termination_signal};

/// Splits a trace into the encoded `TracesData` chunks GetTraces and FindTraces stream (at most
/// `max_spans` spans and about `max_bytes` encoded bytes each), lazily. Public for the
/// micro-benchmarks in `bench/micro`; the server itself uses it through its services.
pub fn trace_chunks(
    trace: &remote_storage_core::Trace,
    max_spans: std::num::NonZeroUsize,
    max_bytes: std::num::NonZeroUsize,
) -> impl Iterator<Item = jaeger_remote_proto::encoded::EncodedTracesData> + '_ {
    grpc::chunking::trace_chunks(
        trace,
        grpc::chunking::ChunkBudget {
            max_items: max_spans,
            max_bytes,
        },
    )
}
