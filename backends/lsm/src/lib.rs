#![doc = include_str!("../README.md")]

use remote_storage_core::{Backend, Capabilities, Rewrites, SpanOrder, StoreResult, Visibility};

#[cfg(feature = "cli")]
mod args;
mod config;
mod dependencies;
mod engine;
mod error;
mod fault;
mod health;
mod keys;
#[cfg(test)]
mod properties;
mod read;
mod records;
mod rollups;
mod store;

#[cfg(feature = "cli")]
pub use args::LsmArgs;
pub use config::{LsmConfig, StorageLocation, SyncPolicy};
pub use error::LsmError;
pub use fault::Fault;
pub use store::LsmStore;

/// Backend name used in logs and metrics.
pub const NAME: &str = "lsm";

/// What the LSM backend can answer: every query shape (searches without a service name are
/// served from the attribute, error or global time index), each condition on one span. A
/// re-sent batch adds nothing (spans are keyed by content); writes are readable on return; the
/// spans of a trace come back in key order, not write order.
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
    // Every candidate is decided by the shared filter evaluator on the whole stored span.
    structured_filters: true,
    operation_span_kinds: true,
    dependency_source: "",
    rewrites: Rewrites::Idempotent,
    visibility: Visibility::OnReturn,
    span_order: SpanOrder::Any,
};

/// Opens (or creates) the store described by `config` and bundles it as a [`Backend`].
///
/// Blocking: call it before serving or from `spawn_blocking`. Startup does not scan data.
pub fn open(config: LsmConfig) -> StoreResult<Backend> {
    LsmStore::open(config).map(LsmStore::into_backend)
}
