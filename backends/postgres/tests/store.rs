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

/// The schema's partitions (of tables and of their indexes), sorted by name: name, whether it
/// is a table, storage settings.
async fn partitions(test: &TestStore) -> Vec<(String, bool, Option<Vec<String>>)> {
    let mut partitions: Vec<(String, bool, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind = 'r', c.reloptions FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         JOIN pg_namespace n ON n.oid = p.relnamespace \
         WHERE n.nspname = $1",
    )
    .bind(&test.schema)
    .fetch_all(test.store.pool())
    .await
    .unwrap();
    partitions.sort();
    partitions
}

async fn partition_names(test: &TestStore) -> Vec<String> {
    partitions(test)
        .await
        .into_iter()
        .map(|(name, ..)| name)
        .collect()
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

/// GetTraces reads up to 20 traces with one query: across several such groups the traces
/// still come in request order, a trace asked for twice comes twice, unknown IDs are
/// skipped, and each lookup's time hints apply to its own trace only.
#[tokio::test]
async fn traces_read_in_groups_keep_request_order_and_their_own_hints() {
    use remote_storage_core::{TraceId, TraceLookup};
    use storage_conformance::behaviour::get_lookups;

    let Some(test) = TestStore::open("grouped_reads").await else {
        return;
    };
    let tenant = Tenant::default();
    let now = UnixNanos::now().0;
    let hour: u64 = 3_600_000_000_000;
    // 45 traces of one span each; trace 7 has a second span two hours later.
    let mut spans: Vec<_> = (1..=45u8)
        .map(|trace| span(trace, 1, None, "svc", "op", now, now + 10, false))
        .collect();
    spans.push(span(
        7,
        2,
        Some(1),
        "svc",
        "late",
        now + 2 * hour,
        now + 2 * hour + 5,
        false,
    ));
    test.backend
        .traces
        .write_spans(&tenant, spans)
        .await
        .unwrap();

    let id = |trace: u8| TraceId([trace; 16]);
    let lookup = |trace: u8| TraceLookup::whole(id(trace));
    // Reverse order, an unknown ID, a repeat in another group, and trace 7 twice: once whole,
    // once with hints that leave out its late span.
    let mut lookups: Vec<TraceLookup> = (1..=45u8).rev().map(lookup).collect();
    lookups.insert(3, lookup(200));
    lookups.push(lookup(44));
    lookups.push(TraceLookup {
        trace_id: id(7),
        start: Some(UnixNanos(now)),
        end: Some(UnixNanos(now + hour)),
    });
    let traces = get_lookups(&test.backend, &tenant, lookups).await.unwrap();
    let order: Vec<u8> = traces.iter().map(|trace| trace.trace_id.0[15]).collect();
    let mut expected: Vec<u8> = (1..=45u8).rev().collect();
    expected.extend([44, 7]);
    assert_eq!(order, expected);
    let spans_of_7: Vec<usize> = traces
        .iter()
        .filter(|trace| trace.trace_id == id(7))
        .map(|trace| trace.spans.len())
        .collect();
    assert_eq!(spans_of_7, [2, 1]);
    test.finish().await;
}

/// Every `chunks` partition is vacuumed after a fixed number of inserted rows (so searches'
/// index-only scans find the visibility map set), and no other table's settings change.
#[tokio::test]
async fn chunks_partitions_are_vacuumed_every_fixed_number_of_inserts() {
    let Some(test) = TestStore::open("autovacuum").await else {
        return;
    };
    let now = UnixNanos::now().0;
    test.backend
        .traces
        .write_spans(
            &Tenant::default(),
            vec![span(1, 1, None, "svc", "op", now, now + 10, false)],
        )
        .await
        .unwrap();
    let partitions: Vec<(String, Option<Vec<String>>)> = partitions(&test)
        .await
        .into_iter()
        .filter(|(_, table, _)| *table)
        .map(|(name, _, options)| (name, options))
        .collect();
    assert!(
        partitions
            .iter()
            .any(|(name, _)| name.starts_with("chunks_"))
    );
    for (name, options) in &partitions {
        let options = options.clone().unwrap_or_default();
        if name.starts_with("chunks_") {
            assert!(
                options.contains(&"autovacuum_vacuum_insert_threshold=20000".to_owned())
                    && options.contains(&"autovacuum_vacuum_insert_scale_factor=0".to_owned()),
                "{name}: {options:?}"
            );
        } else {
            assert!(options.is_empty(), "{name}: {options:?}");
        }
    }
    test.finish().await;
}
