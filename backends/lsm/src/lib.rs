#![doc = include_str!("../README.md")]

use remote_storage_core::{Backend, Capabilities, StoreResult};

mod config;
mod engine;
mod error;
mod keys;
mod read;
mod records;
mod store;

pub use config::{LsmConfig, StorageLocation, SyncPolicy};
pub use error::LsmError;
pub use store::LsmStore;

/// Backend name used in logs and metrics.
pub const NAME: &str = "lsm";

/// What the LSM backend can answer: searches without a service name (served from the
/// attribute, error or global time index), and every condition evaluated on one span.
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
};

/// Opens (or creates) the store described by `config` and bundles it as a [`Backend`].
///
/// Blocking: call it before serving or from `spawn_blocking`. Startup does not scan data.
pub fn open(config: LsmConfig) -> StoreResult<Backend> {
    LsmStore::open(config).map(LsmStore::into_backend)
}
