//! The storage conformance suite (`storage-conformance`) in process against the engines named
//! by the environment: `CONFORMANCE_OPENSEARCH_URL` (here osmem-server on loopback, see
//! `scripts/opensearch-test-env.sh`; or a real OpenSearch) and `CONFORMANCE_ELASTICSEARCH_URL`
//! (a real Elasticsearch), each followed by the backend checks (`<name>/Backend/<Check>`).
//! Each fixture set and each check gets its own index prefix. An unset variable prints one
//! line saying what was skipped. `tests/containers.rs` runs the same suite on every supported
//! engine version in throwaway containers.

mod common;

use std::process::ExitCode;

use storage_conformance::environment::{external_url, service_url};

fn main() -> ExitCode {
    let mut result = ExitCode::SUCCESS;
    if let Some(url) = service_url(
        "opensearch",
        "the Elasticsearch/OpenSearch conformance suite",
    ) && common::run_suite(backend_elasticsearch::NAME, url) != ExitCode::SUCCESS
    {
        result = ExitCode::FAILURE;
    }
    if let Some(url) = external_url(
        "CONFORMANCE_ELASTICSEARCH_URL",
        "the Elasticsearch/OpenSearch conformance suite against a real Elasticsearch",
        "export CONFORMANCE_ELASTICSEARCH_URL=http://[USER:PASSWORD@]HOST:9200 (a cluster the \
         suite may create `conformance-*` indices in)",
    ) && common::run_suite("elasticsearch-real", url) != ExitCode::SUCCESS
    {
        result = ExitCode::FAILURE;
    }
    result
}
