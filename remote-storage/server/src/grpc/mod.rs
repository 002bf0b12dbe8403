//! The gRPC surface: one adapter per service, the chunking rules, the single error mapping and
//! the RPC metrics layer. [`main_routes`] and [`writer_routes`] assemble what each listener
//! serves.

mod capabilities;
pub(crate) mod chunking;
mod dependency_reader;
mod otlp;
pub(crate) mod rpc_metrics;
mod status;
mod trace_reader;
mod traces_encoding;

use std::sync::Arc;

use anyhow::Context as _;
use jaeger_remote_proto::otlp::collector::trace_service_server::TraceServiceServer;
use jaeger_remote_proto::storage::v2::capabilities_server::CapabilitiesServer;
use jaeger_remote_proto::storage::v2::dependency_reader_server::DependencyReaderServer;
use jaeger_remote_proto::storage::v2::encoded_server::trace_reader_server::TraceReaderServer;
use remote_storage_core::Backend;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

use crate::config::ServerLimits;
use crate::metrics::ServerMetrics;
use crate::readiness::Readiness;
use crate::tenancy::TenancyGuard;

/// What the gRPC services share.
pub(crate) struct GrpcContext {
    pub(crate) backend: Backend,
    pub(crate) limits: ServerLimits,
    pub(crate) tenancy: TenancyGuard,
    pub(crate) metrics: Arc<ServerMetrics>,
    pub(crate) readiness: Arc<Readiness>,
}

/// Everything on the main listener. Every service except health and reflection goes through
/// the tenancy guard. All accept gzip requests (Jaeger's client may be configured for it).
pub(crate) fn main_routes(context: &GrpcContext) -> anyhow::Result<Routes> {
    let limits = context.limits;
    let trace_reader = TraceReaderServer::new(trace_reader::TraceReaderService::new(
        Arc::clone(&context.backend.traces),
        limits,
    ))
    .accept_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(limits.max_recv_bytes);
    let dependency_reader = DependencyReaderServer::new(
        dependency_reader::DependencyReaderService::new(Arc::clone(&context.backend.dependencies)),
    )
    .accept_compressed(CompressionEncoding::Gzip);
    let capabilities = CapabilitiesServer::new(capabilities::CapabilitiesService::new(
        context.backend.capabilities,
    ))
    .accept_compressed(CompressionEncoding::Gzip);
    let reflection_v1 = reflection_builder()
        .build_v1()
        .context("building gRPC reflection (v1)")?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .context("building gRPC reflection (v1alpha)")?;
    let guard = &context.tenancy;
    Ok(Routes::new(context.readiness.health_service())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(trace_reader, guard.clone()))
        .add_service(InterceptedService::new(dependency_reader, guard.clone()))
        .add_service(InterceptedService::new(capabilities, guard.clone()))
        .add_service(InterceptedService::new(otlp_server(context), guard.clone())))
}

/// The separate writer listener: OTLP Export and health only.
pub(crate) fn writer_routes(context: &GrpcContext) -> Routes {
    Routes::new(context.readiness.health_service()).add_service(InterceptedService::new(
        otlp_server(context),
        context.tenancy.clone(),
    ))
}

fn otlp_server(context: &GrpcContext) -> TraceServiceServer<otlp::OtlpTraceService> {
    TraceServiceServer::new(otlp::OtlpTraceService::new(
        Arc::clone(&context.backend.traces),
        Arc::clone(&context.metrics),
    ))
    .accept_compressed(CompressionEncoding::Gzip)
    // OTLP batches from a busy collector are far above gRPC's 4 MiB default.
    .max_decoding_message_size(context.limits.max_recv_bytes)
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(jaeger_remote_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
