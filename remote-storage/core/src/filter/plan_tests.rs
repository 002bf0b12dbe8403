//! Tests of the planner: what it extracts from the worked examples' shapes, and the property
//! every backend relies on: a span the filter matches is admitted by the plan (so narrowing
//! by the plan never loses an answer).

use std::sync::Arc;

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{Call, Expression, List};
use jaeger_remote_proto::otlp::common::InstrumentationScope;
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::span::{Event, Link};
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, Status};
use proptest::collection::vec;
use proptest::prelude::*;

use super::properties::attributes;
use super::tests::{attr, attr_at, c, call, field, s1, s2, s3, text, typed};
use super::{AttributeLevel, Filter, FilterPlan, NanosRange};
use crate::model::{Resource, Scope, Span};

fn plan_of(filter: &Call) -> FilterPlan {
    Filter::from_proto(filter, "query.filter").unwrap().plan()
}

fn list(values: &[&str], list_type: &str) -> Expression {
    Expression {
        term: Some(Term::List(List {
            values: values.iter().map(|&value| value.to_owned()).collect(),
            r#type: list_type.to_owned(),
        })),
    }
}

fn set(values: &[&str]) -> Option<std::collections::BTreeSet<String>> {
    Some(values.iter().map(|&value| value.to_owned()).collect())
}

#[test]
fn positive_conjuncts_are_extracted_and_intersected() {
    let plan = plan_of(&call(
        "and",
        vec![
            c(
                "in",
                vec![field("resource", "service"), list(&["cart", "pay"], "")],
            ),
            c(
                "and",
                vec![
                    c("eq", vec![field("resource", "service"), text("cart")]),
                    c("eq", vec![field("span", "kind"), text("server")]),
                ],
            ),
            c(
                "in",
                vec![field("span", "status"), list(&["error", "ok"], "")],
            ),
            c("gt", vec![field("span", "duration"), text("2s")]),
            // Constant first: oriented to `lte(span.duration, 5s)`.
            c("gte", vec![text("5s"), field("span", "duration")]),
            c("eq", vec![attr("http.status_code"), typed("500", "int")]),
            c(
                "in",
                vec![attr_at("resource", "k"), list(&["1.50", "0"], "double")],
            ),
            // Not indexable: narrows nothing.
            c("ne", vec![field("span", "name"), text("x")]),
            c(
                "or",
                vec![
                    c("eq", vec![field("span", "name"), text("a")]),
                    c("eq", vec![field("span", "name"), text("b")]),
                ],
            ),
        ],
    ));
    assert_eq!(plan.services, set(&["cart"]));
    assert_eq!(plan.span_names, None);
    assert_eq!(plan.kinds, Some([2].into()));
    assert_eq!(plan.statuses, Some([1, 2].into()));
    assert_eq!(
        plan.duration,
        NanosRange {
            min: Some(2_000_000_001),
            max: Some(5_000_000_000)
        }
    );
    assert_eq!(plan.attributes.len(), 2);
    assert_eq!(plan.attributes[0].key, "http.status_code");
    assert_eq!(plan.attributes[0].level, AttributeLevel::SpanOrResource);
    assert_eq!(Some(plan.attributes[0].texts.clone()), set(&["500"]));
    // 1.50 renders as 1.5; 0.0 also equals -0.0.
    assert_eq!(
        Some(plan.attributes[1].texts.clone()),
        set(&["1.5", "0", "-0"])
    );
    assert!(!plan.is_unsatisfiable());
}

#[test]
fn contradictions_and_unindexable_filters() {
    let contradiction = plan_of(&call(
        "and",
        vec![
            c("eq", vec![field("resource", "service"), text("a")]),
            c("eq", vec![field("resource", "service"), text("b")]),
        ],
    ));
    assert!(contradiction.is_unsatisfiable());
    let empty_range = plan_of(&call(
        "and",
        vec![
            c("gt", vec![field("span", "duration"), text("2s")]),
            c("lt", vec![field("span", "duration"), text("1s")]),
        ],
    ));
    assert!(empty_range.is_unsatisfiable());
    assert_eq!(empty_range.duration.unsigned(), None);
    for unindexable in [
        call("not", vec![c("eq", vec![field("span", "name"), text("x")])]),
        call("regex", vec![field("span", "name"), text("GET|POST")]),
        call("exists", vec![attr("http.method")]),
        call("not_in", vec![field("span", "kind"), list(&["server"], "")]),
    ] {
        let plan = plan_of(&unindexable);
        assert!(plan.is_unconstrained(), "{unindexable:?}: {plan:?}");
    }
}

#[test]
fn the_worked_example_spans_are_admitted_where_they_match() {
    let filters = [
        call("eq", vec![attr("http.status_code"), text("500")]),
        call("eq", vec![attr("http.status_code"), typed("503", "string")]),
        call(
            "in",
            vec![attr("http.status_code"), list(&["500", "503"], "int")],
        ),
        call("gt", vec![text("2s"), field("span", "duration")]),
        call(
            "eq",
            vec![attr_at("resource", "deployment.environment"), text("prod")],
        ),
        call(
            "in",
            vec![field("span", "status"), list(&["error", "ok"], "")],
        ),
    ];
    for filter in &filters {
        let resolved = Filter::from_proto(filter, "query.filter").unwrap();
        let plan = resolved.plan();
        for span in [s1(), s2(), s3()] {
            assert!(
                plan.admits(&span) || !resolved.matches(&span),
                "{filter:?} matches a span its plan refuses"
            );
        }
    }
}

const WORDS: &[&str] = &[
    "a", "b", "x", "y", "v", "w", "1", "-1", "1.5", "0", "true", "", "server", "client",
    "internal", "ok", "error", "unset", "AAAw",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

fn nanos_text() -> impl Strategy<Value = String> {
    (0u64..10).prop_map(|nanos| format!("{nanos}ns"))
}

fn time_text() -> impl Strategy<Value = String> {
    (0u64..10).prop_map(|nanos| format!("1970-01-01T00:00:00.{nanos:09}Z"))
}

/// Leaves the planner reads, and leaves it must ignore.
fn leaf() -> impl Strategy<Value = Expression> {
    let scalar_type = prop::sample::select(vec!["", "", "string", "int", "double", "bool"]);
    let level = prop::sample::select(vec!["", "span", "resource", "scope", "event", "link"]);
    let key = prop::sample::select(vec!["k1", "k2", "k3"]);
    prop_oneof![
        (prop::sample::select(vec!["eq", "ne"]), word())
            .prop_map(|(op, value)| c(op, vec![field("resource", "service"), text(&value)])),
        (prop::sample::select(vec!["eq", "in"]), vec(word(), 1..3)).prop_map(|(op, values)| {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            if op == "eq" {
                c("eq", vec![field("span", "name"), text(values[0])])
            } else {
                c("in", vec![field("span", "name"), list(&values, "")])
            }
        }),
        prop::sample::select(vec!["server", "client", "internal", "unspecified"])
            .prop_map(|kind| c("eq", vec![field("span", "kind"), text(kind)])),
        vec(prop::sample::select(vec!["ok", "error", "unset"]), 1..3)
            .prop_map(|codes| c("in", vec![field("span", "status"), list(&codes, "")])),
        (
            prop::sample::select(vec!["eq", "gt", "gte", "lt", "lte", "ne"]),
            nanos_text(),
            any::<bool>()
        )
            .prop_map(|(op, value, swapped)| if swapped {
                c(op, vec![text(&value), field("span", "duration")])
            } else {
                c(op, vec![field("span", "duration"), text(&value)])
            }),
        (
            prop::sample::select(vec!["eq", "gt", "gte", "lt", "lte"]),
            time_text()
        )
            .prop_map(|(op, value)| c(op, vec![field("span", "startTime"), text(&value)])),
        (
            prop::sample::select(vec!["eq", "ne"]),
            level.clone(),
            key.clone(),
            word(),
            scalar_type
        )
            .prop_map(|(op, level, key, value, scalar_type)| c(
                op,
                vec![attr_at(level, key), typed(&value, scalar_type)]
            )),
        (
            prop::sample::select(vec!["in", "not_in"]),
            level,
            key,
            vec(word(), 1..3),
            prop::sample::select(vec!["string", "int", "double", "bool"])
        )
            .prop_map(|(op, level, key, values, list_type)| {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                c(op, vec![attr_at(level, key), list(&values, list_type)])
            }),
    ]
}

fn predicate() -> impl Strategy<Value = Expression> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            3 => vec(inner.clone(), 2..5).prop_map(|args| c("and", args)),
            1 => vec(inner.clone(), 2..3).prop_map(|args| c("or", args)),
            1 => inner.prop_map(|operand| c("not", vec![operand])),
        ]
    })
}

fn span() -> impl Strategy<Value = Span> {
    (
        (
            prop::sample::select(vec!["a", "b"]),
            attributes(),
            attributes(),
        ),
        (prop::sample::select(vec!["x", "y", ""]), 0i32..6, 0i32..3),
        (0u64..8, 0u64..8),
        (attributes(), attributes(), attributes()),
    )
        .prop_map(
            |(
                (service, resource_attributes, scope_attributes),
                (name, kind, status),
                (start, duration),
                (span_attributes, event_attributes, link_attributes),
            )| {
                let mut resource = OtlpResource {
                    attributes: resource_attributes,
                    ..Default::default()
                };
                resource
                    .attributes
                    .push(super::tests::string("service.name", service));
                let otlp = OtlpSpan {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.into(),
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + duration,
                    attributes: span_attributes,
                    events: vec![Event {
                        name: "e".into(),
                        attributes: event_attributes,
                        ..Default::default()
                    }],
                    links: vec![Link {
                        trace_id: vec![3; 16],
                        span_id: vec![4; 8],
                        attributes: link_attributes,
                        ..Default::default()
                    }],
                    status: Some(Status {
                        code: status,
                        message: String::new(),
                    }),
                    ..Default::default()
                };
                let scope = InstrumentationScope {
                    attributes: scope_attributes,
                    ..Default::default()
                };
                Span::new(
                    Arc::new(Resource::new(resource, String::new())),
                    Arc::new(Scope::new(scope, String::new())),
                    otlp,
                )
                .unwrap()
            },
        )
}

/// Random filters over random spans: every span a filter matches is admitted by its plan.
/// Run by hand (not `proptest!`) to also count the cases that test something (a match under
/// a plan that narrows), so the property cannot pass vacuously.
#[test]
fn every_matching_span_is_admitted_by_the_plan() {
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (predicate(), vec(span(), 1..8));
    let mut narrowed_matches = 0;
    for _ in 0..3_000 {
        let (root, spans) = strategy.new_tree(&mut runner).unwrap().current();
        let Some(Term::Call(root)) = root.term else {
            continue;
        };
        let Ok(filter) = Filter::from_proto(&root, "query.filter") else {
            continue;
        };
        let plan = filter.plan();
        for span in &spans {
            if filter.matches(span) {
                assert!(
                    plan.admits(span),
                    "{root:?}: plan {plan:?} refuses a match {:?}",
                    span.otlp()
                );
                assert!(!plan.is_unsatisfiable(), "{root:?}");
                if !plan.is_unconstrained() {
                    narrowed_matches += 1;
                }
            }
        }
    }
    assert!(
        narrowed_matches > 150,
        "only {narrowed_matches} narrowed matches"
    );
}
