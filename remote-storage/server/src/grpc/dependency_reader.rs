//! `jaeger.storage.v2.DependencyReader` over a backend's [`DependencyStore`].

use std::sync::Arc;

use jaeger_remote_proto::storage::v2::{
    Dependency, GetDependenciesRequest, GetDependenciesResponse,
    dependency_reader_server::DependencyReader,
};
use remote_storage_core::{DependencyQuery, DependencyStore};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::status::store_error_to_status;
use crate::tenancy::recorded_tenant_of;

/// Serves DependencyReader.
#[derive(Clone)]
pub(crate) struct DependencyReaderService {
    dependencies: Arc<dyn DependencyStore>,
    /// The backend's declared link source ([`remote_storage_core::Capabilities`]).
    source: &'static str,
}

impl DependencyReaderService {
    pub(crate) fn new(dependencies: Arc<dyn DependencyStore>, source: &'static str) -> Self {
        Self {
            dependencies,
            source,
        }
    }
}

#[tonic::async_trait]
impl DependencyReader for DependencyReaderService {
    #[instrument(skip_all, fields(tenant))]
    async fn get_dependencies(
        &self,
        request: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        let tenant = recorded_tenant_of(&request)?;
        let source = self.source;
        let query =
            DependencyQuery::from_proto(request.into_inner()).map_err(store_error_to_status)?;
        let dependencies = self
            .dependencies
            .get_dependencies(&tenant, query)
            .await
            .map_err(store_error_to_status)?
            .into_iter()
            .map(|link| Dependency {
                parent: link.parent,
                child: link.child,
                call_count: link.call_count,
                source: source.to_owned(),
            })
            .collect();
        Ok(Response::new(GetDependenciesResponse { dependencies }))
    }
}
