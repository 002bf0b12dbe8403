//! Structured-filter searches at the edges of index narrowing, for backends that narrow
//! filter candidates with their own indexes (Elasticsearch, Cassandra): a small data set and
//! filters chosen to hit each narrowing at its edges (sets of several values,
//! `unset`/`unspecified` against unknown wire codes, long (hashed) values, resource- and
//! span-level attributes, start and duration ranges), and [`check_filter_edges`], which holds a
//! store's answers equal to the shared matcher applied to every stored span (newest matching
//! span first, ties by the larger trace ID, at most `search_depth` traces) with and without a
//! window, at two depths.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::proto::expression::v1::{
    AttributeReference, Call, Expression, FieldReference, List, Scalar, expression::Term,
};
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status};
use remote_storage_core::{
    Filter, Resource, Scope, Span, Tenant, TraceId, TraceQuery, TraceStore, UnixNanos,
};

pub const SECOND: u64 = 1_000_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(value: &str) -> Value {
    Value::StringValue(value.into())
}

/// Twelve one-span traces over the last minutes: services, names, kinds and statuses varied,
/// including wire codes the model reads as `unspecified`/`unset`.
pub fn dataset(now: u64) -> Vec<Span> {
    let names = ["GET /cart", "POST /pay", "healthz"];
    let services = ["cart", "checkout"];
    (0u8..12)
        .map(|index| {
            let i = usize::from(index);
            let resource = Arc::new(Resource::new(
                OtlpResource {
                    attributes: vec![
                        kv("service.name", text(services[i % 2])),
                        kv("region", text(["eu", "us", "ap"][i % 3])),
                    ],
                    ..Default::default()
                },
                String::new(),
            ));
            let mut attributes = vec![kv("http.method", text(["GET", "POST", "PUT"][i % 3]))];
            if i % 4 == 0 {
                attributes.push(kv("sql", text(&"x".repeat(600))));
            }
            if i % 5 == 0 {
                attributes.push(kv("region", text("span-level")));
            }
            let start = now - (60 - u64::from(index) * 4) * SECOND;
            let otlp = OtlpSpan {
                trace_id: vec![index + 1; 16],
                span_id: vec![0, 0, 0, 0, 0, 0, 0, 1],
                name: names[i % 3].into(),
                // 9 is no kind the model knows: it reads as unspecified.
                kind: [2, 3, 0, 9][i % 4],
                start_time_unix_nano: start,
                end_time_unix_nano: start + (u64::from(index) + 1) * 1_000_000,
                // 7 is no status code: it reads as unset.
                status: Some(Status {
                    code: [2, 0, 1, 7][i % 4],
                    message: String::new(),
                }),
                attributes,
                ..Default::default()
            };
            match Span::new(resource, Arc::new(Scope::default()), otlp) {
                Ok(span) => span,
                Err(error) => panic!("edge span is invalid: {error}"),
            }
        })
        .collect()
}

fn expression(term: Term) -> Expression {
    Expression { term: Some(term) }
}

pub fn attr(level: &str, key: &str) -> Expression {
    expression(Term::Attr(AttributeReference {
        key: key.into(),
        level: level.into(),
    }))
}

pub fn field(level: &str, name: &str) -> Expression {
    expression(Term::Field(FieldReference {
        name: name.into(),
        level: level.into(),
    }))
}

pub fn scalar(value: &str) -> Expression {
    expression(Term::Scalar(Scalar {
        value: value.into(),
        r#type: String::new(),
    }))
}

pub fn list(values: &[&str], list_type: &str) -> Expression {
    expression(Term::List(List {
        values: values.iter().map(|&value| value.to_owned()).collect(),
        r#type: list_type.into(),
    }))
}

pub fn call(op: &str, args: Vec<Expression>) -> Call {
    Call {
        op: op.into(),
        args,
    }
}

pub fn and(calls: Vec<Call>) -> Call {
    call(
        "and",
        calls
            .into_iter()
            .map(|call| expression(Term::Call(call)))
            .collect(),
    )
}

pub fn query(filter: &Call, depth: usize, window: Option<(u64, u64)>) -> TraceQuery {
    let mut query = TraceQuery::all(NonZeroUsize::new(depth).unwrap_or(NonZeroUsize::MIN));
    query.filter = match Filter::from_proto(filter, "filter") {
        Ok(filter) => Some(filter),
        Err(error) => panic!("edge filter is invalid: {error}"),
    };
    query.start_time_min = window.map(|window| UnixNanos(window.0));
    query.start_time_max = window.map(|window| UnixNanos(window.1));
    query
}

/// The matcher over every span: traces by their newest matching span, then larger ID first.
pub fn expected(query: &TraceQuery, spans: &[Span]) -> Vec<TraceId> {
    let matcher = SpanMatcher::new(query);
    let mut ranks: HashMap<TraceId, u64> = HashMap::new();
    for span in spans.iter().filter(|span| matcher.matches(span)) {
        let rank = ranks.entry(span.trace_id()).or_default();
        *rank = (*rank).max(span.start().0);
    }
    let mut ranked: Vec<(u64, TraceId)> = ranks.into_iter().map(|(id, rank)| (rank, id)).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked
        .into_iter()
        .take(query.search_depth.get())
        .map(|(_, id)| id)
        .collect()
}

pub fn filters(now: u64) -> Vec<Call> {
    let name_in = call(
        "in",
        vec![field("span", "name"), list(&["GET /cart", "healthz"], "")],
    );
    let method_in = call(
        "in",
        vec![attr("", "http.method"), list(&["GET", "PUT"], "string")],
    );
    let service = call("eq", vec![field("resource", "service"), scalar("cart")]);
    let method = call("eq", vec![attr("", "http.method"), scalar("POST")]);
    vec![
        name_in.clone(),
        method_in.clone(),
        call("eq", vec![field("span", "status"), scalar("unset")]),
        call("eq", vec![field("span", "status"), scalar("error")]),
        call("eq", vec![field("span", "kind"), scalar("unspecified")]),
        call("eq", vec![field("span", "kind"), scalar("client")]),
        call("eq", vec![attr("", "sql"), scalar(&"x".repeat(600))]),
        call("eq", vec![attr("resource", "region"), scalar("eu")]),
        call("eq", vec![attr("span", "region"), scalar("span-level")]),
        and(vec![service.clone(), method.clone()]),
        and(vec![service, name_in, method_in]),
        and(vec![
            method,
            call("gt", vec![field("span", "duration"), scalar("4ms")]),
            call("lte", vec![field("span", "duration"), scalar("10ms")]),
        ]),
        call(
            "gte",
            vec![
                field("span", "startTime"),
                scalar(&rfc3339(now - 30 * SECOND)),
            ],
        ),
        call(
            "not",
            vec![expression(Term::Call(call(
                "eq",
                vec![field("span", "name"), scalar("healthz")],
            )))],
        ),
    ]
}

pub fn rfc3339(nanos: u64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Writes [`dataset`] (relative to now) to `store` and checks every [`filters`] search, with
/// no window and a window, at depths 2 and 20, against [`expected`]. The error names the
/// filter, window and depth that differ.
pub async fn check_filter_edges<S: TraceStore + ?Sized>(
    store: &S,
    tenant: &Tenant,
) -> Result<(), String> {
    let now = UnixNanos::now().0;
    let spans = dataset(now);
    store
        .write_spans(tenant, spans.clone())
        .await
        .map_err(|error| format!("writing the edge data set: {error}"))?;
    let windows = [None, Some((now - 50 * SECOND, now - 20 * SECOND))];
    let mut answered = 0;
    for filter in filters(now) {
        for window in windows {
            for depth in [2, 20] {
                let query = query(&filter, depth, window);
                let want = expected(&query, &spans);
                answered += usize::from(!want.is_empty());
                let found: Vec<TraceId> = store
                    .find_trace_ids(tenant, query)
                    .await
                    .map_err(|error| format!("{filter:?}: {error}"))?
                    .into_iter()
                    .map(|found| found.trace_id)
                    .collect();
                if found != want {
                    return Err(format!(
                        "{filter:?} window {window:?} depth {depth}: found {found:?}, the \
                         matcher over every span {want:?}"
                    ));
                }
            }
        }
    }
    // The filters are chosen so that most searches find traces (an empty store passes none).
    if answered < 30 {
        return Err(format!("only {answered} searches found traces"));
    }
    Ok(())
}
