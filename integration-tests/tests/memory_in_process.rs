//! Mode 1: the whole suite in-process against the memory backend, with this crate's fixtures
//! and then (when present) Jaeger's. Nothing is excused.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use storage_conformance::{SuiteOptions, run_in_process};

fn main() -> ExitCode {
    run_in_process(
        "memory",
        || async {
            let max_traces = NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN);
            Ok(backend_memory::open(backend_memory::MemoryConfig {
                max_traces,
            }))
        },
        SuiteOptions::in_process(),
    )
}
