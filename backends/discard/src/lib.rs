//! Discard backend: the decode-only baseline of the ingest benchmark.
//!
//! `write_spans` drops the spans it is given and every read answers empty, so a load against a
//! server on this backend measures receiving, decoding and converting OTLP Export requests and
//! nothing else: the ceiling a storing backend's ingest is measured against. It is not a store;
//! it never passes the conformance suite.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use remote_storage_core::{
    Backend, Capabilities, DependencyLink, DependencyQuery, DependencyStore, FoundTraceId,
    Operation, OperationQuery, Purger, Span, StoreLifecycle, StoreResult, Tenant, TraceLookup,
    TraceQuery, TraceStore, TraceStream,
};

/// Backend name used in logs and metrics.
pub const NAME: &str = "discard";

/// What the discard backend reports: it answers every search (with nothing), so it declares
/// every shape. It is not a store: the write-related fields describe nothing it keeps.
pub const CAPABILITIES: Capabilities = Capabilities::FULL;

/// Opens the discard backend.
pub fn open() -> Backend {
    Backend::from_store(NAME, CAPABILITIES, Arc::new(DiscardStore))
}

/// Drops every write and answers every read with nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardStore;

#[async_trait]
impl TraceStore for DiscardStore {
    async fn write_spans(&self, _tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        drop(spans);
        Ok(())
    }

    async fn get_traces(
        &self,
        _tenant: &Tenant,
        _lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        Ok(futures::stream::empty().boxed())
    }

    async fn get_services(&self, _tenant: &Tenant) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    async fn get_operations(
        &self,
        _tenant: &Tenant,
        _query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        Ok(Vec::new())
    }

    async fn find_trace_ids(
        &self,
        _tenant: &Tenant,
        _query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl DependencyStore for DiscardStore {
    async fn get_dependencies(
        &self,
        _tenant: &Tenant,
        _query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl Purger for DiscardStore {
    async fn purge(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl StoreLifecycle for DiscardStore {}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use remote_storage_core::testing::span;

    use super::*;

    #[tokio::test]
    async fn writes_are_dropped_and_reads_are_empty() {
        let backend = open();
        let tenant = Tenant::default();
        let written = span(1, 1, None, "svc", "op", 100, 200, false);
        let trace_id = written.trace_id();
        backend
            .traces
            .write_spans(&tenant, vec![written])
            .await
            .unwrap();
        let lookups = vec![TraceLookup {
            trace_id,
            start: None,
            end: None,
        }];
        let traces = backend.traces.get_traces(&tenant, lookups).await.unwrap();
        assert_eq!(traces.count().await, 0);
        assert!(
            backend
                .traces
                .get_services(&tenant)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
