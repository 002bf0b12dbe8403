//! `jaeger.storage.v2.TraceReader`: a thin adapter from the RPCs to [`TraceStore`].
//!
//! Streams are produced by a spawned task feeding a small bounded channel: the task pulls
//! traces from the backend only as fast as the client reads, and stops as soon as the client
//! is gone.

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
    OperationQuery, SummaryStream, TraceLookup, TraceQuery, TraceStore, TraceStream,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, debug, instrument};

use super::chunking::{ChunkBudget, SummaryBatcher, trace_chunks};
use super::status::store_error_to_status;
use crate::config::ServerLimits;
use crate::tenancy::tenant_of;

/// Chunks buffered ahead of the client: enough to overlap encoding with sending, small enough
/// that a slow client holds back the backend instead of filling memory.
const STREAM_CHANNEL_CAPACITY: usize = 2;

/// Most summaries in one FindTraceSummaries response chunk.
const SUMMARIES_PER_CHUNK: NonZeroUsize = NonZeroUsize::new(100).unwrap();

/// Items of a streamed response.
type ChunkStream<T> = ReceiverStream<Result<T, Status>>;

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
        let tenant = tenant_of(&request)?;
        tracing::Span::current().record("tenant", tenant.name());
        let lookups =
            TraceLookup::from_proto(request.into_inner()).map_err(store_error_to_status)?;
        tracing::Span::current().record("traces", lookups.len());
        let traces = self
            .traces
            .get_traces(&tenant, lookups)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(stream_traces(traces, self.trace_budget())))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn get_services(
        &self,
        request: Request<GetServicesRequest>,
    ) -> Result<Response<GetServicesResponse>, Status> {
        let tenant = tenant_of(&request)?;
        tracing::Span::current().record("tenant", tenant.name());
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
        let tenant = tenant_of(&request)?;
        tracing::Span::current().record("tenant", tenant.name());
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
        let tenant = tenant_of(&request)?;
        tracing::Span::current().record("tenant", tenant.name());
        let query = TraceQuery::from_proto(request.into_inner().query, self.limits.query)
            .map_err(store_error_to_status)?;
        let traces = self
            .traces
            .find_traces(&tenant, query)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(stream_traces(traces, self.trace_budget())))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn find_trace_i_ds(
        &self,
        request: Request<FindTraceIDsRequest>,
    ) -> Result<Response<FindTraceIDsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        tracing::Span::current().record("tenant", tenant.name());
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
        let tenant = tenant_of(&request)?;
        tracing::Span::current().record("tenant", tenant.name());
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

/// Streams whole traces as budgeted chunks from a spawned task.
fn stream_traces(mut traces: TraceStream, budget: ChunkBudget) -> ChunkStream<EncodedTracesData> {
    let (sender, receiver) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
    let task = async move {
        loop {
            // Waiting on the backend also watches the client, so a hung-up client stops a
            // slow search at once.
            let next = tokio::select! {
                next = traces.next() => next,
                () = sender.closed() => return debug!("client went away; stream stopped"),
            };
            let trace = match next {
                None => return,
                Some(Ok(trace)) => trace,
                Some(Err(store_error)) => {
                    let _ = sender.send(Err(store_error_to_status(store_error))).await;
                    return;
                }
            };
            for chunk in trace_chunks(&trace, budget) {
                if sender.send(Ok(chunk)).await.is_err() {
                    return debug!("client went away; stream stopped");
                }
            }
        }
    };
    tokio::spawn(task.in_current_span());
    ReceiverStream::new(receiver)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::stream;
    use remote_storage_core::testing::{span, trace_of};
    use remote_storage_core::{StoreError, StoreResult, Trace};
    use tokio::sync::oneshot;
    use tonic::Code;

    use super::*;

    /// Fires when dropped, i.e. when the producing task let go of the backend stream.
    struct DropSignal(Option<oneshot::Sender<()>>);

    impl Drop for DropSignal {
        fn drop(&mut self) {
            if let Some(sender) = self.0.take() {
                let _ = sender.send(());
            }
        }
    }

    fn budget() -> ChunkBudget {
        ChunkBudget {
            max_items: NonZeroUsize::new(2).unwrap(),
            max_bytes: NonZeroUsize::new(1 << 20).unwrap(),
        }
    }

    /// An endless backend stream holding `signal`.
    fn endless_traces(signal: DropSignal) -> TraceStream {
        stream::repeat_with(move || {
            let _held = &signal;
            Ok(trace_of(vec![span(1, 1, None, "svc", "op", 1, 2, false)]))
        })
        .boxed()
    }

    #[tokio::test]
    async fn the_producer_stops_when_the_client_goes_away() {
        let (sender, dropped) = oneshot::channel();
        let mut chunks = stream_traces(endless_traces(DropSignal(Some(sender))), budget());
        assert!(chunks.next().await.unwrap().is_ok());
        drop(chunks);
        tokio::time::timeout(Duration::from_secs(10), dropped)
            .await
            .expect("the producer task stopped")
            .unwrap();
    }

    #[tokio::test]
    async fn a_producer_waiting_on_the_backend_also_stops() {
        let (sender, dropped) = oneshot::channel();
        let signal = DropSignal(Some(sender));
        let silent: TraceStream = stream::pending::<StoreResult<Trace>>()
            .map(move |item| {
                let _held = &signal;
                item
            })
            .boxed();
        drop(stream_traces(silent, budget()));
        tokio::time::timeout(Duration::from_secs(10), dropped)
            .await
            .expect("the producer task stopped")
            .unwrap();
    }

    #[tokio::test]
    async fn traces_are_chunked_and_backend_errors_end_the_stream() {
        let three_spans = trace_of(vec![
            span(1, 1, None, "svc", "a", 1, 2, false),
            span(1, 2, None, "svc", "b", 1, 2, false),
            span(1, 3, None, "svc", "c", 1, 2, false),
        ]);
        let items: Vec<StoreResult<Trace>> = vec![
            Ok(three_spans),
            Err(StoreError::unavailable("backend gone", "connection reset")),
            Ok(trace_of(vec![span(
                2, 1, None, "svc", "never", 1, 2, false,
            )])),
        ];
        let received: Vec<Result<EncodedTracesData, Status>> =
            stream_traces(stream::iter(items).boxed(), budget())
                .collect()
                .await;
        assert_eq!(
            received.len(),
            3,
            "two chunks, then the error, then nothing"
        );
        assert!(received[0].is_ok() && received[1].is_ok());
        let status = received[2].as_ref().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
}
