//! Which index partitions a search reads, in what order, what each index row must satisfy,
//! and where the walk stops.
//!
//! A search is driven by one index:
//! - an attribute condition: `tag_index` under that condition's term (the most selective
//!   index there is; the first exact term of the query is taken);
//! - else a service: `service_index` under the service;
//! - else `span_index`, which holds every span (searches without a service).
//!
//! Every index row carries the span's service, operation, kind, status, start and duration,
//! so those conditions are decided on the row, within the partition being read. Whatever the
//! row cannot decide (a second attribute, a `resource.` key, which must be on the resource and
//! not merely somewhere, a hashed long value, `error`, scope name or version) is decided by
//! the shared matcher on the stored span, read by its document ID. Conditions always hold on
//! one span: rows are spans, never traces.
//!
//! Buckets are walked newest first, only those `active_buckets` lists as holding spans (so an
//! open or long window costs one read per bucket that has data, not per bucket of the
//! window); within a bucket every shard is read (in parallel, paged,
//! never `LIMIT`ed before the conditions are applied) and the rows merged newest first, ties
//! broken by the larger trace ID; the walk stops once `search_depth` distinct traces matched.
//! A bucket holds only spans that start inside it, so the merged order is the global one.

use remote_storage_core::UnixNanos;
use remote_storage_core::index_term::index_term;
use remote_storage_core::matcher::AttributeCondition;
use remote_storage_core::query::TraceQuery;

use crate::buckets::Buckets;
use crate::filter_narrowing::narrow_by_filter;

/// The index a search reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrivingIndex {
    /// `tag_index` under this term.
    Tag(String),
    /// `service_index` under this service.
    Service(String),
    /// `span_index`: every span.
    All,
}

/// What an index row must hold to be a candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// The span's service (when the index is not the service's own).
    pub service: Option<String>,
    /// The span's operation.
    pub operation: Option<String>,
    /// The span's kind (the stored `tinyint`).
    pub kind: Option<i8>,
    /// The span's status code.
    pub status: Option<i8>,
    /// Inclusive duration bounds, in nanoseconds.
    pub duration: (Option<u64>, Option<u64>),
}

/// The columns of one index row that a filter looks at.
#[derive(Debug, Clone, Copy)]
pub struct IndexRow<'a> {
    /// Service name.
    pub service: &'a str,
    /// Operation name.
    pub operation: &'a str,
    /// Span kind.
    pub kind: i8,
    /// Status code.
    pub status: i8,
    /// Duration in nanoseconds.
    pub duration: u64,
}

impl RowFilter {
    /// Whether the row's own columns allow the span.
    pub fn admits(&self, row: &IndexRow<'_>) -> bool {
        self.service.as_deref().is_none_or(|s| s == row.service)
            && self.operation.as_deref().is_none_or(|o| o == row.operation)
            && self.kind.is_none_or(|kind| kind == row.kind)
            && self.status.is_none_or(|status| status == row.status)
            && self.duration.0.is_none_or(|min| row.duration >= min)
            && self.duration.1.is_none_or(|max| row.duration <= max)
    }
}

/// How one search runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan {
    /// The index read.
    pub index: DrivingIndex,
    /// What each row must hold.
    pub filter: RowFilter,
    /// Whether a row that passes the filter must still be decided by the matcher on the
    /// stored span.
    pub needs_span: bool,
    /// The buckets read, newest first.
    pub buckets: Vec<i64>,
    /// The start window, inclusive, checked exactly on every row.
    pub window: (UnixNanos, UnixNanos),
}

impl SearchPlan {
    /// The plan of `query` (its attribute conditions as the matcher parsed them). An open
    /// start bound is closed at the retention (nothing older is stored) or at `now` plus a
    /// day of clock skew.
    pub fn new(
        query: &TraceQuery,
        conditions: &[AttributeCondition],
        buckets: &Buckets,
        now: UnixNanos,
        retention_nanos: u64,
    ) -> Self {
        const SKEW: u64 = 86_400 * 1_000_000_000;
        let window = (
            query
                .start_time_min
                .unwrap_or(UnixNanos(now.0.saturating_sub(retention_nanos))),
            query
                .start_time_max
                .unwrap_or(UnixNanos(now.0.saturating_add(SKEW))),
        );
        let mut filter = RowFilter {
            operation: query.operation_name.clone(),
            duration: (query.duration_min, query.duration_max),
            ..RowFilter::default()
        };
        let mut needs_span = false;
        let mut index = None;
        for condition in conditions {
            match condition {
                AttributeCondition::Anywhere { key, value } => {
                    let term = index_term(key, value);
                    needs_span |= term.hashed;
                    if index.is_none() && !term.hashed {
                        index = Some(DrivingIndex::Tag(term.text));
                    } else {
                        needs_span = true;
                    }
                }
                AttributeCondition::Kind(kind) => {
                    // Two different kinds match nothing: the row check fails either way.
                    let kind = *kind as i8;
                    if filter.kind.is_some_and(|set| set != kind) {
                        needs_span = true;
                    }
                    filter.kind = Some(kind);
                }
                AttributeCondition::Status(code) => {
                    let code = *code as i8;
                    if filter.status.is_some_and(|set| set != code) {
                        needs_span = true;
                    }
                    filter.status = Some(code);
                }
                AttributeCondition::Resource { .. }
                | AttributeCondition::Error(_)
                | AttributeCondition::ScopeName(_)
                | AttributeCondition::ScopeVersion(_) => needs_span = true,
            }
        }
        let mut service = query.service_name.clone();
        let mut window = window;
        if let Some(structured) = &query.filter {
            // The legacy fields are empty beside a filter (the envelope refuses them), so
            // everything above narrowed nothing; the matcher runs the filter on every row.
            needs_span = true;
            let plan = structured.plan();
            let Some(narrowed) = narrow_by_filter(&plan, &mut filter, &mut index, &mut window)
            else {
                return Self::nothing();
            };
            service = narrowed;
        }
        let index = match (index, &service) {
            (Some(tag), service) => {
                filter.service.clone_from(service);
                tag
            }
            (None, Some(service)) => DrivingIndex::Service(service.clone()),
            (None, None) => DrivingIndex::All,
        };
        Self {
            index,
            filter,
            needs_span,
            buckets: buckets.newest_first(window.0, window.1).collect(),
            window,
        }
    }

    /// A plan that reads nothing: no bucket, an empty window.
    fn nothing() -> Self {
        Self {
            index: DrivingIndex::All,
            filter: RowFilter::default(),
            needs_span: true,
            buckets: Vec::new(),
            window: (UnixNanos(1), UnixNanos(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use remote_storage_core::matcher::SpanMatcher;
    use remote_storage_core::proto::otlp::trace::span::SpanKind;
    use remote_storage_core::query::AttributeFilter;

    use super::*;

    const HOUR: u64 = 3_600 * 1_000_000_000;

    fn query() -> TraceQuery {
        let mut query = TraceQuery::all(NonZeroUsize::new(20).unwrap());
        query.start_time_min = Some(UnixNanos(10 * HOUR));
        query.start_time_max = Some(UnixNanos(12 * HOUR));
        query
    }

    fn plan(query: &TraceQuery) -> SearchPlan {
        let matcher = SpanMatcher::new(query);
        SearchPlan::new(
            query,
            matcher.conditions(),
            &Buckets::new(900, 16),
            UnixNanos(1_000 * HOUR),
            7 * 24 * HOUR,
        )
    }

    fn tag(key: &str, value: &str) -> AttributeFilter {
        AttributeFilter {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_service_alone_reads_the_service_index_over_every_bucket_of_the_window() {
        let mut query = query();
        query.service_name = Some("cart".into());
        query.operation_name = Some("GET".into());
        query.duration_min = Some(5);
        let plan = plan(&query);
        assert_eq!(plan.index, DrivingIndex::Service("cart".into()));
        assert_eq!(plan.filter.operation.as_deref(), Some("GET"));
        assert_eq!(plan.filter.duration, (Some(5), None));
        assert!(!plan.needs_span);
        // 10:00 to 12:00 in 15-minute buckets: 40..=48, newest first.
        assert_eq!(plan.buckets, (40..=48).rev().collect::<Vec<_>>());
    }

    #[test]
    fn an_attribute_drives_the_search_and_the_service_becomes_a_row_check() {
        let mut query = query();
        query.service_name = Some("cart".into());
        query.attributes = vec![tag("http.status_code", "500"), tag("span.kind", "server")];
        let plan = plan(&query);
        assert_eq!(
            plan.index,
            DrivingIndex::Tag("16:http.status_code=500".into())
        );
        assert_eq!(plan.filter.service.as_deref(), Some("cart"));
        assert_eq!(plan.filter.kind, Some(SpanKind::Server as i8));
        assert!(!plan.needs_span, "one exact term and a kind: rows decide");
    }

    #[test]
    fn what_rows_cannot_decide_sends_candidates_to_the_matcher() {
        for attributes in [
            vec![tag("a", "1"), tag("b", "2")],
            vec![tag("resource.host", "x")],
            vec![tag("error", "true")],
            vec![tag("scope.name", "lib")],
            vec![tag("sql", &"x".repeat(500))],
        ] {
            let mut query = query();
            query.attributes = attributes.clone();
            assert!(plan(&query).needs_span, "{attributes:?}");
        }
    }

    #[test]
    fn no_service_and_no_attribute_reads_every_span_and_open_windows_close_at_retention() {
        let mut query = query();
        query.start_time_min = None;
        query.start_time_max = None;
        let plan = plan(&query);
        assert_eq!(plan.index, DrivingIndex::All);
        assert_eq!(plan.window.0, UnixNanos(1_000 * HOUR - 7 * 24 * HOUR));
        assert_eq!(plan.window.1, UnixNanos(1_024 * HOUR));
        assert_eq!(plan.buckets.first(), Some(&(1_024 * 4)));
    }

    #[test]
    fn row_filters_check_every_column() {
        let filter = RowFilter {
            service: Some("cart".into()),
            operation: None,
            kind: Some(2),
            status: None,
            duration: (Some(10), Some(20)),
        };
        let row = IndexRow {
            service: "cart",
            operation: "GET",
            kind: 2,
            status: 0,
            duration: 15,
        };
        assert!(filter.admits(&row));
        assert!(!filter.admits(&IndexRow {
            duration: 21,
            ..row
        }));
        assert!(!filter.admits(&IndexRow { kind: 1, ..row }));
        assert!(!filter.admits(&IndexRow {
            service: "x",
            ..row
        }));
    }
}
