//! Jaeger's v1 span model (`jaeger.api_v2`) as a view of the stored OTLP spans.
//!
//! Stored data is always OTLP; the v1 API reads and writes through this translation, exactly as
//! Jaeger's own v1 ⇄ OTLP translation does (opentelemetry-collector-contrib's
//! `pkg/translator/jaeger`, plus Jaeger's handling of span warnings):
//!
//! - [`from_otlp`]: OTLP → v1, for reads: resource → process, scope name and version →
//!   `otel.scope.*` tags, kind → `span.kind`, status → `otel.status_code` / `error` /
//!   `otel.status_description`, trace state → `w3c.tracestate`, parent and links →
//!   references, events → logs, `@jaeger@warnings` → warnings.
//! - [`to_otlp`]: v1 → OTLP, for writes: the reverse, with Jaeger's rules for the status
//!   (`error`, then `otel.status_code`, then `http.status_code`), the parent (first
//!   same-trace CHILD_OF, else FOLLOWS_FROM reference) and process grouping.
//! - [`requests`]: v1 requests → the core's validated queries; v1 query tags are strings and
//!   match by the same canonical text as v2 attributes.
//!
//! # What v1 cannot carry
//!
//! Reading OTLP through v1 loses, for that read only (stored data is never changed): link
//! attributes, trace state and flags (a link gains `opentracing.ref_type`; a `child_of` link
//! to the span's own parent disappears), scope attributes and dropped counts, a scope version
//! without a scope name (it becomes an attribute), every dropped count, schema URLs, span
//! flags other than the sampled bit, array and map types (JSON strings), empty values (`""`),
//! the message of an UNSET status (an `otel.status_description` attribute), an UNSET status
//! whose `http.status_code` implies failure (it reads back as ERROR), attributes named like the
//! reserved tags (consumed as kind, status, scope, trace state or warnings), resource
//! `hostname` and `jaeger.version` (renamed to `host.name` and `opencensus.exporterversion`),
//! an event's name when the event has an `event` attribute, a non-string `service.name`, and
//! the grouping and order of resources and scopes. Writing v1 and reading it back loses the
//! debug and firehose flags, repeated tag keys (the last wins), unknown `span.kind` values,
//! reference order and tag order, and gains `otel.status_code`/`error` when
//! `http.status_code` implied an error.
//!
//! One deliberate difference from Jaeger 1.76's translator: the sampled flag (bit 0) maps to
//! the OTLP span flags and back, as newer contrib translators do, so it survives a round trip.

pub mod from_otlp;
pub mod requests;
pub mod to_otlp;

/// `Process.service_name` of a resource without any attribute.
pub const RESOURCE_NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";
/// Tag holding the instrumentation scope's name.
pub const SCOPE_NAME_TAG: &str = "otel.scope.name";
/// Tag holding the instrumentation scope's version.
pub const SCOPE_VERSION_TAG: &str = "otel.scope.version";
/// Tag holding the span kind as a lower-case word.
pub const SPAN_KIND_TAG: &str = "span.kind";
/// Tag holding the status code (`OK` or `ERROR`).
pub const STATUS_CODE_TAG: &str = "otel.status_code";
/// Tag holding the status message.
pub const STATUS_DESCRIPTION_TAG: &str = "otel.status_description";
/// Boolean tag marking a failed span.
pub const ERROR_TAG: &str = "error";
/// Tag holding the W3C trace state.
pub const TRACE_STATE_TAG: &str = "w3c.tracestate";
/// Log field holding the event name.
pub const EVENT_NAME_FIELD: &str = "event";
/// OTLP attribute (a list of strings) holding Jaeger's span warnings.
pub const WARNINGS_ATTRIBUTE: &str = "@jaeger@warnings";
/// Link attribute holding the OpenTracing reference type.
pub const REF_TYPE_ATTRIBUTE: &str = "opentracing.ref_type";
/// [`REF_TYPE_ATTRIBUTE`] value of a CHILD_OF reference.
pub const REF_TYPE_CHILD_OF: &str = "child_of";
/// [`REF_TYPE_ATTRIBUTE`] value of a FOLLOWS_FROM reference.
pub const REF_TYPE_FOLLOWS_FROM: &str = "follows_from";
/// HTTP status code tag consulted when no explicit status is given.
pub const HTTP_STATUS_CODE_TAG: &str = "http.status_code";
/// HTTP status message tag, the fallback status message.
pub const HTTP_STATUS_MESSAGE_TAG: &str = "http.status_message";
/// v1 span flag: sampled.
pub const FLAG_SAMPLED: u32 = 1;
/// OTLP span flags: the W3C trace flags' sampled bit.
pub const OTLP_FLAG_SAMPLED: u32 = 1;

#[cfg(test)]
mod round_trip_tests;
