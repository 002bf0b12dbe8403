//! `Backend/Filters_equal_the_evaluator`: random structured filters over a generated data set
//! answer exactly what the shared evaluator ([`remote_storage_core::Filter::matches`], ANDed
//! with the window by [`SpanMatcher`]) selects from every stored span, whatever indexes the
//! backend narrows with.
//!
//! The data set (80 traces of 1 to 4 spans) varies everything a filter can test: services,
//! names, kinds, statuses, durations, attributes of every level and type, events and links.
//! Filters are drawn from the same vocabulary (so many match something) as random `and`/`or`/
//! `not` trees of comparisons, memberships, regexes, existence tests and `some`; those the
//! engine refuses are skipped. Each runs with a random window and either an unbounded depth
//! (the trace set must be equal) or a small one (the newest matching traces, in order).
//! Deterministic: a fixed seed, so a failure repeats.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;
use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::proto::expression::v1::expression::Term;
use remote_storage_core::proto::expression::v1::{
    AttributeReference, Call, Expression, FieldReference, List, NestedReference, Scalar,
};
use remote_storage_core::proto::otlp::common::{InstrumentationScope, any_value::Value};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::span::{Event, Link};
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status};
use remote_storage_core::{
    Backend, Filter, Resource, Scope, Span, Tenant, TraceId, TraceQuery, UnixNanos,
};

use super::{CheckContext, depth, drain, kv, recent_base, seed};

/// Filters tried per run (those the engine refuses are skipped).
const FILTERS: usize = 240;
const TRACES: u32 = 80;
const MICROS: u64 = 1_000;
const MILLIS: u64 = 1_000_000;
const SECONDS: u64 = 1_000_000_000;

/// xorshift64: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())]
    }
}

const SERVICES: [&str; 3] = ["cart", "checkout", "auth"];
const NAMES: [&str; 4] = ["GET /cart", "POST /pay", "healthz", "SELECT"];
const KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];
const STATUSES: [&str; 3] = ["unset", "ok", "error"];
const DURATIONS: [u64; 5] = [MILLIS, 50 * MILLIS, 100 * MILLIS, 800 * MILLIS, 3 * SECONDS];
const DURATION_TEXTS: [&str; 6] = ["1ms", "50ms", "100ms", "800ms", "3s", "0"];
const EVENT_NAMES: [&str; 3] = ["exception", "log", "retry"];

fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

/// The generated spans, one batch.
fn dataset(base: u64, rng: &mut Rng) -> Vec<Span> {
    let mut resources: HashMap<(usize, usize, usize), Arc<Resource>> = HashMap::new();
    let mut scopes: HashMap<(usize, usize), Arc<Scope>> = HashMap::new();
    let mut spans = Vec::new();
    for trace in 0..TRACES {
        let mut trace_id = [0xfe; 16];
        trace_id[..4].copy_from_slice(&trace.to_be_bytes());
        let trace_start = base + u64::from(trace) * SECONDS + rng.next() % SECONDS;
        for index in 0..=rng.below(4) {
            let key = (rng.below(3), rng.below(2), rng.below(2));
            let resource = Arc::clone(resources.entry(key).or_insert_with(|| {
                Arc::new(Resource::new(
                    OtlpResource {
                        attributes: vec![
                            kv("service.name", text(SERVICES[key.0])),
                            kv("deployment.environment", text(["prod", "staging"][key.1])),
                            kv("region", text(["eu", "us"][key.2])),
                        ],
                        ..Default::default()
                    },
                    String::new(),
                ))
            }));
            let scope_key = (rng.below(2), rng.below(2));
            let scope = Arc::clone(scopes.entry(scope_key).or_insert_with(|| {
                Arc::new(Scope::new(
                    InstrumentationScope {
                        name: ["lib-a", "lib-b"][scope_key.0].into(),
                        version: ["1.0", ""][scope_key.1].into(),
                        attributes: vec![kv("scope.k", text(["x", "y"][scope_key.0]))],
                        ..Default::default()
                    },
                    String::new(),
                ))
            }));
            let start = trace_start + rng.next() % (500 * MILLIS);
            let mut attributes = Vec::new();
            if rng.chance(70) {
                let status = if rng.chance(25) {
                    text("503")
                } else {
                    Value::IntValue(rng.pick(&[200, 404, 500]))
                };
                attributes.push(kv("http.status_code", status));
            }
            if rng.chance(50) {
                attributes.push(kv("http.method", text(rng.pick(&["GET", "POST"]))));
            }
            if rng.chance(40) {
                attributes.push(kv("retries", Value::IntValue(rng.pick(&[0, 1, 2]))));
            }
            if rng.chance(30) {
                attributes.push(kv("ratio", Value::DoubleValue(rng.pick(&[0.5, 1.5]))));
            }
            if rng.chance(30) {
                attributes.push(kv("cached", Value::BoolValue(rng.chance(50))));
            }
            if rng.chance(15) {
                attributes.push(kv("deployment.environment", text("prod")));
            }
            let events = (0..rng.below(3))
                .map(|_| Event {
                    name: rng.pick(&EVENT_NAMES).into(),
                    time_unix_nano: start + rng.pick(&[5, 10, 60, 80]) * MICROS,
                    attributes: vec![kv("event.k", text(rng.pick(&["a", "b"])))],
                    ..Default::default()
                })
                .collect();
            let links = (0..rng.below(2))
                .map(|_| Link {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    trace_state: rng.pick(&["", "k=v"]).into(),
                    attributes: vec![kv("link.kind", text(rng.pick(&["follows", "child"])))],
                    ..Default::default()
                })
                .collect();
            let otlp = OtlpSpan {
                trace_id: trace_id.to_vec(),
                span_id: vec![0, 0, 0, 0, 0, 0, 0, u8::try_from(index + 1).unwrap_or(1)],
                parent_span_id: if index == 0 {
                    Vec::new()
                } else {
                    vec![0, 0, 0, 0, 0, 0, 0, 1]
                },
                name: rng.pick(&NAMES).into(),
                kind: i32::try_from(rng.below(6)).unwrap_or(0),
                start_time_unix_nano: start,
                end_time_unix_nano: start + rng.pick(&DURATIONS),
                attributes,
                events,
                links,
                status: Some(Status {
                    code: i32::try_from(rng.below(3)).unwrap_or(0),
                    message: rng.pick(&["", "boom"]).into(),
                }),
                ..Default::default()
            };
            spans.push(
                Span::new(resource, Arc::clone(&scope), otlp).expect("a generated span is valid"),
            );
        }
    }
    spans
}

fn expression(term: Term) -> Expression {
    Expression { term: Some(term) }
}

fn attr(level: &str, key: &str) -> Expression {
    expression(Term::Attr(AttributeReference {
        key: key.into(),
        level: level.into(),
    }))
}

fn field(level: &str, name: &str) -> Expression {
    expression(Term::Field(FieldReference {
        name: name.into(),
        level: level.into(),
    }))
}

fn scalar(value: &str, scalar_type: &str) -> Expression {
    expression(Term::Scalar(Scalar {
        value: value.into(),
        r#type: scalar_type.into(),
    }))
}

fn list(values: Vec<String>, list_type: &str) -> Expression {
    expression(Term::List(List {
        values,
        r#type: list_type.into(),
    }))
}

fn call(op: &str, args: Vec<Expression>) -> Expression {
    expression(Term::Call(Call {
        op: op.into(),
        args,
    }))
}

/// An attribute key with values (and their scalar type) it is stored with.
const ATTRIBUTES: [(&str, &[&str], &str); 9] = [
    ("http.status_code", &["200", "404", "500", "503"], "int"),
    ("http.method", &["GET", "POST"], "string"),
    ("retries", &["0", "1", "2"], "int"),
    ("ratio", &["0.5", "1.5", "1.50"], "double"),
    ("cached", &["true", "false", "T"], "bool"),
    ("deployment.environment", &["prod", "staging"], "string"),
    ("region", &["eu", "us"], "string"),
    ("event.k", &["a", "b"], "string"),
    ("link.kind", &["follows", "child"], "string"),
];

/// Text fields with the values they take.
const TEXT_FIELDS: [(&str, &str, &[&str]); 8] = [
    ("resource", "service", &SERVICES),
    ("span", "name", &NAMES),
    ("span", "kind", &KINDS),
    ("span", "status", &STATUSES),
    ("scope", "name", &["lib-a", "lib-b"]),
    ("scope", "version", &["1.0", "2.0"]),
    ("event", "name", &EVENT_NAMES),
    ("link", "traceState", &["k=v", "x"]),
];

fn rfc3339(nanos: u64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One comparison, membership, regex, existence or `some` leaf.
fn leaf(rng: &mut Rng, base: u64) -> Expression {
    match rng.below(9) {
        0 | 1 => {
            let (key, values, stored_type) = rng.pick(&ATTRIBUTES);
            let level = rng.pick(&["", "", "span", "resource", "scope", "event", "link"]);
            let value = rng.pick(values);
            let scalar_type = rng.pick(&["", "", stored_type, "string"]);
            let op = rng.pick(&["eq", "eq", "ne"]);
            call(op, vec![attr(level, key), scalar(value, scalar_type)])
        }
        2 => {
            let (key, values, stored_type) = rng.pick(&ATTRIBUTES);
            let level = rng.pick(&["", "span", "resource", "event", "link"]);
            let chosen = (0..=rng.below(2))
                .map(|_| rng.pick(values).to_owned())
                .collect();
            let list_type = rng.pick(&[stored_type, stored_type, "string"]);
            let op = rng.pick(&["in", "in", "not_in"]);
            call(op, vec![attr(level, key), list(chosen, list_type)])
        }
        3 | 4 => {
            let (level, name, values) = rng.pick(&TEXT_FIELDS);
            if rng.chance(35) {
                let chosen = (0..=rng.below(2))
                    .map(|_| rng.pick(values).to_owned())
                    .collect();
                let op = rng.pick(&["in", "in", "not_in"]);
                call(op, vec![field(level, name), list(chosen, "")])
            } else {
                let op = rng.pick(&["eq", "eq", "ne"]);
                call(op, vec![field(level, name), scalar(rng.pick(values), "")])
            }
        }
        5 => {
            let op = rng.pick(&["gt", "gte", "lt", "lte", "eq", "ne"]);
            if rng.chance(60) {
                let value = rng.pick(&DURATION_TEXTS);
                call(op, vec![field("span", "duration"), scalar(value, "")])
            } else {
                let offset = rng.next() % (u64::from(TRACES) * SECONDS);
                let value = rfc3339(base + offset);
                call(op, vec![scalar(&value, ""), field("span", "startTime")])
            }
        }
        6 => {
            let op = rng.pick(&["gt", "lt", "gte"]);
            match rng.below(3) {
                0 => call(op, vec![attr("", "retries"), scalar("1", "")]),
                1 => call(
                    op,
                    vec![attr("span", "http.status_code"), scalar("404", "int")],
                ),
                _ => call(op, vec![attr("", "http.method"), scalar("H", "string")]),
            }
        }
        7 => match rng.below(4) {
            0 => call(
                "regex",
                vec![
                    field("span", "name"),
                    scalar(rng.pick(&["GET|POST", "pay", "^x"]), ""),
                ],
            ),
            1 => call(
                "regex",
                vec![attr("", "http.status_code"), scalar("5..", "")],
            ),
            2 => call(
                "exists",
                vec![rng.pick(&[
                    ("span", "parentSpanID"),
                    ("span", "statusMessage"),
                    ("scope", "version"),
                ])]
                .into_iter()
                .map(|(level, name)| field(level, name))
                .collect(),
            ),
            _ => call(
                "exists",
                vec![attr(rng.pick(&["", "span", "event", "link"]), {
                    let (key, _, _) = rng.pick(&ATTRIBUTES);
                    key
                })],
            ),
        },
        _ => {
            let nested = |level: &str| {
                expression(Term::Nested(NestedReference {
                    level: level.into(),
                }))
            };
            if rng.chance(50) {
                let late = rng.pick(&["8us", "50us"]);
                call(
                    "some",
                    vec![
                        nested("event"),
                        call(
                            "and",
                            vec![
                                call(
                                    "eq",
                                    vec![
                                        field("event", "name"),
                                        scalar(rng.pick(&EVENT_NAMES), ""),
                                    ],
                                ),
                                call(
                                    "gt",
                                    vec![field("event", "timeSinceStart"), scalar(late, "")],
                                ),
                            ],
                        ),
                    ],
                )
            } else {
                call(
                    "some",
                    vec![
                        nested("link"),
                        call(
                            "eq",
                            vec![
                                attr("link", "link.kind"),
                                scalar(rng.pick(&["follows", "child"]), ""),
                            ],
                        ),
                    ],
                )
            }
        }
    }
}

fn predicate(rng: &mut Rng, base: u64, depth: u32) -> Expression {
    if depth == 0 || rng.chance(45) {
        return leaf(rng, base);
    }
    match rng.below(5) {
        0..=2 => {
            let operands = (0..2 + rng.below(2))
                .map(|_| predicate(rng, base, depth - 1))
                .collect();
            call("and", operands)
        }
        3 => {
            let operands = (0..2).map(|_| predicate(rng, base, depth - 1)).collect();
            call("or", operands)
        }
        _ => call("not", vec![predicate(rng, base, depth - 1)]),
    }
}

fn random_filter(rng: &mut Rng, base: u64) -> Option<Call> {
    match predicate(rng, base, 3).term {
        Some(Term::Call(root)) => Some(root),
        _ => None,
    }
}

/// Per matching trace, the start of its newest span that matches (filter and window).
fn expected_ranks(query: &TraceQuery, spans: &[Span]) -> HashMap<TraceId, u64> {
    let matcher = SpanMatcher::new(query);
    let mut ranks: HashMap<TraceId, u64> = HashMap::new();
    for span in spans.iter().filter(|span| matcher.matches(span)) {
        let rank = ranks.entry(span.trace_id()).or_insert(0);
        *rank = (*rank).max(span.start().0);
    }
    ranks
}

/// Checks one answer (trace IDs in answer order) against the evaluator's ranks.
fn check_answer(
    answer: &[TraceId],
    ranks: &HashMap<TraceId, u64>,
    depth: usize,
) -> anyhow::Result<()> {
    let distinct: HashSet<&TraceId> = answer.iter().collect();
    anyhow::ensure!(distinct.len() == answer.len(), "a trace is answered twice");
    anyhow::ensure!(
        answer.len() == depth.min(ranks.len()),
        "{} trace(s) answered, expected {} ({} match, depth {depth})",
        answer.len(),
        depth.min(ranks.len()),
        ranks.len()
    );
    let mut previous = u64::MAX;
    for trace in answer {
        let Some(&rank) = ranks.get(trace) else {
            anyhow::bail!("trace {trace} does not match (the evaluator selects no span of it)");
        };
        anyhow::ensure!(
            rank <= previous,
            "trace {trace} is ranked after a trace whose newest match is older"
        );
        previous = rank;
    }
    // The newest matching traces: nothing left out is newer than the oldest answered.
    if let Some(left_out) = ranks
        .iter()
        .filter(|(trace, _)| !distinct.contains(trace))
        .map(|(_, &rank)| rank)
        .max()
    {
        anyhow::ensure!(
            left_out <= previous,
            "a trace whose newest match starts at {left_out} is left out for one at {previous}"
        );
    }
    Ok(())
}

/// See the module documentation.
pub async fn filters_equal_the_evaluator(
    backend: &Backend,
    _context: &CheckContext,
) -> anyhow::Result<()> {
    let base = recent_base() - 3_600 * SECONDS;
    let mut rng = Rng(0x5eed_f11e_7e25_0001);
    let spans = dataset(base, &mut rng);
    let tenant = seed(backend, spans.clone()).await?;
    let (mut tried, mut selective) = (0, 0);
    for round in 0..FILTERS {
        let Some(call) = random_filter(&mut rng, base) else {
            continue;
        };
        let Ok(filter) = Filter::from_proto(&call, "query.filter") else {
            continue;
        };
        let search_depth = if rng.chance(60) {
            10_000
        } else {
            1 + rng.below(5)
        };
        let mut query = TraceQuery {
            filter: Some(filter),
            ..TraceQuery::all(depth(search_depth))
        };
        if rng.chance(50) {
            let span = u64::from(TRACES) * SECONDS;
            let (a, b) = (rng.next() % span, rng.next() % span);
            query.start_time_min = Some(UnixNanos(base + a.min(b)));
            query.start_time_max = Some(UnixNanos(base + a.max(b)));
        }
        let ranks = expected_ranks(&query, &spans);
        tried += 1;
        if !ranks.is_empty() && ranks.len() < usize::try_from(TRACES).unwrap_or(0) {
            selective += 1;
        }
        check_query(backend, &tenant, &query, &ranks, round)
            .await
            .with_context(|| {
                format!(
                    "filter #{round} {call:?}, window {:?}..{:?}, depth {search_depth}",
                    query.start_time_min, query.start_time_max
                )
            })?;
    }
    // The generator must keep producing filters that select some traces and not others.
    anyhow::ensure!(
        tried >= FILTERS / 2 && selective >= FILTERS / 5,
        "the generator is too weak: {tried} valid filters, {selective} selective"
    );
    Ok(())
}

async fn check_query(
    backend: &Backend,
    tenant: &Tenant,
    query: &TraceQuery,
    ranks: &HashMap<TraceId, u64>,
    round: usize,
) -> anyhow::Result<()> {
    let depth = query.search_depth.get();
    let found: Vec<TraceId> = backend
        .traces
        .find_trace_ids(tenant, query.clone())
        .await
        .context("find_trace_ids failed")?
        .into_iter()
        .map(|found| found.trace_id)
        .collect();
    check_answer(&found, ranks, depth).context("find_trace_ids")?;
    // The streaming calls on a share of the rounds: the same answer through their routes.
    if round.is_multiple_of(4) {
        let traces = drain(
            backend.traces.find_traces(tenant, query.clone()).await,
            "find_traces",
        )
        .await?;
        let ids: Vec<TraceId> = traces.iter().map(|trace| trace.trace_id).collect();
        check_answer(&ids, ranks, depth).context("find_traces")?;
        let summaries = drain(
            backend
                .traces
                .find_trace_summaries(tenant, query.clone())
                .await,
            "find_trace_summaries",
        )
        .await?;
        let ids: Vec<TraceId> = summaries.iter().map(|summary| summary.trace_id).collect();
        check_answer(&ids, ranks, depth).context("find_trace_summaries")?;
    }
    Ok(())
}
