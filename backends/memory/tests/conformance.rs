//! The storage conformance suite (`storage-conformance`) in-process against the memory
//! backend, with the suite's fixtures and then (when present) Jaeger's, then the backend checks
//! (`memory/Backend/<Check>`). Nothing is excused; what is expected follows the backend's
//! declared `CAPABILITIES` (like Jaeger's reference store, a re-sent batch is stored again).
//! The equivalence check compares the memory backend with a second memory backend, which keeps
//! the harness itself honest.

use std::process::ExitCode;

use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

fn memory() -> remote_storage_core::Backend {
    backend_memory::open(backend_memory::MemoryConfig::default())
}

fn main() -> ExitCode {
    run_in_process(
        "memory",
        || async { Ok(memory()) },
        SuiteOptions::declared(backend_memory::CAPABILITIES)
            .with_reference(ReferenceBackend::new("memory", || async { Ok(memory()) })),
    )
}
