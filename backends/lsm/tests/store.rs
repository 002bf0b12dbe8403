//! Behaviour specific to the LSM backend, on temporary directories: approximate stats and
//! directory stores. The store-trait contract every backend shares (and the comparison with the
//! memory backend) is checked by `storage-conformance` (`lsm/Backend/<Check>` trials of
//! `tests/conformance.rs`); reopening, retention and durability are in `tests/durability.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use backend_lsm::{LsmConfig, LsmStore};
use remote_storage_core::testing::span;
use remote_storage_core::{Span, Tenant};
use storage_conformance::behaviour::get;

#[tokio::test]
async fn stats_are_approximate_and_a_purge_clears_them() {
    let store = backend_lsm::open(LsmConfig {
        // Test spans start near the epoch: keep them forever.
        retention: Duration::ZERO,
        ..LsmConfig::ephemeral()
    })
    .unwrap();
    let tenant = Tenant::default();
    let root = span(1, 1, None, "a", "root", 10, 20, false);
    store.traces.write_spans(&tenant, vec![root]).await.unwrap();
    let second_batch = vec![
        span(1, 2, Some(1), "b", "child", 11, 12, false),
        span(1, 2, Some(1), "b", "child", 11, 13, false),
        span(1, 2, Some(1), "b", "child", 11, 12, false),
    ];
    for _ in 0..2 {
        let batch = second_batch.clone();
        store.traces.write_spans(&tenant, batch).await.unwrap();
    }
    let stats = store.lifecycle.stats().unwrap();
    assert!(stats.spans >= 4, "approximate counts: {stats:?}");
    assert!(stats.traces >= 1);
    store.purger.purge().await.unwrap();
    assert_eq!(store.lifecycle.stats().unwrap().spans, 0);
}

#[tokio::test]
async fn stores_open_in_a_directory_too() {
    let directory = tempfile::tempdir().unwrap();
    let store = LsmStore::open(LsmConfig {
        retention: Duration::ZERO,
        ..LsmConfig::in_directory(directory.path())
    })
    .unwrap()
    .into_backend();
    store
        .traces
        .write_spans(
            &Tenant::default(),
            vec![span(1, 1, None, "a", "b", 1, 2, false)],
        )
        .await
        .unwrap();
    assert_eq!(get(&store, &Tenant::default(), 1).await.unwrap().len(), 1);
    store.lifecycle.close().await.unwrap();
}

/// A large trace written over several batches reads back every span exactly once: re-sent
/// spans add nothing, in whichever batch they come again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_traces_read_back_whole_and_deduplicated() {
    let store = backend_lsm::open(LsmConfig {
        retention: Duration::ZERO,
        ..LsmConfig::ephemeral()
    })
    .unwrap();
    let tenant = Tenant::default();
    let template = span(9, 1, None, "svc", "op", 1_000, 100_000, false);
    let make = |index: u64| {
        let mut otlp = template.otlp().clone();
        otlp.span_id = (index + 1).to_be_bytes().to_vec();
        otlp.start_time_unix_nano = 1_000 + index;
        Span::new(
            Arc::clone(template.resource()),
            Arc::clone(template.scope()),
            otlp,
        )
        .unwrap()
    };
    let batches: Vec<Vec<Span>> = (0..3u64)
        .map(|batch| (batch * 1_500..(batch + 1) * 1_500).map(make).collect())
        .collect();
    for batch in &batches {
        store
            .traces
            .write_spans(&tenant, batch.clone())
            .await
            .unwrap();
    }
    let resent = batches[1].clone();
    store.traces.write_spans(&tenant, resent).await.unwrap();
    store
        .traces
        .write_spans(&tenant, vec![make(0), make(4_499)])
        .await
        .unwrap();
    let traces = get(&store, &tenant, 9).await.unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans.len(), 4_500);
    let ids: HashSet<Vec<u8>> = traces[0]
        .spans
        .iter()
        .map(|span| span.otlp().span_id.clone())
        .collect();
    assert_eq!(ids.len(), 4_500);
}

/// A directory written by the first on-disk format (partitions, no format record) is refused
/// with an error that says what to do, instead of being misread.
#[test]
fn directories_in_the_old_format_are_refused() {
    let directory = tempfile::tempdir().unwrap();
    {
        let database = fjall::Database::builder(directory.path()).open().unwrap();
        let index = database
            .keyspace(
                "p000000003600-00003600-index",
                fjall::KeyspaceCreateOptions::default,
            )
            .unwrap();
        index.insert(b"Z", [0u8; 16]).unwrap();
        database.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let error = LsmStore::open(LsmConfig::in_directory(directory.path())).unwrap_err();
    assert!(error.to_string().contains("format"), "{error}");
}
