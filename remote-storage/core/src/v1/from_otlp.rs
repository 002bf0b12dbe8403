//! OTLP → v1, for reads: the stored OTLP spans as Jaeger's v1 model, translated as Jaeger's
//! `ProtoFromTraces` does (see the [module docs](super) for what v1 cannot carry).

use std::sync::Arc;

use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::{
    ResourceSpans, Span as OtlpSpan, span::Event, span::Link, span::SpanKind, status::StatusCode,
};
use prost_types::Duration as ProtoDuration;

use super::{
    ERROR_TAG, EVENT_NAME_FIELD, FLAG_SAMPLED, OTLP_FLAG_SAMPLED, REF_TYPE_ATTRIBUTE,
    REF_TYPE_CHILD_OF, RESOURCE_NO_SERVICE_NAME, SCOPE_NAME_TAG, SCOPE_VERSION_TAG, SPAN_KIND_TAG,
    STATUS_CODE_TAG, STATUS_DESCRIPTION_TAG, TRACE_STATE_TAG, WARNINGS_ATTRIBUTE,
};
use crate::attribute::{any_value_text, attribute_value};
use crate::model::{Resource, SERVICE_NAME_KEY, Span, span_kind_name};
use crate::time::UnixNanos;

/// The v1 process of an OTLP resource: `service.name` becomes the service name (a non-string
/// one reads as `""`), every other attribute a process tag, in order. A resource without any
/// attribute is Jaeger's `OTLPResourceNoServiceName`.
pub fn process_from_resource(resource: &OtlpResource) -> v1::Process {
    if resource.attributes.is_empty() {
        return v1::Process {
            service_name: RESOURCE_NO_SERVICE_NAME.to_owned(),
            tags: Vec::new(),
        };
    }
    let mut service_name = String::new();
    let mut tags = Vec::with_capacity(resource.attributes.len());
    for attribute in &resource.attributes {
        if attribute.key == SERVICE_NAME_KEY {
            if let Some(any_value::Value::StringValue(name)) = attribute_value(attribute) {
                service_name.clone_from(name);
            }
            continue;
        }
        tags.push(tag_from_attribute(attribute));
    }
    v1::Process { service_name, tags }
}

/// One span in the v1 model, with `process` (normally [`process_from_resource`] of its
/// resource) copied into it, as every v1 span carries its own process.
pub fn span_to_v1(
    process: &v1::Process,
    scope: &InstrumentationScope,
    span: &OtlpSpan,
) -> v1::Span {
    let (tags, warnings) = span_tags(scope, span);
    v1::Span {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        operation_name: span.name.clone(),
        references: references(span),
        flags: if span.flags & OTLP_FLAG_SAMPLED != 0 {
            FLAG_SAMPLED
        } else {
            0
        },
        start_time: Some(UnixNanos(span.start_time_unix_nano).to_proto()),
        duration: Some(duration(span.start_time_unix_nano, span.end_time_unix_nano)),
        tags,
        logs: span.events.iter().map(log_from_event).collect(),
        process: Some(process.clone()),
        process_id: String::new(),
        warnings,
    }
}

/// Stored spans in the v1 model, in order (see [`V1Spans`]).
pub fn spans_to_v1<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Vec<v1::Span> {
    V1Spans::new(spans).collect()
}

/// Stored spans translated one by one, lazily; the process of a resource is built once and
/// reused by the consecutive spans that share that resource.
pub struct V1Spans<'a, I> {
    spans: I,
    process: Option<(&'a Arc<Resource>, v1::Process)>,
}

impl<'a, I: Iterator<Item = &'a Span>> V1Spans<'a, I> {
    /// Translates `spans`.
    pub fn new(spans: impl IntoIterator<IntoIter = I>) -> Self {
        Self {
            spans: spans.into_iter(),
            process: None,
        }
    }
}

impl<'a, I: Iterator<Item = &'a Span>> Iterator for V1Spans<'a, I> {
    type Item = v1::Span;

    fn next(&mut self) -> Option<v1::Span> {
        let span = self.spans.next()?;
        let resource = span.resource();
        let reusable = self
            .process
            .as_ref()
            .is_some_and(|(current, _)| Arc::ptr_eq(current, resource));
        if !reusable {
            self.process = Some((resource, process_from_resource(resource.otlp())));
        }
        let (_, process) = self.process.as_ref()?;
        Some(span_to_v1(process, span.scope().otlp(), span.otlp()))
    }
}

/// OTLP resource groups in the v1 model, in order, as a v1 client sees them. A resource without
/// attributes and without scope groups yields nothing.
pub fn resource_spans_to_v1(resource_spans: &[ResourceSpans]) -> Vec<v1::Span> {
    let default_resource = OtlpResource::default();
    let default_scope = InstrumentationScope::default();
    let mut converted = Vec::new();
    for group in resource_spans {
        let resource = group.resource.as_ref().unwrap_or(&default_resource);
        let process = process_from_resource(resource);
        for scope_group in &group.scope_spans {
            let scope = scope_group.scope.as_ref().unwrap_or(&default_scope);
            for span in &scope_group.spans {
                converted.push(span_to_v1(&process, scope, span));
            }
        }
    }
    converted
}

/// A typed v1 tag for an OTLP attribute: strings, booleans, integers, doubles and bytes keep
/// their type; arrays and maps become their JSON text; an empty value becomes `""`.
pub fn tag_from_attribute(attribute: &KeyValue) -> v1::KeyValue {
    tag_from_value(&attribute.key, attribute.value.as_ref())
}

fn tag_from_value(key: &str, value: Option<&AnyValue>) -> v1::KeyValue {
    let mut tag = v1::KeyValue {
        key: key.to_owned(),
        ..Default::default()
    };
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::BoolValue(flag)) => {
            tag.v_type = v1::ValueType::Bool.into();
            tag.v_bool = *flag;
        }
        Some(any_value::Value::IntValue(number)) => {
            tag.v_type = v1::ValueType::Int64.into();
            tag.v_int64 = *number;
        }
        Some(any_value::Value::DoubleValue(number)) => {
            tag.v_type = v1::ValueType::Float64.into();
            tag.v_float64 = *number;
        }
        Some(any_value::Value::BytesValue(bytes)) => {
            tag.v_type = v1::ValueType::Binary.into();
            tag.v_binary.clone_from(bytes);
        }
        Some(any_value::Value::StringValue(text)) => {
            tag.v_type = v1::ValueType::String.into();
            tag.v_str.clone_from(text);
        }
        // Arrays, maps and empty values.
        _ => {
            tag.v_type = v1::ValueType::String.into();
            tag.v_str = any_value_text(value).into_owned();
        }
    }
    tag
}

fn string_tag(key: &str, text: &str) -> v1::KeyValue {
    v1::KeyValue {
        key: key.to_owned(),
        v_type: v1::ValueType::String.into(),
        v_str: text.to_owned(),
        ..Default::default()
    }
}

/// The span's tags in Jaeger's order (scope, attributes, kind, status code, error, status
/// message, trace state) and the warnings taken out of `@jaeger@warnings`.
fn span_tags(scope: &InstrumentationScope, span: &OtlpSpan) -> (Vec<v1::KeyValue>, Vec<String>) {
    let mut tags = Vec::with_capacity(span.attributes.len() + 4);
    if !scope.name.is_empty() {
        tags.push(string_tag(SCOPE_NAME_TAG, &scope.name));
    }
    if !scope.version.is_empty() {
        tags.push(string_tag(SCOPE_VERSION_TAG, &scope.version));
    }
    let mut warnings = Vec::new();
    for attribute in &span.attributes {
        if attribute.key == WARNINGS_ATTRIBUTE
            && let Some(any_value::Value::ArrayValue(list)) = attribute_value(attribute)
        {
            warnings.extend(
                list.values
                    .iter()
                    .map(|item| any_value_text(Some(item)).into_owned()),
            );
            continue;
        }
        tags.push(tag_from_attribute(attribute));
    }
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    if kind != SpanKind::Unspecified {
        tags.push(string_tag(SPAN_KIND_TAG, span_kind_name(kind)));
    }
    let status = span.status.as_ref();
    match status.and_then(|status| StatusCode::try_from(status.code).ok()) {
        Some(StatusCode::Ok) => tags.push(string_tag(STATUS_CODE_TAG, "OK")),
        Some(StatusCode::Error) => {
            tags.push(string_tag(STATUS_CODE_TAG, "ERROR"));
            tags.push(v1::KeyValue {
                key: ERROR_TAG.to_owned(),
                v_type: v1::ValueType::Bool.into(),
                v_bool: true,
                ..Default::default()
            });
        }
        Some(StatusCode::Unset) | None => {}
    }
    if let Some(status) = status
        && !status.message.is_empty()
    {
        tags.push(string_tag(STATUS_DESCRIPTION_TAG, &status.message));
    }
    if !span.trace_state.is_empty() {
        tags.push(string_tag(TRACE_STATE_TAG, &span.trace_state));
    }
    (tags, warnings)
}

/// The parent as the first reference (CHILD_OF), then one reference per link: CHILD_OF when
/// the link says `opentracing.ref_type = child_of`, else FOLLOWS_FROM. A link to the parent
/// itself only sets the first reference's type.
fn references(span: &OtlpSpan) -> Vec<v1::SpanRef> {
    // An empty or all-zero parent ID means no parent, as pdata reads it.
    let has_parent = span.parent_span_id.iter().any(|byte| *byte != 0);
    let mut references = Vec::with_capacity(span.links.len() + usize::from(has_parent));
    if has_parent {
        references.push(v1::SpanRef {
            trace_id: span.trace_id.clone(),
            span_id: span.parent_span_id.clone(),
            ref_type: v1::SpanRefType::ChildOf.into(),
        });
    }
    for link in &span.links {
        let ref_type = ref_type_of(link);
        if has_parent
            && link.trace_id == span.trace_id
            && link.span_id == span.parent_span_id
            && let Some(parent) = references.first_mut()
        {
            parent.ref_type = ref_type.into();
            continue;
        }
        references.push(v1::SpanRef {
            trace_id: link.trace_id.clone(),
            span_id: link.span_id.clone(),
            ref_type: ref_type.into(),
        });
    }
    references
}

fn ref_type_of(link: &Link) -> v1::SpanRefType {
    let child_of = link.attributes.iter().any(|attribute| {
        attribute.key == REF_TYPE_ATTRIBUTE
            && matches!(attribute_value(attribute), Some(any_value::Value::StringValue(text)) if text == REF_TYPE_CHILD_OF)
    });
    if child_of {
        v1::SpanRefType::ChildOf
    } else {
        v1::SpanRefType::FollowsFrom
    }
}

/// A log: the event's time, its name as the `event` field first (unless the name is empty or an
/// attribute is already called `event`), then its attributes.
fn log_from_event(event: &Event) -> v1::Log {
    let mut fields = Vec::with_capacity(event.attributes.len() + 1);
    let has_event_attribute = event
        .attributes
        .iter()
        .any(|attribute| attribute.key == EVENT_NAME_FIELD);
    if !event.name.is_empty() && !has_event_attribute {
        fields.push(string_tag(EVENT_NAME_FIELD, &event.name));
    }
    fields.extend(event.attributes.iter().map(tag_from_attribute));
    v1::Log {
        timestamp: Some(UnixNanos(event.time_unix_nano).to_proto()),
        fields,
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `end − start`, negative when the end precedes the start (as Go's `time.Sub`).
fn duration(start: u64, end: u64) -> ProtoDuration {
    let (magnitude, negative) = if end >= start {
        (end - start, false)
    } else {
        (start - end, true)
    };
    let seconds = i64::try_from(magnitude / NANOS_PER_SECOND).unwrap_or(i64::MAX);
    let nanos = i32::try_from(magnitude % NANOS_PER_SECOND).unwrap_or(0);
    if negative {
        ProtoDuration {
            seconds: -seconds,
            nanos: -nanos,
        }
    } else {
        ProtoDuration { seconds, nanos }
    }
}

#[cfg(test)]
mod tests {
    use jaeger_remote_proto::otlp::common::{ArrayValue, KeyValueList};
    use jaeger_remote_proto::otlp::trace::Status;
    use prost_types::Timestamp;

    use super::*;

    fn attribute(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        attribute(key, any_value::Value::StringValue(value.to_owned()))
    }

    fn keys(tags: &[v1::KeyValue]) -> Vec<&str> {
        tags.iter().map(|tag| tag.key.as_str()).collect()
    }

    fn base_span() -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "op".into(),
            start_time_unix_nano: 1_500_000_000_123_456_789,
            end_time_unix_nano: 1_500_000_002_123_456_790,
            ..Default::default()
        }
    }

    #[test]
    fn processes_follow_the_resource() {
        let resource = OtlpResource {
            attributes: vec![
                text("host.name", "h1"),
                text(SERVICE_NAME_KEY, "svc"),
                attribute("pid", any_value::Value::IntValue(42)),
            ],
            ..Default::default()
        };
        let process = process_from_resource(&resource);
        assert_eq!(process.service_name, "svc");
        assert_eq!(keys(&process.tags), ["host.name", "pid"]);
        assert_eq!(process.tags[1].v_type, i32::from(v1::ValueType::Int64));
        assert_eq!(process.tags[1].v_int64, 42);

        let empty = process_from_resource(&OtlpResource::default());
        assert_eq!(empty.service_name, RESOURCE_NO_SERVICE_NAME);
        let typed_name = process_from_resource(&OtlpResource {
            attributes: vec![attribute(SERVICE_NAME_KEY, any_value::Value::IntValue(3))],
            ..Default::default()
        });
        assert_eq!(typed_name.service_name, "");
        assert!(typed_name.tags.is_empty());
    }

    #[test]
    fn tags_come_in_jaegers_order_with_their_types() {
        let mut span = base_span();
        span.attributes = vec![
            attribute("n", any_value::Value::IntValue(7)),
            attribute("d", any_value::Value::DoubleValue(72.5)),
            attribute("b", any_value::Value::BoolValue(true)),
            attribute("raw", any_value::Value::BytesValue(vec![0, 1])),
            attribute(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::IntValue(1)),
                    }],
                }),
            ),
            attribute(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![text("k", "v")],
                }),
            ),
            KeyValue {
                key: "empty".into(),
                value: None,
                ..Default::default()
            },
        ];
        span.kind = SpanKind::Server.into();
        span.status = Some(Status {
            code: StatusCode::Error.into(),
            message: "boom".into(),
        });
        span.trace_state = "k=v".into();
        let scope = InstrumentationScope {
            name: "lib".into(),
            version: "1.2".into(),
            ..Default::default()
        };
        let converted = span_to_v1(&v1::Process::default(), &scope, &span);
        assert_eq!(
            keys(&converted.tags),
            [
                SCOPE_NAME_TAG,
                SCOPE_VERSION_TAG,
                "n",
                "d",
                "b",
                "raw",
                "list",
                "map",
                "empty",
                SPAN_KIND_TAG,
                STATUS_CODE_TAG,
                ERROR_TAG,
                STATUS_DESCRIPTION_TAG,
                TRACE_STATE_TAG
            ]
        );
        let tag = |key: &str| {
            converted
                .tags
                .iter()
                .find(|tag| tag.key == key)
                .unwrap()
                .clone()
        };
        assert_eq!(tag("d").v_float64, 72.5);
        assert_eq!(tag("raw").v_type, i32::from(v1::ValueType::Binary));
        assert_eq!(tag("list").v_str, "[1]");
        assert_eq!(tag("map").v_str, r#"{"k":"v"}"#);
        assert_eq!(tag("empty").v_type, i32::from(v1::ValueType::String));
        assert_eq!(tag("empty").v_str, "");
        assert_eq!(tag(SPAN_KIND_TAG).v_str, "server");
        assert_eq!(tag(STATUS_CODE_TAG).v_str, "ERROR");
        assert!(tag(ERROR_TAG).v_bool);
        assert_eq!(tag(STATUS_DESCRIPTION_TAG).v_str, "boom");
        assert_eq!(tag(TRACE_STATE_TAG).v_str, "k=v");
        assert_eq!(
            converted.start_time,
            Some(Timestamp {
                seconds: 1_500_000_000,
                nanos: 123_456_789
            })
        );
        assert_eq!(
            converted.duration,
            Some(ProtoDuration {
                seconds: 2,
                nanos: 1
            })
        );
    }

    #[test]
    fn ok_and_unset_statuses() {
        let mut span = base_span();
        span.status = Some(Status {
            code: StatusCode::Ok.into(),
            message: String::new(),
        });
        let ok = span_to_v1(
            &v1::Process::default(),
            &InstrumentationScope::default(),
            &span,
        );
        assert_eq!(keys(&ok.tags), [STATUS_CODE_TAG]);
        span.status = Some(Status {
            code: StatusCode::Unset.into(),
            message: "why".into(),
        });
        let unset = span_to_v1(
            &v1::Process::default(),
            &InstrumentationScope::default(),
            &span,
        );
        assert_eq!(keys(&unset.tags), [STATUS_DESCRIPTION_TAG]);
    }

    #[test]
    fn parent_and_links_become_references() {
        let mut span = base_span();
        span.parent_span_id = vec![9; 8];
        span.links = vec![
            Link {
                trace_id: vec![1; 16],
                span_id: vec![9; 8],
                attributes: vec![text(REF_TYPE_ATTRIBUTE, "follows_from")],
                ..Default::default()
            },
            Link {
                trace_id: vec![5; 16],
                span_id: vec![6; 8],
                attributes: vec![text(REF_TYPE_ATTRIBUTE, REF_TYPE_CHILD_OF)],
                ..Default::default()
            },
            Link {
                trace_id: vec![5; 16],
                span_id: vec![7; 8],
                ..Default::default()
            },
        ];
        let converted = span_to_v1(
            &v1::Process::default(),
            &InstrumentationScope::default(),
            &span,
        );
        let references: Vec<(Vec<u8>, Vec<u8>, i32)> = converted
            .references
            .into_iter()
            .map(|reference| (reference.trace_id, reference.span_id, reference.ref_type))
            .collect();
        let follows = i32::from(v1::SpanRefType::FollowsFrom);
        let child = i32::from(v1::SpanRefType::ChildOf);
        assert_eq!(
            references,
            [
                (vec![1; 16], vec![9; 8], follows),
                (vec![5; 16], vec![6; 8], child),
                (vec![5; 16], vec![7; 8], follows),
            ]
        );
    }

    #[test]
    fn events_become_logs_and_warnings_leave_the_tags() {
        let mut span = base_span();
        span.events = vec![
            Event {
                time_unix_nano: 1_500_000_000_000_000_001,
                name: "retry".into(),
                attributes: vec![text("attempt", "2")],
                ..Default::default()
            },
            Event {
                time_unix_nano: 1_500_000_000_000_000_002,
                name: "shadowed".into(),
                attributes: vec![text(EVENT_NAME_FIELD, "explicit")],
                ..Default::default()
            },
        ];
        span.attributes = vec![attribute(
            WARNINGS_ATTRIBUTE,
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::StringValue("clock skew".into())),
                }],
            }),
        )];
        let converted = span_to_v1(
            &v1::Process::default(),
            &InstrumentationScope::default(),
            &span,
        );
        assert!(converted.tags.is_empty());
        assert_eq!(converted.warnings, ["clock skew"]);
        assert_eq!(
            keys(&converted.logs[0].fields),
            [EVENT_NAME_FIELD, "attempt"]
        );
        assert_eq!(converted.logs[0].fields[0].v_str, "retry");
        assert_eq!(keys(&converted.logs[1].fields), [EVENT_NAME_FIELD]);
        assert_eq!(converted.logs[1].fields[0].v_str, "explicit");
        assert_eq!(
            converted.logs[0].timestamp,
            Some(Timestamp {
                seconds: 1_500_000_000,
                nanos: 1
            })
        );
    }

    #[test]
    fn negative_durations_keep_their_sign() {
        assert_eq!(
            duration(2_500_000_000, 1_000_000_000),
            ProtoDuration {
                seconds: -1,
                nanos: -500_000_000
            }
        );
    }

    #[test]
    fn stored_spans_share_one_process_per_resource_run() {
        let spans = [
            crate::testing::span(1, 1, None, "a", "x", 1, 2, false),
            crate::testing::span(1, 2, Some(1), "b", "y", 1, 3, true),
        ];
        let converted = spans_to_v1(&spans);
        let services: Vec<&str> = converted
            .iter()
            .map(|span| span.process.as_ref().unwrap().service_name.as_str())
            .collect();
        assert_eq!(services, ["a", "b"]);
        assert_eq!(converted[1].references.len(), 1);
    }
}
