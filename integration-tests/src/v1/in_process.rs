//! The suite through the v1 model in-process: a [`Backend`] written and read through the
//! server's v1 translation (v1 searches as core queries, v1 spans to OTLP and back), with no
//! transport in between, so every backend is certified for v1 clients without a server.

use anyhow::Context as _;
use async_trait::async_trait;
use futures::TryStreamExt as _;
use jaeger_remote_proto::otlp::trace::ResourceSpans;
use jaeger_remote_proto::storage::v1 as proto;
use jaeger_remote_proto::storage::v2 as proto_v2;
use remote_storage_core::v1::from_otlp::{resource_spans_to_v1, spans_to_v1};
use remote_storage_core::v1::requests::{trace_lookup, trace_query};
use remote_storage_core::v1::to_otlp::resource_spans_from_v1;
use remote_storage_core::{Backend, QueryLimits, Tenant, Trace, UnixNanos};

use super::fixtures::trace_through_v1;
use super::wire::{traces_from_chunks, v1_query};
use crate::in_process::InProcessTarget;
use crate::target::{
    DependencyInfo, OperationInfo, OtlpTrace, SuiteTarget, TraceSearch, go_timestamp,
};

/// Runs the suite against a [`Backend`] through the v1 model, as the empty tenant. Services,
/// operations, dependencies and purges have the same shape in both models and go through
/// [`InProcessTarget`].
#[derive(Debug, Clone)]
pub struct V1InProcessTarget {
    same_in_both: InProcessTarget,
    tenant: Tenant,
    limits: QueryLimits,
}

impl V1InProcessTarget {
    /// Targets `backend` with the default query limits.
    pub fn new(backend: Backend) -> Self {
        Self {
            same_in_both: InProcessTarget::new(backend),
            tenant: Tenant::default(),
            limits: QueryLimits::default(),
        }
    }

    fn backend(&self) -> &Backend {
        self.same_in_both.backend()
    }
}

/// What the server streams for stored traces: each trace's spans in the v1 model, one chunk
/// per trace, read back as a v1 client does.
fn read_back(call: &str, traces: &[Trace]) -> anyhow::Result<Vec<OtlpTrace>> {
    let chunks = traces
        .iter()
        .map(|trace| spans_to_v1(&trace.spans))
        .collect();
    traces_from_chunks(call, chunks)
}

#[async_trait]
impl SuiteTarget for V1InProcessTarget {
    fn describe(&self) -> String {
        format!(
            "in-process {} backend through the v1 model",
            self.backend().name
        )
    }

    /// Translated to v1 as a v1 client sends it, then back to OTLP as the server stores it.
    async fn write_traces(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()> {
        let stored = resource_spans_from_v1(resource_spans_to_v1(&resource_spans))
            .context("the v1 spans were refused")?;
        self.same_in_both.write_traces(stored).await
    }

    async fn get_traces(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>> {
        let mut found = Vec::new();
        for trace_id in trace_ids {
            let lookup = trace_lookup(&proto::GetTraceRequest {
                trace_id: trace_id.to_vec(),
                start_time: Some(go_timestamp(None)),
                end_time: Some(go_timestamp(None)),
            })
            .context("GetTrace request refused")?;
            let traces: Vec<Trace> = self
                .backend()
                .traces
                .get_traces(&self.tenant, vec![lookup])
                .await
                .context("get_traces failed")?
                .try_collect()
                .await
                .context("get_traces stream")?;
            found.extend(read_back("GetTrace", &traces)?);
        }
        Ok(found)
    }

    async fn get_services(&self) -> anyhow::Result<Vec<String>> {
        self.same_in_both.get_services().await
    }

    async fn get_operations(
        &self,
        service: &str,
        span_kind: &str,
    ) -> anyhow::Result<Vec<OperationInfo>> {
        self.same_in_both.get_operations(service, span_kind).await
    }

    async fn find_traces(&self, search: &TraceSearch) -> anyhow::Result<Vec<OtlpTrace>> {
        anyhow::ensure!(
            search.filter.is_none(),
            "FindTraces: the v1 API carries no structured filter"
        );
        let query = trace_query(Some(v1_query(search)), self.limits)
            .context("FindTraces request refused")?;
        let traces: Vec<Trace> = self
            .backend()
            .traces
            .find_traces(&self.tenant, query)
            .await
            .context("find_traces failed")?
            .try_collect()
            .await
            .context("find_traces stream")?;
        read_back("FindTraces", &traces)
    }

    async fn find_trace_summaries(
        &self,
        _search: &TraceSearch,
    ) -> anyhow::Result<Option<Vec<proto_v2::TraceSummary>>> {
        // v1 has no summaries: the suite computes them from FindTraces.
        Ok(None)
    }

    async fn capabilities(&self) -> anyhow::Result<Option<proto_v2::SearchCapabilities>> {
        Ok(None)
    }

    async fn get_dependencies(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<DependencyInfo>> {
        self.same_in_both.get_dependencies(start, end).await
    }

    async fn purge(&self) -> anyhow::Result<()> {
        self.same_in_both.purge().await
    }

    /// Each trace after one pass through the v1 model, both ways.
    fn expected_back(&self, written: &OtlpTrace) -> anyhow::Result<OtlpTrace> {
        trace_through_v1(written)
    }
}
