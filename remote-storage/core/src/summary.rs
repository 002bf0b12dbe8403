//! Trace summaries, computed with the rules of Jaeger's FindTraceSummaries fallback so that a
//! native answer equals what Jaeger would compute itself.

use std::collections::{BTreeMap, HashSet};

use jaeger_remote_proto::storage::v2 as proto;

use crate::ids::{SpanId, TraceId};
use crate::model::Trace;
use crate::time::UnixNanos;

/// Span counts of one service within a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    /// Resource `service.name`.
    pub name: String,
    /// Spans of this service.
    pub span_count: u64,
    /// Of those, spans with status ERROR.
    pub error_span_count: u64,
}

/// The summary of one trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    /// The trace.
    pub trace_id: TraceId,
    /// Service of the root span (empty parent, earliest start, first wins ties); `""` if none.
    pub root_service_name: String,
    /// Name of the root span; `""` if none.
    pub root_operation_name: String,
    /// Earliest span start.
    pub min_start: UnixNanos,
    /// Latest span end.
    pub max_end: UnixNanos,
    /// All spans.
    pub span_count: u64,
    /// Spans with status ERROR.
    pub error_span_count: u64,
    /// Spans whose parent ID is set but not among the trace's span IDs.
    pub orphan_span_count: u64,
    /// Per-service counts, sorted by name.
    pub services: Vec<ServiceSummary>,
}

impl TraceSummary {
    /// Summarises a whole trace.
    pub fn from_trace(trace: &Trace) -> Self {
        let span_ids: HashSet<SpanId> = trace.spans.iter().map(|span| span.span_id()).collect();
        let mut services: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut root = None;
        let mut min_start = None;
        let mut max_end = None;
        let mut error_span_count = 0;
        let mut orphan_span_count = 0;
        for span in &trace.spans {
            let counts = services.entry(span.service_name()).or_default();
            counts.0 += 1;
            if span.is_error() {
                counts.1 += 1;
                error_span_count += 1;
            }
            match span.parent_span_id() {
                None => {
                    if root.is_none_or(|(start, _)| span.start() < start) {
                        root = Some((span.start(), span));
                    }
                }
                Some(parent) => {
                    if !span_ids.contains(&parent) {
                        orphan_span_count += 1;
                    }
                }
            }
            min_start =
                Some(min_start.map_or(span.start(), |min: UnixNanos| min.min(span.start())));
            max_end = Some(max_end.map_or(span.end(), |max: UnixNanos| max.max(span.end())));
        }
        Self {
            trace_id: trace.trace_id,
            root_service_name: root
                .map(|(_, span)| span.service_name().to_owned())
                .unwrap_or_default(),
            root_operation_name: root
                .map(|(_, span)| span.name().to_owned())
                .unwrap_or_default(),
            min_start: min_start.unwrap_or_default(),
            max_end: max_end.unwrap_or_default(),
            span_count: u64::try_from(trace.spans.len()).unwrap_or(u64::MAX),
            error_span_count,
            orphan_span_count,
            services: services
                .into_iter()
                .map(|(name, (span_count, error_span_count))| ServiceSummary {
                    name: name.to_owned(),
                    span_count,
                    error_span_count,
                })
                .collect(),
        }
    }

    /// The wire form (counts saturate at `i32::MAX`).
    pub fn to_proto(&self) -> proto::TraceSummary {
        proto::TraceSummary {
            trace_id: self.trace_id.as_bytes().to_vec(),
            root_service_name: self.root_service_name.clone(),
            root_operation_name: self.root_operation_name.clone(),
            min_start_time_unix_nano: self.min_start.0,
            max_end_time_unix_nano: self.max_end.0,
            span_count: saturating_i32(self.span_count),
            error_span_count: saturating_i32(self.error_span_count),
            orphan_span_count: saturating_i32(self.orphan_span_count),
            services: self
                .services
                .iter()
                .map(|service| proto::ServiceSummary {
                    name: service.name.clone(),
                    span_count: saturating_i32(service.span_count),
                    error_span_count: saturating_i32(service.error_span_count),
                })
                .collect(),
        }
    }
}

fn saturating_i32(count: u64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{span, trace_of};

    #[test]
    fn summary_follows_the_fallback_rules() {
        // Two roots: the earlier one wins; one orphan; one error.
        let trace = trace_of(vec![
            span(1, 1, None, "svc-b", "late-root", 200, 300, false),
            span(1, 2, None, "svc-a", "root", 100, 400, false),
            span(1, 3, Some(2), "svc-b", "child", 150, 250, true),
            span(1, 4, Some(9), "svc-a", "orphan", 120, 130, false),
        ]);
        let summary = TraceSummary::from_trace(&trace);
        assert_eq!(summary.root_service_name, "svc-a");
        assert_eq!(summary.root_operation_name, "root");
        assert_eq!(summary.min_start, UnixNanos(100));
        assert_eq!(summary.max_end, UnixNanos(400));
        assert_eq!(summary.span_count, 4);
        assert_eq!(summary.error_span_count, 1);
        assert_eq!(summary.orphan_span_count, 1);
        let names: Vec<&str> = summary.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["svc-a", "svc-b"]);
        assert_eq!(summary.services[1].error_span_count, 1);
        let wire = summary.to_proto();
        assert_eq!(wire.trace_id, vec![1; 16]);
        assert_eq!(wire.span_count, 4);
    }

    #[test]
    fn ties_between_roots_keep_the_first() {
        let trace = trace_of(vec![
            span(1, 1, None, "first", "a", 100, 200, false),
            span(1, 2, None, "second", "b", 100, 200, false),
        ]);
        assert_eq!(TraceSummary::from_trace(&trace).root_service_name, "first");
    }
}
