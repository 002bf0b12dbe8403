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
