//! Clients, span builders and assertions shared by the v1 API tests.

pub(crate) use std::collections::BTreeSet;
pub(crate) use std::future::Future;
pub(crate) use std::net::SocketAddr;
pub(crate) use std::num::NonZeroUsize;
pub(crate) use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) use jaeger_remote_proto::api_v2 as model;
pub(crate) use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
pub(crate) use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
pub(crate) use jaeger_remote_proto::otlp::common::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue as OtlpKeyValue, any_value,
};
pub(crate) use jaeger_remote_proto::otlp::resource::Resource;
pub(crate) use jaeger_remote_proto::otlp::trace::span::{Event, Link, SpanKind};
pub(crate) use jaeger_remote_proto::otlp::trace::status::StatusCode;
pub(crate) use jaeger_remote_proto::otlp::trace::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status as OtlpStatus, TracesData,
};
pub(crate) use jaeger_remote_proto::storage::v1::archive_span_reader_plugin_client::ArchiveSpanReaderPluginClient;
pub(crate) use jaeger_remote_proto::storage::v1::archive_span_writer_plugin_client::ArchiveSpanWriterPluginClient;
pub(crate) use jaeger_remote_proto::storage::v1::dependencies_reader_plugin_client::DependenciesReaderPluginClient;
pub(crate) use jaeger_remote_proto::storage::v1::plugin_capabilities_client::PluginCapabilitiesClient;
pub(crate) use jaeger_remote_proto::storage::v1::span_reader_plugin_client::SpanReaderPluginClient;
pub(crate) use jaeger_remote_proto::storage::v1::span_writer_plugin_client::SpanWriterPluginClient;
pub(crate) use jaeger_remote_proto::storage::v1::streaming_span_writer_plugin_client::StreamingSpanWriterPluginClient;
pub(crate) use jaeger_remote_proto::storage::v1::{
    CapabilitiesRequest, CloseWriterRequest, FindTraceIDsRequest, FindTracesRequest,
    GetDependenciesRequest, GetOperationsRequest, GetServicesRequest, GetTraceRequest,
    SpansResponseChunk, TraceQueryParameters, WriteSpanRequest, WriteSpanResponse,
};
pub(crate) use jaeger_remote_proto::storage::v2;
pub(crate) use jaeger_remote_proto::storage::v2::dependency_reader_client::DependencyReaderClient;
pub(crate) use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
pub(crate) use prost::Message as _;
pub(crate) use prost_types::Timestamp;
pub(crate) use remote_storage::{RunningServer, ServerConfig, TenancyConfig};
pub(crate) use tokio::sync::mpsc;
pub(crate) use tokio::task::JoinHandle;
pub(crate) use tokio_stream::wrappers::ReceiverStream;
pub(crate) use tonic::codec::CompressionEncoding;
pub(crate) use tonic::metadata::MetadataValue;
pub(crate) use tonic::transport::Channel;
pub(crate) use tonic::{Code, Request, Response, Status};
pub(crate) use tonic_health::pb::HealthCheckRequest;
pub(crate) use tonic_health::pb::health_check_response::ServingStatus;
pub(crate) use tonic_health::pb::health_client::HealthClient;

/// The Go client's default receive limit: every chunk Jaeger reads must fit.
pub(crate) const GO_CLIENT_MAX_RECV: usize = 4 * 1024 * 1024;
/// Jaeger's reference server sends at most this many spans per `SpansResponseChunk`.
pub(crate) const JAEGER_CHUNK_SPANS: usize = 1000;
pub(crate) const SECOND: u64 = 1_000_000_000;
pub(crate) const HOUR: u64 = 3600 * SECOND;
/// Longest wait for something the server does asynchronously (spans of an open stream).
pub(crate) const EVENTUALLY: Duration = Duration::from_secs(10);
/// Pause between two attempts of an [`eventually`] read.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(5);

// ---------------------------------------------------------------------------------------------
// Harness

pub(crate) async fn start_with(config: ServerConfig) -> RunningServer {
    let backend = backend_memory::open(backend_memory::MemoryConfig::default());
    RunningServer::start(config, backend).await.unwrap()
}

pub(crate) async fn start() -> RunningServer {
    start_with(ServerConfig::for_tests()).await
}

pub(crate) fn tenancy_config() -> ServerConfig {
    let mut config = ServerConfig::for_tests();
    config.tenancy = TenancyConfig {
        enabled: true,
        tenants: vec!["acme".into(), "globex".into()],
        ..TenancyConfig::default()
    };
    config
}

pub(crate) async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub(crate) async fn span_writer(addr: SocketAddr) -> SpanWriterPluginClient<Channel> {
    SpanWriterPluginClient::new(channel(addr).await)
}

/// The services v1 `GetServices` lists, sorted.
pub(crate) async fn v1_services(addr: SocketAddr) -> Vec<String> {
    let mut services = span_reader(addr)
        .await
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    services.sort();
    services
}

pub(crate) async fn stream_writer(addr: SocketAddr) -> StreamingSpanWriterPluginClient<Channel> {
    StreamingSpanWriterPluginClient::new(channel(addr).await)
}

/// A v1 reader with the Go client's 4 MiB receive limit: a larger chunk fails the stream.
pub(crate) async fn span_reader(addr: SocketAddr) -> SpanReaderPluginClient<Channel> {
    SpanReaderPluginClient::new(channel(addr).await).max_decoding_message_size(GO_CLIENT_MAX_RECV)
}

pub(crate) async fn v2_reader(addr: SocketAddr) -> TraceReaderClient<Channel> {
    TraceReaderClient::new(channel(addr).await).max_decoding_message_size(GO_CLIENT_MAX_RECV)
}

pub(crate) async fn otlp_writer(addr: SocketAddr) -> TraceServiceClient<Channel> {
    TraceServiceClient::new(channel(addr).await)
}

/// `message` with the tenant header, or without any when `tenant` is `None`.
pub(crate) fn request<T>(message: T, tenant: Option<&'static str>) -> Request<T> {
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
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
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

pub(crate) async fn collect<T>(mut stream: tonic::Streaming<T>) -> Result<Vec<T>, Status> {
    let mut items = Vec::new();
    while let Some(item) = stream.message().await? {
        items.push(item);
    }
    Ok(items)
}

pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

pub(crate) async fn health_status(addr: SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel(addr).await);
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap();
    response.into_inner().status()
}

pub(crate) fn assert_refused<T>(result: Result<T, Status>, code: Code, fragments: &[&str]) {
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
pub(crate) fn assert_too_large<T>(result: Result<T, Status>) {
    let Err(status) = result else {
        panic!("an oversized message should be refused");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// Time

pub(crate) fn now_nanos() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since_epoch.as_nanos()).unwrap()
}

/// A minute ago, with non-zero nanoseconds so that their loss would show.
pub(crate) fn recent_start() -> u64 {
    (now_nanos() / SECOND - 60) * SECOND + 123_456_789
}

pub(crate) fn timestamp(nanos: u64) -> Timestamp {
    Timestamp {
        seconds: i64::try_from(nanos / SECOND).unwrap(),
        nanos: i32::try_from(nanos % SECOND).unwrap(),
    }
}

pub(crate) fn duration(nanos: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(nanos / SECOND).unwrap(),
        nanos: i32::try_from(nanos % SECOND).unwrap(),
    }
}

/// Go's zero `time.Time` as Jaeger's client encodes an unset time: year 1.
pub(crate) fn go_zero_time() -> Timestamp {
    Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    }
}

/// The search Jaeger's query sends for a window of an hour either side of `start`: the Go
/// client always sends the duration fields, empty when unset.
pub(crate) fn window(start: u64) -> TraceQueryParameters {
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

pub(crate) fn trace_id(byte: u8) -> Vec<u8> {
    vec![byte; 16]
}

pub(crate) fn span_id(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

pub(crate) fn str_tag(key: &str, value: &str) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::String.into(),
        v_str: value.into(),
        ..Default::default()
    }
}

pub(crate) fn bool_tag(key: &str, value: bool) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Bool.into(),
        v_bool: value,
        ..Default::default()
    }
}

pub(crate) fn int_tag(key: &str, value: i64) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Int64.into(),
        v_int64: value,
        ..Default::default()
    }
}

pub(crate) fn float_tag(key: &str, value: f64) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Float64.into(),
        v_float64: value,
        ..Default::default()
    }
}

pub(crate) fn binary_tag(key: &str, value: &[u8]) -> model::KeyValue {
    model::KeyValue {
        key: key.into(),
        v_type: model::ValueType::Binary.into(),
        v_binary: value.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn reference(trace: u8, span: u64, ref_type: model::SpanRefType) -> model::SpanRef {
    model::SpanRef {
        trace_id: trace_id(trace),
        span_id: span_id(span),
        ref_type: ref_type.into(),
    }
}

/// A span as Jaeger's v1 collector sends it: process filled, `process_id` empty, 1 ms long.
pub(crate) fn v1_span(
    trace: u8,
    id: u64,
    service: &str,
    operation: &str,
    start: u64,
) -> model::Span {
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

pub(crate) fn child_span(
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

pub(crate) fn with_kind(mut span: model::Span, kind: &str) -> model::Span {
    span.tags.push(str_tag("span.kind", kind));
    span
}

pub(crate) fn write_request(span: model::Span) -> WriteSpanRequest {
    WriteSpanRequest { span: Some(span) }
}

pub(crate) async fn write_spans(addr: SocketAddr, spans: impl IntoIterator<Item = model::Span>) {
    let mut writer = span_writer(addr).await;
    for span in spans {
        writer.write_span(write_request(span)).await.unwrap();
    }
}

/// A `WriteSpanStream` call kept open: spans go through a channel while the call is in flight,
/// as in Jaeger's pooled streams, and [`OpenStream::finish`] half-closes it.
pub(crate) struct OpenStream {
    sender: mpsc::Sender<WriteSpanRequest>,
    call: JoinHandle<Result<Response<WriteSpanResponse>, Status>>,
}

impl OpenStream {
    pub(crate) async fn open(addr: SocketAddr, tenant: Option<&'static str>) -> Self {
        Self::open_with(stream_writer(addr).await, tenant)
    }

    pub(crate) fn open_with(
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

    pub(crate) async fn send(&self, message: WriteSpanRequest) {
        self.sender
            .send(message)
            .await
            .expect("the server ended the stream early");
    }

    pub(crate) async fn send_span(&self, span: model::Span) {
        self.send(write_request(span)).await;
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.call.is_finished()
    }

    /// Half-closes the stream and returns the server's answer.
    pub(crate) async fn finish(self) -> Result<(), Status> {
        drop(self.sender);
        self.call.await.unwrap().map(|_| ())
    }
}

pub(crate) async fn get_trace(
    reader: &mut SpanReaderPluginClient<Channel>,
    trace_id: Vec<u8>,
) -> Result<Vec<SpansResponseChunk>, Status> {
    let request = GetTraceRequest {
        trace_id,
        ..Default::default()
    };
    collect(reader.get_trace(request).await?.into_inner()).await
}

pub(crate) async fn find_traces(
    reader: &mut SpanReaderPluginClient<Channel>,
    query: TraceQueryParameters,
) -> Vec<SpansResponseChunk> {
    let request = FindTracesRequest { query: Some(query) };
    collect(reader.find_traces(request).await.unwrap().into_inner())
        .await
        .unwrap()
}

/// The spans of every chunk, in stream order, as Jaeger's client joins them.
pub(crate) fn joined(chunks: Vec<SpansResponseChunk>) -> Vec<model::Span> {
    chunks.into_iter().flat_map(|chunk| chunk.spans).collect()
}

pub(crate) fn find_span(spans: &[model::Span], id: u64) -> &model::Span {
    spans
        .iter()
        .find(|span| span.span_id == span_id(id))
        .unwrap_or_else(|| panic!("span {id} missing"))
}

/// Checks what Jaeger's FindTraces client relies on (no empty chunk, no chunk mixing traces,
/// the spans of a trace contiguous) and returns each trace with its span count, in order.
pub(crate) fn traces_in(chunks: &[SpansResponseChunk]) -> Vec<(Vec<u8>, usize)> {
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

pub(crate) fn trace_ids_of(chunks: &[SpansResponseChunk]) -> BTreeSet<Vec<u8>> {
    traces_in(chunks).into_iter().map(|(id, _)| id).collect()
}

/// Sorted (name, kind) pairs and sorted deprecated names of a v1 GetOperations.
pub(crate) async fn operations(
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

pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(left, right)| ((*left).to_owned(), (*right).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OTLP and v2

pub(crate) fn otlp_value(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

pub(crate) fn otlp_kv(key: &str, value: any_value::Value) -> OtlpKeyValue {
    OtlpKeyValue {
        key: key.into(),
        value: otlp_value(value),
        ..Default::default()
    }
}

pub(crate) fn otlp_str(key: &str, value: &str) -> OtlpKeyValue {
    otlp_kv(key, any_value::Value::StringValue(value.into()))
}

/// Jaeger's span warnings as OTLP carries them: a list of strings.
pub(crate) fn warnings_attribute(warnings: &[&str]) -> OtlpKeyValue {
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

pub(crate) fn otlp_span(
    trace: u8,
    id: u64,
    parent: Option<u64>,
    name: &str,
    start: u64,
) -> OtlpSpan {
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

pub(crate) fn resource_group(service: &str, spans: Vec<OtlpSpan>) -> ResourceSpans {
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

pub(crate) async fn export(
    addr: SocketAddr,
    groups: Vec<ResourceSpans>,
    tenant: Option<&'static str>,
) {
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

pub(crate) async fn v2_get_trace(
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
pub(crate) fn otlp_spans(
    chunks: &[TracesData],
) -> Vec<(&Resource, &InstrumentationScope, &OtlpSpan)> {
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

pub(crate) fn v2_window(start: u64) -> (Option<Timestamp>, Option<Timestamp>) {
    (Some(timestamp(start - HOUR)), Some(timestamp(start + HOUR)))
}
