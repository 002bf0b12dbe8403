//! Compiles the jaeger.storage.v2 and v1 protos with protox, so no system `protoc` is needed.
//! OTLP messages are mapped onto the `opentelemetry-proto` crate's types with `extern_path`, so a
//! `TracesData` here is the very type the OTLP `TraceService` uses.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "proto/jaeger/storage/v2/trace_storage.proto",
    "proto/jaeger/storage/v2/dependency_storage.proto",
    "proto/jaeger/storage/v2/capabilities.proto",
    // The v1 API (Jaeger v1 components with SPAN_STORAGE_TYPE=grpc); imports the api_v2 model.
    "proto/jaeger/storage/v1/storage.proto",
    // Compiled only so that reflection can describe the OTLP TraceService served beside ours;
    // its Rust types come from `opentelemetry-proto` through `extern_path`.
    "proto/opentelemetry/proto/collector/trace/v1/trace_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file_descriptors = protox::compile(PROTOS, ["proto"])?;

    // Reflection serves this descriptor set, imports included.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("jaeger_storage_v2_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".opentelemetry.proto", "::opentelemetry_proto::tonic")
        // A v1 query's tags in key order, so validation errors and logs are deterministic.
        .btree_map(".jaeger.storage.v1.TraceQueryParameters.tags")
        .compile_fds(file_descriptors.clone())?;

    // A second TraceReader server whose streamed `TracesData` is `EncodedTracesData`: bytes the
    // server encodes itself, straight from stored spans, without building the messages first.
    // Every other message is the one generated above.
    let encoded_dir = out_dir.join("encoded_server");
    std::fs::create_dir_all(&encoded_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&encoded_dir)
        .extern_path(
            ".opentelemetry.proto.trace.v1.TracesData",
            "crate::encoded::EncodedTracesData",
        )
        .extern_path(".opentelemetry.proto", "::opentelemetry_proto::tonic")
        .extern_path(".jaeger.storage.v2", "crate::storage::v2")
        .extern_path(".jaeger.expression.v1", "crate::expression::v1")
        .extern_path(".jaeger.storage.v1", "crate::storage::v1")
        .extern_path(".jaeger.api_v2", "crate::api_v2")
        .compile_fds(file_descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
