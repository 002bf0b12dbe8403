//! In-memory backend: bounded per tenant, compact, indexed, and exact.
//!
//! - Each tenant keeps at most `max_traces` traces; a new trace evicts the oldest one, and with
//!   it the services and operations no other stored trace still holds.
//! - A span is kept as a small index record plus compact bytes in which every string
//!   attribute is a number in the tenant's term dictionary (`tenant`, `codec`).
//! - Spans are indexed by start time, globally and per service, and by attribute term (Bloom
//!   filters over blocks of 64 spans, and per-span term fingerprints, covering span, event,
//!   link, scope and resource attributes). A search walks a time index newest first, or tests
//!   the spans of the blocks that may hold its attribute terms, whichever looks at fewer spans
//!   (`tenant::search`).
//! - Spans appended to an existing trace over many writes are kept, including spans that share
//!   a span ID.
//!
//! Data lives only as long as the process.

use std::num::NonZeroUsize;
use std::sync::Arc;

use remote_storage_core::{Backend, Capabilities};

mod blocks;
mod codec;
mod names;
mod records;
mod store;
mod tenant;
mod terms;

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
