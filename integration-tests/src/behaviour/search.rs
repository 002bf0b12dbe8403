//! `find_traces`, `find_trace_ids`, `find_trace_summaries`, the services and operations indexes
//! and dependencies.

use std::sync::Arc;

use anyhow::Context as _;
use remote_storage_core::model::{Resource, Scope};
use remote_storage_core::proto::otlp::common::{InstrumentationScope, KeyValue, any_value::Value};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{
    Span as OtlpSpan, Status, span::Event, span::Link, span::SpanKind, status::StatusCode,
};
use remote_storage_core::testing::span;
use remote_storage_core::{
    Backend, DependencyLink, DependencyQuery, Span, Tenant, TraceId, TraceQuery, TraceSummary,
    UnixNanos,
};

use super::{
    CheckContext, SpanOrder, depth, ensure_eq, find, ids, in_service, kv, operations, recent_base,
    seed, services, summaries, with_attribute, with_kind, write,
};

/// At most `search_depth` traces, newest matching span first; whole traces; inclusive start
/// and duration bounds; an empty service searches all; ties go to the larger trace ID;
/// `find_trace_ids` gives the same order with start/end hints.
pub async fn newest_first_up_to_depth(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let tenant = Tenant::default();
    let t = recent_base();
    let mut spans = Vec::new();
    for trace in 1..=5u8 {
        let start = t + u64::from(trace) * 100;
        spans.push(span(
            trace,
            1,
            None,
            "svc",
            "wanted",
            start,
            start + 5,
            false,
        ));
    }
    // Trace 1 has a late span that does not match the operation filter.
    spans.push(span(
        1,
        2,
        Some(1),
        "svc",
        "other",
        t + 10_000,
        t + 10_001,
        false,
    ));
    spans.push(span(
        6,
        1,
        None,
        "elsewhere",
        "wanted",
        t + 900,
        t + 905,
        false,
    ));
    write(backend, &tenant, spans).await?;

    let mut query = in_service(TraceQuery::all(depth(3)), "svc");
    query.operation_name = Some("wanted".into());
    ensure_eq!(
        ids(&find(backend, &tenant, query.clone()).await?),
        [5, 4, 3],
        "depth 3"
    );

    query.search_depth = depth(10);
    query.start_time_min = Some(UnixNanos(t + 200));
    query.start_time_max = Some(UnixNanos(t + 400));
    ensure_eq!(
        ids(&find(backend, &tenant, query).await?),
        [4, 3, 2],
        "inclusive window bounds"
    );

    let mut any_service = TraceQuery::all(depth(10));
    any_service.operation_name = Some("wanted".into());
    let everywhere = find(backend, &tenant, any_service).await?;
    ensure_eq!(ids(&everywhere), [6, 5, 4, 3, 2, 1], "no service name");
    let whole = everywhere
        .iter()
        .find(|trace| trace.trace_id.0[0] == 1)
        .context("trace 1 not found")?;
    ensure_eq!(
        whole.spans.len(),
        2,
        "whole trace, not only the matching span"
    );

    let mut durations = TraceQuery::all(depth(10));
    durations.duration_min = Some(5);
    durations.duration_max = Some(5);
    ensure_eq!(
        ids(&find(backend, &tenant, durations.clone()).await?),
        [6, 5, 4, 3, 2, 1],
        "inclusive duration bounds"
    );
    durations.service_name = Some("svc".into());
    ensure_eq!(
        ids(&find(backend, &tenant, durations.clone()).await?),
        [5, 4, 3, 2, 1],
        "inclusive duration bounds with a service"
    );
    durations.duration_min = Some(1);
    durations.duration_max = Some(1);
    ensure_eq!(
        ids(&find(backend, &tenant, durations.clone()).await?),
        [1],
        "duration 1"
    );
    durations.service_name = None;
    durations.duration_min = Some(5);
    durations.duration_max = Some(4);
    ensure_eq!(
        find(backend, &tenant, durations).await?.len(),
        0,
        "empty duration range"
    );

    let found = backend
        .traces
        .find_trace_ids(&tenant, TraceQuery::all(depth(2)))
        .await
        .context("find_trace_ids failed")?;
    ensure_eq!(found.len(), 2, "find_trace_ids at depth 2");
    ensure_eq!(found[0].trace_id, TraceId([1; 16]), "newest trace");
    ensure_eq!(found[0].start, Some(UnixNanos(t + 100)), "start hint");
    ensure_eq!(found[0].end, Some(UnixNanos(t + 10_001)), "end hint");
    let query = in_service(TraceQuery::all(depth(2)), "svc");
    let found = backend
        .traces
        .find_trace_ids(&tenant, query)
        .await
        .context("find_trace_ids failed")?;
    ensure_eq!(found.len(), 2, "find_trace_ids of svc at depth 2");
    ensure_eq!(found[0].trace_id, TraceId([1; 16]), "newest svc trace");
    ensure_eq!(found[0].start, Some(UnixNanos(t + 100)), "start hint");
    ensure_eq!(found[0].end, Some(UnixNanos(t + 10_001)), "end hint");

    // Depth 1 over traces whose only span is at the same time: larger trace ID first.
    let ties = vec![
        span(20, 1, None, "tie", "op", t + 50_000, t + 50_001, false),
        span(21, 1, None, "tie", "op", t + 50_000, t + 50_001, false),
    ];
    write(backend, &tenant, ties).await?;
    let tie_query = in_service(TraceQuery::all(depth(1)), "tie");
    ensure_eq!(
        ids(&find(backend, &tenant, tie_query).await?),
        [21],
        "tie at depth 1"
    );
    Ok(())
}

/// Every condition holds on one span; `error` takes `true`/`false` only.
pub async fn conditions_on_one_span(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = seed(
        backend,
        vec![
            span(1, 1, None, "svc", "a", t + 10, t + 20, true),
            span(1, 2, Some(1), "svc", "b", t + 10, t + 20, false),
        ],
    )
    .await?;
    let mut query = with_attribute(TraceQuery::all(depth(10)), "error", "true");
    query.operation_name = Some("b".into());
    ensure_eq!(
        find(backend, &tenant, query.clone()).await?.len(),
        0,
        "error=true on b"
    );
    query.operation_name = Some("a".into());
    ensure_eq!(
        find(backend, &tenant, query).await?.len(),
        1,
        "error=true on a"
    );
    let not_bool = with_attribute(TraceQuery::all(depth(10)), "error", "maybe");
    ensure_eq!(
        find(backend, &tenant, not_bool).await?.len(),
        0,
        "error=maybe"
    );
    let no_error = with_attribute(TraceQuery::all(depth(10)), "error", "false");
    ensure_eq!(
        find(backend, &tenant, no_error).await?.len(),
        1,
        "error=false"
    );
    Ok(())
}

fn test_resource(service: &str, extra: Vec<KeyValue>) -> Arc<Resource> {
    let mut attributes = vec![kv("service.name", Value::StringValue(service.into()))];
    attributes.extend(extra);
    Arc::new(Resource::new(
        OtlpResource {
            attributes,
            ..Default::default()
        },
        String::new(),
    ))
}

fn test_scope(version: &str, attributes: Vec<KeyValue>) -> Arc<Scope> {
    Arc::new(Scope::new(
        InstrumentationScope {
            name: "lib".into(),
            version: version.into(),
            attributes,
            ..Default::default()
        },
        String::new(),
    ))
}

/// One trace per level, each carrying the same typed values on that level only.
fn level_spans(t: u64) -> anyhow::Result<Vec<Span>> {
    let typed = || {
        vec![
            kv("q.count", Value::IntValue(42)),
            kv("q.flag", Value::BoolValue(true)),
            kv("q.ratio", Value::DoubleValue(0.625)),
            kv("q.label", Value::StringValue("teal".into())),
        ]
    };
    let otlp = |trace: u8| OtlpSpan {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: "op".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: t + u64::from(trace),
        end_time_unix_nano: t + 100,
        ..Default::default()
    };
    let plain_scope = test_scope("1.0", Vec::new());
    let levels = vec![
        (
            test_resource("on-span", Vec::new()),
            Arc::clone(&plain_scope),
            OtlpSpan {
                attributes: typed(),
                ..otlp(1)
            },
        ),
        (
            test_resource("on-resource", typed()),
            Arc::clone(&plain_scope),
            otlp(2),
        ),
        (
            test_resource("on-scope", Vec::new()),
            test_scope("1.0", typed()),
            otlp(3),
        ),
        (
            test_resource("on-event", Vec::new()),
            Arc::clone(&plain_scope),
            OtlpSpan {
                events: vec![Event {
                    name: "e".into(),
                    attributes: typed(),
                    ..Default::default()
                }],
                ..otlp(4)
            },
        ),
        (
            test_resource("on-link", Vec::new()),
            Arc::clone(&plain_scope),
            OtlpSpan {
                links: vec![Link {
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
        ),
    ];
    levels
        .into_iter()
        .map(|(resource, scope, otlp)| Span::new(resource, scope, otlp).context("invalid span"))
        .collect()
}

/// Typed values (int, bool, double, string) on the span, resource, scope, event or link match
/// their canonical text; `resource.` narrows to the resource; the special keys `error`,
/// `span.status`, `span.kind`, `scope.name` and `scope.version`.
pub async fn typed_values_on_every_level(
    backend: &Backend,
    _: &CheckContext,
) -> anyhow::Result<()> {
    let tenant = Tenant::default();
    write(backend, &tenant, level_spans(recent_base())?).await?;
    // Query values are canonical text: typed values were rendered by the query layer.
    let all_four = |query: TraceQuery| {
        let query = with_attribute(query, "q.count", "42");
        let query = with_attribute(query, "q.flag", "true");
        let query = with_attribute(query, "q.ratio", "0.625");
        with_attribute(query, "q.label", "teal")
    };
    let everywhere = find(backend, &tenant, all_four(TraceQuery::all(depth(10)))).await?;
    ensure_eq!(ids(&everywhere), [5, 4, 3, 2, 1], "found on every level");
    for (service, trace) in [
        ("on-span", 1),
        ("on-resource", 2),
        ("on-scope", 3),
        ("on-event", 4),
        ("on-link", 5),
    ] {
        let query = all_four(in_service(TraceQuery::all(depth(10)), service));
        ensure_eq!(
            ids(&find(backend, &tenant, query).await?),
            [trace],
            "{service}"
        );
    }
    let special: [(&str, &str, &[u8]); 11] = [
        ("q.count", "43", &[]),
        ("resource.q.count", "42", &[2]),
        ("error", "true", &[5]),
        ("error", "false", &[4, 3, 2, 1]),
        ("error", "maybe", &[]),
        ("span.status", "ERROR", &[5]),
        ("span.kind", "server", &[5, 4, 3, 2, 1]),
        ("span.kind", "client", &[]),
        ("scope.name", "lib", &[5, 4, 3, 2, 1]),
        ("scope.version", "2.0", &[]),
        ("absent", "x", &[]),
    ];
    for (key, value, expected) in special {
        let query = with_attribute(TraceQuery::all(depth(10)), key, value);
        ensure_eq!(
            ids(&find(backend, &tenant, query).await?),
            expected,
            "{key}={value}"
        );
    }
    Ok(())
}

/// One span whose attributes sit on every level, with typed values.
fn leveled_span(trace: u8, service: &str, t: u64) -> anyhow::Result<Span> {
    let resource = test_resource(service, vec![kv("host.port", Value::IntValue(8080))]);
    let scope = test_scope("2.0", vec![kv("scope.flag", Value::BoolValue(true))]);
    let otlp = OtlpSpan {
        trace_id: vec![trace; 16],
        span_id: vec![trace; 8],
        name: "op".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: t + 1_000,
        end_time_unix_nano: t + 2_000,
        attributes: vec![
            kv("http.status_code", Value::IntValue(500)),
            kv("cross", Value::StringValue("yes".into())),
        ],
        events: vec![Event {
            name: "retry".into(),
            attributes: vec![kv("ratio", Value::DoubleValue(72.5))],
            ..Default::default()
        }],
        links: vec![Link {
            trace_id: vec![9; 16],
            span_id: vec![9; 8],
            attributes: vec![kv("link.bytes", Value::BytesValue(vec![0, 0, 0x30, 0x39]))],
            ..Default::default()
        }],
        ..Default::default()
    };
    Span::new(resource, scope, otlp).context("invalid span")
}

/// Typed values on different levels of one span match their text (bytes as base64, with and
/// without a service), and conditions on different levels of one span hold together.
pub async fn typed_values_within_one_span(
    backend: &Backend,
    _: &CheckContext,
) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = seed(
        backend,
        vec![
            leveled_span(1, "cross-a", t)?,
            leveled_span(2, "cross-b", t)?,
        ],
    )
    .await?;
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
        let found = find(backend, &tenant, with_attribute(all(), key, value)).await?;
        let expected = if value.starts_with("cross-") { 1 } else { 2 };
        ensure_eq!(found.len(), expected, "{key}={value}");
    }
    for (key, value) in [
        ("http.status_code", "501"),
        ("resource.http.status_code", "500"),
        ("ratio", "72.50"),
        ("absent", "x"),
        ("span.kind", "client"),
    ] {
        let found = find(backend, &tenant, with_attribute(all(), key, value)).await?;
        ensure_eq!(found.len(), 0, "{key}={value} must not match");
    }
    // Two conditions found on different levels of the same span.
    let both = with_attribute(with_attribute(all(), "ratio", "72.5"), "host.port", "8080");
    ensure_eq!(
        find(backend, &tenant, both).await?.len(),
        2,
        "event and resource"
    );
    // A typed condition together with a service.
    let scoped = in_service(with_attribute(all(), "cross", "yes"), "cross-b");
    ensure_eq!(
        ids(&find(backend, &tenant, scoped).await?),
        [2],
        "cross=yes in cross-b"
    );
    Ok(())
}

/// The services index gains each span's service, the operations index its `{name, kind}`,
/// filtered by kind on request; an unknown service has no operations.
pub async fn services_and_operations(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let t = recent_base();
    let client = with_kind(
        &span(1, 2, Some(1), "svc", "call", t + 10, t + 20, false),
        SpanKind::Client,
    )?;
    let server = with_kind(
        &span(1, 3, Some(1), "svc", "GET /", t + 10, t + 20, false),
        SpanKind::Server,
    )?;
    let tenant = seed(
        backend,
        vec![
            span(1, 1, None, "svc", "root", t + 10, t + 20, false),
            client.clone(),
            client,
            server,
            span(1, 4, Some(3), "svc", "internal", t + 11, t + 12, false),
            span(2, 1, None, "other", "root", t + 10, t + 20, false),
        ],
    )
    .await?;
    ensure_eq!(
        services(backend, &tenant).await?,
        ["other", "svc"],
        "services"
    );
    let all = operations(backend, &tenant, "svc", None).await?;
    let pairs: Vec<(&str, &str)> = all
        .iter()
        .map(|operation| (operation.name.as_str(), operation.span_kind.as_str()))
        .collect();
    ensure_eq!(
        pairs,
        [
            ("GET /", "server"),
            ("call", "client"),
            ("internal", ""),
            ("root", "")
        ],
        "operations of svc (sorted)"
    );
    let clients = operations(backend, &tenant, "svc", Some(SpanKind::Client)).await?;
    ensure_eq!(clients.len(), 1, "client operations of svc: {clients:?}");
    let servers = operations(backend, &tenant, "svc", Some(SpanKind::Server)).await?;
    ensure_eq!(servers.len(), 1, "server operations of svc: {servers:?}");
    ensure_eq!(
        operations(backend, &tenant, "nope", None).await?.len(),
        0,
        "operations of an unknown service"
    );
    Ok(())
}

/// Links from parent-child spans starting in the window, counted over writes, sorted by parent
/// then child; orphans and spans outside the window add nothing.
pub async fn dependencies(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = seed(
        backend,
        vec![
            span(1, 1, None, "hello", "root", t + 100, t + 200, false),
            span(1, 2, Some(1), "world", "call", t + 110, t + 120, false),
            span(1, 3, Some(2), "hello", "back", t + 111, t + 112, false),
            span(1, 4, Some(2), "hello", "back", t + 113, t + 114, false),
            span(1, 6, Some(9), "hello", "orphan", t + 117, t + 118, false),
            span(2, 1, None, "hello", "root", t + 5_000, t + 5_100, false),
            span(2, 2, Some(1), "world", "call", t + 5_010, t + 5_020, false),
        ],
    )
    .await?;
    // The third call arrives in a later write.
    let later = vec![span(
        1,
        5,
        Some(2),
        "hello",
        "back",
        t + 115,
        t + 116,
        false,
    )];
    write(backend, &tenant, later).await?;
    let window = DependencyQuery {
        start: UnixNanos(t),
        end: UnixNanos(t + 1_000),
    };
    let links = backend
        .dependencies
        .get_dependencies(&tenant, window)
        .await
        .context("get_dependencies failed")?;
    let link = |parent: &str, child: &str, call_count| DependencyLink {
        parent: parent.into(),
        child: child.into(),
        call_count,
    };
    ensure_eq!(
        links,
        [link("hello", "world", 1), link("world", "hello", 3)],
        "dependencies in the window"
    );
    Ok(())
}

/// Summaries equal [`TraceSummary::from_trace`] of the traces `find_traces` returns, in the
/// same order: roots (ties keep the first stored), orphans, errors, bounds; re-sent spans are
/// counted once only where writes are idempotent.
pub async fn summaries_equal_from_trace(
    backend: &Backend,
    context: &CheckContext,
) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = Tenant::new("summaries-over-writes");
    let first = vec![
        span(1, 1, None, "svc-b", "late-root", t + 200, t + 300, false),
        span(1, 2, None, "svc-a", "root", t + 100, t + 400, false),
        span(1, 3, Some(2), "svc-b", "child", t + 150, t + 250, true),
    ];
    let second = vec![
        span(1, 4, Some(9), "svc-a", "orphan", t + 120, t + 130, false),
        span(1, 5, Some(4), "svc-c", "grandchild", t + 121, t + 122, true),
        // Identical to a span of the first write: a re-send.
        span(1, 3, Some(2), "svc-b", "child", t + 150, t + 250, true),
        // Same ID and start as the root: a tie the stored order decides.
        span(1, 6, None, "svc-c", "tied-root", t + 100, t + 101, false),
    ];
    write(backend, &tenant, first).await?;
    write(backend, &tenant, second.clone()).await?;
    // A re-sent batch.
    write(backend, &tenant, second).await?;
    write(
        backend,
        &tenant,
        vec![span(2, 1, None, "x", "solo", t + 10, t + 20, false)],
    )
    .await?;
    let query = TraceQuery::all(depth(10));
    let found = summaries(backend, &tenant, query.clone()).await?;
    let traces = find(backend, &tenant, query).await?;
    let expected: Vec<TraceSummary> = traces.iter().map(TraceSummary::from_trace).collect();
    ensure_eq!(found, expected, "summaries vs from_trace of find_traces");
    ensure_eq!(found.len(), 2, "summaries");
    // Idempotent: 6 distinct spans, 2 errors. Otherwise every copy counts: 3 + 4 + 4 spans.
    let (spans, errors, orphans) = if context.idempotent_writes() {
        (6, 2, 1)
    } else {
        (11, 5, 2)
    };
    ensure_eq!(found[0].span_count, spans, "span count");
    ensure_eq!(found[0].error_span_count, errors, "error span count");
    ensure_eq!(found[0].orphan_span_count, orphans, "orphan span count");
    ensure_eq!(found[0].min_start, UnixNanos(t + 100), "min start");
    ensure_eq!(found[0].max_end, UnixNanos(t + 400), "max end");

    let tenant = Tenant::new("summaries-in-one-write");
    let spans = vec![
        span(1, 1, None, "svc-b", "late-root", t + 200, t + 300, false),
        span(1, 2, None, "svc-a", "root", t + 100, t + 400, false),
        span(1, 3, Some(2), "svc-b", "child", t + 150, t + 250, true),
        span(1, 4, Some(9), "svc-a", "orphan", t + 120, t + 130, false),
        span(2, 1, None, "first", "a", t + 100, t + 200, false),
        span(2, 2, None, "second", "b", t + 100, t + 200, false),
        span(2, 1, None, "first", "a", t + 100, t + 201, true),
    ];
    write(backend, &tenant, spans).await?;
    let query = TraceQuery::all(depth(10));
    let found = summaries(backend, &tenant, query.clone()).await?;
    let traces = find(backend, &tenant, query).await?;
    let expected: Vec<TraceSummary> = traces.iter().map(TraceSummary::from_trace).collect();
    ensure_eq!(found, expected, "summaries vs from_trace of find_traces");
    ensure_eq!(found.len(), 2, "summaries");
    ensure_eq!(found[0].root_operation_name, "root", "root operation");
    ensure_eq!(found[0].orphan_span_count, 1, "orphan span count");
    if context.span_order() == SpanOrder::AsWritten {
        ensure_eq!(
            found[1].root_service_name,
            "first",
            "root service: ties keep the first stored"
        );
    }
    Ok(())
}
