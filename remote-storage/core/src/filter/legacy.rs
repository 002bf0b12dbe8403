//! The filter form of a legacy query: the spec's "exact legacy equivalents" (`service_name` →
//! `eq(resource.service)`, `operation_name` → `eq(span.name)`, duration bounds →
//! `gte`/`lte(span.duration)`, each attribute → untyped `eq(attr(k))`, ANDed), extended to the
//! legacy search's special keys so that the two forms select the same spans on any data.
//!
//! The legacy `attributes` map has special keys ([`AttributeCondition`]): `error`,
//! `span.status`, `span.kind`, `scope.name`, `scope.version` and `resource.<key>` become the
//! built-in fields and resource attributes they mean. Any other key is searched wider than an
//! unqualified filter reference (span or resource): also on the scope, events and links.
//! [`AttributeReach`] says whether the filter form keeps the spec's narrow reference (exact
//! whenever the attribute sits on the span or the resource, and indexable) or spells out the
//! legacy reach with an `or` over the levels (exact on any data, narrows no index).
//!
//! Used by the equivalence trials of the conformance suite, by loadgen's filter queries and by
//! the engine's property tests, so all three check the same mapping.

use jaeger_remote_proto::expression::v1::Call;

use super::build::{attr, call, field, nest, text};
use super::eval::{kind_word, status_word};
use crate::matcher::AttributeCondition;
use crate::query::TraceQuery;

/// How far an ordinary legacy attribute condition (not a special key) reaches in the filter form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeReach {
    /// The spec's mapping: `eq(attr(k), v)`, the span's or the resource's attributes.
    SpanOrResource,
    /// The legacy search's reach: `or` of span-or-resource, scope, event and link attributes.
    Legacy,
}

/// The filter form of `query`'s service, operation, duration bounds and attributes, ANDed
/// (the time window and search depth stay on the query); `None` when it has none of them.
pub fn legacy_filter_form(query: &TraceQuery, reach: AttributeReach) -> Option<Call> {
    let mut conditions = Vec::new();
    if let Some(service) = &query.service_name {
        conditions.push(call(
            "eq",
            vec![field("resource", "service"), text(service)],
        ));
    }
    if let Some(operation) = &query.operation_name {
        conditions.push(call("eq", vec![field("span", "name"), text(operation)]));
    }
    if let Some(min) = query.duration_min {
        conditions.push(call(
            "gte",
            vec![field("span", "duration"), text(&format!("{min}ns"))],
        ));
    }
    if let Some(max) = query.duration_max {
        conditions.push(call(
            "lte",
            vec![field("span", "duration"), text(&format!("{max}ns"))],
        ));
    }
    for attribute in &query.attributes {
        conditions.push(attribute_condition(
            AttributeCondition::parse(attribute),
            reach,
        ));
    }
    match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(Call {
            op: "and".into(),
            args: conditions.into_iter().map(nest).collect(),
        }),
    }
}

fn attribute_condition(condition: AttributeCondition, reach: AttributeReach) -> Call {
    let status = || field("span", "status");
    match condition {
        AttributeCondition::Error(Some(true)) => call("eq", vec![status(), text("error")]),
        AttributeCondition::Error(Some(false)) => call("ne", vec![status(), text("error")]),
        // An `error` value Go cannot parse matches nothing: no status is both.
        AttributeCondition::Error(None) => Call {
            op: "and".into(),
            args: vec![
                nest(call("eq", vec![status(), text("ok")])),
                nest(call("eq", vec![status(), text("error")])),
            ],
        },
        AttributeCondition::Status(code) => call("eq", vec![status(), text(status_word(code))]),
        AttributeCondition::Kind(kind) => {
            call("eq", vec![field("span", "kind"), text(kind_word(kind))])
        }
        AttributeCondition::ScopeName(name) => text_field("scope", "name", &name),
        AttributeCondition::ScopeVersion(version) => text_field("scope", "version", &version),
        AttributeCondition::Resource { key, value } => {
            call("eq", vec![attr("resource", &key), text(&value)])
        }
        AttributeCondition::Anywhere { key, value } => match reach {
            AttributeReach::SpanOrResource => call("eq", vec![attr("", &key), text(&value)]),
            AttributeReach::Legacy => Call {
                op: "or".into(),
                args: ["", "scope", "event", "link"]
                    .into_iter()
                    .map(|level| nest(call("eq", vec![attr(level, &key), text(&value)])))
                    .collect(),
            },
        },
    }
}

/// `eq` on a built-in text field; an empty text is an absent field in the filter language.
fn text_field(level: &str, name: &str, value: &str) -> Call {
    if value.is_empty() {
        return call("not", vec![nest(call("exists", vec![field(level, name)]))]);
    }
    call("eq", vec![field(level, name), text(value)])
}
