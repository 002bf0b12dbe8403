//! The v1 senders: the workload written the way Jaeger v1's collector writes to a grpc
//! storage, through `jaeger.storage.v1`.
//!
//! - Streams (`--v1-writer stream`): each of `--concurrency` workers keeps one
//!   `WriteSpanStream` open for the whole run and sends one span per message, as the Go
//!   client's stream pool does, then closes it and checks the answer. A stream the server ends
//!   with an error is replaced by a new one, as the pool replaces a stream whose send failed.
//! - Unary (`--v1-writer unary`): each worker makes one `WriteSpan` call per span.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use jaeger_remote_proto::storage::v1::plugin_capabilities_client::PluginCapabilitiesClient;
use jaeger_remote_proto::storage::v1::{CapabilitiesRequest, WriteSpanResponse};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::cli::V1Writer;
use crate::codec::RawClient;
use crate::conn::Tenant;
use crate::run::{self, LoadConfig, LoadResult, Sender, Shared};
use crate::v1_workload::V1Template;
use crate::workload::Workload;

const WRITE_SPAN_PATH: &str = "/jaeger.storage.v1.SpanWriterPlugin/WriteSpan";
const WRITE_SPAN_STREAM_PATH: &str = "/jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream";

/// Asks `Capabilities` once, as Jaeger's writer does at start-up, and refuses to stream when
/// the server does not offer it (Jaeger would fall back to unary writes). Unlike Jaeger's
/// tenant-less call this one carries the tenant, so it also works with multi-tenancy on.
pub(crate) async fn check_streaming(channel: Channel, tenant: &Tenant) -> Result<()> {
    let capabilities = PluginCapabilitiesClient::new(channel)
        .capabilities(tenant.request(CapabilitiesRequest {}))
        .await
        .context("PluginCapabilities/Capabilities")?
        .into_inner();
    ensure!(
        capabilities.streaming_span_writer,
        "the server does not offer streaming writes (Capabilities.streamingSpanWriter is false); \
         use --v1-writer unary"
    );
    Ok(())
}

/// Writes the v1 workload over `clients` (used round-robin) and returns what was measured.
pub(crate) async fn run(
    workload: Workload<V1Template>,
    clients: Vec<RawClient>,
    cfg: LoadConfig,
    writer: V1Writer,
) -> Result<LoadResult> {
    ensure!(!clients.is_empty(), "no connection");
    ensure!(cfg.rate.is_none(), "--rate is not available with --api v1");
    match writer {
        V1Writer::Stream => {
            run::drive(workload, cfg, "sent", |shared, start| {
                streams(shared, clients, start)
            })
            .await
        }
        V1Writer::Unary => {
            run::drive(workload, cfg, "accepted", |shared, start| {
                unary(shared, clients, start)
            })
            .await
        }
    }
}

/// The messages of one stream: claims requests from the shared workload and yields their
/// messages one by one until the workload is exhausted, counting what it yields.
struct StreamMessages {
    shared: Arc<Shared<V1Template>>,
    start: Instant,
    batch: std::vec::IntoIter<Bytes>,
    sent: Arc<AtomicU64>,
}

impl Iterator for StreamMessages {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(message) = self.batch.next() {
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.shared.progress.fetch_add(1, Ordering::Relaxed);
                return Some(message);
            }
            let (seq, template) = self.shared.claim(self.start)?;
            let traces_per_request = self.shared.workload.traces_per_request();
            self.batch = template
                .render(self.shared.cfg.prefix, seq, traces_per_request)
                .into_iter();
        }
    }
}

async fn streams(
    shared: Arc<Shared<V1Template>>,
    clients: Vec<RawClient>,
    start: Instant,
) -> Result<LoadResult> {
    let mut workers = JoinSet::new();
    for w in 0..shared.cfg.concurrency.max(1) {
        let mut client = clients[w % clients.len()].clone();
        let shared = Arc::clone(&shared);
        workers.spawn(async move {
            let mut stats = LoadResult::new(Sender::V1WriteSpanStream)?;
            loop {
                let sent = Arc::new(AtomicU64::new(0));
                let messages = StreamMessages {
                    shared: Arc::clone(&shared),
                    start,
                    batch: Vec::new().into_iter(),
                    sent: Arc::clone(&sent),
                };
                let answer = client
                    .client_streaming::<WriteSpanResponse, _>(
                        WRITE_SPAN_STREAM_PATH,
                        futures::stream::iter(messages),
                    )
                    .await;
                let spans = sent.load(Ordering::Relaxed);
                let failed = answer.is_err();
                // No per-span answer: every span of a stream counts as accepted only when the
                // stream's final answer is OK.
                stats.record(spans, None, answer.map(|_| 0));
                // A stream that ended OK used up the workload. One that failed before taking
                // any message would fail again: stop instead of spinning.
                if !failed || spans == 0 {
                    break;
                }
            }
            anyhow::Ok(stats)
        });
    }
    run::join_all(workers, Sender::V1WriteSpanStream).await
}

async fn unary(
    shared: Arc<Shared<V1Template>>,
    clients: Vec<RawClient>,
    start: Instant,
) -> Result<LoadResult> {
    let mut workers = JoinSet::new();
    for w in 0..shared.cfg.concurrency.max(1) {
        let mut client = clients[w % clients.len()].clone();
        let shared = Arc::clone(&shared);
        workers.spawn(async move {
            let mut stats = LoadResult::new(Sender::V1WriteSpan)?;
            let traces_per_request = shared.workload.traces_per_request();
            'requests: while let Some((seq, template)) = shared.claim(start) {
                for message in template.render(shared.cfg.prefix, seq, traces_per_request) {
                    if shared.past_deadline(start) {
                        break 'requests;
                    }
                    let t0 = Instant::now();
                    let answer = client
                        .unary::<WriteSpanResponse>(WRITE_SPAN_PATH, message)
                        .await;
                    let latency = t0.elapsed();
                    if answer.is_ok() {
                        shared.progress.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.record(1, Some(latency), answer.map(|_| 0));
                }
            }
            anyhow::Ok(stats)
        });
    }
    run::join_all(workers, Sender::V1WriteSpan).await
}
