//! `jaeger.storage.v2.TraceReader`: a thin adapter from the RPCs to [`TraceStore`].
//!
//! Streams are produced by a spawned task feeding a small bounded channel (see
//! [`super::trace_streaming`]): the task pulls from the backend only as fast as the client
//! reads, and stops as soon as the client is gone.

use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::StreamExt as _;
use jaeger_remote_proto::encoded::EncodedTracesData;
use jaeger_remote_proto::storage::v2::encoded_server::trace_reader_server::TraceReader;
use jaeger_remote_proto::storage::v2::{
    self as proto, FindTraceIDsRequest, FindTraceIDsResponse, FindTraceSummariesRequest,
    FindTraceSummariesResponse, FindTracesRequest, GetOperationsRequest, GetOperationsResponse,
    GetServicesRequest, GetServicesResponse, GetTracesRequest,
};
use remote_storage_core::{
    EncodedTrace, OperationQuery, SummaryStream, Trace, TraceLookup, TraceQuery, TraceStore,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, debug, instrument};

use super::chunking::{ChunkBudget, SummaryBatcher, encoded_trace_chunks, trace_chunks};
use super::status::store_error_to_status;
use super::trace_streaming::{ChunkStream, Chunker, STREAM_CHANNEL_CAPACITY, stream_trace_chunks};
use crate::config::ServerLimits;
use crate::tenancy::recorded_tenant_of;

/// Most summaries in one FindTraceSummaries response chunk.
const SUMMARIES_PER_CHUNK: NonZeroUsize = NonZeroUsize::new(100).unwrap();

/// Serves TraceReader over one backend's [`TraceStore`].
#[derive(Clone)]
pub(crate) struct TraceReaderService {
    traces: Arc<dyn TraceStore>,
    limits: ServerLimits,
}

impl TraceReaderService {
    pub(crate) fn new(traces: Arc<dyn TraceStore>, limits: ServerLimits) -> Self {
        Self { traces, limits }
    }

    fn trace_budget(&self) -> ChunkBudget {
        ChunkBudget {
            max_items: self.limits.max_chunk_spans,
            max_bytes: self.limits.max_chunk_bytes,
        }
    }

    fn summary_budget(&self) -> ChunkBudget {
        ChunkBudget {
            max_items: SUMMARIES_PER_CHUNK,
            max_bytes: self.limits.max_chunk_bytes,
        }
    }
}

#[tonic::async_trait]
impl TraceReader for TraceReaderService {
    type GetTracesStream = ChunkStream<EncodedTracesData>;
    type FindTracesStream = ChunkStream<EncodedTracesData>;
    type FindTraceSummariesStream = ChunkStream<FindTraceSummariesResponse>;

    #[instrument(skip_all, fields(tenant, traces))]
    async fn get_traces(
        &self,
        request: Request<GetTracesRequest>,
    ) -> Result<Response<Self::GetTracesStream>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let lookups =
            TraceLookup::from_proto(request.into_inner()).map_err(store_error_to_status)?;
        tracing::Span::current().record("traces", lookups.len());
        // Only sent on, so the backend may hand over spans already encoded.
        let traces = self
            .traces
            .get_encoded_traces(&tenant, lookups)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(stream_trace_chunks(
            traces,
            EncodedOtlpChunker(self.trace_budget()),
        )))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn get_services(
        &self,
        request: Request<GetServicesRequest>,
    ) -> Result<Response<GetServicesResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let services = self
            .traces
            .get_services(&tenant)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(GetServicesResponse { services }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn get_operations(
        &self,
        request: Request<GetOperationsRequest>,
    ) -> Result<Response<GetOperationsResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let query =
            OperationQuery::from_proto(request.into_inner()).map_err(store_error_to_status)?;
        let operations = self
            .traces
            .get_operations(&tenant, query)
            .await
            .map_err(store_error_to_status)?
            .into_iter()
            .map(|operation| proto::Operation {
                name: operation.name,
                span_kind: operation.span_kind,
            })
            .collect();
        Ok(Response::new(GetOperationsResponse { operations }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let query = TraceQuery::from_proto(request.into_inner().query, self.limits.query)
            .map_err(store_error_to_status)?;
        let traces = self
            .traces
            .find_traces(&tenant, query)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(stream_trace_chunks(
            traces,
            OtlpChunker(self.trace_budget()),
        )))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn find_trace_i_ds(
        &self,
        request: Request<FindTraceIDsRequest>,
    ) -> Result<Response<FindTraceIDsResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let query = TraceQuery::from_proto(request.into_inner().query, self.limits.query)
            .map_err(store_error_to_status)?;
        let trace_ids = self
            .traces
            .find_trace_ids(&tenant, query)
            .await
            .map_err(store_error_to_status)?
            .into_iter()
            .map(|found| proto::FoundTraceId {
                trace_id: found.trace_id.as_bytes().to_vec(),
                start: found.start.map(|start| start.to_proto()),
                end: found.end.map(|end| end.to_proto()),
            })
            .collect();
        Ok(Response::new(FindTraceIDsResponse { trace_ids }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn find_trace_summaries(
        &self,
        request: Request<FindTraceSummariesRequest>,
    ) -> Result<Response<Self::FindTraceSummariesStream>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let query = TraceQuery::from_proto(request.into_inner().query, self.limits.query)
            .map_err(store_error_to_status)?;
        // An unsupporting backend fails here, before any chunk: the client then falls back to
        // FindTraces without duplicating results.
        let summaries = self
            .traces
            .find_trace_summaries(&tenant, query)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(stream_summaries(
            summaries,
            self.summary_budget(),
        )))
    }
}

/// Streams summaries in batches from a spawned task.
fn stream_summaries(
    mut summaries: SummaryStream,
    budget: ChunkBudget,
) -> ChunkStream<FindTraceSummariesResponse> {
    let (sender, receiver) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
    let task = async move {
        let mut batcher = SummaryBatcher::new(budget);
        loop {
            let next = tokio::select! {
                next = summaries.next() => next,
                () = sender.closed() => return debug!("client went away; stream stopped"),
            };
            let summary = match next {
                None => break,
                Some(Ok(summary)) => summary,
                Some(Err(store_error)) => {
                    let _ = sender.send(Err(store_error_to_status(store_error))).await;
                    return;
                }
            };
            if let Some(batch) = batcher.push(summary.to_proto()) {
                let response = FindTraceSummariesResponse { summaries: batch };
                if sender.send(Ok(response)).await.is_err() {
                    return debug!("client went away; stream stopped");
                }
            }
        }
        if let Some(batch) = batcher.finish() {
            let _ = sender
                .send(Ok(FindTraceSummariesResponse { summaries: batch }))
                .await;
        }
    };
    tokio::spawn(task.in_current_span());
    ReceiverStream::new(receiver)
}

/// v2 chunks: encoded `TracesData` within the budget (see [`trace_chunks`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OtlpChunker(pub(crate) ChunkBudget);

impl Chunker for OtlpChunker {
    type Trace = Trace;
    type Chunk = EncodedTracesData;

    fn chunks<'a>(&self, trace: &'a Trace) -> impl Iterator<Item = EncodedTracesData> + Send + 'a {
        trace_chunks(trace, self.0)
    }
}

/// v2 chunks of traces whose spans come encoded: the same bytes as [`OtlpChunker`]'s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodedOtlpChunker(pub(crate) ChunkBudget);

impl Chunker for EncodedOtlpChunker {
    type Trace = EncodedTrace;
    type Chunk = EncodedTracesData;

    fn chunks<'a>(
        &self,
        trace: &'a EncodedTrace,
    ) -> impl Iterator<Item = EncodedTracesData> + Send + 'a {
        encoded_trace_chunks(trace, self.0)
    }
}
