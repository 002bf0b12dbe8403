//! Mode 1: the suite calls a [`Backend`]'s traits directly, with no transport in between.

use anyhow::Context as _;
use async_trait::async_trait;
use futures::TryStreamExt as _;
use jaeger_remote_proto::otlp::trace::ResourceSpans;
use jaeger_remote_proto::storage::v2 as proto;
use remote_storage_core::convert::{resource_spans_from_spans, spans_from_resource_spans};
use remote_storage_core::model::span_kind_from_name;
use remote_storage_core::{
    Backend, DependencyQuery, ErrorKind, OperationQuery, QueryLimits, Tenant, TraceId, TraceLookup,
    TraceQuery, UnixNanos,
};

use crate::target::{
    AttributeEncoding, DependencyInfo, OperationInfo, OtlpTrace, SuiteTarget, TraceSearch,
};

/// Runs the suite against a [`Backend`] in this process, as the empty tenant.
#[derive(Debug, Clone)]
pub struct InProcessTarget {
    backend: Backend,
    tenant: Tenant,
    limits: QueryLimits,
}

impl InProcessTarget {
    /// Targets `backend` with the default query limits.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            tenant: Tenant::default(),
            limits: QueryLimits::default(),
        }
    }

    /// The backend under test.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    fn query(&self, search: &TraceSearch) -> anyhow::Result<TraceQuery> {
        // The same validation the server runs on a request from Jaeger's direct client.
        TraceQuery::from_proto(Some(search.to_proto(AttributeEncoding::Typed)), self.limits)
            .context("query rejected")
    }
}

fn to_otlp(trace: &remote_storage_core::Trace) -> OtlpTrace {
    OtlpTrace::new(resource_spans_from_spans(&trace.spans))
}

#[async_trait]
impl SuiteTarget for InProcessTarget {
    fn describe(&self) -> String {
        format!("in-process {} backend", self.backend.name)
    }

    async fn write_traces(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()> {
        let decoded = spans_from_resource_spans(resource_spans);
        if let Some(reason) = decoded.first_rejection {
            anyhow::bail!(
                "{} span(s) of the batch are invalid: {reason}",
                decoded.rejected
            );
        }
        self.backend
            .traces
            .write_spans(&self.tenant, decoded.spans)
            .await
            .context("write_spans failed")
    }

    async fn get_traces(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>> {
        let lookups = trace_ids
            .iter()
            .map(|trace_id| TraceLookup {
                trace_id: TraceId(*trace_id),
                start: None,
                end: None,
            })
            .collect();
        let stream = self
            .backend
            .traces
            .get_traces(&self.tenant, lookups)
            .await
            .context("get_traces failed")?;
        let traces: Vec<_> = stream.try_collect().await.context("get_traces stream")?;
        Ok(traces.iter().map(to_otlp).collect())
    }

    async fn get_services(&self) -> anyhow::Result<Vec<String>> {
        self.backend
            .traces
            .get_services(&self.tenant)
            .await
            .context("get_services failed")
    }

    async fn get_operations(
        &self,
        service: &str,
        span_kind: &str,
    ) -> anyhow::Result<Vec<OperationInfo>> {
        let span_kind = if span_kind.is_empty() {
            None
        } else {
            Some(
                span_kind_from_name(span_kind)
                    .with_context(|| format!("unknown span kind {span_kind:?}"))?,
            )
        };
        let query = OperationQuery {
            service: service.to_owned(),
            span_kind,
        };
        self.backend
            .traces
            .get_operations(&self.tenant, query)
            .await
            .context("get_operations failed")
    }

    async fn find_traces(&self, search: &TraceSearch) -> anyhow::Result<Vec<OtlpTrace>> {
        let query = self.query(search)?;
        let stream = self
            .backend
            .traces
            .find_traces(&self.tenant, query)
            .await
            .context("find_traces failed")?;
        let traces: Vec<_> = stream.try_collect().await.context("find_traces stream")?;
        Ok(traces.iter().map(to_otlp).collect())
    }

    async fn find_trace_summaries(
        &self,
        search: &TraceSearch,
    ) -> anyhow::Result<Option<Vec<proto::TraceSummary>>> {
        let query = self.query(search)?;
        let stream = match self
            .backend
            .traces
            .find_trace_summaries(&self.tenant, query)
            .await
        {
            Ok(stream) => stream,
            Err(error) if error.kind() == ErrorKind::Unsupported => return Ok(None),
            Err(error) => return Err(error).context("find_trace_summaries failed"),
        };
        let summaries: Vec<_> = stream
            .try_collect()
            .await
            .context("find_trace_summaries stream")?;
        Ok(Some(
            summaries.iter().map(|summary| summary.to_proto()).collect(),
        ))
    }

    async fn capabilities(&self) -> anyhow::Result<Option<proto::SearchCapabilities>> {
        Ok(self.backend.capabilities.to_proto().search)
    }

    async fn get_dependencies(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<DependencyInfo>> {
        let links = self
            .backend
            .dependencies
            .get_dependencies(&self.tenant, DependencyQuery { start, end })
            .await
            .context("get_dependencies failed")?;
        let source = self.backend.capabilities.dependency_source;
        Ok(links
            .into_iter()
            .map(|link| DependencyInfo {
                parent: link.parent,
                child: link.child,
                call_count: link.call_count,
                source: source.to_owned(),
            })
            .collect())
    }

    async fn purge(&self) -> anyhow::Result<()> {
        self.backend.purger.purge().await.context("purge failed")
    }
}
