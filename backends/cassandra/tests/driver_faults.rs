//! The store over the real scylla driver against a simulated node (`scylla-proxy` dry mode):
//! start-up (schema applied once, every statement prepared and type-checked against the DDL,
//! a newer schema refused), and what each fault a cluster can answer becomes: `UNAVAILABLE`
//! for what the cluster cannot do now, `INTERNAL` for the rest, never an acknowledged write
//! when any row of it failed, and no hang when the node goes silent.

mod simulated_node;

use std::num::NonZeroUsize;
use std::time::Duration;

use backend_cassandra::CassandraConfig;
use backend_cassandra::schema::{SCHEMA_VERSION, TABLES};
use backend_cassandra::statements::ALL;
use futures::TryStreamExt as _;
use remote_storage_core::testing;
use remote_storage_core::{
    Backend, ErrorKind, StoreError, Tenant, TraceLookup, TraceQuery, UnixNanos,
};
use scylla_proxy::example_db_errors as db_errors;
use simulated_node::{Fault, SimulatedNode};

const KEYSPACE: &str = "faults";
/// How long a test waits for anything before calling it a hang.
const HANG: Duration = Duration::from_secs(60);

fn config(node: &SimulatedNode) -> CassandraConfig {
    let mut config = CassandraConfig::new(node.address());
    config.keyspace = KEYSPACE.to_owned();
    config.connect_timeout = Duration::from_secs(5);
    // Short, so the silent-node cases end quickly.
    config.request_timeout = Duration::from_millis(800);
    config
}

async fn open(node: &SimulatedNode) -> Result<Backend, StoreError> {
    tokio::time::timeout(HANG, backend_cassandra::open(config(node)))
        .await
        .expect("start-up must not hang")
}

/// A node with the schema in place and a store connected to it (the start-up log discarded).
async fn connected() -> (SimulatedNode, Backend) {
    let node = SimulatedNode::start(KEYSPACE, Some(SCHEMA_VERSION)).await;
    let backend = open(&node).await.expect("the store connects");
    node.take_log();
    (node, backend)
}

/// Two spans of one trace (their resources' `service.name` gives the tag index rows).
fn spans() -> Vec<remote_storage_core::Span> {
    let now = UnixNanos::now().0;
    vec![
        testing::span(1, 1, None, "frontend", "GET /", now, now + 1_000, false),
        testing::span(1, 2, Some(1), "backend", "query", now + 10, now + 900, true),
    ]
}

async fn write(backend: &Backend) -> Result<(), StoreError> {
    tokio::time::timeout(
        HANG,
        backend.traces.write_spans(&Tenant::default(), spans()),
    )
    .await
    .expect("a write must not hang")
}

fn expect_kind(result: Result<(), StoreError>, kind: ErrorKind, case: &str) -> StoreError {
    match result {
        Ok(()) => panic!("{case}: acknowledged"),
        Err(error) => {
            assert_eq!(error.kind(), kind, "{case}: {error}");
            assert!(error.to_string().contains("cassandra"), "{case}: {error}");
            error
        }
    }
}

#[tokio::test]
async fn start_up_applies_the_schema_once_and_prepares_every_statement_type_checked() {
    let node = SimulatedNode::start(KEYSPACE, None).await;
    let backend = open(&node)
        .await
        .expect("the store connects to a fresh keyspace");
    let log = node.take_log();
    assert!(
        log.iter()
            .any(|entry| entry.starts_with("CREATE KEYSPACE IF NOT EXISTS faults")),
        "{log:?}"
    );
    for table in TABLES {
        let create = format!("CREATE TABLE IF NOT EXISTS faults.{table} ");
        // The version table is created before the version is read, then again by the first
        // migration (harmless: IF NOT EXISTS).
        let times = if *table == "schema_version" { 2 } else { 1 };
        assert_eq!(
            log.iter()
                .filter(|entry| entry.starts_with(&create))
                .count(),
            times,
            "{table}: {log:?}"
        );
    }
    assert!(log.contains(&"INSERT_SCHEMA_VERSION".to_owned()), "{log:?}");
    for (name, _) in ALL {
        assert!(
            log.contains(&format!("PREPARE {name}")),
            "{name} is prepared: {log:?}"
        );
    }
    // Every write statement's values were type-checked by the driver against the types the
    // node announced from the DDL; so were the reads' columns, on these empty answers.
    write(&backend).await.expect("a write succeeds");
    let written = node.take_log();
    for statement in [
        "INSERT_RESOURCE",
        "INSERT_SPAN",
        "INSERT_SPAN_INDEX",
        "INSERT_SERVICE_INDEX",
        "INSERT_TAG_INDEX",
        "INSERT_BUCKET",
        "INSERT_SERVICE",
        "INSERT_OPERATION",
    ] {
        assert!(
            written.iter().any(|entry| entry == statement),
            "{statement}: {written:?}"
        );
    }
    let tenant = Tenant::default();
    let traces: Vec<_> = backend
        .traces
        .get_traces(&tenant, vec![lookup()])
        .await
        .expect("a trace read")
        .try_collect()
        .await
        .expect("a trace read");
    assert!(traces.is_empty(), "the node keeps nothing");
    let found = backend
        .traces
        .find_trace_ids(&tenant, search(Some("frontend")))
        .await
        .expect("a search");
    assert!(found.is_empty());
    assert!(
        backend
            .traces
            .get_services(&tenant)
            .await
            .expect("services")
            .is_empty()
    );
    backend.lifecycle.ready().await.expect("ready");

    // A second start finds the version recorded and creates no table but the version table
    // (which it must be able to read first).
    drop(backend);
    let _again = open(&node).await.expect("the store connects again");
    let log = node.take_log();
    let created: Vec<_> = log
        .iter()
        .filter(|entry| entry.starts_with("CREATE TABLE"))
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0].contains("faults.schema_version"), "{created:?}");
    assert!(
        !log.contains(&"INSERT_SCHEMA_VERSION".to_owned()),
        "{log:?}"
    );
    node.stop().await;
}

/// A search for `service` over the last hour.
fn search(service: Option<&str>) -> TraceQuery {
    let now = UnixNanos::now().0;
    TraceQuery {
        service_name: service.map(str::to_owned),
        start_time_min: Some(UnixNanos(now - 3_600_000_000_000)),
        start_time_max: Some(UnixNanos(now + 60_000_000_000)),
        ..TraceQuery::all(NonZeroUsize::new(20).expect("non-zero"))
    }
}

fn lookup() -> TraceLookup {
    TraceLookup {
        trace_id: spans()[0].trace_id(),
        start: None,
        end: None,
    }
}

#[tokio::test]
async fn a_node_that_accepts_connections_but_never_answers_fails_start_up_naming_it() {
    let mut node = SimulatedNode::start(KEYSPACE, Some(SCHEMA_VERSION)).await;
    node.fail_handshake(Fault::NoAnswer);
    let mut config = config(&node);
    config.connect_timeout = Duration::from_secs(1);
    let error = tokio::time::timeout(HANG, backend_cassandra::open(config))
        .await
        .expect("start-up must not hang")
        .expect_err("nobody answers");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains(&node.address()), "{error}");
    node.stop().await;
}

#[tokio::test]
async fn a_keyspace_with_a_newer_schema_is_refused_naming_it() {
    let node = SimulatedNode::start(KEYSPACE, Some(SCHEMA_VERSION + 1)).await;
    let error = open(&node).await.expect_err("a newer schema is refused");
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    let message = error.to_string();
    assert!(message.contains("keyspace faults"), "{message}");
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
    assert!(
        !node
            .take_log()
            .iter()
            .any(|entry| entry.starts_with("CREATE TABLE IF NOT EXISTS faults.spans")),
        "nothing applied over a newer schema"
    );
    node.stop().await;
}

#[tokio::test]
async fn what_the_cluster_cannot_do_now_fails_the_write_as_unavailable_and_acknowledges_nothing() {
    let (mut node, backend) = connected().await;
    let cases = [
        (
            "write timeout on an index row",
            "INSERT_TAG_INDEX",
            db_errors::write_timeout(),
        ),
        (
            "unavailable replicas for a span",
            "INSERT_SPAN",
            db_errors::unavailable(),
        ),
        (
            "overloaded on a service row",
            "INSERT_SERVICE",
            db_errors::overloaded(),
        ),
        (
            "write failure on a bucket row",
            "INSERT_BUCKET",
            db_errors::write_failure(),
        ),
        (
            "bootstrapping on a resource",
            "INSERT_RESOURCE",
            db_errors::is_bootstrapping(),
        ),
    ];
    for (case, statement, error) in cases {
        node.fail(statement, Fault::Error(error));
        expect_kind(write(&backend).await, ErrorKind::Unavailable, case);
        // The node's log holds what it acknowledged: not the failed statement.
        let log = node.take_log();
        assert!(
            !log.iter().any(|entry| entry == statement),
            "{case}: {log:?}"
        );
        node.heal();
        write(&backend)
            .await
            .unwrap_or_else(|error| panic!("{case}: the same write, repeated, succeeds: {error}"));
        node.take_log();
    }

    // A partial failure: the spans are written, then one index row fails. The write is not
    // acknowledged even though most of its rows landed (repeating it is harmless: every row
    // is keyed by content).
    node.fail("INSERT_TAG_INDEX", Fault::Error(db_errors::write_timeout()));
    expect_kind(write(&backend).await, ErrorKind::Unavailable, "partial");
    let log = node.take_log();
    assert_eq!(
        log.iter().filter(|entry| *entry == "INSERT_SPAN").count(),
        2,
        "both spans were stored: {log:?}"
    );
    assert!(
        !log.iter().any(|entry| entry == "INSERT_TAG_INDEX"),
        "{log:?}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_silent_node_times_the_request_out_as_unavailable() {
    let (mut node, backend) = connected().await;
    node.fail("INSERT_SPAN", Fault::NoAnswer);
    let error = expect_kind(
        write(&backend).await,
        ErrorKind::Unavailable,
        "silent write",
    );
    assert!(error.to_string().contains("writing a span"), "{error}");
    node.heal();
    node.fail("SELECT_TRACE", Fault::NoAnswer);
    let read = tokio::time::timeout(HANG, async {
        backend
            .traces
            .get_traces(&Tenant::default(), vec![lookup()])
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .expect("a read must not hang");
    expect_kind(read.map(drop), ErrorKind::Unavailable, "silent read");
    node.heal();
    node.fail_query("release_version", Fault::NoAnswer);
    let ready = tokio::time::timeout(HANG, backend.lifecycle.ready())
        .await
        .expect("readiness must not hang");
    expect_kind(ready, ErrorKind::Unavailable, "silent readiness check");
    node.stop().await;
}

#[tokio::test]
async fn read_faults_fail_the_read_as_unavailable() {
    let (mut node, backend) = connected().await;
    let tenant = Tenant::default();
    // (The node holds no bucket, so a search reads the bucket list and stops there.)
    node.fail("SELECT_BUCKETS", Fault::Error(db_errors::read_timeout()));
    let found = backend.traces.find_trace_ids(&tenant, search(None)).await;
    expect_kind(
        found.map(drop),
        ErrorKind::Unavailable,
        "search read timeout",
    );
    node.heal();
    node.fail("SELECT_TRACE", Fault::Error(db_errors::read_timeout()));
    let read = async {
        backend
            .traces
            .get_traces(&tenant, vec![lookup()])
            .await?
            .try_collect::<Vec<_>>()
            .await
    };
    expect_kind(
        read.await.map(drop),
        ErrorKind::Unavailable,
        "trace read timeout",
    );
    node.heal();
    node.fail("SELECT_SERVICES", Fault::Error(db_errors::read_failure()));
    let services = backend.traces.get_services(&tenant).await;
    expect_kind(
        services.map(drop),
        ErrorKind::Unavailable,
        "services read failure",
    );
    node.heal();
    assert!(
        backend
            .traces
            .get_services(&tenant)
            .await
            .expect("healed")
            .is_empty()
    );
    node.stop().await;
}

#[tokio::test]
async fn answers_that_are_not_the_cluster_s_load_are_internal() {
    let (mut node, backend) = connected().await;
    let cases = [
        ("invalid", db_errors::invalid()),
        ("syntax error", db_errors::syntax_error()),
        ("server error", db_errors::server_error()),
        ("unauthorized", db_errors::unauthorized()),
    ];
    for (case, error) in cases {
        node.fail("INSERT_SPAN", Fault::Error(error));
        expect_kind(write(&backend).await, ErrorKind::Internal, case);
    }
    node.stop().await;
}

#[tokio::test]
async fn a_dropped_connection_fails_the_request_and_the_driver_reconnects() {
    let (mut node, backend) = connected().await;
    node.fail("INSERT_SPAN", Fault::DropConnection);
    expect_kind(
        write(&backend).await,
        ErrorKind::Unavailable,
        "dropped connection",
    );
    node.heal();
    // The driver reconnects in the background; until it has, writes fail as UNAVAILABLE
    // (never anything else), then succeed.
    let reconnected = tokio::time::timeout(HANG, async {
        loop {
            match write(&backend).await {
                Ok(()) => break,
                Err(error) => {
                    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
    .await;
    assert!(reconnected.is_ok(), "the driver reconnects");
    node.stop().await;
}
