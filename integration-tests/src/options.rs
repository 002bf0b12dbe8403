//! Suite options: what the storage declares (its [`Capabilities`]), the skip list, the
//! waiting rule and the reference backend of the in-process backend checks
//! ([`crate::behaviour`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use remote_storage_core::{Backend, Capabilities, Visibility};

/// Tests not run, by name. The default (empty) runs every test: what a backend cannot do is
/// declared in its [`Capabilities`], which changes what the tests expect, not which run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excused {
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
    /// One poll, no waiting: for a storage whose writes are readable when the write returns
    /// ([`Visibility::OnReturn`]), which the suite then checks strictly.
    pub const NONE: Self = Self {
        iterations: 0,
        interval: Duration::ZERO,
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

    /// The wait a declared [`Visibility`] allows: none when writes are readable on return,
    /// else polls 50 ms apart (or closer) over the stated refresh bound.
    pub fn for_visibility(visibility: Visibility) -> Self {
        let bound = visibility.delay();
        if bound.is_zero() {
            return Self::NONE;
        }
        let interval = bound.min(Duration::from_millis(50));
        let polls = bound.as_nanos().div_ceil(interval.as_nanos());
        Self {
            iterations: u32::try_from(polls).unwrap_or(u32::MAX),
            interval,
        }
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

/// All knobs of one suite run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// What the storage declares: it changes what the tests expect (a refusal instead of
    /// results for an undeclared query shape, names only for operations without kinds…) and
    /// which backend checks apply.
    pub capabilities: Capabilities,
    /// Skip list.
    pub excused: Excused,
    /// The waiting rule.
    pub wait: WaitPolicy,
    /// The backend whose answers this one must equal on a generated dataset; `None` skips
    /// `Backend/Equivalent_to_reference`. In-process backend checks only.
    pub reference: Option<ReferenceBackend>,
}

impl SuiteOptions {
    /// For a storage that declares `capabilities`: nothing skipped, and a written span must
    /// be readable within the declared visibility (at once for [`Visibility::OnReturn`]).
    pub fn declared(capabilities: Capabilities) -> Self {
        Self {
            capabilities,
            excused: Excused::none(),
            wait: WaitPolicy::for_visibility(capabilities.visibility),
            reference: None,
        }
    }

    /// For a server of unknown declaration, as Jaeger's suite runs: every shape expected,
    /// Jaeger's waiting.
    pub fn external() -> Self {
        Self {
            capabilities: Capabilities::FULL,
            excused: Excused::none(),
            wait: WaitPolicy::EXTERNAL,
            reference: None,
        }
    }

    /// Replaces the skip list.
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

    /// Compares the backend with `reference` in `Backend/Equivalent_to_reference`.
    #[must_use]
    pub fn with_reference(mut self, reference: ReferenceBackend) -> Self {
        self.reference = Some(reference);
        self
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
    fn the_wait_follows_the_declared_visibility() {
        assert_eq!(
            WaitPolicy::for_visibility(Visibility::OnReturn),
            WaitPolicy::NONE
        );
        let refresh = WaitPolicy::for_visibility(Visibility::WithinRefresh(Duration::from_secs(1)));
        assert_eq!(refresh.interval, Duration::from_millis(50));
        assert_eq!(refresh.budget(), Duration::from_secs(1));
        let short =
            WaitPolicy::for_visibility(Visibility::WithinRefresh(Duration::from_millis(20)));
        assert_eq!(
            (short.iterations, short.interval),
            (1, Duration::from_millis(20))
        );
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
