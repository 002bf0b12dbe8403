//! `jaeger.storage.v2.Capabilities`: the backend's fixed answer, stable for the process
//! lifetime (Jaeger's client caches it per connection).

use jaeger_remote_proto::storage::v2::{
    GetCapabilitiesRequest, GetCapabilitiesResponse, capabilities_server::Capabilities,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::tenancy::tenant_of;

/// Serves Capabilities.
#[derive(Clone)]
pub(crate) struct CapabilitiesService {
    answer: GetCapabilitiesResponse,
}

impl CapabilitiesService {
    pub(crate) fn new(capabilities: remote_storage_core::Capabilities) -> Self {
        Self {
            answer: capabilities.to_proto(),
        }
    }
}

#[tonic::async_trait]
impl Capabilities for CapabilitiesService {
    #[instrument(skip_all)]
    async fn get_capabilities(
        &self,
        request: Request<GetCapabilitiesRequest>,
    ) -> Result<Response<GetCapabilitiesResponse>, Status> {
        // The answer does not depend on the tenant, but the guard still applies.
        tenant_of(&request)?;
        Ok(Response::new(self.answer.clone()))
    }
}
