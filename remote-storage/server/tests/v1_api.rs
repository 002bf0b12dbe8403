//! End-to-end tests of Jaeger's v1 remote-storage API (`jaeger.storage.v1`, what Jaeger v1
//! components use with `SPAN_STORAGE_TYPE=grpc`): the real server in-process on the memory
//! backend, driven through tonic clients on `127.0.0.1:0` listeners, as `server.rs` does for v2.
//!
//! The translation rules themselves are unit- and property-tested in `remote_storage_core::v1`;
//! these tests check what only the running server can show: routing, streaming, chunking,
//! status codes and messages, tenancy, limits, metrics, health, and that data written through
//! one API reads back through the other. Expected wire behaviour: `shared/spec/protocol-v1.md`.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jaeger_remote_proto::api_v2 as model;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::common::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue as OtlpKeyValue, any_value,
};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::span::{Event, Link, SpanKind};
use jaeger_remote_proto::otlp::trace::status::StatusCode;
use jaeger_remote_proto::otlp::trace::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status as OtlpStatus, TracesData,
};
use jaeger_remote_proto::storage::v1::archive_span_reader_plugin_client::ArchiveSpanReaderPluginClient;
use jaeger_remote_proto::storage::v1::archive_span_writer_plugin_client::ArchiveSpanWriterPluginClient;
use jaeger_remote_proto::storage::v1::dependencies_reader_plugin_client::DependenciesReaderPluginClient;
use jaeger_remote_proto::storage::v1::plugin_capabilities_client::PluginCapabilitiesClient;
use jaeger_remote_proto::storage::v1::span_reader_plugin_client::SpanReaderPluginClient;
use jaeger_remote_proto::storage::v1::span_writer_plugin_client::SpanWriterPluginClient;
use jaeger_remote_proto::storage::v1::streaming_span_writer_plugin_client::StreamingSpanWriterPluginClient;
use jaeger_remote_proto::storage::v1::{
    CapabilitiesRequest, CloseWriterRequest, FindTraceIDsRequest, FindTracesRequest,
    GetDependenciesRequest, GetOperationsRequest, GetServicesRequest, GetTraceRequest,
    SpansResponseChunk, TraceQueryParameters, WriteSpanRequest, WriteSpanResponse,
};
use jaeger_remote_proto::storage::v2;
use jaeger_remote_proto::storage::v2::dependency_reader_client::DependencyReaderClient;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use prost::Message as _;
use prost_types::Timestamp;
use remote_storage::{RunningServer, ServerConfig, TenancyConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The Go client's default receive limit: every chunk Jaeger reads must fit.
const GO_CLIENT_MAX_RECV: usize = 4 * 1024 * 1024;
/// Jaeger's reference server sends at most this many spans per `SpansResponseChunk`.
const JAEGER_CHUNK_SPANS: usize = 1000;
const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;
/// Longest wait for something the server does asynchronously (spans of an open stream).
const EVENTUALLY: Duration = Duration::from_secs(10);
/// Pause between two attempts of an [`eventually`] read.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------------------------
// Harness

async fn start_with(config: ServerConfig) -> RunningServer {
    let backend = backend_memory::open(backend_memory::MemoryConfig::default());
    RunningServer::start(config, backend).await.unwrap()
}

async fn start() -> RunningServer {
    start_with(ServerConfig::for_tests()).await
}

fn tenancy_config() -> ServerConfig {
    let mut config = ServerConfig::for_tests();
    config.tenancy = TenancyConfig {
        enabled: true,
        tenants: vec!["acme".into(), "globex".into()],
        ..TenancyConfig::default()
    };
    config
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn span_writer(addr: SocketAddr) -> SpanWriterPluginClient<Channel> {
    SpanWriterPluginClient::new(channel(addr).await)
}

async fn stream_writer(addr: SocketAddr) -> StreamingSpanWriterPluginClient<Channel> {
    StreamingSpanWriterPluginClient::new(channel(addr).await)
}

/// A v1 reader with the Go client's 4 MiB receive limit: a larger chunk fails the stream.
async fn span_reader(addr: SocketAddr) -> SpanReaderPluginClient<Channel> {
    SpanReaderPluginClient::new(channel(addr).await).max_decoding_message_size(GO_CLIENT_MAX_RECV)
}

async fn v2_reader(addr: SocketAddr) -> TraceReaderClient<Channel> {
    TraceReaderClient::new(channel(addr).await).max_decoding_message_size(GO_CLIENT_MAX_RECV)
}

async fn otlp_writer(addr: SocketAddr) -> TraceServiceClient<Channel> {
    TraceServiceClient::new(channel(addr).await)
}

/// `message` with the tenant header, or without any when `tenant` is `None`.
fn request<T>(message: T, tenant: Option<&'static str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(tenant) = tenant {
        request
            .metadata_mut()
            .insert("x-tenant", MetadataValue::from_static(tenant));
    }
    request
}

/// Retries `attempt` until it yields a value, for at most [`EVENTUALLY`]: for state the server
/// reaches asynchronously, the test waits on the observable condition, never on a fixed time.
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn collect<T>(mut stream: tonic::Streaming<T>) -> Result<Vec<T>, Status> {
    let mut items = Vec::new();
    while let Some(item) = stream.message().await? {
        items.push(item);
    }
    Ok(items)
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn health_status(addr: SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel(addr).await);
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap();
    response.into_inner().status()
}

fn assert_refused<T>(result: Result<T, Status>, code: Code, fragments: &[&str]) {
    let Err(status) = result else {
        panic!("the call should have been refused with {code:?}");
    };
    assert_eq!(status.code(), code, "{status:?}");
    for fragment in fragments {
        assert!(
            status.message().contains(fragment),
            "{fragment:?} missing from {:?}",
            status.message()
        );
    }
}

/// What tonic reports for a message above the server's decoding limit.
fn assert_too_large<T>(result: Result<T, Status>) {
    let Err(status) = result else {
        panic!("an oversized message should be refused");
    };
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Time

fn now_nanos() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since_epoch.as_nanos()).unwrap()
}

/// A minute ago, with non-zero nanoseconds so that their loss would show.
fn recent_start() -> u64 {
    (now_nanos() / SECOND - 60) * SECOND + 123_456_789
}

fn timestamp(nanos: u64) -> Timestamp {
    Timestamp {
        seconds: i64::try_from(nanos / SECOND).unwrap(),
        nanos: i32::try_from(nanos % SECOND).unwrap(),
    }
}

fn duration(nanos: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(nanos / SECOND).unwrap(),
        nanos: i32::try_from(nanos % SECOND).unwrap(),
    }
}

/// Go's zero `time.Time` as Jaeger's client encodes an unset time: year 1.
fn go_zero_time() -> Timestamp {
    Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    }
}

/// The search Jaeger's query sends for a window of an hour either side of `start`: the Go
/// client always sends the duration fields, empty when unset.
fn window(start: u64) -> TraceQueryParameters {
    TraceQueryParameters {
        start_time_min: Some(timestamp(start - HOUR)),
        start_time_max: Some(timestamp(start + HOUR)),
        duration_min: Some(prost_types::Duration::default()),
        duration_max: Some(prost_types::Duration::default()),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// v1 spans

fn trace_id(byte: u8) -> Vec<u8> {
    vec![byte; 16]
}

fn span_id(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

fn str_tag(key: &str, value: &str) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::String.into(),
        v_str: value.into(),
        ..Default::default()
    }
}

fn bool_tag(key: &str, value: bool) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Bool.into(),
        v_bool: value,
        ..Default::default()
    }
}

fn int_tag(key: &str, value: i64) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Int64.into(),
        v_int64: value,
        ..Default::default()
    }
}

fn float_tag(key: &str, value: f64) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Float64.into(),
        v_float64: value,
        ..Default::default()
    }
}

fn binary_tag(key: &str, value: &[u8]) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Binary.into(),
        v_binary: value.to_vec(),
        ..Default::default()
    }
}

fn reference(trace: u8, span: u64, ref_type: model::SpanRefType) -> model::SpanRef {
    model::SpanRef {
        trace_id: trace_id(trace),
        span_id: span_id(span),
        ref_type: ref_type.into(),
    }
}

/// A span as Jaeger's v1 collector sends it: process filled, `process_id` empty, 1 ms long.
fn v1_span(trace: u8, id: u64, service: &str, operation: &str, start: u64) -> model::Span {
    model::Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        operation_name: operation.into(),
        start_time: Some(timestamp(start)),
        duration: Some(duration(1_000_000)),
        process: Some(model::Process {
            service_name: service.into(),
            tags: Vec::new(),
        }),
        ..Default::default()
    }
}

fn child_span(
    trace: u8,
    id: u64,
    parent: u64,
    service: &str,
    operation: &str,
    start: u64,
) -> model::Span {
    model::Span {
        references: vec![reference(trace, parent, model::SpanRefType::ChildOf)],
        ..v1_span(trace, id, service, operation, start)
    }
}

fn with_kind(mut span: model::Span, kind: &str) -> model::Span {
    span.tags.push(str_tag("span.kind", kind));
    span
}

fn write_request(span: model::Span) -> WriteSpanRequest {
    WriteSpanRequest { span: Some(span) }
}

async fn write_spans(addr: SocketAddr, spans: impl IntoIterator<Item = model::Span>) {
    let mut writer = span_writer(addr).await;
    for span in spans {
        writer.write_span(write_request(span)).await.unwrap();
    }
}

/// A `WriteSpanStream` call kept open: spans go through a channel while the call is in flight,
/// as in Jaeger's pooled streams, and [`OpenStream::finish`] half-closes it.
struct OpenStream {
    sender: mpsc::Sender<WriteSpanRequest>,
    call: JoinHandle<Result<Response<WriteSpanResponse>, Status>>,
}

impl OpenStream {
    async fn open(addr: SocketAddr, tenant: Option<&'static str>) -> Self {
        Self::open_with(stream_writer(addr).await, tenant)
    }

    fn open_with(
        mut client: StreamingSpanWriterPluginClient<Channel>,
        tenant: Option<&'static str>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(64);
        let call = tokio::spawn(async move {
            client
                .write_span_stream(request(ReceiverStream::new(receiver), tenant))
                .await
        });
        Self { sender, call }
    }

    async fn send(&self, message: WriteSpanRequest) {
        self.sender
            .send(message)
            .await
            .expect("the server ended the stream early");
    }

    async fn send_span(&self, span: model::Span) {
        self.send(write_request(span)).await;
    }

    fn is_open(&self) -> bool {
        !self.call.is_finished()
    }

    /// Half-closes the stream and returns the server's answer.
    async fn finish(self) -> Result<(), Status> {
        drop(self.sender);
        self.call.await.unwrap().map(|_| ())
    }
}

async fn get_trace(
    reader: &mut SpanReaderPluginClient<Channel>,
    trace_id: Vec<u8>,
) -> Result<Vec<SpansResponseChunk>, Status> {
    let request = GetTraceRequest {
        trace_id,
        ..Default::default()
    };
    collect(reader.get_trace(request).await?.into_inner()).await
}

async fn find_traces(
    reader: &mut SpanReaderPluginClient<Channel>,
    query: TraceQueryParameters,
) -> Vec<SpansResponseChunk> {
    let request = FindTracesRequest { query: Some(query) };
    collect(reader.find_traces(request).await.unwrap().into_inner())
        .await
        .unwrap()
}

/// The spans of every chunk, in stream order, as Jaeger's client joins them.
fn joined(chunks: Vec<SpansResponseChunk>) -> Vec<model::Span> {
    chunks.into_iter().flat_map(|chunk| chunk.spans).collect()
}

fn find_span(spans: &[model::Span], id: u64) -> &model::Span {
    spans
        .iter()
        .find(|span| span.span_id == span_id(id))
        .unwrap_or_else(|| panic!("span {id} missing"))
}

/// Checks what Jaeger's FindTraces client relies on (no empty chunk, no chunk mixing traces,
/// the spans of a trace contiguous) and returns each trace with its span count, in order.
fn traces_in(chunks: &[SpansResponseChunk]) -> Vec<(Vec<u8>, usize)> {
    let mut traces: Vec<(Vec<u8>, usize)> = Vec::new();
    for chunk in chunks {
        let ids: BTreeSet<&Vec<u8>> = chunk.spans.iter().map(|span| &span.trace_id).collect();
        assert_eq!(ids.len(), 1, "a chunk must hold exactly one trace");
        let id = ids.into_iter().next().unwrap().clone();
        match traces.last_mut() {
            Some((last, count)) if *last == id => *count += chunk.spans.len(),
            _ => {
                assert!(
                    traces.iter().all(|(seen, _)| *seen != id),
                    "the spans of a trace must be contiguous"
                );
                traces.push((id, chunk.spans.len()));
            }
        }
    }
    traces
}

fn trace_ids_of(chunks: &[SpansResponseChunk]) -> BTreeSet<Vec<u8>> {
    traces_in(chunks).into_iter().map(|(id, _)| id).collect()
}

/// Sorted (name, kind) pairs and sorted deprecated names of a v1 GetOperations.
async fn operations(
    reader: &mut SpanReaderPluginClient<Channel>,
    service: &str,
    span_kind: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let answer = reader
        .get_operations(GetOperationsRequest {
            service: service.into(),
            span_kind: span_kind.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut typed: Vec<(String, String)> = answer
        .operations
        .into_iter()
        .map(|operation| (operation.name, operation.span_kind))
        .collect();
    typed.sort();
    let mut names = answer.operation_names;
    names.sort();
    (typed, names)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(left, right)| ((*left).to_owned(), (*right).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OTLP and v2

fn otlp_value(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn otlp_kv(key: &str, value: any_value::Value) -> OtlpKeyValue {
    OtlpKeyValue {
        key: key.into(),
        value: otlp_value(value),
        ..Default::default()
    }
}

fn otlp_str(key: &str, value: &str) -> OtlpKeyValue {
    otlp_kv(key, any_value::Value::StringValue(value.into()))
}

/// Jaeger's span warnings as OTLP carries them: a list of strings.
fn warnings_attribute(warnings: &[&str]) -> OtlpKeyValue {
    let values = warnings
        .iter()
        .map(|text| AnyValue {
            value: Some(any_value::Value::StringValue((*text).into())),
        })
        .collect();
    otlp_kv(
        "@jaeger@warnings",
        any_value::Value::ArrayValue(ArrayValue { values }),
    )
}

fn otlp_span(trace: u8, id: u64, parent: Option<u64>, name: &str, start: u64) -> OtlpSpan {
    OtlpSpan {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.into(),
        kind: SpanKind::Internal.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        ..Default::default()
    }
}

fn resource_group(service: &str, spans: Vec<OtlpSpan>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![otlp_str("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn export(addr: SocketAddr, groups: Vec<ResourceSpans>, tenant: Option<&'static str>) {
    let export = ExportTraceServiceRequest {
        resource_spans: groups,
    };
    let answer = otlp_writer(addr)
        .await
        .export(request(export, tenant))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.partial_success, None);
}

async fn v2_get_trace(
    addr: SocketAddr,
    trace_id: Vec<u8>,
    tenant: Option<&'static str>,
) -> Vec<TracesData> {
    let query = v2::GetTracesRequest {
        query: vec![v2::GetTraceParams {
            trace_id,
            ..Default::default()
        }],
    };
    let stream = v2_reader(addr)
        .await
        .get_traces(request(query, tenant))
        .await
        .unwrap()
        .into_inner();
    collect(stream).await.unwrap()
}

/// Every span of a v2 answer with its resource and scope.
fn otlp_spans(chunks: &[TracesData]) -> Vec<(&Resource, &InstrumentationScope, &OtlpSpan)> {
    let mut spans = Vec::new();
    for group in chunks.iter().flat_map(|chunk| &chunk.resource_spans) {
        let resource = group.resource.as_ref().expect("resource");
        for scope_group in &group.scope_spans {
            let scope = scope_group.scope.as_ref().expect("scope");
            spans.extend(scope_group.spans.iter().map(|span| (resource, scope, span)));
        }
    }
    spans
}

fn v2_window(start: u64) -> (Option<Timestamp>, Option<Timestamp>) {
    (Some(timestamp(start - HOUR)), Some(timestamp(start + HOUR)))
}

// ---------------------------------------------------------------------------------------------
// 1. WriteSpan, GetTrace, GetServices, GetOperations

#[tokio::test]
async fn a_written_span_reads_back_exactly_with_every_field() {
    let server = start().await;
    let start = recent_start();
    let written = model::Span {
        trace_id: trace_id(0x11),
        span_id: span_id(2),
        operation_name: "load-cart".into(),
        references: vec![reference(0x11, 1, model::SpanRefType::ChildOf)],
        flags: 1,
        start_time: Some(timestamp(start + 7)),
        duration: Some(prost_types::Duration {
            seconds: 1,
            nanos: 7,
        }),
        // Tags in the order they read back: attributes first, then `span.kind`.
        tags: vec![
            str_tag("http.method", "GET"),
            bool_tag("cache.hit", true),
            int_tag("retries", -3),
            float_tag("ratio", 0.25),
            binary_tag("payload", &[0, 1, 2, 255]),
            str_tag("span.kind", "server"),
        ],
        logs: vec![model::Log {
            timestamp: Some(timestamp(start + 5_001)),
            fields: vec![str_tag("event", "retry"), int_tag("attempt", 2)],
        }],
        process: Some(model::Process {
            service_name: "checkout".into(),
            tags: vec![str_tag("region", "eu-west"), int_tag("pid", 4242)],
        }),
        process_id: String::new(),
        warnings: vec!["clock skew adjusted".into()],
    };
    let parent = v1_span(0x11, 1, "frontend", "GET /cart", start);
    write_spans(server.grpc_addr, [parent.clone(), written.clone()]).await;

    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x11)).await.unwrap());
    assert_eq!(spans.len(), 2);
    assert_eq!(find_span(&spans, 2), &written);
    assert_eq!(find_span(&spans, 1), &parent);

    // The time window is only a hint: a window around the trace finds it too.
    let hinted = GetTraceRequest {
        trace_id: trace_id(0x11),
        start_time: Some(timestamp(start - HOUR)),
        end_time: Some(timestamp(start + HOUR)),
    };
    let chunks = collect(reader.get_trace(hinted).await.unwrap().into_inner())
        .await
        .unwrap();
    assert_eq!(joined(chunks).len(), 2);
    // Go's zero times mean "no hint".
    let unset = GetTraceRequest {
        trace_id: trace_id(0x11),
        start_time: Some(go_zero_time()),
        end_time: Some(go_zero_time()),
    };
    let chunks = collect(reader.get_trace(unset).await.unwrap().into_inner())
        .await
        .unwrap();
    assert_eq!(joined(chunks).len(), 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn services_and_operations_fill_both_the_typed_and_the_deprecated_lists() {
    let server = start().await;
    let start = recent_start();
    write_spans(
        server.grpc_addr,
        [
            with_kind(v1_span(0x12, 1, "checkout", "GET /cart", start), "server"),
            with_kind(v1_span(0x12, 2, "checkout", "GET /cart", start), "client"),
            with_kind(v1_span(0x12, 3, "checkout", "db.query", start), "client"),
            v1_span(0x12, 4, "checkout", "warm-up", start),
            with_kind(v1_span(0x13, 1, "payments", "charge", start), "server"),
        ],
    )
    .await;
    let mut reader = span_reader(server.grpc_addr).await;

    let mut services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    services.sort();
    assert_eq!(services, ["checkout", "payments"]);

    // Jaeger reads `operations` (kinds as lower-case words, "" for none); older clients read
    // `operationNames`, where each name appears once even when it has several kinds.
    let (typed, names) = operations(&mut reader, "checkout", "").await;
    assert_eq!(
        typed,
        pairs(&[
            ("GET /cart", "client"),
            ("GET /cart", "server"),
            ("db.query", "client"),
            ("warm-up", ""),
        ])
    );
    assert_eq!(names, ["GET /cart", "db.query", "warm-up"]);

    let (clients, client_names) = operations(&mut reader, "checkout", "client").await;
    assert_eq!(
        clients,
        pairs(&[("GET /cart", "client"), ("db.query", "client")])
    );
    assert_eq!(client_names, ["GET /cart", "db.query"]);

    let (unknown, unknown_names) = operations(&mut reader, "nobody", "").await;
    assert!(unknown.is_empty() && unknown_names.is_empty());
    assert_refused(
        reader.get_operations(GetOperationsRequest::default()).await,
        Code::InvalidArgument,
        &[],
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. WriteSpanStream

#[tokio::test]
async fn spans_of_an_open_stream_are_readable_before_it_closes() {
    let server = start().await;
    let start = recent_start();
    let stream = OpenStream::open(server.grpc_addr, None).await;
    stream
        .send_span(v1_span(0x21, 1, "streamer", "root", start))
        .await;
    stream
        .send_span(child_span(0x21, 2, 1, "streamer", "child", start + 10))
        .await;

    let reader = span_reader(server.grpc_addr).await;
    let read_v1 = |expected: usize| {
        let mut reader = reader.clone();
        async move {
            let spans = joined(get_trace(&mut reader, trace_id(0x21)).await.ok()?);
            (spans.len() == expected).then_some(spans)
        }
    };
    let spans = eventually("two spans through v1 GetTrace", || read_v1(2)).await;
    assert!(stream.is_open(), "the stream must still be open");
    assert_eq!(find_span(&spans, 2).references.len(), 1);

    let chunks = v2_get_trace(server.grpc_addr, trace_id(0x21), None).await;
    let names: BTreeSet<&str> = otlp_spans(&chunks)
        .into_iter()
        .map(|(_, _, span)| span.name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["root", "child"]));
    assert!(stream.is_open(), "the stream must still be open");

    // The same stream keeps writing after the reads.
    stream
        .send_span(child_span(0x21, 3, 1, "streamer", "late", start + 20))
        .await;
    eventually("the third span", || read_v1(3)).await;
    assert!(stream.is_open());

    // Half-close: an empty OK answer.
    stream.finish().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_malformed_span_in_a_stream_is_reported_at_half_close_and_the_rest_is_stored() {
    let server = start().await;
    let start = recent_start();
    let stream = OpenStream::open(server.grpc_addr, None).await;
    // Enough valid spans first that the refusal may land in a later batch than the first
    // one: the message index it reports counts from the start of the stream.
    for id in 1..=150 {
        stream
            .send_span(v1_span(0x22, id, "streamer", "good", start))
            .await;
    }
    let mut short_span_id = v1_span(0x22, 151, "streamer", "bad", start);
    short_span_id.span_id = vec![2; 5];
    stream.send_span(short_span_id).await;
    stream
        .send_span(v1_span(0x22, 152, "streamer", "good-after", start))
        .await;
    // A message without a span: refused too, but only the first refusal is described.
    stream.send(WriteSpanRequest { span: None }).await;

    assert_refused(
        stream.finish().await,
        Code::InvalidArgument,
        &[
            "2 of 153 span(s) refused",
            "message #150",
            "span.span_id must be 8 bytes, got 5 bytes",
        ],
    );
    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x22)).await.unwrap());
    assert_eq!(spans.len(), 151);
    assert!(spans.iter().all(|span| span.operation_name != "bad"));
    find_span(&spans, 152);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. WriteSpan with bad input

#[tokio::test]
async fn malformed_write_span_requests_name_the_field_and_lose_nothing() {
    let server = start().await;
    let start = recent_start();
    let mut writer = span_writer(server.grpc_addr).await;
    writer
        .write_span(write_request(v1_span(0x31, 1, "good-svc", "kept", start)))
        .await
        .unwrap();

    assert_refused(
        writer.write_span(WriteSpanRequest { span: None }).await,
        Code::InvalidArgument,
        &["span is required"],
    );
    let mut bad_trace_id = v1_span(0x32, 1, "bad-svc", "bad", start);
    bad_trace_id.trace_id = vec![1; 12];
    assert_refused(
        writer.write_span(write_request(bad_trace_id)).await,
        Code::InvalidArgument,
        &["span.trace_id", "got 12 bytes"],
    );
    let mut negative = v1_span(0x32, 2, "bad-svc", "bad", start);
    negative.duration = Some(prost_types::Duration {
        seconds: -1,
        nanos: 0,
    });
    assert_refused(
        writer.write_span(write_request(negative)).await,
        Code::InvalidArgument,
        &["span.duration must not be negative"],
    );
    let mut bad_reference = child_span(0x32, 3, 1, "bad-svc", "bad", start);
    bad_reference.references[0].span_id = vec![1; 3];
    assert_refused(
        writer.write_span(write_request(bad_reference)).await,
        Code::InvalidArgument,
        &["span.references[0].span_id"],
    );

    let mut reader = span_reader(server.grpc_addr).await;
    let kept = joined(get_trace(&mut reader, trace_id(0x31)).await.unwrap());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].operation_name, "kept");
    let services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services, ["good-svc"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_8_byte_trace_id_is_stored_as_16_bytes_with_leading_zeros() {
    let server = start().await;
    let start = recent_start();
    let short_id = vec![0xAB; 8];
    let mut padded = vec![0; 8];
    padded.extend_from_slice(&short_id);
    let mut root = v1_span(0, 1, "legacy", "root", start);
    root.trace_id.clone_from(&short_id);
    let mut child = child_span(0, 2, 1, "legacy", "child", start + 5);
    child.trace_id.clone_from(&short_id);
    child.references[0].trace_id.clone_from(&short_id);
    write_spans(server.grpc_addr, [root, child]).await;

    // v2 sees the 16-byte ID, and the 8-byte reference still made span 1 the parent.
    let chunks = v2_get_trace(server.grpc_addr, padded.clone(), None).await;
    let spans = otlp_spans(&chunks);
    assert_eq!(spans.len(), 2);
    for (_, _, span) in &spans {
        assert_eq!(span.trace_id, padded);
    }
    let (_, _, child) = spans
        .iter()
        .find(|(_, _, span)| span.name == "child")
        .unwrap();
    assert_eq!(child.parent_span_id, span_id(1));

    // v1 finds it by either form of the ID and answers with 16 bytes.
    let mut reader = span_reader(server.grpc_addr).await;
    for id in [short_id, padded.clone()] {
        let spans = joined(get_trace(&mut reader, id).await.unwrap());
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|span| span.trace_id == padded));
    }
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4. Not found, no match

#[tokio::test]
async fn an_unknown_trace_is_not_found_before_any_chunk_and_no_match_is_an_empty_stream() {
    let server = start().await;
    let start = recent_start();
    write_spans(server.grpc_addr, [v1_span(0x41, 1, "svc", "op", start)]).await;
    let mut reader = span_reader(server.grpc_addr).await;

    // An error from the call itself (not from the stream) means no chunk came first. Jaeger's
    // client recognises an unknown trace only by this exact message.
    let unknown = reader
        .get_trace(GetTraceRequest {
            trace_id: trace_id(0x49),
            ..Default::default()
        })
        .await
        .map(|_| ());
    let status = unknown.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "trace not found");

    assert_refused(
        get_trace(&mut reader, vec![1; 5]).await,
        Code::InvalidArgument,
        &["trace_id"],
    );

    let nothing = find_traces(
        &mut reader,
        TraceQueryParameters {
            service_name: "nobody".into(),
            ..window(start)
        },
    )
    .await;
    assert!(nothing.is_empty());
    let no_ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(TraceQueryParameters {
                service_name: "nobody".into(),
                ..window(start)
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert!(no_ids.is_empty());
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 5. Large traces

#[tokio::test]
async fn a_10008_span_trace_written_through_a_stream_reads_back_in_go_sized_chunks() {
    const SPANS: u64 = 10_008;
    let server = start().await;
    let start = recent_start();
    let stream = OpenStream::open(server.grpc_addr, None).await;
    for id in 1..=SPANS {
        let mut span = if id == 1 {
            v1_span(0x51, id, "big-svc", "root", start)
        } else {
            child_span(0x51, id, 1, "big-svc", "step", start + id)
        };
        span.process.as_mut().unwrap().tags = vec![int_tag("pid", 7)];
        span.tags = vec![int_tag("index", i64::try_from(id).unwrap())];
        stream.send_span(span).await;
    }
    stream.finish().await.unwrap();

    let mut reader = span_reader(server.grpc_addr).await;
    let chunks = get_trace(&mut reader, trace_id(0x51)).await.unwrap();
    assert!(chunks.len() >= 11, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert!(!chunk.spans.is_empty());
        assert!(
            chunk.spans.len() <= JAEGER_CHUNK_SPANS,
            "{}",
            chunk.spans.len()
        );
        assert!(chunk.encoded_len() < GO_CLIENT_MAX_RECV);
    }
    let spans = joined(chunks);
    assert_eq!(spans.len(), 10_008);
    let ids: BTreeSet<&Vec<u8>> = spans.iter().map(|span| &span.span_id).collect();
    assert_eq!(ids.len(), 10_008);
    for span in &spans {
        let process = span
            .process
            .as_ref()
            .expect("every span carries its process");
        assert_eq!(process.service_name, "big-svc");
        assert_eq!(process.tags, [int_tag("pid", 7)]);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_trace_of_fat_spans_stays_under_4_mib_per_chunk() {
    let server = start().await;
    let start = recent_start();
    let fat = "f".repeat(300_000);
    // 16 spans of 300 KB: about 4.8 MB in all, more than one Go-sized message.
    let spans: Vec<model::Span> = (1..=16)
        .map(|id| {
            let mut span = v1_span(0x52, id, "fat-svc", "fat", start);
            span.tags = vec![str_tag("blob", &fat)];
            span
        })
        .collect();
    write_spans(server.grpc_addr, spans).await;

    let mut reader = span_reader(server.grpc_addr).await;
    let chunks = get_trace(&mut reader, trace_id(0x52)).await.unwrap();
    assert!(chunks.len() > 1, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert!(
            chunk.encoded_len() < GO_CLIENT_MAX_RECV,
            "{}",
            chunk.encoded_len()
        );
    }
    let spans = joined(chunks);
    assert_eq!(spans.len(), 16);
    assert!(spans.iter().all(|span| span.tags[0].v_str.len() == 300_000));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn spans_sharing_a_span_id_are_all_kept() {
    // Jaeger's GetTraceWithDuplicateSpans: clients may send distinct spans with one ID, and
    // all of them must come back.
    let server = start().await;
    let start = recent_start();
    let spans: Vec<model::Span> = (1..=40)
        .map(|index| {
            let id = if index % 20 == 0 { index - 1 } else { index };
            v1_span(0x53, id, "dup-svc", &format!("op-{index}"), start + index)
        })
        .collect();
    write_spans(server.grpc_addr, spans).await;
    let mut reader = span_reader(server.grpc_addr).await;
    let read = joined(get_trace(&mut reader, trace_id(0x53)).await.unwrap());
    assert_eq!(read.len(), 40);
    let names: BTreeSet<&str> = read
        .iter()
        .map(|span| span.operation_name.as_str())
        .collect();
    assert_eq!(names.len(), 40);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 6. FindTraces and FindTraceIDs

/// Five traces of service `shop`, three spans each, exported through OTLP with their spans
/// interleaved across resource groups. One span of each trace carries what a search can match:
/// `0x61` an int, `0x62` a double, `0x63` a bool and an ERROR status, `0x64` bytes, `0x65` the
/// only SERVER kind.
fn searchable_traces(start: u64) -> Vec<ResourceSpans> {
    let marks: [(u8, Option<OtlpKeyValue>); 5] = [
        (
            0x61,
            Some(otlp_kv("retries", any_value::Value::IntValue(123))),
        ),
        (
            0x62,
            Some(otlp_kv("cpu", any_value::Value::DoubleValue(72.5))),
        ),
        (
            0x63,
            Some(otlp_kv("cached", any_value::Value::BoolValue(true))),
        ),
        (
            0x64,
            Some(otlp_kv("blob", any_value::Value::BytesValue(vec![1, 2, 3]))),
        ),
        (0x65, None),
    ];
    let mut roots = Vec::new();
    let mut children = Vec::new();
    for (offset, (trace, mark)) in (0u64..).zip(marks) {
        let mut root = otlp_span(trace, 1, None, "checkout", start + offset);
        root.attributes.extend(mark);
        match trace {
            0x63 => {
                root.status = Some(OtlpStatus {
                    code: StatusCode::Error.into(),
                    message: "out of stock".into(),
                });
            }
            0x65 => root.kind = SpanKind::Server.into(),
            _ => {}
        }
        roots.push(root);
        children.push(otlp_span(trace, 2, Some(1), "reserve", start + offset + 1));
        children.push(otlp_span(trace, 3, Some(1), "pay", start + offset + 2));
    }
    vec![
        resource_group("shop", roots),
        resource_group("shop", children),
    ]
}

#[tokio::test]
async fn find_traces_streams_whole_contiguous_traces_and_matches_tags_by_text() {
    let mut config = ServerConfig::for_tests();
    // Two spans per chunk, so that every three-span trace crosses a chunk boundary.
    config.limits.max_chunk_spans = NonZeroUsize::new(2).unwrap();
    let server = start_with(config).await;
    let start = recent_start();
    export(server.grpc_addr, searchable_traces(start), None).await;
    let mut reader = span_reader(server.grpc_addr).await;
    let shop = || TraceQueryParameters {
        service_name: "shop".into(),
        ..window(start)
    };

    let all = find_traces(&mut reader, shop()).await;
    assert!(all.iter().all(|chunk| chunk.spans.len() <= 2));
    let traces = traces_in(&all);
    assert_eq!(traces.len(), 5);
    assert!(traces.iter().all(|(_, count)| *count == 3), "{traces:?}");

    let ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(shop()),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert!(ids.iter().all(|id| id.len() == 16));
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), trace_ids_of(&all));

    // `num_traces` limits the traces, not the spans.
    let limited = find_traces(
        &mut reader,
        TraceQueryParameters {
            num_traces: 2,
            ..shop()
        },
    )
    .await;
    let traces = traces_in(&limited);
    assert_eq!(traces.len(), 2);
    assert!(traces.iter().all(|(_, count)| *count == 3));
    let limited_ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(TraceQueryParameters {
                num_traces: 2,
                ..shop()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert_eq!(limited_ids.len(), 2);

    // v1 tags are strings: they match typed attributes by their text, and `error` and
    // `span.kind` match the status and the kind.
    for (key, value, expected) in [
        ("retries", "123", 0x61),
        ("cpu", "72.5", 0x62),
        ("cached", "true", 0x63),
        ("blob", "AQID", 0x64),
        ("error", "true", 0x63),
        ("span.kind", "server", 0x65),
    ] {
        let query = TraceQueryParameters {
            tags: [(key.to_owned(), value.to_owned())].into(),
            ..shop()
        };
        let found = find_traces(&mut reader, query.clone()).await;
        assert_eq!(
            traces_in(&found),
            [(trace_id(expected), 3)],
            "{key}={value}"
        );
        let ids = reader
            .find_trace_i_ds(FindTraceIDsRequest { query: Some(query) })
            .await
            .unwrap()
            .into_inner()
            .trace_ids;
        assert_eq!(ids, [trace_id(expected)], "{key}={value}");
    }
    // A wrong text matches nothing.
    let nothing = TraceQueryParameters {
        tags: [("retries".to_owned(), "124".to_owned())].into(),
        ..shop()
    };
    assert!(find_traces(&mut reader, nothing).await.is_empty());
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 7. Across the APIs

#[tokio::test]
async fn otlp_exports_read_through_v1_with_jaeger_translation() {
    let server = start().await;
    let start = recent_start();
    let mut span = otlp_span(0x71, 2, Some(1), "reserve", start);
    span.kind = SpanKind::Server.into();
    span.attributes = vec![
        otlp_kv("db.rows", any_value::Value::IntValue(5)),
        warnings_attribute(&["w1"]),
    ];
    span.status = Some(OtlpStatus {
        code: StatusCode::Error.into(),
        message: "boom".into(),
    });
    span.trace_state = "vendor=abc".into();
    span.events = vec![Event {
        time_unix_nano: start + 500,
        name: "cache-miss".into(),
        attributes: vec![otlp_str("key", "sku-1")],
        ..Default::default()
    }];
    span.links = vec![Link {
        trace_id: trace_id(0x72),
        span_id: span_id(9),
        ..Default::default()
    }];
    let group = ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                otlp_str("service.name", "inventory"),
                otlp_str("host.name", "node-1"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "io.inventory".into(),
                version: "3.1".into(),
                ..Default::default()
            }),
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    };
    export(server.grpc_addr, vec![group], None).await;

    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x71)).await.unwrap());
    let expected = model::Span {
        trace_id: trace_id(0x71),
        span_id: span_id(2),
        operation_name: "reserve".into(),
        references: vec![
            reference(0x71, 1, model::SpanRefType::ChildOf),
            reference(0x72, 9, model::SpanRefType::FollowsFrom),
        ],
        flags: 0,
        start_time: Some(timestamp(start)),
        duration: Some(duration(1_000_000)),
        // Jaeger's order: scope, attributes, kind, status code, error, message, trace state.
        tags: vec![
            str_tag("otel.scope.name", "io.inventory"),
            str_tag("otel.scope.version", "3.1"),
            int_tag("db.rows", 5),
            str_tag("span.kind", "server"),
            str_tag("otel.status_code", "ERROR"),
            bool_tag("error", true),
            str_tag("otel.status_description", "boom"),
            str_tag("w3c.tracestate", "vendor=abc"),
        ],
        logs: vec![model::Log {
            timestamp: Some(timestamp(start + 500)),
            fields: vec![str_tag("event", "cache-miss"), str_tag("key", "sku-1")],
        }],
        process: Some(model::Process {
            service_name: "inventory".into(),
            tags: vec![str_tag("host.name", "node-1")],
        }),
        process_id: String::new(),
        warnings: vec!["w1".into()],
    };
    assert_eq!(spans, [expected]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_writes_read_through_v2_as_otlp() {
    let server = start().await;
    let start = recent_start();
    let span = model::Span {
        trace_id: trace_id(0x73),
        span_id: span_id(2),
        operation_name: "charge".into(),
        references: vec![
            reference(0x73, 1, model::SpanRefType::ChildOf),
            reference(0x74, 9, model::SpanRefType::FollowsFrom),
        ],
        start_time: Some(timestamp(start)),
        duration: Some(duration(2_000_000)),
        tags: vec![
            str_tag("otel.scope.name", "io.payments"),
            str_tag("otel.scope.version", "1.2.0"),
            str_tag("http.method", "POST"),
            str_tag("span.kind", "client"),
            bool_tag("error", true),
            str_tag("otel.status_description", "card declined"),
            str_tag("w3c.tracestate", "vendor=abc"),
        ],
        logs: vec![model::Log {
            timestamp: Some(timestamp(start + 100)),
            fields: vec![str_tag("event", "retry"), int_tag("attempt", 2)],
        }],
        process: Some(model::Process {
            service_name: "payments".into(),
            tags: vec![str_tag("region", "eu")],
        }),
        warnings: vec!["clock skew".into()],
        ..Default::default()
    };
    write_spans(server.grpc_addr, [span]).await;

    let chunks = v2_get_trace(server.grpc_addr, trace_id(0x73), None).await;
    let spans = otlp_spans(&chunks);
    assert_eq!(spans.len(), 1);
    let (resource, scope, span) = spans[0];
    assert_eq!(
        resource.attributes,
        [
            otlp_str("service.name", "payments"),
            otlp_str("region", "eu")
        ]
    );
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("io.payments", "1.2.0")
    );
    assert_eq!(span.kind, i32::from(SpanKind::Client));
    assert_eq!(
        span.status,
        Some(OtlpStatus {
            code: StatusCode::Error.into(),
            message: "card declined".into(),
        })
    );
    assert_eq!(span.trace_state, "vendor=abc");
    assert_eq!(span.parent_span_id, span_id(1));
    assert_eq!(span.start_time_unix_nano, start);
    assert_eq!(span.end_time_unix_nano, start + 2_000_000);
    assert_eq!(
        span.links,
        [Link {
            trace_id: trace_id(0x74),
            span_id: span_id(9),
            attributes: vec![otlp_str("opentracing.ref_type", "follows_from")],
            ..Default::default()
        }]
    );
    assert_eq!(
        span.events,
        [Event {
            time_unix_nano: start + 100,
            name: "retry".into(),
            attributes: vec![otlp_kv("attempt", any_value::Value::IntValue(2))],
            ..Default::default()
        }]
    );
    // The folded tags are gone; the warnings became Jaeger's list attribute.
    assert_eq!(
        span.attributes,
        [
            otlp_str("http.method", "POST"),
            warnings_attribute(&["clock skew"]),
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_and_v2_dependencies_agree() {
    let server = start().await;
    let start = recent_start();
    // v1: frontend → backend → db, and frontend → backend again; OTLP: backend → cache.
    write_spans(
        server.grpc_addr,
        [
            v1_span(0x75, 1, "frontend", "GET /", start),
            child_span(0x75, 2, 1, "backend", "load", start + 1),
            child_span(0x75, 3, 2, "db", "select", start + 2),
            v1_span(0x76, 1, "frontend", "GET /", start),
            child_span(0x76, 2, 1, "backend", "load", start + 1),
        ],
    )
    .await;
    export(
        server.grpc_addr,
        vec![
            resource_group("backend", vec![otlp_span(0x77, 1, None, "warm", start)]),
            resource_group("cache", vec![otlp_span(0x77, 2, Some(1), "get", start + 1)]),
        ],
        None,
    )
    .await;

    let (start_time, end_time) = v2_window(start);
    let mut v1_client = DependenciesReaderPluginClient::new(channel(server.grpc_addr).await);
    let mut from_v1: Vec<(String, String, u64)> = v1_client
        .get_dependencies(GetDependenciesRequest {
            start_time,
            end_time,
        })
        .await
        .unwrap()
        .into_inner()
        .dependencies
        .into_iter()
        .map(|link| (link.parent, link.child, link.call_count))
        .collect();
    from_v1.sort();
    let mut v2_client = DependencyReaderClient::new(channel(server.grpc_addr).await);
    let mut from_v2: Vec<(String, String, u64)> = v2_client
        .get_dependencies(v2::GetDependenciesRequest {
            start_time,
            end_time,
        })
        .await
        .unwrap()
        .into_inner()
        .dependencies
        .into_iter()
        .map(|link| (link.parent, link.child, link.call_count))
        .collect();
    from_v2.sort();
    assert_eq!(
        from_v1,
        [
            ("backend".to_owned(), "cache".to_owned(), 1),
            ("backend".to_owned(), "db".to_owned(), 1),
            ("frontend".to_owned(), "backend".to_owned(), 2),
        ]
    );
    assert_eq!(from_v1, from_v2);

    assert_refused(
        v1_client
            .get_dependencies(GetDependenciesRequest::default())
            .await,
        Code::InvalidArgument,
        &[],
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 8. Capabilities, archive, Close

#[tokio::test]
async fn capabilities_offer_streaming_and_no_archive() {
    let server = start().await;
    let mut client = PluginCapabilitiesClient::new(channel(server.grpc_addr).await);
    let answer = client
        .capabilities(CapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(answer.streaming_span_writer);
    #[allow(deprecated)]
    let archive = (answer.archive_span_reader, answer.archive_span_writer);
    assert_eq!(archive, (false, false));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn archive_rpcs_are_unimplemented() {
    let server = start().await;
    let start = recent_start();
    let mut writer = ArchiveSpanWriterPluginClient::new(channel(server.grpc_addr).await);
    assert_refused(
        writer
            .write_archive_span(write_request(v1_span(0x81, 1, "svc", "op", start)))
            .await,
        Code::Unimplemented,
        &["archive"],
    );
    let mut reader = ArchiveSpanReaderPluginClient::new(channel(server.grpc_addr).await);
    assert_refused(
        reader
            .get_archive_trace(GetTraceRequest {
                trace_id: trace_id(0x81),
                ..Default::default()
            })
            .await,
        Code::Unimplemented,
        &["archive"],
    );
    // Nothing reached the store.
    let services = span_reader(server.grpc_addr)
        .await
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert!(services.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn close_answers_ok_and_affects_no_other_writer() {
    let server = start().await;
    let start = recent_start();
    let mut closing = span_writer(server.grpc_addr).await;
    closing
        .write_span(write_request(v1_span(0x82, 1, "svc", "before", start)))
        .await
        .unwrap();
    closing.close(CloseWriterRequest {}).await.unwrap();

    // Another connection (and an open stream) keep writing.
    let stream = OpenStream::open(server.grpc_addr, None).await;
    write_spans(server.grpc_addr, [v1_span(0x82, 2, "svc", "after", start)]).await;
    stream
        .send_span(v1_span(0x82, 3, "svc", "streamed", start))
        .await;
    stream.finish().await.unwrap();

    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x82)).await.unwrap());
    let names: BTreeSet<&str> = spans
        .iter()
        .map(|span| span.operation_name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["before", "after", "streamed"]));
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 9. Tenancy

/// Calls every v1 RPC once with `tenant` (or no tenant header) and returns each outcome.
async fn every_v1_rpc(
    addr: SocketAddr,
    tenant: Option<&'static str>,
) -> Vec<(&'static str, Result<(), Status>)> {
    let start = recent_start();
    let span = || v1_span(0x91, 1, "probe", "probe", start);
    let query = || Some(window(start));
    let mut writer = span_writer(addr).await;
    let mut streamer = stream_writer(addr).await;
    let mut reader = span_reader(addr).await;
    let mut dependencies = DependenciesReaderPluginClient::new(channel(addr).await);
    let mut capabilities = PluginCapabilitiesClient::new(channel(addr).await);
    let (start_time, end_time) = v2_window(start);
    vec![
        (
            "WriteSpan",
            writer
                .write_span(request(write_request(span()), tenant))
                .await
                .map(|_| ()),
        ),
        (
            "Close",
            writer
                .close(request(CloseWriterRequest {}, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "WriteSpanStream",
            streamer
                .write_span_stream(request(tokio_stream::iter([write_request(span())]), tenant))
                .await
                .map(|_| ()),
        ),
        (
            "GetTrace",
            reader
                .get_trace(request(
                    GetTraceRequest {
                        trace_id: trace_id(0x91),
                        ..Default::default()
                    },
                    tenant,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "GetServices",
            reader
                .get_services(request(GetServicesRequest {}, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "GetOperations",
            reader
                .get_operations(request(
                    GetOperationsRequest {
                        service: "probe".into(),
                        span_kind: String::new(),
                    },
                    tenant,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "FindTraces",
            reader
                .find_traces(request(FindTracesRequest { query: query() }, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "FindTraceIDs",
            reader
                .find_trace_i_ds(request(FindTraceIDsRequest { query: query() }, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "GetDependencies",
            dependencies
                .get_dependencies(request(
                    GetDependenciesRequest {
                        start_time,
                        end_time,
                    },
                    tenant,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "Capabilities",
            capabilities
                .capabilities(request(CapabilitiesRequest {}, tenant))
                .await
                .map(|_| ()),
        ),
    ]
}

#[tokio::test]
async fn the_tenancy_guard_covers_every_v1_rpc() {
    let server = start_with(tenancy_config()).await;
    // tonic, like grpc-go, always sends `user-agent`, so a request without the tenant header
    // still has metadata: Jaeger's answer for that is UNAUTHENTICATED (PERMISSION_DENIED is for
    // no metadata at all, which only a hand-made request can produce; see tenancy.rs).
    for (rpc, outcome) in every_v1_rpc(server.grpc_addr, None).await {
        let status = outcome.expect_err(rpc);
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc}");
        assert_eq!(status.message(), "missing tenant header", "{rpc}");
    }
    for (rpc, outcome) in every_v1_rpc(server.grpc_addr, Some("mallory")).await {
        let status = outcome.expect_err(rpc);
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}");
        assert_eq!(status.message(), "unknown tenant", "{rpc}");
    }
    // An allowed tenant passes the guard everywhere (the probe trace exists by the time
    // GetTrace runs, since WriteSpan came first).
    for (rpc, outcome) in every_v1_rpc(server.grpc_addr, Some("acme")).await {
        outcome.unwrap_or_else(|status| panic!("{rpc}: {status:?}"));
    }
    // Two tenant headers.
    let mut twice = request(GetServicesRequest {}, Some("acme"));
    twice
        .metadata_mut()
        .append("x-tenant", MetadataValue::from_static("globex"));
    assert_refused(
        span_reader(server.grpc_addr)
            .await
            .get_services(twice)
            .await,
        Code::PermissionDenied,
        &["extra tenant header"],
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn capabilities_without_a_tenant_are_refused_so_jaeger_falls_back_to_unary_writes() {
    // Jaeger's client asks Capabilities once, with no tenant. Refusing it is the desired
    // answer: the client then writes one WriteSpan per span, each with its own tenant, instead
    // of pooling streams, and its stream pool ignores tenants (a stream opened for one tenant
    // would carry the next tenant's spans under the first one's name).
    let server = start_with(tenancy_config()).await;
    let mut client = PluginCapabilitiesClient::new(channel(server.grpc_addr).await);
    assert_refused(
        client.capabilities(CapabilitiesRequest {}).await,
        Code::Unauthenticated,
        &["missing tenant header"],
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_and_v2_share_each_tenants_data_and_nothing_else() {
    let server = start_with(tenancy_config()).await;
    let start = recent_start();
    let addr = server.grpc_addr;

    // v1 write as acme → v2 read as acme only.
    span_writer(addr)
        .await
        .write_span(request(
            write_request(v1_span(0x92, 1, "acme-v1", "op", start)),
            Some("acme"),
        ))
        .await
        .unwrap();
    assert_eq!(
        otlp_spans(&v2_get_trace(addr, trace_id(0x92), Some("acme")).await).len(),
        1
    );
    assert!(
        v2_get_trace(addr, trace_id(0x92), Some("globex"))
            .await
            .is_empty()
    );

    // v2 (OTLP) write as globex → v1 read as globex only.
    export(
        addr,
        vec![resource_group(
            "globex-otlp",
            vec![otlp_span(0x93, 1, None, "op", start)],
        )],
        Some("globex"),
    )
    .await;
    let mut reader = span_reader(addr).await;
    let as_globex = GetTraceRequest {
        trace_id: trace_id(0x93),
        ..Default::default()
    };
    let chunks = collect(
        reader
            .get_trace(request(as_globex.clone(), Some("globex")))
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(joined(chunks).len(), 1);
    let hidden = reader
        .get_trace(request(as_globex, Some("acme")))
        .await
        .map(|_| ());
    assert_refused(hidden, Code::NotFound, &["trace not found"]);

    // A stream opened as acme stores under acme.
    let stream = OpenStream::open(addr, Some("acme")).await;
    stream
        .send_span(v1_span(0x94, 1, "acme-stream", "op", start))
        .await;
    stream.finish().await.unwrap();

    for (tenant, expected) in [
        ("acme", vec!["acme-stream", "acme-v1"]),
        ("globex", vec!["globex-otlp"]),
    ] {
        let mut services = reader
            .get_services(request(GetServicesRequest {}, Some(tenant)))
            .await
            .unwrap()
            .into_inner()
            .services;
        services.sort();
        assert_eq!(services, expected, "{tenant}");
    }
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 10. Limits and compression

#[tokio::test]
async fn oversized_v1_writes_are_refused_and_the_server_keeps_serving() {
    let mut config = ServerConfig::for_tests();
    config.limits.max_recv_bytes = 64 * 1024;
    let server = start_with(config).await;
    let start = recent_start();
    let mut huge = v1_span(0xA1, 1, "huge-svc", "huge", start);
    huge.tags = vec![str_tag("blob", &"x".repeat(100_000))];
    assert!(write_request(huge.clone()).encoded_len() > 64 * 1024);

    let mut writer = span_writer(server.grpc_addr).await;
    assert_too_large(writer.write_span(write_request(huge.clone())).await);

    // In a stream, what arrived before the oversized message is stored.
    let stream = OpenStream::open(server.grpc_addr, None).await;
    stream
        .send_span(v1_span(0xA2, 1, "small-svc", "before", start))
        .await;
    stream.send_span(huge).await;
    assert_too_large(stream.finish().await);

    // Same connection, next request: served.
    writer
        .write_span(write_request(v1_span(0xA2, 2, "small-svc", "after", start)))
        .await
        .unwrap();
    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0xA2)).await.unwrap());
    let names: BTreeSet<&str> = spans
        .iter()
        .map(|span| span.operation_name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["before", "after"]));
    let services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services, ["small-svc"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn gzip_compressed_v1_requests_are_accepted() {
    let server = start().await;
    let start = recent_start();
    // Compressible, so that the compressed frame is really different.
    let mut unary = v1_span(0xA3, 1, "gzip-svc", "unary", start);
    unary.tags = vec![str_tag("text", &"abc".repeat(10_000))];
    span_writer(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .write_span(write_request(unary))
        .await
        .unwrap();
    let client = stream_writer(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let stream = OpenStream::open_with(client, None);
    stream
        .send_span(v1_span(0xA3, 2, "gzip-svc", "streamed", start))
        .await;
    stream.finish().await.unwrap();

    let mut reader = span_reader(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let spans = joined(get_trace(&mut reader, trace_id(0xA3)).await.unwrap());
    assert_eq!(spans.len(), 2);
    assert_eq!(find_span(&spans, 1).tags[0].v_str.len(), 30_000);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 11. Metrics, health, writer port

#[tokio::test]
async fn metrics_count_v1_rpcs_and_spans() {
    let server = start().await;
    let start = recent_start();
    let addr = server.grpc_addr;
    // 2 spans stored, 1 refused through WriteSpan; 3 received and 1 refused through a stream.
    write_spans(
        addr,
        [
            v1_span(0xB1, 1, "metered", "a", start),
            v1_span(0xB1, 2, "metered", "b", start),
        ],
    )
    .await;
    let mut bad = v1_span(0xB1, 3, "metered", "bad", start);
    bad.span_id = vec![3; 5];
    assert_refused(
        span_writer(addr)
            .await
            .write_span(write_request(bad.clone()))
            .await,
        Code::InvalidArgument,
        &[],
    );
    let stream = OpenStream::open(addr, None).await;
    stream
        .send_span(v1_span(0xB2, 1, "metered", "c", start))
        .await;
    stream.send_span(bad).await;
    stream
        .send_span(v1_span(0xB2, 2, "metered", "d", start))
        .await;
    assert_refused(stream.finish().await, Code::InvalidArgument, &[]);
    let mut reader = span_reader(addr).await;
    get_trace(&mut reader, trace_id(0xB1)).await.unwrap();
    assert_refused(
        get_trace(&mut reader, trace_id(0xB9)).await,
        Code::NotFound,
        &[],
    );
    find_traces(&mut reader, window(start)).await;

    let (status, text) = http_get(server.admin_addr.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "jaeger_remote_storage_spans_received_total{backend=\"memory\"} 6",
        "jaeger_remote_storage_spans_rejected_total{backend=\"memory\",reason=\"invalid\"} 2",
        "jaeger_remote_storage_stored_spans{backend=\"memory\"} 4",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanWriterPlugin/WriteSpan\",code=\"OK\"} 2",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanWriterPlugin/WriteSpan\",code=\"INVALID_ARGUMENT\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream\",code=\"INVALID_ARGUMENT\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanReaderPlugin/GetTrace\",code=\"OK\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanReaderPlugin/GetTrace\",code=\"NOT_FOUND\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanReaderPlugin/FindTraces\",code=\"OK\"} 1",
        "jaeger_remote_storage_grpc_request_duration_seconds_count{method=\"jaeger.storage.v1.SpanReaderPlugin/GetTrace\"} 2",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_reports_the_v1_services_serving() {
    let server = start().await;
    for service in [
        "jaeger.storage.v1.SpanWriterPlugin",
        "jaeger.storage.v1.StreamingSpanWriterPlugin",
        "jaeger.storage.v1.SpanReaderPlugin",
        "jaeger.storage.v1.DependenciesReaderPlugin",
        "jaeger.storage.v1.PluginCapabilities",
    ] {
        assert_eq!(
            health_status(server.grpc_addr, service).await,
            ServingStatus::Serving,
            "{service}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_writer_port_serves_v1_writers_and_capabilities_but_no_reader() {
    let server = start().await;
    let writer_addr = server.writer_addr.unwrap();
    let start = recent_start();
    write_spans(
        writer_addr,
        [v1_span(0xB3, 1, "via-writer", "unary", start)],
    )
    .await;
    let stream = OpenStream::open(writer_addr, None).await;
    stream
        .send_span(v1_span(0xB3, 2, "via-writer", "streamed", start))
        .await;
    stream.finish().await.unwrap();
    let answer = PluginCapabilitiesClient::new(channel(writer_addr).await)
        .capabilities(CapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(answer.streaming_span_writer);

    // Readers live on the main port only.
    let mut writer_port_reader = span_reader(writer_addr).await;
    assert_refused(
        writer_port_reader.get_services(GetServicesRequest {}).await,
        Code::Unimplemented,
        &[],
    );
    assert_refused(
        get_trace(&mut writer_port_reader, trace_id(0xB3)).await,
        Code::Unimplemented,
        &[],
    );
    let (start_time, end_time) = v2_window(start);
    assert_refused(
        DependenciesReaderPluginClient::new(channel(writer_addr).await)
            .get_dependencies(GetDependenciesRequest {
                start_time,
                end_time,
            })
            .await,
        Code::Unimplemented,
        &[],
    );

    // What the writer port took is readable on the main port.
    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0xB3)).await.unwrap());
    assert_eq!(spans.len(), 2);
    server.stop().await.unwrap();
}
