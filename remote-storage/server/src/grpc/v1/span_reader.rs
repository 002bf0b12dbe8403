//! `SpanReaderPlugin`: the v1 reads, over the same [`TraceStore`] as the v2 TraceReader.
//!
//! Streams come from [`stream_trace_chunks`], as in the v2 reader: the backend is read only as
//! fast as the client takes chunks, and not at all once it is gone.

use std::sync::Arc;

use futures::{StreamExt as _, stream};
use jaeger_remote_proto::storage::v1::{
    FindTraceIDsRequest, FindTraceIDsResponse, FindTracesRequest, GetOperationsRequest,
    GetOperationsResponse, GetServicesRequest, GetServicesResponse, GetTraceRequest, Operation,
    SpansResponseChunk, span_reader_plugin_server::SpanReaderPlugin,
};
use remote_storage_core::TraceStore;
use remote_storage_core::v1::requests::{operation_query, trace_lookup, trace_query};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::chunks::V1Chunker;
use crate::config::ServerLimits;
use crate::grpc::chunking::ChunkBudget;
use crate::grpc::status::store_error_to_status;
use crate::grpc::trace_streaming::{self, stream_trace_chunks};
use crate::tenancy::recorded_tenant_of;

/// Jaeger's v1 client recognises an unknown trace only by this exact message (it then answers
/// "trace not found" itself instead of an error).
pub(crate) const TRACE_NOT_FOUND: &str = "trace not found";

type ChunkStream = trace_streaming::ChunkStream<SpansResponseChunk>;

/// Serves SpanReaderPlugin over one backend's [`TraceStore`].
#[derive(Clone)]
pub(crate) struct SpanReaderService {
    traces: Arc<dyn TraceStore>,
    limits: ServerLimits,
}

impl SpanReaderService {
    pub(crate) fn new(traces: Arc<dyn TraceStore>, limits: ServerLimits) -> Self {
        Self { traces, limits }
    }

    fn budget(&self) -> ChunkBudget {
        ChunkBudget {
            max_items: self.limits.max_chunk_spans,
            max_bytes: self.limits.max_chunk_bytes,
        }
    }
}

#[tonic::async_trait]
impl SpanReaderPlugin for SpanReaderService {
    type GetTraceStream = ChunkStream;
    type FindTracesStream = ChunkStream;

    #[instrument(skip_all, fields(tenant, trace_id))]
    async fn get_trace(
        &self,
        request: Request<GetTraceRequest>,
    ) -> Result<Response<Self::GetTraceStream>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let lookup = trace_lookup(request.get_ref()).map_err(store_error_to_status)?;
        tracing::Span::current().record("trace_id", tracing::field::display(lookup.trace_id));
        let mut traces = self
            .traces
            .get_traces(&tenant, vec![lookup])
            .await
            .map_err(store_error_to_status)?;
        // The answer for an unknown trace must come before any chunk.
        let first = match traces.next().await {
            Some(Ok(trace)) if !trace.spans.is_empty() => trace,
            Some(Err(store_error)) => return Err(store_error_to_status(store_error)),
            Some(Ok(_)) | None => return Err(Status::not_found(TRACE_NOT_FOUND)),
        };
        let traces = stream::iter([Ok(first)]).chain(traces).boxed();
        Ok(Response::new(stream_trace_chunks(
            traces,
            V1Chunker(self.budget()),
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
        let query = operation_query(request.into_inner()).map_err(store_error_to_status)?;
        let operations = self
            .traces
            .get_operations(&tenant, query)
            .await
            .map_err(store_error_to_status)?;
        // The deprecated name list, for clients older than the typed operations: each name
        // once, in the order the typed list first has it.
        let mut operation_names: Vec<String> = Vec::with_capacity(operations.len());
        for operation in &operations {
            if !operation_names.contains(&operation.name) {
                operation_names.push(operation.name.clone());
            }
        }
        let operations = operations
            .into_iter()
            .map(|operation| Operation {
                name: operation.name,
                span_kind: operation.span_kind,
            })
            .collect();
        Ok(Response::new(GetOperationsResponse {
            operation_names,
            operations,
        }))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let query = trace_query(request.into_inner().query, self.limits.query)
            .map_err(store_error_to_status)?;
        let traces = self
            .traces
            .find_traces(&tenant, query)
            .await
            .map_err(store_error_to_status)?;
        Ok(Response::new(stream_trace_chunks(
            traces,
            V1Chunker(self.budget()),
        )))
    }

    #[instrument(skip_all, fields(tenant))]
    async fn find_trace_i_ds(
        &self,
        request: Request<FindTraceIDsRequest>,
    ) -> Result<Response<FindTraceIDsResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let query = trace_query(request.into_inner().query, self.limits.query)
            .map_err(store_error_to_status)?;
        let trace_ids = self
            .traces
            .find_trace_ids(&tenant, query)
            .await
            .map_err(store_error_to_status)?
            .into_iter()
            .map(|found| found.trace_id.as_bytes().to_vec())
            .collect();
        Ok(Response::new(FindTraceIDsResponse { trace_ids }))
    }
}
