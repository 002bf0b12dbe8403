//! In-memory backend: bounded per tenant, indexed by time and service, and exact.
//!
//! - Each tenant keeps at most `max_traces` traces; a new trace evicts the oldest one, and with
//!   it the services and operations no other stored trace still holds.
//! - Spans are indexed by start time, globally and per service, so a search walks candidate
//!   spans newest first inside the query's window and stops once `search_depth` traces matched.
//! - Spans appended to an existing trace over many writes are kept, including spans that share
//!   a span ID.
//!
//! Data lives only as long as the process.

use std::num::NonZeroUsize;
use std::sync::Arc;

use remote_storage_core::{Backend, Capabilities};

mod store;
mod tenant;

pub use store::MemoryStore;

/// Backend name used in logs and metrics.
pub const NAME: &str = "memory";

/// Memory backend settings.
#[derive(Debug, Clone, Copy)]
pub struct MemoryConfig {
    /// Traces kept per tenant; the oldest trace is evicted beyond this.
    pub max_traces: NonZeroUsize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_traces: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// What the memory backend can answer: searches without a service name, and every condition
/// evaluated on one span.
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
};

/// Opens an empty memory backend.
pub fn open(config: MemoryConfig) -> Backend {
    Backend::from_store(NAME, CAPABILITIES, Arc::new(MemoryStore::new(config)))
}
