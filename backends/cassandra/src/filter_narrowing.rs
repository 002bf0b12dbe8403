//! What a structured filter's plan ([`FilterPlan`]) narrows in a search: the driving index,
//! the row checks and the start window. Every narrowing admits every span the filter can match
//! (exact or wider); the matcher then runs the filter itself on each candidate's stored span.
//!
//! - one attribute text (not hashed): `tag_index` under its term, which holds the terms of
//!   every level the filter can name (span, events, links, scope, resource);
//! - one service: the service index, or a row check when a tag drives;
//! - one span name: a row check on `operation`;
//! - one kind or status other than `unspecified`/`unset`: a row check (the row keeps the raw
//!   wire code, which the evaluator reads as `unspecified`/`unset` when unknown, so those two
//!   are never checked on the row);
//! - `span.duration` ranges: the row's duration bounds; `span.startTime` ranges: the window.
//!
//! Sets of several values (`in`) narrow nothing here: a row check holds one value.

use std::collections::BTreeSet;

use remote_storage_core::UnixNanos;
use remote_storage_core::filter::FilterPlan;
use remote_storage_core::index_term::index_term;

use crate::planner::{DrivingIndex, RowFilter};

/// Narrows `filter`, `index` and `window` by `plan`. Returns the service to search (when the
/// plan pins one), or `None` when no span can match (nothing to read).
pub(crate) fn narrow_by_filter(
    plan: &FilterPlan,
    filter: &mut RowFilter,
    index: &mut Option<DrivingIndex>,
    window: &mut (UnixNanos, UnixNanos),
) -> Option<Option<String>> {
    if plan.is_unsatisfiable() {
        return None;
    }
    let (start_min, start_max) = plan.start.unsigned()?;
    let (duration_min, duration_max) = plan.duration.unsigned()?;
    *window = (
        UnixNanos(window.0.0.max(start_min)),
        UnixNanos(window.1.0.min(start_max)),
    );
    if window.0 > window.1 {
        return None;
    }
    // Rows hold durations clamped to `i64::MAX`: a lower bound above it would lose spans.
    let row_max = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    filter.duration = (
        (duration_min > 0).then_some(duration_min.min(row_max)),
        (duration_max < u64::MAX).then_some(duration_max),
    );
    filter.operation = single(plan.span_names.as_ref()).cloned();
    filter.kind = single(plan.kinds.as_ref())
        .filter(|&&code| code != 0)
        .and_then(|&code| i8::try_from(code).ok());
    filter.status = single(plan.statuses.as_ref())
        .filter(|&&code| code != 0)
        .and_then(|&code| i8::try_from(code).ok());
    if index.is_none() {
        *index = plan.attributes.iter().find_map(|terms| {
            let term = index_term(&terms.key, single(Some(&terms.texts))?);
            (!term.hashed).then_some(DrivingIndex::Tag(term.text))
        });
    }
    Some(single(plan.services.as_ref()).cloned())
}

/// The only element of a set of one.
fn single<T: Ord>(set: Option<&BTreeSet<T>>) -> Option<&T> {
    set.filter(|set| set.len() == 1).and_then(BTreeSet::first)
}
