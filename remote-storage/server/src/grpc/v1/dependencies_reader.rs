//! `DependenciesReaderPlugin.GetDependencies`: the v2 dependency reader in the v1 shape.

use std::sync::Arc;

use jaeger_remote_proto::api_v2::DependencyLink;
use jaeger_remote_proto::storage::v1::{
    GetDependenciesRequest, GetDependenciesResponse,
    dependencies_reader_plugin_server::DependenciesReaderPlugin,
};
use remote_storage_core::DependencyStore;
use remote_storage_core::v1::requests::dependency_query;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::grpc::status::store_error_to_status;
use crate::tenancy::recorded_tenant_of;

/// Serves DependenciesReaderPlugin.
#[derive(Clone)]
pub(crate) struct DependenciesReaderService {
    dependencies: Arc<dyn DependencyStore>,
    /// The backend's declared link source ([`remote_storage_core::Capabilities`]).
    source: &'static str,
}

impl DependenciesReaderService {
    pub(crate) fn new(dependencies: Arc<dyn DependencyStore>, source: &'static str) -> Self {
        Self {
            dependencies,
            source,
        }
    }
}

#[tonic::async_trait]
impl DependenciesReaderPlugin for DependenciesReaderService {
    #[instrument(skip_all, fields(tenant))]
    async fn get_dependencies(
        &self,
        request: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let source = self.source;
        let query = dependency_query(request.into_inner()).map_err(store_error_to_status)?;
        let dependencies = self
            .dependencies
            .get_dependencies(&tenant, query)
            .await
            .map_err(store_error_to_status)?
            .into_iter()
            .map(|link| DependencyLink {
                parent: link.parent,
                child: link.child,
                call_count: link.call_count,
                source: source.to_owned(),
            })
            .collect();
        Ok(Response::new(GetDependenciesResponse { dependencies }))
    }
}
