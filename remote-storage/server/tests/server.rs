//! End-to-end tests: the real server in-process on the memory backend, driven through tonic
//! clients and plain HTTP, on `127.0.0.1:0` listeners.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{Call, Expression, FieldReference, Scalar};
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::collector::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{
    ResourceSpans, ScopeSpans, Span, TracesData, span::SpanKind,
};
use jaeger_remote_proto::storage::v2::capabilities_client::CapabilitiesClient;
use jaeger_remote_proto::storage::v2::dependency_reader_client::DependencyReaderClient;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{
    FindTraceIDsRequest, FindTraceSummariesRequest, FindTracesRequest, GetCapabilitiesRequest,
    GetDependenciesRequest, GetOperationsRequest, GetServicesRequest, GetTraceParams,
    GetTracesRequest, KeyValue as QueryKeyValue, TraceQueryParameters,
};
use prost::Message as _;
use prost_types::Timestamp;
use remote_storage::{RunningServer, ServerConfig, TenancyConfig};
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The Go client's default receive limit; every streamed chunk must fit.
const GO_CLIENT_MAX_RECV: usize = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Harness

async fn start_with(config: ServerConfig) -> RunningServer {
    let backend = backend_memory::open(backend_memory::MemoryConfig::default());
    RunningServer::start(config, backend).await.unwrap()
}

async fn start() -> RunningServer {
    start_with(ServerConfig::for_tests()).await
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A reader that behaves like Jaeger's Go client: 4 MiB receive limit.
async fn reader(addr: SocketAddr) -> TraceReaderClient<Channel> {
    TraceReaderClient::new(channel(addr).await).max_decoding_message_size(GO_CLIENT_MAX_RECV)
}

async fn writer(addr: SocketAddr) -> TraceServiceClient<Channel> {
    TraceServiceClient::new(channel(addr).await).max_encoding_message_size(usize::MAX)
}

fn now_nanos() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since_epoch.as_nanos()).unwrap()
}

fn timestamp(nanos: u64) -> Timestamp {
    Timestamp {
        seconds: i64::try_from(nanos / 1_000_000_000).unwrap(),
        nanos: i32::try_from(nanos % 1_000_000_000).unwrap(),
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn trace_id(byte: u8) -> Vec<u8> {
    vec![byte; 16]
}

/// A span of trace `[trace; 16]` with span ID `index + 1` and optional parent `parent + 1`.
fn span(
    trace: u8,
    index: u64,
    parent: Option<u64>,
    name: &str,
    kind: SpanKind,
    start: u64,
) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: (index + 1).to_be_bytes().to_vec(),
        parent_span_id: parent
            .map(|parent| (parent + 1).to_be_bytes().to_vec())
            .unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        attributes: vec![string_kv("http.method", "GET")],
        ..Default::default()
    }
}

fn group(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string_kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn export_request(groups: Vec<ResourceSpans>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: groups,
    }
}

async fn export(addr: SocketAddr, groups: Vec<ResourceSpans>) -> ExportTraceServiceResponse {
    writer(addr)
        .await
        .export(export_request(groups))
        .await
        .unwrap()
        .into_inner()
}

/// Two traces: `[1;16]` (svc-a root → svc-b child, svc-a internal) and `[2;16]` (svc-b only).
fn two_traces(start: u64) -> Vec<ResourceSpans> {
    vec![
        group(
            "svc-a",
            vec![
                span(1, 0, None, "GET /home", SpanKind::Server, start),
                span(1, 2, Some(0), "render", SpanKind::Internal, start + 10),
            ],
        ),
        group(
            "svc-b",
            vec![
                span(1, 1, Some(0), "load-user", SpanKind::Server, start + 5),
                span(2, 0, None, "cron", SpanKind::Unspecified, start + 20),
            ],
        ),
    ]
}

async fn collect<T>(mut stream: tonic::Streaming<T>) -> Result<Vec<T>, Status> {
    let mut items = Vec::new();
    while let Some(item) = stream.message().await? {
        items.push(item);
    }
    Ok(items)
}

fn spans_of(chunk: &TracesData) -> impl Iterator<Item = &Span> {
    chunk
        .resource_spans
        .iter()
        .flat_map(|group| &group.scope_spans)
        .flat_map(|scope| &scope.spans)
}

/// Checks the streaming rules (one trace per chunk, never empty, consecutive) and returns the
/// trace IDs in stream order with their span counts.
fn traces_in(chunks: &[TracesData]) -> Vec<(Vec<u8>, usize)> {
    let mut traces: Vec<(Vec<u8>, usize)> = Vec::new();
    for chunk in chunks {
        let ids: BTreeSet<&Vec<u8>> = spans_of(chunk).map(|span| &span.trace_id).collect();
        assert_eq!(ids.len(), 1, "a chunk must hold exactly one trace");
        let id = ids.into_iter().next().unwrap().clone();
        let count = spans_of(chunk).count();
        match traces.last_mut() {
            Some((last, total)) if *last == id => *total += count,
            _ => {
                assert!(
                    traces.iter().all(|(seen, _)| *seen != id),
                    "chunks of one trace must be consecutive"
                );
                traces.push((id, count));
            }
        }
    }
    traces
}

fn lookup(id: Vec<u8>) -> GetTraceParams {
    GetTraceParams {
        trace_id: id,
        ..Default::default()
    }
}

fn window_query(start: u64) -> TraceQueryParameters {
    TraceQueryParameters {
        start_time_min: Some(timestamp(start - 3_600_000_000_000)),
        start_time_max: Some(timestamp(start + 3_600_000_000_000)),
        search_depth: 10,
        ..Default::default()
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
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

fn with_tenant<T>(message: T, tenant: &'static str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-tenant", MetadataValue::from_static(tenant));
    request
}

// ---------------------------------------------------------------------------------------------
// Reads after writes

#[tokio::test]
async fn exported_traces_read_back_through_every_reader_rpc() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    let response = export(server.grpc_addr, two_traces(start_time)).await;
    assert_eq!(response.partial_success, None);
    let mut reader = reader(server.grpc_addr).await;

    // GetTraces: request order, unknown ID skipped, no error.
    let chunks = collect(
        reader
            .get_traces(GetTracesRequest {
                query: vec![
                    lookup(trace_id(2)),
                    lookup(trace_id(9)),
                    lookup(trace_id(1)),
                ],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(traces_in(&chunks), [(trace_id(2), 1), (trace_id(1), 3)]);
    // Resource attributes survive the round trip.
    let services: BTreeSet<String> = chunks
        .iter()
        .flat_map(|chunk| &chunk.resource_spans)
        .filter_map(|group| group.resource.as_ref())
        .flat_map(|resource| &resource.attributes)
        .filter(|kv| kv.key == "service.name")
        .map(|kv| format!("{:?}", kv.value))
        .collect();
    assert_eq!(services.len(), 2);

    // Only unknown IDs: an empty stream that ends OK.
    let none = reader
        .get_traces(GetTracesRequest {
            query: vec![lookup(trace_id(9))],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(collect(none).await.unwrap().is_empty());

    let mut services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    services.sort();
    assert_eq!(services, ["svc-a", "svc-b"]);

    let mut operations: Vec<(String, String)> = reader
        .get_operations(GetOperationsRequest {
            service: "svc-a".into(),
            span_kind: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operations
        .into_iter()
        .map(|operation| (operation.name, operation.span_kind))
        .collect();
    operations.sort();
    assert_eq!(
        operations,
        [
            ("GET /home".to_owned(), "server".to_owned()),
            ("render".to_owned(), "internal".to_owned())
        ]
    );
    let servers = reader
        .get_operations(GetOperationsRequest {
            service: "svc-a".into(),
            span_kind: "server".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].name, "GET /home");
    let unknown = reader
        .get_operations(GetOperationsRequest {
            service: "nobody".into(),
            span_kind: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert!(unknown.is_empty());

    // Invalid requests are refused with INVALID_ARGUMENT, naming the field.
    let bad_id = reader
        .get_traces(GetTracesRequest {
            query: vec![lookup(vec![1; 5])],
        })
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert!(
        bad_id.message().contains("trace_id"),
        "{}",
        bad_id.message()
    );
    let no_service = reader
        .get_operations(GetOperationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(no_service.code(), Code::InvalidArgument);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn searches_return_whole_traces_ids_and_summaries() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    export(server.grpc_addr, two_traces(start_time)).await;
    let mut reader = reader(server.grpc_addr).await;

    // Service + operation: the whole trace comes back, not only the matching span.
    let query = TraceQueryParameters {
        service_name: "svc-b".into(),
        operation_name: "load-user".into(),
        ..window_query(start_time)
    };
    let chunks = collect(
        reader
            .find_traces(FindTracesRequest {
                query: Some(query.clone()),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(traces_in(&chunks), [(trace_id(1), 3)]);

    // No service name means every service; attributes match typed or string values.
    let any_service = TraceQueryParameters {
        attributes: vec![QueryKeyValue {
            key: "http.method".into(),
            value: Some(jaeger_remote_proto::storage::v2::AnyValue {
                value: Some(
                    jaeger_remote_proto::storage::v2::any_value::Value::StringValue("GET".into()),
                ),
            }),
        }],
        ..window_query(start_time)
    };
    let chunks = collect(
        reader
            .find_traces(FindTracesRequest {
                query: Some(any_service.clone()),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    let found: BTreeSet<Vec<u8>> = traces_in(&chunks).into_iter().map(|(id, _)| id).collect();
    assert_eq!(found, BTreeSet::from([trace_id(1), trace_id(2)]));

    let ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(query.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].trace_id, trace_id(1));

    let summaries: Vec<_> = collect(
        reader
            .find_trace_summaries(FindTraceSummariesRequest {
                query: Some(any_service),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert!(summaries.iter().all(|chunk| !chunk.summaries.is_empty()));
    let mut all: Vec<_> = summaries
        .into_iter()
        .flat_map(|chunk| chunk.summaries)
        .collect();
    all.sort_by(|left, right| left.trace_id.cmp(&right.trace_id));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].trace_id, trace_id(1));
    assert_eq!(all[0].span_count, 3);
    assert_eq!(all[0].root_service_name, "svc-a");
    assert_eq!(all[0].root_operation_name, "GET /home");
    assert_eq!(all[0].min_start_time_unix_nano, start_time);
    let service_names: Vec<&str> = all[0].services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(service_names, ["svc-a", "svc-b"]);

    // No match: empty stream, OK.
    let nothing = TraceQueryParameters {
        service_name: "nobody".into(),
        ..window_query(start_time)
    };
    let chunks = collect(
        reader
            .find_traces(FindTracesRequest {
                query: Some(nothing),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert!(chunks.is_empty());
    server.stop().await.unwrap();
}

/// `eq(field(level, name), value)`.
fn field_equals(level: &str, name: &str, value: &str) -> Call {
    Call {
        op: "eq".into(),
        args: vec![
            Expression {
                term: Some(Term::Field(FieldReference {
                    name: name.into(),
                    level: level.into(),
                })),
            },
            Expression {
                term: Some(Term::Scalar(Scalar {
                    value: value.into(),
                    r#type: String::new(),
                })),
            },
        ],
    }
}

/// The trace IDs each Find RPC answers for `query`, or its refusal.
async fn find_by_every_rpc(
    reader: &mut TraceReaderClient<Channel>,
    query: &TraceQueryParameters,
) -> [Result<BTreeSet<Vec<u8>>, Status>; 3] {
    let traces = match reader
        .find_traces(FindTracesRequest {
            query: Some(query.clone()),
        })
        .await
    {
        Ok(stream) => collect(stream.into_inner())
            .await
            .map(|chunks| traces_in(&chunks).into_iter().map(|(id, _)| id).collect()),
        Err(status) => Err(status),
    };
    let ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(query.clone()),
        })
        .await
        .map(|answer| {
            answer
                .into_inner()
                .trace_ids
                .into_iter()
                .map(|found| found.trace_id)
                .collect()
        });
    let summaries = match reader
        .find_trace_summaries(FindTraceSummariesRequest {
            query: Some(query.clone()),
        })
        .await
    {
        Ok(stream) => collect(stream.into_inner()).await.map(|chunks| {
            chunks
                .into_iter()
                .flat_map(|chunk| chunk.summaries)
                .map(|summary| summary.trace_id)
                .collect()
        }),
        Err(status) => Err(status),
    };
    [traces, ids, summaries]
}

/// Filters are decoded and validated at the edge (an invalid one is refused naming its path)
/// and, on a backend that declares filter support, answered by FindTraces, FindTraceIDs and
/// FindTraceSummaries alike, within the window and up to `search_depth`.
#[tokio::test]
async fn structured_filters_are_served_by_every_find_rpc() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    export(server.grpc_addr, two_traces(start_time)).await;
    let mut reader = reader(server.grpc_addr).await;
    let invalid = TraceQueryParameters {
        filter: Some(Call {
            op: "and".into(),
            args: Vec::new(),
        }),
        ..window_query(start_time)
    };
    for answer in find_by_every_rpc(&mut reader, &invalid).await {
        let status = answer.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("query.filter: and takes at least 2 arguments"),
            "{}",
            status.message()
        );
    }
    let cases = [
        (field_equals("span", "name", "load-user"), vec![trace_id(1)]),
        (
            field_equals("resource", "service", "svc-b"),
            vec![trace_id(1), trace_id(2)],
        ),
        (
            field_equals("span", "kind", "unspecified"),
            vec![trace_id(2)],
        ),
        (field_equals("span", "name", "nothing"), vec![]),
    ];
    for (filter, expected) in cases {
        let query = TraceQueryParameters {
            filter: Some(filter.clone()),
            ..window_query(start_time)
        };
        let expected: BTreeSet<Vec<u8>> = expected.into_iter().collect();
        for answer in find_by_every_rpc(&mut reader, &query).await {
            assert_eq!(answer.unwrap(), expected, "{filter:?}");
        }
    }
    // search_depth counts traces that pass the filter; the window is the span's.
    let depth_one = TraceQueryParameters {
        filter: Some(field_equals("resource", "service", "svc-b")),
        search_depth: 1,
        ..window_query(start_time)
    };
    for answer in find_by_every_rpc(&mut reader, &depth_one).await {
        assert_eq!(answer.unwrap().len(), 1);
    }
    let before_the_spans = TraceQueryParameters {
        filter: Some(field_equals("resource", "service", "svc-b")),
        start_time_min: Some(timestamp(start_time - 3_600_000_000_000)),
        start_time_max: Some(timestamp(start_time - 1)),
        ..window_query(start_time)
    };
    for answer in find_by_every_rpc(&mut reader, &before_the_spans).await {
        assert!(answer.unwrap().is_empty());
    }
    server.stop().await.unwrap();
}

/// A backend that does not declare filter support refuses a valid filter with
/// `INVALID_ARGUMENT` on every Find RPC (never ignoring it, which would widen the search),
/// and its GetCapabilities declares no filter.
#[tokio::test]
async fn an_undeclaring_backend_refuses_structured_filters() {
    let capabilities = remote_storage_core::Capabilities {
        structured_filters: false,
        ..backend_memory::CAPABILITIES
    };
    let store = std::sync::Arc::new(backend_memory::MemoryStore::new(
        backend_memory::MemoryConfig::default(),
    ));
    let backend =
        remote_storage_core::Backend::from_store("memory-no-filters", capabilities, store);
    let server = RunningServer::start(ServerConfig::for_tests(), backend)
        .await
        .unwrap();
    let start_time = now_nanos() - 60_000_000_000;
    export(server.grpc_addr, two_traces(start_time)).await;
    let mut reader = reader(server.grpc_addr).await;
    let query = TraceQueryParameters {
        filter: Some(field_equals("span", "name", "load-user")),
        ..window_query(start_time)
    };
    for answer in find_by_every_rpc(&mut reader, &query).await {
        let status = answer.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("query.filter: structured filters are not supported"),
            "{}",
            status.message()
        );
    }
    let mut capabilities = CapabilitiesClient::new(channel(server.grpc_addr).await);
    let search = capabilities
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .search
        .unwrap();
    assert!(search.filter.is_none());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_20000_span_trace_streams_in_chunks_under_4_mib() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    // ~330 bytes per span: the export itself (~6.6 MB) is above gRPC's 4 MiB default.
    let payload = "p".repeat(256);
    let spans: Vec<Span> = (0..20_000)
        .map(|index| {
            let mut span = span(
                7,
                index,
                None,
                "big-op",
                SpanKind::Server,
                start_time + index,
            );
            span.attributes.push(string_kv("payload", &payload));
            span
        })
        .collect();
    let request = export_request(vec![group("svc-big", spans)]);
    assert!(request.encoded_len() > GO_CLIENT_MAX_RECV);
    let response = writer(server.grpc_addr)
        .await
        .export(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.partial_success, None);

    // The reader's 4 MiB limit would fail the stream if any chunk were larger.
    let mut reader = reader(server.grpc_addr).await;
    let chunks = collect(
        reader
            .get_traces(GetTracesRequest {
                query: vec![lookup(trace_id(7))],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert!(chunks.len() >= 20, "{} chunks", chunks.len());
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk.encoded_len() < GO_CLIENT_MAX_RECV)
    );
    assert_eq!(traces_in(&chunks), [(trace_id(7), 20_000)]);
    let span_ids: BTreeSet<Vec<u8>> = chunks
        .iter()
        .flat_map(spans_of)
        .map(|span| span.span_id.clone())
        .collect();
    assert_eq!(span_ids.len(), 20_000);

    let found = collect(
        reader
            .find_traces(FindTracesRequest {
                query: Some(TraceQueryParameters {
                    service_name: "svc-big".into(),
                    ..window_query(start_time)
                }),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(traces_in(&found), [(trace_id(7), 20_000)]);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Dependencies and capabilities

#[tokio::test]
async fn dependencies_and_capabilities_are_served() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    export(server.grpc_addr, two_traces(start_time)).await;

    let mut dependencies = DependencyReaderClient::new(channel(server.grpc_addr).await);
    let links = dependencies
        .get_dependencies(GetDependenciesRequest {
            start_time: Some(timestamp(start_time - 3_600_000_000_000)),
            end_time: Some(timestamp(start_time + 3_600_000_000_000)),
        })
        .await
        .unwrap()
        .into_inner()
        .dependencies;
    let mut pairs: Vec<(String, String, u64)> = links
        .into_iter()
        .map(|link| (link.parent, link.child, link.call_count))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("svc-a".to_owned(), "svc-a".to_owned(), 1),
            ("svc-a".to_owned(), "svc-b".to_owned(), 1)
        ]
    );
    let missing_start = dependencies
        .get_dependencies(GetDependenciesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing_start.code(), Code::InvalidArgument);

    let mut capabilities = CapabilitiesClient::new(channel(server.grpc_addr).await);
    let answer = capabilities
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    let search = answer.search.unwrap();
    assert!(search.without_service_name);
    // The memory backend evaluates every filter: all five levels, all fourteen operators.
    let filter = search.filter.unwrap();
    assert_eq!(
        filter.levels,
        ["span", "resource", "scope", "event", "link"]
    );
    assert_eq!(filter.operators.len(), 14);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Export edge cases

/// A memory store that refuses spans named `refused-by-store` while storing the rest of the
/// batch, as a database refusing single documents does.
struct RefusingStore {
    inner: std::sync::Arc<dyn remote_storage_core::TraceStore>,
}

#[async_trait::async_trait]
impl remote_storage_core::TraceStore for RefusingStore {
    async fn write_spans(
        &self,
        tenant: &remote_storage_core::Tenant,
        spans: Vec<remote_storage_core::Span>,
    ) -> remote_storage_core::StoreResult<()> {
        let (refused, kept): (Vec<_>, Vec<_>) = spans
            .into_iter()
            .partition(|span| span.name() == "refused-by-store");
        self.inner.write_spans(tenant, kept).await?;
        match refused.len() {
            0 => Ok(()),
            count => Err(remote_storage_core::StoreError::rejected(
                count as u64,
                "document too large",
            )),
        }
    }

    async fn get_traces(
        &self,
        tenant: &remote_storage_core::Tenant,
        lookups: Vec<remote_storage_core::TraceLookup>,
    ) -> remote_storage_core::StoreResult<remote_storage_core::TraceStream> {
        self.inner.get_traces(tenant, lookups).await
    }

    async fn get_services(
        &self,
        tenant: &remote_storage_core::Tenant,
    ) -> remote_storage_core::StoreResult<Vec<String>> {
        self.inner.get_services(tenant).await
    }

    async fn get_operations(
        &self,
        tenant: &remote_storage_core::Tenant,
        query: remote_storage_core::OperationQuery,
    ) -> remote_storage_core::StoreResult<Vec<remote_storage_core::Operation>> {
        self.inner.get_operations(tenant, query).await
    }

    async fn find_trace_ids(
        &self,
        tenant: &remote_storage_core::Tenant,
        query: remote_storage_core::TraceQuery,
    ) -> remote_storage_core::StoreResult<Vec<remote_storage_core::FoundTraceId>> {
        self.inner.find_trace_ids(tenant, query).await
    }
}

#[tokio::test]
async fn spans_the_store_refuses_are_counted_in_partial_success_with_invalid_ones() {
    let memory = backend_memory::open(backend_memory::MemoryConfig::default());
    let backend = remote_storage_core::Backend {
        traces: std::sync::Arc::new(RefusingStore {
            inner: std::sync::Arc::clone(&memory.traces),
        }),
        ..memory
    };
    let server = RunningServer::start(ServerConfig::for_tests(), backend)
        .await
        .unwrap();
    let start_time = now_nanos() - 60_000_000_000;
    let mut invalid = span(4, 2, None, "bad", SpanKind::Server, start_time);
    invalid.span_id = vec![1; 9];
    let response = export(
        server.grpc_addr,
        vec![group(
            "svc-refusing",
            vec![
                span(4, 1, None, "good", SpanKind::Server, start_time),
                invalid,
                span(4, 3, None, "refused-by-store", SpanKind::Server, start_time),
            ],
        )],
    )
    .await;
    let partial = response.partial_success.expect("partial success");
    assert_eq!(
        partial.rejected_spans, 2,
        "one invalid, one refused by the store"
    );
    assert!(
        partial.error_message.contains("span_id"),
        "{}",
        partial.error_message
    );

    let only_refused = export(
        server.grpc_addr,
        vec![group(
            "svc-refusing",
            vec![span(
                5,
                1,
                None,
                "refused-by-store",
                SpanKind::Server,
                start_time,
            )],
        )],
    )
    .await;
    let partial = only_refused.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("refused by the store: document too large"),
        "{}",
        partial.error_message
    );

    let mut reader = reader(server.grpc_addr).await;
    let chunks = collect(
        reader
            .get_traces(GetTracesRequest {
                query: vec![lookup(trace_id(4))],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(
        traces_in(&chunks),
        [(trace_id(4), 1)],
        "the good span is stored"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_spans_are_reported_as_partial_success_and_valid_ones_stored() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    let mut short_trace_id = span(3, 1, None, "bad", SpanKind::Server, start_time);
    short_trace_id.trace_id = vec![3; 8];
    let mut long_span_id = span(3, 2, None, "bad", SpanKind::Server, start_time);
    long_span_id.span_id = vec![1; 9];
    let response = export(
        server.grpc_addr,
        vec![group(
            "svc-mixed",
            vec![
                span(3, 0, None, "good", SpanKind::Server, start_time),
                short_trace_id,
                long_span_id,
            ],
        )],
    )
    .await;
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );

    let mut reader = reader(server.grpc_addr).await;
    let chunks = collect(
        reader
            .get_traces(GetTracesRequest {
                query: vec![lookup(trace_id(3))],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(traces_in(&chunks), [(trace_id(3), 1)]);

    // An empty request is fine and stores nothing.
    let empty = export(server.grpc_addr, Vec::new()).await;
    assert_eq!(empty.partial_success, None);
    let services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services, ["svc-mixed"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn requests_above_the_size_limit_are_refused_clearly() {
    let mut config = ServerConfig::for_tests();
    config.limits.max_recv_bytes = 1024 * 1024;
    let server = start_with(config).await;
    let start_time = now_nanos();
    let payload = "x".repeat(4096);
    let spans: Vec<Span> = (0..512)
        .map(|index| {
            let mut span = span(4, index, None, "op", SpanKind::Server, start_time);
            span.attributes.push(string_kv("payload", &payload));
            span
        })
        .collect();
    let request = export_request(vec![group("svc-huge", spans)]);
    assert!(request.encoded_len() > 1024 * 1024);
    let refused = writer(server.grpc_addr)
        .await
        .export(request)
        .await
        .unwrap_err();
    // RESOURCE_EXHAUSTED, not tonic's OUT_OF_RANGE, which OTLP exporters retry forever.
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("too large"),
        "{}",
        refused.message()
    );
    // Nothing of the refused batch was stored.
    let services = reader(server.grpc_addr)
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
async fn gzip_exports_are_accepted() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    let mut client = writer(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    client
        .export(export_request(two_traces(start_time)))
        .await
        .unwrap();
    let chunks = collect(
        reader(server.grpc_addr)
            .await
            .get_traces(GetTracesRequest {
                query: vec![lookup(trace_id(1))],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(traces_in(&chunks), [(trace_id(1), 3)]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_writer_port_serves_writers_and_health_only() {
    let server = start().await;
    let writer_addr = server.writer_addr.unwrap();
    assert_ne!(writer_addr, server.grpc_addr);
    let start_time = now_nanos() - 60_000_000_000;
    export(writer_addr, two_traces(start_time)).await;

    // Written on the writer port, readable on the main one.
    let chunks = collect(
        reader(server.grpc_addr)
            .await
            .get_traces(GetTracesRequest {
                query: vec![lookup(trace_id(2))],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(traces_in(&chunks), [(trace_id(2), 1)]);

    let not_here = reader(writer_addr)
        .await
        .get_services(GetServicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(not_here.code(), Code::Unimplemented);
    assert_eq!(health_status(writer_addr, "").await, ServingStatus::Serving);
    assert_eq!(
        health_status(
            writer_addr,
            "opentelemetry.proto.collector.trace.v1.TraceService"
        )
        .await,
        ServingStatus::Serving
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Tenancy

#[tokio::test]
async fn tenants_see_only_their_own_data_and_bad_headers_are_refused() {
    let mut config = ServerConfig::for_tests();
    config.tenancy = TenancyConfig {
        enabled: true,
        tenants: vec!["acme".into(), "globex".into()],
        ..TenancyConfig::default()
    };
    let server = start_with(config).await;
    let start_time = now_nanos() - 60_000_000_000;
    let mut writer = writer(server.grpc_addr).await;
    writer
        .export(with_tenant(
            export_request(vec![group(
                "acme-svc",
                vec![span(1, 0, None, "a", SpanKind::Server, start_time)],
            )]),
            "acme",
        ))
        .await
        .unwrap();
    writer
        .export(with_tenant(
            export_request(vec![group(
                "globex-svc",
                vec![span(2, 0, None, "g", SpanKind::Server, start_time)],
            )]),
            "globex",
        ))
        .await
        .unwrap();

    let mut reader = reader(server.grpc_addr).await;
    for (tenant, service, own, other) in
        [("acme", "acme-svc", 1, 2), ("globex", "globex-svc", 2, 1)]
    {
        let services = reader
            .get_services(with_tenant(GetServicesRequest {}, tenant))
            .await
            .unwrap()
            .into_inner()
            .services;
        assert_eq!(services, [service]);
        let chunks = collect(
            reader
                .get_traces(with_tenant(
                    GetTracesRequest {
                        query: vec![lookup(trace_id(own)), lookup(trace_id(other))],
                    },
                    tenant,
                ))
                .await
                .unwrap()
                .into_inner(),
        )
        .await
        .unwrap();
        assert_eq!(traces_in(&chunks), [(trace_id(own), 1)]);
    }

    let missing = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "missing tenant header");
    let unknown = reader
        .get_services(with_tenant(GetServicesRequest {}, "mallory"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::PermissionDenied);
    assert_eq!(unknown.message(), "unknown tenant");
    let mut twice = with_tenant(GetServicesRequest {}, "acme");
    twice
        .metadata_mut()
        .append("x-tenant", MetadataValue::from_static("globex"));
    let extra = reader.get_services(twice).await.unwrap_err();
    assert_eq!(extra.code(), Code::PermissionDenied);
    assert_eq!(extra.message(), "extra tenant header");
    // Writes are guarded too, and bearer tokens are accepted and ignored.
    let unguarded = writer.export(export_request(Vec::new())).await.unwrap_err();
    assert_eq!(unguarded.code(), Code::Unauthenticated);
    let mut with_token = with_tenant(export_request(Vec::new()), "acme");
    with_token
        .metadata_mut()
        .insert("bearer.token", MetadataValue::from_static("opaque"));
    writer.export(with_token).await.unwrap();
    // Health needs no tenant.
    assert_eq!(
        health_status(server.grpc_addr, "").await,
        ServingStatus::Serving
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Purge, health, metrics, shutdown

#[tokio::test]
async fn purge_over_http_empties_the_store() {
    let server = start().await;
    let start_time = now_nanos() - 60_000_000_000;
    export(server.grpc_addr, two_traces(start_time)).await;
    let purger_addr = server.purger_addr.unwrap();

    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("http://{purger_addr}/purge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "purged");

    let mut reader = reader(server.grpc_addr).await;
    let services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert!(services.is_empty());
    let chunks = collect(
        reader
            .get_traces(GetTracesRequest {
                query: vec![lookup(trace_id(1))],
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert!(chunks.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_purger_is_off_unless_configured() {
    let mut config = ServerConfig::for_tests();
    config.purger_addr = None;
    config.writer_addr = None;
    let server = start_with(config).await;
    assert_eq!(server.purger_addr, None);
    assert_eq!(server.writer_addr, None);
    // Nothing purge-like on the admin port either.
    let admin = server.admin_addr.unwrap();
    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("http://{admin}/purge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_admin_and_metrics_report_the_server() {
    let server = start().await;
    for service in [
        "",
        "jaeger.storage.v2.TraceReader",
        "jaeger.storage.v2.DependencyReader",
        "jaeger.storage.v2.Capabilities",
        "jaeger.storage.v2.TraceWriter",
        "opentelemetry.proto.collector.trace.v1.TraceService",
    ] {
        assert_eq!(
            health_status(server.grpc_addr, service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    let admin = server.admin_addr.unwrap();
    assert_eq!(http_get(admin, "/").await.0, 200);

    // Traffic to count: 3 valid spans + 1 invalid, one read, one refused read.
    let start_time = now_nanos() - 60_000_000_000;
    let mut bad = span(5, 9, None, "bad", SpanKind::Server, start_time);
    bad.span_id.clear();
    let mut groups = two_traces(start_time);
    groups.push(group("svc-c", vec![bad]));
    export(server.grpc_addr, groups).await;
    let mut reader = reader(server.grpc_addr).await;
    let stream = reader
        .get_traces(GetTracesRequest {
            query: vec![lookup(trace_id(1))],
        })
        .await
        .unwrap()
        .into_inner();
    collect(stream).await.unwrap();
    reader
        .get_operations(GetOperationsRequest::default())
        .await
        .unwrap_err();

    let (status, text) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "jaeger_remote_storage_spans_received_total{backend=\"memory\"} 5",
        "jaeger_remote_storage_spans_rejected_total{backend=\"memory\",reason=\"invalid\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"opentelemetry.proto.collector.trace.v1.TraceService/Export\",code=\"OK\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v2.TraceReader/GetTraces\",code=\"OK\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v2.TraceReader/GetOperations\",code=\"INVALID_ARGUMENT\"} 1",
        "jaeger_remote_storage_grpc_request_duration_seconds_count{method=\"jaeger.storage.v2.TraceReader/GetTraces\"} 1",
        "jaeger_remote_storage_stored_traces{backend=\"memory\"} 2",
        "jaeger_remote_storage_stored_spans{backend=\"memory\"} 4",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_storage_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = start().await;
    let mut client = ServerReflectionClient::new(channel(server.grpc_addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: BTreeSet<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "jaeger.storage.v2.TraceReader",
        "jaeger.storage.v2.DependencyReader",
        "jaeger.storage.v2.Capabilities",
        "opentelemetry.proto.collector.trace.v1.TraceService",
        "grpc.health.v1.Health",
        "jaeger.storage.v1.SpanWriterPlugin",
        "jaeger.storage.v1.StreamingSpanWriterPlugin",
        "jaeger.storage.v1.SpanReaderPlugin",
        "jaeger.storage.v1.DependenciesReaderPlugin",
        "jaeger.storage.v1.PluginCapabilities",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    drop(responses);
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stop_closes_every_listener() {
    let server = start().await;
    let grpc_addr = server.grpc_addr;
    let admin_addr = server.admin_addr.unwrap();
    // An open client connection must not keep stop() from finishing.
    let mut reader = reader(grpc_addr).await;
    reader.get_services(GetServicesRequest {}).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), server.stop())
        .await
        .expect("stop finished")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err());
    assert!(tokio::net::TcpStream::connect(admin_addr).await.is_err());
}

/// A backend that never becomes ready.
struct NeverReady;

#[async_trait::async_trait]
impl remote_storage_core::StoreLifecycle for NeverReady {
    async fn ready(&self) -> remote_storage_core::StoreResult<()> {
        Err(remote_storage_core::StoreError::unavailable(
            "still connecting",
            "no route to database",
        ))
    }
}

#[tokio::test]
async fn a_backend_that_is_not_ready_is_reported_not_serving() {
    let mut backend = backend_memory::open(backend_memory::MemoryConfig::default());
    backend.lifecycle = std::sync::Arc::new(NeverReady);
    let server = RunningServer::start(ServerConfig::for_tests(), backend)
        .await
        .unwrap();
    assert_eq!(
        health_status(server.grpc_addr, "").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(server.grpc_addr, "jaeger.storage.v2.TraceReader").await,
        ServingStatus::NotServing
    );
    let (status, body) = http_get(server.admin_addr.unwrap(), "/").await;
    assert_eq!(status, 503);
    assert_eq!(body, "not ready");
    server.stop().await.unwrap();
}

/// Sends one gRPC request whose message is `message` as is (any bytes) over HTTP/2 and returns
/// the status of the trailers-only answer.
async fn raw_grpc_status(addr: SocketAddr, path: &str, frame: Vec<u8>) -> (Code, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame)
        .send()
        .await
        .unwrap();
    let status = Status::from_header_map(response.headers()).expect("a trailers-only answer");
    (status.code(), status.message().to_owned())
}

/// A gRPC length-prefixed message: uncompressed flag, big-endian length, bytes.
fn grpc_frame(declared_length: u32, bytes: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&declared_length.to_be_bytes());
    frame.extend_from_slice(bytes);
    frame
}

#[tokio::test]
async fn requests_the_client_got_wrong_get_the_client_s_status_codes() {
    let server = start().await;
    let export_path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    // Not protobuf: a client error, never INTERNAL (which error-rate alerts count as ours).
    let garbage = [0xff_u8; 16];
    let (code, message) =
        raw_grpc_status(server.grpc_addr, export_path, grpc_frame(16, &garbage)).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("decode"), "{message}");
    // The same on the v2 reader.
    let (code, message) = raw_grpc_status(
        server.grpc_addr,
        "/jaeger.storage.v2.TraceReader/FindTraces",
        grpc_frame(16, &garbage),
    )
    .await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    // A body cut short of the length it declares.
    let (code, message) = raw_grpc_status(
        server.grpc_addr,
        export_path,
        grpc_frame(100, &[0x0a, 0x02]),
    )
    .await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    // Over the size limit: RESOURCE_EXHAUSTED (not retried), not OUT_OF_RANGE (retried).
    let (code, message) =
        raw_grpc_status(server.grpc_addr, export_path, grpc_frame(u32::MAX, &[0x0a])).await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    // The server still serves.
    assert_eq!(
        export(server.grpc_addr, two_traces(now_nanos()))
            .await
            .partial_success,
        None
    );
    server.stop().await.unwrap();
}
