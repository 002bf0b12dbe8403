//! The spec's worked examples (§8) on its three spans, every refusal with its path, and the
//! decisions on the open points.

use std::sync::Arc;

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{Call, Expression, List, NestedReference};
use jaeger_remote_proto::otlp::common::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::span::{Event, Link, SpanKind};
use jaeger_remote_proto::otlp::trace::status::StatusCode;
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, Status};

use super::*;
use crate::error::ErrorKind;
use crate::model::{Resource, Scope, Span};

// Builders for filters, in the spec's notation.

pub(super) use super::build::{call, field, text, typed};

pub(super) fn attr(key: &str) -> Expression {
    attr_at("", key)
}

pub(super) fn attr_at(level: &str, key: &str) -> Expression {
    super::build::attr(level, key)
}

fn list(values: &[&str], list_type: &str) -> Expression {
    Expression {
        term: Some(Term::List(List {
            values: values.iter().map(|value| (*value).to_owned()).collect(),
            r#type: list_type.into(),
        })),
    }
}

fn nested(level: &str) -> Expression {
    Expression {
        term: Some(Term::Nested(NestedReference {
            level: level.into(),
        })),
    }
}

/// A call as an argument.
pub(super) fn c(op: &str, args: Vec<Expression>) -> Expression {
    super::build::nest(call(op, args))
}

fn resolve(filter: &Call) -> Result<Filter, StoreError> {
    Filter::from_proto(filter, "query.filter")
}

/// The refusal's message, checked to be `INVALID_ARGUMENT`.
fn refusal(filter: &Call) -> String {
    match resolve(filter) {
        Ok(resolved) => panic!("accepted: {:?}", resolved.to_proto()),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
            error.to_string()
        }
    }
}

fn assert_refused(filter: &Call, path: &str, reason: &str) {
    let message = refusal(filter);
    assert!(
        message.starts_with(&format!("{path}: ")),
        "expected path {path}, got {message}"
    );
    assert!(message.contains(reason), "expected {reason:?} in {message}");
}

// The spec's spans S1, S2, S3 (one span per trace).

const START: u64 = 1_786_906_580_000_000_000;
const MICROS: u64 = 1_000;
const MILLIS: u64 = 1_000_000;

fn value(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn pair(key: &str, stored: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value(stored),
        ..Default::default()
    }
}

pub(super) fn string(key: &str, stored: &str) -> KeyValue {
    pair(key, Value::StringValue(stored.into()))
}

fn resource(service: &str, environment: &str) -> Arc<Resource> {
    Arc::new(Resource::new(
        OtlpResource {
            attributes: vec![
                string("service.name", service),
                string("deployment.environment", environment),
            ],
            ..Default::default()
        },
        String::new(),
    ))
}

fn event(name: &str, micros_after_start: u64) -> Event {
    Event {
        name: name.into(),
        time_unix_nano: START + micros_after_start * MICROS,
        ..Default::default()
    }
}

fn status(code: StatusCode) -> Option<Status> {
    Some(Status {
        code: code as i32,
        message: String::new(),
    })
}

fn s1_resource() -> Arc<Resource> {
    resource("cart", "prod")
}

pub(super) fn s1() -> Span {
    let otlp = OtlpSpan {
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        name: "GET /cart".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: START,
        end_time_unix_nano: START + 3_000 * MILLIS,
        attributes: vec![
            pair("http.status_code", Value::IntValue(500)),
            string("http.method", "GET"),
        ],
        events: vec![event("exception", 10), event("retry", 80)],
        status: status(StatusCode::Error),
        ..Default::default()
    };
    Span::new(s1_resource(), Arc::new(Scope::default()), otlp).unwrap()
}

pub(super) fn s2() -> Span {
    let otlp = OtlpSpan {
        trace_id: vec![2; 16],
        span_id: vec![2; 8],
        parent_span_id: vec![9; 8],
        name: "POST /pay".into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: START,
        end_time_unix_nano: START + 800 * MILLIS,
        attributes: vec![
            string("http.status_code", "503"),
            string("deployment.environment", "prod"),
        ],
        events: vec![event("exception", 5), event("log", 60)],
        links: vec![Link {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            attributes: vec![string("link.kind", "follows")],
            ..Default::default()
        }],
        status: status(StatusCode::Unset),
        ..Default::default()
    };
    Span::new(
        resource("checkout", "staging"),
        Arc::new(Scope::default()),
        otlp,
    )
    .unwrap()
}

pub(super) fn s3() -> Span {
    let otlp = OtlpSpan {
        trace_id: vec![3; 16],
        span_id: vec![3; 8],
        name: "healthz".into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: START,
        end_time_unix_nano: START + MILLIS,
        status: status(StatusCode::Ok),
        ..Default::default()
    };
    Span::new(s1_resource(), Arc::new(Scope::default()), otlp).unwrap()
}

/// Which of S1, S2, S3 the filter selects.
fn selected(filter: &Call) -> Vec<&'static str> {
    let resolved = match resolve(filter) {
        Ok(resolved) => resolved,
        Err(error) => panic!("refused: {error}"),
    };
    [("S1", s1()), ("S2", s2()), ("S3", s3())]
        .into_iter()
        .filter(|(_, span)| resolved.matches(span))
        .map(|(name, _)| name)
        .collect()
}

const NONE: [&str; 0] = [];

#[test]
fn example_1_typed_constants_are_authoritative() {
    let status = || attr("http.status_code");
    assert_eq!(selected(&call("eq", vec![status(), text("500")])), ["S1"]);
    assert_eq!(
        selected(&call("eq", vec![status(), typed("503", "int")])),
        NONE
    );
    assert_eq!(
        selected(&call("eq", vec![status(), typed("503", "string")])),
        ["S2"]
    );
}

#[test]
fn example_2_lists_against_attributes_need_a_type() {
    let typed_list = call(
        "in",
        vec![attr("http.status_code"), list(&["500", "503"], "int")],
    );
    assert_eq!(selected(&typed_list), ["S1"]);
    let untyped_list = call(
        "in",
        vec![attr("http.status_code"), list(&["500", "503"], "")],
    );
    assert_refused(&untyped_list, "query.filter.args[1]", "needs a type");
}

#[test]
fn example_3_durations_orientation_and_units() {
    let duration = || field("span", "duration");
    assert_eq!(selected(&call("gt", vec![duration(), text("2s")])), ["S1"]);
    let constant_first = call("gt", vec![text("2s"), duration()]);
    assert_eq!(selected(&constant_first), ["S2", "S3"]);
    assert_eq!(
        resolve(&constant_first).unwrap().to_proto(),
        call("lt", vec![duration(), text("2s")])
    );
    assert_refused(
        &call("gt", vec![duration(), text("2000")]),
        "query.filter.args[1]",
        "missing unit",
    );
}

#[test]
fn example_4_domains_must_agree() {
    assert_refused(
        &call("eq", vec![field("span", "duration"), typed("2s", "string")]),
        "query.filter",
        "cannot compare span.duration (duration) with \"2s\":string (text)",
    );
    assert_refused(
        &call("eq", vec![field("span", "duration"), field("span", "name")]),
        "query.filter",
        "cannot compare span.duration (duration) with span.name (text)",
    );
}

#[test]
fn example_5_ne_needs_presence_not_eq_does_not() {
    let status = || attr("http.status_code");
    assert_eq!(selected(&call("ne", vec![status(), text("500")])), ["S2"]);
    assert_eq!(
        selected(&call("not", vec![c("eq", vec![status(), text("500")])])),
        ["S2", "S3"]
    );
}

#[test]
fn example_6_unqualified_attributes_see_span_and_resource() {
    assert_eq!(
        selected(&call(
            "eq",
            vec![attr("deployment.environment"), text("prod")]
        )),
        ["S1", "S2", "S3"]
    );
    assert_eq!(
        selected(&call(
            "eq",
            vec![attr_at("resource", "deployment.environment"), text("prod")]
        )),
        ["S1", "S3"]
    );
}

#[test]
fn example_7_ne_on_a_multi_valued_reference() {
    assert_eq!(
        selected(&call(
            "ne",
            vec![attr("deployment.environment"), text("prod")]
        )),
        NONE
    );
}

fn exception_after_8us() -> Vec<Expression> {
    vec![
        c("eq", vec![field("event", "name"), text("exception")]),
        c("gt", vec![field("event", "timeSinceStart"), text("8us")]),
    ]
}

#[test]
fn example_8_event_references_outside_some_are_uncorrelated() {
    assert_eq!(selected(&call("and", exception_after_8us())), ["S1", "S2"]);
}

#[test]
fn example_9_some_binds_one_event() {
    assert_eq!(
        selected(&call(
            "some",
            vec![nested("event"), c("and", exception_after_8us())]
        )),
        ["S1"]
    );
}

#[test]
fn example_10_every_is_vacuously_true_on_no_events() {
    let every_event_is_an_exception = call(
        "not",
        vec![c(
            "some",
            vec![
                nested("event"),
                c(
                    "not",
                    vec![c("eq", vec![field("event", "name"), text("exception")])],
                ),
            ],
        )],
    );
    assert_eq!(selected(&every_event_is_an_exception), ["S3"]);
}

#[test]
fn example_11_regex_is_unanchored_case_sensitive_re2() {
    let name = || field("span", "name");
    assert_eq!(
        selected(&call("regex", vec![name(), text("GET|POST")])),
        ["S1", "S2"]
    );
    assert_eq!(selected(&call("regex", vec![name(), text("get")])), NONE);
    assert_refused(
        &call("regex", vec![name(), text("^GET")]),
        "query.filter.args[1]",
        "anchors",
    );
    assert_refused(
        &call("regex", vec![field("span", "duration"), text("3")]),
        "query.filter.args[0]",
        "regex does not apply to span.duration",
    );
}

#[test]
fn example_12_span_status_and_kind_words() {
    assert_eq!(
        selected(&call(
            "in",
            vec![field("span", "status"), list(&["error", "ok"], "")]
        )),
        ["S1", "S3"]
    );
    assert_refused(
        &call("eq", vec![field("span", "kind"), text("SERVER")]),
        "query.filter.args[1]",
        "\"SERVER\" is not a span kind",
    );
    assert_refused(
        &call("gt", vec![field("span", "status"), text("ok")]),
        "query.filter.args[0]",
        "span.status is not orderable",
    );
}

#[test]
fn example_13_exists_at_link_and_span_levels() {
    assert_eq!(
        selected(&call("exists", vec![attr_at("link", "link.kind")])),
        ["S2"]
    );
    assert_eq!(
        selected(&call("exists", vec![attr_at("span", "http.method")])),
        ["S1"]
    );
}

#[test]
fn example_14_structural_refusals() {
    let inner = c("eq", vec![field("event", "name"), text("x")]);
    assert_refused(
        &call(
            "some",
            vec![
                nested("event"),
                c("some", vec![nested("event"), inner.clone()]),
            ],
        ),
        "query.filter.args[1].call.args[0]",
        "already bound",
    );
    assert_refused(
        &call("exists", vec![nested("event")]),
        "query.filter.args[0]",
        "nested is only allowed as the first argument of some",
    );
    assert_refused(
        &call("and", vec![inner.clone()]),
        "query.filter",
        "and takes at least 2 arguments, got 1",
    );
    // A link quantifier inside an event quantifier binds a different level.
    let link_then_event = call(
        "some",
        vec![
            nested("link"),
            c(
                "some",
                vec![
                    nested("event"),
                    c(
                        "and",
                        vec![
                            c("eq", vec![field("event", "name"), text("exception")]),
                            c("eq", vec![attr_at("link", "link.kind"), text("follows")]),
                        ],
                    ),
                ],
            ),
        ],
    );
    assert_eq!(selected(&link_then_event), ["S2"]);
}

/// `not` wrapped `depth - 1` times around an `eq`: `depth` calls deep.
pub(super) fn nested_nots(depth: usize) -> Call {
    let mut filter = call("eq", vec![attr("a"), text("b")]);
    for _ in 1..depth {
        filter = call(
            "not",
            vec![Expression {
                term: Some(Term::Call(filter)),
            }],
        );
    }
    filter
}

#[test]
fn example_15_nesting_limit_is_20_calls() {
    assert!(resolve(&nested_nots(MAX_NESTING_DEPTH)).is_ok());
    let too_deep = refusal(&nested_nots(MAX_NESTING_DEPTH + 1));
    assert!(too_deep.contains("nested too deeply"), "{too_deep}");
    // The path names the 21st call: 20 `.args[0].call` steps below the root.
    let expected_path = format!("query.filter{}", ".args[0].call".repeat(MAX_NESTING_DEPTH));
    assert!(
        too_deep.starts_with(&format!("{expected_path}: ")),
        "{too_deep}"
    );
}

#[test]
fn every_refusal_names_its_path() {
    let ok = || c("eq", vec![attr("a"), text("b")]);
    let cases: Vec<(Call, &str, &str)> = vec![
        (
            call(
                "and",
                vec![ok(), c("gt", vec![field("span", "durationn"), text("1s")])],
            ),
            "query.filter.args[1].call.args[0]",
            "unknown field \"durationn\" at level span",
        ),
        (
            call("xor", vec![ok(), ok()]),
            "query.filter",
            "unknown operator \"xor\"",
        ),
        (
            call("AND", vec![ok(), ok()]),
            "query.filter",
            "unknown operator \"AND\"",
        ),
        (
            call("and", vec![ok(), Expression { term: None }]),
            "query.filter.args[1]",
            "expression has no term",
        ),
        (
            call("eq", vec![attr("a"), typed("abc", "int")]),
            "query.filter.args[1]",
            "\"abc\" is not a valid int",
        ),
        (
            call("eq", vec![attr("a"), typed("yes", "bool")]),
            "query.filter.args[1]",
            "\"yes\" is not a valid bool",
        ),
        (
            call("eq", vec![attr("a"), typed("1", "float")]),
            "query.filter.args[1]",
            "unknown type \"float\"",
        ),
        (
            call("eq", vec![attr(""), text("b")]),
            "query.filter.args[0]",
            "attribute key must not be empty",
        ),
        (
            call("eq", vec![attr_at("process", "a"), text("b")]),
            "query.filter.args[0]",
            "unknown level \"process\"",
        ),
        (
            call("eq", vec![field("", "name"), text("b")]),
            "query.filter.args[0]",
            "needs a level",
        ),
        (
            call("eq", vec![field("span", "TraceID"), text("b")]),
            "query.filter.args[0]",
            "unknown field \"TraceID\" at level span",
        ),
        (
            call("eq", vec![field("trace", "duration"), text("b")]),
            "query.filter.args[0]",
            "unknown level \"trace\"",
        ),
        (
            call("eq", vec![attr("a"), nested("event")]),
            "query.filter.args[1]",
            "nested is only allowed",
        ),
        (
            call("eq", vec![attr("a"), list(&["b"], "string")]),
            "query.filter.args[1]",
            "eq operands must be attr, field or scalar, got list",
        ),
        (
            call("eq", vec![attr("a"), ok()]),
            "query.filter.args[1]",
            "got call",
        ),
        (
            call("eq", vec![attr("a"), text("b"), text("c")]),
            "query.filter",
            "eq takes 2 arguments, got 3",
        ),
        (
            call("not", vec![ok(), ok()]),
            "query.filter",
            "not takes 1 argument, got 2",
        ),
        (
            call("and", vec![ok(), text("b")]),
            "query.filter.args[1]",
            "and takes predicates (calls) as arguments, got scalar",
        ),
        (
            call("exists", vec![text("a")]),
            "query.filter.args[0]",
            "exists takes an attr or field reference here, got scalar",
        ),
        (
            call("in", vec![attr("a"), list(&[], "string")]),
            "query.filter.args[1]",
            "list must not be empty",
        ),
        (
            call("in", vec![attr("a"), text("b")]),
            "query.filter.args[1]",
            "in takes a list as its second argument, got scalar",
        ),
        (
            call("in", vec![field("span", "name"), list(&["1"], "int")]),
            "query.filter.args[1]",
            "cannot compare span.name (text) with a int list (number)",
        ),
        (
            call("in", vec![attr("a"), list(&["1"], "integer")]),
            "query.filter.args[1]",
            "unknown type \"integer\"",
        ),
        (
            call("in", vec![attr("a"), list(&["1", "x"], "int")]),
            "query.filter.args[1].list.values[1]",
            "\"x\" is not a valid int",
        ),
        (
            call(
                "not_in",
                vec![field("span", "kind"), list(&["server", "SERVER"], "")],
            ),
            "query.filter.args[1].list.values[1]",
            "is not a span kind",
        ),
        (
            call(
                "in",
                vec![field("span", "duration"), list(&["1s", "2"], "")],
            ),
            "query.filter.args[1].list.values[1]",
            "missing unit",
        ),
        (
            call("regex", vec![attr("a"), typed("5", "int")]),
            "query.filter.args[1]",
            "regex pattern must be untyped or string, got int",
        ),
        (
            call("regex", vec![text("a"), text("b")]),
            "query.filter.args[0]",
            "regex takes an attr or field reference here, got scalar",
        ),
        (
            call("regex", vec![attr("a"), list(&["b"], "string")]),
            "query.filter.args[1]",
            "regex takes an untyped or string scalar",
        ),
        (
            call("regex", vec![field("event", "time"), text("1")]),
            "query.filter.args[0]",
            "regex does not apply to event.time (timestamp)",
        ),
        (
            call("regex", vec![attr("a"), text("(?i)get")]),
            "query.filter.args[1]",
            "case-insensitive",
        ),
        (
            call("regex", vec![attr("a"), text("a+?")]),
            "query.filter.args[1]",
            "lazy",
        ),
        (
            call("regex", vec![attr("a"), text(r"\bx")]),
            "query.filter.args[1]",
            "word boundaries",
        ),
        (
            call("regex", vec![attr("a"), text("(")]),
            "query.filter.args[1]",
            "not a valid pattern",
        ),
        (
            call("some", vec![attr("a"), ok()]),
            "query.filter.args[0]",
            "some takes a nested reference (event or link) as its first argument, got attr",
        ),
        (
            call("some", vec![nested("span"), ok()]),
            "query.filter.args[0]",
            "nested level must be event or link, got \"span\"",
        ),
        (
            call("some", vec![nested("link"), text("x")]),
            "query.filter.args[1]",
            "some takes predicates",
        ),
        (
            call(
                "some",
                vec![
                    nested("event"),
                    c(
                        "some",
                        vec![nested("link"), c("some", vec![nested("event"), ok()])],
                    ),
                ],
            ),
            "query.filter.args[1].call.args[1].call.args[0]",
            "some over event inside some over event",
        ),
        (
            call("gt", vec![attr("a"), typed("true", "bool")]),
            "query.filter.args[1]",
            "gt: bool constants are not orderable",
        ),
        (
            call("lte", vec![field("span", "kind"), text("server")]),
            "query.filter.args[0]",
            "lte: span.kind is not orderable",
        ),
        (
            call("eq", vec![typed("1", "int"), typed("x", "string")]),
            "query.filter",
            "cannot compare \"1\":int (number) with \"x\":string (text)",
        ),
        (
            call("gte", vec![field("span", "startTime"), text("yesterday")]),
            "query.filter.args[1]",
            "not an RFC 3339 timestamp",
        ),
        (
            call("gte", vec![field("span", "startTime"), typed("1", "int")]),
            "query.filter",
            "cannot compare span.startTime (timestamp) with \"1\":int (number)",
        ),
    ];
    for (filter, path, reason) in cases {
        assert_refused(&filter, path, reason);
    }
}

#[test]
fn stages_report_in_order_decode_then_validate_then_resolve() {
    // A decoding error (a typed scalar that does not parse) wins over an unknown field that
    // comes earlier in the tree.
    let decode_after_validate = call(
        "and",
        vec![
            c("eq", vec![field("span", "bogus"), text("x")]),
            c("eq", vec![attr("a"), typed("x", "int")]),
        ],
    );
    assert_refused(
        &decode_after_validate,
        "query.filter.args[1].call.args[1]",
        "not a valid int",
    );
    // A validation error wins over a resolution error (a duration without unit) before it.
    let validate_after_resolve = call(
        "and",
        vec![
            c("gt", vec![field("span", "duration"), text("2000")]),
            c("eq", vec![field("span", "bogus"), text("x")]),
        ],
    );
    assert_refused(
        &validate_after_resolve,
        "query.filter.args[1].call.args[0]",
        "unknown field \"bogus\"",
    );
    // Among resolution errors, the first in the tree is reported.
    let two_resolution_errors = call(
        "or",
        vec![
            c("gt", vec![field("span", "duration"), text("1d")]),
            c("eq", vec![field("span", "kind"), text("Server")]),
        ],
    );
    assert_refused(
        &two_resolution_errors,
        "query.filter.args[0].call.args[1]",
        "unknown unit",
    );
}

#[test]
fn finalized_form_puts_references_first_and_resolves_to_itself() {
    let mirrored = [("gt", "lt"), ("lt", "gt"), ("gte", "lte"), ("lte", "gte")];
    for (sent, finalized) in mirrored {
        let filter = call(sent, vec![text("1s"), field("span", "duration")]);
        let resolved = resolve(&filter).unwrap();
        assert_eq!(
            resolved.to_proto(),
            call(finalized, vec![field("span", "duration"), text("1s")])
        );
        assert_eq!(resolve(&resolved.to_proto()).unwrap(), resolved);
    }
    // Two constants or two references keep their order.
    let constants = call("gt", vec![text("b"), text("a")]);
    assert_eq!(resolve(&constants).unwrap().to_proto(), constants);
    assert_eq!(selected(&constants), ["S1", "S2", "S3"]);
    let references = call(
        "lt",
        vec![field("span", "startTime"), field("span", "endTime")],
    );
    assert_eq!(resolve(&references).unwrap().to_proto(), references);
    assert_eq!(selected(&references), ["S1", "S2", "S3"]);
}

#[test]
fn untyped_constants_order_as_stored() {
    // S1 stores int 500 (numerically above 60); S2 stores the string "503" (below "60").
    assert_eq!(
        selected(&call("gt", vec![attr("http.status_code"), text("60")])),
        ["S1"]
    );
    assert_eq!(
        selected(&call("lt", vec![attr("http.status_code"), text("500.5")])),
        ["S1"]
    );
    // A typed int never orders against a string.
    assert_eq!(
        selected(&call(
            "gte",
            vec![attr("http.status_code"), typed("500", "int")]
        )),
        ["S1"]
    );
    // Not a number beside an int: no order.
    assert_eq!(
        selected(&call("gt", vec![attr("http.status_code"), text("abc")])),
        NONE
    );
}

#[test]
fn regex_matches_canonical_text_of_any_attribute() {
    assert_eq!(
        selected(&call(
            "regex",
            vec![attr("http.status_code"), text("50[03]")]
        )),
        ["S1", "S2"]
    );
    assert_eq!(
        selected(&call("regex", vec![field("span", "kind"), text("er")])),
        ["S1", "S3"]
    );
}

#[test]
fn empty_built_in_fields_are_absent() {
    assert_eq!(
        selected(&call("exists", vec![field("span", "parentSpanID")])),
        ["S2"]
    );
    assert_eq!(
        selected(&call("ne", vec![field("span", "statusMessage"), text("x")])),
        NONE
    );
    assert_eq!(
        selected(&call("exists", vec![field("span", "kind")])),
        ["S1", "S2", "S3"]
    );
    assert_eq!(
        selected(&call(
            "eq",
            vec![field("span", "parentSpanID"), text("0909090909090909")]
        )),
        ["S2"]
    );
}

#[test]
fn ids_times_links_and_resources_are_fields() {
    assert_eq!(
        selected(&call(
            "eq",
            vec![field("span", "traceID"), text(&"01".repeat(16))]
        )),
        ["S1"]
    );
    assert_eq!(
        selected(&call(
            "eq",
            vec![field("link", "traceID"), text(&"ab".repeat(16))]
        )),
        ["S2"]
    );
    assert_eq!(
        selected(&call(
            "eq",
            vec![field("resource", "service"), text("cart")]
        )),
        ["S1", "S3"]
    );
    assert_eq!(
        selected(&call(
            "gte",
            vec![field("span", "endTime"), text("2026-08-16T18:56:22Z")]
        )),
        ["S1"]
    );
    assert_eq!(
        selected(&call(
            "lt",
            vec![
                field("event", "time"),
                text("2026-08-16T20:56:20.000006+02:00")
            ]
        )),
        ["S2"]
    );
    assert_eq!(
        selected(&call(
            "ne",
            vec![field("span", "kind"), text("unspecified")]
        )),
        ["S1", "S2", "S3"]
    );
}

#[test]
fn references_compare_with_references() {
    // S2's span says prod, its resource staging; S1 has no span-level environment.
    assert_eq!(
        selected(&call(
            "ne",
            vec![
                attr_at("span", "deployment.environment"),
                attr_at("resource", "deployment.environment")
            ]
        )),
        ["S2"]
    );
    assert_eq!(
        selected(&call(
            "eq",
            vec![attr("http.method"), field("span", "name")]
        )),
        NONE
    );
}

#[test]
fn not_in_needs_presence_and_in_takes_the_field_type() {
    let status = || attr("http.status_code");
    assert_eq!(
        selected(&call("not_in", vec![status(), list(&["500"], "int")])),
        ["S2"]
    );
    assert_eq!(
        selected(&call(
            "in",
            vec![field("span", "duration"), list(&["800ms", "1ms"], "")]
        )),
        ["S2", "S3"]
    );
    assert_eq!(
        selected(&call(
            "in",
            vec![field("span", "name"), list(&["healthz", "nope"], "string")]
        )),
        ["S3"]
    );
}

#[test]
fn arrays_and_maps_compare_by_canonical_text() {
    let mut otlp = s3().otlp().clone();
    otlp.attributes.push(pair(
        "tags",
        Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
                AnyValue {
                    value: Some(Value::StringValue("a".into())),
                },
            ],
        }),
    ));
    let span = Span::new(s1_resource(), Arc::new(Scope::default()), otlp).unwrap();
    let matches = |filter: Call| resolve(&filter).unwrap().matches(&span);
    assert!(matches(call("eq", vec![attr("tags"), text(r#"[1,"a"]"#)])));
    assert!(!matches(call(
        "eq",
        vec![attr("tags"), typed(r#"[1,"a"]"#, "string")]
    )));
    assert!(matches(call("regex", vec![attr("tags"), text(r#""a""#)])));
    assert!(!matches(call("gt", vec![attr("tags"), text("[")])));
    assert!(matches(call("exists", vec![attr_at("span", "tags")])));
}

#[test]
fn filters_compare_by_finalized_form() {
    let first = resolve(&call("gt", vec![text("1s"), field("span", "duration")])).unwrap();
    let second = resolve(&call("lt", vec![field("span", "duration"), text("1s")])).unwrap();
    let other = resolve(&call("lt", vec![field("span", "duration"), text("1000ms")])).unwrap();
    assert_eq!(first, second);
    assert_ne!(first, other);
}
