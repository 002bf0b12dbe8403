//! `FindTracesFilterForm`: issue 17's legacy equivalence. For every `FindTraces` query of the
//! fixture set, its filter form ([`legacy_filter_form`]: the spec's "exact legacy equivalents"
//! with the legacy search's special keys) must return exactly the legacy answer, in the same
//! order, over the same query fixtures.
//!
//! Two forms are checked. With the legacy reach (ordinary attribute keys spelled out as an `or`
//! over span-or-resource, scope, event and link attributes) the form is exact on any data, so
//! it must equal the legacy answer. With the spec's narrow reference (`eq(attr(k))`, span or
//! resource only: the indexable form) it must equal it too, unless the query has an ordinary
//! attribute key: then the legacy search may also find it on a scope, event or link, and the
//! narrow form must return a subsequence of the legacy answer.
//!
//! A storage that does not declare filter support must refuse the filter form with
//! `INVALID_ARGUMENT`, as in `FindTracesWithFilter`.

use std::num::NonZeroUsize;
use std::sync::Arc;

use anyhow::Context as _;
use jaeger_remote_proto::expression::v1::Call;
use remote_storage_core::TraceQuery;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::filter::{AttributeReach, legacy_filter_form};
use remote_storage_core::query::AttributeFilter;

use super::executor::Executor;
use crate::options::{Poll, wait_for};
use crate::target::{OtlpTrace, TraceSearch};

/// The core query of a suite search's legacy fields (what the server builds from them).
fn legacy_query(search: &TraceSearch) -> TraceQuery {
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    TraceQuery {
        service_name: non_empty(&search.service_name),
        operation_name: non_empty(&search.operation_name),
        attributes: search
            .attributes
            .iter()
            .map(|(key, value)| AttributeFilter {
                key: key.clone(),
                value: any_value_text(Some(value)).into_owned(),
            })
            .collect(),
        duration_min: search.duration_min,
        duration_max: search.duration_max,
        ..TraceQuery::all(NonZeroUsize::MIN)
    }
}

/// `search` with its legacy conditions replaced by `filter` (window and depth kept).
fn filter_search(search: &TraceSearch, filter: Call) -> TraceSearch {
    TraceSearch {
        service_name: String::new(),
        operation_name: String::new(),
        attributes: Vec::new(),
        duration_min: None,
        duration_max: None,
        filter: Some(filter),
        ..search.clone()
    }
}

fn ids(traces: &[OtlpTrace]) -> Vec<String> {
    traces.iter().map(OtlpTrace::trace_id_hex).collect()
}

/// Whether `part` is `whole` with some elements left out, order kept.
fn is_subsequence(part: &[String], whole: &[String]) -> bool {
    let mut rest = whole.iter();
    part.iter().all(|id| rest.any(|other| other == id))
}

impl Executor {
    pub(super) async fn find_traces_filter_form(&self, index: usize) -> anyhow::Result<()> {
        let case = self
            .fixtures
            .queries()
            .get(index)
            .context("query case out of range")?;
        let query = legacy_query(&case.search);
        let (Some(wide), Some(narrow)) = (
            legacy_filter_form(&query, AttributeReach::Legacy),
            legacy_filter_form(&query, AttributeReach::SpanOrResource),
        ) else {
            anyhow::bail!(
                "the query has no condition, so no filter form: {:?}",
                case.search
            );
        };
        let capabilities = self.options.capabilities;
        if !(capabilities.structured_filters && capabilities.without_service_name) {
            return self
                .expect_refusal(&filter_search(&case.search, wide))
                .await
                .context("the filter form on a storage declaring no filter support");
        }

        // The legacy answer, once it holds the expected fixtures (as `FindTraces` waits).
        let mut expected = Vec::new();
        for name in &case.expected_fixtures {
            expected.push(self.expected()?.trace(name)?.trace_id_hex());
        }
        expected.sort();
        let target = Arc::clone(&self.target);
        let search = case.search.clone();
        let legacy = wait_for(
            self.options.wait,
            &format!("legacy FindTraces to return {expected:?}"),
            || {
                let target = Arc::clone(&target);
                let search = search.clone();
                let expected = expected.clone();
                async move {
                    let found = ids(&target.find_traces(&search).await.context("FindTraces")?);
                    let mut sorted = found.clone();
                    sorted.sort();
                    Ok(if sorted == expected {
                        Poll::Ready(found)
                    } else {
                        Poll::Pending(format!("{found:?}"))
                    })
                }
            },
        )
        .await?;

        let narrow_is_exact = narrow == wide;
        for (form, filter) in [("legacy-reach", wide), ("spec (narrow)", narrow)] {
            let search = filter_search(&case.search, filter);
            let found = ids(&self.target.find_traces(&search).await.with_context(|| {
                format!("FindTraces with the {form} filter form {:?}", search.filter)
            })?);
            let exact = form == "legacy-reach" || narrow_is_exact;
            let agrees = if exact {
                found == legacy
            } else {
                is_subsequence(&found, &legacy)
            };
            anyhow::ensure!(
                agrees,
                "the {form} filter form returned {found:?}, the legacy query {legacy:?} (expected \
                 {}): filter {:?}",
                if exact {
                    "the same, in order"
                } else {
                    "a subsequence"
                },
                search.filter
            );
        }
        Ok(())
    }
}
