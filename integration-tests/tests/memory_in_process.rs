//! Mode 1: the whole suite in-process against the memory backend, with this crate's fixtures
//! and then (when present) Jaeger's, then the backend checks (`memory/Backend/<Check>`).
//! Nothing is excused; like Jaeger's reference store, a re-sent batch is stored again
//! (`idempotent_writes` off). The equivalence check compares the memory backend with a second
//! memory backend, which keeps the harness itself honest.

use std::process::ExitCode;

use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

fn memory() -> remote_storage_core::Backend {
    backend_memory::open(backend_memory::MemoryConfig::default())
}

fn main() -> ExitCode {
    run_in_process(
        "memory",
        || async { Ok(memory()) },
        SuiteOptions::in_process()
            .with_reference(ReferenceBackend::new("memory", || async { Ok(memory()) })),
    )
}
