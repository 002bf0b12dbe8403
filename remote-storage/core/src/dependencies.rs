//! Dependency links derived from stored spans: for every span whose parent is in the same
//! trace, one call from the parent's service to the span's service.

use std::collections::HashMap;
use std::ops::Range;

use crate::ids::SpanId;
use crate::model::{DependencyLink, Span, Trace};
use crate::query::DependencyQuery;
use crate::time::UnixNanos;

/// One minute in nanoseconds: the bucket width of the backends that keep calls per minute of
/// the callee's start.
pub const MINUTE_NANOS: u64 = 60_000_000_000;

/// A window split for a backend that keeps calls per minute: the minutes lying wholly inside
/// it come from the per-minute counts, the rest (its partial minutes at either edge) is
/// counted exactly, so answers are exact at any window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteSplit {
    /// The minutes (`start / MINUTE_NANOS`) lying wholly inside the window, if any.
    pub whole: Option<Range<u64>>,
    /// The parts of the window outside those minutes: up to two edges, or the whole window
    /// when no minute is whole.
    pub edges: Vec<DependencyQuery>,
}

/// Splits an inclusive window at whole minutes; see [`MinuteSplit`].
pub fn split_at_minutes(window: &DependencyQuery) -> MinuteSplit {
    let first = window.start.0.div_ceil(MINUTE_NANOS);
    // The minute holding `end` is whole only when `end` is its last nanosecond.
    let end = window.end.0;
    let after_last = end / MINUTE_NANOS + u64::from(end % MINUTE_NANOS == MINUTE_NANOS - 1);
    if first >= after_last {
        return MinuteSplit {
            whole: None,
            edges: vec![*window],
        };
    }
    let mut edges = Vec::new();
    let whole_start = first * MINUTE_NANOS;
    if window.start.0 < whole_start {
        edges.push(DependencyQuery {
            start: window.start,
            end: UnixNanos(whole_start - 1),
        });
    }
    // `None`: the whole minutes reach the last representable nanosecond.
    if let Some(whole_end) = after_last
        .checked_mul(MINUTE_NANOS)
        .filter(|whole_end| *whole_end <= end)
    {
        edges.push(DependencyQuery {
            start: UnixNanos(whole_end),
            end: window.end,
        });
    }
    MinuteSplit {
        whole: Some(first..after_last),
        edges,
    }
}

/// What [`DependencyCounter::add_call_sites`] needs of one span.
#[derive(Debug, Clone, Copy)]
pub struct CallSite<'a> {
    /// The span's ID.
    pub span_id: SpanId,
    /// Its parent's ID; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// Its service name.
    pub service: &'a str,
    /// Its start time.
    pub start: UnixNanos,
}

/// Accumulates call counts over many traces.
#[derive(Debug, Default)]
pub struct DependencyCounter {
    /// Parent service → child service → calls.
    calls: HashMap<String, HashMap<String, u64>>,
}

impl DependencyCounter {
    /// Counts the calls of one trace whose child span starts inside the window. The parent may
    /// start outside it: a call belongs to the window its callee ran in. Self-calls count too.
    pub fn add_trace(&mut self, trace: &Trace, window: &DependencyQuery) {
        self.add_spans(&trace.spans, window);
    }

    /// Same as [`DependencyCounter::add_trace`], for the spans of one trace held elsewhere.
    pub fn add_spans(&mut self, spans: &[Span], window: &DependencyQuery) {
        self.add_call_sites(
            spans.iter().map(|span| CallSite {
                span_id: span.span_id(),
                parent_span_id: span.parent_span_id(),
                service: span.service_name(),
                start: span.start(),
            }),
            window,
        );
    }

    /// Same as [`DependencyCounter::add_trace`], for a backend that keeps the fields a call
    /// needs apart from the span (the iterator is walked twice).
    pub fn add_call_sites<'a>(
        &mut self,
        spans: impl Iterator<Item = CallSite<'a>> + Clone,
        window: &DependencyQuery,
    ) {
        let mut service_by_span: HashMap<SpanId, &str> =
            HashMap::with_capacity(spans.size_hint().0);
        for span in spans.clone() {
            // With duplicated span IDs the first span wins, as in Jaeger's memory store.
            service_by_span.entry(span.span_id).or_insert(span.service);
        }
        for span in spans {
            if !window.contains(span.start) {
                continue;
            }
            let Some(parent_service) = span
                .parent_span_id
                .and_then(|parent| service_by_span.get(&parent))
            else {
                continue;
            };
            // Looked up by borrowed names: most calls repeat a known pair.
            let children = match self.calls.get_mut(*parent_service) {
                Some(children) => children,
                None => self.calls.entry((*parent_service).to_owned()).or_default(),
            };
            match children.get_mut(span.service) {
                Some(count) => *count += 1,
                None => {
                    children.insert(span.service.to_owned(), 1);
                }
            }
        }
    }

    /// Adds `calls` calls from `parent` to `child`, counted elsewhere (e.g. a backend's
    /// rollups of whole time buckets).
    pub fn add_calls(&mut self, parent: &str, child: &str, calls: u64) {
        if calls == 0 {
            return;
        }
        *self
            .calls
            .entry(parent.to_owned())
            .or_default()
            .entry(child.to_owned())
            .or_default() += calls;
    }

    /// The links, sorted by parent then child.
    pub fn finish(self) -> Vec<DependencyLink> {
        let mut links: Vec<DependencyLink> = self
            .calls
            .into_iter()
            .flat_map(|(parent, children)| {
                children
                    .into_iter()
                    .map(move |(child, call_count)| DependencyLink {
                        parent: parent.clone(),
                        child,
                        call_count,
                    })
            })
            .collect();
        links.sort_unstable_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
        links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: u64, end: u64) -> DependencyQuery {
        DependencyQuery {
            start: UnixNanos(start),
            end: UnixNanos(end),
        }
    }

    #[test]
    fn only_minutes_wholly_inside_the_window_are_whole() {
        let whole = |start, end| split_at_minutes(&window(start, end)).whole;
        let minute = MINUTE_NANOS;
        assert_eq!(whole(0, minute - 1), Some(0..1));
        assert_eq!(whole(0, minute - 2), None);
        assert_eq!(whole(1, 3 * minute), Some(1..3));
        assert_eq!(whole(minute, 3 * minute - 1), Some(1..3));
        assert_eq!(whole(5, 6), None);
        assert!(whole(0, u64::MAX).is_some_and(|whole| whole.start == 0));
    }

    #[test]
    fn the_edges_are_the_rest_of_the_window() {
        let minute = MINUTE_NANOS;
        assert_eq!(
            split_at_minutes(&window(5, 3 * minute + 7)).edges,
            [window(5, minute - 1), window(3 * minute, 3 * minute + 7)]
        );
        assert_eq!(
            split_at_minutes(&window(minute, 2 * minute - 1)).edges,
            Vec::<DependencyQuery>::new()
        );
        assert_eq!(split_at_minutes(&window(5, 6)).edges, [window(5, 6)]);
        // u64::MAX ends inside a minute: that partial minute is the only edge.
        let last_start = (u64::MAX / minute) * minute;
        assert_eq!(
            split_at_minutes(&window(0, u64::MAX)).edges,
            [window(last_start, u64::MAX)]
        );
    }
    use crate::testing::{span, trace_of};
    use crate::time::UnixNanos;

    #[test]
    fn links_count_child_calls_inside_the_window() {
        let trace = trace_of(vec![
            span(1, 1, None, "frontend", "root", 100, 900, false),
            span(1, 2, Some(1), "backend", "a", 200, 300, false),
            span(1, 3, Some(1), "backend", "b", 400, 500, false),
            span(1, 4, Some(2), "backend", "self", 210, 220, false),
            span(1, 5, Some(7), "backend", "orphan", 230, 240, false),
            span(1, 6, Some(1), "late", "outside", 5_000, 5_100, false),
        ]);
        let window = DependencyQuery {
            start: UnixNanos(0),
            end: UnixNanos(1_000),
        };
        let mut counter = DependencyCounter::default();
        counter.add_trace(&trace, &window);
        let links = counter.finish();
        assert_eq!(
            links,
            vec![
                DependencyLink {
                    parent: "backend".into(),
                    child: "backend".into(),
                    call_count: 1
                },
                DependencyLink {
                    parent: "frontend".into(),
                    child: "backend".into(),
                    call_count: 2
                },
            ]
        );
    }
}
