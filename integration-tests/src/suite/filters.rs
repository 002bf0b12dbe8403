//! `FindTracesWithFilter`: the worked examples of the structured-filter spec (RFC 0005, its
//! §8), one case per example, over its three one-span traces S1, S2 and S3.
//!
//! A storage that declares filter support ([`remote_storage_core::Capabilities::structured_filters`]
//! with `without_service_name`) must answer each valid filter with exactly the example's traces,
//! through FindTraces and (when served) FindTraceSummaries, and refuse each invalid one with
//! `INVALID_ARGUMENT`. A storage that does not declare it must refuse every filter, valid or
//! not, with `INVALID_ARGUMENT`: never ignore it, which would widen the search.

use std::collections::BTreeSet;
use std::sync::Arc;

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{
    AttributeReference, Call, Expression, FieldReference, List, NestedReference, Scalar,
};
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::span::{Event, Link, SpanKind};
use jaeger_remote_proto::otlp::trace::status::StatusCode;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};
use remote_storage_core::UnixNanos;

use super::executor::Executor;
use crate::options::{Poll, wait_for};
use crate::target::{OtlpTrace, TraceSearch, is_invalid_argument};

/// What a filter query must answer.
#[derive(Debug, Clone)]
enum Expect {
    /// Exactly these of S1, S2, S3 (by number).
    Traces(&'static [u8]),
    /// `INVALID_ARGUMENT`.
    Invalid,
}

/// One query of an example.
struct FilterQuery {
    what: &'static str,
    filter: Call,
    /// Legacy fields or a depth beside the filter.
    shape: fn(TraceSearch) -> TraceSearch,
    expect: Expect,
}

/// One worked example: its test name and its queries.
pub(super) struct Example {
    pub(super) name: &'static str,
    queries: Vec<FilterQuery>,
}

const MICROS: u64 = 1_000;
const MILLIS: u64 = 1_000_000;

fn trace_id(number: u8) -> [u8; 16] {
    [0xf0 | number; 16]
}

/// When the three traces start: S1 oldest, S3 newest (one second apart, an hour ago).
fn start_of(base: UnixNanos, number: u8) -> u64 {
    base.0 + u64::from(number) * 1_000_000_000
}

fn base() -> UnixNanos {
    let now = UnixNanos::now().0 - 3_600 * 1_000_000_000;
    UnixNanos(now - now % 1_000_000_000)
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text_kv(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn event(name: &str, start: u64, after_micros: u64) -> Event {
    Event {
        name: name.into(),
        time_unix_nano: start + after_micros * MICROS,
        ..Default::default()
    }
}

fn one_span_trace(service: &str, environment: &str, span: Span) -> OtlpTrace {
    OtlpTrace::new(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                text_kv("service.name", service),
                text_kv("deployment.environment", environment),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

/// S1, S2 and S3 of the spec.
fn example_traces(base: UnixNanos) -> [OtlpTrace; 3] {
    let status = |code: StatusCode| {
        Some(Status {
            code: code as i32,
            message: String::new(),
        })
    };
    let start = start_of(base, 1);
    let s1 = Span {
        trace_id: trace_id(1).to_vec(),
        span_id: vec![1; 8],
        name: "GET /cart".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 3_000 * MILLIS,
        attributes: vec![
            kv("http.status_code", Value::IntValue(500)),
            text_kv("http.method", "GET"),
        ],
        events: vec![event("exception", start, 10), event("retry", start, 80)],
        status: status(StatusCode::Error),
        ..Default::default()
    };
    let start = start_of(base, 2);
    let s2 = Span {
        trace_id: trace_id(2).to_vec(),
        span_id: vec![2; 8],
        name: "POST /pay".into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 800 * MILLIS,
        attributes: vec![
            text_kv("http.status_code", "503"),
            text_kv("deployment.environment", "prod"),
        ],
        events: vec![event("exception", start, 5), event("log", start, 60)],
        links: vec![Link {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            attributes: vec![text_kv("link.kind", "follows")],
            ..Default::default()
        }],
        status: status(StatusCode::Unset),
        ..Default::default()
    };
    let start = start_of(base, 3);
    let s3 = Span {
        trace_id: trace_id(3).to_vec(),
        span_id: vec![3; 8],
        name: "healthz".into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + MILLIS,
        status: status(StatusCode::Ok),
        ..Default::default()
    };
    [
        one_span_trace("cart", "prod", s1),
        one_span_trace("checkout", "staging", s2),
        one_span_trace("cart", "prod", s3),
    ]
}

// Expression builders, in the spec's notation.

fn term(term: Term) -> Expression {
    Expression { term: Some(term) }
}

fn attr(level: &str, key: &str) -> Expression {
    term(Term::Attr(AttributeReference {
        key: key.into(),
        level: level.into(),
    }))
}

fn field(level: &str, name: &str) -> Expression {
    term(Term::Field(FieldReference {
        name: name.into(),
        level: level.into(),
    }))
}

fn constant(value: &str, scalar_type: &str) -> Expression {
    term(Term::Scalar(Scalar {
        value: value.into(),
        r#type: scalar_type.into(),
    }))
}

fn untyped(value: &str) -> Expression {
    constant(value, "")
}

fn list(values: &[&str], list_type: &str) -> Expression {
    term(Term::List(List {
        values: values.iter().map(|&value| value.to_owned()).collect(),
        r#type: list_type.into(),
    }))
}

fn nested(level: &str) -> Expression {
    term(Term::Nested(NestedReference {
        level: level.into(),
    }))
}

fn call(op: &str, args: Vec<Expression>) -> Call {
    Call {
        op: op.into(),
        args,
    }
}

fn sub(op: &str, args: Vec<Expression>) -> Expression {
    term(Term::Call(call(op, args)))
}

fn query(what: &'static str, filter: Call, expect: Expect) -> FilterQuery {
    FilterQuery {
        what,
        filter,
        shape: |search| search,
        expect,
    }
}

/// `count` nested `not`s around an `eq`: `count + 1` calls deep.
fn nots_around_eq(count: usize) -> Call {
    let mut current = call("eq", vec![field("span", "name"), untyped("healthz")]);
    for _ in 0..count {
        current = call("not", vec![term(Term::Call(current))]);
    }
    current
}

/// The examples of the spec's table, in its order.
pub(super) fn examples() -> Vec<Example> {
    use Expect::{Invalid, Traces};
    let status_code = || attr("", "http.status_code");
    let exception_late = || {
        vec![
            sub("eq", vec![field("event", "name"), untyped("exception")]),
            sub("gt", vec![field("event", "timeSinceStart"), untyped("8us")]),
        ]
    };
    vec![
        Example {
            name: "Typed_constants_are_authoritative",
            queries: vec![
                query(
                    "untyped 500",
                    call("eq", vec![status_code(), untyped("500")]),
                    Traces(&[1]),
                ),
                query(
                    "503 as int",
                    call("eq", vec![status_code(), constant("503", "int")]),
                    Traces(&[]),
                ),
                query(
                    "503 as string",
                    call("eq", vec![status_code(), constant("503", "string")]),
                    Traces(&[2]),
                ),
            ],
        },
        Example {
            name: "Lists_against_attributes_need_a_type",
            queries: vec![
                query(
                    "int list",
                    call("in", vec![status_code(), list(&["500", "503"], "int")]),
                    Traces(&[1]),
                ),
                query(
                    "untyped list",
                    call("in", vec![status_code(), list(&["500", "503"], "")]),
                    Invalid,
                ),
            ],
        },
        Example {
            name: "Durations_orientation_and_units",
            queries: vec![
                query(
                    "duration over 2s",
                    call("gt", vec![field("span", "duration"), untyped("2s")]),
                    Traces(&[1]),
                ),
                query(
                    "constant first",
                    call("gt", vec![untyped("2s"), field("span", "duration")]),
                    Traces(&[2, 3]),
                ),
                query(
                    "no unit",
                    call("gt", vec![field("span", "duration"), untyped("2000")]),
                    Invalid,
                ),
            ],
        },
        Example {
            name: "Domains_must_agree",
            queries: vec![
                query(
                    "duration as string",
                    call(
                        "eq",
                        vec![field("span", "duration"), constant("2s", "string")],
                    ),
                    Invalid,
                ),
                query(
                    "duration against name",
                    call("eq", vec![field("span", "duration"), field("span", "name")]),
                    Invalid,
                ),
            ],
        },
        Example {
            name: "Ne_needs_presence_not_eq_does_not",
            queries: vec![
                query(
                    "ne",
                    call("ne", vec![status_code(), untyped("500")]),
                    Traces(&[2]),
                ),
                query(
                    "not eq",
                    call("not", vec![sub("eq", vec![status_code(), untyped("500")])]),
                    Traces(&[2, 3]),
                ),
            ],
        },
        Example {
            name: "Unqualified_attributes_see_span_and_resource",
            queries: vec![
                query(
                    "unqualified",
                    call(
                        "eq",
                        vec![attr("", "deployment.environment"), untyped("prod")],
                    ),
                    Traces(&[1, 2, 3]),
                ),
                query(
                    "resource",
                    call(
                        "eq",
                        vec![attr("resource", "deployment.environment"), untyped("prod")],
                    ),
                    Traces(&[1, 3]),
                ),
            ],
        },
        Example {
            name: "Ne_on_a_multi_valued_reference",
            queries: vec![query(
                "ne prod",
                call(
                    "ne",
                    vec![attr("", "deployment.environment"), untyped("prod")],
                ),
                Traces(&[]),
            )],
        },
        Example {
            name: "Event_references_outside_some_are_uncorrelated",
            queries: vec![query("and", call("and", exception_late()), Traces(&[1, 2]))],
        },
        Example {
            name: "Some_binds_one_event",
            queries: vec![query(
                "some",
                call("some", vec![nested("event"), sub("and", exception_late())]),
                Traces(&[1]),
            )],
        },
        Example {
            name: "Every_is_vacuously_true_on_no_events",
            queries: vec![query(
                "every",
                call(
                    "not",
                    vec![sub(
                        "some",
                        vec![
                            nested("event"),
                            sub(
                                "not",
                                vec![sub(
                                    "eq",
                                    vec![field("event", "name"), untyped("exception")],
                                )],
                            ),
                        ],
                    )],
                ),
                Traces(&[3]),
            )],
        },
        Example {
            name: "Regex_is_unanchored_case_sensitive_RE2",
            queries: vec![
                query(
                    "alternation",
                    call("regex", vec![field("span", "name"), untyped("GET|POST")]),
                    Traces(&[1, 2]),
                ),
                query(
                    "lower case",
                    call("regex", vec![field("span", "name"), untyped("get")]),
                    Traces(&[]),
                ),
                query(
                    "anchor",
                    call("regex", vec![field("span", "name"), untyped("^GET")]),
                    Invalid,
                ),
                query(
                    "on a duration",
                    call("regex", vec![field("span", "duration"), untyped("3")]),
                    Invalid,
                ),
            ],
        },
        Example {
            name: "Span_status_and_kind_words",
            queries: vec![
                query(
                    "status in",
                    call(
                        "in",
                        vec![field("span", "status"), list(&["error", "ok"], "")],
                    ),
                    Traces(&[1, 3]),
                ),
                query(
                    "upper-case kind",
                    call("eq", vec![field("span", "kind"), untyped("SERVER")]),
                    Invalid,
                ),
                query(
                    "ordered status",
                    call("gt", vec![field("span", "status"), untyped("ok")]),
                    Invalid,
                ),
            ],
        },
        Example {
            name: "Exists_at_link_and_span_levels",
            queries: vec![
                query(
                    "link",
                    call("exists", vec![attr("link", "link.kind")]),
                    Traces(&[2]),
                ),
                query(
                    "span",
                    call("exists", vec![attr("span", "http.method")]),
                    Traces(&[1]),
                ),
            ],
        },
        Example {
            name: "Structural_refusals",
            queries: vec![
                query(
                    "some over a bound level",
                    call(
                        "some",
                        vec![
                            nested("event"),
                            sub(
                                "some",
                                vec![nested("event"), sub("exists", vec![field("event", "name")])],
                            ),
                        ],
                    ),
                    Invalid,
                ),
                query(
                    "exists of nested",
                    call("exists", vec![nested("event")]),
                    Invalid,
                ),
                query(
                    "one-argument and",
                    call("and", vec![sub("exists", vec![field("span", "name")])]),
                    Invalid,
                ),
            ],
        },
        Example {
            name: "Envelope_and_nesting_limit",
            queries: vec![
                FilterQuery {
                    what: "with service_name",
                    filter: call("exists", vec![field("span", "name")]),
                    shape: |search| TraceSearch {
                        service_name: "cart".into(),
                        ..search
                    },
                    expect: Invalid,
                },
                FilterQuery {
                    what: "depth 1 keeps the newest",
                    filter: call("eq", vec![field("resource", "service"), untyped("cart")]),
                    shape: |search| TraceSearch {
                        search_depth: 1,
                        ..search
                    },
                    expect: Traces(&[3]),
                },
                query("20 calls deep", nots_around_eq(19), Traces(&[1, 2])),
                query("21 calls deep", nots_around_eq(20), Invalid),
            ],
        },
    ]
}

impl Executor {
    /// Writes S1, S2 and S3.
    pub(super) async fn write_filter_examples(&self) -> anyhow::Result<()> {
        for trace in example_traces(self.filter_base()) {
            self.write(&trace).await?;
        }
        Ok(())
    }

    /// The base time of the examples, fixed for the executor's lifetime.
    fn filter_base(&self) -> UnixNanos {
        *self.filter_base.get_or_init(base)
    }

    pub(super) async fn find_traces_with_filter(&self, index: usize) -> anyhow::Result<()> {
        let examples = examples();
        let example = examples
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("filter example out of range"))?;
        let capabilities = self.options.capabilities;
        // Without `without_service_name` a filter query (which names no service) is refused
        // like any search without a service.
        let served = capabilities.structured_filters && capabilities.without_service_name;
        let base = self.filter_base();
        for case in &example.queries {
            let search = (case.shape)(TraceSearch {
                start_time_min: Some(UnixNanos(base.0 - 3_600 * 1_000_000_000)),
                start_time_max: Some(UnixNanos(base.0 + 3_600 * 1_000_000_000)),
                search_depth: 100,
                filter: Some(case.filter.clone()),
                ..TraceSearch::default()
            });
            let expect = if served {
                case.expect.clone()
            } else {
                Expect::Invalid
            };
            let context = || format!("{} ({:?})", case.what, case.filter);
            match expect {
                Expect::Invalid => self.expect_refusal(&search).await.map_err(|error| {
                    let declared = if served {
                        "an invalid filter"
                    } else {
                        "a filter on a storage declaring no filter support"
                    };
                    error.context(format!("{}: {declared}", context()))
                })?,
                Expect::Traces(numbers) => self
                    .expect_traces(&search, numbers)
                    .await
                    .map_err(|error| error.context(context()))?,
            }
        }
        Ok(())
    }

    pub(super) async fn expect_refusal(&self, search: &TraceSearch) -> anyhow::Result<()> {
        match self.target.find_traces(search).await {
            Err(error) if is_invalid_argument(&error) => {}
            Err(error) => return Err(error.context("FindTraces: expected INVALID_ARGUMENT")),
            Ok(traces) => anyhow::bail!(
                "FindTraces: expected INVALID_ARGUMENT, got {} trace(s)",
                traces.len()
            ),
        }
        match self.target.find_trace_summaries(search).await {
            Err(error) if is_invalid_argument(&error) => Ok(()),
            // Not served at all: nothing to refuse.
            Ok(None) => Ok(()),
            Err(error) => Err(error.context("FindTraceSummaries: expected INVALID_ARGUMENT")),
            Ok(Some(summaries)) => anyhow::bail!(
                "FindTraceSummaries: expected INVALID_ARGUMENT, got {} summaries",
                summaries.len()
            ),
        }
    }

    async fn expect_traces(&self, search: &TraceSearch, numbers: &[u8]) -> anyhow::Result<()> {
        let expected: BTreeSet<[u8; 16]> = numbers.iter().map(|&number| trace_id(number)).collect();
        let target = Arc::clone(&self.target);
        let describe = |ids: &BTreeSet<[u8; 16]>| {
            ids.iter()
                .map(|id| format!("S{}", id[0] & 0x0f))
                .collect::<Vec<_>>()
        };
        let expectation = format!("FindTraces to return {:?}", describe(&expected));
        wait_for(self.options.wait, &expectation, || {
            let target = Arc::clone(&target);
            let expected = expected.clone();
            async move {
                let traces = target.find_traces(search).await?;
                let found: BTreeSet<[u8; 16]> = traces
                    .iter()
                    .filter_map(|trace| trace.trace_id()?.try_into().ok())
                    .collect();
                if found == expected && traces.len() == expected.len() {
                    return Ok(Poll::Ready(()));
                }
                Ok(Poll::Pending(format!("{:?}", describe(&found))))
            }
        })
        .await?;
        if let Some(summaries) = self.target.find_trace_summaries(search).await? {
            let found: BTreeSet<[u8; 16]> = summaries
                .iter()
                .filter_map(|summary| summary.trace_id.as_slice().try_into().ok())
                .collect();
            anyhow::ensure!(
                found == expected && summaries.len() == expected.len(),
                "FindTraceSummaries returned {:?}, expected {:?}",
                describe(&found),
                describe(&expected)
            );
        }
        Ok(())
    }
}
