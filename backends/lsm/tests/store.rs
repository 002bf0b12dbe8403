//! Behaviour specific to the LSM backend, on temporary directories: approximate stats and
//! directory stores. The store-trait contract every backend shares (and the comparison with the
//! memory backend) is checked by `storage-conformance` (`lsm/Backend/<Check>` trials of
//! `tests/conformance.rs`); reopening, retention and durability are in `tests/durability.rs`.

use std::time::Duration;

use backend_lsm::{LsmConfig, LsmStore};
use remote_storage_core::Tenant;
use remote_storage_core::testing::span;
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
