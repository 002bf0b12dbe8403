//! `FindTraceSummaries`: the storage's native summaries, or Jaeger's fallback when it declines
//! ([`summaries_with_fallback`]), checked against the summary Jaeger's query service computes
//! ([`summary_of`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use jaeger_remote_proto::storage::v2 as proto;
use remote_storage_core::convert::spans_from_resource_spans;
use remote_storage_core::{Trace, TraceId, TraceSummary, UnixNanos};

use super::executor::Executor;
use super::otlp::service_name;
use crate::options::{Poll, wait_for};
use crate::target::{OtlpTrace, SuiteTarget, TraceSearch, trace_id_array};

impl Executor {
    pub(super) async fn find_trace_summaries(&self) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{DateRewrite, FixtureSet};

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
