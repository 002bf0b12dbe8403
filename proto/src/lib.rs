//! Protobuf and gRPC types for Jaeger's remote storage APIs, v2 and v1.
//!
//! - [`storage::v2`]: `jaeger.storage.v2` (TraceReader, DependencyReader, Capabilities), compiled
//!   from this crate's own `.proto` files.
//! - [`storage::v1`]: `jaeger.storage.v1` (SpanWriterPlugin, StreamingSpanWriterPlugin,
//!   SpanReaderPlugin, DependenciesReaderPlugin, PluginCapabilities and the deprecated archive
//!   services), the API Jaeger v1 components use with `SPAN_STORAGE_TYPE=grpc`.
//! - [`api_v2`]: `jaeger.api_v2`, the v1 span model those services carry.
//! - [`expression::v1`]: `jaeger.expression.v1`, the experimental structured filter.
//! - [`encoded`]: `TracesData` the server encodes itself, and the TraceReader server that
//!   streams it ([`storage::v2::encoded_server`]).
//! - [`otlp`]: the OTLP types and the `TraceService`, re-exported from `opentelemetry-proto` so
//!   that both APIs share one `TracesData` type.

/// `jaeger.storage.v2` and `jaeger.storage.v1`.
pub mod storage {
    /// Version 1 of Jaeger's storage API (the gRPC storage plugin API of Jaeger v1).
    #[allow(missing_docs, clippy::all, unreachable_pub)]
    pub mod v1 {
        tonic::include_proto!("jaeger.storage.v1");
    }

    /// Version 2 of Jaeger's storage API.
    #[allow(missing_docs, clippy::all, unreachable_pub)]
    pub mod v2 {
        tonic::include_proto!("jaeger.storage.v2");

        /// The TraceReader server again, streaming [`crate::encoded::EncodedTracesData`]
        /// instead of `TracesData` (same wire format; see that type).
        pub mod encoded_server {
            include!(concat!(
                env!("OUT_DIR"),
                "/encoded_server/jaeger.storage.v2.rs"
            ));
        }
    }
}

pub mod encoded;

/// `jaeger.api_v2`: Jaeger's v1 span model.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod api_v2 {
    tonic::include_proto!("jaeger.api_v2");
}

/// `jaeger.expression.v1`.
pub mod expression {
    /// Version 1 of the structured filter AST.
    #[allow(missing_docs, clippy::all, unreachable_pub)]
    pub mod v1 {
        tonic::include_proto!("jaeger.expression.v1");
    }
}

/// OTLP types shared with the `opentelemetry-proto` crate.
pub mod otlp {
    pub use opentelemetry_proto::tonic::collector::trace::v1 as collector;
    pub use opentelemetry_proto::tonic::common::v1 as common;
    pub use opentelemetry_proto::tonic::resource::v1 as resource;
    pub use opentelemetry_proto::tonic::trace::v1 as trace;
}

/// Encoded `FileDescriptorSet` of the `jaeger.storage.v2` and `jaeger.storage.v1` protos and
/// their imports, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("jaeger_storage_v2_descriptor");
