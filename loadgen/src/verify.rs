//! After the load: read back every sent trace with `GetTraces` and count the stored spans;
//! after a v1 load, also read one trace with v1 `GetTrace` and compare it with what was sent.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::{StreamExt as _, TryStreamExt as _};
use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{GetTraceParams, GetTracesRequest};
use serde::Serialize;
use tonic::transport::Channel;

use crate::conn::{MAX_MESSAGE_BYTES, Tenant};
use crate::queries::hex;
use crate::v1_queries;

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
    /// With `--api v1`: one trace read back through v1 `GetTrace`.
    pub(crate) v1_get_trace: Option<V1TraceCheck>,
    pub(crate) ok: bool,
}

/// One trace read back through Jaeger v1's `GetTrace` and compared with the spans sent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct V1TraceCheck {
    pub(crate) trace_id: String,
    pub(crate) sent_spans: usize,
    pub(crate) read_spans: usize,
    /// The first difference, after the normalisation of Jaeger's storage integration tests
    /// (spans by span ID, tags and process tags by key); `None` when the trace is identical.
    pub(crate) difference: Option<String>,
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
                v1_get_trace: None,
                ok,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads the trace of `sent` (the spans of one trace, as written) with v1 `GetTrace` and
/// compares the two.
pub(crate) async fn check_v1_trace(
    channel: &Channel,
    tenant: &Tenant,
    mut sent: Vec<v1::Span>,
) -> V1TraceCheck {
    let trace_id = sent
        .first()
        .map(|span| span.trace_id.clone())
        .unwrap_or_default();
    let mut client = v1_queries::reader(channel.clone());
    let read = v1_queries::get_trace(&mut client, tenant, &trace_id).await;
    let (read_spans, difference) = match read {
        Ok(mut read) => {
            normalise(&mut sent);
            normalise(&mut read);
            (read.len(), first_difference(&sent, &read))
        }
        Err(status) => (
            0,
            Some(format!(
                "GetTrace failed: {:?} {}",
                status.code(),
                status.message()
            )),
        ),
    };
    V1TraceCheck {
        trace_id: hex(&trace_id),
        sent_spans: sent.len(),
        read_spans,
        difference,
    }
}

/// Jaeger's integration tests compare traces with spans sorted by ID and tags by key, since
/// neither order is kept by storage.
fn normalise(spans: &mut [v1::Span]) {
    spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    for span in spans {
        span.tags.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(process) = span.process.as_mut() {
            process.tags.sort_by(|a, b| a.key.cmp(&b.key));
        }
    }
}

fn first_difference(sent: &[v1::Span], read: &[v1::Span]) -> Option<String> {
    if sent.len() != read.len() {
        return Some(format!("{} spans read, {} sent", read.len(), sent.len()));
    }
    let (sent, read) = sent.iter().zip(read).find(|(sent, read)| sent != read)?;
    let fields = [
        ("span_id", sent.span_id == read.span_id),
        ("trace_id", sent.trace_id == read.trace_id),
        ("operation_name", sent.operation_name == read.operation_name),
        ("references", sent.references == read.references),
        ("flags", sent.flags == read.flags),
        ("start_time", sent.start_time == read.start_time),
        ("duration", sent.duration == read.duration),
        ("tags", sent.tags == read.tags),
        ("logs", sent.logs == read.logs),
        ("process", sent.process == read.process),
        ("warnings", sent.warnings == read.warnings),
    ];
    let field = fields
        .iter()
        .find(|(_, same)| !same)
        .map_or("process_id", |(name, _)| name);
    Some(format!("span {}: {field} differs", hex(&sent.span_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u8, tags: &[&str]) -> v1::Span {
        v1::Span {
            span_id: vec![id; 8],
            tags: tags
                .iter()
                .map(|key| v1::KeyValue {
                    key: (*key).to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn order_of_spans_and_tags_does_not_matter() {
        let mut sent = vec![span(1, &["a", "b"]), span(2, &[])];
        let mut read = vec![span(2, &[]), span(1, &["b", "a"])];
        normalise(&mut sent);
        normalise(&mut read);
        assert_eq!(first_difference(&sent, &read), None);
    }

    #[test]
    fn a_difference_names_the_span_and_field() {
        let sent = vec![span(1, &["a"])];
        let mut read = sent.clone();
        read[0].operation_name = "other".into();
        assert_eq!(
            first_difference(&sent, &read).unwrap(),
            "span 0101010101010101: operation_name differs"
        );
        assert_eq!(
            first_difference(&sent, &[]).unwrap(),
            "0 spans read, 1 sent"
        );
    }
}
