//! The executor: runs planned cases against one target, writes what a group's cases read
//! before its first case, purges after its last one, and dispatches each case to its test body
//! (the `impl Executor` blocks of the sibling modules, one per RPC).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;

use super::plan::{CaseKind, Group, PlannedCase, Setup};
use crate::fixtures::FixtureSet;
use crate::options::SuiteOptions;
use crate::target::{OtlpTrace, SuiteTarget};

/// Runs planned cases against one target, with per-group setup and clean-up.
pub(crate) struct Executor {
    pub(super) target: Arc<dyn SuiteTarget>,
    /// What the cases write.
    pub(super) fixtures: Arc<FixtureSet>,
    /// What the cases expect back: `fixtures` as the target reads them back
    /// ([`SuiteTarget::expected_back`]), or why that could not be computed.
    expected: Result<FixtureSet, String>,
    pub(super) options: SuiteOptions,
    state: Mutex<ExecutorState>,
    /// When the structured-filter examples start (set when first written).
    pub(super) filter_base: OnceLock<remote_storage_core::UnixNanos>,
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
            filter_base: OnceLock::new(),
        }
    }

    /// The fixtures as the target reads them back.
    pub(super) fn expected(&self) -> anyhow::Result<&FixtureSet> {
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
            Setup::FilterExamples => self.write_filter_examples().await,
        }
    }

    pub(super) async fn write(&self, trace: &OtlpTrace) -> anyhow::Result<()> {
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
            CaseKind::FindTracesWithFilter(index) => self.find_traces_with_filter(index).await,
            CaseKind::FindTracesFilterForm(index) => self.find_traces_filter_form(index).await,
            CaseKind::GetDependencies => self.get_dependencies().await,
        }
    }
}
