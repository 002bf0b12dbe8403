//! The tests, ported from Jaeger's `StorageIntegration.RunSpanStoreTests` with Jaeger's names
//! and assertions, plus `GetDependencies` over links derived from written spans.
//!
//! - `plan`: the planner: every [`PlannedCase`] of a fixture set ([`plan()`]), with its
//!   Jaeger-style name, its top-level test ([`Group`]) and why it is skipped.
//! - `executor`: the executor, which runs planned cases against one target with per-group setup
//!   and clean-up and dispatches each case to its body.
//! - The test bodies per RPC, each an `impl Executor` block: `services` (`GetServices`,
//!   `GetOperations`), `get_trace` (`GetTrace`, `GetLargeTrace`, `GetTraceWithDuplicateSpans`,
//!   [`repeated_span_trace`]), `find_traces` (`FindTraces`, `FindTracesWithoutServiceName`),
//!   `summaries` (`FindTraceSummaries`, [`summaries_with_fallback`], [`summary_of`]) and
//!   `dependencies` (`GetDependencies`), and `filters` (`FindTracesWithFilter`: the
//!   structured-filter spec's worked examples, answered or refused as declared), and
//!   `filter_forms` (`FindTracesFilterForm`: every `FindTraces` query's filter form returns the
//!   legacy answer).
//! - `otlp`: the spans and resources the tests write, [`service_name`], and traces described
//!   for failure messages.

mod dependencies;
mod executor;
mod filter_forms;
mod filters;
mod find_traces;
mod get_trace;
mod otlp;
mod plan;
mod services;
mod summaries;

pub(crate) use executor::Executor;
pub use get_trace::{
    DUPLICATE_FREQUENCY, DUPLICATE_TRACE_SPANS, LARGE_TRACE_SPANS, repeated_span_trace,
};
pub use otlp::service_name;
pub use plan::{Group, PlannedCase, plan};
pub use summaries::{summaries_with_fallback, summary_of};
