//! Behaviour of the PostgreSQL backend through the store traits, against a real PostgreSQL
//! (`CONFORMANCE_POSTGRES_URL`, see `scripts/postgres-test-env.sh`). Without it every test
//! prints one skip line and passes.

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;

use common::TestStore;
use futures::TryStreamExt as _;
use remote_storage_core::convert::resource_spans_from_spans;
use remote_storage_core::proto::otlp::common::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span, status::StatusCode,
};
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::testing::span;
use remote_storage_core::{
    Backend, DependencyLink, DependencyQuery, ErrorKind, OperationQuery, Resource, Scope, Span,
    Tenant, Trace, TraceId, TraceLookup, TraceQuery, TraceSummary, UnixNanos,
};

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

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

#[tokio::test]
async fn spans_append_across_writes_and_duplicates_are_kept() {
    let Some(test) = TestStore::open("append").await else {
        return;
    };
    let store = &test.backend;
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(&tenant, vec![span(1, 1, None, "a", "root", 10, 20, false)])
        .await
        .unwrap();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 2, Some(1), "b", "child", 11, 12, false),
                span(1, 2, Some(1), "b", "child", 11, 12, false),
                // Same span ID, other content (Jaeger's GetTraceWithDuplicateSpans).
                span(1, 2, Some(1), "b", "child", 13, 14, false),
            ],
        )
        .await
        .unwrap();
    let traces = get(store, &tenant, 1).await;
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans.len(), 4);
    let names: Vec<&str> = traces[0].spans.iter().map(Span::name).collect();
    assert_eq!(names, ["root", "child", "child", "child"], "storage order");
    assert!(
        get(store, &tenant, 9).await.is_empty(),
        "unknown IDs skipped"
    );
    test.finish().await;
}

#[tokio::test]
async fn a_resent_batch_is_idempotent() {
    let Some(test) = TestStore::open("resend").await else {
        return;
    };
    let store = &test.backend;
    let tenant = Tenant::default();
    let batch = vec![
        span(1, 1, None, "a", "root", 10, 20, false),
        span(1, 2, Some(1), "a", "child", 11, 12, false),
        span(1, 2, Some(1), "a", "child", 11, 12, false),
    ];
    for _ in 0..3 {
        store
            .traces
            .write_spans(&tenant, batch.clone())
            .await
            .unwrap();
    }
    let traces = get(store, &tenant, 1).await;
    assert_eq!(
        traces[0].spans.len(),
        3,
        "retries add nothing; in-batch copies kept"
    );
    test.finish().await;
}

/// A span using every OTLP field, with every attribute type on every level.
fn full_resource_spans(now: u64) -> ResourceSpans {
    let every_type = |prefix: &str| {
        vec![
            kv(
                &format!("{prefix}.string"),
                Value::StringValue("text ✓".into()),
            ),
            kv(&format!("{prefix}.bool"), Value::BoolValue(true)),
            kv(&format!("{prefix}.int"), Value::IntValue(-42)),
            kv(&format!("{prefix}.double"), Value::DoubleValue(72.5)),
            kv(
                &format!("{prefix}.bytes"),
                Value::BytesValue(vec![0, 1, 2, 255]),
            ),
            kv(
                &format!("{prefix}.array"),
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(Value::StringValue("two".into())),
                        },
                    ],
                }),
            ),
            kv(
                &format!("{prefix}.map"),
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("nested", Value::DoubleValue(0.25))],
                }),
            ),
            KeyValue {
                key: format!("{prefix}.empty"),
                value: None,
                ..Default::default()
            },
        ]
    };
    let mut resource_attributes = every_type("res");
    resource_attributes.insert(0, kv("service.name", Value::StringValue("lossless".into())));
    ResourceSpans {
        resource: Some(OtlpResource {
            attributes: resource_attributes,
            dropped_attributes_count: 3,
            entity_refs: vec![EntityRef {
                schema_url: "https://entity".into(),
                r#type: "service".into(),
                id_keys: vec!["service.name".into()],
                description_keys: vec!["res.string".into()],
            }],
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "scope-lib".into(),
                version: "9.9.9".into(),
                attributes: every_type("scope"),
                dropped_attributes_count: 4,
            }),
            spans: vec![
                OtlpSpan {
                    trace_id: vec![7; 16],
                    span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                    trace_state: "vendor=value".into(),
                    parent_span_id: vec![8, 7, 6, 5, 4, 3, 2, 1],
                    flags: 0x301,
                    name: "everything".into(),
                    kind: span::SpanKind::Consumer as i32,
                    start_time_unix_nano: now,
                    end_time_unix_nano: now + 1_234_567,
                    attributes: every_type("span"),
                    dropped_attributes_count: 5,
                    events: vec![span::Event {
                        time_unix_nano: now + 10,
                        name: "event".into(),
                        attributes: every_type("event"),
                        dropped_attributes_count: 6,
                    }],
                    dropped_events_count: 7,
                    links: vec![span::Link {
                        trace_id: vec![9; 16],
                        span_id: vec![9; 8],
                        trace_state: "link=state".into(),
                        attributes: every_type("link"),
                        dropped_attributes_count: 8,
                        flags: 0x100,
                    }],
                    dropped_links_count: 9,
                    status: Some(Status {
                        message: "it broke".into(),
                        code: StatusCode::Error as i32,
                    }),
                },
                OtlpSpan {
                    trace_id: vec![7; 16],
                    span_id: vec![8, 7, 6, 5, 4, 3, 2, 1],
                    name: "parent".into(),
                    start_time_unix_nano: now - 5,
                    end_time_unix_nano: now + 2_000_000,
                    ..Default::default()
                },
            ],
            schema_url: "https://scope-schema".into(),
        }],
        schema_url: "https://resource-schema".into(),
    }
}

#[tokio::test]
async fn a_span_with_every_field_round_trips_losslessly() {
    let Some(test) = TestStore::open("lossless").await else {
        return;
    };
    let store = &test.backend;
    let tenant = Tenant::default();
    let original = full_resource_spans(UnixNanos::now().0 - 3_600_000_000_000);
    let decoded = remote_storage_core::convert::spans_from_resource_spans(vec![original.clone()]);
    assert_eq!(decoded.rejected, 0);
    store
        .traces
        .write_spans(&tenant, decoded.spans)
        .await
        .unwrap();
    let traces = get(store, &tenant, 7).await;
    assert_eq!(traces.len(), 1);
    let read_back = resource_spans_from_spans(&traces[0].spans);
    assert_eq!(read_back, vec![original], "OTLP messages must be equal");
    test.finish().await;
}

#[tokio::test]
async fn find_returns_newest_matching_traces_first_with_exact_depth() {
    let Some(test) = TestStore::open("newest").await else {
        return;
    };
    let store = &test.backend;
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
    assert_eq!(ids(&find(store, &tenant, query.clone()).await), [5, 4, 3]);

    query.search_depth = depth(10);
    query.start_time_min = Some(UnixNanos(200));
    query.start_time_max = Some(UnixNanos(400));
    assert_eq!(
        ids(&find(store, &tenant, query.clone()).await),
        [4, 3, 2],
        "inclusive window bounds"
    );

    let mut durations = TraceQuery::all(depth(10));
    durations.duration_min = Some(5);
    durations.duration_max = Some(5);
    assert_eq!(
        ids(&find(store, &tenant, durations.clone()).await),
        [6, 5, 4, 3, 2, 1],
        "inclusive duration bounds"
    );
    durations.duration_max = Some(4);
    assert!(find(store, &tenant, durations).await.is_empty());

    let mut any_service = TraceQuery::all(depth(10));
    any_service.operation_name = Some("wanted".into());
    let everywhere = find(store, &tenant, any_service).await;
    assert_eq!(ids(&everywhere), [6, 5, 4, 3, 2, 1]);
    let whole = everywhere
        .iter()
        .find(|trace| trace.trace_id.0[0] == 1)
        .unwrap();
    assert_eq!(whole.spans.len(), 2, "whole trace returned");

    // Depth 1 over traces whose only span is at the same time: larger trace ID first.
    let ties = vec![
        span(20, 1, None, "tie", "op", 50_000, 50_001, false),
        span(21, 1, None, "tie", "op", 50_000, 50_001, false),
    ];
    store.traces.write_spans(&tenant, ties).await.unwrap();
    let mut tie_query = TraceQuery::all(depth(1));
    tie_query.service_name = Some("tie".into());
    assert_eq!(ids(&find(store, &tenant, tie_query).await), [21]);

    // FindTraceIDs gives the same order, with start/end hints.
    let mut query = TraceQuery::all(depth(2));
    query.service_name = Some("svc".into());
    let found = store.traces.find_trace_ids(&tenant, query).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].trace_id, TraceId([1; 16]));
    assert_eq!(found[0].start, Some(UnixNanos(100)));
    assert_eq!(found[0].end, Some(UnixNanos(10_001)));
    test.finish().await;
}

/// One trace per level, each carrying the same attribute values on that level only.
fn level_spans(now: u64) -> Vec<Span> {
    let typed = || {
        vec![
            kv("q.count", Value::IntValue(42)),
            kv("q.flag", Value::BoolValue(true)),
            kv("q.ratio", Value::DoubleValue(0.625)),
            kv("q.label", Value::StringValue("teal".into())),
        ]
    };
    let resource = |service: &str, extra: Vec<KeyValue>| {
        let mut attributes = vec![kv("service.name", Value::StringValue(service.into()))];
        attributes.extend(extra);
        Arc::new(Resource::new(
            OtlpResource {
                attributes,
                ..Default::default()
            },
            String::new(),
        ))
    };
    let scope = |attributes: Vec<KeyValue>| {
        Arc::new(Scope::new(
            InstrumentationScope {
                name: "lib".into(),
                version: "1.0".into(),
                attributes,
                ..Default::default()
            },
            String::new(),
        ))
    };
    let otlp = |trace: u8| OtlpSpan {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: "op".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: now + u64::from(trace),
        end_time_unix_nano: now + 100,
        ..Default::default()
    };
    let plain_scope = scope(Vec::new());
    vec![
        Span::new(
            resource("on-span", Vec::new()),
            Arc::clone(&plain_scope),
            OtlpSpan {
                attributes: typed(),
                ..otlp(1)
            },
        )
        .unwrap(),
        Span::new(
            resource("on-resource", typed()),
            Arc::clone(&plain_scope),
            otlp(2),
        )
        .unwrap(),
        Span::new(resource("on-scope", Vec::new()), scope(typed()), otlp(3)).unwrap(),
        Span::new(
            resource("on-event", Vec::new()),
            Arc::clone(&plain_scope),
            OtlpSpan {
                events: vec![span::Event {
                    name: "e".into(),
                    attributes: typed(),
                    ..Default::default()
                }],
                ..otlp(4)
            },
        )
        .unwrap(),
        Span::new(
            resource("on-link", Vec::new()),
            Arc::clone(&plain_scope),
            OtlpSpan {
                links: vec![span::Link {
                    trace_id: vec![1; 16],
                    span_id: vec![1; 8],
                    attributes: typed(),
                    ..Default::default()
                }],
                status: Some(Status {
                    code: StatusCode::Error as i32,
                    message: String::new(),
                }),
                ..otlp(5)
            },
        )
        .unwrap(),
    ]
}

#[tokio::test]
async fn typed_and_string_attribute_values_match_on_every_level() {
    let Some(test) = TestStore::open("levels").await else {
        return;
    };
    let store = &test.backend;
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(&tenant, level_spans(UnixNanos::now().0 - 60_000_000_000))
        .await
        .unwrap();
    // Query values are canonical text: typed values were rendered by the query layer.
    let all_four = |query: TraceQuery| {
        let query = with_attribute(query, "q.count", "42");
        let query = with_attribute(query, "q.flag", "true");
        let query = with_attribute(query, "q.ratio", "0.625");
        with_attribute(query, "q.label", "teal")
    };
    let everywhere = find(store, &tenant, all_four(TraceQuery::all(depth(10)))).await;
    assert_eq!(ids(&everywhere), [5, 4, 3, 2, 1], "found on every level");
    for (service, trace) in [
        ("on-span", 1),
        ("on-resource", 2),
        ("on-scope", 3),
        ("on-event", 4),
        ("on-link", 5),
    ] {
        let mut query = TraceQuery::all(depth(10));
        query.service_name = Some(service.into());
        assert_eq!(
            ids(&find(store, &tenant, all_four(query)).await),
            [trace],
            "{service}"
        );
    }
    let wrong = with_attribute(TraceQuery::all(depth(10)), "q.count", "43");
    assert!(find(store, &tenant, wrong).await.is_empty());
    let resource_only = with_attribute(TraceQuery::all(depth(10)), "resource.q.count", "42");
    assert_eq!(ids(&find(store, &tenant, resource_only).await), [2]);
    let special = [
        ("error", "true", vec![5]),
        ("error", "false", vec![4, 3, 2, 1]),
        ("error", "maybe", vec![]),
        ("span.status", "ERROR", vec![5]),
        ("span.kind", "server", vec![5, 4, 3, 2, 1]),
        ("span.kind", "client", vec![]),
        ("scope.name", "lib", vec![5, 4, 3, 2, 1]),
        ("scope.version", "2.0", vec![]),
        ("absent", "x", vec![]),
    ];
    for (key, value, expected) in special {
        let query = with_attribute(TraceQuery::all(depth(10)), key, value);
        assert_eq!(
            ids(&find(store, &tenant, query).await),
            expected,
            "{key}={value}"
        );
    }
    test.finish().await;
}

#[tokio::test]
async fn attribute_conditions_hold_on_one_span() {
    let Some(test) = TestStore::open("onespan").await else {
        return;
    };
    let store = &test.backend;
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
    assert!(find(store, &tenant, query.clone()).await.is_empty());
    query.operation_name = Some("a".into());
    assert_eq!(find(store, &tenant, query).await.len(), 1);
    test.finish().await;
}

#[tokio::test]
async fn tenants_are_isolated_and_purge_wipes_all() {
    let Some(test) = TestStore::open("tenants").await else {
        return;
    };
    let store = &test.backend;
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
    assert!(get(store, &blue, 1).await.is_empty());
    assert_eq!(
        ids(&find(store, &blue, TraceQuery::all(depth(10))).await),
        [2]
    );
    let operations = store
        .traces
        .get_operations(
            &red,
            OperationQuery {
                service: "blue-svc".into(),
                span_kind: None,
            },
        )
        .await
        .unwrap();
    assert!(operations.is_empty());

    store.purger.purge().await.unwrap();
    assert!(store.traces.get_services(&red).await.unwrap().is_empty());
    assert!(get(store, &blue, 2).await.is_empty());
    assert!(
        find(store, &red, TraceQuery::all(depth(10)))
            .await
            .is_empty()
    );
    // Still writable after a purge.
    store
        .traces
        .write_spans(&red, vec![span(3, 1, None, "red-svc", "op", 10, 20, false)])
        .await
        .unwrap();
    assert_eq!(get(store, &red, 3).await.len(), 1);
    test.finish().await;
}

#[tokio::test]
async fn services_and_operations_are_indexed_on_write() {
    let Some(test) = TestStore::open("ops").await else {
        return;
    };
    let store = &test.backend;
    let tenant = Tenant::default();
    let mut server = span(1, 1, None, "svc", "GET /", 10, 20, false);
    let otlp = OtlpSpan {
        kind: span::SpanKind::Server as i32,
        ..server.otlp().clone()
    };
    server = Span::new(
        Arc::clone(server.resource()),
        Arc::clone(server.scope()),
        otlp,
    )
    .unwrap();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                server,
                span(1, 2, Some(1), "svc", "internal", 11, 12, false),
            ],
        )
        .await
        .unwrap();
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
        .map(|op| (op.name.as_str(), op.span_kind.as_str()))
        .collect();
    assert_eq!(pairs, [("GET /", "server"), ("internal", "")]);
    let servers = store
        .traces
        .get_operations(
            &tenant,
            OperationQuery {
                service: "svc".into(),
                span_kind: Some(span::SpanKind::Server),
            },
        )
        .await
        .unwrap();
    assert_eq!(servers.len(), 1);
    test.finish().await;
}

#[tokio::test]
async fn dependencies_come_from_parent_child_spans_in_the_window() {
    let Some(test) = TestStore::open("deps").await else {
        return;
    };
    let store = &test.backend;
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
                span(1, 5, Some(2), "hello", "back", 115, 116, false),
                span(1, 6, Some(9), "hello", "orphan", 117, 118, false),
                span(2, 1, None, "hello", "root", 5_000, 5_100, false),
                span(2, 2, Some(1), "world", "call", 5_010, 5_020, false),
            ],
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
    test.finish().await;
}

#[tokio::test]
async fn summaries_equal_the_shared_computation() {
    let Some(test) = TestStore::open("summaries").await else {
        return;
    };
    let store = &test.backend;
    let tenant = Tenant::default();
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "svc-b", "late-root", 200, 300, false),
                span(1, 2, None, "svc-a", "root", 100, 400, false),
                span(1, 3, Some(2), "svc-b", "child", 150, 250, true),
                span(1, 4, Some(9), "svc-a", "orphan", 120, 130, false),
                span(2, 1, None, "first", "a", 100, 200, false),
                span(2, 2, None, "second", "b", 100, 200, false),
                span(2, 1, None, "first", "a", 100, 201, true),
            ],
        )
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
    let traces = find(store, &tenant, query).await;
    let expected: Vec<TraceSummary> = traces.iter().map(TraceSummary::from_trace).collect();
    assert_eq!(summaries, expected);
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0].root_operation_name, "root");
    assert_eq!(summaries[0].orphan_span_count, 1);
    assert_eq!(
        summaries[1].root_service_name, "first",
        "ties keep the first stored"
    );
    test.finish().await;
}

#[tokio::test]
async fn opening_twice_reuses_the_migrated_schema() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::unique_schema("reopen");
    let first = TestStore::open_with(common::test_config(&url, &schema)).await;
    let tenant = Tenant::default();
    // Recent times: opening runs retention, which would drop a 1970 partition.
    let now = UnixNanos::now().0;
    first
        .backend
        .traces
        .write_spans(
            &tenant,
            vec![span(1, 1, None, "a", "root", now, now + 10, false)],
        )
        .await
        .unwrap();
    // A second store on the same schema, configured with another partition span: the
    // migrations are not re-applied and the stored span is kept.
    let mut config = common::test_config(&url, &schema);
    config.partition_span = backend_postgres::PartitionSpan::Hour;
    let second = TestStore::open_with(config).await;
    assert_eq!(get(&second.backend, &tenant, 1).await[0].spans.len(), 1);
    second
        .backend
        .traces
        .write_spans(
            &tenant,
            vec![span(1, 2, Some(1), "a", "child", now + 1, now + 2, false)],
        )
        .await
        .unwrap();
    assert_eq!(get(&first.backend, &tenant, 1).await[0].spans.len(), 2);
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(first.store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 1);
    second.backend.lifecycle.close().await.unwrap();
    first.finish().await;
}

async fn partition_names(test: &TestStore) -> Vec<String> {
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         JOIN pg_namespace n ON n.oid = p.relnamespace \
         WHERE n.nspname = $1",
    )
    .bind(&test.schema)
    .fetch_all(test.store.pool())
    .await
    .unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn retention_drops_whole_expired_partitions() {
    let Some(url) = common::database_url() else {
        return;
    };
    let mut config = common::test_config(&url, &common::unique_schema("retention"));
    config.partition_span = backend_postgres::PartitionSpan::Hour;
    config.retention = std::time::Duration::from_secs(2 * 3_600);
    let test = TestStore::open_with(config).await;
    let store = &test.backend;
    let tenant = Tenant::default();
    let hour = 3_600_000_000_000u64;
    let now = UnixNanos::now().0;
    let old = now - 10 * hour;
    store
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "old-svc", "old", old, old + 5, false),
                span(2, 1, None, "new-svc", "new", now - 1_000, now, false),
            ],
        )
        .await
        .unwrap();
    let old_bucket = i64::try_from(old - old % hour).unwrap();
    let old_suffix = {
        let seconds = i64::try_from(old / 1_000_000_000).unwrap();
        let time = time::OffsetDateTime::from_unix_timestamp(seconds - seconds % 3_600).unwrap();
        format!(
            "h{:04}{:02}{:02}{:02}",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour()
        )
    };
    let before = partition_names(&test).await;
    for table in ["spans", "resources", "scopes", "services", "operations"] {
        let name = format!("{table}_{old_suffix}");
        assert!(
            before.contains(&name),
            "{name} created on demand: {before:?}"
        );
    }
    assert_eq!(get(store, &tenant, 1).await.len(), 1);

    let dropped = test.store.run_maintenance(UnixNanos::now()).await.unwrap();
    assert_eq!(dropped, [old_bucket]);
    let after = partition_names(&test).await;
    assert!(
        after.iter().all(|name| !name.ends_with(&old_suffix)),
        "expired partitions dropped: {after:?}"
    );
    assert!(
        after.len() >= 5 * 3,
        "current and upcoming partitions kept: {after:?}"
    );
    assert!(get(store, &tenant, 1).await.is_empty());
    assert_eq!(get(store, &tenant, 2).await.len(), 1);
    assert_eq!(
        store.traces.get_services(&tenant).await.unwrap(),
        ["new-svc"]
    );
    test.finish().await;
}

#[tokio::test]
async fn nothing_listening_is_unavailable_not_a_hang() {
    if common::database_url().is_none() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = common::test_config(
        &format!("postgres://nobody:x@127.0.0.1:{port}/none"),
        "jaeger",
    );
    config.connect_timeout = std::time::Duration::from_secs(1);
    config.acquire_timeout = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let error = backend_postgres::open(config).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
