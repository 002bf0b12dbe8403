//! OTLP `TraceService/Export`: validates and stores spans.
//!
//! Invalid spans never sink a batch: the valid ones are stored and the response reports the
//! rest as `partial_success` (count + the first reason, which names the field); spans the store
//! itself refuses while storing the others ([`remote_storage_core::StoreError::Rejected`]) are
//! counted there too.

use std::sync::Arc;

use jaeger_remote_proto::otlp::collector::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::TraceService,
};
use remote_storage_core::TraceStore;
use remote_storage_core::convert::{DecodedSpans, spans_from_resource_spans};
use tonic::{Request, Response, Status};
use tracing::{debug, instrument};

use super::status::store_error_to_status;
use crate::metrics::{RejectReason, ServerMetrics};
use crate::tenancy::recorded_tenant_of;

/// Serves OTLP Export into one backend.
#[derive(Clone)]
pub(crate) struct OtlpTraceService {
    traces: Arc<dyn TraceStore>,
    metrics: Arc<ServerMetrics>,
}

impl OtlpTraceService {
    pub(crate) fn new(traces: Arc<dyn TraceStore>, metrics: Arc<ServerMetrics>) -> Self {
        Self { traces, metrics }
    }
}

#[tonic::async_trait]
impl TraceService for OtlpTraceService {
    #[instrument(skip_all, fields(tenant, spans, rejected))]
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let resource_spans = request.into_inner().resource_spans;
        // Validation walks every span and attribute of a possibly huge batch: keep it off the
        // async workers.
        let DecodedSpans {
            spans,
            rejected,
            first_rejection,
        } = tokio::task::spawn_blocking(move || spans_from_resource_spans(resource_spans))
            .await
            .map_err(|join_error| {
                Status::internal(format!("span conversion did not complete: {join_error}"))
            })?;
        let accepted = u64::try_from(spans.len()).unwrap_or(u64::MAX);
        tracing::Span::current().record("spans", accepted);
        tracing::Span::current().record("rejected", rejected);
        self.metrics
            .spans_received(accepted.saturating_add(rejected));
        if rejected > 0 {
            self.metrics.spans_rejected(RejectReason::Invalid, rejected);
        }
        let mut rejected = rejected;
        let mut first_rejection = first_rejection;
        if !spans.is_empty()
            && let Err(store_error) = self.traces.write_spans(&tenant, spans).await
        {
            // The store kept the rest of the batch: answer like a validation refusal.
            if let Some((refused, reason)) = store_error.rejected_spans() {
                self.metrics
                    .spans_rejected(RejectReason::WriteFailed, refused);
                rejected = rejected.saturating_add(refused);
                first_rejection.get_or_insert_with(|| format!("refused by the store: {reason}"));
            } else {
                self.metrics
                    .spans_rejected(RejectReason::WriteFailed, accepted);
                return Err(store_error_to_status(store_error));
            }
        }
        let partial_success = (rejected > 0).then(|| {
            let error_message = first_rejection.unwrap_or_default();
            debug!(rejected, reason = %error_message, "some spans were rejected");
            ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message,
            }
        });
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}
