//! The storage conformance suite (Jaeger's integration tests, ported) in-process against a
//! fresh ephemeral LSM store per fixture set, with the default retention. Nothing is excused.

use std::process::ExitCode;

use backend_lsm::LsmConfig;
use storage_conformance::{SuiteOptions, run_in_process};

fn main() -> ExitCode {
    run_in_process(
        "lsm",
        || async {
            let backend =
                tokio::task::spawn_blocking(|| backend_lsm::open(LsmConfig::ephemeral())).await??;
            Ok(backend)
        },
        SuiteOptions::in_process(),
    )
}
