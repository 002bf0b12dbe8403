#![doc = include_str!("../README.md")]

use std::sync::Arc;

use remote_storage_core::{Backend, Capabilities, Rewrites, SpanOrder, Visibility};

#[cfg(feature = "cli")]
mod args;
mod blocks;
mod codec;
mod config;
mod error;
mod names;
mod records;
mod rollups;
mod store;
mod tenant;
mod terms;
mod time_index;

#[cfg(feature = "cli")]
pub use args::MemoryArgs;
pub use config::MemoryConfig;
pub use store::MemoryStore;

/// Backend name used in logs and metrics.
pub const NAME: &str = "memory";

/// What the memory backend can answer: every query shape, each condition on one span. Like
/// Jaeger's reference store, a re-sent batch is stored again; writes are readable on return,
/// in write order.
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
    // Every candidate is decided by the shared filter evaluator on the whole stored span.
    structured_filters: true,
    operation_span_kinds: true,
    dependency_source: "",
    rewrites: Rewrites::KeepCopies,
    visibility: Visibility::OnReturn,
    span_order: SpanOrder::AsWritten,
};

/// Opens an empty memory backend.
pub fn open(config: MemoryConfig) -> Backend {
    Backend::from_store(NAME, CAPABILITIES, Arc::new(MemoryStore::new(config)))
}
