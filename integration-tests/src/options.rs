//! Suite options: opt-out capabilities, the skip list and the waiting rule.

use std::future::Future;
use std::time::Duration;

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

    /// The skip-list entry matching `test_name`, if any.
    pub fn skip_entry_for(&self, test_name: &str) -> Option<&str> {
        self.skip
            .iter()
            .map(String::as_str)
            .find(|pattern| !pattern.is_empty() && test_name.contains(pattern))
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

/// All knobs of one suite run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Opt-outs and skip list.
    pub excused: Excused,
    /// The waiting rule.
    pub wait: WaitPolicy,
}

impl SuiteOptions {
    /// Nothing excused, in-process waiting.
    pub fn in_process() -> Self {
        Self {
            excused: Excused::none(),
            wait: WaitPolicy::IN_PROCESS,
        }
    }

    /// Nothing excused, Jaeger's waiting.
    pub fn external() -> Self {
        Self {
            excused: Excused::none(),
            wait: WaitPolicy::EXTERNAL,
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
