//! Small span builders for unit tests of this crate and of backends.

use std::sync::Arc;

use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, Status, status::StatusCode};

use crate::ids::TraceId;
use crate::model::{Resource, Scope, Span, Trace};

/// An OTLP resource with just a `service.name`.
pub fn otlp_resource(service: &str) -> OtlpResource {
    OtlpResource {
        attributes: vec![KeyValue {
            key: crate::model::SERVICE_NAME_KEY.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(service.into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A model resource with just a `service.name`.
pub fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource::new(otlp_resource(service), String::new()))
}

/// A span with trace ID `[trace; 16]`, span ID `[0,…,0,span]` and optional parent
/// `[0,…,0,parent]`.
#[allow(clippy::too_many_arguments)]
pub fn span(
    trace: u8,
    span: u8,
    parent: Option<u8>,
    service: &str,
    name: &str,
    start: u64,
    end: u64,
    error: bool,
) -> Span {
    let otlp = OtlpSpan {
        trace_id: vec![trace; 16],
        span_id: vec![0, 0, 0, 0, 0, 0, 0, span],
        parent_span_id: parent
            .map(|parent| vec![0, 0, 0, 0, 0, 0, 0, parent])
            .unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status: error.then(|| Status {
            code: StatusCode::Error as i32,
            message: String::new(),
        }),
        ..Default::default()
    };
    match Span::new(resource(service), Arc::new(Scope::default()), otlp) {
        Ok(span) => span,
        Err(error) => panic!("test span is invalid: {error}"),
    }
}

/// A trace from spans that all carry the first span's trace ID.
pub fn trace_of(spans: Vec<Span>) -> Trace {
    let trace_id = spans
        .first()
        .map_or(TraceId([1; 16]), |first| first.trace_id());
    Trace { trace_id, spans }
}
