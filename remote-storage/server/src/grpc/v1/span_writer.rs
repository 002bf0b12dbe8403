//! `SpanWriterPlugin` (one span per call) and `StreamingSpanWriterPlugin` (a long-lived stream
//! of spans): v1 spans translated to OTLP and stored like an Export.
//!
//! A stream has no per-span answer, so a malformed span never takes its neighbours down: the
//! valid spans are stored as they arrive (readable before the stream ends), the refused ones
//! are counted, and the answer at half-close is `INVALID_ARGUMENT` saying how many were refused
//! and why the first was. A failing backend ends the stream at once with its status, so the
//! client's next send fails instead of spans being dropped unseen.

use std::sync::Arc;

use futures::StreamExt as _;
use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::storage::v1::span_writer_plugin_server::SpanWriterPlugin;
use jaeger_remote_proto::storage::v1::streaming_span_writer_plugin_server::StreamingSpanWriterPlugin;
use jaeger_remote_proto::storage::v1::{
    CloseWriterRequest, CloseWriterResponse, WriteSpanRequest, WriteSpanResponse,
};
use remote_storage_core::convert::DecodedSpans;
use remote_storage_core::v1::to_otlp::V1Batch;
use remote_storage_core::{StoreError, Tenant, TraceStore};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, instrument, warn};

use crate::grpc::status::store_error_to_status;
use crate::metrics::{RejectReason, ServerMetrics};
use crate::tenancy::{recorded_tenant_of, tenant_of};

/// Most stream messages translated and stored together: whatever has already arrived, up to
/// this many, so a busy stream is written in batches and a quiet one span by span.
const STREAM_BATCH_SPANS: usize = 1024;

/// Batches at least this large are translated on the blocking pool, off the async workers.
const BLOCKING_TRANSLATION_SPANS: usize = 64;

/// Serves both v1 writer services into one backend.
#[derive(Clone)]
pub(crate) struct SpanWriterService {
    traces: Arc<dyn TraceStore>,
    metrics: Arc<ServerMetrics>,
}

impl SpanWriterService {
    pub(crate) fn new(traces: Arc<dyn TraceStore>, metrics: Arc<ServerMetrics>) -> Self {
        Self { traces, metrics }
    }

    /// Stores translated spans; a backend failure is counted and returned as its status.
    async fn store(&self, tenant: &Tenant, decoded: DecodedSpans) -> Result<(), Status> {
        if decoded.spans.is_empty() {
            return Ok(());
        }
        let count = u64::try_from(decoded.spans.len()).unwrap_or(u64::MAX);
        if let Err(store_error) = self.traces.write_spans(tenant, decoded.spans).await {
            self.metrics
                .spans_rejected(RejectReason::WriteFailed, count);
            return Err(store_error_to_status(store_error));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl SpanWriterPlugin for SpanWriterService {
    #[instrument(skip_all, fields(tenant))]
    async fn write_span(
        &self,
        request: Request<WriteSpanRequest>,
    ) -> Result<Response<WriteSpanResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        self.metrics.spans_received(1);
        let mut batch = V1Batch::new();
        if let Err(refusal) = add_message(&mut batch, request.into_inner().span) {
            self.metrics.spans_rejected(RejectReason::Invalid, 1);
            return Err(store_error_to_status(refusal));
        }
        self.store(&tenant, batch.into_spans()).await?;
        Ok(Response::new(WriteSpanResponse {}))
    }

    /// Nothing to release: every write is complete when it returns. Answers OK (Jaeger's
    /// reference answers UNIMPLEMENTED, which its client ignores) and affects no other client.
    #[instrument(skip_all)]
    async fn close(
        &self,
        request: Request<CloseWriterRequest>,
    ) -> Result<Response<CloseWriterResponse>, Status> {
        tenant_of(&request)?;
        debug!("a v1 writer closed");
        Ok(Response::new(CloseWriterResponse {}))
    }
}

/// Adds the span of one request message; a message without a span is refused.
fn add_message(batch: &mut V1Batch, span: Option<v1::Span>) -> Result<(), StoreError> {
    match span {
        Some(span) => batch.push(span),
        None => Err(StoreError::invalid_argument("span is required")),
    }
}

/// What a stream refused.
#[derive(Debug, Default)]
struct Refusals {
    count: u64,
    first: Option<String>,
}

impl Refusals {
    fn merge(&mut self, later: Refusals) {
        self.count += later.count;
        if self.first.is_none() {
            self.first = later.first;
        }
    }
}

/// Translates one batch of stream messages (numbered within the stream) and says which were
/// refused.
fn translate(spans: Vec<(u64, Option<v1::Span>)>) -> (DecodedSpans, Refusals) {
    let mut batch = V1Batch::new();
    let mut refusals = Refusals::default();
    for (message_index, span) in spans {
        if let Err(refusal) = add_message(&mut batch, span) {
            refusals.count += 1;
            refusals
                .first
                .get_or_insert_with(|| format!("message #{message_index}: {refusal}"));
        }
    }
    (batch.into_spans(), refusals)
}

#[tonic::async_trait]
impl StreamingSpanWriterPlugin for SpanWriterService {
    #[instrument(skip_all, fields(tenant, spans, rejected))]
    async fn write_span_stream(
        &self,
        request: Request<Streaming<WriteSpanRequest>>,
    ) -> Result<Response<WriteSpanResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let mut messages = request.into_inner().ready_chunks(STREAM_BATCH_SPANS);
        let mut received: u64 = 0;
        let mut refusals = Refusals::default();
        while let Some(items) = messages.next().await {
            let mut spans = Vec::with_capacity(items.len());
            let mut broken: Option<Status> = None;
            for item in items {
                match item {
                    Ok(message) => {
                        spans.push((received, message.span));
                        received += 1;
                    }
                    Err(status) => {
                        broken = Some(status);
                        break;
                    }
                }
            }
            self.metrics
                .spans_received(u64::try_from(spans.len()).unwrap_or(u64::MAX));
            let (decoded, batch_refusals) = if spans.len() >= BLOCKING_TRANSLATION_SPANS {
                tokio::task::spawn_blocking(move || translate(spans))
                    .await
                    .map_err(|join_error| {
                        Status::internal(format!("span translation did not complete: {join_error}"))
                    })?
            } else {
                translate(spans)
            };
            if batch_refusals.count > 0 {
                self.metrics
                    .spans_rejected(RejectReason::Invalid, batch_refusals.count);
            }
            refusals.merge(batch_refusals);
            self.store(&tenant, decoded).await?;
            if let Some(status) = broken {
                // The stream broke (client gone, malformed frame): what arrived before is stored.
                debug!(code = ?status.code(), "v1 span stream ended with an error");
                return Err(status);
            }
        }
        tracing::Span::current().record("spans", received);
        tracing::Span::current().record("rejected", refusals.count);
        if let Some(first) = refusals.first {
            warn!(refused = refusals.count, received, reason = %first, "v1 span stream refused spans");
            return Err(Status::invalid_argument(format!(
                "{} of {received} span(s) refused and not stored (the others were stored); \
                 first: {first}",
                refusals.count
            )));
        }
        Ok(Response::new(WriteSpanResponse {}))
    }
}
