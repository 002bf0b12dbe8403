//! A span using every OTLP field comes back exactly, fetched or found.

use anyhow::Context as _;
use remote_storage_core::convert::{resource_spans_from_spans, spans_from_resource_spans};
use remote_storage_core::proto::otlp::common::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span, status::StatusCode,
};
use remote_storage_core::{Backend, Span, Tenant, Trace, TraceId, TraceQuery};

use super::{
    CheckContext, SpanOrder, depth, ensure_eq, find, get_ids, kv, recent_base, with_attribute,
    write,
};

/// Every attribute type, keys prefixed with `prefix`.
fn every_value(prefix: &str) -> Vec<KeyValue> {
    vec![
        kv(
            &format!("{prefix}.string"),
            Value::StringValue("text ✓".into()),
        ),
        kv(&format!("{prefix}.bool"), Value::BoolValue(false)),
        kv(&format!("{prefix}.int"), Value::IntValue(-42)),
        kv(&format!("{prefix}.double"), Value::DoubleValue(1e-7)),
        kv(
            &format!("{prefix}.bytes"),
            Value::BytesValue(vec![0, 255, 7]),
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
                    AnyValue { value: None },
                ],
            }),
        ),
        kv(
            &format!("{prefix}.map"),
            Value::KvlistValue(KeyValueList {
                values: vec![kv("nested", Value::DoubleValue(2.5))],
            }),
        ),
        KeyValue {
            key: format!("{prefix}.empty"),
            value: None,
            ..Default::default()
        },
    ]
}

/// One resource and scope using every field (schema URLs, entity refs, dropped counts), with a
/// span using every field and every attribute type on every level, and its parent.
fn everything(now: u64) -> ResourceSpans {
    let mut resource_attributes = every_value("resource");
    resource_attributes.insert(0, kv("service.name", Value::StringValue("lossless".into())));
    let everything = OtlpSpan {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        trace_state: "vendor=value,other=1".into(),
        parent_span_id: (11..=18).collect(),
        flags: 0x301,
        name: "everything".into(),
        kind: span::SpanKind::Consumer as i32,
        // Odd nanoseconds: no rounding to microseconds.
        start_time_unix_nano: now + 1,
        end_time_unix_nano: now + 900_000_002,
        attributes: every_value("span"),
        dropped_attributes_count: 5,
        events: vec![
            span::Event {
                time_unix_nano: now + 500,
                name: "event-one".into(),
                attributes: every_value("event"),
                dropped_attributes_count: 6,
            },
            span::Event::default(),
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
            code: StatusCode::Error as i32,
        }),
    };
    let parent = OtlpSpan {
        trace_id: (1..=16).collect(),
        span_id: (11..=18).collect(),
        name: "parent".into(),
        start_time_unix_nano: now - 5,
        end_time_unix_nano: now + 2_000_000_000,
        ..Default::default()
    };
    ResourceSpans {
        resource: Some(OtlpResource {
            attributes: resource_attributes,
            dropped_attributes_count: 3,
            entity_refs: vec![EntityRef {
                schema_url: "https://entity".into(),
                r#type: "service".into(),
                id_keys: vec!["service.name".into()],
                description_keys: vec!["resource.string".into()],
            }],
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "io.example.lib".into(),
                version: "9.9.9".into(),
                attributes: every_value("scope"),
                dropped_attributes_count: 4,
            }),
            spans: vec![everything, parent],
            schema_url: "https://opentelemetry.io/schemas/1.25.0".into(),
        }],
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    }
}

/// The trace read back equals what was written: the OTLP messages regrouped, and each span with
/// its resource, scope and schema URLs.
/// With [`SpanOrder::Any`] the spans read back are first put in written order (by span ID).
fn same_as_written(
    read: &Trace,
    original: &ResourceSpans,
    written: &[Span],
    order: SpanOrder,
) -> anyhow::Result<()> {
    ensure_eq!(read.spans.len(), written.len(), "spans read back");
    let mut read = read.spans.clone();
    if order == SpanOrder::Any {
        read.sort_by_key(|span| {
            written
                .iter()
                .position(|w| w.otlp().span_id == span.otlp().span_id)
        });
    }
    for (read, written) in read.iter().zip(written) {
        ensure_eq!(read.otlp(), written.otlp(), "span {:?}", written.name());
        ensure_eq!(
            read.resource().otlp(),
            written.resource().otlp(),
            "resource"
        );
        ensure_eq!(
            read.resource().schema_url(),
            written.resource().schema_url(),
            "resource schema"
        );
        ensure_eq!(read.scope().otlp(), written.scope().otlp(), "scope");
        ensure_eq!(
            read.scope().schema_url(),
            written.scope().schema_url(),
            "scope schema"
        );
    }
    ensure_eq!(
        resource_spans_from_spans(&read),
        std::slice::from_ref(original),
        "OTLP messages read back"
    );
    Ok(())
}

/// A span using every OTLP field and every attribute type round-trips exactly through
/// `get_traces` and `find_traces` (map values are found by their JSON text).
pub async fn lossless_round_trip(backend: &Backend, context: &CheckContext) -> anyhow::Result<()> {
    let tenant = Tenant::new("lossless");
    let original = everything(recent_base());
    let decoded = spans_from_resource_spans(vec![original.clone()]);
    ensure_eq!(decoded.rejected, 0, "rejected spans");
    let written = decoded.spans;
    write(backend, &tenant, written.clone()).await?;
    let trace_id = TraceId((1..=16).collect::<Vec<u8>>().try_into().unwrap_or_default());
    let fetched = get_ids(backend, &tenant, [trace_id]).await?;
    ensure_eq!(fetched.len(), 1, "get_traces");
    same_as_written(&fetched[0], &original, &written, context.span_order())
        .context("get_traces")?;
    super::encoded_equal_decoded(backend, &tenant, &[trace_id])
        .await
        .context("get_encoded_traces")?;
    let query = with_attribute(TraceQuery::all(depth(1)), "event.map", r#"{"nested":2.5}"#);
    let searched = find(backend, &tenant, query).await?;
    ensure_eq!(searched.len(), 1, "map values are found by their JSON text");
    same_as_written(&searched[0], &original, &written, context.span_order())
        .context("find_traces")?;
    Ok(())
}
