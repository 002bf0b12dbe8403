//! What the conformance test binaries share: running the whole suite, in process, against
//! one engine.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

use backend_elasticsearch::{ElasticsearchConfig, RefreshPolicy};
use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

static NEXT_PREFIX: AtomicU32 = AtomicU32::new(0);

/// A config with an index prefix no other run uses.
pub(crate) fn fresh_config(url: &str) -> ElasticsearchConfig {
    let mut config = ElasticsearchConfig::new(url);
    config.index_prefix = format!(
        "conformance-{}-{}",
        std::process::id(),
        NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    config.replicas = 0;
    config
}

/// The suite (every fixture set, both APIs, the backend checks) against the engine at `url`,
/// its trials named `<name>/…`. Nothing is excused; what is expected follows the backend's
/// declared capabilities, and every answer must equal the memory backend's.
pub(crate) fn run_suite(name: &str, url: String) -> ExitCode {
    let reference = ReferenceBackend::new("memory", || async {
        Ok(backend_memory::open(backend_memory::MemoryConfig::default()))
    });
    run_in_process(
        name,
        move || {
            let config = fresh_config(&url);
            async move { Ok(backend_elasticsearch::open(config).await?) }
        },
        SuiteOptions::declared(backend_elasticsearch::capabilities(RefreshPolicy::WaitFor))
            .with_reference(reference),
    )
}
