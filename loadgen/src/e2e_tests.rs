//! End-to-end tests against a tiny in-process OTLP + TraceReader server.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jaeger_remote_proto::otlp::collector::trace_service_server::{
    TraceService, TraceServiceServer,
};
use jaeger_remote_proto::otlp::collector::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span, TracesData};
use jaeger_remote_proto::storage::v2::trace_reader_server::{TraceReader, TraceReaderServer};
use jaeger_remote_proto::storage::v2::{
    FindTraceIDsRequest, FindTraceIDsResponse, FindTraceSummariesRequest,
    FindTraceSummariesResponse, FindTracesRequest, GetOperationsRequest, GetOperationsResponse,
    GetServicesRequest, GetServicesResponse, GetTracesRequest, Operation,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::cli::Api;
use crate::codec::RawClient;
use crate::conn::{self, Tenant};
use crate::queries;
use crate::run::{self, LoadConfig};
use crate::test_support::{query_config, recent_workload};
use crate::verify;
use crate::workload::{self, Workload};

type Stream<T> = tokio_stream::Iter<std::vec::IntoIter<Result<T, Status>>>;

/// (service, spans) per trace ID.
#[derive(Default)]
struct Store {
    traces: HashMap<Vec<u8>, (String, Vec<Span>)>,
    tenants: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake {
    store: Arc<Mutex<Store>>,
    /// Drop (and report as rejected) the last span of every resource.
    reject_one_per_resource: bool,
    /// Fail every Export with this status.
    fail: Option<tonic::Code>,
}

fn service_of(rs: &ResourceSpans) -> String {
    rs.resource
        .as_ref()
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            any_value::Value::StringValue(s) => s.clone(),
            _ => String::new(),
        })
        .unwrap_or_default()
}

fn traces_data(service: &str, spans: Vec<Span>) -> TracesData {
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tonic::async_trait]
impl TraceService for Fake {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        if let Some(code) = self.fail {
            return Err(Status::new(code, "told to fail"));
        }
        let tenant = request
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut store = self.store.lock().unwrap();
        if let Some(t) = tenant {
            store.tenants.push(t);
        }
        let mut rejected = 0;
        for rs in request.into_inner().resource_spans {
            let service = service_of(&rs);
            let mut spans: Vec<Span> = rs.scope_spans.into_iter().flat_map(|s| s.spans).collect();
            if self.reject_one_per_resource {
                spans.pop();
                rejected += 1;
            }
            for span in spans {
                store
                    .traces
                    .entry(span.trace_id.clone())
                    .or_insert_with(|| (service.clone(), Vec::new()))
                    .1
                    .push(span);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: "rejected one".into(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceReader for Fake {
    type GetTracesStream = Stream<TracesData>;
    type FindTracesStream = Stream<TracesData>;
    type FindTraceSummariesStream = Stream<FindTraceSummariesResponse>;

    async fn get_traces(
        &self,
        request: Request<GetTracesRequest>,
    ) -> Result<Response<Self::GetTracesStream>, Status> {
        let store = self.store.lock().unwrap();
        let out: Vec<_> = request
            .into_inner()
            .query
            .iter()
            .filter_map(|q| store.traces.get(&q.trace_id))
            .map(|(svc, spans)| Ok(traces_data(svc, spans.clone())))
            .collect();
        Ok(Response::new(tokio_stream::iter(out)))
    }

    async fn get_services(
        &self,
        _: Request<GetServicesRequest>,
    ) -> Result<Response<GetServicesResponse>, Status> {
        let store = self.store.lock().unwrap();
        let mut services: Vec<_> = store.traces.values().map(|(s, _)| s.clone()).collect();
        services.sort();
        services.dedup();
        Ok(Response::new(GetServicesResponse { services }))
    }

    async fn get_operations(
        &self,
        request: Request<GetOperationsRequest>,
    ) -> Result<Response<GetOperationsResponse>, Status> {
        let service = request.into_inner().service;
        let store = self.store.lock().unwrap();
        let mut ops = BTreeMap::new();
        for (_, spans) in store.traces.values().filter(|(s, _)| *s == service) {
            for s in spans {
                let kind = if s.parent_span_id.is_empty() {
                    "server"
                } else {
                    "client"
                };
                ops.insert(s.name.clone(), kind.to_string());
            }
        }
        let operations = ops
            .into_iter()
            .map(|(name, span_kind)| Operation { name, span_kind })
            .collect();
        Ok(Response::new(GetOperationsResponse { operations }))
    }

    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let store = self.store.lock().unwrap();
        let matches = |span: &Span| {
            (q.operation_name.is_empty() || span.name == q.operation_name)
                && q.attributes.iter().all(|want| {
                    span.attributes.iter().any(|kv| {
                        kv.key == want.key
                            && match (
                                kv.value.as_ref().and_then(|v| v.value.as_ref()),
                                want.value.as_ref().and_then(|v| v.value.as_ref()),
                            ) {
                                (
                                    Some(any_value::Value::StringValue(a)),
                                    Some(
                                        jaeger_remote_proto::storage::v2::any_value::Value::StringValue(b),
                                    ),
                                ) => a == b,
                                _ => false,
                            }
                    })
                })
                && q.duration_min.is_none_or(|d| {
                    i64::try_from(span.end_time_unix_nano - span.start_time_unix_nano).unwrap()
                        >= d.seconds * 1_000_000_000 + i64::from(d.nanos)
                })
        };
        let out: Vec<_> = store
            .traces
            .values()
            .filter(|(svc, spans)| {
                (q.service_name.is_empty() || *svc == q.service_name) && spans.iter().any(matches)
            })
            .take(usize::try_from(q.search_depth).unwrap())
            .map(|(svc, spans)| Ok(traces_data(svc, spans.clone())))
            .collect();
        Ok(Response::new(tokio_stream::iter(out)))
    }

    async fn find_trace_i_ds(
        &self,
        _: Request<FindTraceIDsRequest>,
    ) -> Result<Response<FindTraceIDsResponse>, Status> {
        Err(Status::unimplemented("no"))
    }

    async fn find_trace_summaries(
        &self,
        _: Request<FindTraceSummariesRequest>,
    ) -> Result<Response<Self::FindTraceSummariesStream>, Status> {
        Err(Status::unimplemented(
            "method FindTraceSummaries not implemented",
        ))
    }
}

async fn serve(fake: Fake) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(fake.clone())
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .add_service(TraceReaderServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

fn workload(total: u64, batch: usize) -> Workload {
    Workload::build(&recent_workload(11, batch, total)).unwrap()
}

async fn load(fake: &Fake, total: u64, rate: Option<f64>, tenant: &Tenant) -> run::LoadResult {
    let addr = serve(fake.clone()).await;
    let channel = conn::connect(&addr.to_string()).await.unwrap();
    let clients = vec![RawClient::new(channel.clone(), true, tenant.clone())];
    let w = workload(total, 500);
    let tpr = w.traces_per_request();
    let prefix = workload::run_prefix(5);
    let result = run::run(
        w,
        clients,
        LoadConfig {
            concurrency: 3,
            duration: None,
            rate,
            prefix,
            progress: None,
        },
    )
    .await
    .unwrap();
    assert!(
        result.errors.is_empty(),
        "{:?} {:?}",
        result.errors,
        result.error_examples
    );
    // Read everything back the way `--verify` does.
    let ids: Vec<_> = (0..total / 10)
        .map(|t| workload::trace_id(prefix, t))
        .collect();
    assert!(tpr * result.requests_claimed >= ids.len() as u64);
    let v = verify::verify(
        &channel,
        tenant,
        &ids,
        result.spans_accepted,
        2,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(v.ok, "{v:?}");
    result
}

#[tokio::test]
async fn closed_loop_sends_every_span_once_and_verifies() {
    let fake = Fake::default();
    let tenant = Tenant::new("x-tenant", Some("acme")).unwrap();
    let r = load(&fake, 12_340, None, &tenant).await;
    assert_eq!(r.spans_sent, 12_340);
    assert_eq!(r.spans_accepted, 12_340);
    assert_eq!(r.requests_sent, 25);
    assert!(r.errors.is_empty());
    assert_eq!(r.latency_us.len(), 25);
    let store = fake.store.lock().unwrap();
    assert_eq!(store.traces.len(), 1234);
    assert!(store.traces.values().all(|(_, s)| s.len() == 10));
    assert_eq!(store.tenants.len(), 25);
    assert!(store.tenants.iter().all(|t| t == "acme"));
}

#[tokio::test]
async fn fixed_rate_paces_requests() {
    let fake = Fake::default();
    let r = load(&fake, 5_000, Some(25_000.0), &Tenant::default()).await;
    assert_eq!(r.spans_accepted, 5_000);
    // 10 requests of 500 spans at 25k spans/s: the last is due at 180 ms.
    assert!(r.wall >= Duration::from_millis(180), "{:?}", r.wall);
}

#[tokio::test]
async fn partial_success_is_subtracted() {
    let fake = Fake {
        reject_one_per_resource: true,
        ..Fake::default()
    };
    let r = load(&fake, 3_000, None, &Tenant::default()).await;
    assert_eq!(r.spans_sent, 3_000);
    assert!(r.spans_rejected > 0);
    assert_eq!(r.spans_accepted + r.spans_rejected, 3_000);
}

#[tokio::test]
async fn server_errors_are_counted_by_code() {
    let fake = Fake {
        fail: Some(tonic::Code::ResourceExhausted),
        ..Fake::default()
    };
    let addr = serve(fake).await;
    let channel = conn::connect(&addr.to_string()).await.unwrap();
    let r = run::run(
        workload(2_000, 500),
        vec![RawClient::new(channel, false, Tenant::default())],
        LoadConfig {
            concurrency: 2,
            duration: None,
            rate: None,
            prefix: workload::run_prefix(1),
            progress: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(r.spans_accepted, 0);
    assert_eq!(r.errors.get("ResourceExhausted"), Some(&4));
    assert_eq!(
        r.error_examples.get("ResourceExhausted").unwrap(),
        "told to fail"
    );
}

#[tokio::test]
async fn query_mode_discovers_parameters_and_drains_streams() {
    let fake = Fake::default();
    load(&fake, 2_000, None, &Tenant::default()).await;
    let addr = serve(fake).await;
    let channel = conn::connect(&addr.to_string()).await.unwrap();
    let (target, results) =
        queries::run(channel, Tenant::default(), query_config(3, None), Api::V2)
            .await
            .unwrap();
    assert_eq!(target.service, workload::service_name(0));
    assert!(target.operation.starts_with("GET "));
    assert_eq!(results.len(), 10);
    let by_name: HashMap<_, _> = results.iter().map(|r| (r.name.as_str(), r)).collect();
    for name in [
        "FindTraces service",
        "FindTraces service+operation",
        "FindTraces service+tag",
        "FindTraces service+duration",
        "FindTraces tag (no service)",
        "GetTraces one trace",
    ] {
        let r = by_name[name];
        assert_eq!(r.ok, 3, "{name}");
        assert!(r.traces >= 1, "{name} returned nothing");
        assert_eq!(r.spans, r.traces * 10, "{name}");
        assert!(r.traces <= 20, "{name}");
    }
    assert_eq!(by_name["GetTraces one trace"].traces, 1);
    assert_eq!(by_name["FindTraces service"].traces, 20);
    assert_eq!(by_name["GetServices"].items, 10);
    assert!(by_name["GetOperations"].items >= 2);
    let summaries = by_name["FindTraceSummaries service"];
    assert_eq!(summaries.ok, 0);
    assert_eq!(summaries.errors.get("Unimplemented"), Some(&3));
    // The fake server has no DependencyReader: the query is timed and its errors counted.
    let dependencies = by_name["GetDependencies"];
    assert_eq!(dependencies.ok, 0);
    assert_eq!(dependencies.errors.get("Unimplemented"), Some(&3));
}
