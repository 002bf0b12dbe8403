//! The storage conformance suite (Jaeger's integration tests, ported) in-process against a
//! fresh ephemeral LSM store per fixture set, with the default retention, then the backend
//! checks (`lsm/Backend/<Check>`) each on a fresh store. Nothing is excused; what is expected
//! follows the backend's declared `CAPABILITIES` (a re-sent batch is idempotent, spans of a
//! trace come back in key order), and every answer must equal the memory backend's.

use std::process::ExitCode;

use backend_lsm::LsmConfig;
use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

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
        SuiteOptions::declared(backend_lsm::CAPABILITIES).with_reference(reference),
    )
}
