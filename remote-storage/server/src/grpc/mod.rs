//! The gRPC surface: one adapter per service (the v2 API here, Jaeger's v1 API in [`v1`]), the
//! chunking rules, the single error mapping and the RPC metrics layer. [`main_routes`] and
//! [`writer_routes`] assemble what each listener serves.

pub(crate) mod admission;
mod capabilities;
pub(crate) mod chunking;
#[cfg(test)]
mod chunking_properties;
pub(crate) mod client_errors;
mod dependency_reader;
pub(crate) mod health;
mod otlp;
pub(crate) mod rpc_metrics;
mod status;
mod trace_reader;
mod trace_streaming;
mod traces_encoding;
mod v1;

use std::sync::Arc;

use anyhow::Context as _;
use jaeger_remote_proto::otlp::collector::trace_service_server::TraceServiceServer;
use jaeger_remote_proto::storage::v1::archive_span_reader_plugin_server::ArchiveSpanReaderPluginServer;
use jaeger_remote_proto::storage::v1::archive_span_writer_plugin_server::ArchiveSpanWriterPluginServer;
use jaeger_remote_proto::storage::v1::dependencies_reader_plugin_server::DependenciesReaderPluginServer;
use jaeger_remote_proto::storage::v1::plugin_capabilities_server::PluginCapabilitiesServer;
use jaeger_remote_proto::storage::v1::span_reader_plugin_server::SpanReaderPluginServer;
use jaeger_remote_proto::storage::v1::span_writer_plugin_server::SpanWriterPluginServer;
use jaeger_remote_proto::storage::v1::streaming_span_writer_plugin_server::StreamingSpanWriterPluginServer;
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

/// Everything on the main listener: the v2 API, OTLP Export, Jaeger's v1 API, health and
/// reflection. Every service except health and reflection goes through the tenancy guard. All
/// accept gzip requests (Jaeger's client may be configured for it).
pub(crate) fn main_routes(context: &GrpcContext) -> anyhow::Result<Routes> {
    let limits = context.limits;
    let trace_reader = TraceReaderServer::new(trace_reader::TraceReaderService::new(
        Arc::clone(&context.backend.traces),
        limits,
    ))
    .accept_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(limits.max_recv_bytes);
    let dependency_reader =
        DependencyReaderServer::new(dependency_reader::DependencyReaderService::new(
            Arc::clone(&context.backend.dependencies),
            context.backend.capabilities.dependency_source,
        ))
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
    let span_reader = SpanReaderPluginServer::new(v1::SpanReaderService::new(
        Arc::clone(&context.backend.traces),
        limits,
    ))
    .accept_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(limits.max_recv_bytes);
    let dependencies_reader =
        DependenciesReaderPluginServer::new(v1::DependenciesReaderService::new(
            Arc::clone(&context.backend.dependencies),
            context.backend.capabilities.dependency_source,
        ))
        .accept_compressed(CompressionEncoding::Gzip);
    let routes = Routes::new(context.readiness.health_service())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(trace_reader, guard.clone()))
        .add_service(InterceptedService::new(dependency_reader, guard.clone()))
        .add_service(InterceptedService::new(capabilities, guard.clone()))
        .add_service(InterceptedService::new(otlp_server(context), guard.clone()))
        .add_service(InterceptedService::new(span_reader, guard.clone()))
        .add_service(InterceptedService::new(dependencies_reader, guard.clone()))
        .add_service(InterceptedService::new(
            ArchiveSpanWriterPluginServer::new(v1::ArchiveWriterService),
            guard.clone(),
        ))
        .add_service(InterceptedService::new(
            ArchiveSpanReaderPluginServer::new(v1::ArchiveReaderService),
            guard.clone(),
        ));
    Ok(add_v1_writers(routes, context))
}

/// The separate writer listener: OTLP Export, the v1 writers (with the capabilities that tell
/// Jaeger's v1 client to stream) and health.
pub(crate) fn writer_routes(context: &GrpcContext) -> Routes {
    let routes = Routes::new(context.readiness.health_service()).add_service(
        InterceptedService::new(otlp_server(context), context.tenancy.clone()),
    );
    add_v1_writers(routes, context)
}

/// Jaeger's v1 writer services and `PluginCapabilities`, on both listeners.
fn add_v1_writers(routes: Routes, context: &GrpcContext) -> Routes {
    let writer = v1::SpanWriterService::new(
        Arc::clone(&context.backend.traces),
        Arc::clone(&context.metrics),
    );
    let max_recv_bytes = context.limits.max_recv_bytes;
    let guard = &context.tenancy;
    routes
        .add_service(InterceptedService::new(
            SpanWriterPluginServer::new(writer.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_recv_bytes),
            guard.clone(),
        ))
        .add_service(InterceptedService::new(
            StreamingSpanWriterPluginServer::new(writer)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_recv_bytes),
            guard.clone(),
        ))
        .add_service(InterceptedService::new(
            PluginCapabilitiesServer::new(v1::PluginCapabilitiesService)
                .accept_compressed(CompressionEncoding::Gzip),
            guard.clone(),
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
