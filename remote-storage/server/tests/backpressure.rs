//! Backpressure: a flood beyond the server's bounds is turned away at once with the OTLP
//! throttling answer (`UNAVAILABLE` with `RetryInfo`) instead of queued; the calls admitted
//! complete; health and reads keep answering; request bytes held stay under the budget; and a
//! call whose client deadline passes stops its work in the store.
//!
//! The store is held shut by a gate the test opens, so which calls are in flight is known
//! exactly rather than raced.

mod common;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::batch;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use remote_storage::{RunningServer, ServerConfig};
use remote_storage_core::{
    Backend, FoundTraceId, Operation, OperationQuery, Span, StoreResult, Tenant, TraceLookup,
    TraceQuery, TraceStore, TraceStream,
};
use tokio::sync::Semaphore;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;

/// How long anything may take before the test calls it stuck.
const STUCK: Duration = Duration::from_secs(30);

/// A store whose writes and service reads wait at a gate the test opens.
struct GatedStore {
    inner: Arc<dyn TraceStore>,
    gate: Arc<Semaphore>,
    /// Writes that reached the store.
    entered: AtomicUsize,
    /// Service reads that reached the store.
    reads_entered: AtomicUsize,
    /// Set when a service read was dropped before the gate opened (its caller gave up).
    abandoned: Arc<AtomicBool>,
}

/// Sets its flag when dropped unless disarmed: proves a future was cancelled.
struct DropFlag(Arc<AtomicBool>, bool);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl TraceStore for GatedStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _pass = self.gate.acquire().await.expect("the gate stays");
        self.inner.write_spans(tenant, spans).await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        self.inner.get_traces(tenant, lookups).await
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        let mut flag = DropFlag(Arc::clone(&self.abandoned), true);
        self.reads_entered.fetch_add(1, Ordering::SeqCst);
        let _pass = self.gate.acquire().await.expect("the gate stays");
        flag.1 = false;
        self.inner.get_services(tenant).await
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        self.inner.get_operations(tenant, query).await
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        self.inner.find_trace_ids(tenant, query).await
    }
}

struct Gated {
    server: RunningServer,
    store: Arc<GatedStore>,
}

impl Gated {
    async fn start(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let memory = backend_memory::open(backend_memory::MemoryConfig::default());
        let store = Arc::new(GatedStore {
            inner: Arc::clone(&memory.traces),
            gate: Arc::new(Semaphore::new(0)),
            entered: AtomicUsize::new(0),
            reads_entered: AtomicUsize::new(0),
            abandoned: Arc::new(AtomicBool::new(false)),
        });
        let backend = Backend {
            traces: Arc::clone(&store) as Arc<dyn TraceStore>,
            ..memory
        };
        let mut config = ServerConfig::for_tests();
        configure(&mut config);
        let server = RunningServer::start(config, backend).await.expect("starts");
        Self { server, store }
    }

    fn open_gate(&self) {
        self.store.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// Waits until `count` writes are held at the gate.
    async fn wait_for_writes_at_gate(&self, count: usize) {
        tokio::time::timeout(STUCK, async {
            while self.store.entered.load(Ordering::SeqCst) < count {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("writes reach the store");
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .expect("connects")
}

/// One Export on its own connection (as from many collectors), its answer or status.
async fn export(addr: SocketAddr, request: ExportTraceServiceRequest) -> Result<(), Status> {
    TraceServiceClient::new(channel(addr).await)
        .max_encoding_message_size(usize::MAX)
        .export(request)
        .await
        .map(drop)
}

/// The delay a throttled answer asks for; fails the test on any other answer.
fn retry_delay(result: &Result<(), Status>) -> Duration {
    let status = result.as_ref().expect_err("throttled");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("server busy"), "{status:?}");
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay")
}

async fn healthy(addr: SocketAddr) -> bool {
    let answer = HealthClient::new(channel(addr).await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    answer.is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving)
}

async fn metrics(addr: SocketAddr) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the metric line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_over_the_bound_are_throttled_at_once_and_admitted_ones_complete() {
    const ADMITTED: usize = 4;
    const FLOOD: usize = 40;
    let gated = Gated::start(|config| {
        config.limits.max_concurrent_writes = NonZeroUsize::new(ADMITTED).expect("non-zero");
    })
    .await;
    let addr = gated.server.grpc_addr;
    let mut admitted = Vec::new();
    for number in 0..ADMITTED as u64 {
        admitted.push(tokio::spawn(export(addr, batch(number * 100, "flood"))));
    }
    gated.wait_for_writes_at_gate(ADMITTED).await;

    // The store is shut and every slot taken: the rest are answered without waiting for it.
    let mut throttled = Vec::new();
    for number in 0..FLOOD as u64 {
        throttled.push(tokio::spawn(export(
            addr,
            batch(10_000 + number * 100, "flood"),
        )));
    }
    for call in throttled {
        let answer = tokio::time::timeout(STUCK, call)
            .await
            .expect("a throttled call is answered while the store is shut")
            .expect("the call task");
        assert_eq!(retry_delay(&answer), Duration::from_secs(1));
    }
    assert!(healthy(addr).await, "health answers during the flood");
    let writer = gated.server.writer_addr.expect("a writer listener");
    assert!(
        retry_delay(&export(writer, batch(90_000, "flood")).await) > Duration::ZERO,
        "the writer listener shares the bound"
    );
    let text = metrics(gated.server.admin_addr.expect("admin")).await;
    assert_eq!(
        metric(
            &text,
            "jaeger_remote_storage_grpc_throttled_total{bound=\"concurrent_writes\"}"
        ),
        (FLOOD + 1) as f64
    );

    gated.open_gate();
    for call in admitted {
        tokio::time::timeout(STUCK, call)
            .await
            .expect("admitted calls complete")
            .expect("the call task")
            .expect("admitted calls succeed");
    }
    // With the slots free again, writes are admitted.
    export(addr, batch(95_000, "after"))
        .await
        .expect("admitted after the flood");
}

/// An Export of about `bytes` bytes (one span with a large attribute).
fn large_export(number: u64, bytes: usize) -> ExportTraceServiceRequest {
    let mut request = batch(number, "large");
    request.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(KeyValue {
            key: "payload".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(bytes))),
            }),
            ..Default::default()
        });
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bytes_held_stay_under_the_budget() {
    const MESSAGE: usize = 1 << 20;
    const BUDGET: usize = 4 * MESSAGE;
    const FLOOD: usize = 16;
    let gated = Gated::start(|config| {
        config.limits.max_recv_bytes = 2 * MESSAGE;
        config.limits.max_inflight_bytes = NonZeroUsize::new(BUDGET).expect("non-zero");
    })
    .await;
    let addr = gated.server.grpc_addr;
    let calls: Vec<_> = (0..FLOOD as u64)
        .map(|number| tokio::spawn(export(addr, large_export(number * 100, MESSAGE))))
        .collect();
    // Whole messages of about a quarter of the budget: at most four fit at once, so the
    // others are turned away (some after part of their body arrived) while the store is shut.
    let admission = async {
        loop {
            let finished = calls.iter().filter(|call| call.is_finished()).count();
            let entered = gated.store.entered.load(Ordering::SeqCst);
            if finished + entered == FLOOD {
                return entered;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let entered = tokio::time::timeout(STUCK, admission)
        .await
        .expect("every call is either admitted or answered while the store is shut");
    assert!((1..=4).contains(&entered), "{entered} admitted");
    let text = metrics(gated.server.admin_addr.expect("admin")).await;
    let held = metric(&text, "jaeger_remote_storage_inflight_write_bytes ");
    assert!(held > 0.0 && held <= BUDGET as f64, "{held} bytes held");
    assert!(
        metric(
            &text,
            "jaeger_remote_storage_grpc_throttled_total{bound=\"inflight_bytes\"}"
        ) >= (FLOOD - entered) as f64
    );
    assert!(healthy(addr).await);

    gated.open_gate();
    let mut succeeded = 0;
    for call in calls {
        match tokio::time::timeout(STUCK, call)
            .await
            .expect("complete")
            .expect("task")
        {
            Ok(()) => succeeded += 1,
            throttled => assert!(retry_delay(&throttled) > Duration::ZERO),
        }
    }
    assert_eq!(succeeded, entered, "exactly the admitted calls succeed");
    let text = metrics(gated.server.admin_addr.expect("admin")).await;
    assert_eq!(
        metric(&text, "jaeger_remote_storage_inflight_write_bytes "),
        0.0,
        "every byte is returned once the calls are answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_over_their_bound_are_throttled_and_a_passed_deadline_stops_the_work() {
    let gated = Gated::start(|config| {
        config.limits.max_concurrent_reads = NonZeroUsize::new(1).expect("non-zero");
    })
    .await;
    let addr = gated.server.grpc_addr;
    // A read whose client gives up after 300 ms, held at the shut gate meanwhile.
    let mut request = tonic::Request::new(GetServicesRequest {});
    request.set_timeout(Duration::from_millis(300));
    let mut reader = TraceReaderClient::new(channel(addr).await);
    let slow = tokio::spawn(async move { reader.get_services(request).await });
    // While it holds the only read slot, another read is throttled.
    tokio::time::timeout(STUCK, async {
        while gated.store.reads_entered.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the slow read reaches the store");
    let mut request = tonic::Request::new(GetServicesRequest {});
    request.set_timeout(STUCK);
    let throttled = TraceReaderClient::new(channel(addr).await)
        .get_services(request)
        .await
        .map(drop);
    assert!(retry_delay(&throttled) > Duration::ZERO);
    let status = slow.await.expect("task").expect_err("the deadline passes");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    // The server stops the store's work for the abandoned call.
    tokio::time::timeout(STUCK, async {
        while !gated.store.abandoned.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the abandoned read's work is dropped");
    // And its slot is free again.
    gated.open_gate();
    TraceReaderClient::new(channel(addr).await)
        .get_services(GetServicesRequest {})
        .await
        .expect("a read is admitted once the slot is free");
}
