//! Structured-filter searches at the edges of the plan's clauses
//! (`storage_conformance::filter_edges`) against the engine in `CONFORMANCE_OPENSEARCH_URL`
//! (osmem-server here, see `scripts/opensearch-test-env.sh`): each answer must equal the
//! shared matcher applied to every stored span. Skipped, saying so, when the variable is unset.

use backend_elasticsearch::{ElasticsearchConfig, ElasticsearchStore, RefreshPolicy};
use remote_storage_core::{Purger as _, Tenant};
use storage_conformance::environment::service_url;
use storage_conformance::filter_edges::check_filter_edges;

#[tokio::test]
async fn filter_searches_equal_the_matcher_over_every_span() {
    let Some(url) = service_url("opensearch", "the Elasticsearch filter edge checks") else {
        return;
    };
    let mut config = ElasticsearchConfig::new(&url);
    config.replicas = 0;
    config.index_prefix = format!("filter-edges-{}", std::process::id());
    config.refresh = RefreshPolicy::WaitFor;
    let store = ElasticsearchStore::open(config).await.unwrap();
    let checked = check_filter_edges(store.as_ref(), &Tenant::default()).await;
    store.purge().await.unwrap();
    checked.unwrap();
}
