//! The span model every backend stores and returns.
//!
//! A [`Span`] keeps the OTLP span message whole, so nothing the suite compares is lost, and shares
//! its resource and instrumentation scope with the other spans of the same OTLP group through
//! `Arc`s. IDs are validated when a span is built, so accessors never fail.

use std::sync::Arc;

use jaeger_remote_proto::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, span::SpanKind, status::StatusCode};

use crate::error::StoreError;
use crate::ids::{SpanId, TraceId};
use crate::time::UnixNanos;

/// The resource attribute that names a span's service.
pub const SERVICE_NAME_KEY: &str = "service.name";
/// Service name stored when a resource has no `service.name` (as Jaeger's sanitizer does).
pub const MISSING_SERVICE_NAME: &str = "missing-service-name";
/// Service name stored when `service.name` is the empty string.
pub const EMPTY_SERVICE_NAME: &str = "empty-service-name";
/// Service name stored when `service.name` is not a string.
pub const WRONG_TYPE_SERVICE_NAME: &str = "service-name-wrong-type";

/// The resource (process) a group of spans came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    otlp: OtlpResource,
    schema_url: String,
    service_name: String,
}

impl Resource {
    /// Wraps an OTLP resource. A missing, empty or non-string `service.name` is replaced by a
    /// placeholder name, as Jaeger's collector does before storage, so every span has a service.
    pub fn new(mut otlp: OtlpResource, schema_url: String) -> Self {
        let service_name = sanitize_service_name(&mut otlp.attributes);
        Self {
            otlp,
            schema_url,
            service_name,
        }
    }

    /// The OTLP resource message.
    pub fn otlp(&self) -> &OtlpResource {
        &self.otlp
    }

    /// The `ResourceSpans.schema_url` it arrived with.
    pub fn schema_url(&self) -> &str {
        &self.schema_url
    }

    /// The resource's `service.name`.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }
}

fn sanitize_service_name(attributes: &mut Vec<KeyValue>) -> String {
    let position = attributes
        .iter()
        .position(|attribute| attribute.key == SERVICE_NAME_KEY);
    let replacement = match position.and_then(|index| attributes.get(index)) {
        None => MISSING_SERVICE_NAME,
        Some(attribute) => match attribute
            .value
            .as_ref()
            .and_then(|value| value.value.as_ref())
        {
            Some(any_value::Value::StringValue(name)) if !name.is_empty() => return name.clone(),
            Some(any_value::Value::StringValue(_)) => EMPTY_SERVICE_NAME,
            _ => WRONG_TYPE_SERVICE_NAME,
        },
    };
    let value = Some(AnyValue {
        value: Some(any_value::Value::StringValue(replacement.to_owned())),
    });
    match position.and_then(|index| attributes.get_mut(index)) {
        Some(attribute) => attribute.value = value,
        None => attributes.push(KeyValue {
            key: SERVICE_NAME_KEY.to_owned(),
            value,
            ..Default::default()
        }),
    }
    replacement.to_owned()
}

/// The instrumentation scope a group of spans came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    otlp: InstrumentationScope,
    schema_url: String,
}

impl Scope {
    /// Wraps an OTLP instrumentation scope.
    pub fn new(otlp: InstrumentationScope, schema_url: String) -> Self {
        Self { otlp, schema_url }
    }

    /// The OTLP scope message.
    pub fn otlp(&self) -> &InstrumentationScope {
        &self.otlp
    }

    /// The `ScopeSpans.schema_url` it arrived with.
    pub fn schema_url(&self) -> &str {
        &self.schema_url
    }
}

/// One stored span with its resource and scope. Cloning is cheap (reference counts).
#[derive(Debug, Clone)]
pub struct Span {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    resource: Arc<Resource>,
    scope: Arc<Scope>,
    otlp: Arc<OtlpSpan>,
}

impl Span {
    /// Validates an OTLP span: 16-byte trace ID, 8-byte span ID, empty or 8-byte parent ID, and
    /// an end time not before the start time. Errors name the offending field.
    pub fn new(
        resource: Arc<Resource>,
        scope: Arc<Scope>,
        otlp: OtlpSpan,
    ) -> Result<Self, StoreError> {
        let trace_id = TraceId::from_bytes(&otlp.trace_id, "trace_id")?;
        let span_id = SpanId::from_bytes(&otlp.span_id, "span_id")?;
        let parent_span_id = SpanId::parent_from_bytes(&otlp.parent_span_id, "parent_span_id")?;
        if otlp.end_time_unix_nano < otlp.start_time_unix_nano {
            return Err(StoreError::invalid_argument(format!(
                "end_time_unix_nano ({}) is before start_time_unix_nano ({})",
                otlp.end_time_unix_nano, otlp.start_time_unix_nano
            )));
        }
        Ok(Self {
            trace_id,
            span_id,
            parent_span_id,
            resource,
            scope,
            otlp: Arc::new(otlp),
        })
    }

    /// The trace this span belongs to.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span's own ID (not unique: several spans may share one).
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The parent span's ID; `None` for a root span.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// The shared resource.
    pub fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }

    /// The shared instrumentation scope.
    pub fn scope(&self) -> &Arc<Scope> {
        &self.scope
    }

    /// The OTLP span message, exactly as written.
    pub fn otlp(&self) -> &OtlpSpan {
        &self.otlp
    }

    /// The resource's service name.
    pub fn service_name(&self) -> &str {
        self.resource.service_name()
    }

    /// The span (operation) name.
    pub fn name(&self) -> &str {
        &self.otlp.name
    }

    /// The span kind; unknown wire values read as unspecified.
    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.otlp.kind).unwrap_or(SpanKind::Unspecified)
    }

    /// Start time.
    pub fn start(&self) -> UnixNanos {
        UnixNanos(self.otlp.start_time_unix_nano)
    }

    /// End time (never before the start).
    pub fn end(&self) -> UnixNanos {
        UnixNanos(self.otlp.end_time_unix_nano)
    }

    /// End minus start, in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.otlp.end_time_unix_nano - self.otlp.start_time_unix_nano
    }

    /// The status code; absent or unknown reads as unset.
    pub fn status_code(&self) -> StatusCode {
        self.otlp
            .status
            .as_ref()
            .and_then(|status| StatusCode::try_from(status.code).ok())
            .unwrap_or(StatusCode::Unset)
    }

    /// Whether the span's status is ERROR.
    pub fn is_error(&self) -> bool {
        self.status_code() == StatusCode::Error
    }
}

/// The lower-case word Jaeger uses for a span kind; `""` for unspecified.
pub fn span_kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

/// Parses a span kind word case-insensitively (`""` is unspecified).
pub fn span_kind_from_name(name: &str) -> Option<SpanKind> {
    let kind = match name.to_ascii_lowercase().as_str() {
        "" | "unspecified" => SpanKind::Unspecified,
        "internal" => SpanKind::Internal,
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => return None,
    };
    Some(kind)
}

/// All stored spans of one trace.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The trace's ID; every span carries it.
    pub trace_id: TraceId,
    /// The spans, in storage order. Spans may share a span ID.
    pub spans: Vec<Span>,
}

/// A `{name, span_kind}` pair of a service, as GetOperations returns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    /// Span name.
    pub name: String,
    /// Lower-case span kind word, `""` for unspecified.
    pub span_kind: String,
}

/// A service-to-service call link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DependencyLink {
    /// Service of the calling (parent) span.
    pub parent: String,
    /// Service of the called (child) span.
    pub child: String,
    /// Number of child spans counted.
    pub call_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::find_attribute;

    fn string_value(text: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(text.to_owned())),
        })
    }

    #[test]
    fn missing_empty_and_wrong_type_service_names_get_placeholders() {
        let missing = Resource::new(OtlpResource::default(), String::new());
        assert_eq!(missing.service_name(), MISSING_SERVICE_NAME);
        assert_eq!(
            find_attribute(&missing.otlp().attributes, SERVICE_NAME_KEY)
                .and_then(|kv| kv.value.clone()),
            string_value(MISSING_SERVICE_NAME)
        );

        let empty = Resource::new(
            OtlpResource {
                attributes: vec![KeyValue {
                    key: SERVICE_NAME_KEY.into(),
                    value: string_value(""),
                    ..Default::default()
                }],
                ..Default::default()
            },
            String::new(),
        );
        assert_eq!(empty.service_name(), EMPTY_SERVICE_NAME);
        assert_eq!(empty.otlp().attributes.len(), 1);

        let wrong = Resource::new(
            OtlpResource {
                attributes: vec![KeyValue {
                    key: SERVICE_NAME_KEY.into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(3)),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            String::new(),
        );
        assert_eq!(wrong.service_name(), WRONG_TYPE_SERVICE_NAME);
    }

    #[test]
    fn span_rejects_end_before_start() {
        let resource = Arc::new(Resource::new(OtlpResource::default(), String::new()));
        let scope = Arc::new(Scope::default());
        let otlp = OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            start_time_unix_nano: 10,
            end_time_unix_nano: 5,
            ..Default::default()
        };
        let error = Span::new(resource, scope, otlp).unwrap_err();
        assert!(error.to_string().contains("end_time_unix_nano"));
    }

    #[test]
    fn span_kind_names_round_trip() {
        for kind in [
            SpanKind::Unspecified,
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ] {
            assert_eq!(span_kind_from_name(span_kind_name(kind)), Some(kind));
        }
        assert_eq!(span_kind_from_name("SERVER"), Some(SpanKind::Server));
        assert_eq!(span_kind_from_name("bogus"), None);
    }
}
