//! The equivalence harness: a generated dataset written to the backend under test and to a
//! reference backend (the memory backend, Jaeger's reference semantics), then every search,
//! summary, fetch, dependency and index answer compared.
//!
//! The dataset covers many shapes: traces growing over several writes, spans sharing a span
//! ID, orphans, spans sharing a start time (paging ties), typed attributes on every level,
//! events, links and statuses. The queries are a fixed list covering each kind of condition,
//! then 300 pseudo-random ones.

use std::sync::Arc;

use anyhow::Context as _;
use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::model::{Resource, Scope};
use remote_storage_core::proto::otlp::common::{InstrumentationScope, any_value::Value};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status, span};
use remote_storage_core::{
    Backend, DependencyQuery, Span, Tenant, Trace, TraceId, TraceQuery, TraceSummary, UnixNanos,
};

use super::{
    CheckContext, SpanOrder, depth, ensure_eq, find, get_ids, in_service, kv, operations,
    recent_base, services, summaries, with_attribute, write,
};

/// A small deterministic generator (64-bit LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or_default()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

const SERVICES: [&str; 5] = ["frontend", "cart", "payment", "db", "cache"];
const OPERATIONS: [&str; 4] = ["GET /", "POST /pay", "query", "render"];
const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
const TRACES: u8 = 60;

/// The dataset, in 5 writes that interleave the traces (so traces grow across writes).
fn generate(base: u64) -> anyhow::Result<Vec<Vec<Span>>> {
    let mut random = Lcg(42);
    let mut resources: Vec<Arc<Resource>> = Vec::new();
    for (index, service) in SERVICES.iter().enumerate() {
        for host in ["h0", "h1"] {
            resources.push(Arc::new(Resource::new(
                OtlpResource {
                    attributes: vec![
                        kv("service.name", Value::StringValue((*service).into())),
                        kv("host", Value::StringValue(host.into())),
                        kv("pid", Value::IntValue(i64::try_from(index)? * 100)),
                    ],
                    ..Default::default()
                },
                String::new(),
            )));
        }
    }
    let scopes: Vec<Arc<Scope>> = [("lib-a", "1"), ("lib-b", "2")]
        .iter()
        .map(|(name, version)| {
            Arc::new(Scope::new(
                InstrumentationScope {
                    name: (*name).into(),
                    version: (*version).into(),
                    attributes: vec![
                        kv("scope.attr", Value::BoolValue(*name == "lib-a")),
                        kv("scope.rank", Value::IntValue(7)),
                    ],
                    ..Default::default()
                },
                String::new(),
            ))
        })
        .collect();
    let mut batches: Vec<Vec<Span>> = vec![Vec::new(); 5];
    for trace in 1..=TRACES {
        let span_count = 1 + random.below(7);
        let mut previous_start = None;
        for index in 0..span_count {
            let span_id = if random.below(10) == 0 { 1 } else { index + 1 };
            let parent = match index {
                0 => Vec::new(),
                _ if random.below(8) == 0 => vec![0, 0, 0, 0, 0, 0, 0, 99],
                _ => (1 + random.below(index)).to_be_bytes().to_vec(),
            };
            let start = match previous_start {
                // Spans sharing a start time exercise paging's tie handling.
                Some(previous) if random.below(4) == 0 => previous,
                _ => base + random.below(3_600) * SECOND + random.below(3) * MS,
            };
            previous_start = Some(start);
            let duration = random.below(5) * MS;
            let mut attributes = vec![kv(
                "http.status_code",
                Value::IntValue(*random.pick(&[200, 404, 500])),
            )];
            if random.below(2) == 0 {
                attributes.push(kv(
                    "q.label",
                    Value::StringValue((*random.pick(&["teal", "red"])).into()),
                ));
            }
            if random.below(2) == 0 {
                attributes.push(kv(
                    "region",
                    Value::StringValue((*random.pick(&["eu", "us"])).into()),
                ));
            }
            let events = if random.below(3) == 0 {
                vec![span::Event {
                    name: (*random.pick(&["log", "retry"])).into(),
                    attributes: vec![
                        kv("ratio", Value::DoubleValue(*random.pick(&[0.5, 72.5]))),
                        kv("event.kind", Value::StringValue("retry".into())),
                    ],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let links = if random.below(4) == 0 {
                vec![span::Link {
                    trace_id: vec![200; 16],
                    span_id: vec![200; 8],
                    attributes: vec![
                        kv(
                            "peer",
                            Value::StringValue((*random.pick(&["x", "y"])).into()),
                        ),
                        kv("link.kind", Value::DoubleValue(*random.pick(&[0.5, 1.5]))),
                    ],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let otlp = OtlpSpan {
                trace_id: vec![trace; 16],
                span_id: span_id.to_be_bytes().to_vec(),
                parent_span_id: parent,
                name: (*random.pick(&OPERATIONS)).into(),
                kind: i32::try_from(random.below(6))?,
                start_time_unix_nano: start,
                end_time_unix_nano: start + duration,
                attributes,
                events,
                links,
                status: Some(Status {
                    code: i32::try_from(random.below(3))?,
                    message: String::new(),
                }),
                ..Default::default()
            };
            let resource = Arc::clone(random.pick(&resources));
            let scope = Arc::clone(random.pick(&scopes));
            let batch = random.index(batches.len());
            batches[batch].push(Span::new(resource, scope, otlp).context("invalid span")?);
        }
    }
    Ok(batches)
}

/// One query per kind of condition, alone and combined.
fn fixed_queries(base: u64) -> Vec<TraceQuery> {
    let all = |n| TraceQuery::all(depth(n));
    let service = |name: &str, n| in_service(all(n), name);
    let mut queries = vec![
        all(10),
        all(100),
        service("frontend", 100),
        service("db", 3),
        service("nope", 10),
    ];
    let mut operation = service("cart", 100);
    operation.operation_name = Some("POST /pay".into());
    queries.push(operation.clone());
    let mut operation_only = all(100);
    operation_only.operation_name = Some("render".into());
    queries.push(operation_only);
    for (key, value) in [
        ("http.status_code", "500"),
        ("region", "eu"),
        ("resource.host", "h1"),
        ("host", "h0"),
        ("scope.rank", "7"),
        ("event.kind", "retry"),
        ("link.kind", "0.5"),
        ("error", "true"),
        ("error", "false"),
        ("span.kind", "server"),
        ("span.status", "error"),
        ("scope.name", "lib-a"),
        ("resource.service.name", "cache"),
        ("service.name", "db"),
    ] {
        queries.push(with_attribute(all(100), key, value));
        queries.push(with_attribute(service("frontend", 5), key, value));
    }
    queries.push(with_attribute(
        with_attribute(all(100), "http.status_code", "404"),
        "region",
        "us",
    ));
    let mut durations = service("cache", 100);
    durations.duration_min = Some(MS);
    queries.push(durations.clone());
    durations.duration_max = Some(3 * MS);
    queries.push(durations);
    let mut shortest = all(100);
    shortest.duration_max = Some(0);
    queries.push(shortest);
    let mut windowed = service("cart", 100);
    windowed.start_time_min = Some(UnixNanos(base + 600 * SECOND));
    windowed.start_time_max = Some(UnixNanos(base + 1_200 * SECOND));
    queries.push(windowed.clone());
    queries.push(with_attribute(windowed, "http.status_code", "200"));
    let mut everything = operation;
    everything.duration_min = Some(MS);
    everything.start_time_min = Some(UnixNanos(base + 300 * SECOND));
    queries.push(with_attribute(everything, "region", "eu"));
    queries
}

/// 300 pseudo-random queries (the first one lists everything).
fn random_queries(base: u64) -> Vec<TraceQuery> {
    let mut random = Lcg(7);
    let attributes: [(&str, &str); 14] = [
        ("http.status_code", "500"),
        ("http.status_code", "404"),
        ("q.label", "teal"),
        ("ratio", "72.5"),
        ("peer", "x"),
        ("host", "h1"),
        ("pid", "200"),
        ("resource.host", "h0"),
        ("scope.attr", "true"),
        ("scope.name", "lib-b"),
        ("error", "true"),
        ("error", "false"),
        ("span.kind", "server"),
        ("span.status", "ok"),
    ];
    let mut all = vec![TraceQuery::all(depth(1000))];
    for _ in 1..300 {
        let mut query = TraceQuery::all(depth(*random.pick(&[1usize, 2, 5, 20, 100])));
        if random.below(2) == 0 {
            query.service_name = Some((*random.pick(&SERVICES)).into());
        }
        if random.below(3) == 0 {
            query.operation_name = Some((*random.pick(&OPERATIONS)).into());
        }
        for _ in 0..random.below(3) {
            let (key, value) = *random.pick(&attributes);
            query = with_attribute(query, key, value);
        }
        if random.below(2) == 0 {
            let min = base + random.below(3_600) * SECOND;
            query.start_time_min = Some(UnixNanos(min));
            query.start_time_max = Some(UnixNanos(min + random.below(2_000) * SECOND));
        }
        if random.below(3) == 0 {
            let min = random.below(3) * MS;
            query.duration_min = Some(min);
            query.duration_max = Some(min + random.below(3) * MS);
        }
        all.push(query);
    }
    all
}

type Flattened = Vec<(Resource, Scope, OtlpSpan)>;

/// Each span with its resource and scope (grouping is not compared), in storage order or, with
/// [`SpanOrder::Any`], sorted.
fn flattened(trace: &Trace, order: SpanOrder) -> Flattened {
    let mut spans: Flattened = trace
        .spans
        .iter()
        .map(|span| {
            (
                (**span.resource()).clone(),
                (**span.scope()).clone(),
                span.otlp().clone(),
            )
        })
        .collect();
    if order == SpanOrder::Any {
        spans.sort_by_cached_key(|span| format!("{span:?}"));
    }
    spans
}

fn same_traces(
    actual: &[Trace],
    expected: &[Trace],
    order: SpanOrder,
    what: &str,
) -> anyhow::Result<()> {
    ensure_eq!(actual.len(), expected.len(), "{what}: traces");
    for (actual, expected) in actual.iter().zip(expected) {
        ensure_eq!(actual.trace_id, expected.trace_id, "{what}: trace order");
        ensure_eq!(
            flattened(actual, order),
            flattened(expected, order),
            "{what}: trace {:?}",
            expected.trace_id
        );
    }
    Ok(())
}

/// One query's answers: IDs and hints always; with `full`, whole traces and summaries too.
async fn compare_query(
    backend: &Backend,
    reference: &Backend,
    tenant: &Tenant,
    query: &TraceQuery,
    order: SpanOrder,
    full: bool,
) -> anyhow::Result<bool> {
    let expected = reference
        .traces
        .find_trace_ids(tenant, query.clone())
        .await
        .context("reference find_trace_ids")?;
    let actual = backend
        .traces
        .find_trace_ids(tenant, query.clone())
        .await
        .context("find_trace_ids failed")?;
    ensure_eq!(actual, expected, "find_trace_ids");
    if full {
        let expected_traces = find(reference, tenant, query.clone()).await?;
        let actual_traces = find(backend, tenant, query.clone()).await?;
        same_traces(&actual_traces, &expected_traces, order, "find_traces")?;
        // With SpanOrder::Any, "first stored" tie-breaks follow the backend's own order.
        let basis = match order {
            SpanOrder::AsWritten => &expected_traces,
            SpanOrder::Any => &actual_traces,
        };
        let expected_summaries: Vec<TraceSummary> =
            basis.iter().map(TraceSummary::from_trace).collect();
        let actual_summaries = summaries(backend, tenant, query.clone()).await?;
        ensure_eq!(actual_summaries, expected_summaries, "find_trace_summaries");
    }
    Ok(!expected.is_empty())
}

/// Writes the generated dataset to `backend` and to an empty `reference`, then compares every
/// answer; with [`SpanOrder::Any`] the spans of a trace are compared as a multiset. Public so
/// that a backend can run it on other configurations (e.g. PostgreSQL with tiny search pages).
pub async fn compare_with_reference(
    backend: &Backend,
    reference: &Backend,
    order: SpanOrder,
) -> anyhow::Result<()> {
    let tenant = Tenant::new("equivalence");
    let base = recent_base();
    for batch in generate(base)? {
        write(backend, &tenant, batch.clone()).await?;
        write(reference, &tenant, batch)
            .await
            .context("reference")?;
    }

    let mut non_empty = 0;
    for (index, query) in fixed_queries(base).iter().enumerate() {
        let found = compare_query(backend, reference, &tenant, query, order, true)
            .await
            .with_context(|| format!("fixed query #{index}: {query:?}"))?;
        non_empty += usize::from(found);
    }
    anyhow::ensure!(
        non_empty > 20,
        "the fixed queries should mostly find something, {non_empty} did"
    );
    let mut non_empty = 0;
    for (index, query) in random_queries(base).iter().enumerate() {
        let found = compare_query(backend, reference, &tenant, query, order, index % 10 == 0)
            .await
            .with_context(|| format!("random query #{index}: {query:?}"))?;
        non_empty += usize::from(found);
    }
    anyhow::ensure!(
        non_empty > 100,
        "the random queries must exercise matches, {non_empty} did"
    );

    let every_trace = || (1..=TRACES).map(|trace| TraceId([trace; 16]));
    let expected = get_ids(reference, &tenant, every_trace()).await?;
    let actual = get_ids(backend, &tenant, every_trace()).await?;
    same_traces(&actual, &expected, order, "get_traces of every trace")?;

    for (start, end) in [
        (0, u64::MAX / 2),
        (base, base + 1_800 * SECOND),
        (base + 600 * SECOND, base + 601 * SECOND),
    ] {
        let window = DependencyQuery {
            start: UnixNanos(start),
            end: UnixNanos(end),
        };
        let expected = match order {
            SpanOrder::AsWritten => reference
                .dependencies
                .get_dependencies(&tenant, window)
                .await
                .context("reference get_dependencies")?,
            // With duplicated span IDs the first stored parent wins: count over the backend's
            // own traces, with the shared rules.
            SpanOrder::Any => {
                let mut counter = DependencyCounter::default();
                for trace in &actual {
                    counter.add_trace(trace, &window);
                }
                counter.finish()
            }
        };
        let actual = backend
            .dependencies
            .get_dependencies(&tenant, window)
            .await
            .context("get_dependencies failed")?;
        ensure_eq!(actual, expected, "dependencies {start}..{end}");
    }

    let expected_services = services(reference, &tenant).await?;
    ensure_eq!(
        services(backend, &tenant).await?,
        expected_services,
        "services"
    );
    for service in SERVICES {
        let expected = operations(reference, &tenant, service, None).await?;
        let actual = operations(backend, &tenant, service, None).await?;
        ensure_eq!(actual, expected, "operations of {service}");
    }
    Ok(())
}

/// [`compare_with_reference`] against the reference of [`crate::SuiteOptions::reference`].
pub async fn equivalent_to_reference(
    backend: &Backend,
    context: &CheckContext,
) -> anyhow::Result<()> {
    let reference = context
        .reference
        .as_ref()
        .context("no reference backend configured")?;
    compare_with_reference(backend, reference, context.span_order()).await
}
