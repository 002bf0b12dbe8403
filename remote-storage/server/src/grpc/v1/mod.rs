//! Jaeger's v1 remote-storage API (`jaeger.storage.v1`), served beside the v2 services over
//! the same backend, tenancy guard, limits and metrics, for Jaeger v1 components run with
//! `SPAN_STORAGE_TYPE=grpc`.
//!
//! Stored data stays OTLP: writes translate v1 → OTLP and reads OTLP → v1 with
//! [`remote_storage_core::v1`], so spans written through either API read back through both.

mod archive;
mod chunks;
mod dependencies_reader;
mod plugin_capabilities;
mod span_reader;
mod span_writer;

pub(crate) use archive::{ArchiveReaderService, ArchiveWriterService};
pub(crate) use dependencies_reader::DependenciesReaderService;
pub(crate) use plugin_capabilities::PluginCapabilitiesService;
pub(crate) use span_reader::SpanReaderService;
pub(crate) use span_writer::SpanWriterService;
