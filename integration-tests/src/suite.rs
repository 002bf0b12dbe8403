//! The tests, ported from Jaeger's `StorageIntegration.RunSpanStoreTests` with Jaeger's names
//! and assertions, plus `GetDependencies` over links derived from written spans.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::span::SpanKind;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span};
use jaeger_remote_proto::storage::v2 as proto;
use remote_storage_core::convert::spans_from_resource_spans;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::{Trace, TraceId, TraceSummary, UnixNanos};

use crate::compare::{compare_trace_slices, compare_traces};
use crate::fixtures::FixtureSet;
use crate::options::{Excused, Poll, SuiteOptions, wait_for};
use crate::target::{OtlpTrace, SuiteTarget, TraceSearch, trace_id_array};

/// Spans of the `GetLargeTrace` trace (Jaeger's value).
pub const LARGE_TRACE_SPANS: usize = 10_008;
/// Spans of the `GetTraceWithDuplicateSpans` trace.
pub const DUPLICATE_TRACE_SPANS: usize = 200;
/// Every this many spans (from the 20th on) reuses the original span ID.
pub const DUPLICATE_FREQUENCY: usize = 20;

/// The top-level tests, in Jaeger's order (then `GetDependencies`). Clean-up runs after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// `GetServices`.
    GetServices,
    /// `GetOperations`.
    GetOperations,
    /// `GetTrace`.
    GetTrace,
    /// `GetLargeTrace`.
    GetLargeTrace,
    /// `GetTraceWithDuplicateSpans`.
    GetTraceWithDuplicateSpans,
    /// `FindTraces`.
    FindTraces,
    /// `FindTraceSummaries`.
    FindTraceSummaries,
    /// `FindTracesWithoutServiceName`.
    FindTracesWithoutServiceName,
    /// `GetDependencies`.
    GetDependencies,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a group writes once before its first case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Nothing,
    ExampleTrace,
    QueryFixtures,
}

impl Group {
    fn setup(self) -> Setup {
        match self {
            Self::GetServices | Self::GetOperations | Self::GetTrace | Self::FindTraceSummaries => {
                Setup::ExampleTrace
            }
            Self::FindTraces => Setup::QueryFixtures,
            Self::GetLargeTrace
            | Self::GetTraceWithDuplicateSpans
            | Self::FindTracesWithoutServiceName
            | Self::GetDependencies => Setup::Nothing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseKind {
    GetServices,
    GetOperations,
    GetOperationsKindFilter,
    GetTrace,
    GetTraceNotFound,
    GetLargeTrace,
    GetTraceWithDuplicateSpans,
    FindTraces(usize),
    FindTraceSummaries,
    FindTracesWithoutServiceName,
    GetDependencies,
}

/// One test or sub-test of the plan.
#[derive(Debug, Clone)]
pub struct PlannedCase {
    /// Jaeger-style name, e.g. `FindTraces/Tags_+_Operation_name`.
    pub name: String,
    /// Its top-level test.
    pub group: Group,
    /// Why it is skipped, if it is.
    pub skip_reason: Option<String>,
    kind: CaseKind,
}

/// Lists every case for a fixture set; `prefix` is prepended (with `/`) to names for skip-list
/// matching, as Jaeger matches against the full test path.
pub fn plan(fixtures: &FixtureSet, excused: &Excused, prefix: &str) -> Vec<PlannedCase> {
    let mut cases = vec![
        (
            Group::GetServices,
            "GetServices".to_owned(),
            CaseKind::GetServices,
        ),
        (
            Group::GetOperations,
            "GetOperations".to_owned(),
            CaseKind::GetOperations,
        ),
        (
            Group::GetOperations,
            "GetOperations/Span_kind_filter".to_owned(),
            CaseKind::GetOperationsKindFilter,
        ),
        (Group::GetTrace, "GetTrace".to_owned(), CaseKind::GetTrace),
        (
            Group::GetTrace,
            "GetTrace/NotFound_error".to_owned(),
            CaseKind::GetTraceNotFound,
        ),
        (
            Group::GetLargeTrace,
            "GetLargeTrace".to_owned(),
            CaseKind::GetLargeTrace,
        ),
        (
            Group::GetTraceWithDuplicateSpans,
            "GetTraceWithDuplicateSpans".to_owned(),
            CaseKind::GetTraceWithDuplicateSpans,
        ),
    ];
    for (index, case) in fixtures.queries().iter().enumerate() {
        cases.push((
            Group::FindTraces,
            case.test_name(),
            CaseKind::FindTraces(index),
        ));
    }
    cases.push((
        Group::FindTraceSummaries,
        "FindTraceSummaries".to_owned(),
        CaseKind::FindTraceSummaries,
    ));
    cases.push((
        Group::FindTracesWithoutServiceName,
        "FindTracesWithoutServiceName".to_owned(),
        CaseKind::FindTracesWithoutServiceName,
    ));
    cases.push((
        Group::GetDependencies,
        "GetDependencies".to_owned(),
        CaseKind::GetDependencies,
    ));

    cases
        .into_iter()
        .map(|(group, name, kind)| {
            let full_name = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let skip_reason = if let Some(entry) = excused.skip_entry_for(&full_name) {
                Some(format!("skip list entry {entry:?}"))
            } else if let Some(reason) = excused.explanation_for(&full_name) {
                Some(reason.to_owned())
            } else if kind == CaseKind::FindTracesWithoutServiceName
                && excused.search_requires_service_name
            {
                Some("search_requires_service_name".to_owned())
            } else if kind == CaseKind::GetOperationsKindFilter
                && excused.get_operations_missing_span_kind
            {
                Some("get_operations_missing_span_kind".to_owned())
            } else {
                None
            };
            PlannedCase {
                name,
                group,
                skip_reason,
                kind,
            }
        })
        .collect()
}

/// Runs planned cases against one target, with per-group setup and clean-up.
pub(crate) struct Executor {
    target: Arc<dyn SuiteTarget>,
    /// What the cases write.
    fixtures: Arc<FixtureSet>,
    /// What the cases expect back: `fixtures` as the target reads them back
    /// ([`SuiteTarget::expected_back`]), or why that could not be computed.
    expected: Result<FixtureSet, String>,
    options: SuiteOptions,
    state: Mutex<ExecutorState>,
}

#[derive(Default)]
struct ExecutorState {
    setups: BTreeMap<Group, Result<(), String>>,
    remaining: BTreeMap<Group, usize>,
}

impl Executor {
    pub(crate) fn new(
        target: Arc<dyn SuiteTarget>,
        fixtures: Arc<FixtureSet>,
        options: SuiteOptions,
    ) -> Self {
        let expected = fixtures
            .map_traces(|trace| target.expected_back(trace))
            .map_err(|error| format!("the expected fixtures cannot be computed: {error:#}"));
        Self {
            target,
            fixtures,
            expected,
            options,
            state: Mutex::new(ExecutorState::default()),
        }
    }

    /// The fixtures as the target reads them back.
    fn expected(&self) -> anyhow::Result<&FixtureSet> {
        self.expected
            .as_ref()
            .map_err(|error| anyhow::anyhow!("{error}"))
    }

    /// Declares which cases will run, so that each group purges after its last one.
    pub(crate) fn schedule<'a>(&self, cases: impl IntoIterator<Item = &'a PlannedCase>) {
        let mut state = self.lock();
        state.remaining.clear();
        for case in cases {
            *state.remaining.entry(case.group).or_default() += 1;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExecutorState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn ensure_setup(&self, group: Group) -> Result<(), String> {
        if let Some(done) = self.lock().setups.get(&group) {
            return done.clone();
        }
        let result = self.setup(group.setup()).await.map_err(|error| {
            format!("setup of {group} failed (every case of {group} fails with it): {error:#}")
        });
        self.lock().setups.insert(group, result.clone());
        result
    }

    async fn setup(&self, setup: Setup) -> anyhow::Result<()> {
        match setup {
            Setup::Nothing => Ok(()),
            Setup::ExampleTrace => {
                let example = self.fixtures.example_trace()?;
                self.write(example).await
            }
            Setup::QueryFixtures => {
                for name in self.fixtures.query_fixture_names() {
                    let trace = self.fixtures.trace(name)?;
                    self.write(trace)
                        .await
                        .with_context(|| format!("writing fixture {name}"))?;
                }
                Ok(())
            }
        }
    }

    async fn write(&self, trace: &OtlpTrace) -> anyhow::Result<()> {
        self.target
            .write_traces(trace.resource_spans.clone())
            .await
            .with_context(|| format!("writing trace {}", trace.trace_id_hex()))
    }

    /// Runs one case: setup of its group if not done yet, the body, then the group's
    /// clean-up when this was its last scheduled case. The error names the test.
    pub(crate) async fn execute(&self, case: &PlannedCase) -> Result<(), String> {
        let mut result = match self.ensure_setup(case.group).await {
            Err(error) => Err(error),
            Ok(()) => self
                .body(case.kind)
                .await
                .map_err(|error| format!("{error:#}")),
        };
        let last_of_group = {
            let mut state = self.lock();
            match state.remaining.get_mut(&case.group) {
                Some(count) => {
                    *count = count.saturating_sub(1);
                    *count == 0
                }
                None => true,
            }
        };
        if last_of_group {
            self.lock().setups.remove(&case.group);
            if let Err(error) = self.target.purge().await {
                let cleanup = format!("clean-up after {} failed: {error:#}", case.group);
                result = Err(match result {
                    Ok(()) => cleanup,
                    Err(message) => format!("{message}\n{cleanup}"),
                });
            }
        }
        result.map_err(|message| format!("{} failed: {message}", case.name))
    }

    async fn body(&self, kind: CaseKind) -> anyhow::Result<()> {
        match kind {
            CaseKind::GetServices => self.get_services().await,
            CaseKind::GetOperations => self.get_operations().await,
            CaseKind::GetOperationsKindFilter => self.get_operations_kind_filter().await,
            CaseKind::GetTrace => self.get_trace().await,
            CaseKind::GetTraceNotFound => self.get_trace_not_found().await,
            CaseKind::GetLargeTrace => self.get_large_trace().await,
            CaseKind::GetTraceWithDuplicateSpans => self.get_trace_with_duplicate_spans().await,
            CaseKind::FindTraces(index) => self.find_traces(index).await,
            CaseKind::FindTraceSummaries => self.find_trace_summaries().await,
            CaseKind::FindTracesWithoutServiceName => self.find_traces_without_service_name().await,
            CaseKind::GetDependencies => self.get_dependencies().await,
        }
    }

    // ------------------------------------------------------------------ GetServices

    async fn get_services(&self) -> anyhow::Result<()> {
        let expected: Vec<String> = services_of(self.expected()?.example_trace()?)
            .into_iter()
            .collect();
        let target = Arc::clone(&self.target);
        let expected_for_poll = expected.clone();
        wait_for(
            self.options.wait,
            &format!("GetServices to return exactly {expected:?}"),
            move || {
                let target = Arc::clone(&target);
                let expected = expected_for_poll.clone();
                async move {
                    let services = target.get_services().await.map(|mut services| {
                        services.sort();
                        services
                    });
                    Ok(Poll::settled(services, &expected))
                }
            },
        )
        .await
    }

    // ------------------------------------------------------------------ GetOperations

    fn expected_operations(&self) -> anyhow::Result<(String, Vec<(String, String)>)> {
        let example = self.expected()?.example_trace()?;
        let mut by_service: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for group in &example.resource_spans {
            let service = service_name(group.resource.as_ref());
            for scope in &group.scope_spans {
                for span in &scope.spans {
                    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
                    by_service
                        .entry(service.clone())
                        .or_default()
                        .insert((span.name.clone(), span_kind_name(kind).to_owned()));
                }
            }
        }
        // The service with the most operations (Jaeger's `example-service-1`); ties go to
        // the smallest name.
        let mut best: Option<(&String, &BTreeSet<(String, String)>)> = None;
        for (service, operations) in &by_service {
            if best.is_none_or(|(_, current)| operations.len() > current.len()) {
                best = Some((service, operations));
            }
        }
        let (service, operations) = best.context("the example trace has no span")?;
        let mut expected: Vec<(String, String)> = operations.iter().cloned().collect();
        if self.options.excused.get_operations_missing_span_kind {
            expected = expected
                .into_iter()
                .map(|(name, _)| (name, String::new()))
                .collect();
            expected.dedup();
        }
        Ok((service.clone(), expected))
    }

    async fn poll_operations(
        &self,
        service: String,
        span_kind: String,
        expected: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        let names_only = self.options.excused.get_operations_missing_span_kind;
        let target = Arc::clone(&self.target);
        let expectation = format!(
            "GetOperations(service={service:?}, span_kind={span_kind:?}) to return exactly \
             {expected:?} (name, span_kind)"
        );
        wait_for(self.options.wait, &expectation, move || {
            let target = Arc::clone(&target);
            let service = service.clone();
            let span_kind = span_kind.clone();
            let expected = expected.clone();
            async move {
                let operations =
                    target
                        .get_operations(&service, &span_kind)
                        .await
                        .map(|operations| {
                            let mut got: Vec<(String, String)> = operations
                                .into_iter()
                                .map(|operation| {
                                    if names_only {
                                        (operation.name, String::new())
                                    } else {
                                        (operation.name, operation.span_kind)
                                    }
                                })
                                .collect();
                            got.sort();
                            if names_only {
                                got.dedup();
                            }
                            got
                        });
                Ok(Poll::settled(operations, &expected))
            }
        })
        .await
    }

    async fn get_operations(&self) -> anyhow::Result<()> {
        let (service, expected) = self.expected_operations()?;
        self.poll_operations(service, String::new(), expected).await
    }

    async fn get_operations_kind_filter(&self) -> anyhow::Result<()> {
        let (service, all) = self.expected_operations()?;
        let kinds: BTreeSet<&String> = all
            .iter()
            .map(|(_, kind)| kind)
            .filter(|kind| !kind.is_empty())
            .collect();
        anyhow::ensure!(
            !kinds.is_empty(),
            "the example trace's service {service} has no span with a kind"
        );
        for kind in kinds {
            let expected: Vec<(String, String)> = all
                .iter()
                .filter(|(_, operation_kind)| operation_kind == kind)
                .cloned()
                .collect();
            self.poll_operations(service.clone(), kind.clone(), expected)
                .await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ GetTrace family

    /// Waits until GetTraces returns exactly one trace with at least `expected`'s span count.
    /// On timeout the error includes a comparison with the expected trace.
    async fn wait_for_trace(&self, expected: &OtlpTrace) -> anyhow::Result<OtlpTrace> {
        let trace_id = trace_id_array(expected.trace_id().context("expected trace is empty")?)?;
        let wanted_spans = expected.span_count();
        let last_seen: Arc<Mutex<Option<OtlpTrace>>> = Arc::new(Mutex::new(None));
        let target = Arc::clone(&self.target);
        let last_for_poll = Arc::clone(&last_seen);
        let outcome = wait_for(
            self.options.wait,
            &format!(
                "GetTraces({}) to return one trace with at least {wanted_spans} span(s)",
                hex::encode(trace_id)
            ),
            move || {
                let target = Arc::clone(&target);
                let last_seen = Arc::clone(&last_for_poll);
                async move {
                    let traces = match target.get_traces(&[trace_id]).await {
                        Ok(traces) => traces,
                        Err(error) => return Ok(Poll::Pending(format!("error: {error:#}"))),
                    };
                    anyhow::ensure!(
                        traces.len() <= 1,
                        "GetTraces for one trace ID returned {} traces (chunks of one trace must \
                         be consecutive): {}",
                        traces.len(),
                        describe_traces(&traces, None)
                    );
                    let Some(trace) = traces.into_iter().next() else {
                        return Ok(Poll::Pending("no trace".to_owned()));
                    };
                    let span_count = trace.span_count();
                    if span_count >= wanted_spans {
                        return Ok(Poll::Ready(trace));
                    }
                    *last_seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(trace);
                    Ok(Poll::Pending(format!(
                        "one trace with {span_count} span(s)"
                    )))
                }
            },
        )
        .await;
        outcome.map_err(|error| {
            let last = last_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match last.map(|actual| compare_traces(expected, &actual)) {
                Some(Err(diff)) => error.context(diff),
                _ => error,
            }
        })
    }

    async fn get_trace(&self) -> anyhow::Result<()> {
        let expected = self.expected()?.example_trace()?;
        self.wait_for_trace(expected).await.map(drop)
    }

    async fn get_trace_not_found(&self) -> anyhow::Result<()> {
        let mut unknown = [0_u8; 16];
        unknown[15] = 1;
        let traces = self
            .target
            .get_traces(&[unknown])
            .await
            .context("GetTraces for an unknown trace ID must succeed with no trace")?;
        anyhow::ensure!(
            traces.is_empty(),
            "GetTraces for unknown trace ID {} returned {}",
            hex::encode(unknown),
            describe_traces(&traces, None)
        );
        Ok(())
    }

    async fn get_large_trace(&self) -> anyhow::Result<()> {
        let large = repeated_span_trace(self.fixtures.example_trace()?, LARGE_TRACE_SPANS, 0)?;
        self.write(&large).await?;
        let expected = self.target.expected_back(&large)?;
        self.wait_for_trace(&expected).await.map(drop)
    }

    async fn get_trace_with_duplicate_spans(&self) -> anyhow::Result<()> {
        let trace = repeated_span_trace(
            self.fixtures.example_trace()?,
            DUPLICATE_TRACE_SPANS,
            DUPLICATE_FREQUENCY,
        )?;
        self.write(&trace).await?;
        let actual = self
            .wait_for_trace(&self.target.expected_back(&trace)?)
            .await?;
        let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
        for span in actual.spans() {
            *counts.entry(span.span_id.as_slice()).or_default() += 1;
        }
        let expected_duplicates = trace.span_count() - {
            let mut ids: Vec<&[u8]> = trace.spans().map(|span| span.span_id.as_slice()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        anyhow::ensure!(
            counts.values().any(|count| *count > 1),
            "no span ID occurs twice in the returned trace ({} spans, {} distinct IDs; {} spans \
             written share a span ID): spans sharing a span ID must all be kept, not deduplicated",
            actual.span_count(),
            counts.len(),
            expected_duplicates + 1
        );
        Ok(())
    }

    // ------------------------------------------------------------------ FindTraces

    fn fixture_names_by_trace_id(&self) -> BTreeMap<String, String> {
        let mut names = BTreeMap::new();
        for name in self.fixtures.query_fixture_names() {
            if let Ok(trace) = self.fixtures.trace(name) {
                names.insert(trace.trace_id_hex(), name.to_owned());
            }
        }
        names
    }

    async fn find_traces(&self, index: usize) -> anyhow::Result<()> {
        let case = self
            .fixtures
            .queries()
            .get(index)
            .context("query case out of range")?;
        let mut expected = Vec::new();
        for name in &case.expected_fixtures {
            expected.push(self.expected()?.trace(name)?.clone());
        }
        let expected_traces = expected.len();
        let expected_spans: usize = expected.iter().map(OtlpTrace::span_count).sum();
        let names = Arc::new(self.fixture_names_by_trace_id());
        let decoys: BTreeSet<String> = case.decoy_fixtures.iter().cloned().collect();
        let target = Arc::clone(&self.target);
        let search = case.search.clone();
        let expectation = format!(
            "FindTraces to return {expected_traces} trace(s) with {expected_spans} span(s) in \
             total ({})",
            case.expected_fixtures.join(", ")
        );
        let names_for_poll = Arc::clone(&names);
        let actual = wait_for(self.options.wait, &expectation, move || {
            let target = Arc::clone(&target);
            let search = search.clone();
            let names = Arc::clone(&names_for_poll);
            let decoys = decoys.clone();
            async move {
                let traces = target.find_traces(&search).await.context("FindTraces")?;
                let spans: usize = traces.iter().map(OtlpTrace::span_count).sum();
                if traces.len() == expected_traces && spans == expected_spans {
                    return Ok(Poll::Ready(traces));
                }
                Ok(Poll::Pending(format!(
                    "{} trace(s) with {spans} span(s): {}",
                    traces.len(),
                    describe_traces(&traces, Some((&names, &decoys)))
                )))
            }
        })
        .await?;
        compare_trace_slices(&expected, &actual).map_err(|diff| anyhow::anyhow!(diff))
    }

    // ------------------------------------------------------------------ FindTraceSummaries

    async fn find_trace_summaries(&self) -> anyhow::Result<()> {
        let example = self.expected()?.example_trace()?.clone();
        let service = example
            .resource_spans
            .first()
            .map(|group| service_name(group.resource.as_ref()))
            .unwrap_or_default();
        let start = example.spans().map(|span| span.start_time_unix_nano).min();
        let end = example.spans().map(|span| span.end_time_unix_nano).max();
        let minute = Duration::from_secs(60).as_nanos();
        let minute = u64::try_from(minute).unwrap_or(u64::MAX);
        let search = TraceSearch {
            service_name: service,
            start_time_min: start.map(|start| UnixNanos(start).saturating_sub(minute)),
            start_time_max: end.map(|end| UnixNanos(end).saturating_add(minute)),
            search_depth: 10,
            ..TraceSearch::default()
        };
        let expected = summary_of(&example)?;
        let wanted_spans = expected.span_count;
        let trace_id = expected.trace_id.clone();
        let target = Arc::clone(&self.target);
        let (summary, native) = wait_for(
            self.options.wait,
            &format!(
                "a summary of trace {} with span_count {wanted_spans}",
                hex::encode(&trace_id)
            ),
            move || {
                let target = Arc::clone(&target);
                let search = search.clone();
                let trace_id = trace_id.clone();
                async move {
                    let (summaries, native) = summaries_with_fallback(target.as_ref(), &search)
                        .await
                        .context("FindTraceSummaries")?;
                    let found = summaries
                        .into_iter()
                        .find(|summary| summary.trace_id == trace_id);
                    Ok(match found {
                        Some(summary) if summary.span_count == wanted_spans => {
                            Poll::Ready((summary, native))
                        }
                        Some(summary) => {
                            Poll::Pending(format!("span_count {}", summary.span_count))
                        }
                        None => Poll::Pending("no summary for the trace".to_owned()),
                    })
                }
            },
        )
        .await?;
        let origin = if native {
            "native FindTraceSummaries"
        } else {
            "Jaeger's fallback (FindTraceSummaries is UNIMPLEMENTED)"
        };
        // Jaeger's assertions.
        anyhow::ensure!(
            summary.min_start_time_unix_nano != 0,
            "{origin}: min_start_time_unix_nano is 0"
        );
        anyhow::ensure!(
            summary.max_end_time_unix_nano != 0,
            "{origin}: max_end_time_unix_nano is 0"
        );
        anyhow::ensure!(!summary.services.is_empty(), "{origin}: services is empty");
        // RFC 0011: a native summary must equal what Jaeger's fallback computes.
        let mut differences = Vec::new();
        let mut check = |field: &str, expected: String, got: String| {
            if expected != got {
                differences.push(format!("{field}: expected {expected}, got {got}"));
            }
        };
        check(
            "root_service_name",
            format!("{:?}", expected.root_service_name),
            format!("{:?}", summary.root_service_name),
        );
        check(
            "root_operation_name",
            format!("{:?}", expected.root_operation_name),
            format!("{:?}", summary.root_operation_name),
        );
        check(
            "min_start_time_unix_nano",
            expected.min_start_time_unix_nano.to_string(),
            summary.min_start_time_unix_nano.to_string(),
        );
        check(
            "max_end_time_unix_nano",
            expected.max_end_time_unix_nano.to_string(),
            summary.max_end_time_unix_nano.to_string(),
        );
        check(
            "error_span_count",
            expected.error_span_count.to_string(),
            summary.error_span_count.to_string(),
        );
        check(
            "orphan_span_count",
            expected.orphan_span_count.to_string(),
            summary.orphan_span_count.to_string(),
        );
        check(
            "services",
            format!("{:?}", expected.services),
            format!("{:?}", summary.services),
        );
        anyhow::ensure!(
            differences.is_empty(),
            "{origin} for trace {}: {}",
            hex::encode(&expected.trace_id),
            differences.join("; ")
        );
        Ok(())
    }

    // ------------------------------------------------------------------ cross-service search

    async fn find_traces_without_service_name(&self) -> anyhow::Result<()> {
        const KEY: &str = "lantern.cross_service";
        let now = UnixNanos::now();
        let services = ["lantern-anywhere-east", "lantern-anywhere-west"];
        for (index, service) in services.iter().enumerate() {
            let marker = u8::try_from(index + 1).unwrap_or(u8::MAX);
            let mut trace_id = [0x5e_u8; 16];
            trace_id[0] = 0xc5;
            trace_id[15] = marker;
            let mut span = plain_span(
                trace_id,
                [0xc5, 0, 0, 0, 0, 0, 0, marker],
                "anywhere.op",
                now,
            );
            span.end_time_unix_nano = now.saturating_add(1_000_000).0;
            span.attributes.push(string_attribute(KEY, "yes"));
            self.target
                .write_traces(vec![resource_spans(service, vec![span])])
                .await
                .with_context(|| format!("writing the {service} trace"))?;
        }
        let hour = 3_600_000_000_000;
        let search = TraceSearch {
            attributes: vec![(KEY.to_owned(), string_value("yes"))],
            start_time_min: Some(now.saturating_sub(hour)),
            start_time_max: Some(now.saturating_add(hour)),
            search_depth: 10,
            ..TraceSearch::default()
        };
        let target = Arc::clone(&self.target);
        let traces = wait_for(
            self.options.wait,
            "FindTraces without service name to return 2 traces with 2 spans",
            move || {
                let target = Arc::clone(&target);
                let search = search.clone();
                async move {
                    let traces = target.find_traces(&search).await.context("FindTraces")?;
                    let spans: usize = traces.iter().map(OtlpTrace::span_count).sum();
                    if traces.len() == 2 && spans == 2 {
                        return Ok(Poll::Ready(traces));
                    }
                    Ok(Poll::Pending(format!(
                        "{} trace(s) with {spans} span(s): {}",
                        traces.len(),
                        describe_traces(&traces, None)
                    )))
                }
            },
        )
        .await?;
        let mut found: Vec<String> = traces
            .iter()
            .flat_map(|trace| trace.resource_spans.iter())
            .map(|group| service_name(group.resource.as_ref()))
            .collect();
        found.sort();
        anyhow::ensure!(
            found == services,
            "services of the results: expected {services:?}, got {found:?}"
        );
        Ok(())
    }

    // ------------------------------------------------------------------ GetDependencies

    async fn get_dependencies(&self) -> anyhow::Result<()> {
        const FRONTEND: &str = "lantern-deps-frontend";
        const BACKEND: &str = "lantern-deps-backend";
        let now = UnixNanos::now();
        let millis = |count: u64| now.saturating_add(count * 1_000_000);
        let mut trace_id = [0xde_u8; 16];
        trace_id[0] = 0xd3;
        let span_id = |number: u8| [0xd3, 0, 0, 0, 0, 0, 0, number];
        let mut frontend_spans = Vec::new();
        let mut root = plain_span(trace_id, span_id(1), "checkout", millis(0));
        root.end_time_unix_nano = millis(50).0;
        frontend_spans.push(root);
        let mut call = plain_span(trace_id, span_id(2), "price", millis(1));
        call.parent_span_id = span_id(1).to_vec();
        // The backend calls the frontend back three times.
        for number in 3..=5 {
            let mut callback = plain_span(trace_id, span_id(number), "quote", millis(2));
            callback.parent_span_id = span_id(2).to_vec();
            frontend_spans.push(callback);
        }
        self.target
            .write_traces(vec![
                resource_spans(FRONTEND, frontend_spans),
                resource_spans(BACKEND, vec![call]),
            ])
            .await
            .context("writing the dependency trace")?;
        let source = if self.options.excused.get_dependencies_missing_source {
            "jaeger"
        } else {
            ""
        };
        let expected = vec![
            (
                BACKEND.to_owned(),
                FRONTEND.to_owned(),
                3_u64,
                source.to_owned(),
            ),
            (
                FRONTEND.to_owned(),
                BACKEND.to_owned(),
                1_u64,
                source.to_owned(),
            ),
        ];
        let start = now.saturating_sub(60_000_000_000);
        let end = now.saturating_add(300_000_000_000);
        let target = Arc::clone(&self.target);
        let expectation = format!(
            "GetDependencies to return exactly {expected:?} (parent, child, call_count, source)"
        );
        wait_for(self.options.wait, &expectation, move || {
            let target = Arc::clone(&target);
            let expected = expected.clone();
            async move {
                let links = target.get_dependencies(start, end).await.map(|links| {
                    let mut got: Vec<(String, String, u64, String)> = links
                        .into_iter()
                        .map(|link| (link.parent, link.child, link.call_count, link.source))
                        .collect();
                    got.sort();
                    got
                });
                Ok(Poll::settled(links, &expected))
            }
        })
        .await
    }
}

/// Native summaries, or Jaeger's fallback (FindTraces + client-side computation) when the
/// storage declines. The flag tells which.
pub async fn summaries_with_fallback(
    target: &dyn SuiteTarget,
    search: &TraceSearch,
) -> anyhow::Result<(Vec<proto::TraceSummary>, bool)> {
    if let Some(summaries) = target.find_trace_summaries(search).await? {
        return Ok((summaries, true));
    }
    let traces = target.find_traces(search).await?;
    let mut summaries = Vec::with_capacity(traces.len());
    for trace in &traces {
        summaries.push(summary_of(trace)?);
    }
    Ok((summaries, false))
}

/// The summary Jaeger's query service computes for a trace.
pub fn summary_of(trace: &OtlpTrace) -> anyhow::Result<proto::TraceSummary> {
    let decoded = spans_from_resource_spans(trace.resource_spans.clone());
    if let Some(reason) = decoded.first_rejection {
        anyhow::bail!(
            "trace {} holds invalid spans: {reason}",
            trace.trace_id_hex()
        );
    }
    let trace_id = TraceId(trace_id_array(trace.trace_id().context("empty trace")?)?);
    let core_trace = Trace {
        trace_id,
        spans: decoded.spans,
    };
    Ok(TraceSummary::from_trace(&core_trace).to_proto())
}

/// Jaeger's `writeLargeTraceWithDuplicateSpanIds`: `total` copies of the example's first span
/// (with its resource and scope), span IDs 1..=total big-endian, every `duplicate_every`-th
/// (from the first multiple on) keeping the original span ID, times shifted by `i + 1` seconds.
pub fn repeated_span_trace(
    example: &OtlpTrace,
    total: usize,
    duplicate_every: usize,
) -> anyhow::Result<OtlpTrace> {
    let group = example
        .resource_spans
        .first()
        .context("example trace has no resource")?;
    let scope_group = group
        .scope_spans
        .first()
        .context("example trace has no scope")?;
    let original = scope_group
        .spans
        .first()
        .context("example trace has no span")?;
    let mut spans = Vec::with_capacity(total);
    for index in 0..total {
        let mut span = original.clone();
        span.span_id = if duplicate_every > 0 && index > 0 && index % duplicate_every == 0 {
            original.span_id.clone()
        } else {
            u64::try_from(index + 1)?.to_be_bytes().to_vec()
        };
        let shift = u64::try_from(index + 1)? * 1_000_000_000;
        span.start_time_unix_nano = original.start_time_unix_nano.saturating_add(shift);
        span.end_time_unix_nano = original.end_time_unix_nano.saturating_add(shift);
        spans.push(span);
    }
    Ok(OtlpTrace::new(vec![ResourceSpans {
        resource: group.resource.clone(),
        scope_spans: vec![ScopeSpans {
            scope: scope_group.scope.clone(),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }]))
}

fn string_value(text: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(text.to_owned())),
    }
}

fn string_attribute(key: &str, text: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(string_value(text)),
        ..Default::default()
    }
}

fn plain_span(trace_id: [u8; 16], span_id: [u8; 8], name: &str, start: UnixNanos) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: name.to_owned(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start.0,
        end_time_unix_nano: start.saturating_add(1_000_000).0,
        ..Default::default()
    }
}

fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string_attribute("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: None,
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// The resource's `service.name` as text (`""` when absent).
pub fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|attribute| attribute.key == "service.name")
        })
        .map(|attribute| {
            remote_storage_core::attribute::any_value_text(attribute.value.as_ref()).into_owned()
        })
        .unwrap_or_default()
}

fn services_of(trace: &OtlpTrace) -> BTreeSet<String> {
    trace
        .resource_spans
        .iter()
        .map(|group| service_name(group.resource.as_ref()))
        .filter(|service| !service.is_empty())
        .collect()
}

fn describe_traces(
    traces: &[OtlpTrace],
    fixtures: Option<(&BTreeMap<String, String>, &BTreeSet<String>)>,
) -> String {
    if traces.is_empty() {
        return "none".to_owned();
    }
    let mut parts = Vec::new();
    for trace in traces.iter().take(10) {
        let id = trace.trace_id_hex();
        let label = match fixtures.and_then(|(names, decoys)| {
            names.get(&id).map(|name| {
                if decoys.contains(name) {
                    format!("{name}, a decoy this query must NOT return")
                } else {
                    name.clone()
                }
            })
        }) {
            Some(name) => format!(" ({name})"),
            None => String::new(),
        };
        parts.push(format!("{id}{label}: {} span(s)", trace.span_count()));
    }
    if traces.len() > 10 {
        parts.push(format!("… {} more", traces.len() - 10));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{DateRewrite, FixtureSet};

    #[test]
    fn large_and_duplicate_traces_follow_jaeger() {
        let set = FixtureSet::own_with_dates(DateRewrite::now()).unwrap();
        let example = set.example_trace().unwrap();
        let large = repeated_span_trace(example, LARGE_TRACE_SPANS, 0).unwrap();
        assert_eq!(large.span_count(), LARGE_TRACE_SPANS);
        let last = large.spans().last().unwrap();
        assert_eq!(last.span_id, 10_008_u64.to_be_bytes());
        let first = example.spans().next().unwrap();
        assert_eq!(
            last.start_time_unix_nano,
            first.start_time_unix_nano + 10_008 * 1_000_000_000
        );
        let duplicates = repeated_span_trace(example, DUPLICATE_TRACE_SPANS, 20).unwrap();
        let original = duplicates
            .spans()
            .filter(|span| span.span_id == first.span_id)
            .count();
        // Index 0 also gets span ID 1, like index 3 with Jaeger's example (ID 4).
        assert_eq!(original, 10);
    }

    #[test]
    fn plan_names_follow_jaeger_and_apply_skips() {
        let set = FixtureSet::own_with_dates(DateRewrite::now()).unwrap();
        let excused = Excused {
            search_requires_service_name: true,
            ..Excused::none().skip("Scope_Attributes")
        };
        let cases = plan(&set, &excused, "memory/own");
        let names: Vec<&str> = cases.iter().map(|case| case.name.as_str()).collect();
        assert_eq!(names[0], "GetServices");
        assert!(names.contains(&"GetTrace/NotFound_error"));
        assert!(names.contains(&"FindTraces/Tags_+_Operation_name"));
        let skipped: Vec<&str> = cases
            .iter()
            .filter(|case| case.skip_reason.is_some())
            .map(|case| case.name.as_str())
            .collect();
        assert_eq!(
            skipped,
            [
                "FindTraces/Scope_Attributes",
                "FindTracesWithoutServiceName"
            ]
        );
    }

    #[test]
    fn summaries_match_the_fallback_rules_for_the_example() {
        let set = FixtureSet::own_with_dates(DateRewrite::now()).unwrap();
        let summary = summary_of(set.example_trace().unwrap()).unwrap();
        assert_eq!(summary.span_count, 10);
        assert_eq!(summary.root_service_name, "shop-frontend");
        assert_eq!(summary.root_operation_name, "GET /checkout");
        assert_eq!(summary.services.len(), 3);
    }
}
