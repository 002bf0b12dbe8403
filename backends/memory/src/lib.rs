//! In-memory backend (work in progress).
use std::num::NonZeroUsize;

use remote_storage_core::Backend;

/// Memory backend settings.
#[derive(Debug, Clone, Copy)]
pub struct MemoryConfig {
    /// Traces kept per tenant; the oldest trace is evicted beyond this.
    pub max_traces: NonZeroUsize,
}

/// Opens an empty memory backend.
pub fn open(_config: MemoryConfig) -> Backend {
    todo!()
}
