//! The search clauses a structured filter's plan ([`FilterPlan`]) gives: every one holds for
//! every span document the filter can match (exact or wider), so they only narrow the page
//! walk; each candidate is still decided by the shared matcher (which runs the filter's own
//! evaluator) on the decoded span.
//!
//! - `resource.service`, `span.name`: `terms` on the `service` and `operation` keywords (the
//!   document holds the span's `service_name()` and name, what the evaluator compares);
//! - `span.kind`: `terms` on `kind`, written from the same `span.kind()` the evaluator reads;
//! - `span.status`: `terms` on `status`, only when the set excludes `unset`: the document holds
//!   the raw wire code while the evaluator reads unknown codes as `unset`;
//! - attributes of any level: `terms` on `terms`, which holds every level's attributes (span,
//!   events, links, scope, resource) as the index term of their canonical text (hashed when
//!   long, so a hash collision only widens);
//! - `span.duration`, `span.startTime`: ranges on the whole-microsecond `duration` and `start`
//!   fields, floored like the stored values so no nanosecond of the range is lost.

use remote_storage_core::filter::FilterPlan;
use remote_storage_core::index_term::index_term;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::trace::span::SpanKind;
use remote_storage_core::proto::otlp::trace::status::StatusCode;
use serde_json::{Value, json};

use crate::document::micros;

/// The clauses of a plan, or `None` when no span can satisfy it (nothing to search).
pub(crate) fn filter_clauses(plan: &FilterPlan) -> Option<Vec<Value>> {
    if plan.is_unsatisfiable() {
        return None;
    }
    let (start, duration) = (plan.start.unsigned()?, plan.duration.unsigned()?);
    let mut clauses = Vec::new();
    if let Some(services) = &plan.services {
        clauses.push(json!({"terms": {"service": services}}));
    }
    if let Some(names) = &plan.span_names {
        clauses.push(json!({"terms": {"operation": names}}));
    }
    if let Some(kinds) = &plan.kinds {
        let names: Vec<&str> = kinds
            .iter()
            .filter_map(|&code| SpanKind::try_from(code).ok())
            .map(span_kind_name)
            .collect();
        clauses.push(json!({"terms": {"kind": names}}));
    }
    if let Some(codes) = &plan.statuses
        && !codes.contains(&(StatusCode::Unset as i32))
    {
        clauses.push(json!({"terms": {"status": codes}}));
    }
    for terms in &plan.attributes {
        let texts: Vec<String> = terms
            .texts
            .iter()
            .map(|text| index_term(&terms.key, text).text)
            .collect();
        clauses.push(json!({"terms": {"terms": texts}}));
    }
    for (field, (min, max)) in [("start", start), ("duration", duration)] {
        if min > 0 || max < u64::MAX {
            clauses.push(json!({"range": {field: {"gte": micros(min), "lte": micros(max)}}}));
        }
    }
    Some(clauses)
}

#[cfg(test)]
mod tests {
    use remote_storage_core::filter::Filter;
    use remote_storage_core::filter::build::{call, field, nest as nested, text as scalar};
    use remote_storage_core::proto::expression::v1::{Call, Expression, List, expression::Term};

    use super::*;

    fn attr(key: &str) -> Expression {
        remote_storage_core::filter::build::attr("", key)
    }

    fn clauses(call: &Call) -> Option<Vec<Value>> {
        filter_clauses(&Filter::from_proto(call, "f").unwrap().plan())
    }

    #[test]
    fn positive_conjuncts_become_terms_and_ranges() {
        let filter = call(
            "and",
            vec![
                nested(call(
                    "eq",
                    vec![field("resource", "service"), scalar("cart")],
                )),
                nested(call("eq", vec![attr("http.status_code"), scalar("500")])),
                nested(call("gt", vec![field("span", "duration"), scalar("2s")])),
                nested(call(
                    "in",
                    vec![
                        field("span", "kind"),
                        Expression {
                            term: Some(Term::List(List {
                                values: vec!["server".into(), "unspecified".into()],
                                r#type: String::new(),
                            })),
                        },
                    ],
                )),
            ],
        );
        let clauses = clauses(&filter).unwrap();
        assert!(clauses.contains(&json!({"terms": {"service": ["cart"]}})));
        assert!(clauses.contains(&json!({"terms": {"terms": ["16:http.status_code=500"]}})));
        assert!(clauses.contains(&json!({"terms": {"kind": ["", "server"]}})));
        // 2s exclusive: from 2,000,000,001 ns, floored to whole microseconds.
        assert!(clauses.contains(
            &json!({"range": {"duration": {"gte": 2_000_000, "lte": micros(u64::MAX)}}})
        ));
        assert_eq!(clauses.len(), 4, "{clauses:?}");
    }

    #[test]
    fn what_an_index_cannot_answer_exactly_narrows_nothing() {
        // `unset` covers unknown wire codes, which the document keeps raw.
        let unset = call("eq", vec![field("span", "status"), scalar("unset")]);
        assert_eq!(clauses(&unset), Some(Vec::new()));
        let error = call("eq", vec![field("span", "status"), scalar("error")]);
        assert_eq!(
            clauses(&error),
            Some(vec![json!({"terms": {"status": [2]}})])
        );
        let negated = call(
            "not",
            vec![nested(call("eq", vec![attr("a"), scalar("1")]))],
        );
        assert_eq!(clauses(&negated), Some(Vec::new()));
        let either = call(
            "or",
            vec![
                nested(call("eq", vec![attr("a"), scalar("1")])),
                nested(call("eq", vec![attr("b"), scalar("2")])),
            ],
        );
        assert_eq!(clauses(&either), Some(Vec::new()));
    }

    #[test]
    fn an_unsatisfiable_plan_searches_nothing() {
        let filter = call(
            "and",
            vec![
                nested(call("eq", vec![field("span", "name"), scalar("a")])),
                nested(call("eq", vec![field("span", "name"), scalar("b")])),
            ],
        );
        assert_eq!(clauses(&filter), None);
    }
}
