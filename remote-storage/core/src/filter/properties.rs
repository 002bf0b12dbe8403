//! Property tests of the filter engine: a legacy query and its filter form select the same
//! spans (the spec's "exact legacy equivalents", window included); any `Call` tree is either
//! resolved (and then evaluates, and resolves again to itself) or refused with
//! `INVALID_ARGUMENT` naming a path under `query.filter`, never a panic; the nesting limit holds
//! at every depth.

use std::num::NonZeroUsize;
use std::sync::Arc;

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{Call, Expression, List, NestedReference};
use jaeger_remote_proto::otlp::common::InstrumentationScope;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::span::{Event, Link};
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, Status};
use proptest::collection::vec;
use proptest::prelude::*;

use super::tests::{attr_at, c, call, field, nested_nots, s1, s2, s3, typed};
use super::{AttributeReach, Filter, MAX_NESTING_DEPTH, legacy_filter_form};
use crate::attribute::any_value_text;
use crate::error::ErrorKind;
use crate::matcher::SpanMatcher;
use crate::model::{Resource, Scope, Span};
use crate::query::{AttributeFilter, TraceQuery};
use crate::time::UnixNanos;

const KEYS: [&str; 3] = ["k1", "k2", "k3"];

/// Legacy query keys: ordinary ones and the legacy search's special keys.
const LEGACY_KEYS: [&str; 9] = [
    "k1",
    "k2",
    "k3",
    "error",
    "span.kind",
    "span.status",
    "scope.name",
    "scope.version",
    "resource.k1",
];

pub(super) fn stored_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["v", "w", "1", "true", "", "1.5"])
            .prop_map(|text| Value::StringValue(text.to_owned())),
        (-2i64..3).prop_map(Value::IntValue),
        prop::sample::select(vec![1.5f64, 1.0, -0.0, f64::NAN, 1e21]).prop_map(Value::DoubleValue),
        any::<bool>().prop_map(Value::BoolValue),
        prop::sample::select(vec![vec![], vec![0u8, 0x30]]).prop_map(Value::BytesValue),
    ]
}

pub(super) fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec((prop::sample::select(KEYS.to_vec()), stored_value()), 0..3).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(key, value)| KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            })
            .collect()
    })
}

/// Spans for the legacy search. With `wide`, attributes also sit on the scope, an event and a
/// link, which the legacy search sees and an unqualified filter reference does not.
fn legacy_span(wide: bool) -> impl Strategy<Value = Span> {
    let wide_attributes = move || {
        if wide {
            attributes().boxed()
        } else {
            Just(Vec::new()).boxed()
        }
    };
    (
        (
            prop::sample::select(vec!["a", "b"]),
            attributes(),
            prop::sample::select(vec!["x", "y", ""]),
            0u64..40,
            0u64..40,
            attributes(),
        ),
        (
            0i32..6,
            0i32..3,
            prop::sample::select(vec!["", "lib"]),
            wide_attributes(),
            wide_attributes(),
            wide_attributes(),
        ),
    )
        .prop_map(
            |(
                (service, resource_attributes, name, start, duration, span_attributes),
                (kind, status, scope_name, scope_attributes, event_attributes, link_attributes),
            )| {
                let mut resource = OtlpResource {
                    attributes: resource_attributes,
                    ..Default::default()
                };
                resource.attributes.push(KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                });
                let otlp = OtlpSpan {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.into(),
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + duration,
                    attributes: span_attributes,
                    status: Some(Status {
                        code: status,
                        message: String::new(),
                    }),
                    events: vec![Event {
                        attributes: event_attributes,
                        ..Default::default()
                    }],
                    links: vec![Link {
                        attributes: link_attributes,
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let scope = InstrumentationScope {
                    name: scope_name.into(),
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

/// A legacy query: service, operation, duration bounds, attributes (values as canonical text
/// of storable values, or texts no value has), and a time window.
fn legacy_query() -> impl Strategy<Value = TraceQuery> {
    let attribute_value = prop_oneof![
        stored_value()
            .prop_map(|value| any_value_text(Some(&AnyValue { value: Some(value) })).into_owned()),
        prop::sample::select(vec!["01", "1.50", "True", "AAAw"]).prop_map(str::to_owned),
    ];
    // Special keys take their own words half of the time.
    let legacy_value = prop_oneof![
        attribute_value,
        prop::sample::select(vec!["server", "client", "error", "ok", "lib", "", "0"])
            .prop_map(str::to_owned),
    ];
    (
        prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        prop::option::of(prop::sample::select(vec!["x", "y", "z"])),
        prop::option::of(0u64..40),
        prop::option::of(0u64..40),
        vec(
            (prop::sample::select(LEGACY_KEYS.to_vec()), legacy_value),
            0..3,
        ),
        prop::option::of(0u64..40),
        prop::option::of(0u64..40),
    )
        .prop_map(
            |(
                service,
                operation,
                duration_min,
                duration_max,
                attributes,
                window_min,
                window_max,
            )| {
                TraceQuery {
                    service_name: service.map(str::to_owned),
                    operation_name: operation.map(str::to_owned),
                    attributes: attributes
                        .into_iter()
                        .map(|(key, value)| AttributeFilter {
                            key: key.to_owned(),
                            value,
                        })
                        .collect(),
                    start_time_min: window_min.map(UnixNanos),
                    start_time_max: window_max.map(UnixNanos),
                    duration_min,
                    duration_max,
                    ..TraceQuery::all(NonZeroUsize::MIN)
                }
            },
        )
}

proptest! {
    // Many cases: a scope, event or link attribute the query names is a rare draw.
    #![proptest_config(ProptestConfig::with_cases(8192))]

    #[test]
    fn legacy_queries_and_their_filter_forms_select_the_same_spans(
        legacy in legacy_query(),
        narrow in vec(legacy_span(false), 1..6),
        wide in vec(legacy_span(true), 1..6),
    ) {
        // The spec's narrow reference is exact on span and resource attributes; the legacy
        // reach is exact everywhere.
        for (reach, spans) in [(AttributeReach::SpanOrResource, &narrow), (AttributeReach::Legacy, &wide)] {
            let Some(filter) = legacy_filter_form(&legacy, reach) else {
                return Ok(());
            };
            let resolved = Filter::from_proto(&filter, "query.filter").unwrap();
            let filtered = TraceQuery {
                service_name: None,
                operation_name: None,
                attributes: Vec::new(),
                duration_min: None,
                duration_max: None,
                filter: Some(resolved),
                ..legacy.clone()
            };
            let legacy_matcher = SpanMatcher::new(&legacy);
            let filter_matcher = SpanMatcher::new(&filtered);
            for span in spans {
                prop_assert_eq!(
                    legacy_matcher.matches(span),
                    filter_matcher.matches(span),
                    "{:?} with {:?} on span {:?} scope {:?}",
                    reach, filter, span.otlp(), span.scope().otlp()
                );
            }
        }
    }
}

// Arbitrary filter trees: mostly drawn from the vocabularies so that many resolve, with
// misspellings, missing terms and junk mixed in.

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        8 => prop::sample::select(options).prop_map(str::to_owned),
        1 => ".{0,4}",
    ]
}

const OPS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "gt", "lt", "gte", "lte", "regex", "exists", "in", "not_in",
    "some", "AND", "",
];
const LEVELS: &[&str] = &["", "span", "resource", "scope", "event", "link", "Span"];
const FIELD_NAMES: &[&str] = &[
    "traceID",
    "spanID",
    "parentSpanID",
    "traceState",
    "name",
    "statusMessage",
    "kind",
    "status",
    "startTime",
    "endTime",
    "duration",
    "service",
    "schemaURL",
    "version",
    "time",
    "timeSinceStart",
    "durationn",
];
const TYPES: &[&str] = &["", "", "string", "int", "double", "bool", "float"];
const TEXTS: &[&str] = &[
    "1",
    "-3",
    "1.5",
    "2s",
    "-1.5h",
    "50µs",
    "abc",
    "true",
    "T",
    "2026-08-16T18:56:20Z",
    "server",
    "ok",
    "error",
    "^a",
    "a|b",
    "(",
    "(?i)a",
    "\\d+",
    "NaN",
    "9223372036854775808",
    "",
    "exception",
    "http.status_code",
];

fn leaf() -> impl Strategy<Value = Expression> {
    prop_oneof![
        (
            pick(&["a", "", "http.status_code", "link.kind"]),
            pick(LEVELS)
        )
            .prop_map(|(key, level)| attr_at(&level, &key)),
        (pick(LEVELS), pick(FIELD_NAMES)).prop_map(|(level, name)| field(&level, &name)),
        pick(LEVELS).prop_map(|level| Expression {
            term: Some(Term::Nested(NestedReference { level })),
        }),
        (pick(TEXTS), pick(TYPES)).prop_map(|(value, scalar_type)| typed(&value, &scalar_type)),
        (vec(pick(TEXTS), 0..3), pick(TYPES)).prop_map(|(values, list_type)| Expression {
            term: Some(Term::List(List {
                values,
                r#type: list_type,
            })),
        }),
        Just(Expression { term: None }),
    ]
}

fn expression() -> impl Strategy<Value = Expression> {
    leaf().prop_recursive(8, 96, 4, |inner| {
        (pick(OPS), vec(inner, 0..4)).prop_map(|(op, args)| c(&op, args))
    })
}

fn filter_tree() -> impl Strategy<Value = Call> {
    (pick(OPS), vec(expression(), 0..4)).prop_map(|(op, args)| call(&op, args))
}

/// Drawn only from the given options (the well-formed generator's vocabulary).
fn good(options: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(options).prop_map(str::to_owned)
}

const VALID_FIELDS: &[(&str, &str)] = &[
    ("span", "traceID"),
    ("span", "parentSpanID"),
    ("span", "name"),
    ("span", "statusMessage"),
    ("span", "kind"),
    ("span", "status"),
    ("span", "startTime"),
    ("span", "duration"),
    ("resource", "service"),
    ("scope", "version"),
    ("event", "name"),
    ("event", "time"),
    ("event", "timeSinceStart"),
    ("link", "traceID"),
    ("link", "traceState"),
];

/// A reference from the registry.
fn reference() -> impl Strategy<Value = Expression> {
    prop_oneof![
        (
            good(&["http.status_code", "deployment.environment", "link.kind"]),
            good(&["", "span", "resource", "scope", "event", "link"])
        )
            .prop_map(|(key, level)| attr_at(&level, &key)),
        prop::sample::select(VALID_FIELDS).prop_map(|(level, name)| field(level, name)),
    ]
}

fn operand() -> impl Strategy<Value = Expression> {
    prop_oneof![
        2 => reference(),
        3 => (good(TEXTS), good(&["", "", "", "string", "int", "double", "bool"]))
            .prop_map(|(value, scalar_type)| typed(&value, &scalar_type)),
    ]
}

/// Calls shaped as the operators take them, so that most trees pass decoding and arity and
/// the later stages and the evaluator get exercised.
fn well_formed_predicate() -> impl Strategy<Value = Expression> {
    let leaf = prop_oneof![
        (
            good(&["eq", "ne", "gt", "lt", "gte", "lte"]),
            operand(),
            operand()
        )
            .prop_map(|(op, left, right)| c(&op, vec![left, right])),
        (reference(), good(TEXTS), good(&["", "string"])).prop_map(
            |(target, pattern, scalar_type)| c(
                "regex",
                vec![target, typed(&pattern, &scalar_type)]
            )
        ),
        reference().prop_map(|target| c("exists", vec![target])),
        (
            good(&["in", "not_in"]),
            reference(),
            vec(good(TEXTS), 1..3),
            good(&["", "string", "int", "double"])
        )
            .prop_map(|(op, target, values, list_type)| c(
                &op,
                vec![
                    target,
                    Expression {
                        term: Some(Term::List(List {
                            values,
                            r#type: list_type,
                        })),
                    },
                ],
            )),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (good(&["and", "or"]), vec(inner.clone(), 2..4)).prop_map(|(op, args)| c(&op, args)),
            inner.clone().prop_map(|operand| c("not", vec![operand])),
            (good(&["event", "link"]), inner).prop_map(|(level, predicate)| c(
                "some",
                vec![
                    Expression {
                        term: Some(Term::Nested(NestedReference { level })),
                    },
                    predicate,
                ],
            )),
        ]
    })
}

fn any_filter() -> impl Strategy<Value = Call> {
    prop_oneof![
        1 => filter_tree(),
        3 => well_formed_predicate().prop_map(|root| match root.term {
            Some(Term::Call(root)) => root,
            _ => call("exists", vec![root]),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_tree_resolves_or_is_refused_with_a_path(filter in any_filter()) {
        match Filter::from_proto(&filter, "query.filter") {
            Ok(resolved) => {
                for span in [s1(), s2(), s3()] {
                    let _ = resolved.matches(&span);
                }
                let finalized = resolved.to_proto();
                let again = Filter::from_proto(&finalized, "query.filter");
                prop_assert!(again.is_ok(), "finalized form refused: {:?}", again);
                prop_assert_eq!(again.unwrap(), resolved);
            }
            Err(error) => {
                prop_assert_eq!(error.kind(), ErrorKind::InvalidArgument);
                prop_assert!(
                    error.to_string().starts_with("query.filter"),
                    "{}", error
                );
            }
        }
    }

    #[test]
    fn the_nesting_limit_holds_at_every_depth(depth in 1usize..45) {
        let result = Filter::from_proto(&nested_nots(depth), "query.filter");
        prop_assert_eq!(result.is_ok(), depth <= MAX_NESTING_DEPTH);
    }
}
