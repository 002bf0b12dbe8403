//! Failures against a real engine (osmem-server from `CONFORMANCE_OPENSEARCH_URL`, see
//! `scripts/opensearch-test-env.sh`):
//! - the engine going away mid-load (a TCP proxy owned by the test is cut): calls fail as
//!   `Unavailable`, readiness fails, and once the proxy is back everything works again without
//!   reopening the store, and every acknowledged span reads back;
//! - documents the engine refuses one by one (an operator's template derived from ours maps
//!   `operation` as a number): exactly those spans are
//!   reported refused (`StoreError::Rejected`, the server's `partial_success`), the others are
//!   stored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backend_elasticsearch::{ElasticsearchConfig, ElasticsearchStore};
use futures::TryStreamExt as _;
use remote_storage_core::testing::span;
use remote_storage_core::{
    ErrorKind, Purger as _, Span, StoreError, StoreLifecycle as _, Tenant, TraceId, TraceLookup,
    TraceStore as _, UnixNanos,
};
use storage_conformance::environment::service_url;
use storage_conformance::proxy::CuttableProxy;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn config(url: &str) -> ElasticsearchConfig {
    let mut config = ElasticsearchConfig::new(url);
    config.index_prefix = format!(
        "faults-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    config.replicas = 0;
    config.request_timeout = Duration::from_secs(3);
    config.connect_timeout = Duration::from_secs(1);
    config
}

fn recent(n: u64) -> u64 {
    UnixNanos::now().0 - 3_600_000_000_000 + n * 1_000_000
}

async fn spans_of(store: &ElasticsearchStore, trace: u8) -> usize {
    let lookup = TraceLookup {
        trace_id: TraceId([trace; 16]),
        start: None,
        end: None,
    };
    let traces: Vec<_> = store
        .get_traces(&Tenant::default(), vec![lookup])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    traces.iter().map(|trace| trace.spans.len()).sum()
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(error) => assert_eq!(error.kind(), ErrorKind::Unavailable, "{what}: {error}"),
        Ok(value) => panic!("{what} succeeded while the engine was away: {value:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_unavailable_and_recovery_needs_no_restart() {
    let Some(url) = service_url("opensearch", "the Elasticsearch/OpenSearch outage test") else {
        return;
    };
    let upstream: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("CONFORMANCE_OPENSEARCH_URL is http://IP:PORT");
    let proxy = CuttableProxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), upstream)
        .await
        .unwrap();
    let store = ElasticsearchStore::open(config(&format!("http://{}", proxy.address())))
        .await
        .unwrap();
    let tenant = Tenant::default();
    let mut acknowledged = 0;
    for n in 0..20_u8 {
        let batch = vec![span(
            7,
            n + 1,
            None,
            "svc",
            "op",
            recent(n.into()),
            recent(n.into()) + 5,
            false,
        )];
        store.write_spans(&tenant, batch).await.unwrap();
        acknowledged += 1;
    }

    proxy.stop();
    let down_batch: Vec<Span> = vec![span(
        7,
        100,
        None,
        "svc",
        "op",
        recent(100),
        recent(100) + 5,
        false,
    )];
    assert_unavailable(
        store.write_spans(&tenant, down_batch.clone()).await,
        "write_spans",
    );
    assert_unavailable(store.ready().await, "ready");
    assert_unavailable(store.get_services(&tenant).await, "get_services");

    let proxy = proxy.restart().await.unwrap();
    store
        .ready()
        .await
        .expect("ready again once the engine is back");
    // The client retries the refused write; it lands once.
    store
        .write_spans(&tenant, down_batch.clone())
        .await
        .unwrap();
    store.write_spans(&tenant, down_batch).await.unwrap();
    acknowledged += 1;
    assert_eq!(
        spans_of(&store, 7).await,
        acknowledged,
        "every acknowledged span, once"
    );
    store.purge().await.unwrap();
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_are_counted_and_the_others_stored() {
    let Some(url) = service_url("opensearch", "the Elasticsearch/OpenSearch refusal test") else {
        return;
    };
    let config = config(&url);
    // Opening installs our templates (and the TLS provider reqwest needs); indices are only
    // created by writes. An operator's template derived from ours, taking precedence, maps
    // `operation` as a number: spans named "abc" cannot be indexed, spans named "42" can.
    let store = ElasticsearchStore::open(config.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let ours: serde_json::Value = client
        .get(format!(
            "{url}/_index_template/{}-span",
            config.index_prefix
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut template = ours["index_templates"][0]["index_template"].clone();
    template["priority"] = serde_json::json!(300);
    template["template"]["mappings"]["properties"]["operation"] =
        serde_json::json!({"type": "long"});
    let response = client
        .put(format!(
            "{url}/_index_template/{}-numeric-operations",
            config.index_prefix
        ))
        .json(&template)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    let tenant = Tenant::default();
    let batch = vec![
        span(9, 1, None, "svc", "42", recent(1), recent(1) + 5, false),
        span(9, 2, None, "svc", "abc", recent(2), recent(2) + 5, false),
        span(9, 3, None, "svc", "43", recent(3), recent(3) + 5, false),
    ];
    let error = store.write_spans(&tenant, batch).await.unwrap_err();
    let (refused, reason) = error.rejected_spans().expect("a partial refusal");
    assert_eq!(refused, 1, "{error}");
    assert!(reason.contains("HTTP 400"), "{reason}");
    assert_eq!(
        spans_of(&store, 9).await,
        2,
        "the accepted spans are stored"
    );
    store.purge().await.unwrap();
    let _ = client
        .delete(format!(
            "{url}/_index_template/{}-numeric-operations",
            config.index_prefix
        ))
        .send()
        .await;
}
