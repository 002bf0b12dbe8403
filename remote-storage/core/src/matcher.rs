//! The span matcher with Jaeger's reference search semantics, shared by every backend that
//! filters in process (and usable as a post-filter by those that push filters down).
//!
//! A trace matches when one single span satisfies every condition: service (resource
//! `service.name`), operation (span name), inclusive start and duration bounds, and each
//! attribute condition. Attribute values compare by canonical text, so typed and string query
//! values both match. A query's structured filter ([`crate::filter`]) is ANDed per span, with
//! the window.

use jaeger_remote_proto::otlp::common::KeyValue;
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, span::SpanKind, status::StatusCode};

use crate::attribute::any_value_text;
use crate::filter::Filter;
use crate::model::{Span, span_kind_from_name};
use crate::query::{AttributeFilter, TraceQuery};
use crate::time::UnixNanos;

/// What one query attribute means, after its special keys are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeCondition {
    /// `error=<bool>`: the span's status is (or is not) ERROR. `None` when the value is not a
    /// Go-parseable bool, which matches nothing.
    Error(Option<bool>),
    /// `span.status=ok|error|…`: the status code equals this.
    Status(StatusCode),
    /// `span.kind=server|…`: the span kind equals this.
    Kind(SpanKind),
    /// `scope.name=<text>`: the instrumentation scope's name.
    ScopeName(String),
    /// `scope.version=<text>`: the instrumentation scope's version.
    ScopeVersion(String),
    /// `resource.<key>=<text>`: found among the resource attributes only.
    Resource {
        /// Key with the `resource.` prefix removed.
        key: String,
        /// Canonical value text.
        value: String,
    },
    /// Any other key: found among the span's, scope's, resource's, any event's or any link's
    /// attributes.
    Anywhere {
        /// Attribute key.
        key: String,
        /// Canonical value text.
        value: String,
    },
}

impl AttributeCondition {
    /// Interprets one query attribute.
    pub fn parse(filter: &AttributeFilter) -> Self {
        match filter.key.as_str() {
            "error" => Self::Error(parse_go_bool(&filter.value)),
            "span.status" => Self::Status(match filter.value.to_ascii_lowercase().as_str() {
                "ok" => StatusCode::Ok,
                "error" => StatusCode::Error,
                _ => StatusCode::Unset,
            }),
            "span.kind" => {
                Self::Kind(span_kind_from_name(&filter.value).unwrap_or(SpanKind::Unspecified))
            }
            "scope.name" => Self::ScopeName(filter.value.clone()),
            "scope.version" => Self::ScopeVersion(filter.value.clone()),
            key => match key.strip_prefix("resource.") {
                Some(resource_key) => Self::Resource {
                    key: resource_key.to_owned(),
                    value: filter.value.clone(),
                },
                None => Self::Anywhere {
                    key: key.to_owned(),
                    value: filter.value.clone(),
                },
            },
        }
    }

    /// Whether the span satisfies this condition.
    pub fn matches(&self, span: &Span) -> bool {
        match self {
            Self::Error(None) => false,
            Self::Error(Some(expected)) => span.is_error() == *expected,
            Self::Status(code) => span.status_code() == *code,
            Self::Kind(kind) => span.kind() == *kind,
            Self::ScopeName(name) => span.scope().otlp().name == *name,
            Self::ScopeVersion(version) => span.scope().otlp().version == *version,
            Self::Resource { key, value } => {
                contains_pair(&span.resource().otlp().attributes, key, value)
            }
            Self::Anywhere { key, value } => {
                let is_pair = |attribute: &KeyValue| {
                    attribute.key == *key && any_value_text(attribute.value.as_ref()) == *value
                };
                span_level_attributes(span.otlp()).any(is_pair)
                    || contains_pair(&span.scope().otlp().attributes, key, value)
                    || contains_pair(&span.resource().otlp().attributes, key, value)
            }
        }
    }
}

/// The attributes of the span itself, then of its events and links: what an `Anywhere`
/// condition searches besides the scope's and the resource's attributes (which a whole group
/// of spans shares). Backends that index attributes enumerate this, so an index covers exactly
/// what the matcher checks.
pub fn span_level_attributes(otlp: &OtlpSpan) -> impl Iterator<Item = &KeyValue> {
    otlp.attributes
        .iter()
        .chain(otlp.events.iter().flat_map(|event| &event.attributes))
        .chain(otlp.links.iter().flat_map(|link| &link.attributes))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn contains_pair(attributes: &[KeyValue], key: &str, value: &str) -> bool {
    attributes
        .iter()
        .any(|attribute| attribute.key == key && any_value_text(attribute.value.as_ref()) == value)
}

/// A compiled [`TraceQuery`], ready to test spans.
#[derive(Debug, Clone)]
pub struct SpanMatcher {
    service_name: Option<String>,
    operation_name: Option<String>,
    conditions: Vec<AttributeCondition>,
    start_time_min: Option<UnixNanos>,
    start_time_max: Option<UnixNanos>,
    duration_min: Option<u64>,
    duration_max: Option<u64>,
    filter: Option<Filter>,
}

impl SpanMatcher {
    /// Compiles a query.
    pub fn new(query: &TraceQuery) -> Self {
        Self {
            service_name: query.service_name.clone(),
            operation_name: query.operation_name.clone(),
            conditions: query
                .attributes
                .iter()
                .map(AttributeCondition::parse)
                .collect(),
            start_time_min: query.start_time_min,
            start_time_max: query.start_time_max,
            duration_min: query.duration_min,
            duration_max: query.duration_max,
            filter: query.filter.clone(),
        }
    }

    /// Whether this one span satisfies every condition of the query.
    pub fn matches(&self, span: &Span) -> bool {
        if self
            .service_name
            .as_deref()
            .is_some_and(|service| span.service_name() != service)
        {
            return false;
        }
        if self
            .operation_name
            .as_deref()
            .is_some_and(|operation| span.name() != operation)
        {
            return false;
        }
        if !self.matches_start(span.start()) {
            return false;
        }
        let duration = span.duration_nanos();
        if self.duration_min.is_some_and(|min| duration < min)
            || self.duration_max.is_some_and(|max| duration > max)
        {
            return false;
        }
        // The filter is ANDed per span with the window: the matching span itself must start
        // inside it (see `crate::filter`'s decisions).
        self.conditions
            .iter()
            .all(|condition| condition.matches(span))
            && self
                .filter
                .as_ref()
                .is_none_or(|filter| filter.matches(span))
    }

    /// The query's attribute conditions, parsed once; backends plan index lookups from them.
    pub fn conditions(&self) -> &[AttributeCondition] {
        &self.conditions
    }

    /// Whether a span starting at `start` lies inside the query's inclusive time window.
    pub fn matches_start(&self, start: UnixNanos) -> bool {
        !(self.start_time_min.is_some_and(|min| start < min)
            || self.start_time_max.is_some_and(|max| start > max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use jaeger_remote_proto::otlp::common::{AnyValue, InstrumentationScope, any_value::Value};
    use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
    use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, Status, span};

    use crate::model::{Resource, Scope};

    fn pair(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn sample_span() -> Span {
        let resource = Arc::new(Resource::new(
            OtlpResource {
                attributes: vec![
                    pair("service.name", Value::StringValue("checkout".into())),
                    pair("host", Value::StringValue("h1".into())),
                ],
                ..Default::default()
            },
            String::new(),
        ));
        let scope = Arc::new(Scope::new(
            InstrumentationScope {
                name: "lib".into(),
                version: "1.2".into(),
                attributes: vec![pair("scope.attr", Value::BoolValue(true))],
                ..Default::default()
            },
            String::new(),
        ));
        let otlp = OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /cart".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 6_000,
            attributes: vec![pair("http.status_code", Value::IntValue(500))],
            events: vec![span::Event {
                name: "log".into(),
                attributes: vec![pair("ratio", Value::DoubleValue(72.5))],
                ..Default::default()
            }],
            links: vec![span::Link {
                trace_id: vec![3; 16],
                span_id: vec![4; 8],
                attributes: vec![pair("link.attr", Value::StringValue("x".into()))],
                ..Default::default()
            }],
            status: Some(Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        Span::new(resource, scope, otlp).unwrap()
    }

    fn query() -> TraceQuery {
        TraceQuery::all(NonZeroUsize::MIN)
    }

    fn with_attribute(key: &str, value: &str) -> TraceQuery {
        let mut built = query();
        built.attributes.push(AttributeFilter {
            key: key.into(),
            value: value.into(),
        });
        built
    }

    fn matches(query: &TraceQuery) -> bool {
        SpanMatcher::new(query).matches(&sample_span())
    }

    #[test]
    fn service_and_operation_must_equal() {
        let mut built = query();
        built.service_name = Some("checkout".into());
        built.operation_name = Some("GET /cart".into());
        assert!(matches(&built));
        built.operation_name = Some("GET".into());
        assert!(!matches(&built));
    }

    #[test]
    fn start_and_duration_bounds_are_inclusive() {
        let mut built = query();
        built.start_time_min = Some(UnixNanos(1_000));
        built.start_time_max = Some(UnixNanos(1_000));
        built.duration_min = Some(5_000);
        built.duration_max = Some(5_000);
        assert!(matches(&built));
        built.duration_max = Some(4_999);
        assert!(!matches(&built));
        let mut late = query();
        late.start_time_min = Some(UnixNanos(1_001));
        assert!(!matches(&late));
    }

    #[test]
    fn attributes_are_found_on_every_level_by_text() {
        assert!(matches(&with_attribute("http.status_code", "500")));
        assert!(matches(&with_attribute("ratio", "72.5")));
        assert!(matches(&with_attribute("scope.attr", "true")));
        assert!(matches(&with_attribute("host", "h1")));
        assert!(matches(&with_attribute("link.attr", "x")));
        assert!(!matches(&with_attribute("http.status_code", "501")));
        assert!(!matches(&with_attribute("absent", "x")));
    }

    #[test]
    fn resource_prefix_looks_only_at_the_resource() {
        assert!(matches(&with_attribute("resource.host", "h1")));
        assert!(!matches(&with_attribute(
            "resource.http.status_code",
            "500"
        )));
    }

    #[test]
    fn special_keys_test_status_kind_and_scope() {
        assert!(matches(&with_attribute("error", "true")));
        assert!(matches(&with_attribute("error", "T")));
        assert!(!matches(&with_attribute("error", "false")));
        assert!(!matches(&with_attribute("error", "yes")));
        assert!(matches(&with_attribute("span.status", "ERROR")));
        assert!(!matches(&with_attribute("span.status", "ok")));
        assert!(matches(&with_attribute("span.kind", "Server")));
        assert!(!matches(&with_attribute("span.kind", "client")));
        assert!(matches(&with_attribute("scope.name", "lib")));
        assert!(matches(&with_attribute("scope.version", "1.2")));
        assert!(!matches(&with_attribute("scope.version", "1.3")));
    }

    #[test]
    fn all_conditions_must_hold_together() {
        let mut built = with_attribute("http.status_code", "500");
        built.attributes.push(AttributeFilter {
            key: "host".into(),
            value: "h2".into(),
        });
        assert!(!matches(&built));
    }
}
