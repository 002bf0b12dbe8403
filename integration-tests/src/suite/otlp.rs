//! OTLP as the tests write and read it: attributes, plain spans and one-service resources for
//! the traces the tests make up, a resource's `service.name`, and traces described for failure
//! messages.

use std::collections::{BTreeMap, BTreeSet};

use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::span::SpanKind;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span};
use remote_storage_core::UnixNanos;

use crate::target::OtlpTrace;

pub(super) fn string_value(text: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(text.to_owned())),
    }
}

pub(super) fn string_attribute(key: &str, text: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(string_value(text)),
        ..Default::default()
    }
}

pub(super) fn plain_span(
    trace_id: [u8; 16],
    span_id: [u8; 8],
    name: &str,
    start: UnixNanos,
) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: name.to_owned(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start.0,
        end_time_unix_nano: start.saturating_add(1_000_000).0,
        ..Default::default()
    }
}

pub(super) fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string_attribute("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: None,
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// The resource's `service.name` as text (`""` when absent).
pub fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|attribute| attribute.key == "service.name")
        })
        .map(|attribute| {
            remote_storage_core::attribute::any_value_text(attribute.value.as_ref()).into_owned()
        })
        .unwrap_or_default()
}

pub(super) fn describe_traces(
    traces: &[OtlpTrace],
    fixtures: Option<(&BTreeMap<String, String>, &BTreeSet<String>)>,
) -> String {
    if traces.is_empty() {
        return "none".to_owned();
    }
    let mut parts = Vec::new();
    for trace in traces.iter().take(10) {
        let id = trace.trace_id_hex();
        let label = match fixtures.and_then(|(names, decoys)| {
            names.get(&id).map(|name| {
                if decoys.contains(name) {
                    format!("{name}, a decoy this query must NOT return")
                } else {
                    name.clone()
                }
            })
        }) {
            Some(name) => format!(" ({name})"),
            None => String::new(),
        };
        parts.push(format!("{id}{label}: {} span(s)", trace.span_count()));
    }
    if traces.len() > 10 {
        parts.push(format!("… {} more", traces.len() - 10));
    }
    parts.join("; ")
}
