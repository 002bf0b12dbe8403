//! Cross-API runs: the suite writing through one API and reading through another (e.g. v1
//! writes read through v2), so a server proves that both APIs see one data set.

use async_trait::async_trait;
use jaeger_remote_proto::otlp::trace::ResourceSpans;
use jaeger_remote_proto::storage::v2 as proto;
use remote_storage_core::UnixNanos;

use crate::target::{DependencyInfo, OperationInfo, OtlpTrace, SuiteTarget, TraceSearch};
use std::sync::Arc;

/// Writes through `writes`, reads (and purges) through `reads`.
pub struct CrossApiTarget {
    writes: Arc<dyn SuiteTarget>,
    reads: Arc<dyn SuiteTarget>,
}

impl CrossApiTarget {
    /// Combines two targets of the same server.
    pub fn new(writes: Arc<dyn SuiteTarget>, reads: Arc<dyn SuiteTarget>) -> Self {
        Self { writes, reads }
    }
}

impl std::fmt::Debug for CrossApiTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[async_trait]
impl SuiteTarget for CrossApiTarget {
    fn describe(&self) -> String {
        format!(
            "writes: {}; reads: {}",
            self.writes.describe(),
            self.reads.describe()
        )
    }

    async fn write_traces(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()> {
        self.writes.write_traces(resource_spans).await
    }

    async fn get_traces(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>> {
        self.reads.get_traces(trace_ids).await
    }

    async fn get_services(&self) -> anyhow::Result<Vec<String>> {
        self.reads.get_services().await
    }

    async fn get_operations(
        &self,
        service: &str,
        span_kind: &str,
    ) -> anyhow::Result<Vec<OperationInfo>> {
        self.reads.get_operations(service, span_kind).await
    }

    async fn find_traces(&self, search: &TraceSearch) -> anyhow::Result<Vec<OtlpTrace>> {
        self.reads.find_traces(search).await
    }

    async fn find_trace_summaries(
        &self,
        search: &TraceSearch,
    ) -> anyhow::Result<Option<Vec<proto::TraceSummary>>> {
        self.reads.find_trace_summaries(search).await
    }

    async fn capabilities(&self) -> anyhow::Result<Option<proto::SearchCapabilities>> {
        self.reads.capabilities().await
    }

    async fn get_dependencies(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<DependencyInfo>> {
        self.reads.get_dependencies(start, end).await
    }

    async fn purge(&self) -> anyhow::Result<()> {
        self.reads.purge().await
    }

    /// Stored as the writer's model keeps it, then read through the reader's model.
    fn expected_back(&self, written: &OtlpTrace) -> anyhow::Result<OtlpTrace> {
        self.reads
            .expected_back(&self.writes.expected_back(written)?)
    }
}
