//! The storage conformance suite (Jaeger's integration tests, ported) in-process against a
//! fresh ephemeral LSM store per fixture set, with the default retention, then the backend
//! checks (`lsm/Backend/<Check>`) each on a fresh store. Nothing is excused; a re-sent batch is
//! idempotent, spans of a trace come back in key order (not write order), and every answer
//! must equal the memory backend's.

use std::process::ExitCode;

use backend_lsm::LsmConfig;
use storage_conformance::{ReferenceBackend, SpanOrder, SuiteOptions, run_in_process};

fn main() -> ExitCode {
    let reference = ReferenceBackend::new("memory", || async {
        Ok(backend_memory::open(backend_memory::MemoryConfig::default()))
    });
    run_in_process(
        "lsm",
        || async {
            let backend =
                tokio::task::spawn_blocking(|| backend_lsm::open(LsmConfig::ephemeral())).await??;
            Ok(backend)
        },
        SuiteOptions::in_process()
            .with_idempotent_writes(true)
            .with_span_order(SpanOrder::Any)
            .with_reference(reference),
    )
}
