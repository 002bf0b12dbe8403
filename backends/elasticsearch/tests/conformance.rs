//! The storage conformance suite (`storage-conformance`) in process against an OpenSearch- or
//! Elasticsearch-compatible engine: `CONFORMANCE_OPENSEARCH_URL` (osmem-server on loopback, see
//! `scripts/opensearch-test-env.sh`) and, when set, `CONFORMANCE_ELASTICSEARCH_URL` (a real
//! cluster), then the backend checks (`elasticsearch/Backend/<Check>`). Each fixture set and
//! each check gets its own index prefix. Nothing is excused; what is expected follows the
//! backend's declared capabilities, and every answer must equal the memory backend's.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

use backend_elasticsearch::{ElasticsearchConfig, RefreshPolicy};
use storage_conformance::environment::service_url;
use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

static NEXT_PREFIX: AtomicU32 = AtomicU32::new(0);

/// A config with an index prefix no other run uses.
fn fresh_config(url: &str) -> ElasticsearchConfig {
    let mut config = ElasticsearchConfig::new(url);
    config.index_prefix = format!(
        "conformance-{}-{}",
        std::process::id(),
        NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    config.replicas = 0;
    config
}

fn main() -> ExitCode {
    let url = service_url(
        "opensearch",
        "the Elasticsearch/OpenSearch conformance suite",
    )
    .or_else(|| std::env::var("CONFORMANCE_ELASTICSEARCH_URL").ok());
    let Some(url) = url else {
        return ExitCode::SUCCESS;
    };
    let reference = ReferenceBackend::new("memory", || async {
        Ok(backend_memory::open(backend_memory::MemoryConfig::default()))
    });
    run_in_process(
        backend_elasticsearch::NAME,
        move || {
            let config = fresh_config(&url);
            async move { Ok(backend_elasticsearch::open(config).await?) }
        },
        SuiteOptions::declared(backend_elasticsearch::capabilities(RefreshPolicy::WaitFor))
            .with_reference(reference),
    )
}
