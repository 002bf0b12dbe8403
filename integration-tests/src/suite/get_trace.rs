//! `GetTrace` (with `NotFound_error`), `GetLargeTrace` and `GetTraceWithDuplicateSpans`: the
//! example trace, an unknown trace ID, and traces of one repeated span
//! ([`repeated_span_trace`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans};

use super::executor::Executor;
use super::otlp::describe_traces;
use crate::compare::compare_traces;
use crate::options::{Poll, wait_for};
use crate::target::{OtlpTrace, trace_id_array};

/// Spans of the `GetLargeTrace` trace (Jaeger's value).
pub const LARGE_TRACE_SPANS: usize = 10_008;
/// Spans of the `GetTraceWithDuplicateSpans` trace.
pub const DUPLICATE_TRACE_SPANS: usize = 200;
/// Every this many spans (from the 20th on) reuses the original span ID.
pub const DUPLICATE_FREQUENCY: usize = 20;

impl Executor {
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

    pub(super) async fn get_trace(&self) -> anyhow::Result<()> {
        let expected = self.expected()?.example_trace()?;
        self.wait_for_trace(expected).await.map(drop)
    }

    pub(super) async fn get_trace_not_found(&self) -> anyhow::Result<()> {
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

    pub(super) async fn get_large_trace(&self) -> anyhow::Result<()> {
        let large = repeated_span_trace(self.fixtures.example_trace()?, LARGE_TRACE_SPANS, 0)?;
        self.write(&large).await?;
        let expected = self.target.expected_back(&large)?;
        self.wait_for_trace(&expected).await.map(drop)
    }

    pub(super) async fn get_trace_with_duplicate_spans(&self) -> anyhow::Result<()> {
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
}
