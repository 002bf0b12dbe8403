//! `PluginCapabilities.Capabilities`: what Jaeger's v1 client asks once, at writer set-up.

use jaeger_remote_proto::storage::v1::{
    CapabilitiesRequest, CapabilitiesResponse, plugin_capabilities_server::PluginCapabilities,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::tenancy::tenant_of;

/// Answers that `WriteSpanStream` works (so Jaeger's collector streams) and that the
/// deprecated archive services are not served.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PluginCapabilitiesService;

#[tonic::async_trait]
impl PluginCapabilities for PluginCapabilitiesService {
    #[instrument(skip_all)]
    async fn capabilities(
        &self,
        request: Request<CapabilitiesRequest>,
    ) -> Result<Response<CapabilitiesResponse>, Status> {
        // Jaeger's client asks without a tenant. With tenancy on, the guard refuses the call
        // and the client falls back to one WriteSpan per span: its stream pool ignores
        // tenants, so streaming could file one tenant's spans under another's.
        tenant_of(&request)?;
        #[allow(deprecated)]
        let answer = CapabilitiesResponse {
            archive_span_reader: false,
            archive_span_writer: false,
            streaming_span_writer: true,
        };
        Ok(Response::new(answer))
    }
}
