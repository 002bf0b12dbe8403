//! Behaviour specific to the PostgreSQL backend, against a real PostgreSQL
//! (`CONFORMANCE_POSTGRES_URL`, see `scripts/postgres-test-env.sh`): migrations, partitions and
//! retention, connection failures. Without a database every test prints one skip line and
//! passes. The store-trait contract every backend shares (and the comparison with the memory
//! backend) is checked by `storage-conformance` (`postgres/Backend/<Check>` trials of
//! `tests/conformance.rs`).

mod common;

use common::TestStore;
use remote_storage_core::testing::span;
use remote_storage_core::{DependencyQuery, ErrorKind, Tenant, UnixNanos};
use storage_conformance::behaviour::get;

#[tokio::test]
async fn opening_twice_reuses_the_migrated_schema() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::unique_schema("reopen");
    let first = TestStore::open_with(common::test_config(&url, &schema)).await;
    let tenant = Tenant::default();
    // Recent times: opening runs retention, which would drop a 1970 partition.
    let now = UnixNanos::now().0;
    first
        .backend
        .traces
        .write_spans(
            &tenant,
            vec![span(1, 1, None, "a", "root", now, now + 10, false)],
        )
        .await
        .unwrap();
    // A second store on the same schema, configured with another partition span: the
    // migrations are not re-applied and the stored span is kept.
    let mut config = common::test_config(&url, &schema);
    config.partition_span = backend_postgres::PartitionSpan::Hour;
    let second = TestStore::open_with(config).await;
    assert_eq!(
        get(&second.backend, &tenant, 1).await.unwrap()[0]
            .spans
            .len(),
        1
    );
    second
        .backend
        .traces
        .write_spans(
            &tenant,
            vec![span(1, 2, Some(1), "a", "child", now + 1, now + 2, false)],
        )
        .await
        .unwrap();
    assert_eq!(
        get(&first.backend, &tenant, 1).await.unwrap()[0]
            .spans
            .len(),
        2
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(first.store.pool())
        .await
        .unwrap();
    // 0001 (per-span tables), 0002 (trace chunks), 0003 (call rollups) and 0004 (trace head
    // versions).
    assert_eq!(applied, 4);
    second.backend.lifecycle.close().await.unwrap();
    first.finish().await;
}

async fn partition_names(test: &TestStore) -> Vec<String> {
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         JOIN pg_namespace n ON n.oid = p.relnamespace \
         WHERE n.nspname = $1",
    )
    .bind(&test.schema)
    .fetch_all(test.store.pool())
    .await
    .unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn retention_drops_whole_expired_partitions() {
    let Some(url) = common::database_url() else {
        return;
    };
    let mut config = common::test_config(&url, &common::unique_schema("retention"));
    config.partition_span = backend_postgres::PartitionSpan::Hour;
    config.retention = std::time::Duration::from_secs(2 * 3_600);
    let test = TestStore::open_with(config).await;
    let store = &test.backend;
    let tenant = Tenant::default();
    let hour = 3_600_000_000_000u64;
    let now = UnixNanos::now().0;
    let old = now - 10 * hour;
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "old-svc", "old", old, old + 5, false),
                span(2, 1, None, "new-svc", "new", now - 1_000, now, false),
                // A call whose parent expires before its child.
                span(3, 1, None, "old-svc", "old", old, old + 5, false),
                // Five minutes ago: a whole minute of the window below, read from rollups.
                span(
                    3,
                    2,
                    Some(1),
                    "new-svc",
                    "late",
                    now - 300_000_000_000,
                    now,
                    false,
                ),
            ],
        )
        .await
        .unwrap();
    let recent = DependencyQuery {
        start: UnixNanos(now - 3 * hour),
        end: UnixNanos(now),
    };
    let links = store
        .dependencies
        .get_dependencies(&tenant, recent)
        .await
        .unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let old_bucket = i64::try_from(old - old % hour).unwrap();
    let old_suffix = {
        let seconds = i64::try_from(old / 1_000_000_000).unwrap();
        let time = time::OffsetDateTime::from_unix_timestamp(seconds - seconds % 3_600).unwrap();
        format!(
            "h{:04}{:02}{:02}{:02}",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour()
        )
    };
    let before = partition_names(&test).await;
    for table in ["chunks", "services", "operations", "call_rollups"] {
        let name = format!("{table}_{old_suffix}");
        assert!(
            before.contains(&name),
            "{name} created on demand: {before:?}"
        );
    }
    assert_eq!(get(store, &tenant, 1).await.unwrap().len(), 1);

    let dropped = test.store.run_maintenance(UnixNanos::now()).await.unwrap();
    assert_eq!(dropped, [old_bucket]);
    let after = partition_names(&test).await;
    assert!(
        after.iter().all(|name| !name.ends_with(&old_suffix)),
        "expired partitions dropped: {after:?}"
    );
    assert!(
        after.len() >= 3 * 4,
        "current and upcoming partitions kept: {after:?}"
    );
    assert!(get(store, &tenant, 1).await.unwrap().is_empty());
    // The child is kept, its parent is not: no call (the rollup went with the parent).
    let links = store
        .dependencies
        .get_dependencies(&tenant, recent)
        .await
        .unwrap();
    assert!(links.is_empty(), "{links:?}");
    assert_eq!(get(store, &tenant, 2).await.unwrap().len(), 1);
    assert_eq!(
        store.traces.get_services(&tenant).await.unwrap(),
        ["new-svc"]
    );
    test.finish().await;
}

#[tokio::test]
async fn nothing_listening_is_unavailable_not_a_hang() {
    if common::database_url().is_none() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = common::test_config(
        &format!("postgres://nobody:x@127.0.0.1:{port}/none"),
        "jaeger",
    );
    config.connect_timeout = std::time::Duration::from_secs(1);
    config.acquire_timeout = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let error = backend_postgres::open(config).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
