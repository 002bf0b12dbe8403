//! After the load: read back every sent trace with `GetTraces` and count the stored spans.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::{StreamExt as _, TryStreamExt as _};
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{GetTraceParams, GetTracesRequest};
use serde::Serialize;
use tonic::transport::Channel;

use crate::conn::{MAX_MESSAGE_BYTES, Tenant};

/// Trace IDs per `GetTraces` call.
const IDS_PER_CALL: usize = 100;

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifyResult {
    pub(crate) expected_spans: u64,
    pub(crate) stored_spans: u64,
    pub(crate) stored_traces: u64,
    pub(crate) queried_traces: u64,
    /// Spans returned under a trace ID that was not asked for (a server bug).
    pub(crate) foreign_spans: u64,
    /// How many full read-backs were needed (the store may be eventually consistent).
    pub(crate) attempts: u32,
    pub(crate) ok: bool,
}

#[derive(Debug, Default)]
struct Counts {
    spans: u64,
    traces: u64,
    foreign: u64,
}

async fn count_batch(
    mut client: TraceReaderClient<Channel>,
    tenant: Tenant,
    ids: Vec<[u8; 16]>,
) -> Result<Counts> {
    let asked: HashSet<[u8; 16]> = ids.iter().copied().collect();
    let query = ids
        .into_iter()
        .map(|id| GetTraceParams {
            trace_id: id.to_vec(),
            ..Default::default()
        })
        .collect();
    let mut stream = client
        .get_traces(tenant.request(GetTracesRequest { query }))
        .await
        .context("GetTraces")?
        .into_inner();
    let mut counts = Counts::default();
    let mut seen = HashSet::new();
    while let Some(chunk) = stream.message().await.context("GetTraces stream")? {
        for span in chunk
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            let id: Option<[u8; 16]> = span.trace_id.as_slice().try_into().ok();
            match id.filter(|id| asked.contains(id)) {
                Some(id) => {
                    counts.spans += 1;
                    seen.insert(id);
                }
                None => counts.foreign += 1,
            }
        }
    }
    counts.traces = seen.len() as u64;
    Ok(counts)
}

async fn count_all(
    channel: &Channel,
    tenant: &Tenant,
    ids: &[[u8; 16]],
    concurrency: usize,
) -> Result<Counts> {
    let client = TraceReaderClient::new(channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    futures::stream::iter(ids.chunks(IDS_PER_CALL))
        .map(|chunk| count_batch(client.clone(), tenant.clone(), chunk.to_vec()))
        .buffer_unordered(concurrency.max(1))
        .try_fold(Counts::default(), |mut acc, c| async move {
            acc.spans += c.spans;
            acc.traces += c.traces;
            acc.foreign += c.foreign;
            Ok(acc)
        })
        .await
}

/// Reads back `ids` until exactly `expected_spans` spans are stored or `timeout` has passed.
pub(crate) async fn verify(
    channel: &Channel,
    tenant: &Tenant,
    ids: &[[u8; 16]],
    expected_spans: u64,
    concurrency: usize,
    timeout: Duration,
) -> Result<VerifyResult> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let counts = count_all(channel, tenant, ids, concurrency).await?;
        let ok = counts.spans == expected_spans && counts.foreign == 0;
        if ok || tokio::time::Instant::now() >= deadline {
            return Ok(VerifyResult {
                expected_spans,
                stored_spans: counts.spans,
                stored_traces: counts.traces,
                queried_traces: ids.len() as u64,
                foreign_spans: counts.foreign,
                attempts,
                ok,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
