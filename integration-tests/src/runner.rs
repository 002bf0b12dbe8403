//! Running the suite: as `libtest-mimic` trials (for `cargo test` targets) or directly with a
//! report (for the binary and for tests of the suite itself).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use remote_storage_core::Backend;
use tokio::runtime::Runtime;

use anyhow::Context as _;

use crate::behaviour::{Check, CheckContext, checks};
use crate::fixtures::{FixtureSet, JAEGER_FIXTURES_ENV, upstream_fixtures_dir};
use crate::in_process::InProcessTarget;
use crate::options::{ReferenceBackend, SuiteOptions};
use crate::suite::{Executor, PlannedCase, plan};
use crate::target::SuiteTarget;
use crate::v1::V1InProcessTarget;

/// One run of the whole suite: a target, a fixture set and options. Trial names are
/// `<name>/<test>` (just `<test>` when `name` is empty).
#[derive(Clone)]
pub struct SuiteRun {
    /// Prefix of every trial name, e.g. `memory/own`.
    pub name: String,
    /// What the suite runs against.
    pub target: Arc<dyn SuiteTarget>,
    /// The fixtures.
    pub fixtures: Arc<FixtureSet>,
    /// Opt-outs, skip list and waiting.
    pub options: SuiteOptions,
}

impl std::fmt::Debug for SuiteRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuiteRun")
            .field("name", &self.name)
            .field("target", &self.target.describe())
            .field("fixtures", &self.fixtures.label())
            .field("options", &self.options)
            .finish()
    }
}

impl SuiteRun {
    /// The planned cases of this run.
    pub fn plan(&self) -> Vec<PlannedCase> {
        plan(&self.fixtures, &self.options.excused, &self.name)
    }

    /// The full trial name of a case.
    pub fn trial_name(&self, case: &PlannedCase) -> String {
        if self.name.is_empty() {
            case.name.clone()
        } else {
            format!("{}/{}", self.name, case.name)
        }
    }
}

/// A multi-threaded runtime (two workers) for running the suite from synchronous code.
pub fn new_runtime() -> anyhow::Result<Arc<Runtime>> {
    Ok(Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    ))
}

/// Builds the trials of several runs, in order. Trials must run on one thread in this order
/// (cases of a group share setup and clean-up), which [`run_libtest`] enforces; `args` is used
/// to know which trials will run, so that each group cleans up after its last one.
pub fn libtest_trials(runtime: &Arc<Runtime>, runs: &[SuiteRun], args: &Arguments) -> Vec<Trial> {
    let mut trials = Vec::new();
    for run in runs {
        let executor = Arc::new(Executor::new(
            Arc::clone(&run.target),
            Arc::clone(&run.fixtures),
            run.options.clone(),
        ));
        let mut scheduled = Vec::new();
        for case in run.plan() {
            let name = run.trial_name(&case);
            let trial = match &case.skip_reason {
                Some(reason) => {
                    let reason = reason.clone();
                    Trial::ignorable_test(name, move || Ok(Completion::ignored_with(reason)))
                }
                None => {
                    let executor = Arc::clone(&executor);
                    let runtime = Arc::clone(runtime);
                    let case_for_trial = case.clone();
                    Trial::test(name, move || {
                        runtime
                            .block_on(executor.execute(&case_for_trial))
                            .map_err(Failed::from)
                    })
                }
            };
            if case.skip_reason.is_none() && !args.is_filtered_out(&trial) {
                scheduled.push(case);
            }
            trials.push(trial);
        }
        executor.schedule(&scheduled);
    }
    trials
}

/// Parses the test binary's arguments, forces one test thread and runs the trials of `runs`.
pub fn run_libtest(runtime: &Arc<Runtime>, runs: &[SuiteRun]) -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = libtest_trials(runtime, runs, &args);
    libtest_mimic::run(&args, trials).exit_code()
}

/// The own fixture set, then the upstream one when it is found (a line on stderr says which).
pub fn fixture_sets() -> anyhow::Result<Vec<(String, Arc<FixtureSet>)>> {
    let mut sets = vec![("own".to_owned(), Arc::new(FixtureSet::own()?))];
    match upstream_fixtures_dir() {
        Some(dir) => {
            eprintln!(
                "storage-conformance: also running with Jaeger's fixtures from {}",
                dir.display()
            );
            sets.push(("jaeger".to_owned(), Arc::new(FixtureSet::load_dir(&dir)?)));
        }
        None => eprintln!(
            "storage-conformance: Jaeger's fixtures not found (set {JAEGER_FIXTURES_ENV} or \
             place them at ../shared/jaeger-fixtures); running with this crate's fixtures only"
        ),
    }
    Ok(sets)
}

/// How a v1 run's data travels: on which side of the store the v1 model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Path {
    /// Written through v1 (and read through v1 or v2): the stored data is what v1 carried, so
    /// searches for what v1 cannot carry are excused.
    WrittenThroughV1,
    /// Written through v2 and read through v1: everything is stored, every search must work.
    ReadThroughV1,
}

/// A run whose target reads through the v1 model (its answers are compared with the fixtures
/// after one pass through v1, see [`SuiteTarget::expected_back`]). When the writes go through
/// v1, the searches the v1 model cannot serve ([`crate::v1::forced_losses`]) are skipped with
/// their reason. Nothing else is.
pub fn v1_suite_run(
    name: String,
    target: Arc<dyn SuiteTarget>,
    fixtures: &Arc<FixtureSet>,
    options: SuiteOptions,
    path: V1Path,
) -> anyhow::Result<SuiteRun> {
    let mut options = options;
    options.excused = options.excused.explain(
        format!("{name}/FindTracesWithFilter"),
        "the v1 API has no structured filter",
    );
    options.excused = options.excused.explain(
        format!("{name}/FindTracesFilterForm"),
        "the v1 API has no structured filter",
    );
    if path == V1Path::WrittenThroughV1 {
        for loss in crate::v1::forced_losses(fixtures)? {
            let pattern = format!("{name}/{}", loss.test_name);
            options.excused = options.excused.explain(pattern, loss.reason);
        }
    }
    Ok(SuiteRun {
        name,
        target,
        fixtures: Arc::clone(fixtures),
        options,
    })
}

/// Runs the whole suite in-process against backends made by `make_backend` (one fresh backend
/// per run), as `libtest-mimic` trials named `<name>/<fixtures>/<test>`, then through the v1
/// model (`<name>/v1/<fixtures>/<test>`, see [`v1_suite_run`]), then the backend checks of
/// [`crate::behaviour`] as trials named `<name>/Backend/<Check>`, each on a fresh backend (see
/// [`backend_trials`]). This is what a backend crate's `tests/conformance.rs`
/// (`harness = false`) calls:
///
/// `options.capabilities` must be what the backends declare (their `CAPABILITIES`); a
/// backend declaring anything else fails the run, so the suite never tests a declaration the
/// backend does not make.
///
/// ```no_run
/// use std::process::ExitCode;
/// use storage_conformance::{SuiteOptions, run_in_process};
///
/// fn main() -> ExitCode {
///     run_in_process(
///         "memory",
///         || async { Ok(backend_memory::open(backend_memory::MemoryConfig::default())) },
///         SuiteOptions::declared(backend_memory::CAPABILITIES),
///     )
/// }
/// ```
pub fn run_in_process<F, Fut>(name: &str, make_backend: F, options: SuiteOptions) -> ExitCode
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Backend>>,
{
    let make_backend = Arc::new(make_backend);
    let prepared = (|| -> anyhow::Result<(Arc<Runtime>, Vec<SuiteRun>)> {
        let runtime = new_runtime()?;
        let mut runs = Vec::new();
        let sets = fixture_sets()?;
        let open = || -> anyhow::Result<Backend> {
            let backend = runtime.block_on(make_backend())?;
            ensure_declared(&backend, &options)?;
            Ok(backend)
        };
        for (label, fixtures) in &sets {
            let backend = open()?;
            runs.push(SuiteRun {
                name: format!("{name}/{label}"),
                target: Arc::new(InProcessTarget::new(backend)),
                fixtures: Arc::clone(fixtures),
                options: options.clone(),
            });
        }
        for (label, fixtures) in &sets {
            let backend = open()?;
            runs.push(v1_suite_run(
                format!("{name}/v1/{label}"),
                Arc::new(V1InProcessTarget::new(backend)),
                fixtures,
                options.clone(),
                V1Path::WrittenThroughV1,
            )?);
        }
        Ok((runtime, runs))
    })();
    match prepared {
        Ok((runtime, runs)) => {
            let mut args = Arguments::from_args();
            args.test_threads = Some(1);
            let mut trials = libtest_trials(&runtime, &runs, &args);
            trials.extend(backend_trials(&runtime, name, make_backend, &options));
            libtest_mimic::run(&args, trials).exit_code()
        }
        Err(error) => {
            eprintln!("storage-conformance: cannot start the {name} suite: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Fails unless `backend` declares what the options say.
fn ensure_declared(backend: &Backend, options: &SuiteOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        backend.capabilities == options.capabilities,
        "the {} backend declares {:?}, but the suite was told {:?}: pass the backend's own \
         CAPABILITIES to SuiteOptions::declared",
        backend.name,
        backend.capabilities,
        options.capabilities
    );
    Ok(())
}

/// The backend checks of [`crate::behaviour::checks`] as trials named `<name>/Backend/<Check>`,
/// each on a fresh backend from `make_backend` (closed afterwards). A check about another
/// declaration than `options.capabilities` is left out; one is skipped when the skip list names
/// it or when it needs a reference backend and none is given.
pub fn backend_trials<F, Fut>(
    runtime: &Arc<Runtime>,
    name: &str,
    make_backend: Arc<F>,
    options: &SuiteOptions,
) -> Vec<Trial>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Backend>>,
{
    checks()
        .into_iter()
        .filter_map(|check| {
            let trial_name = format!("{name}/{}", check.trial_name());
            // A check about another declaration does not apply at all: it is not a skip.
            if !check.applies_to(&options.capabilities) {
                return None;
            }
            let skip_reason = if let Some(entry) = options.excused.skip_entry_for(&trial_name) {
                Some(format!("skip list entry {entry:?}"))
            } else if check.needs_reference() && options.reference.is_none() {
                Some("no reference backend".to_owned())
            } else {
                None
            };
            if let Some(reason) = skip_reason {
                return Some(Trial::ignorable_test(trial_name, move || {
                    Ok(Completion::ignored_with(reason))
                }));
            }
            let runtime = Arc::clone(runtime);
            let make_backend = Arc::clone(&make_backend);
            let options = options.clone();
            Some(Trial::test(trial_name, move || {
                runtime
                    .block_on(run_check(check, &*make_backend, &options))
                    .map_err(|error| Failed::from(format!("{error:#}")))
            }))
        })
        .collect()
}

async fn run_check<F, Fut>(
    check: Check,
    make_backend: &F,
    options: &SuiteOptions,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<Backend>>,
{
    let backend = make_backend().await.context("opening the backend")?;
    ensure_declared(&backend, options)?;
    let reference = match &options.reference {
        Some(reference) if check.needs_reference() => Some(open_reference(reference).await?),
        _ => None,
    };
    let context = CheckContext {
        capabilities: backend.capabilities,
        reference: reference.clone(),
    };
    let outcome = check.run(&backend, &context).await;
    let closed = backend
        .lifecycle
        .close()
        .await
        .context("closing the backend");
    if let Some(reference) = reference {
        reference
            .lifecycle
            .close()
            .await
            .context("closing the reference")?;
    }
    outcome.and(closed)
}

async fn open_reference(reference: &ReferenceBackend) -> anyhow::Result<Backend> {
    reference
        .open()
        .await
        .with_context(|| format!("opening the {} reference backend", reference.name))
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// The failure message (it names the test and the field).
    Failed(String),
    /// Not run; the reason.
    Skipped(String),
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Full trial name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time.
    pub duration: Duration,
}

/// Progress of a direct run.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A case starts.
    Started(&'a str),
    /// A case ended.
    Finished(&'a CaseResult),
}

/// Results of a direct run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every selected case, in order.
    pub results: Vec<CaseResult>,
}

impl Report {
    fn count(&self, matches: impl Fn(&Outcome) -> bool) -> usize {
        self.results
            .iter()
            .filter(|result| matches(&result.outcome))
            .count()
    }

    /// Cases passed.
    pub fn passed(&self) -> usize {
        self.count(|outcome| *outcome == Outcome::Passed)
    }

    /// Cases failed.
    pub fn failed(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Failed(_)))
    }

    /// Cases skipped.
    pub fn skipped(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Skipped(_)))
    }

    /// `N passed, M failed, K skipped`.
    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }

    /// Appends another report.
    pub fn extend(&mut self, other: Report) {
        self.results.extend(other.results);
    }

    /// JUnit XML, one test suite named `suite_name`.
    pub fn to_junit(&self, suite_name: &str) -> anyhow::Result<String> {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new(suite_name);
        let mut total = Duration::ZERO;
        for result in &self.results {
            let status = match &result.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed(message) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(first_line(message));
                    status.set_description(message.as_str());
                    status
                }
                Outcome::Skipped(reason) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(reason.as_str());
                    status
                }
            };
            let mut case = TestCase::new(result.name.as_str(), status);
            case.set_classname(suite_name);
            case.set_time(result.duration);
            total += result.duration;
            suite.add_test_case(case);
        }
        suite.set_time(total);
        let mut report = quick_junit::Report::new("storage-conformance");
        report.set_time(total);
        report.add_test_suite(suite);
        Ok(report.to_string()?)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Runs the selected cases of one run in order, reporting progress. `select` sees full trial
/// names; unselected cases are left out of the report.
pub async fn run_suite(
    run: &SuiteRun,
    select: &dyn Fn(&str) -> bool,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Report {
    let executor = Executor::new(
        Arc::clone(&run.target),
        Arc::clone(&run.fixtures),
        run.options.clone(),
    );
    let cases: Vec<PlannedCase> = run
        .plan()
        .into_iter()
        .filter(|case| select(&run.trial_name(case)))
        .collect();
    executor.schedule(cases.iter().filter(|case| case.skip_reason.is_none()));
    let mut report = Report::default();
    for case in &cases {
        let name = run.trial_name(case);
        progress(Progress::Started(&name));
        let started = Instant::now();
        let outcome = match &case.skip_reason {
            Some(reason) => Outcome::Skipped(reason.clone()),
            None => match executor.execute(case).await {
                Ok(()) => Outcome::Passed,
                Err(message) => Outcome::Failed(message),
            },
        };
        let result = CaseResult {
            name,
            outcome,
            duration: started.elapsed(),
        };
        progress(Progress::Finished(&result));
        report.results.push(result);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_junit() {
        let report = Report {
            results: vec![
                CaseResult {
                    name: "GetServices".into(),
                    outcome: Outcome::Passed,
                    duration: Duration::from_millis(3),
                },
                CaseResult {
                    name: "FindTraces/default".into(),
                    outcome: Outcome::Failed("FindTraces/default failed: boom\nmore".into()),
                    duration: Duration::from_millis(5),
                },
                CaseResult {
                    name: "FindTraceSummaries".into(),
                    outcome: Outcome::Skipped("skip list".into()),
                    duration: Duration::ZERO,
                },
            ],
        };
        assert_eq!(report.summary_line(), "1 passed, 1 failed, 1 skipped");
        let xml = report.to_junit("conformance").unwrap();
        assert!(xml.contains("<testsuite name=\"conformance\""), "{xml}");
        assert!(xml.contains("FindTraces/default failed: boom"), "{xml}");
        assert!(xml.contains("<skipped"), "{xml}");
    }
}
