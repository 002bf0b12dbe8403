//! Scale check (ignored by default): writes `PG_SCALE_SPANS` spans (default 1,000,000) and
//! times the main query shapes, printing `EXPLAIN ANALYZE` of the SQL each shape runs.
//!
//! ```text
//! eval "$(scripts/postgres-test-env.sh)"
//! cargo test -p backend-postgres --test scale -- --ignored --nocapture
//! ```

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt as _;
use remote_storage_core::proto::otlp::common::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status, span};
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::{
    DependencyQuery, Resource, Scope, Span, Tenant, TraceId, TraceLookup, TraceQuery, UnixNanos,
};

const SPANS_PER_TRACE: u64 = 10;
const MS: u64 = 1_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn scale_trace_id(trace: u64) -> [u8; 16] {
    let key = trace + 1;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&key.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    trace_id[8..].copy_from_slice(&key.to_be_bytes());
    trace_id
}

fn trace_spans(
    trace: u64,
    base: u64,
    resources: &[Arc<Resource>],
    scope: &Arc<Scope>,
) -> Vec<Span> {
    let trace_id = scale_trace_id(trace);
    let start = base + (trace * 7_919) % (6 * 3_600_000) * MS;
    (0..SPANS_PER_TRACE)
        .map(|index| {
            let service = usize::try_from((trace + index) % 20).unwrap();
            let code = if (trace * 7 + index).is_multiple_of(20) {
                500
            } else {
                200
            };
            let otlp = OtlpSpan {
                trace_id: trace_id.to_vec(),
                span_id: (index + 1).to_be_bytes().to_vec(),
                parent_span_id: if index == 0 {
                    Vec::new()
                } else {
                    index.to_be_bytes().to_vec()
                },
                name: format!("op-{}", (trace + index) % 50),
                kind: i32::try_from(index % 3 + 1).unwrap(),
                start_time_unix_nano: start + index * MS,
                end_time_unix_nano: start + index * MS + ((trace * 31 + index) % 1_000) * MS,
                attributes: vec![
                    kv("http.status_code", Value::IntValue(code)),
                    kv("http.method", Value::StringValue("GET".into())),
                    kv(
                        "http.url",
                        Value::StringValue(format!("https://shop/item/{}", trace % 10_000)),
                    ),
                    kv(
                        "user.id",
                        Value::StringValue(format!("user-{}", trace % 50_000)),
                    ),
                    kv(
                        "db.rows",
                        Value::IntValue(i64::try_from(index * 3).unwrap()),
                    ),
                    kv("cache.hit", Value::BoolValue(index % 2 == 0)),
                    kv("net.peer", Value::StringValue(format!("10.0.0.{index}"))),
                    kv("retry", Value::IntValue(0)),
                ],
                events: if index == 0 {
                    vec![span::Event {
                        name: "log".into(),
                        time_unix_nano: start,
                        attributes: vec![kv("message", Value::StringValue("started".into()))],
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status {
                    code: if code == 500 { 2 } else { 0 },
                    message: String::new(),
                }),
                ..Default::default()
            };
            Span::new(Arc::clone(&resources[service]), Arc::clone(scope), otlp).unwrap()
        })
        .collect()
}

async fn explain(test: &common::TestStore, label: &str, sql: &str) {
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) {sql}"
    )))
    .fetch_all(test.store.pool())
    .await
    .unwrap();
    println!("--- plan: {label}\n{}", plan.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale check: minutes of work; run explicitly"]
async fn one_million_spans() {
    let Some(url) = common::database_url() else {
        return;
    };
    let total: u64 = std::env::var("PG_SCALE_SPANS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let schema =
        std::env::var("PG_SCALE_SCHEMA").unwrap_or_else(|_| common::unique_schema("scale"));
    let test = common::TestStore::open_with(common::test_config(&url, &schema)).await;
    let tenant = Tenant::default();
    let base = UnixNanos::now().0 - 7 * 3_600_000 * MS;
    let resources: Vec<Arc<Resource>> = (0..20)
        .map(|index| {
            Arc::new(Resource::new(
                OtlpResource {
                    attributes: vec![
                        kv(
                            "service.name",
                            Value::StringValue(format!("service-{index}")),
                        ),
                        kv(
                            "host.name",
                            Value::StringValue(format!("host-{}", index % 5)),
                        ),
                        kv("process.pid", Value::IntValue(1000 + index)),
                        kv("telemetry.sdk.language", Value::StringValue("rust".into())),
                    ],
                    ..Default::default()
                },
                String::new(),
            ))
        })
        .collect();
    let scope = Arc::new(Scope::new(
        InstrumentationScope {
            name: "bench".into(),
            version: "1.0".into(),
            ..Default::default()
        },
        String::new(),
    ));

    let traces = total / SPANS_PER_TRACE;
    let traces_per_batch = 100; // 1,000 spans per Export
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..2u64 {
        let backend = test.backend.clone();
        let tenant = tenant.clone();
        let resources = resources.clone();
        let scope = Arc::clone(&scope);
        writers.push(tokio::spawn(async move {
            let mut batch_start = writer * traces_per_batch;
            while batch_start < traces {
                let spans: Vec<Span> = (batch_start..(batch_start + traces_per_batch).min(traces))
                    .flat_map(|trace| trace_spans(trace, base, &resources, &scope))
                    .collect();
                backend.traces.write_spans(&tenant, spans).await.unwrap();
                batch_start += 2 * traces_per_batch;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "write: {total} spans in {elapsed:.1?} = {:.0} spans/s (2 writers, 1,000 spans per batch)",
        total as f64 / elapsed.as_secs_f64()
    );
    sqlx::query("ANALYZE")
        .execute(test.store.pool())
        .await
        .unwrap();
    let sizes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'i') ORDER BY 2 DESC LIMIT 12",
    )
    .bind(&schema)
    .fetch_all(test.store.pool())
    .await
    .unwrap();
    println!("largest relations: {sizes:?}");

    let depth = NonZeroUsize::new(20).unwrap();
    let window_min = UnixNanos(base + 3 * 3_600_000 * MS);
    let window_max = UnixNanos(base + 4 * 3_600_000 * MS);
    let attribute = |key: &str, value: &str| AttributeFilter {
        key: key.into(),
        value: value.into(),
    };
    let mut shapes: Vec<(&str, TraceQuery)> = Vec::new();
    let mut query = TraceQuery::all(depth);
    query.service_name = Some("service-3".into());
    shapes.push(("service, no window", query.clone()));
    query.start_time_min = Some(window_min);
    query.start_time_max = Some(window_max);
    shapes.push(("service + 1h window", query.clone()));
    query.operation_name = Some("op-13".into());
    shapes.push(("service + operation + 1h window", query.clone()));
    let mut tagged = TraceQuery::all(depth);
    tagged.service_name = Some("service-3".into());
    tagged.attributes.push(attribute("http.status_code", "500"));
    shapes.push(("service + tag (5% of spans)", tagged.clone()));
    let mut rare = TraceQuery::all(depth);
    rare.attributes.push(attribute("user.id", "user-4242"));
    shapes.push(("no service + rare tag", rare));
    let mut resource_tag = TraceQuery::all(depth);
    resource_tag
        .attributes
        .push(attribute("host.name", "host-2"));
    resource_tag.attributes.push(attribute("error", "true"));
    shapes.push(("resource tag + error", resource_tag));
    let mut slow = TraceQuery::all(depth);
    slow.service_name = Some("service-7".into());
    slow.duration_min = Some(990 * MS);
    shapes.push(("service + min duration (1%)", slow));
    let mut nothing = TraceQuery::all(depth);
    nothing.service_name = Some("service-3".into());
    nothing.attributes.push(attribute("user.id", "nobody"));
    shapes.push(("service + tag matching nothing", nothing));

    for (label, query) in &shapes {
        let started = Instant::now();
        let found = test
            .backend
            .traces
            .find_trace_ids(&tenant, query.clone())
            .await
            .unwrap();
        let ids_elapsed = started.elapsed();
        let started = Instant::now();
        let traces: Vec<_> = test
            .backend
            .traces
            .find_traces(&tenant, query.clone())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let traces_elapsed = started.elapsed();
        let started = Instant::now();
        let summaries: Vec<_> = test
            .backend
            .traces
            .find_trace_summaries(&tenant, query.clone())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        println!(
            "{label}: {} ids in {ids_elapsed:.1?}; FindTraces {} traces in {traces_elapsed:.1?}; summaries {} in {:.1?}",
            found.len(),
            traces.len(),
            summaries.len(),
            started.elapsed()
        );
    }
    let lookups: Vec<TraceLookup> = (0..100u64)
        .map(|trace| TraceLookup {
            trace_id: TraceId(scale_trace_id(trace * 997)),
            start: None,
            end: None,
        })
        .collect();
    let started = Instant::now();
    let fetched: Vec<_> = test
        .backend
        .traces
        .get_traces(&tenant, lookups)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    println!(
        "GetTraces: {} traces without hints in {:.1?}",
        fetched.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let links = test
        .backend
        .dependencies
        .get_dependencies(
            &tenant,
            DependencyQuery {
                start: window_min,
                end: window_max,
            },
        )
        .await
        .unwrap();
    println!(
        "GetDependencies (1h, ~{} spans): {} links in {:.1?}",
        total / 7,
        links.len(),
        started.elapsed()
    );

    // The search's candidate walk (see src/search.rs): an index-only scan in time order,
    // testing the Bloom filter in the index entries (an arbitrary probe here).
    let (min, max) = (window_min.0, window_max.0);
    explain(
        &test,
        "service + 1h window (first page)",
        &format!(
            "SELECT trace_id, max_start FROM chunks WHERE tenant = '' AND service = 'service-3' \
         AND max_start >= {min} AND min_start <= {max} AND max_start < {max} + 60000000000 \
         ORDER BY max_start DESC, trace_id DESC, chunk_hash DESC LIMIT 40"
        ),
    )
    .await;
    explain(
        &test,
        "no service + Bloom probe",
        "SELECT trace_id, max_start FROM chunks WHERE tenant = '' \
         AND get_bit(bloom, (123456789::bigint % (octet_length(bloom) * 8))::int) = 1 \
         ORDER BY max_start DESC, trace_id DESC, chunk_hash DESC LIMIT 80",
    )
    .await;
    explain(
        &test,
        "trace by id",
        "SELECT batch_seq, payload FROM chunks \
         WHERE tenant = '' AND trace_id = (SELECT trace_id FROM chunks LIMIT 1)",
    )
    .await;
    if std::env::var("PG_SCALE_SCHEMA").is_err() {
        test.finish().await;
    }
}
