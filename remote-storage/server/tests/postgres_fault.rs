//! PostgreSQL going away under load, seen through the real server: Exports fail with
//! `UNAVAILABLE` within the pool's timeouts (no crash, no hang), readiness turns 503, and once
//! PostgreSQL is back writing resumes on its own and every acknowledged span is readable.
//!
//! The server reaches PostgreSQL through a TCP proxy owned by this test; "stopping PostgreSQL"
//! cuts the proxy's connections and refuses new ones, so other tests sharing the database are
//! not disturbed. Needs `CONFORMANCE_POSTGRES_URL` (see `scripts/postgres-test-env.sh`).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TRACES_PER_BATCH, batch, missing_traces};
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use parking_lot::Mutex;
use remote_storage::{RunningServer, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

/// A TCP proxy in front of PostgreSQL that the test can cut and restore.
struct Proxy {
    address: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(address: SocketAddr, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let connections = Arc::clone(&tasks);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                connections.lock().push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        tasks.lock().push(acceptor);
        Self {
            address,
            upstream,
            tasks,
        }
    }

    /// Cuts live connections and closes the listener.
    fn stop(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// `postgres://user:password@HOST:PORT/db?…` → `HOST:PORT` and the URL with it replaced.
fn split_host(url: &str, replacement: SocketAddr) -> (SocketAddr, String) {
    let at = url.rfind('@').expect("the URL names user@host");
    let host_end = url[at..].find('/').map_or(url.len(), |slash| at + slash);
    let upstream: SocketAddr = url[at + 1..host_end]
        .parse()
        .expect("the test database is addressed as IP:port");
    let rewritten = format!("{}{replacement}{}", &url[..=at], &url[host_end..]);
    (upstream, rewritten)
}

async fn admin_status(admin: SocketAddr) -> Option<u16> {
    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("http://{admin}/"))
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

#[derive(Default)]
struct Outcomes {
    acknowledged: Vec<u64>,
    failures: HashMap<Code, u64>,
    slowest_failure: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_under_load_is_unavailable_then_recovers() {
    let Some(url) = std::env::var("CONFORMANCE_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!(
            "SKIPPED the postgres fault test: CONFORMANCE_POSTGRES_URL is not set; to run it: \
             eval \"$(scripts/postgres-test-env.sh start)\""
        );
        return;
    };
    let placeholder = SocketAddr::from(([127, 0, 0, 1], 0));
    let (upstream, _) = split_host(&url, placeholder);
    let proxy = Proxy::start(placeholder, upstream).await;
    let (_, proxied_url) = split_host(&url, proxy.address);

    let schema = format!("fault_{}", std::process::id());
    let mut config = backend_postgres::PostgresConfig::new(proxied_url);
    config.schema.clone_from(&schema);
    config.connect_timeout = Duration::from_secs(2);
    config.acquire_timeout = Duration::from_secs(2);
    config.query_timeout = Duration::from_secs(10);
    let backend = backend_postgres::open(config).await.unwrap();
    let server = RunningServer::start(ServerConfig::for_tests(), backend)
        .await
        .unwrap();
    let admin = server.admin_addr.unwrap();
    assert_eq!(admin_status(admin).await, Some(200));
    let channel = Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked_sender, mut acked_receiver) = watch::channel(0usize);
    let (failed_sender, mut failed_receiver) = watch::channel(0usize);
    let (acked_sender, failed_sender) = (Arc::new(acked_sender), Arc::new(failed_sender));
    let mut writers = Vec::new();
    for writer in 0..2u64 {
        let mut client = TraceServiceClient::new(channel.clone());
        let (outcomes, stop) = (Arc::clone(&outcomes), Arc::clone(&stop));
        let (acked_sender, failed_sender) = (Arc::clone(&acked_sender), Arc::clone(&failed_sender));
        writers.push(tokio::spawn(async move {
            let mut next_trace = 1 + writer * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match client.export(batch(next_trace, "fault-test")).await {
                    Ok(_) => {
                        outcomes
                            .lock()
                            .acknowledged
                            .extend(next_trace..next_trace + TRACES_PER_BATCH);
                        acked_sender.send_modify(|count| *count += 1);
                    }
                    Err(status) => {
                        let mut outcomes = outcomes.lock();
                        *outcomes.failures.entry(status.code()).or_default() += 1;
                        outcomes.slowest_failure = outcomes.slowest_failure.max(sent.elapsed());
                        failed_sender.send_modify(|count| *count += 1);
                    }
                }
                next_trace += TRACES_PER_BATCH;
            }
        }));
    }

    // Load is flowing; then PostgreSQL goes away.
    acked_receiver.wait_for(|count| *count >= 20).await.unwrap();
    proxy.stop();
    tokio::time::timeout(
        Duration::from_secs(60),
        failed_receiver.wait_for(|count| *count >= 4),
    )
    .await
    .expect("Exports fail while PostgreSQL is away")
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin_status(admin).await != Some(503) {
        assert!(Instant::now() < deadline, "readiness never turned 503");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // PostgreSQL comes back on the same address; writing resumes without a restart.
    let acknowledged_before = outcomes.lock().acknowledged.len();
    let _restored = Proxy::start(proxy.address, proxy.upstream).await;
    tokio::time::timeout(
        Duration::from_secs(60),
        acked_receiver.wait_for(|count| *count >= acknowledged_before / 20 + 10),
    )
    .await
    .expect("writes resume once PostgreSQL is back")
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin_status(admin).await != Some(200) {
        assert!(Instant::now() < deadline, "readiness never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    let outcomes = std::mem::take(&mut *outcomes.lock());
    let codes: Vec<Code> = outcomes.failures.keys().copied().collect();
    assert_eq!(
        codes,
        [Code::Unavailable],
        "failures were {:?}",
        outcomes.failures
    );
    assert!(
        outcomes.slowest_failure < Duration::from_secs(15),
        "a failing Export took {:?}: the outage must not hang clients",
        outcomes.slowest_failure
    );
    let missing = missing_traces(channel.clone(), &outcomes.acknowledged).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces lost across the outage",
        missing.len(),
        outcomes.acknowledged.len()
    );

    drop(channel);
    server.stop().await.unwrap();
    let cleanup = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&cleanup)
    .await
    .unwrap();
}
