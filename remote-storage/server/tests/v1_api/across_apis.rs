//! Data written through one API reads back through the other.

use crate::harness::*;

#[tokio::test]
async fn otlp_exports_read_through_v1_with_jaeger_translation() {
    let server = start().await;
    let start = recent_start();
    let mut span = otlp_span(0x71, 2, Some(1), "reserve", start);
    span.kind = SpanKind::Server.into();
    span.attributes = vec![
        otlp_kv("db.rows", any_value::Value::IntValue(5)),
        warnings_attribute(&["w1"]),
    ];
    span.status = Some(OtlpStatus {
        code: StatusCode::Error.into(),
        message: "boom".into(),
    });
    span.trace_state = "vendor=abc".into();
    span.events = vec![Event {
        time_unix_nano: start + 500,
        name: "cache-miss".into(),
        attributes: vec![otlp_str("key", "sku-1")],
        ..Default::default()
    }];
    span.links = vec![Link {
        trace_id: trace_id(0x72),
        span_id: span_id(9),
        ..Default::default()
    }];
    let group = ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                otlp_str("service.name", "inventory"),
                otlp_str("host.name", "node-1"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "io.inventory".into(),
                version: "3.1".into(),
                ..Default::default()
            }),
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    };
    export(server.grpc_addr, vec![group], None).await;

    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x71)).await.unwrap());
    let expected = model::Span {
        trace_id: trace_id(0x71),
        span_id: span_id(2),
        operation_name: "reserve".into(),
        references: vec![
            reference(0x71, 1, model::SpanRefType::ChildOf),
            reference(0x72, 9, model::SpanRefType::FollowsFrom),
        ],
        flags: 0,
        start_time: Some(timestamp(start)),
        duration: Some(duration(1_000_000)),
        // Jaeger's order: scope, attributes, kind, status code, error, message, trace state.
        tags: vec![
            str_tag("otel.scope.name", "io.inventory"),
            str_tag("otel.scope.version", "3.1"),
            int_tag("db.rows", 5),
            str_tag("span.kind", "server"),
            str_tag("otel.status_code", "ERROR"),
            bool_tag("error", true),
            str_tag("otel.status_description", "boom"),
            str_tag("w3c.tracestate", "vendor=abc"),
        ],
        logs: vec![model::Log {
            timestamp: Some(timestamp(start + 500)),
            fields: vec![str_tag("event", "cache-miss"), str_tag("key", "sku-1")],
        }],
        process: Some(model::Process {
            service_name: "inventory".into(),
            tags: vec![str_tag("host.name", "node-1")],
        }),
        process_id: String::new(),
        warnings: vec!["w1".into()],
    };
    assert_eq!(spans, [expected]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_writes_read_through_v2_as_otlp() {
    let server = start().await;
    let start = recent_start();
    let span = model::Span {
        trace_id: trace_id(0x73),
        span_id: span_id(2),
        operation_name: "charge".into(),
        references: vec![
            reference(0x73, 1, model::SpanRefType::ChildOf),
            reference(0x74, 9, model::SpanRefType::FollowsFrom),
        ],
        start_time: Some(timestamp(start)),
        duration: Some(duration(2_000_000)),
        tags: vec![
            str_tag("otel.scope.name", "io.payments"),
            str_tag("otel.scope.version", "1.2.0"),
            str_tag("http.method", "POST"),
            str_tag("span.kind", "client"),
            bool_tag("error", true),
            str_tag("otel.status_description", "card declined"),
            str_tag("w3c.tracestate", "vendor=abc"),
        ],
        logs: vec![model::Log {
            timestamp: Some(timestamp(start + 100)),
            fields: vec![str_tag("event", "retry"), int_tag("attempt", 2)],
        }],
        process: Some(model::Process {
            service_name: "payments".into(),
            tags: vec![str_tag("region", "eu")],
        }),
        warnings: vec!["clock skew".into()],
        ..Default::default()
    };
    write_spans(server.grpc_addr, [span]).await;

    let chunks = v2_get_trace(server.grpc_addr, trace_id(0x73), None).await;
    let spans = otlp_spans(&chunks);
    assert_eq!(spans.len(), 1);
    let (resource, scope, span) = spans[0];
    assert_eq!(
        resource.attributes,
        [
            otlp_str("service.name", "payments"),
            otlp_str("region", "eu")
        ]
    );
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("io.payments", "1.2.0")
    );
    assert_eq!(span.kind, i32::from(SpanKind::Client));
    assert_eq!(
        span.status,
        Some(OtlpStatus {
            code: StatusCode::Error.into(),
            message: "card declined".into(),
        })
    );
    assert_eq!(span.trace_state, "vendor=abc");
    assert_eq!(span.parent_span_id, span_id(1));
    assert_eq!(span.start_time_unix_nano, start);
    assert_eq!(span.end_time_unix_nano, start + 2_000_000);
    assert_eq!(
        span.links,
        [Link {
            trace_id: trace_id(0x74),
            span_id: span_id(9),
            attributes: vec![otlp_str("opentracing.ref_type", "follows_from")],
            ..Default::default()
        }]
    );
    assert_eq!(
        span.events,
        [Event {
            time_unix_nano: start + 100,
            name: "retry".into(),
            attributes: vec![otlp_kv("attempt", any_value::Value::IntValue(2))],
            ..Default::default()
        }]
    );
    // The folded tags are gone; the warnings became Jaeger's list attribute.
    assert_eq!(
        span.attributes,
        [
            otlp_str("http.method", "POST"),
            warnings_attribute(&["clock skew"]),
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_and_v2_dependencies_agree() {
    let server = start().await;
    let start = recent_start();
    // v1: frontend → backend → db, and frontend → backend again; OTLP: backend → cache.
    write_spans(
        server.grpc_addr,
        [
            v1_span(0x75, 1, "frontend", "GET /", start),
            child_span(0x75, 2, 1, "backend", "load", start + 1),
            child_span(0x75, 3, 2, "db", "select", start + 2),
            v1_span(0x76, 1, "frontend", "GET /", start),
            child_span(0x76, 2, 1, "backend", "load", start + 1),
        ],
    )
    .await;
    export(
        server.grpc_addr,
        vec![
            resource_group("backend", vec![otlp_span(0x77, 1, None, "warm", start)]),
            resource_group("cache", vec![otlp_span(0x77, 2, Some(1), "get", start + 1)]),
        ],
        None,
    )
    .await;

    let (start_time, end_time) = v2_window(start);
    let mut v1_client = DependenciesReaderPluginClient::new(channel(server.grpc_addr).await);
    let mut from_v1: Vec<(String, String, u64)> = v1_client
        .get_dependencies(GetDependenciesRequest {
            start_time,
            end_time,
        })
        .await
        .unwrap()
        .into_inner()
        .dependencies
        .into_iter()
        .map(|link| (link.parent, link.child, link.call_count))
        .collect();
    from_v1.sort();
    let mut v2_client = DependencyReaderClient::new(channel(server.grpc_addr).await);
    let mut from_v2: Vec<(String, String, u64)> = v2_client
        .get_dependencies(v2::GetDependenciesRequest {
            start_time,
            end_time,
        })
        .await
        .unwrap()
        .into_inner()
        .dependencies
        .into_iter()
        .map(|link| (link.parent, link.child, link.call_count))
        .collect();
    from_v2.sort();
    assert_eq!(
        from_v1,
        [
            ("backend".to_owned(), "cache".to_owned(), 1),
            ("backend".to_owned(), "db".to_owned(), 1),
            ("frontend".to_owned(), "backend".to_owned(), 2),
        ]
    );
    assert_eq!(from_v1, from_v2);

    assert_refused(
        v1_client
            .get_dependencies(GetDependenciesRequest::default())
            .await,
        Code::InvalidArgument,
        &[],
    );
    server.stop().await.unwrap();
}
