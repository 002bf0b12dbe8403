//! PostgreSQL going away and coming back, without disturbing other tests: the store connects
//! through a TCP proxy owned by the test, and "stopping PostgreSQL" closes the proxy (live
//! connections are cut and new ones refused). Calls must fail as `Unavailable` within the
//! configured timeouts, readiness must fail, and everything must work again once the proxy is
//! back, without reopening the store and without losing acknowledged writes.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use remote_storage_core::testing::span;
use remote_storage_core::{ErrorKind, StoreError, Tenant, TraceId, TraceLookup, UnixNanos};
use sqlx::postgres::PgConnectOptions;
use storage_conformance::proxy::CuttableProxy;

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(error) => assert_eq!(error.kind(), ErrorKind::Unavailable, "{what}: {error}"),
        Ok(value) => panic!("{what} succeeded while postgres was down: {value:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_unavailable_and_recovery_is_automatic() {
    let Some(url) = common::database_url() else {
        return;
    };
    let options: PgConnectOptions = url.parse().unwrap();
    let host_port = format!("{}:{}", options.get_host(), options.get_port());
    let Ok(upstream) = host_port.parse::<SocketAddr>() else {
        eprintln!("skipping the outage test: {host_port} is not an IP address and port");
        return;
    };
    if !url.contains(&host_port) {
        eprintln!("skipping the outage test: the URL does not name {host_port}");
        return;
    }
    let proxy = CuttableProxy::start("127.0.0.1:0".parse().unwrap(), upstream)
        .await
        .expect("binding the proxy");
    let proxied_url = url.replacen(&host_port, &proxy.address().to_string(), 1);
    let mut config = common::test_config(&proxied_url, &common::unique_schema("outage"));
    config.acquire_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(2);
    config.query_timeout = Duration::from_secs(5);
    let test = common::TestStore::open_with(config).await;
    let store = test.backend.clone();
    let tenant = Tenant::default();
    let now = UnixNanos::now().0;
    store
        .traces
        .write_spans(
            &tenant,
            vec![span(1, 1, None, "svc", "before", now, now + 5, false)],
        )
        .await
        .unwrap();
    store.lifecycle.ready().await.unwrap();

    proxy.stop();
    let started = Instant::now();
    assert_unavailable(store.lifecycle.ready().await, "ready");
    assert_unavailable(store.traces.get_services(&tenant).await, "get_services");
    assert_unavailable(
        store
            .traces
            .write_spans(
                &tenant,
                vec![span(2, 1, None, "svc", "during", now, now + 5, false)],
            )
            .await,
        "write_spans",
    );
    let lookups = vec![TraceLookup {
        trace_id: TraceId([1; 16]),
        start: None,
        end: None,
    }];
    let read = match store.traces.get_traces(&tenant, lookups.clone()).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await,
        Err(error) => Err(error),
    };
    assert_unavailable(read, "get_traces");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failures must be bounded by the timeouts, took {:?}",
        started.elapsed()
    );

    let restarted = proxy.restart().await.expect("restarting the proxy");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.lifecycle.ready().await.is_err() {
        assert!(Instant::now() < deadline, "store did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let traces: Vec<_> = store
        .traces
        .get_traces(&tenant, lookups)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(traces.len(), 1, "acknowledged write survived");
    assert_eq!(traces[0].spans[0].name(), "before");
    store
        .traces
        .write_spans(
            &tenant,
            vec![span(2, 1, None, "svc", "after", now, now + 5, false)],
        )
        .await
        .unwrap();
    assert_eq!(store.traces.get_services(&tenant).await.unwrap(), ["svc"]);
    test.finish().await;
    restarted.stop();
}
