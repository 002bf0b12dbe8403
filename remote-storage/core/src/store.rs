//! The traits every backend implements. Their docs are the contract the conformance suite
//! (`storage-conformance`) checks.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;

use crate::admission::AdmittedStore;
use crate::capabilities::Capabilities;
use crate::encoded::{EncodedTrace, EncodedTraceStream};
use crate::error::StoreResult;
use crate::ids::TraceId;
use crate::model::{DependencyLink, Operation, Span, Trace};
use crate::query::{DependencyQuery, OperationQuery, TraceLookup, TraceQuery};
use crate::summary::TraceSummary;
use crate::time::UnixNanos;

/// Stream of whole traces, produced lazily by a backend.
pub type TraceStream = BoxStream<'static, StoreResult<Trace>>;

/// Stream of trace summaries.
pub type SummaryStream = BoxStream<'static, StoreResult<TraceSummary>>;

/// The tenant whose data a call touches. With tenancy off every call uses the empty tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// A tenant by name.
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The tenant's name (`""` when tenancy is off).
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// A trace ID found by a search, with optional time hints for a later GetTraces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundTraceId {
    /// The trace.
    pub trace_id: TraceId,
    /// Earliest span start, when known.
    pub start: Option<UnixNanos>,
    /// Latest span end, when known.
    pub end: Option<UnixNanos>,
}

/// Reads and writes spans for one storage backend.
///
/// # Behavior (all methods)
/// - Data is fully isolated per [`Tenant`]: no call ever sees another tenant's spans, services
///   or operations.
/// - Read after write: a write that returned `Ok` is visible to every read that starts after
///   it returned (GetTraces, Find*, services, operations, dependencies), or, for a backend
///   that declares [`crate::capabilities::Visibility::WithinRefresh`], to every read that
///   starts at least that long after it returned. Never partially: a trace read by ID has
///   either none or all of the spans of one returned write.
/// - Query shapes the backend does not declare in its [`Capabilities`] never reach it: the
///   [`Backend`] bundle refuses them ([`crate::admission`]).
#[async_trait]
pub trait TraceStore: Send + Sync + 'static {
    /// Stores a batch of spans, which may belong to many traces.
    ///
    /// # Behavior
    /// - Spans of a trace that already exists are appended to it (traces arrive over many
    ///   Export calls).
    /// - Spans sharing a span ID are all kept; none is dropped as a duplicate.
    /// - The services index gains each span's service, the operations index its
    ///   `{name, kind}`.
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()>;

    /// Streams the requested traces.
    ///
    /// # Behavior
    /// - Each item is one whole trace with every stored span, in request order.
    /// - Unknown IDs are skipped, not reported as errors; if none is found the stream is empty.
    /// - Time hints only narrow the search; a backend may ignore them.
    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream>;

    /// Streams the requested traces with every span already encoded as an OTLP `Span`
    /// message, for reads that only send spans on (GetTraces).
    ///
    /// # Behavior
    /// - Exactly the traces and spans of [`TraceStore::get_traces`], in the same order; each
    ///   span's bytes decode to the span `get_traces` returns (field order may differ).
    /// - The default encodes `get_traces`' spans. A backend whose stored form can be written
    ///   out as OTLP bytes without building [`crate::Span`]s overrides it.
    async fn get_encoded_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<EncodedTraceStream> {
        let traces = self.get_traces(tenant, lookups).await?;
        Ok(traces
            .map(|trace| trace.map(|trace| EncodedTrace::from_trace(&trace)))
            .boxed())
    }

    /// Returns every distinct non-empty service name stored; order is unspecified.
    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>>;

    /// Returns the distinct `{name, span_kind}` pairs of a service, filtered by kind when the
    /// query names one. An unknown service gives an empty list. Order is unspecified.
    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>>;

    /// Returns the IDs of the traces that [`TraceStore::find_traces`] would return, in the
    /// same order.
    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>>;

    /// Streams whole traces in which one span matches every condition of the query
    /// ([`crate::matcher::SpanMatcher`] semantics).
    ///
    /// # Behavior
    /// - At most `search_depth` traces: those whose newest matching span starts latest,
    ///   newest first.
    /// - Every span of a matching trace is returned, not only the matching ones.
    /// - An empty service name searches every service.
    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        let found = self.find_trace_ids(tenant, query).await?;
        let lookups = found
            .into_iter()
            .map(|found| TraceLookup {
                trace_id: found.trace_id,
                start: found.start,
                end: found.end,
            })
            .collect();
        self.get_traces(tenant, lookups).await
    }

    /// Streams one summary per trace that [`TraceStore::find_traces`] would return, in the same
    /// order, computed with [`TraceSummary::from_trace`] rules. Backends that keep summary
    /// records should override this.
    async fn find_trace_summaries(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<SummaryStream> {
        let traces = self.find_traces(tenant, query).await?;
        Ok(traces
            .map(|trace| trace.map(|trace| TraceSummary::from_trace(&trace)))
            .boxed())
    }
}

/// Derives service dependency links from stored spans.
#[async_trait]
pub trait DependencyStore: Send + Sync + 'static {
    /// Returns links counted with [`crate::dependencies::DependencyCounter`] semantics over the
    /// spans that start in the window, sorted by parent then child.
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>>;
}

/// Deletes everything.
#[async_trait]
pub trait Purger: Send + Sync + 'static {
    /// Removes all traces, services and operations of every tenant. Returns only when done:
    /// the next read sees an empty store.
    async fn purge(&self) -> StoreResult<()>;
}

/// Counts a backend can report cheaply, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Traces stored, over all tenants.
    pub traces: u64,
    /// Spans stored, over all tenants.
    pub spans: u64,
}

/// Readiness, statistics and shutdown of a backend.
#[async_trait]
pub trait StoreLifecycle: Send + Sync + 'static {
    /// `Ok` once the backend can serve reads and writes; the server reports SERVING only then.
    async fn ready(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Current counts, when the backend knows them cheaply.
    fn stats(&self) -> Option<StoreStats> {
        None
    }

    /// Flushes and releases resources; called once after the server stops accepting requests.
    async fn close(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// A backend: its name, capabilities, and the trait objects the server calls.
#[derive(Clone)]
pub struct Backend {
    /// Short name used in logs and metrics, e.g. `memory`.
    pub name: &'static str,
    /// What the backend declares: the Capabilities answer, the refused query shapes and what
    /// the conformance suite expects.
    pub capabilities: Capabilities,
    /// Span reads and writes.
    pub traces: Arc<dyn TraceStore>,
    /// Dependency links.
    pub dependencies: Arc<dyn DependencyStore>,
    /// Wipe for tests.
    pub purger: Arc<dyn Purger>,
    /// Readiness, stats and shutdown.
    pub lifecycle: Arc<dyn StoreLifecycle>,
}

impl Backend {
    /// Bundles one store that implements every trait, declaring `capabilities`: searches and
    /// GetOperations shapes that it does not declare are refused before they reach the store.
    pub fn from_store<S>(name: &'static str, capabilities: Capabilities, store: Arc<S>) -> Self
    where
        S: TraceStore + DependencyStore + Purger + StoreLifecycle,
    {
        let traces = Arc::new(AdmittedStore {
            capabilities,
            inner: Arc::clone(&store) as Arc<dyn TraceStore>,
        });
        Self {
            name,
            capabilities,
            traces,
            dependencies: Arc::clone(&store) as Arc<dyn DependencyStore>,
            purger: Arc::clone(&store) as Arc<dyn Purger>,
            lifecycle: store,
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}
