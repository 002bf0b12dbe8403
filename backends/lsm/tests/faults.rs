//! Storage faults in process (issue 14, item 5): a data directory deleted under a running store
//! fails the store for good, with a message naming the directory, and closing it still returns
//! at once. The full-disk case needs a small file system of its own and runs through the
//! server binary (`remote-storage/server/tests/lsm_faults.rs`).

use std::time::{Duration, Instant};

use backend_lsm::{LsmConfig, LsmStore, SyncPolicy};
use remote_storage_core::testing::span;
use remote_storage_core::{ErrorKind, Span, StoreError, Tenant, TraceId, TraceLookup, UnixNanos};

fn spans(trace: u8) -> Vec<Span> {
    let now = UnixNanos::now().0;
    (1..=5)
        .map(|index| {
            let parent = (index > 1).then_some(1);
            span(trace, index, parent, "svc", "op", now, now + 1_000, false)
        })
        .collect()
}

fn assert_names_the_deleted_directory(error: &StoreError, dir: &std::path::Path) {
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let message = error.to_string();
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains("deleted"), "{message}");
    assert!(message.contains("restart"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_data_directory_fails_the_store_and_close_still_returns() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let config = LsmConfig {
        sync: SyncPolicy::Batch,
        ..LsmConfig::in_directory(&dir)
    };
    let backend = LsmStore::open(config).unwrap().into_backend();
    let tenant = Tenant::default();
    backend.traces.write_spans(&tenant, spans(1)).await.unwrap();
    backend.lifecycle.ready().await.unwrap();

    std::fs::remove_dir_all(&dir).unwrap();
    // fjall would take this into its open, deleted journal and acknowledge spans no restart
    // can read.
    let write = backend
        .traces
        .write_spans(&tenant, spans(2))
        .await
        .unwrap_err();
    assert_names_the_deleted_directory(&write, &dir);

    let not_ready = backend.lifecycle.ready().await.unwrap_err();
    assert_names_the_deleted_directory(&not_ready, &dir);
    let services = backend.traces.get_services(&tenant).await.unwrap_err();
    assert_names_the_deleted_directory(&services, &dir);
    let lookup = TraceLookup {
        trace_id: TraceId([1; 16]),
        start: None,
        end: None,
    };
    let Err(traces) = backend.traces.get_traces(&tenant, vec![lookup]).await else {
        panic!("a failed store streams nothing");
    };
    assert_names_the_deleted_directory(&traces, &dir);

    // Flushing would wait for fjall workers that can no longer write anything.
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), backend.lifecycle.close())
        .await
        .expect("close returns on a failed store");
    assert_names_the_deleted_directory(&closed.unwrap_err(), &dir);
    // Dropping the last handle must not wait for fjall's workers either.
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || drop(backend)),
    )
    .await
    .expect("dropping a failed store returns")
    .unwrap();
    eprintln!("failed store closed and dropped in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_store_is_ready_and_closes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LsmStore::open(LsmConfig::in_directory(dir.path()))
        .unwrap()
        .into_backend();
    let tenant = Tenant::default();
    backend.traces.write_spans(&tenant, spans(1)).await.unwrap();
    backend.lifecycle.ready().await.unwrap();
    backend.lifecycle.close().await.unwrap();
}
