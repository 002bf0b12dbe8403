//! `--queries` with `--api v1`: Jaeger v1's reads (`jaeger.storage.v1.SpanReaderPlugin`),
//! timed like the v2 set with the same discovered parameters, as Jaeger v1's query service
//! makes them (`num_traces` = the search depth). The v2 GetTraces of the large trace is timed
//! too, so both APIs' cost of one big read shows side by side.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::storage::v1::span_reader_plugin_client::SpanReaderPluginClient;
use jaeger_remote_proto::storage::v1::{
    FindTracesRequest, GetOperationsRequest, GetServicesRequest, GetTraceRequest,
    SpansResponseChunk, TraceQueryParameters,
};
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::conn::{MAX_MESSAGE_BYTES, Tenant};
use crate::queries::{Ctx, QueryResult, Tally, Target, time_query};

/// A SpanReaderPlugin client that accepts chunks of any size.
pub(crate) fn reader(channel: Channel) -> SpanReaderPluginClient<Channel> {
    SpanReaderPluginClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// Every span of a v1 `GetTrace` (the client joins the chunks); an unknown trace is the
/// NOT_FOUND "trace not found" error.
pub(crate) async fn get_trace(
    client: &mut SpanReaderPluginClient<Channel>,
    tenant: &Tenant,
    trace_id: &[u8],
) -> Result<Vec<v1::Span>, Status> {
    let mut stream = client
        .get_trace(tenant.request(GetTraceRequest {
            trace_id: trace_id.to_vec(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let mut spans = Vec::new();
    while let Some(chunk) = stream.message().await? {
        spans.extend(chunk.spans);
    }
    Ok(spans)
}

/// Counts the spans and distinct traces of a chunk stream.
async fn drain(mut stream: Streaming<SpansResponseChunk>) -> Result<Tally, Status> {
    let mut traces = HashSet::new();
    let mut spans = 0u64;
    while let Some(chunk) = stream.message().await? {
        for span in chunk.spans {
            spans += 1;
            traces.insert(span.trace_id);
        }
    }
    Ok(Tally {
        traces: traces.len() as u64,
        spans,
        items: 0,
    })
}

struct V1Ctx<'a> {
    ctx: &'a Ctx,
    client: SpanReaderPluginClient<Channel>,
}

impl V1Ctx<'_> {
    fn params(&self, service: &str) -> TraceQueryParameters {
        TraceQueryParameters {
            service_name: service.to_string(),
            start_time_min: Some(self.ctx.window.0),
            start_time_max: Some(self.ctx.window.1),
            num_traces: self.ctx.cfg.search_depth,
            ..Default::default()
        }
    }

    async fn find_traces(&self, query: TraceQueryParameters) -> Result<Tally, Status> {
        let mut client = self.client.clone();
        let stream = client
            .find_traces(
                self.ctx
                    .tenant
                    .request(FindTracesRequest { query: Some(query) }),
            )
            .await?
            .into_inner();
        drain(stream).await
    }

    async fn get_trace(&self, trace_id: &[u8]) -> Result<Tally, Status> {
        let mut client = self.client.clone();
        let spans = get_trace(&mut client, &self.ctx.tenant, trace_id).await?;
        let traces: HashSet<_> = spans.iter().map(|span| &span.trace_id).collect();
        Ok(Tally {
            traces: traces.len() as u64,
            spans: spans.len() as u64,
            items: 0,
        })
    }
}

/// Times the v1 query set.
pub(crate) async fn run(ctx: &Ctx, target: &Target) -> Result<Vec<QueryResult>> {
    let c = &V1Ctx {
        ctx,
        client: reader(ctx.channel.clone()),
    };
    let t = target;
    let mut out = Vec::new();
    out.push(
        time_query(&ctx.cfg, "v1 FindTraces service", || {
            c.find_traces(c.params(&t.service))
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "v1 FindTraces service+tag", || {
            let mut query = c.params(&t.service);
            query.tags = BTreeMap::from([(t.tag_key.clone(), t.tag_value.clone())]);
            c.find_traces(query)
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "v1 GetServices", || async {
            let mut client = c.client.clone();
            let response = client
                .get_services(ctx.tenant.request(GetServicesRequest {}))
                .await?
                .into_inner();
            Ok(Tally {
                items: response.services.len() as u64,
                ..Tally::default()
            })
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "v1 GetOperations", || async {
            let mut client = c.client.clone();
            let response = client
                .get_operations(ctx.tenant.request(GetOperationsRequest {
                    service: t.service.clone(),
                    span_kind: String::new(),
                }))
                .await?
                .into_inner();
            Ok(Tally {
                items: response.operations.len() as u64,
                ..Tally::default()
            })
        })
        .await?,
    );
    out.push(
        time_query(&ctx.cfg, "v1 GetTrace one trace", || {
            c.get_trace(&t.trace_id_bytes)
        })
        .await?,
    );
    if let Some(large_trace_id) = &ctx.cfg.large_trace {
        out.push(
            time_query(&ctx.cfg, "v1 GetTrace large trace", || {
                c.get_trace(large_trace_id)
            })
            .await?,
        );
        out.push(
            time_query(&ctx.cfg, "GetTraces large trace (v2)", || {
                ctx.get_trace(large_trace_id)
            })
            .await?,
        );
    }
    Ok(out)
}
