//! In-process checks of the store traits' `# Behavior` contract
//! ([`remote_storage_core::store`]), run by every backend as `<name>/Backend/<Check>` trials of
//! [`crate::run_in_process`], each on a fresh backend from the caller's factory (filter with
//! `Backend/`, skip with the usual skip list).
//!
//! One copy of each check that used to be repeated in every backend's `tests/store.rs`.
//! Which checks apply, and what they expect, follows the backend's declared
//! [`Capabilities`]:
//!
//! | Trial | Module | Runs when |
//! |---|---|---|
//! | `Backend/Append_across_writes` | [`writes`] | * |
//! | `Backend/Idempotent_rewrite` | [`writes`] | [`Rewrites::Idempotent`] declared |
//! | `Backend/Rewrite_keeps_copies` | [`writes`] | [`Rewrites::KeepCopies`] declared |
//! | `Backend/Get_traces_in_request_order` | [`writes`] | always |
//! | `Backend/Encoded_traces_equal_traces` | [`writes`] | always |
//! | `Backend/Streams_may_stop_early` | [`writes`] | * |
//! | `Backend/Newest_first_up_to_depth` | [`search`] | * |
//! | `Backend/Conditions_on_one_span` | [`search`] | `same_span_conjunction` declared, * |
//! | `Backend/Typed_values_on_every_level` | [`search`] | * |
//! | `Backend/Typed_values_within_one_span` | [`search`] | `same_span_conjunction` declared, * |
//! | `Backend/Services_and_operations` | [`search`] | `operation_span_kinds` declared |
//! | `Backend/Dependencies` | [`search`] | always |
//! | `Backend/Summaries_equal_from_trace` | [`search`] | * |
//! | `Backend/Filters_equal_the_evaluator` | [`filters`] | `structured_filters` declared, * |
//! | `Backend/Tenants_are_isolated` | [`tenancy`] | * |
//! | `Backend/Lossless_round_trip` | [`lossless`] | * |
//! | `Backend/Refuses_undeclared_queries` | [`refusals`] | a query shape is not declared |
//! | `Backend/Equivalent_to_reference` | [`equivalence`] | [`crate::SuiteOptions::reference`] given, * |
//!
//! \* The check searches across services: it runs when `without_service_name` is declared.
//!
//! A declared [`SpanOrder::Any`] (a backend that returns the spans of a trace in its own
//! order) makes the checks compare spans as a multiset and leaves out "first stored wins"
//! tie-breaks that only write order defines. A declared [`Visibility::WithinRefresh`] bound is
//! waited after each write ([`write()`]): what the backend promises, checked.
//!
//! Times are recent (a base two hours ago), so that backends with a retention keep the spans.
//! A check fails with an error naming the call and what differed.

pub mod equivalence;
pub mod filters;
pub mod lossless;
pub mod refusals;
pub mod search;
pub mod tenancy;
pub mod writes;

use std::num::NonZeroUsize;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use futures::future::BoxFuture;
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use remote_storage_core::proto::otlp::trace::span::SpanKind;
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::{
    Backend, Capabilities, Operation, OperationQuery, Rewrites, Span, SpanOrder, StoreResult,
    Tenant, Trace, TraceId, TraceLookup, TraceQuery, TraceSummary, UnixNanos, Visibility,
};

/// Fails with `"<context>: expected <expected>, got <actual>"` unless `actual == expected`.
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr $(,)?) => {
        ensure_eq!($actual, $expected, "{}", stringify!($actual))
    };
    ($actual:expr, $expected:expr, $($context:tt)+) => {{
        let (actual, expected) = (&$actual, &$expected);
        if actual != expected {
            anyhow::bail!(
                "{}: expected {:?}, got {:?}",
                format!($($context)+),
                expected,
                actual
            );
        }
    }};
}
pub(crate) use ensure_eq;

/// When a check applies, from the backend's declaration and the suite options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Runs on every backend.
    Nothing,
    /// Runs only when [`Rewrites::Idempotent`] is declared.
    IdempotentWrites,
    /// Runs only when [`Rewrites::KeepCopies`] is declared.
    CopyingWrites,
    /// Runs only when [`Capabilities::same_span_conjunction`] is declared.
    SameSpanConjunction,
    /// Lists operations by span kind: runs only when [`Capabilities::operation_span_kinds`] is
    /// declared.
    OperationSpanKinds,
    /// Searches across services: runs only when [`Capabilities::without_service_name`] is
    /// declared.
    SearchWithoutService,
    /// Runs only when [`Capabilities::structured_filters`] is declared.
    StructuredFilters,
    /// Runs only when some query shape is not declared (a refusal to check).
    UndeclaredQueryShape,
    /// Runs only with a [`crate::SuiteOptions::reference`].
    Reference,
}

impl Needs {
    /// Whether a check with these needs applies to a backend declaring `capabilities`. A check
    /// that does not apply is left out, not skipped: it tests another declaration.
    pub fn apply_to(self, capabilities: &Capabilities) -> bool {
        match self {
            Self::Nothing | Self::Reference => true,
            Self::IdempotentWrites => capabilities.rewrites == Rewrites::Idempotent,
            Self::CopyingWrites => capabilities.rewrites == Rewrites::KeepCopies,
            Self::SameSpanConjunction => capabilities.same_span_conjunction,
            Self::StructuredFilters => capabilities.structured_filters,
            Self::SearchWithoutService => capabilities.without_service_name,
            Self::OperationSpanKinds => capabilities.operation_span_kinds,
            Self::UndeclaredQueryShape => {
                !capabilities.without_service_name
                    || !capabilities.operation_span_kinds
                    || !capabilities.structured_filters
            }
        }
    }
}

/// What a check receives besides the backend under test.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// What the backend declares.
    pub capabilities: Capabilities,
    /// A fresh reference backend, for checks that [`Needs::Reference`].
    pub reference: Option<Backend>,
}

impl CheckContext {
    /// A re-sent batch adds no spans.
    pub fn idempotent_writes(&self) -> bool {
        self.capabilities.rewrites == Rewrites::Idempotent
    }

    /// In which order the spans of a trace come back.
    pub fn span_order(&self) -> SpanOrder {
        self.capabilities.span_order
    }
}

type CheckFn = for<'a> fn(&'a Backend, &'a CheckContext) -> BoxFuture<'a, anyhow::Result<()>>;

/// One named check.
#[derive(Clone, Copy)]
pub struct Check {
    /// Trial name below `Backend/`, e.g. `Tenants_are_isolated`.
    pub name: &'static str,
    /// When it applies: every one of these must hold.
    pub needs: &'static [Needs],
    run: CheckFn,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// Whether the check applies to a backend declaring `capabilities`.
    pub fn applies_to(&self, capabilities: &Capabilities) -> bool {
        self.needs.iter().all(|needs| needs.apply_to(capabilities))
    }

    /// Whether the check compares with a reference backend.
    pub fn needs_reference(&self) -> bool {
        self.needs.contains(&Needs::Reference)
    }

    /// Runs the check against `backend`.
    pub async fn run(&self, backend: &Backend, context: &CheckContext) -> anyhow::Result<()> {
        (self.run)(backend, context).await
    }

    /// The trial name below the run's prefix: `Backend/<name>`.
    pub fn trial_name(&self) -> String {
        format!("Backend/{}", self.name)
    }
}

macro_rules! check {
    ($name:literal, [$($needs:ident),*], $function:path) => {
        Check {
            name: $name,
            needs: &[$(Needs::$needs),*],
            run: |backend, context| Box::pin($function(backend, context)),
        }
    };
}

/// Every check, in trial order. Names are stable: skip lists and filters refer to them.
pub fn checks() -> Vec<Check> {
    vec![
        check!(
            "Append_across_writes",
            [SearchWithoutService],
            writes::append_across_writes
        ),
        check!(
            "Idempotent_rewrite",
            [IdempotentWrites],
            writes::idempotent_rewrite
        ),
        check!(
            "Rewrite_keeps_copies",
            [CopyingWrites],
            writes::rewrite_keeps_copies
        ),
        check!(
            "Get_traces_in_request_order",
            [],
            writes::get_traces_in_request_order
        ),
        check!(
            "Encoded_traces_equal_traces",
            [],
            writes::encoded_traces_equal_traces
        ),
        check!(
            "Streams_may_stop_early",
            [SearchWithoutService],
            writes::streams_may_stop_early
        ),
        check!(
            "Newest_first_up_to_depth",
            [SearchWithoutService],
            search::newest_first_up_to_depth
        ),
        check!(
            "Conditions_on_one_span",
            [SameSpanConjunction, SearchWithoutService],
            search::conditions_on_one_span
        ),
        check!(
            "Typed_values_on_every_level",
            [SearchWithoutService],
            search::typed_values_on_every_level
        ),
        check!(
            "Typed_values_within_one_span",
            [SameSpanConjunction, SearchWithoutService],
            search::typed_values_within_one_span
        ),
        check!(
            "Services_and_operations",
            [OperationSpanKinds],
            search::services_and_operations
        ),
        check!("Dependencies", [], search::dependencies),
        check!(
            "Summaries_equal_from_trace",
            [SearchWithoutService],
            search::summaries_equal_from_trace
        ),
        check!(
            "Filters_equal_the_evaluator",
            [StructuredFilters, SearchWithoutService],
            filters::filters_equal_the_evaluator
        ),
        check!(
            "Tenants_are_isolated",
            [SearchWithoutService],
            tenancy::tenants_are_isolated
        ),
        check!(
            "Lossless_round_trip",
            [SearchWithoutService],
            lossless::lossless_round_trip
        ),
        check!(
            "Refuses_undeclared_queries",
            [UndeclaredQueryShape],
            refusals::refuses_undeclared_queries
        ),
        check!(
            "Equivalent_to_reference",
            [Reference, SearchWithoutService],
            equivalence::equivalent_to_reference
        ),
    ]
}

/// A recent time (two hours ago, whole seconds) to build spans on: old enough to lie in the
/// past, new enough for any retention.
pub fn recent_base() -> u64 {
    let now = UnixNanos::now().0 - 2 * 3_600 * 1_000_000_000;
    now - now % 1_000_000_000
}

/// A search depth.
pub fn depth(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// Writes one batch, then waits out the backend's declared refresh bound (none for
/// [`Visibility::OnReturn`]): after that the write must be visible to every read.
pub async fn write(backend: &Backend, tenant: &Tenant, spans: Vec<Span>) -> anyhow::Result<()> {
    backend
        .traces
        .write_spans(tenant, spans)
        .await
        .context("write_spans failed")?;
    if let Visibility::WithinRefresh(bound) = backend.capabilities.visibility {
        tokio::time::sleep(bound).await;
    }
    Ok(())
}

/// Writes `spans` as one batch for the default tenant, which it returns.
pub async fn seed(backend: &Backend, spans: Vec<Span>) -> anyhow::Result<Tenant> {
    let tenant = Tenant::default();
    write(backend, &tenant, spans).await?;
    Ok(tenant)
}

/// Collects a result stream, naming `call` in errors.
async fn drain<S, T>(opened: StoreResult<S>, call: &str) -> anyhow::Result<Vec<T>>
where
    S: futures::Stream<Item = StoreResult<T>>,
{
    let stream = opened.with_context(|| format!("{call} failed"))?;
    stream
        .try_collect()
        .await
        .with_context(|| format!("{call} stream"))
}

/// Every trace `find_traces` streams.
pub async fn find(
    backend: &Backend,
    tenant: &Tenant,
    query: TraceQuery,
) -> anyhow::Result<Vec<Trace>> {
    drain(
        backend.traces.find_traces(tenant, query).await,
        "find_traces",
    )
    .await
}

/// Every summary `find_trace_summaries` streams.
pub async fn summaries(
    backend: &Backend,
    tenant: &Tenant,
    query: TraceQuery,
) -> anyhow::Result<Vec<TraceSummary>> {
    let opened = backend.traces.find_trace_summaries(tenant, query).await;
    drain(opened, "find_trace_summaries").await
}

/// Every trace `get_traces` streams for `trace_ids`, without time hints.
pub async fn get_ids(
    backend: &Backend,
    tenant: &Tenant,
    trace_ids: impl IntoIterator<Item = TraceId>,
) -> anyhow::Result<Vec<Trace>> {
    get_lookups(
        backend,
        tenant,
        trace_ids.into_iter().map(TraceLookup::whole).collect(),
    )
    .await
}

/// Every trace `get_traces` streams for `lookups`.
pub async fn get_lookups(
    backend: &Backend,
    tenant: &Tenant,
    lookups: Vec<TraceLookup>,
) -> anyhow::Result<Vec<Trace>> {
    drain(
        backend.traces.get_traces(tenant, lookups).await,
        "get_traces",
    )
    .await
}

/// The traces `get_encoded_traces` streams for `trace_ids` equal those of `get_traces`: same
/// traces in the same order, and each span's bytes decode to the span `get_traces` returns,
/// with the same resource and scope.
pub async fn encoded_equal_decoded(
    backend: &Backend,
    tenant: &Tenant,
    trace_ids: &[TraceId],
) -> anyhow::Result<()> {
    use prost::Message as _;
    use remote_storage_core::proto::otlp::trace::Span as OtlpSpan;

    let decoded = get_ids(backend, tenant, trace_ids.iter().copied()).await?;
    let lookups = trace_ids
        .iter()
        .map(|&trace_id| TraceLookup {
            trace_id,
            start: None,
            end: None,
        })
        .collect();
    let encoded: Vec<remote_storage_core::EncodedTrace> = drain(
        backend.traces.get_encoded_traces(tenant, lookups).await,
        "get_encoded_traces",
    )
    .await?;
    let encoded_ids: Vec<TraceId> = encoded.iter().map(|trace| trace.trace_id()).collect();
    let decoded_ids: Vec<TraceId> = decoded.iter().map(|trace| trace.trace_id).collect();
    ensure_eq!(encoded_ids, decoded_ids, "traces of get_encoded_traces");
    for (encoded, decoded) in encoded.iter().zip(&decoded) {
        ensure_eq!(
            encoded.len(),
            decoded.spans.len(),
            "spans of {:?}",
            decoded.trace_id
        );
        for (index, span) in decoded.spans.iter().enumerate() {
            let bytes = encoded.span_bytes(index);
            let read = OtlpSpan::decode(bytes)
                .with_context(|| format!("encoded span {index} of {:?}", decoded.trace_id))?;
            ensure_eq!(&read, span.otlp(), "encoded span {index}");
            ensure_eq!(
                (
                    encoded.resource(index).otlp(),
                    encoded.resource(index).schema_url()
                ),
                (span.resource().otlp(), span.resource().schema_url()),
                "resource of encoded span {index}"
            );
            ensure_eq!(
                (
                    encoded.scope(index).otlp(),
                    encoded.scope(index).schema_url()
                ),
                (span.scope().otlp(), span.scope().schema_url()),
                "scope of encoded span {index}"
            );
        }
    }
    Ok(())
}

/// The trace of a [`remote_storage_core::testing::span`] trace number (`[trace; 16]`).
pub async fn get(backend: &Backend, tenant: &Tenant, trace: u8) -> anyhow::Result<Vec<Trace>> {
    get_ids(backend, tenant, [TraceId([trace; 16])]).await
}

/// The services, sorted (their order is unspecified).
pub async fn services(backend: &Backend, tenant: &Tenant) -> anyhow::Result<Vec<String>> {
    let mut services = backend
        .traces
        .get_services(tenant)
        .await
        .context("get_services failed")?;
    services.sort();
    Ok(services)
}

/// The operations of `service`, sorted (their order is unspecified).
pub async fn operations(
    backend: &Backend,
    tenant: &Tenant,
    service: &str,
    span_kind: Option<SpanKind>,
) -> anyhow::Result<Vec<Operation>> {
    let query = OperationQuery {
        service: service.to_owned(),
        span_kind,
    };
    let mut operations = backend
        .traces
        .get_operations(tenant, query)
        .await
        .context("get_operations failed")?;
    operations.sort();
    Ok(operations)
}

/// The first trace-ID byte of each trace (the trace number of test spans).
pub fn ids(traces: &[Trace]) -> Vec<u8> {
    traces.iter().map(|trace| trace.trace_id.0[0]).collect()
}

/// `query` restricted to `service`.
pub fn in_service(mut query: TraceQuery, service: &str) -> TraceQuery {
    query.service_name = Some(service.into());
    query
}

/// `query` with one more attribute condition.
pub fn with_attribute(mut query: TraceQuery, key: &str, value: &str) -> TraceQuery {
    query.attributes.push(AttributeFilter {
        key: key.into(),
        value: value.into(),
    });
    query
}

/// An attribute.
pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// `span` with another kind.
pub fn with_kind(span: &Span, kind: SpanKind) -> anyhow::Result<Span> {
    let mut otlp = span.otlp().clone();
    otlp.kind = kind as i32;
    Span::new(
        std::sync::Arc::clone(span.resource()),
        std::sync::Arc::clone(span.scope()),
        otlp,
    )
    .context("invalid test span")
}
