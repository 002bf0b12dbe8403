//! Behaviour of the memory backend through the store traits.

use std::num::NonZeroUsize;

use futures::TryStreamExt as _;
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::testing::span;
use remote_storage_core::{
    Backend, DependencyLink, DependencyQuery, OperationQuery, Tenant, Trace, TraceId, TraceLookup,
    TraceQuery, UnixNanos,
};

fn backend(max_traces: usize) -> Backend {
    backend_memory::open(backend_memory::MemoryConfig {
        max_traces: NonZeroUsize::new(max_traces).unwrap(),
    })
}

fn depth(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

async fn find(backend: &Backend, tenant: &Tenant, query: TraceQuery) -> Vec<Trace> {
    backend
        .traces
        .find_traces(tenant, query)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn get(backend: &Backend, tenant: &Tenant, trace: u8) -> Vec<Trace> {
    let lookups = vec![TraceLookup {
        trace_id: TraceId([trace; 16]),
        start: None,
        end: None,
    }];
    backend
        .traces
        .get_traces(tenant, lookups)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn ids(traces: &[Trace]) -> Vec<u8> {
    traces.iter().map(|trace| trace.trace_id.0[0]).collect()
}

#[tokio::test]
async fn spans_of_one_trace_append_across_writes_and_duplicates_are_kept() {
    let store = backend(10);
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(&tenant, vec![span(1, 1, None, "a", "root", 10, 20, false)])
        .await
        .unwrap();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 2, Some(1), "b", "child", 11, 12, false),
                span(1, 2, Some(1), "b", "child", 11, 12, false),
            ],
        )
        .await
        .unwrap();
    let traces = get(&store, &tenant, 1).await;
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans.len(), 3);
    assert!(
        get(&store, &tenant, 9).await.is_empty(),
        "unknown IDs are skipped"
    );
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
        get(&store, &tenant, 1).await.is_empty(),
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

#[tokio::test]
async fn find_returns_newest_matching_traces_first_up_to_depth() {
    let store = backend(100);
    let tenant = Tenant::default();
    let mut spans = Vec::new();
    for trace in 1..=5u8 {
        // Trace 1 has a late span that does not match the operation filter.
        spans.push(span(
            trace,
            1,
            None,
            "svc",
            "wanted",
            u64::from(trace) * 100,
            u64::from(trace) * 100 + 5,
            false,
        ));
    }
    spans.push(span(1, 2, Some(1), "svc", "other", 10_000, 10_001, false));
    spans.push(span(6, 1, None, "elsewhere", "wanted", 900, 905, false));
    store.traces.write_spans(&tenant, spans).await.unwrap();

    let mut query = TraceQuery::all(depth(3));
    query.service_name = Some("svc".into());
    query.operation_name = Some("wanted".into());
    let found = find(&store, &tenant, query.clone()).await;
    assert_eq!(ids(&found), [5, 4, 3]);

    query.search_depth = depth(10);
    query.start_time_min = Some(UnixNanos(200));
    query.start_time_max = Some(UnixNanos(400));
    let windowed = find(&store, &tenant, query).await;
    assert_eq!(ids(&windowed), [4, 3, 2], "inclusive window bounds");

    let mut any_service = TraceQuery::all(depth(10));
    any_service.operation_name = Some("wanted".into());
    let everywhere = find(&store, &tenant, any_service).await;
    assert_eq!(ids(&everywhere), [6, 5, 4, 3, 2, 1]);
    let whole = everywhere
        .iter()
        .find(|trace| trace.trace_id.0[0] == 1)
        .unwrap();
    assert_eq!(
        whole.spans.len(),
        2,
        "whole trace returned, not only the matching span"
    );
}

#[tokio::test]
async fn attribute_conditions_hold_on_one_span() {
    let store = backend(10);
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "svc", "a", 10, 20, true),
                span(1, 2, Some(1), "svc", "b", 10, 20, false),
            ],
        )
        .await
        .unwrap();
    let mut query = TraceQuery::all(depth(10));
    query.operation_name = Some("b".into());
    query.attributes.push(AttributeFilter {
        key: "error".into(),
        value: "true".into(),
    });
    assert!(find(&store, &tenant, query.clone()).await.is_empty());
    query.operation_name = Some("a".into());
    assert_eq!(find(&store, &tenant, query).await.len(), 1);
}

#[tokio::test]
async fn tenants_are_isolated_and_purge_wipes_all() {
    let store = backend(10);
    let red = Tenant::new("red");
    let blue = Tenant::new("blue");
    store
        .traces
        .write_spans(&red, vec![span(1, 1, None, "red-svc", "op", 10, 20, false)])
        .await
        .unwrap();
    store
        .traces
        .write_spans(
            &blue,
            vec![span(2, 1, None, "blue-svc", "op", 10, 20, false)],
        )
        .await
        .unwrap();
    assert_eq!(store.traces.get_services(&red).await.unwrap(), ["red-svc"]);
    assert!(get(&store, &blue, 1).await.is_empty());
    assert_eq!(
        find(&store, &blue, TraceQuery::all(depth(10))).await.len(),
        1
    );

    store.purger.purge().await.unwrap();
    assert!(store.traces.get_services(&red).await.unwrap().is_empty());
    assert!(get(&store, &blue, 2).await.is_empty());
}

#[tokio::test]
async fn dependencies_come_from_parent_child_spans_in_the_window() {
    let store = backend(10);
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "hello", "root", 100, 200, false),
                span(1, 2, Some(1), "world", "call", 110, 120, false),
                span(1, 3, Some(2), "hello", "back", 111, 112, false),
                span(1, 4, Some(2), "hello", "back", 113, 114, false),
                span(1, 5, Some(2), "hello", "back", 115, 116, false),
                span(2, 1, None, "hello", "root", 5_000, 5_100, false),
                span(2, 2, Some(1), "world", "call", 5_010, 5_020, false),
            ],
        )
        .await
        .unwrap();
    let links = store
        .dependencies
        .get_dependencies(
            &tenant,
            DependencyQuery {
                start: UnixNanos(0),
                end: UnixNanos(1_000),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        links,
        vec![
            DependencyLink {
                parent: "hello".into(),
                child: "world".into(),
                call_count: 1
            },
            DependencyLink {
                parent: "world".into(),
                child: "hello".into(),
                call_count: 3
            },
        ]
    );
}
