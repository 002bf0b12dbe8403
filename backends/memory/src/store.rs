//! The store traits over per-tenant [`TenantStore`]s.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use parking_lot::RwLock;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::{
    DependencyLink, DependencyQuery, DependencyStore, EncodedTraceStream, FoundTraceId, Operation,
    OperationQuery, Purger, Span, StoreError, StoreLifecycle, StoreResult, StoreStats, Tenant,
    TraceId, TraceLookup, TraceQuery, TraceStore, TraceStream,
};

use crate::MemoryConfig;
use crate::tenant::TenantStore;

type SharedTenant = Arc<RwLock<TenantStore>>;

/// A bounded in-memory trace store, one `TenantStore` per tenant.
#[derive(Debug)]
pub struct MemoryStore {
    config: MemoryConfig,
    tenants: RwLock<HashMap<Tenant, SharedTenant>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(config: MemoryConfig) -> Self {
        Self {
            config,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    fn existing(&self, tenant: &Tenant) -> Option<SharedTenant> {
        self.tenants.read().get(tenant).cloned()
    }

    fn existing_or_new(&self, tenant: &Tenant) -> SharedTenant {
        if let Some(found) = self.existing(tenant) {
            return found;
        }
        let mut tenants = self.tenants.write();
        Arc::clone(
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(RwLock::new(TenantStore::new(self.config.max_traces)))),
        )
    }
}

/// Runs lock-holding work that may take more than a few hundred microseconds off the async
/// runtime's worker threads.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::internal("memory store task failed", error))
}

impl MemoryStore {
    /// Reads the traces of `lookups` in request order with `read`, off the runtime, skipping
    /// unknown IDs.
    async fn read_traces<T: Send + 'static>(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
        read: fn(&TenantStore, &TraceId) -> StoreResult<Option<T>>,
    ) -> StoreResult<BoxStream<'static, StoreResult<T>>> {
        let Some(store) = self.existing(tenant) else {
            return Ok(futures::stream::empty().boxed());
        };
        let traces = off_runtime(move || {
            let store = store.read();
            lookups
                .iter()
                .filter_map(|lookup| read(&store, &lookup.trace_id).transpose())
                .collect::<Vec<_>>()
        })
        .await?;
        Ok(futures::stream::iter(traces).boxed())
    }
}

#[async_trait]
impl TraceStore for MemoryStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let store = self.existing_or_new(tenant);
        off_runtime(move || store.write().write(&spans)).await?
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        self.read_traces(tenant, lookups, TenantStore::trace).await
    }

    /// Spans are written as OTLP bytes straight from their compact form: no model span, no
    /// `String` per attribute.
    async fn get_encoded_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<EncodedTraceStream> {
        self.read_traces(tenant, lookups, TenantStore::encoded_trace)
            .await
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        Ok(self
            .existing(tenant)
            .map(|store| store.read().services())
            .unwrap_or_default())
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        let kind = query.span_kind.map(span_kind_name);
        Ok(self
            .existing(tenant)
            .map(|store| store.read().operations(&query.service, kind))
            .unwrap_or_default())
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let Some(store) = self.existing(tenant) else {
            return Ok(Vec::new());
        };
        off_runtime(move || store.read().find_trace_ids(&query)).await?
    }

    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        let Some(store) = self.existing(tenant) else {
            return Ok(futures::stream::empty().boxed());
        };
        let traces = off_runtime(move || {
            let store = store.read();
            match store.find_trace_ids(&query) {
                Ok(found) => found
                    .iter()
                    .filter_map(|found| store.trace(&found.trace_id).transpose())
                    .collect::<Vec<_>>(),
                Err(error) => vec![Err(error)],
            }
        })
        .await?;
        Ok(futures::stream::iter(traces).boxed())
    }
}

#[async_trait]
impl DependencyStore for MemoryStore {
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let Some(store) = self.existing(tenant) else {
            return Ok(Vec::new());
        };
        off_runtime(move || store.read().dependencies(&query)).await
    }
}

#[async_trait]
impl Purger for MemoryStore {
    async fn purge(&self) -> StoreResult<()> {
        self.tenants.write().clear();
        Ok(())
    }
}

#[async_trait]
impl StoreLifecycle for MemoryStore {
    fn stats(&self) -> Option<StoreStats> {
        let tenants = self.tenants.read();
        let mut stats = StoreStats::default();
        for store in tenants.values() {
            let store = store.read();
            stats.traces += u64::try_from(store.trace_count()).unwrap_or(u64::MAX);
            stats.spans += u64::try_from(store.span_count()).unwrap_or(u64::MAX);
        }
        Some(stats)
    }
}
