//! Behaviour of the LSM backend through the store traits, on temporary directories.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use backend_lsm::{LsmConfig, LsmStore};
use futures::TryStreamExt as _;
use remote_storage_core::model::{Resource, Scope};
use remote_storage_core::proto::otlp::common::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status, span, status};
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::testing::span;
use remote_storage_core::{
    Backend, DependencyLink, DependencyQuery, OperationQuery, Span, Tenant, Trace, TraceId,
    TraceLookup, TraceQuery, TraceSummary, UnixNanos,
};

fn config() -> LsmConfig {
    LsmConfig {
        // Test spans start near the epoch: keep them forever.
        retention: Duration::ZERO,
        ..LsmConfig::ephemeral()
    }
}

fn backend() -> Backend {
    backend_lsm::open(config()).unwrap()
}

fn depth(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

async fn find(backend: &Backend, tenant: &Tenant, query: TraceQuery) -> Vec<Trace> {
    backend
        .traces
        .find_traces(tenant, query)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn get_id(backend: &Backend, tenant: &Tenant, trace_id: TraceId) -> Vec<Trace> {
    let lookups = vec![TraceLookup {
        trace_id,
        start: None,
        end: None,
    }];
    backend
        .traces
        .get_traces(tenant, lookups)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn get(backend: &Backend, tenant: &Tenant, trace: u8) -> Vec<Trace> {
    get_id(backend, tenant, TraceId([trace; 16])).await
}

fn ids(traces: &[Trace]) -> Vec<u8> {
    traces.iter().map(|trace| trace.trace_id.0[0]).collect()
}

fn with_attribute(mut query: TraceQuery, key: &str, value: &str) -> TraceQuery {
    query.attributes.push(AttributeFilter {
        key: key.into(),
        value: value.into(),
    });
    query
}

fn pair(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

#[tokio::test]
async fn spans_append_across_writes_duplicates_are_kept_and_rewrites_are_idempotent() {
    let store = backend();
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(&tenant, vec![span(1, 1, None, "a", "root", 10, 20, false)])
        .await
        .unwrap();
    let second_batch = vec![
        span(1, 2, Some(1), "b", "child", 11, 12, false),
        // Same span ID, other content: a distinct span.
        span(1, 2, Some(1), "b", "child", 11, 13, false),
        // Identical copy inside one batch: kept too.
        span(1, 2, Some(1), "b", "child", 11, 12, false),
    ];
    store
        .traces
        .write_spans(&tenant, second_batch.clone())
        .await
        .unwrap();
    let traces = get(&store, &tenant, 1).await;
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans.len(), 4);

    // A re-sent Export (same spans, same grouping) does not add spans.
    store
        .traces
        .write_spans(&tenant, second_batch)
        .await
        .unwrap();
    assert_eq!(get(&store, &tenant, 1).await[0].spans.len(), 4);
    assert!(
        get(&store, &tenant, 9).await.is_empty(),
        "unknown IDs are skipped"
    );

    let found = find(&store, &tenant, TraceQuery::all(depth(10))).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].spans.len(), 4);
    let stats = store.lifecycle.stats().unwrap();
    assert!(stats.spans >= 4, "approximate counts: {stats:?}");
    assert!(stats.traces >= 1);
}

#[tokio::test]
async fn get_traces_keeps_request_order_and_skips_unknown_ids() {
    let store = backend();
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "a", "x", 10, 20, false),
                span(2, 1, None, "a", "x", 10, 20, false),
            ],
        )
        .await
        .unwrap();
    let lookups = [2u8, 7, 1]
        .iter()
        .map(|id| TraceLookup {
            trace_id: TraceId([*id; 16]),
            start: None,
            end: None,
        })
        .collect();
    let traces: Vec<Trace> = store
        .traces
        .get_traces(&tenant, lookups)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(&traces), [2, 1]);
}

#[tokio::test]
async fn find_returns_newest_matching_traces_first_up_to_depth() {
    let store = backend();
    let tenant = Tenant::default();
    let mut spans = Vec::new();
    for trace in 1..=5u8 {
        spans.push(span(
            trace,
            1,
            None,
            "svc",
            "wanted",
            u64::from(trace) * 100,
            u64::from(trace) * 100 + 5,
            false,
        ));
    }
    // Trace 1 has a late span that does not match the operation filter.
    spans.push(span(1, 2, Some(1), "svc", "other", 10_000, 10_001, false));
    spans.push(span(6, 1, None, "elsewhere", "wanted", 900, 905, false));
    store.traces.write_spans(&tenant, spans).await.unwrap();

    let mut query = TraceQuery::all(depth(3));
    query.service_name = Some("svc".into());
    query.operation_name = Some("wanted".into());
    assert_eq!(ids(&find(&store, &tenant, query.clone()).await), [5, 4, 3]);

    query.search_depth = depth(10);
    query.start_time_min = Some(UnixNanos(200));
    query.start_time_max = Some(UnixNanos(400));
    let windowed = find(&store, &tenant, query).await;
    assert_eq!(ids(&windowed), [4, 3, 2], "inclusive window bounds");

    let mut any_service = TraceQuery::all(depth(10));
    any_service.operation_name = Some("wanted".into());
    let everywhere = find(&store, &tenant, any_service).await;
    assert_eq!(ids(&everywhere), [6, 5, 4, 3, 2, 1]);
    let whole = everywhere
        .iter()
        .find(|trace| trace.trace_id.0[0] == 1)
        .unwrap();
    assert_eq!(
        whole.spans.len(),
        2,
        "whole trace, not only the matching span"
    );

    let mut durations = TraceQuery::all(depth(10));
    durations.service_name = Some("svc".into());
    durations.duration_min = Some(5);
    durations.duration_max = Some(5);
    assert_eq!(
        ids(&find(&store, &tenant, durations.clone()).await),
        [5, 4, 3, 2, 1],
        "inclusive duration bounds through the duration index"
    );
    durations.duration_min = Some(1);
    durations.duration_max = Some(1);
    assert_eq!(ids(&find(&store, &tenant, durations).await), [1]);

    let found_ids = store
        .traces
        .find_trace_ids(&tenant, TraceQuery::all(depth(2)))
        .await
        .unwrap();
    assert_eq!(found_ids.len(), 2);
    assert_eq!(found_ids[0].trace_id, TraceId([1; 16]));
    assert_eq!(found_ids[0].start, Some(UnixNanos(100)));
    assert_eq!(found_ids[0].end, Some(UnixNanos(10_001)));
}

#[tokio::test]
async fn attribute_conditions_hold_on_one_span() {
    let store = backend();
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "svc", "a", 10, 20, true),
                span(1, 2, Some(1), "svc", "b", 10, 20, false),
            ],
        )
        .await
        .unwrap();
    let mut query = with_attribute(TraceQuery::all(depth(10)), "error", "true");
    query.operation_name = Some("b".into());
    assert!(find(&store, &tenant, query.clone()).await.is_empty());
    query.operation_name = Some("a".into());
    assert_eq!(find(&store, &tenant, query).await.len(), 1);
    let not_bool = with_attribute(TraceQuery::all(depth(10)), "error", "maybe");
    assert!(find(&store, &tenant, not_bool).await.is_empty());
    let no_error = with_attribute(TraceQuery::all(depth(10)), "error", "false");
    assert_eq!(find(&store, &tenant, no_error).await.len(), 1);
}

/// One span whose attributes sit on every level, with typed values.
fn leveled_span(trace: u8, service: &str) -> Span {
    let resource = Arc::new(Resource::new(
        OtlpResource {
            attributes: vec![
                pair("service.name", Value::StringValue(service.into())),
                pair("host.port", Value::IntValue(8080)),
            ],
            ..Default::default()
        },
        String::new(),
    ));
    let scope = Arc::new(Scope::new(
        InstrumentationScope {
            name: "lib".into(),
            version: "2.0".into(),
            attributes: vec![pair("scope.flag", Value::BoolValue(true))],
            ..Default::default()
        },
        String::new(),
    ));
    let otlp = OtlpSpan {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: "op".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        attributes: vec![
            pair("http.status_code", Value::IntValue(500)),
            pair("cross", Value::StringValue("yes".into())),
        ],
        events: vec![span::Event {
            name: "retry".into(),
            attributes: vec![pair("ratio", Value::DoubleValue(72.5))],
            ..Default::default()
        }],
        links: vec![span::Link {
            trace_id: vec![9; 16],
            span_id: vec![9; 8],
            attributes: vec![pair(
                "link.bytes",
                Value::BytesValue(vec![0, 0, 0x30, 0x39]),
            )],
            ..Default::default()
        }],
        ..Default::default()
    };
    Span::new(resource, scope, otlp).unwrap()
}

#[tokio::test]
async fn typed_values_match_their_text_on_every_level_and_without_a_service() {
    let store = backend();
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![leveled_span(1, "cross-a"), leveled_span(2, "cross-b")],
        )
        .await
        .unwrap();
    let all = || TraceQuery::all(depth(10));
    for (key, value) in [
        ("http.status_code", "500"),
        ("ratio", "72.5"),
        ("scope.flag", "true"),
        ("host.port", "8080"),
        ("resource.host.port", "8080"),
        ("link.bytes", "AAAwOQ=="),
        ("cross", "yes"),
        ("span.kind", "server"),
        ("scope.name", "lib"),
        ("scope.version", "2.0"),
        ("service.name", "cross-a"),
        ("resource.service.name", "cross-b"),
    ] {
        let found = find(&store, &tenant, with_attribute(all(), key, value)).await;
        let expected = match value {
            "cross-a" => 1,
            "cross-b" => 1,
            _ => 2,
        };
        assert_eq!(found.len(), expected, "{key}={value}");
    }
    for (key, value) in [
        ("http.status_code", "501"),
        ("resource.http.status_code", "500"),
        ("ratio", "72.50"),
        ("absent", "x"),
        ("span.kind", "client"),
    ] {
        let found = find(&store, &tenant, with_attribute(all(), key, value)).await;
        assert!(found.is_empty(), "{key}={value} must not match");
    }
    // Two conditions found on different levels of the same span.
    let both = with_attribute(with_attribute(all(), "ratio", "72.5"), "host.port", "8080");
    assert_eq!(find(&store, &tenant, both).await.len(), 2);
    // A typed condition together with a service.
    let mut scoped = with_attribute(all(), "cross", "yes");
    scoped.service_name = Some("cross-b".into());
    assert_eq!(ids(&find(&store, &tenant, scoped).await), [2]);
}

#[tokio::test]
async fn services_and_operations_come_from_their_own_records() {
    let store = backend();
    let tenant = Tenant::default();
    let mut client = span(1, 2, Some(1), "svc", "call", 10, 20, false);
    let mut otlp = client.otlp().clone();
    otlp.kind = span::SpanKind::Client as i32;
    client = Span::new(
        Arc::clone(client.resource()),
        Arc::clone(client.scope()),
        otlp,
    )
    .unwrap();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "svc", "root", 10, 20, false),
                client.clone(),
                client,
                span(2, 1, None, "other", "root", 10, 20, false),
            ],
        )
        .await
        .unwrap();
    let mut services = store.traces.get_services(&tenant).await.unwrap();
    services.sort();
    assert_eq!(services, ["other", "svc"]);
    let all = store
        .traces
        .get_operations(
            &tenant,
            OperationQuery {
                service: "svc".into(),
                span_kind: None,
            },
        )
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = all
        .iter()
        .map(|operation| (operation.name.as_str(), operation.span_kind.as_str()))
        .collect();
    assert_eq!(pairs, [("call", "client"), ("root", "")]);
    let clients = store
        .traces
        .get_operations(
            &tenant,
            OperationQuery {
                service: "svc".into(),
                span_kind: Some(span::SpanKind::Client),
            },
        )
        .await
        .unwrap();
    assert_eq!(clients.len(), 1);
    let unknown = store
        .traces
        .get_operations(
            &tenant,
            OperationQuery {
                service: "nope".into(),
                span_kind: None,
            },
        )
        .await
        .unwrap();
    assert!(unknown.is_empty());
}

#[tokio::test]
async fn tenants_are_isolated_and_purge_wipes_all() {
    let store = backend();
    let red = Tenant::new("red");
    let blue = Tenant::new("blue");
    store
        .traces
        .write_spans(&red, vec![span(1, 1, None, "red-svc", "op", 10, 20, false)])
        .await
        .unwrap();
    store
        .traces
        .write_spans(
            &blue,
            vec![span(2, 1, None, "blue-svc", "op", 10, 20, false)],
        )
        .await
        .unwrap();
    assert_eq!(store.traces.get_services(&red).await.unwrap(), ["red-svc"]);
    assert!(get(&store, &blue, 1).await.is_empty());
    assert_eq!(
        ids(&find(&store, &blue, TraceQuery::all(depth(10))).await),
        [2]
    );
    let mut by_service = TraceQuery::all(depth(10));
    by_service.service_name = Some("red-svc".into());
    assert!(find(&store, &blue, by_service).await.is_empty());

    store.purger.purge().await.unwrap();
    assert!(store.traces.get_services(&red).await.unwrap().is_empty());
    assert!(get(&store, &blue, 2).await.is_empty());
    assert!(
        find(&store, &red, TraceQuery::all(depth(10)))
            .await
            .is_empty()
    );
    assert_eq!(store.lifecycle.stats().unwrap().spans, 0);

    // The store keeps working after a purge.
    store
        .traces
        .write_spans(&red, vec![span(3, 1, None, "again", "op", 10, 20, false)])
        .await
        .unwrap();
    assert_eq!(store.traces.get_services(&red).await.unwrap(), ["again"]);
}

#[tokio::test]
async fn dependencies_come_from_parent_child_spans_in_the_window() {
    let store = backend();
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "hello", "root", 100, 200, false),
                span(1, 2, Some(1), "world", "call", 110, 120, false),
                span(1, 3, Some(2), "hello", "back", 111, 112, false),
                span(1, 4, Some(2), "hello", "back", 113, 114, false),
                span(2, 1, None, "hello", "root", 5_000, 5_100, false),
                span(2, 2, Some(1), "world", "call", 5_010, 5_020, false),
            ],
        )
        .await
        .unwrap();
    // The third call arrives in a later write.
    store
        .traces
        .write_spans(
            &tenant,
            vec![span(1, 5, Some(2), "hello", "back", 115, 116, false)],
        )
        .await
        .unwrap();
    let links = store
        .dependencies
        .get_dependencies(
            &tenant,
            DependencyQuery {
                start: UnixNanos(0),
                end: UnixNanos(1_000),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        links,
        vec![
            DependencyLink {
                parent: "hello".into(),
                child: "world".into(),
                call_count: 1
            },
            DependencyLink {
                parent: "world".into(),
                child: "hello".into(),
                call_count: 3
            },
        ]
    );
}

#[tokio::test]
async fn summaries_equal_the_shared_rules_over_the_stored_trace() {
    let store = backend();
    let tenant = Tenant::default();
    let first = vec![
        span(1, 1, None, "svc-b", "late-root", 200, 300, false),
        span(1, 2, None, "svc-a", "root", 100, 400, false),
        span(1, 3, Some(2), "svc-b", "child", 150, 250, true),
    ];
    let second = vec![
        span(1, 4, Some(9), "svc-a", "orphan", 120, 130, false),
        span(1, 5, Some(4), "svc-c", "grandchild", 121, 122, true),
        // Identical to a span of the first write: a re-send, stored once.
        span(1, 3, Some(2), "svc-b", "child", 150, 250, true),
        // Same ID and start as the root: a tie the stored order decides.
        span(1, 6, None, "svc-c", "tied-root", 100, 101, false),
    ];
    store.traces.write_spans(&tenant, first).await.unwrap();
    store
        .traces
        .write_spans(&tenant, second.clone())
        .await
        .unwrap();
    // A re-sent batch must not change counts.
    store.traces.write_spans(&tenant, second).await.unwrap();
    store
        .traces
        .write_spans(&tenant, vec![span(2, 1, None, "x", "solo", 10, 20, false)])
        .await
        .unwrap();

    let query = TraceQuery::all(depth(10));
    let summaries: Vec<TraceSummary> = store
        .traces
        .find_trace_summaries(&tenant, query.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let traces = find(&store, &tenant, query).await;
    assert_eq!(summaries.len(), 2);
    for (summary, trace) in summaries.iter().zip(&traces) {
        assert_eq!(*summary, TraceSummary::from_trace(trace));
    }
    let first_summary = &summaries[0];
    assert_eq!(first_summary.span_count, 6);
    assert_eq!(first_summary.error_span_count, 2);
    assert_eq!(first_summary.orphan_span_count, 1);
    assert_eq!(first_summary.min_start, UnixNanos(100));
    assert_eq!(first_summary.max_end, UnixNanos(400));
}

#[tokio::test]
async fn stream_consumers_may_stop_early() {
    let store = backend();
    let tenant = Tenant::default();
    let spans: Vec<Span> = (1..=50u8)
        .map(|trace| span(trace, 1, None, "svc", "op", u64::from(trace), 100, false))
        .collect();
    store.traces.write_spans(&tenant, spans).await.unwrap();
    let mut stream = store
        .traces
        .find_traces(&tenant, TraceQuery::all(depth(50)))
        .await
        .unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.trace_id, TraceId([50; 16]));
    drop(stream);
    // The store is still usable (the producer noticed and stopped).
    assert_eq!(get(&store, &tenant, 3).await.len(), 1);
}

/// A span using every OTLP field and every attribute type, on a resource and scope that also
/// use every field.
fn everything_span() -> Span {
    let every_value = |prefix: &str| {
        vec![
            pair(
                &format!("{prefix}.string"),
                Value::StringValue("text".into()),
            ),
            pair(&format!("{prefix}.bool"), Value::BoolValue(false)),
            pair(&format!("{prefix}.int"), Value::IntValue(-42)),
            pair(&format!("{prefix}.double"), Value::DoubleValue(1e-7)),
            pair(
                &format!("{prefix}.bytes"),
                Value::BytesValue(vec![0, 255, 7]),
            ),
            pair(
                &format!("{prefix}.array"),
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(Value::StringValue("two".into())),
                        },
                        AnyValue { value: None },
                    ],
                }),
            ),
            pair(
                &format!("{prefix}.map"),
                Value::KvlistValue(KeyValueList {
                    values: vec![pair("nested", Value::DoubleValue(2.5))],
                }),
            ),
            KeyValue {
                key: format!("{prefix}.empty"),
                value: None,
                ..Default::default()
            },
        ]
    };
    let mut resource_attributes = every_value("resource");
    resource_attributes.push(pair("service.name", Value::StringValue("lossless".into())));
    let resource = Arc::new(Resource::new(
        OtlpResource {
            attributes: resource_attributes,
            dropped_attributes_count: 3,
            ..Default::default()
        },
        "https://opentelemetry.io/schemas/1.26.0".into(),
    ));
    let scope = Arc::new(Scope::new(
        InstrumentationScope {
            name: "io.example.lib".into(),
            version: "9.9.9".into(),
            attributes: every_value("scope"),
            dropped_attributes_count: 4,
        },
        "https://opentelemetry.io/schemas/1.25.0".into(),
    ));
    let otlp = OtlpSpan {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        trace_state: "vendor=value,other=1".into(),
        parent_span_id: (11..=18).collect(),
        flags: 0x301,
        name: "everything".into(),
        kind: span::SpanKind::Consumer as i32,
        start_time_unix_nano: 1_700_000_000_000_000_001,
        end_time_unix_nano: 1_700_000_000_900_000_002,
        attributes: every_value("span"),
        dropped_attributes_count: 5,
        events: vec![
            span::Event {
                time_unix_nano: 1_700_000_000_000_000_500,
                name: "event-one".into(),
                attributes: every_value("event"),
                dropped_attributes_count: 6,
            },
            span::Event {
                time_unix_nano: 0,
                name: String::new(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            },
        ],
        dropped_events_count: 7,
        links: vec![span::Link {
            trace_id: vec![0xaa; 16],
            span_id: vec![0xbb; 8],
            trace_state: "link=state".into(),
            attributes: every_value("link"),
            dropped_attributes_count: 8,
            flags: 0x101,
        }],
        dropped_links_count: 9,
        status: Some(Status {
            message: "it broke".into(),
            code: status::StatusCode::Error as i32,
        }),
    };
    Span::new(resource, scope, otlp).unwrap()
}

#[tokio::test]
async fn every_otlp_field_round_trips_exactly() {
    let store = backend();
    let tenant = Tenant::new("lossless");
    let written = everything_span();
    store
        .traces
        .write_spans(&tenant, vec![written.clone()])
        .await
        .unwrap();
    let check = |trace: &Trace| {
        assert_eq!(trace.spans.len(), 1);
        let read = &trace.spans[0];
        assert_eq!(read.otlp(), written.otlp());
        assert_eq!(read.resource().otlp(), written.resource().otlp());
        assert_eq!(
            read.resource().schema_url(),
            written.resource().schema_url()
        );
        assert_eq!(read.scope().otlp(), written.scope().otlp());
        assert_eq!(read.scope().schema_url(), written.scope().schema_url());
    };
    let fetched = get_id(&store, &tenant, written.trace_id()).await;
    check(&fetched[0]);
    let searched = find(
        &store,
        &tenant,
        with_attribute(TraceQuery::all(depth(1)), "event.map", r#"{"nested":2.5}"#),
    )
    .await;
    assert_eq!(searched.len(), 1, "map values are found by their JSON text");
    check(&searched[0]);
}

/// A small deterministic generator, so the comparison below covers many shapes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

fn generated_spans() -> Vec<Vec<Span>> {
    let mut random = Lcg(7);
    let services = ["frontend", "backend", "db", "cache"];
    let mut resources = Vec::new();
    for service in services {
        for host in ["h1", "h2"] {
            resources.push(Arc::new(Resource::new(
                OtlpResource {
                    attributes: vec![
                        pair("service.name", Value::StringValue(service.into())),
                        pair("host", Value::StringValue(host.into())),
                    ],
                    ..Default::default()
                },
                String::new(),
            )));
        }
    }
    let scopes: Vec<Arc<Scope>> = ["lib-a", "lib-b"]
        .iter()
        .map(|name| {
            Arc::new(Scope::new(
                InstrumentationScope {
                    name: (*name).into(),
                    version: "1.0".into(),
                    attributes: vec![pair("scope.attr", Value::IntValue(7))],
                    ..Default::default()
                },
                String::new(),
            ))
        })
        .collect();
    let mut spans = Vec::new();
    for trace in 1..=60u8 {
        let count = 1 + random.next(8);
        for index in 0..count {
            let resource = &resources[usize::try_from(random.next(8)).unwrap()];
            let scope = &scopes[usize::try_from(random.next(2)).unwrap()];
            let start = 1_000_000 + u64::from(trace) * 1_000 + random.next(20_000);
            let mut attributes = vec![pair(
                "http.status_code",
                Value::IntValue([200, 404, 500][usize::try_from(random.next(3)).unwrap()]),
            )];
            if random.next(2) == 0 {
                attributes.push(pair(
                    "region",
                    Value::StringValue(
                        ["eu", "us"][usize::try_from(random.next(2)).unwrap()].into(),
                    ),
                ));
            }
            let events = if random.next(4) == 0 {
                vec![span::Event {
                    name: "retry".into(),
                    attributes: vec![pair("event.kind", Value::StringValue("retry".into()))],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let links = if random.next(5) == 0 {
                vec![span::Link {
                    trace_id: vec![0xee; 16],
                    span_id: vec![0xee; 8],
                    attributes: vec![pair("link.kind", Value::DoubleValue(0.5))],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            let otlp = OtlpSpan {
                trace_id: vec![trace; 16],
                span_id: vec![0, 0, 0, 0, 0, 0, trace, u8::try_from(index + 1).unwrap()],
                parent_span_id: if index == 0 {
                    Vec::new()
                } else {
                    vec![
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        trace,
                        u8::try_from(random.next(index) + 1).unwrap(),
                    ]
                },
                name: format!("op-{}", random.next(4)),
                kind: i32::try_from(random.next(6)).unwrap(),
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1 + random.next(2_000),
                attributes,
                events,
                links,
                status: (random.next(5) == 0).then(|| Status {
                    code: status::StatusCode::Error as i32,
                    message: String::new(),
                }),
                ..Default::default()
            };
            spans.push(Span::new(Arc::clone(resource), Arc::clone(scope), otlp).unwrap());
        }
    }
    // Interleave traces over several writes, so traces grow across batches.
    let mut batches = vec![Vec::new(); 5];
    for span in spans {
        let batch = usize::try_from(random.next(5)).unwrap();
        batches[batch].push(span);
    }
    batches
}

fn generated_queries() -> Vec<TraceQuery> {
    let all = |n| TraceQuery::all(depth(n));
    let service = |name: &str, n| {
        let mut query = all(n);
        query.service_name = Some(name.into());
        query
    };
    let mut queries = vec![
        all(10),
        all(100),
        service("frontend", 100),
        service("db", 3),
        service("nope", 10),
    ];
    let mut operation = service("backend", 100);
    operation.operation_name = Some("op-2".into());
    queries.push(operation.clone());
    let mut operation_only = all(100);
    operation_only.operation_name = Some("op-1".into());
    queries.push(operation_only);
    for (key, value) in [
        ("http.status_code", "500"),
        ("region", "eu"),
        ("resource.host", "h1"),
        ("host", "h2"),
        ("scope.attr", "7"),
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
    durations.duration_min = Some(1_000);
    queries.push(durations.clone());
    durations.duration_max = Some(1_500);
    queries.push(durations.clone());
    let mut longest = all(100);
    longest.duration_max = Some(300);
    queries.push(longest);
    let mut windowed = service("backend", 100);
    windowed.start_time_min = Some(UnixNanos(1_020_000));
    windowed.start_time_max = Some(UnixNanos(1_040_000));
    queries.push(windowed.clone());
    queries.push(with_attribute(windowed, "http.status_code", "200"));
    let mut everything = operation;
    everything.duration_min = Some(100);
    everything.start_time_min = Some(UnixNanos(1_010_000));
    queries.push(with_attribute(everything, "region", "eu"));
    queries
}

#[tokio::test]
async fn searches_return_exactly_what_the_memory_backend_returns() {
    let lsm = backend();
    let memory = backend_memory::open(backend_memory::MemoryConfig {
        max_traces: NonZeroUsize::new(1_000).unwrap(),
    });
    let tenant = Tenant::new("compare");
    for batch in generated_spans() {
        lsm.traces
            .write_spans(&tenant, batch.clone())
            .await
            .unwrap();
        memory.traces.write_spans(&tenant, batch).await.unwrap();
    }
    let shape = |traces: &[Trace]| -> Vec<(TraceId, usize)> {
        traces
            .iter()
            .map(|trace| (trace.trace_id, trace.spans.len()))
            .collect()
    };
    let mut non_empty = 0;
    for query in generated_queries() {
        let expected = find(&memory, &tenant, query.clone()).await;
        let actual = find(&lsm, &tenant, query.clone()).await;
        assert_eq!(shape(&actual), shape(&expected), "query {query:?}");
        non_empty += usize::from(!expected.is_empty());
        let summaries: Vec<TraceSummary> = lsm
            .traces
            .find_trace_summaries(&tenant, query)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let expected_summaries: Vec<TraceSummary> =
            actual.iter().map(TraceSummary::from_trace).collect();
        assert_eq!(summaries, expected_summaries);
    }
    assert!(non_empty > 20, "the queries should mostly find something");

    let window = DependencyQuery {
        start: UnixNanos(1_000_000),
        end: UnixNanos(1_040_000),
    };
    assert_eq!(
        lsm.dependencies
            .get_dependencies(&tenant, window)
            .await
            .unwrap(),
        memory
            .dependencies
            .get_dependencies(&tenant, window)
            .await
            .unwrap()
    );
    let mut lsm_services = lsm.traces.get_services(&tenant).await.unwrap();
    let mut memory_services = memory.traces.get_services(&tenant).await.unwrap();
    lsm_services.sort();
    memory_services.sort();
    assert_eq!(lsm_services, memory_services);
    for service in &memory_services {
        let query = OperationQuery {
            service: service.clone(),
            span_kind: None,
        };
        let mut expected = memory
            .traces
            .get_operations(&tenant, query.clone())
            .await
            .unwrap();
        let mut actual = lsm.traces.get_operations(&tenant, query).await.unwrap();
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected);
    }
}

#[tokio::test]
async fn stores_open_in_a_directory_too() {
    let directory = tempfile::tempdir().unwrap();
    let store = LsmStore::open(LsmConfig {
        retention: Duration::ZERO,
        ..LsmConfig::in_directory(directory.path())
    })
    .unwrap()
    .into_backend();
    store
        .traces
        .write_spans(
            &Tenant::default(),
            vec![span(1, 1, None, "a", "b", 1, 2, false)],
        )
        .await
        .unwrap();
    assert_eq!(get(&store, &Tenant::default(), 1).await.len(), 1);
    store.lifecycle.close().await.unwrap();
}
