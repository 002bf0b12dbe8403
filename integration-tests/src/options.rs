//! Suite options: opt-out capabilities, the skip list, the waiting rule and the options of
//! the in-process backend checks ([`crate::behaviour`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use remote_storage_core::Backend;

/// What a backend cannot do. The default (all `false`, empty skip list) runs every test, as
/// Jaeger's zero-value `Capabilities` does; a backend lists only its gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excused {
    /// Searches need a service name: `FindTracesWithoutServiceName` is skipped.
    pub search_requires_service_name: bool,
    /// GetOperations answers without span kinds: only operation names are compared and the
    /// kind-filter sub-test is skipped.
    pub get_operations_missing_span_kind: bool,
    /// Dependency links carry source `"jaeger"` instead of `""`.
    pub get_dependencies_missing_source: bool,
    /// Test-name substrings to skip, e.g. `Scope_Attributes` or `FindTraceSummaries`
    /// (matched against the full trial name, like Jaeger's `skipIfNeeded`).
    pub skip: Vec<String>,
    /// Tests that cannot pass for a stated reason (e.g. what the v1 model cannot carry):
    /// `(test-name substring, reason)`, reported with the reason.
    pub explained: Vec<(String, String)>,
}

impl Excused {
    /// Nothing excused: every test runs.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a skip-list entry.
    #[must_use]
    pub fn skip(mut self, pattern: impl Into<String>) -> Self {
        self.skip.push(pattern.into());
        self
    }

    /// Adds an explained skip.
    #[must_use]
    pub fn explain(mut self, pattern: impl Into<String>, reason: impl Into<String>) -> Self {
        self.explained.push((pattern.into(), reason.into()));
        self
    }

    /// The skip-list entry matching `test_name`, if any.
    pub fn skip_entry_for(&self, test_name: &str) -> Option<&str> {
        self.skip
            .iter()
            .map(String::as_str)
            .find(|pattern| !pattern.is_empty() && test_name.contains(pattern))
    }

    /// The reason of the explained skip matching `test_name`, if any.
    pub fn explanation_for(&self, test_name: &str) -> Option<&str> {
        self.explained
            .iter()
            .find(|(pattern, _)| !pattern.is_empty() && test_name.contains(pattern.as_str()))
            .map(|(_, reason)| reason.as_str())
    }
}

/// How long to wait for a condition: `iterations` polls `interval` apart, then one last poll
/// (Jaeger's `waitForCondition`: 100 × 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Polls before the final one.
    pub iterations: u32,
    /// Pause between polls.
    pub interval: Duration,
}

impl WaitPolicy {
    /// 200 × 50 ms: for in-process backends and in-process servers, where writes are visible
    /// at once.
    pub const IN_PROCESS: Self = Self {
        iterations: 200,
        interval: Duration::from_millis(50),
    };

    /// 100 × 1 s, as Jaeger: for external servers.
    pub const EXTERNAL: Self = Self {
        iterations: 100,
        interval: Duration::from_secs(1),
    };

    /// Worst-case wait.
    pub fn budget(&self) -> Duration {
        self.interval.saturating_mul(self.iterations)
    }
}

/// Opens a fresh reference backend (the memory backend, in practice) for
/// `Backend/Equivalent_to_reference`. The suite's library depends on no backend crate: the
/// caller brings its own.
#[derive(Clone)]
pub struct ReferenceBackend {
    /// Name shown in failure messages, e.g. `memory`.
    pub name: String,
    open: Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Backend>> + Send + Sync>,
}

impl ReferenceBackend {
    /// A reference opened by `open` (called once per check run).
    pub fn new<F, Fut>(name: impl Into<String>, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<Backend>> + Send + 'static,
    {
        Self {
            name: name.into(),
            open: Arc::new(move || Box::pin(open())),
        }
    }

    /// Opens a fresh, empty reference backend.
    pub async fn open(&self) -> anyhow::Result<Backend> {
        (self.open)().await
    }
}

impl std::fmt::Debug for ReferenceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceBackend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// In which order a backend returns the spans of a trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpanOrder {
    /// In the order they were written (memory, PostgreSQL): the checks compare span order, and
    /// summaries' "first stored wins" tie-breaks.
    #[default]
    AsWritten,
    /// In an order of the backend's own (LSM: key order). The contract allows it; the checks
    /// then compare the spans of a trace as a multiset.
    Any,
}

/// Options of the in-process backend checks (`<name>/Backend/<Check>` trials, see
/// [`crate::behaviour`]). The default runs every check that needs no declaration.
#[derive(Debug, Clone, Default)]
pub struct BackendChecks {
    /// An identical re-sent batch (an Export retry) adds no spans, while identical copies
    /// inside one batch are all kept. LSM and PostgreSQL promise this; the memory backend, like
    /// Jaeger's reference store, keeps the copy. On: `Backend/Idempotent_rewrite` runs; off:
    /// `Backend/Rewrite_keeps_copies` runs instead and the other checks expect the copies.
    pub idempotent_writes: bool,
    /// Whether spans come back in write order.
    pub span_order: SpanOrder,
    /// The backend whose answers this one must equal on a generated dataset; `None` skips
    /// `Backend/Equivalent_to_reference`.
    pub reference: Option<ReferenceBackend>,
}

/// All knobs of one suite run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Opt-outs and skip list (the skip list applies to the backend checks too).
    pub excused: Excused,
    /// The waiting rule.
    pub wait: WaitPolicy,
    /// Options of the in-process backend checks; unused over gRPC.
    pub backend_checks: BackendChecks,
}

impl SuiteOptions {
    /// Nothing excused, in-process waiting.
    pub fn in_process() -> Self {
        Self {
            excused: Excused::none(),
            wait: WaitPolicy::IN_PROCESS,
            backend_checks: BackendChecks::default(),
        }
    }

    /// Nothing excused, Jaeger's waiting.
    pub fn external() -> Self {
        Self {
            excused: Excused::none(),
            wait: WaitPolicy::EXTERNAL,
            backend_checks: BackendChecks::default(),
        }
    }

    /// Replaces the opt-outs.
    #[must_use]
    pub fn with_excused(mut self, excused: Excused) -> Self {
        self.excused = excused;
        self
    }

    /// Replaces the waiting rule.
    #[must_use]
    pub fn with_wait(mut self, wait: WaitPolicy) -> Self {
        self.wait = wait;
        self
    }

    /// Declares that an identical re-sent batch adds no spans
    /// ([`BackendChecks::idempotent_writes`]).
    #[must_use]
    pub fn with_idempotent_writes(mut self, idempotent: bool) -> Self {
        self.backend_checks.idempotent_writes = idempotent;
        self
    }

    /// Declares in which order the spans of a trace come back ([`BackendChecks::span_order`]).
    #[must_use]
    pub fn with_span_order(mut self, order: SpanOrder) -> Self {
        self.backend_checks.span_order = order;
        self
    }

    /// Compares the backend with `reference` in `Backend/Equivalent_to_reference`.
    #[must_use]
    pub fn with_reference(mut self, reference: ReferenceBackend) -> Self {
        self.backend_checks.reference = Some(reference);
        self
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self::in_process()
    }
}

/// One poll of a condition.
#[derive(Debug)]
pub enum Poll<T> {
    /// The condition holds.
    Ready(T),
    /// Not yet; the text describes what was observed.
    Pending(String),
}

impl Poll<()> {
    /// Ready when the call succeeded with exactly `expected`; otherwise pending with what was
    /// observed (the value, or the error).
    pub fn settled<T: PartialEq + std::fmt::Debug>(
        observed: anyhow::Result<T>,
        expected: &T,
    ) -> Self {
        match observed {
            Ok(value) if &value == expected => Self::Ready(()),
            Ok(value) => Self::Pending(format!("{value:?}")),
            Err(error) => Self::Pending(format!("error: {error:#}")),
        }
    }
}

/// Polls until the condition holds. An `Err` from a poll stops at once; on timeout the error
/// reports what was expected and the last observed state.
pub async fn wait_for<T, F, Fut>(
    policy: WaitPolicy,
    expectation: &str,
    mut poll: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T>>>,
{
    let mut last_observed = String::new();
    for attempt in 0..=policy.iterations {
        match poll().await? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(observed) => last_observed = observed,
        }
        if attempt < policy.iterations {
            tokio::time::sleep(policy.interval).await;
        }
    }
    anyhow::bail!(
        "timed out after {} polls over {:?} waiting for {expectation}; last observed: {last_observed}",
        u64::from(policy.iterations) + 1,
        policy.budget()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_entries_match_by_substring() {
        let excused = Excused::none().skip("Scope_Attributes").skip("");
        assert_eq!(
            excused.skip_entry_for("grpc/FindTraces/Scope_Attributes"),
            Some("Scope_Attributes")
        );
        assert_eq!(excused.skip_entry_for("GetServices"), None);
    }

    #[test]
    fn settled_is_ready_only_on_the_expected_value() {
        assert!(matches!(
            Poll::settled(Ok(vec![1, 2]), &vec![1, 2]),
            Poll::Ready(())
        ));
        let Poll::Pending(observed) = Poll::settled(Ok(vec![2]), &vec![1, 2]) else {
            panic!("a different value is pending");
        };
        assert_eq!(observed, "[2]");
        let Poll::Pending(observed) = Poll::settled(Err(anyhow::anyhow!("down")), &vec![1]) else {
            panic!("an error is pending");
        };
        assert_eq!(observed, "error: down");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiting_reports_the_last_observed_state() {
        let policy = WaitPolicy {
            iterations: 3,
            interval: Duration::from_millis(1),
        };
        let mut calls = 0;
        let error = wait_for::<(), _, _>(policy, "three services", || {
            calls += 1;
            let observed = format!("call {calls}");
            async move { Ok(Poll::Pending(observed)) }
        })
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(calls, 4);
        assert!(error.contains("three services"), "{error}");
        assert!(error.contains("last observed: call 4"), "{error}");

        let mut count = 0;
        let value = wait_for(policy, "x", || {
            count += 1;
            let ready = count == 2;
            async move {
                Ok(if ready {
                    Poll::Ready(7)
                } else {
                    Poll::Pending(String::new())
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 7);
    }
}
