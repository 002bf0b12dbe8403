//! Query mode: times K repetitions of each kind of read against the stored data.
//!
//! The parameters are discovered from the data itself (a service from `GetServices`, preferring
//! the loadgen workload's first service, one of its operations, and one span of a trace found
//! by `FindTraces`: its first string attribute, its duration and its trace ID), so the mode works
//! against any populated store, not only right after a load. The discovery always reads through
//! v2; with `--api v1` the timed queries are Jaeger v1's (`v1_queries`).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, bail};
use hdrhistogram::Histogram;
use jaeger_remote_proto::otlp::common::any_value;
use jaeger_remote_proto::otlp::trace::{Span, TracesData};
use jaeger_remote_proto::storage::v2::dependency_reader_client::DependencyReaderClient;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{
    AnyValue, FindTraceSummariesRequest, FindTracesRequest, GetDependenciesRequest,
    GetOperationsRequest, GetServicesRequest, GetTraceParams, GetTracesRequest, KeyValue,
    TraceQueryParameters, any_value as v2_any_value,
};
use prost::Message as _;
use serde::Serialize;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::cli::Api;
use crate::codec::RawClient;
use crate::conn::{MAX_MESSAGE_BYTES, Tenant};
use crate::workload::service_name;
use crate::{filter_queries, v1_queries};

/// How the queries are run.
#[derive(Debug, Clone)]
pub(crate) struct QueryConfig {
    /// Repetitions of each query.
    pub(crate) reps: u32,
    /// A query stops repeating once its repetitions took this long in total (after at least
    /// [`MIN_REPS`]), so slow queries keep the run bounded; `reps` reports what was done.
    pub(crate) budget: Option<Duration>,
    /// `search_depth` of every Find* query.
    pub(crate) search_depth: i32,
    /// Find* queries cover `[now - lookback, now + 5 min]`.
    pub(crate) lookback: Duration,
    /// A large trace written before the queries, timed with GetTraces.
    pub(crate) large_trace: Option<Vec<u8>>,
    /// Queries not run, by name (e.g. `GetDependencies` on a store where one call takes
    /// minutes).
    pub(crate) skip: Vec<String>,
}

/// Repetitions always done, whatever the time budget.
const MIN_REPS: u32 = 5;

/// Timings and result sizes of one kind of query.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueryResult {
    pub(crate) name: String,
    pub(crate) reps: u32,
    pub(crate) ok: u32,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) first_error: Option<String>,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Traces returned by the last successful repetition.
    pub(crate) traces: u64,
    /// Spans returned by the last successful repetition.
    pub(crate) spans: u64,
    /// Other items returned (services, operations, summaries).
    pub(crate) items: u64,
}

/// What a query returned.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub(crate) traces: u64,
    pub(crate) spans: u64,
    pub(crate) items: u64,
}

/// The parameters the queries use, discovered from the stored data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target {
    pub(crate) service: String,
    pub(crate) operation: String,
    pub(crate) tag_key: String,
    pub(crate) tag_value: String,
    pub(crate) duration_min_ms: f64,
    pub(crate) duration_max_ms: f64,
    pub(crate) trace_id: String,
    #[serde(skip)]
    pub(crate) trace_id_bytes: Vec<u8>,
    #[serde(skip)]
    pub(crate) duration_min: Duration,
    #[serde(skip)]
    pub(crate) duration_max: Duration,
}

/// What every query needs: the clients, the tenant, the settings and the Find* time window.
pub(crate) struct Ctx {
    pub(crate) channel: Channel,
    client: TraceReaderClient<Channel>,
    dependencies: DependencyReaderClient<Channel>,
    pub(crate) tenant: Tenant,
    pub(crate) cfg: QueryConfig,
    pub(crate) window: (prost_types::Timestamp, prost_types::Timestamp),
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

impl Ctx {
    pub(crate) fn params(&self, service: &str) -> TraceQueryParameters {
        TraceQueryParameters {
            service_name: service.to_string(),
            start_time_min: Some(self.window.0),
            start_time_max: Some(self.window.1),
            search_depth: self.cfg.search_depth,
            ..Default::default()
        }
    }

    pub(crate) async fn find_traces(&self, query: TraceQueryParameters) -> Result<Tally, Status> {
        let mut client = self.client.clone();
        let stream = client
            .find_traces(
                self.tenant
                    .request(FindTracesRequest { query: Some(query) }),
            )
            .await?
            .into_inner();
        drain_traces(stream).await
    }

    /// v2 GetTraces of one trace.
    pub(crate) async fn get_trace(&self, trace_id: &[u8]) -> Result<Tally, Status> {
        let mut client = self.client.clone();
        let stream = client
            .get_traces(self.tenant.request(GetTracesRequest {
                query: vec![GetTraceParams {
                    trace_id: trace_id.to_vec(),
                    ..Default::default()
                }],
            }))
            .await?
            .into_inner();
        drain_traces(stream).await
    }

    /// v2 GetTraces of one trace, read without decoding: `items` is the bytes received,
    /// `spans` the number of messages (chunks).
    pub(crate) async fn get_trace_bytes(&self, trace_id: &[u8]) -> Result<Tally, Status> {
        let request = GetTracesRequest {
            query: vec![GetTraceParams {
                trace_id: trace_id.to_vec(),
                ..Default::default()
            }],
        };
        let mut client = RawClient::new(self.channel.clone(), false, self.tenant.clone());
        let (chunks, bytes) = client
            .server_streaming_bytes(GET_TRACES_PATH, request.encode_to_vec().into())
            .await?;
        if chunks == 0 {
            return Err(Status::not_found("the large trace was not returned"));
        }
        Ok(Tally {
            traces: 1,
            spans: chunks,
            items: bytes,
        })
    }
}

/// `TraceReader/GetTraces`, for the client that does not decode.
const GET_TRACES_PATH: &str = "/jaeger.storage.v2.TraceReader/GetTraces";

/// Drains a `TracesData` stream, counting distinct traces and spans.
async fn drain_traces(mut stream: Streaming<TracesData>) -> Result<Tally, Status> {
    let mut ids = HashSet::new();
    let mut spans = 0u64;
    while let Some(chunk) = stream.message().await? {
        for span in all_spans(&chunk) {
            spans += 1;
            ids.insert(span.trace_id.clone());
        }
    }
    Ok(Tally {
        traces: ids.len() as u64,
        spans,
        items: 0,
    })
}

fn all_spans(data: &TracesData) -> impl Iterator<Item = &Span> {
    data.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

async fn first_trace(ctx: &Ctx, query: TraceQueryParameters) -> Result<Vec<Span>> {
    let mut client = ctx.client.clone();
    let mut stream = client
        .find_traces(ctx.tenant.request(FindTracesRequest { query: Some(query) }))
        .await
        .context("FindTraces during discovery")?
        .into_inner();
    let mut spans = Vec::new();
    while let Some(chunk) = stream.message().await? {
        spans.extend(all_spans(&chunk).cloned());
    }
    let Some(first) = spans.first().map(|s| s.trace_id.clone()) else {
        return Ok(spans);
    };
    spans.retain(|s| s.trace_id == first);
    Ok(spans)
}

async fn discover(ctx: &Ctx) -> Result<Target> {
    let mut client = ctx.client.clone();
    let mut services = client
        .get_services(ctx.tenant.request(GetServicesRequest {}))
        .await
        .context("GetServices during discovery")?
        .into_inner()
        .services;
    services.sort();
    let preferred = service_name(0);
    let service = if services.contains(&preferred) {
        preferred
    } else if let Some(first) = services.first() {
        first.clone()
    } else {
        bail!("the store has no services: load some data first");
    };
    let ops = client
        .get_operations(ctx.tenant.request(GetOperationsRequest {
            service: service.clone(),
            span_kind: String::new(),
        }))
        .await
        .context("GetOperations during discovery")?
        .into_inner()
        .operations;
    let mut op_names: Vec<_> = ops
        .iter()
        .filter(|o| o.span_kind == "server")
        .map(|o| o.name.clone())
        .collect();
    if op_names.is_empty() {
        op_names = ops.iter().map(|o| o.name.clone()).collect();
    }
    op_names.sort();
    let operation = op_names.into_iter().next().unwrap_or_default();
    let mut q = ctx.params(&service);
    q.operation_name = operation.clone();
    q.search_depth = 1;
    let trace = first_trace(ctx, q).await?;
    let span = trace
        .iter()
        .find(|s| s.name == operation)
        .or_else(|| trace.first())
        .with_context(|| {
            format!("FindTraces found no trace of service {service:?} to take parameters from")
        })?;
    let (tag_key, tag_value) = span
        .attributes
        .iter()
        .find_map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => Some((kv.key.clone(), s.clone())),
                _ => None,
            },
        )
        .unwrap_or_default();
    let dur = Duration::from_nanos(
        span.end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano),
    );
    let (duration_min, duration_max) = (dur / 2, dur * 2);
    Ok(Target {
        service,
        operation,
        tag_key,
        tag_value,
        duration_min_ms: duration_min.as_secs_f64() * 1e3,
        duration_max_ms: duration_max.as_secs_f64() * 1e3,
        trace_id: hex(&span.trace_id),
        trace_id_bytes: span.trace_id.clone(),
        duration_min,
        duration_max,
    })
}

/// Lower-case hex of an ID.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tag(target: &Target) -> Vec<KeyValue> {
    vec![KeyValue {
        key: target.tag_key.clone(),
        value: Some(AnyValue {
            value: Some(v2_any_value::Value::StringValue(target.tag_value.clone())),
        }),
    }]
}

#[allow(clippy::cast_precision_loss)]
fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1e3
}

/// Runs `run` up to `reps` times (see [`QueryConfig::budget`]) and reports its latency and what
/// its last successful repetition returned.
pub(crate) async fn time_query<F, Fut>(
    cfg: &QueryConfig,
    name: &str,
    mut run: F,
) -> Result<QueryResult>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Tally, Status>>,
{
    // A skipped query is reported as run zero times.
    let reps = if cfg.skip.iter().any(|skipped| skipped == name) {
        0
    } else {
        cfg.reps
    };
    let budget = cfg.budget;
    let started = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut result = QueryResult {
        name: name.to_string(),
        reps,
        ok: 0,
        errors: BTreeMap::new(),
        first_error: None,
        p50_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
        traces: 0,
        spans: 0,
        items: 0,
    };
    for rep in 0..reps {
        if rep >= MIN_REPS && budget.is_some_and(|budget| started.elapsed() >= budget) {
            result.reps = rep;
            break;
        }
        let t0 = Instant::now();
        match run().await {
            Ok(t) => {
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                hist.saturating_record(us.max(1));
                result.ok += 1;
                result.traces = t.traces;
                result.spans = t.spans;
                result.items = t.items;
            }
            Err(status) => {
                *result
                    .errors
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
                result
                    .first_error
                    .get_or_insert_with(|| status.message().to_string());
            }
        }
    }
    result.p50_ms = ms(&hist, 0.5);
    result.p99_ms = ms(&hist, 0.99);
    #[allow(clippy::cast_precision_loss)]
    {
        result.max_ms = if hist.is_empty() {
            0.0
        } else {
            hist.max() as f64 / 1e3
        };
    }
    Ok(result)
}

/// Discovers the parameters and times every query of `api` `cfg.reps` times.
pub(crate) async fn run(
    channel: Channel,
    tenant: Tenant,
    cfg: QueryConfig,
    api: Api,
) -> Result<(Target, Vec<QueryResult>)> {
    let now = SystemTime::now();
    let ctx = Ctx {
        channel: channel.clone(),
        client: TraceReaderClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        dependencies: DependencyReaderClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        tenant,
        window: (
            timestamp(
                now.checked_sub(cfg.lookback)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            ),
            timestamp(now + Duration::from_secs(300)),
        ),
        cfg,
    };
    let target = discover(&ctx).await?;
    let mut results = match api {
        Api::V2 => v2_queries(&ctx, &target).await?,
        Api::V1 => v1_queries::run(&ctx, &target).await?,
    };
    results.retain(|result| !ctx.cfg.skip.contains(&result.name));
    Ok((target, results))
}

/// The v2 query set.
async fn v2_queries(ctx: &Ctx, target: &Target) -> Result<Vec<QueryResult>> {
    let t = target;
    let c = ctx;
    let mut out = Vec::new();

    out.push(
        time_query(&ctx.cfg, "FindTraces service", || {
            c.find_traces(c.params(&t.service))
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "FindTraces service+operation", || {
            let mut q = c.params(&t.service);
            q.operation_name = t.operation.clone();
            c.find_traces(q)
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "FindTraces service+tag", || {
            let mut q = c.params(&t.service);
            q.attributes = tag(t);
            c.find_traces(q)
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "FindTraces service+duration", || {
            let mut q = c.params(&t.service);
            q.duration_min = prost_types::Duration::try_from(t.duration_min).ok();
            q.duration_max = prost_types::Duration::try_from(t.duration_max).ok();
            c.find_traces(q)
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "FindTraces tag (no service)", || {
            let mut q = c.params("");
            q.attributes = tag(t);
            c.find_traces(q)
        })
        .await?,
    );
    out.extend(filter_queries::run(ctx, target).await?);
    out.push(
        time_query(&ctx.cfg, "FindTraceSummaries service", || async {
            let mut client = c.client.clone();
            let mut stream = client
                .find_trace_summaries(c.tenant.request(FindTraceSummariesRequest {
                    query: Some(c.params(&t.service)),
                }))
                .await?
                .into_inner();
            let mut tally = Tally::default();
            while let Some(chunk) = stream.message().await? {
                for s in &chunk.summaries {
                    tally.items += 1;
                    tally.traces += 1;
                    tally.spans += u64::try_from(s.span_count).unwrap_or(0);
                }
            }
            Ok(tally)
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "GetServices", || async {
            let mut client = c.client.clone();
            let resp = client
                .get_services(c.tenant.request(GetServicesRequest {}))
                .await?
                .into_inner();
            Ok(Tally {
                items: resp.services.len() as u64,
                ..Tally::default()
            })
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "GetOperations", || async {
            let mut client = c.client.clone();
            let resp = client
                .get_operations(c.tenant.request(GetOperationsRequest {
                    service: t.service.clone(),
                    span_kind: String::new(),
                }))
                .await?
                .into_inner();
            Ok(Tally {
                items: resp.operations.len() as u64,
                ..Tally::default()
            })
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "GetDependencies", || async {
            let mut client = c.dependencies.clone();
            let resp = client
                .get_dependencies(c.tenant.request(GetDependenciesRequest {
                    start_time: Some(c.window.0),
                    end_time: Some(c.window.1),
                }))
                .await?
                .into_inner();
            Ok(Tally {
                items: resp.dependencies.len() as u64,
                ..Tally::default()
            })
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "GetTraces one trace", || {
            c.get_trace(&t.trace_id_bytes)
        })
        .await?,
    );
    if let Some(large_trace_id) = &c.cfg.large_trace {
        out.push(
            time_query(&ctx.cfg, "GetTraces large trace", || {
                c.get_trace(large_trace_id)
            })
            .await?,
        );
        out.push(
            time_query(&ctx.cfg, "GetTraces large trace (bytes)", || {
                c.get_trace_bytes(large_trace_id)
            })
            .await?,
        );
    }
    Ok(out)
}
