//! The PostgreSQL backend against the memory backend (the reference semantics) on the same
//! pseudo-random data: every search, summary, dependency and index answer must be identical.

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::TryStreamExt as _;
use remote_storage_core::proto::otlp::common::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status, span};
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::{
    Backend, DependencyQuery, OperationQuery, Resource, Scope, Span, Tenant, Trace, TraceLookup,
    TraceQuery, TraceSummary, UnixNanos,
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

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

const SERVICES: [&str; 4] = ["frontend", "cart", "payment", "db"];
const OPERATIONS: [&str; 4] = ["GET /", "POST /pay", "query", "render"];
const MS: u64 = 1_000_000;

fn generate(base: u64) -> Vec<Vec<Span>> {
    let mut random = Lcg(42);
    let resources: Vec<Arc<Resource>> = SERVICES
        .iter()
        .enumerate()
        .map(|(index, service)| {
            Arc::new(Resource::new(
                OtlpResource {
                    attributes: vec![
                        kv("service.name", Value::StringValue((*service).into())),
                        kv("host", Value::StringValue(format!("h{}", index % 2))),
                        kv("pid", Value::IntValue(i64::try_from(index).unwrap() * 100)),
                    ],
                    ..Default::default()
                },
                String::new(),
            ))
        })
        .collect();
    let scopes: Vec<Arc<Scope>> = [("lib-a", "1"), ("lib-b", "2")]
        .iter()
        .map(|(name, version)| {
            Arc::new(Scope::new(
                InstrumentationScope {
                    name: (*name).into(),
                    version: (*version).into(),
                    attributes: vec![kv("scope.attr", Value::BoolValue(*name == "lib-a"))],
                    ..Default::default()
                },
                String::new(),
            ))
        })
        .collect();
    let mut batches: Vec<Vec<Span>> = vec![Vec::new(); 4];
    for trace in 1..=60u8 {
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
                // Spans sharing a start time exercise the keyset paging's tie handling.
                Some(previous) if random.below(4) == 0 => previous,
                _ => base + random.below(3_600) * 1_000 * MS + random.below(3) * MS,
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
            let events = if random.below(3) == 0 {
                vec![span::Event {
                    name: "log".into(),
                    attributes: vec![kv("ratio", Value::DoubleValue(*random.pick(&[0.5, 72.5])))],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let links = if random.below(4) == 0 {
                vec![span::Link {
                    trace_id: vec![200; 16],
                    span_id: vec![200; 8],
                    attributes: vec![kv(
                        "peer",
                        Value::StringValue((*random.pick(&["x", "y"])).into()),
                    )],
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
                kind: i32::try_from(random.below(6)).unwrap(),
                start_time_unix_nano: start,
                end_time_unix_nano: start + duration,
                attributes,
                events,
                links,
                status: Some(Status {
                    code: i32::try_from(random.below(3)).unwrap(),
                    message: String::new(),
                }),
                ..Default::default()
            };
            let resource = Arc::clone(random.pick(&resources));
            let scope = Arc::clone(random.pick(&scopes));
            let batch = usize::try_from(random.below(4)).unwrap();
            batches[batch].push(Span::new(resource, scope, otlp).unwrap());
        }
    }
    batches
}

fn queries(base: u64) -> Vec<TraceQuery> {
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
    let mut all = Vec::new();
    for round in 0..300 {
        let depth = *random.pick(&[1usize, 2, 5, 20, 100]);
        let mut query = TraceQuery::all(NonZeroUsize::new(depth).unwrap());
        if random.below(2) == 0 {
            query.service_name = Some((*random.pick(&SERVICES)).into());
        }
        if random.below(3) == 0 {
            query.operation_name = Some((*random.pick(&OPERATIONS)).into());
        }
        for _ in 0..random.below(3) {
            let (key, value) = *random.pick(&attributes);
            query.attributes.push(AttributeFilter {
                key: key.into(),
                value: value.into(),
            });
        }
        if random.below(2) == 0 {
            let min = base + random.below(3_600) * 1_000 * MS;
            query.start_time_min = Some(UnixNanos(min));
            query.start_time_max = Some(UnixNanos(min + random.below(2_000) * 1_000 * MS));
        }
        if random.below(3) == 0 {
            query.duration_min = Some(random.below(3) * MS);
            query.duration_max = Some(query.duration_min.unwrap_or(0) + random.below(3) * MS);
        }
        if round == 0 {
            query = TraceQuery::all(NonZeroUsize::new(1000).unwrap());
        }
        all.push(query);
    }
    all
}

/// Each span with its resource and scope, in storage order (grouping is not compared).
fn flattened(trace: &Trace) -> Vec<(Resource, Scope, OtlpSpan)> {
    trace
        .spans
        .iter()
        .map(|span| {
            (
                (**span.resource()).clone(),
                (**span.scope()).clone(),
                span.otlp().clone(),
            )
        })
        .collect()
}

async fn traces(backend: &Backend, tenant: &Tenant, query: TraceQuery) -> Vec<Trace> {
    backend
        .traces
        .find_traces(tenant, query)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_the_memory_backend() {
    answers_equal_the_memory_backend_with(2_000).await;
}

/// A walk of 3 rows forces every search through many keyset pages and the selective phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_the_memory_backend_with_tiny_pages() {
    answers_equal_the_memory_backend_with(3).await;
}

async fn answers_equal_the_memory_backend_with(walk_rows: u32) {
    let Some(url) = common::database_url() else {
        return;
    };
    let mut config = common::test_config(&url, &common::unique_schema("equivalence"));
    config.search_walk_rows = std::num::NonZeroU32::new(walk_rows).unwrap();
    let test = common::TestStore::open_with(config).await;
    let postgres = &test.backend;
    let memory = backend_memory::open(backend_memory::MemoryConfig::default());
    let tenant = Tenant::new("equivalence");
    let base = UnixNanos::now().0 - 2 * 3_600 * 1_000 * MS;
    for batch in generate(base) {
        postgres
            .traces
            .write_spans(&tenant, batch.clone())
            .await
            .unwrap();
        memory.traces.write_spans(&tenant, batch).await.unwrap();
    }

    let mut non_empty = 0;
    for (index, query) in queries(base).into_iter().enumerate() {
        let expected = memory
            .traces
            .find_trace_ids(&tenant, query.clone())
            .await
            .unwrap();
        let actual = postgres
            .traces
            .find_trace_ids(&tenant, query.clone())
            .await
            .unwrap();
        assert_eq!(actual, expected, "query #{index}: {query:?}");
        if !expected.is_empty() {
            non_empty += 1;
        }
        if index % 10 == 0 {
            let expected_traces = traces(&memory, &tenant, query.clone()).await;
            let actual_traces = traces(postgres, &tenant, query.clone()).await;
            assert_eq!(actual_traces.len(), expected_traces.len());
            for (actual, expected) in actual_traces.iter().zip(&expected_traces) {
                assert_eq!(flattened(actual), flattened(expected), "query #{index}");
            }
            let summaries: Vec<TraceSummary> = postgres
                .traces
                .find_trace_summaries(&tenant, query)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let expected_summaries: Vec<TraceSummary> = expected_traces
                .iter()
                .map(TraceSummary::from_trace)
                .collect();
            assert_eq!(summaries, expected_summaries, "query #{index}");
        }
    }
    assert!(
        non_empty > 100,
        "the queries must exercise matches, got {non_empty}"
    );

    let lookups: Vec<TraceLookup> = (1..=60u8)
        .map(|trace| TraceLookup {
            trace_id: remote_storage_core::TraceId([trace; 16]),
            start: None,
            end: None,
        })
        .collect();
    let all_memory: Vec<Trace> = memory
        .traces
        .get_traces(&tenant, lookups.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let all_postgres: Vec<Trace> = postgres
        .traces
        .get_traces(&tenant, lookups)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all_postgres.len(), all_memory.len());
    for (actual, expected) in all_postgres.iter().zip(&all_memory) {
        assert_eq!(flattened(actual), flattened(expected));
    }

    for (start, end) in [
        (0, u64::MAX / 2),
        (base, base + 1_800_000 * MS),
        (base + 600_000 * MS, base + 601_000 * MS),
    ] {
        let window = DependencyQuery {
            start: UnixNanos(start),
            end: UnixNanos(end),
        };
        assert_eq!(
            postgres
                .dependencies
                .get_dependencies(&tenant, window)
                .await
                .unwrap(),
            memory
                .dependencies
                .get_dependencies(&tenant, window)
                .await
                .unwrap(),
            "dependencies {start}..{end}"
        );
    }

    let mut services = postgres.traces.get_services(&tenant).await.unwrap();
    services.sort();
    assert_eq!(services, memory.traces.get_services(&tenant).await.unwrap());
    for service in SERVICES {
        let query = OperationQuery {
            service: service.into(),
            span_kind: None,
        };
        let mut actual = postgres
            .traces
            .get_operations(&tenant, query.clone())
            .await
            .unwrap();
        let mut expected = memory.traces.get_operations(&tenant, query).await.unwrap();
        actual.sort();
        expected.sort();
        assert_eq!(actual, expected, "{service}");
    }
    test.finish().await;
}
