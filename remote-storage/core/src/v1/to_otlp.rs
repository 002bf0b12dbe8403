//! v1 → OTLP, for writes: Jaeger v1 spans as the OTLP the stores keep, translated as
//! Jaeger's `ProtoToTraces` does, with every malformed field refused by name.

use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::otlp::common::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
use jaeger_remote_proto::otlp::trace::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span::Event, span::Link, span::SpanKind,
    status::StatusCode,
};
use prost_types::Timestamp;

use super::{
    ERROR_TAG, EVENT_NAME_FIELD, FLAG_SAMPLED, HTTP_STATUS_CODE_TAG, HTTP_STATUS_MESSAGE_TAG,
    OTLP_FLAG_SAMPLED, REF_TYPE_ATTRIBUTE, REF_TYPE_CHILD_OF, REF_TYPE_FOLLOWS_FROM,
    RESOURCE_NO_SERVICE_NAME, SCOPE_NAME_TAG, SCOPE_VERSION_TAG, SPAN_KIND_TAG, STATUS_CODE_TAG,
    STATUS_DESCRIPTION_TAG, TRACE_STATE_TAG, WARNINGS_ATTRIBUTE,
};
use crate::attribute::{attribute_value, find_attribute};
use crate::convert::{DecodedSpans, spans_from_resource_spans};
use crate::error::StoreError;
use crate::model::SERVICE_NAME_KEY;
use crate::time::{GO_ZERO_TIME_SECONDS, UnixNanos, duration_nanos_from_proto};

/// The resource attribute Jaeger's `hostname` process tag becomes.
const HOST_NAME_KEY: &str = "host.name";
/// The process tag renamed to [`HOST_NAME_KEY`].
const HOSTNAME_TAG: &str = "hostname";
/// The process tag renamed to [`EXPORTER_VERSION_KEY`].
const JAEGER_VERSION_TAG: &str = "jaeger.version";
/// OpenCensus' exporter version attribute, `Jaeger-<version>`.
const EXPORTER_VERSION_KEY: &str = "opencensus.exporterversion";

/// Translates v1 spans into OTLP resource groups: spans with an identical process share a
/// resource, and within it spans with the same `otel.scope.name`/`otel.scope.version` share a
/// scope, in order of first appearance.
///
/// Each span is validated first; a malformed one is refused with an error naming its field
/// (`span.trace_id`, `span.references[1].span_id`, `span.duration`, …) and leaves the batch
/// unchanged.
#[derive(Debug, Default)]
pub struct V1Batch {
    groups: Vec<ResourceGroup>,
}

#[derive(Debug)]
struct ResourceGroup {
    process: Option<v1::Process>,
    resource: OtlpResource,
    scopes: Vec<ScopeGroup>,
}

#[derive(Debug)]
struct ScopeGroup {
    name: String,
    version: String,
    spans: Vec<OtlpSpan>,
}

impl V1Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no span was added.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Validates and adds one span.
    pub fn push(&mut self, mut span: v1::Span) -> Result<(), StoreError> {
        let process = span.process.take();
        let scope = take_scope(&mut span.tags);
        let otlp = span_from_v1(span)?;
        let group_index = match self
            .groups
            .iter()
            .position(|group| group.process == process)
        {
            Some(index) => index,
            None => {
                self.groups.push(ResourceGroup {
                    resource: resource_from_process(process.as_ref()),
                    process,
                    scopes: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        let scopes = &mut self.groups[group_index].scopes;
        match scopes
            .iter_mut()
            .find(|existing| existing.name == scope.0 && existing.version == scope.1)
        {
            Some(existing) => existing.spans.push(otlp),
            None => scopes.push(ScopeGroup {
                name: scope.0,
                version: scope.1,
                spans: vec![otlp],
            }),
        }
        Ok(())
    }

    /// The OTLP resource groups.
    pub fn into_resource_spans(self) -> Vec<ResourceSpans> {
        self.groups
            .into_iter()
            .map(|group| ResourceSpans {
                resource: Some(group.resource),
                scope_spans: group
                    .scopes
                    .into_iter()
                    .map(|scope| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: scope.name,
                            version: scope.version,
                            ..Default::default()
                        }),
                        spans: scope.spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect()
    }

    /// The stored form: spans of one resource share it, spans of one scope share it. Every
    /// span was validated by [`V1Batch::push`], so none is refused here.
    pub fn into_spans(self) -> DecodedSpans {
        spans_from_resource_spans(self.into_resource_spans())
    }
}

/// Translates v1 spans as a v1 client's writes, refusing the whole list at the first malformed
/// span (its index in the error).
pub fn resource_spans_from_v1(
    spans: impl IntoIterator<Item = v1::Span>,
) -> Result<Vec<ResourceSpans>, StoreError> {
    let mut batch = V1Batch::new();
    for (index, span) in spans.into_iter().enumerate() {
        batch
            .push(span)
            .map_err(|error| StoreError::invalid_argument(format!("spans[{index}]: {error}")))?;
    }
    Ok(batch.into_resource_spans())
}

/// Reads a v1 trace ID: 16 bytes (high then low 64 bits, as OTLP), or 8 bytes for a 64-bit ID
/// (high bits zero), as Jaeger's decoder accepts. `field` names it in the error, and is called
/// only then, so valid spans pay nothing for their references' field names.
pub fn trace_id_from_v1(
    bytes: &[u8],
    field: impl FnOnce() -> String,
) -> Result<Vec<u8>, StoreError> {
    match bytes.len() {
        16 => Ok(bytes.to_vec()),
        8 => {
            let mut padded = vec![0; 8];
            padded.extend_from_slice(bytes);
            Ok(padded)
        }
        other => Err(StoreError::invalid_argument(format!(
            "{} must be 16 bytes (or 8 for a 64-bit trace ID), got {other} bytes",
            field()
        ))),
    }
}

fn span_id_from_v1(bytes: &[u8], field: impl FnOnce() -> String) -> Result<Vec<u8>, StoreError> {
    if bytes.len() == 8 {
        Ok(bytes.to_vec())
    } else {
        Err(StoreError::invalid_argument(format!(
            "{} must be 8 bytes, got {} bytes",
            field(),
            bytes.len()
        )))
    }
}

/// Removes the first `otel.scope.name` tag and, only when there was one, the first
/// `otel.scope.version` tag; their string values name the scope.
fn take_scope(tags: &mut Vec<v1::KeyValue>) -> (String, String) {
    let Some(name) = take_first_tag(tags, SCOPE_NAME_TAG) else {
        return (String::new(), String::new());
    };
    let version = take_first_tag(tags, SCOPE_VERSION_TAG).unwrap_or_default();
    (name, version)
}

fn take_first_tag(tags: &mut Vec<v1::KeyValue>, key: &str) -> Option<String> {
    let index = tags.iter().position(|tag| tag.key == key)?;
    let tag = tags.remove(index);
    Some(if tag.v_type == i32::from(v1::ValueType::String) {
        tag.v_str
    } else {
        String::new()
    })
}

/// A process as an OTLP resource: `service.name` first (when non-empty), then the tags (a tag
/// repeating a key replaces its value), then `hostname` → `host.name` and `jaeger.version` →
/// `opencensus.exporterversion` where those are absent. No process, or Jaeger's
/// `OTLPResourceNoServiceName`, is an empty resource.
fn resource_from_process(process: Option<&v1::Process>) -> OtlpResource {
    let Some(process) = process else {
        return OtlpResource::default();
    };
    if process.service_name == RESOURCE_NO_SERVICE_NAME
        || (process.service_name.is_empty() && process.tags.is_empty())
    {
        return OtlpResource::default();
    }
    let mut attributes = Vec::with_capacity(process.tags.len() + 1);
    if !process.service_name.is_empty() {
        put(
            &mut attributes,
            SERVICE_NAME_KEY.to_owned(),
            string_value(&process.service_name),
        );
    }
    for tag in &process.tags {
        let (key, value) = attribute_from_tag(tag.clone());
        put(&mut attributes, key, value);
    }
    if let Some(hostname) = find_attribute(&attributes, HOSTNAME_TAG).cloned()
        && find_attribute(&attributes, HOST_NAME_KEY).is_none()
    {
        attributes.push(KeyValue {
            key: HOST_NAME_KEY.to_owned(),
            value: hostname.value,
            ..Default::default()
        });
        remove(&mut attributes, HOSTNAME_TAG);
    }
    if let Some(version) = find_attribute(&attributes, JAEGER_VERSION_TAG).cloned()
        && find_attribute(&attributes, EXPORTER_VERSION_KEY).is_none()
    {
        let text = format!("Jaeger-{}", str_of(version.value.as_ref()));
        attributes.push(KeyValue {
            key: EXPORTER_VERSION_KEY.to_owned(),
            value: string_value(&text),
            ..Default::default()
        });
        remove(&mut attributes, JAEGER_VERSION_TAG);
    }
    OtlpResource {
        attributes,
        ..Default::default()
    }
}

/// One span's fields (its process and scope tags already taken out).
fn span_from_v1(span: v1::Span) -> Result<OtlpSpan, StoreError> {
    let trace_id = trace_id_from_v1(&span.trace_id, || "span.trace_id".to_owned())?;
    if trace_id.iter().all(|byte| *byte == 0) {
        return Err(StoreError::invalid_argument(
            "span.trace_id must not be all zeros",
        ));
    }
    let span_id = span_id_from_v1(&span.span_id, || "span.span_id".to_owned())?;
    if span_id.iter().all(|byte| *byte == 0) {
        return Err(StoreError::invalid_argument(
            "span.span_id must not be all zeros",
        ));
    }
    let mut references = Vec::with_capacity(span.references.len());
    for (index, reference) in span.references.iter().enumerate() {
        references.push((
            trace_id_from_v1(&reference.trace_id, || {
                format!("span.references[{index}].trace_id")
            })?,
            span_id_from_v1(&reference.span_id, || {
                format!("span.references[{index}].span_id")
            })?,
            reference.ref_type,
        ));
    }
    let start = start_nanos(span.start_time.as_ref(), "span.start_time")?;
    let length = duration_nanos_from_proto(span.duration.as_ref(), "span.duration")?.unwrap_or(0);
    let end = start.checked_add(length).ok_or_else(|| {
        StoreError::invalid_argument("span.start_time + span.duration is beyond year 2554")
    })?;
    let mut events = Vec::with_capacity(span.logs.len());
    for (index, log) in span.logs.into_iter().enumerate() {
        events.push(event_from_log(log, index)?);
    }

    let mut attributes = Vec::with_capacity(span.tags.len() + 1);
    // The span is owned: its tags' keys and values move into the attributes uncopied.
    for tag in span.tags {
        let (key, value) = attribute_from_tag(tag);
        put(&mut attributes, key, value);
    }
    let kind = match take(&mut attributes, SPAN_KIND_TAG) {
        Some(value) => kind_from_text(str_of(value.as_ref())),
        None => SpanKind::Unspecified,
    };
    let status = take_status(&mut attributes, kind);
    let trace_state = take(&mut attributes, TRACE_STATE_TAG)
        .map(|value| str_of(value.as_ref()).to_owned())
        .unwrap_or_default();
    if !span.warnings.is_empty() {
        attributes.push(KeyValue {
            key: WARNINGS_ATTRIBUTE.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: span.warnings.iter().map(|text| string_any(text)).collect(),
                })),
            }),
            ..Default::default()
        });
    }

    let parent = parent_of(&trace_id, &references);
    let links = references
        .iter()
        .filter(|(_, reference_span, ref_type)| {
            !(is_child_of(*ref_type) && parent.as_deref().unwrap_or(&[0; 8]) == reference_span)
        })
        .map(|(reference_trace, reference_span, ref_type)| Link {
            trace_id: reference_trace.clone(),
            span_id: reference_span.clone(),
            attributes: vec![KeyValue {
                key: REF_TYPE_ATTRIBUTE.to_owned(),
                value: string_value(if is_child_of(*ref_type) {
                    REF_TYPE_CHILD_OF
                } else {
                    REF_TYPE_FOLLOWS_FROM
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();

    Ok(OtlpSpan {
        trace_id,
        span_id,
        trace_state,
        parent_span_id: parent.unwrap_or_default(),
        flags: if span.flags & FLAG_SAMPLED != 0 {
            OTLP_FLAG_SAMPLED
        } else {
            0
        },
        name: span.operation_name,
        kind: kind.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        events,
        links,
        status,
        ..Default::default()
    })
}

fn is_child_of(ref_type: i32) -> bool {
    ref_type == i32::from(v1::SpanRefType::ChildOf)
}

/// Jaeger's `Span.ParentSpanID`: the first CHILD_OF reference into the span's own trace, else
/// the first FOLLOWS_FROM one; a zero span ID means none.
fn parent_of(trace_id: &[u8], references: &[(Vec<u8>, Vec<u8>, i32)]) -> Option<Vec<u8>> {
    let same_trace = || {
        references
            .iter()
            .filter(move |(reference_trace, _, _)| reference_trace == trace_id)
    };
    let parent = same_trace()
        .find(|(_, _, ref_type)| is_child_of(*ref_type))
        .or_else(|| {
            same_trace()
                .find(|(_, _, ref_type)| *ref_type == i32::from(v1::SpanRefType::FollowsFrom))
        })
        .map(|(_, span_id, _)| span_id.clone())?;
    parent.iter().any(|byte| *byte != 0).then_some(parent)
}

/// The status Jaeger derives from the tags: a boolean `error = true` first, then
/// `otel.status_code`, then `http.status_code` (4xx is an error only for clients). The tags it
/// consumes are removed.
fn take_status(attributes: &mut Vec<KeyValue>, kind: SpanKind) -> Option<Status> {
    let mut code = StatusCode::Unset;
    let mut message = String::new();
    let mut explicit = false;

    let error_is_true = matches!(
        find_attribute(attributes, ERROR_TAG).and_then(attribute_value),
        Some(any_value::Value::BoolValue(true))
    );
    if error_is_true {
        remove(attributes, ERROR_TAG);
        code = StatusCode::Error;
        explicit = true;
        if let Some(description) = take(attributes, STATUS_DESCRIPTION_TAG) {
            message = str_of(description.as_ref()).to_owned();
        } else if let Some(http_message) = find_attribute(attributes, HTTP_STATUS_MESSAGE_TAG) {
            message = str_of(http_message.value.as_ref()).to_owned();
        }
    }

    if let Some(status_code) = take(attributes, STATUS_CODE_TAG) {
        if !explicit {
            explicit = true;
            code = match str_of(status_code.as_ref()).to_ascii_uppercase().as_str() {
                "OK" => StatusCode::Ok,
                "ERROR" => StatusCode::Error,
                _ => StatusCode::Unset,
            };
            if let Some(description) = take(attributes, STATUS_DESCRIPTION_TAG) {
                message = str_of(description.as_ref()).to_owned();
            }
        }
    } else if !explicit
        && let Some(http_code) = find_attribute(attributes, HTTP_STATUS_CODE_TAG)
        && let Some(number) = http_code_of(http_code.value.as_ref())
    {
        let derived = status_from_http(number, kind);
        if derived != StatusCode::Unset {
            explicit = true;
            code = derived;
        }
        if let Some(http_message) = find_attribute(attributes, HTTP_STATUS_MESSAGE_TAG) {
            message = str_of(http_message.value.as_ref()).to_owned();
        }
    }

    // An explicit UNSET without a message is no status at all.
    (explicit && (code != StatusCode::Unset || !message.is_empty())).then(|| Status {
        code: code.into(),
        message,
    })
}

/// An `http.status_code` value: an integer, or a string holding a decimal integer.
fn http_code_of(value: Option<&AnyValue>) -> Option<i64> {
    match value.and_then(|value| value.value.as_ref())? {
        any_value::Value::IntValue(number) => Some(*number),
        any_value::Value::StringValue(text) => text.parse().ok(),
        _ => None,
    }
}

fn status_from_http(code: i64, kind: SpanKind) -> StatusCode {
    if (400..500).contains(&code) {
        match kind {
            SpanKind::Client => return StatusCode::Error,
            SpanKind::Server => return StatusCode::Unset,
            _ => {}
        }
    }
    if (100..399).contains(&code) {
        StatusCode::Unset
    } else {
        StatusCode::Error
    }
}

fn kind_from_text(text: &str) -> SpanKind {
    match text {
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => SpanKind::Unspecified,
    }
}

fn event_from_log(log: v1::Log, index: usize) -> Result<Event, StoreError> {
    let time_unix_nano = start_nanos(
        log.timestamp.as_ref(),
        &format!("span.logs[{index}].timestamp"),
    )?;
    let mut attributes = Vec::with_capacity(log.fields.len());
    for field in log.fields {
        let (key, value) = attribute_from_tag(field);
        put(&mut attributes, key, value);
    }
    let name = take(&mut attributes, EVENT_NAME_FIELD)
        .map(|value| str_of(value.as_ref()).to_owned())
        .unwrap_or_default();
    Ok(Event {
        time_unix_nano,
        name,
        attributes,
        ..Default::default()
    })
}

/// A v1 tag's key and typed value, moved out of the tag; an unknown type becomes a string
/// saying so, as in Jaeger.
fn attribute_from_tag(tag: v1::KeyValue) -> (String, Option<AnyValue>) {
    let value = match v1::ValueType::try_from(tag.v_type) {
        Ok(v1::ValueType::String) => any_value::Value::StringValue(tag.v_str),
        Ok(v1::ValueType::Bool) => any_value::Value::BoolValue(tag.v_bool),
        Ok(v1::ValueType::Int64) => any_value::Value::IntValue(tag.v_int64),
        Ok(v1::ValueType::Float64) => any_value::Value::DoubleValue(tag.v_float64),
        Ok(v1::ValueType::Binary) => any_value::Value::BytesValue(tag.v_binary),
        Err(_) => {
            any_value::Value::StringValue(format!("<Unknown Jaeger TagType \"{}\">", tag.v_type))
        }
    };
    (tag.key, Some(AnyValue { value: Some(value) }))
}

/// A span or log time: absent, Go's zero time (year 1) or earlier means unset (0); otherwise it
/// must not be before 1970 and its nanoseconds must be in range.
fn start_nanos(timestamp: Option<&Timestamp>, field: &str) -> Result<u64, StoreError> {
    if let Some(timestamp) = timestamp
        && timestamp.seconds < 0
        && timestamp.seconds > GO_ZERO_TIME_SECONDS
    {
        return Err(StoreError::invalid_argument(format!(
            "{field} must not be before 1970-01-01T00:00:00Z, got {} seconds",
            timestamp.seconds
        )));
    }
    Ok(UnixNanos::from_proto(timestamp, field)?.map_or(0, |time| time.0))
}

/// pdata's `Value.Str()`: the string, or `""` for any other type.
fn str_of(value: Option<&AnyValue>) -> &str {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text,
        _ => "",
    }
}

fn string_any(text: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(text.to_owned())),
    }
}

fn string_value(text: &str) -> Option<AnyValue> {
    Some(string_any(text))
}

fn remove(attributes: &mut Vec<KeyValue>, key: &str) {
    attributes.retain(|attribute| attribute.key != key);
}

/// Removes `key` and returns its value.
fn take(attributes: &mut Vec<KeyValue>, key: &str) -> Option<Option<AnyValue>> {
    let index = attributes
        .iter()
        .position(|attribute| attribute.key == key)?;
    Some(attributes.remove(index).value)
}

/// pdata's `Map.Put*`: replaces the value of an existing key in place, else appends.
fn put(attributes: &mut Vec<KeyValue>, key: String, value: Option<AnyValue>) {
    match attributes.iter_mut().find(|attribute| attribute.key == key) {
        Some(existing) => existing.value = value,
        None => attributes.push(KeyValue {
            key,
            value,
            ..Default::default()
        }),
    }
}
