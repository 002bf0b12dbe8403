//! Settings of the memory backend, with their defaults written once.

use std::num::NonZeroUsize;

/// Memory backend settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Traces kept per tenant; the oldest trace is evicted beyond this.
    pub max_traces: NonZeroUsize,
}

impl MemoryConfig {
    /// Traces kept per tenant by default.
    pub const DEFAULT_MAX_TRACES: NonZeroUsize = NonZeroUsize::new(100_000).unwrap();
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_traces: Self::DEFAULT_MAX_TRACES,
        }
    }
}
