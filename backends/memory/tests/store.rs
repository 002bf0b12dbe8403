//! Behaviour specific to the memory backend: eviction and stats. The store-trait contract every
//! backend shares is checked by `storage-conformance` (`memory/Backend/<Check>` trials of
//! `tests/conformance.rs`).

use std::num::NonZeroUsize;

use remote_storage_core::testing::span;
use remote_storage_core::{Backend, OperationQuery, Tenant};
use storage_conformance::behaviour::get;

fn backend(max_traces: usize) -> Backend {
    backend_memory::open(backend_memory::MemoryConfig {
        max_traces: NonZeroUsize::new(max_traces).unwrap(),
    })
}

#[tokio::test]
async fn stats_count_every_stored_span_including_copies() {
    let store = backend(10);
    let tenant = Tenant::default();
    let root = span(1, 1, None, "a", "root", 10, 20, false);
    let child = span(1, 2, Some(1), "b", "child", 11, 12, false);
    store.traces.write_spans(&tenant, vec![root]).await.unwrap();
    store
        .traces
        .write_spans(&tenant, vec![child.clone(), child])
        .await
        .unwrap();
    let stats = store.lifecycle.stats().unwrap();
    assert_eq!((stats.traces, stats.spans), (1, 3));
}

#[tokio::test]
async fn eviction_drops_the_oldest_trace_and_its_unshared_services_and_operations() {
    let store = backend(2);
    let tenant = Tenant::default();
    let write = |trace: u8, service: &'static str, name: &'static str| {
        let store = store.clone();
        let tenant = tenant.clone();
        async move {
            store
                .traces
                .write_spans(
                    &tenant,
                    vec![span(trace, 1, None, service, name, 10, 20, false)],
                )
                .await
                .unwrap();
        }
    };
    write(1, "only-in-first", "op-a").await;
    write(2, "shared", "op-b").await;
    write(3, "shared", "op-c").await;

    assert!(
        get(&store, &tenant, 1).await.unwrap().is_empty(),
        "oldest trace evicted"
    );
    assert_eq!(
        store.traces.get_services(&tenant).await.unwrap(),
        vec!["shared".to_owned()]
    );
    write(4, "other", "op-d").await;
    let operations = store
        .traces
        .get_operations(
            &tenant,
            OperationQuery {
                service: "shared".into(),
                span_kind: None,
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = operations.iter().map(|op| op.name.as_str()).collect();
    assert_eq!(names, ["op-c"], "op-b left with trace 2");
    let stats = store.lifecycle.stats().unwrap();
    assert_eq!((stats.traces, stats.spans), (2, 2));
}

/// Searches walk the services' time indexes, which forget evicted spans lazily: with many
/// more traces written than kept (so the indexes merge runs and rebuild), a search by service
/// finds that service's newest live traces, newest first, and a search of every service finds
/// exactly the live traces.
#[tokio::test]
async fn searches_find_only_live_traces_after_many_evictions() {
    use remote_storage_core::{TraceId, TraceQuery};
    use storage_conformance::behaviour::find;

    let store = backend(100);
    let tenant = Tenant::default();
    for trace in 1..=250u8 {
        let service = if trace % 2 == 0 { "even" } else { "odd" };
        let start = u64::from(trace) * 1_000;
        let spans = (1..=3u8)
            .map(|id| {
                let parent = (id > 1).then_some(1);
                span(
                    trace,
                    id,
                    parent,
                    service,
                    "op",
                    start + u64::from(id),
                    start + 500,
                    false,
                )
            })
            .collect();
        store.traces.write_spans(&tenant, spans).await.unwrap();
    }
    let found = |service: Option<&str>, depth: usize| {
        let store = store.clone();
        let tenant = tenant.clone();
        let mut query = TraceQuery::all(NonZeroUsize::new(depth).unwrap());
        query.service_name = service.map(str::to_owned);
        async move {
            store
                .traces
                .find_trace_ids(&tenant, query)
                .await
                .unwrap()
                .into_iter()
                .map(|found| found.trace_id)
                .collect::<Vec<TraceId>>()
        }
    };
    let expected_even: Vec<TraceId> = (211..=250u8)
        .rev()
        .filter(|trace| trace % 2 == 0)
        .map(|trace| TraceId([trace; 16]))
        .collect();
    assert_eq!(found(Some("even"), 20).await, expected_even);
    let every: Vec<TraceId> = (151..=250u8)
        .rev()
        .map(|trace| TraceId([trace; 16]))
        .collect();
    assert_eq!(found(None, 500).await, every);
    let traces = find(
        &store,
        &tenant,
        TraceQuery::all(NonZeroUsize::new(500).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(traces.len(), 100);
    assert!(traces.iter().all(|trace| trace.spans.len() == 3));
}
