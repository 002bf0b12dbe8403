//! Trace comparison with the semantics of Jaeger's `trace_compare.go` followed by
//! `ptracetest.CompareTraces`:
//!
//! 1. **normalise**: one resource and one scope per span (original grouping and schema URLs are
//!    irrelevant);
//! 2. **sort**: attributes by key everywhere, spans by (trace ID, span ID, start), events by
//!    (name, time, attributes), links by (trace ID, span ID, trace state, attributes);
//! 3. **dedupe**: keep the first span per span ID; later duplicates leave their resource and
//!    scope behind as empty placeholders, so extra duplicates still cause a mismatch;
//! 4. **compare** every field `ptracetest` checks: resource attributes and dropped count; scope
//!    name, version, attributes and dropped count; span attributes, dropped attributes, trace
//!    ID, span ID, trace state, parent span ID, name, kind, start, end, events (name, time,
//!    attributes, dropped count), dropped events, links (trace ID, span ID, trace state,
//!    attributes, dropped count), dropped links, status code and message. Attribute values are
//!    compared typed (int ≠ double ≠ string ≠ bytes). Span and link flags are not compared.
//!
//! A mismatch is reported as a readable list naming the trace, the span and the field.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jaeger_remote_proto::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::span::{Event, Link};
use jaeger_remote_proto::otlp::trace::{Span, Status};

use crate::target::OtlpTrace;

/// At most this many differences are listed per trace.
const MAX_REPORTED_DIFFERENCES: usize = 30;

/// A typed attribute value in comparable form (pdata `AsRaw` equality).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// No value.
    Empty,
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double, by bit pattern so that values are totally ordered.
    Double(DoubleBits),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map (keys unique; the last duplicate wins, as in `AsRaw`).
    Map(BTreeMap<String, Value>),
}

/// An `f64` compared by bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DoubleBits(u64);

impl DoubleBits {
    /// The double.
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl Value {
    /// Converts an OTLP value.
    pub fn from_otlp(value: Option<&AnyValue>) -> Self {
        match value.and_then(|value| value.value.as_ref()) {
            None | Some(any_value::Value::StringValueStrindex(_)) => Self::Empty,
            Some(any_value::Value::StringValue(text)) => Self::Str(text.clone()),
            Some(any_value::Value::BoolValue(flag)) => Self::Bool(*flag),
            Some(any_value::Value::IntValue(number)) => Self::Int(*number),
            Some(any_value::Value::DoubleValue(number)) => {
                Self::Double(DoubleBits(number.to_bits()))
            }
            Some(any_value::Value::BytesValue(bytes)) => Self::Bytes(bytes.clone()),
            Some(any_value::Value::ArrayValue(array)) => Self::Array(
                array
                    .values
                    .iter()
                    .map(|item| Self::from_otlp(Some(item)))
                    .collect(),
            ),
            Some(any_value::Value::KvlistValue(list)) => Self::Map(attribute_map(&list.values)),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Str(text) => write!(f, "Str({text:?})"),
            Self::Bool(flag) => write!(f, "Bool({flag})"),
            Self::Int(number) => write!(f, "Int({number})"),
            Self::Double(bits) => write!(f, "Double({})", bits.get()),
            Self::Bytes(bytes) => write!(f, "Bytes(0x{})", hex::encode(bytes)),
            Self::Array(items) => {
                f.write_str("Array[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Self::Map(map) => {
                f.write_str("Map{")?;
                for (index, (key, item)) in map.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key:?}: {item}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// An attribute list as a typed map.
pub fn attribute_map(attributes: &[KeyValue]) -> BTreeMap<String, Value> {
    attributes
        .iter()
        .map(|pair| (pair.key.clone(), Value::from_otlp(pair.value.as_ref())))
        .collect()
}

/// One normalised entry: a span with its own resource and scope, or (after dedupe) the
/// resource and scope a duplicate span left behind.
#[derive(Debug, Clone)]
struct Entry {
    resource_attributes: BTreeMap<String, Value>,
    resource_dropped: u32,
    scope_name: String,
    scope_version: String,
    scope_attributes: BTreeMap<String, Value>,
    scope_dropped: u32,
    span: Option<NormalSpan>,
}

#[derive(Debug, Clone)]
struct NormalSpan {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    trace_state: String,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    attributes: BTreeMap<String, Value>,
    dropped_attributes: u32,
    events: Vec<NormalEvent>,
    dropped_events: u32,
    links: Vec<NormalLink>,
    dropped_links: u32,
    status_code: i32,
    status_message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct NormalEvent {
    name: String,
    time: u64,
    attributes: BTreeMap<String, Value>,
    dropped_attributes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct NormalLink {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    trace_state: String,
    attributes: BTreeMap<String, Value>,
    dropped_attributes: u32,
}

impl NormalSpan {
    fn new(span: &Span) -> Self {
        let mut events: Vec<NormalEvent> = span.events.iter().map(normal_event).collect();
        events.sort();
        let mut links: Vec<NormalLink> = span.links.iter().map(normal_link).collect();
        links.sort();
        let status = span.status.clone().unwrap_or(Status {
            message: String::new(),
            code: 0,
        });
        Self {
            trace_id: span.trace_id.clone(),
            span_id: span.span_id.clone(),
            parent_span_id: span.parent_span_id.clone(),
            trace_state: span.trace_state.clone(),
            name: span.name.clone(),
            kind: span.kind,
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
            attributes: attribute_map(&span.attributes),
            dropped_attributes: span.dropped_attributes_count,
            events,
            dropped_events: span.dropped_events_count,
            links,
            dropped_links: span.dropped_links_count,
            status_code: status.code,
            status_message: status.message,
        }
    }

    /// Identity order first, then everything else so that the order is total.
    fn sort_key(&self) -> impl Ord + '_ {
        (
            &self.trace_id,
            &self.span_id,
            self.start,
            (&self.name, self.end, &self.parent_span_id, self.kind),
            (
                &self.attributes,
                &self.events,
                &self.links,
                &self.trace_state,
            ),
            (
                self.dropped_attributes,
                self.dropped_events,
                self.dropped_links,
                self.status_code,
                &self.status_message,
            ),
        )
    }
}

fn normal_event(event: &Event) -> NormalEvent {
    NormalEvent {
        name: event.name.clone(),
        time: event.time_unix_nano,
        attributes: attribute_map(&event.attributes),
        dropped_attributes: event.dropped_attributes_count,
    }
}

fn normal_link(link: &Link) -> NormalLink {
    NormalLink {
        trace_id: link.trace_id.clone(),
        span_id: link.span_id.clone(),
        trace_state: link.trace_state.clone(),
        attributes: attribute_map(&link.attributes),
        dropped_attributes: link.dropped_attributes_count,
    }
}

impl Entry {
    fn new(resource: Option<&Resource>, scope: Option<&InstrumentationScope>, span: &Span) -> Self {
        let default_resource = Resource::default();
        let resource = resource.unwrap_or(&default_resource);
        let default_scope = InstrumentationScope::default();
        let scope = scope.unwrap_or(&default_scope);
        Self {
            resource_attributes: attribute_map(&resource.attributes),
            resource_dropped: resource.dropped_attributes_count,
            scope_name: scope.name.clone(),
            scope_version: scope.version.clone(),
            scope_attributes: attribute_map(&scope.attributes),
            scope_dropped: scope.dropped_attributes_count,
            span: Some(NormalSpan::new(span)),
        }
    }

    fn cmp_key(&self, other: &Self) -> Ordering {
        let span_order = match (&self.span, &other.span) {
            (Some(left), Some(right)) => left.sort_key().cmp(&right.sort_key()),
            (left, right) => left.is_some().cmp(&right.is_some()),
        };
        span_order.then_with(|| {
            (
                &self.resource_attributes,
                self.resource_dropped,
                &self.scope_name,
                &self.scope_version,
                &self.scope_attributes,
                self.scope_dropped,
            )
                .cmp(&(
                    &other.resource_attributes,
                    other.resource_dropped,
                    &other.scope_name,
                    &other.scope_version,
                    &other.scope_attributes,
                    other.scope_dropped,
                ))
        })
    }

    fn label(&self) -> String {
        match &self.span {
            Some(span) => format!("span {} {:?}", hex::encode(&span.span_id), span.name),
            None => "deduplicated span placeholder".to_owned(),
        }
    }
}

/// Normalise, sort and dedupe a trace (Jaeger's `makeTraceReadyForComparison`).
fn prepare(trace: &OtlpTrace) -> Vec<Entry> {
    let mut entries = Vec::new();
    for group in &trace.resource_spans {
        for scope_group in &group.scope_spans {
            for span in &scope_group.spans {
                entries.push(Entry::new(
                    group.resource.as_ref(),
                    scope_group.scope.as_ref(),
                    span,
                ));
            }
        }
    }
    entries.sort_by(Entry::cmp_key);
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    for entry in &mut entries {
        let duplicate = entry
            .span
            .as_ref()
            .is_some_and(|span| !seen.insert(span.span_id.clone()));
        if duplicate {
            entry.span = None;
        }
    }
    entries
}

/// Collects differences for one trace.
#[derive(Debug, Default)]
struct Differences {
    lines: Vec<String>,
    total: usize,
}

impl Differences {
    fn push(&mut self, line: String) {
        self.total += 1;
        if self.lines.len() < MAX_REPORTED_DIFFERENCES {
            self.lines.push(line);
        }
    }

    fn field<T: PartialEq + fmt::Debug>(&mut self, at: &str, field: &str, expected: T, got: T) {
        if expected != got {
            self.push(format!("{at}: {field}: expected {expected:?}, got {got:?}"));
        }
    }

    fn hex_field(&mut self, at: &str, field: &str, expected: &[u8], got: &[u8]) {
        if expected != got {
            self.push(format!(
                "{at}: {field}: expected {:?}, got {:?}",
                hex::encode(expected),
                hex::encode(got)
            ));
        }
    }

    fn attributes(
        &mut self,
        at: &str,
        field: &str,
        expected: &BTreeMap<String, Value>,
        got: &BTreeMap<String, Value>,
    ) {
        for (key, expected_value) in expected {
            match got.get(key) {
                None => self.push(format!(
                    "{at}: {field}[{key:?}]: missing (expected {expected_value})"
                )),
                Some(got_value) if got_value != expected_value => self.push(format!(
                    "{at}: {field}[{key:?}]: expected {expected_value}, got {got_value}"
                )),
                Some(_) => {}
            }
        }
        for (key, got_value) in got {
            if !expected.contains_key(key) {
                self.push(format!("{at}: {field}[{key:?}]: unexpected {got_value}"));
            }
        }
    }
}

fn compare_entry(expected: &Entry, got: &Entry, differences: &mut Differences) {
    let at = expected.label();
    differences.attributes(
        &at,
        "resource.attributes",
        &expected.resource_attributes,
        &got.resource_attributes,
    );
    differences.field(
        &at,
        "resource.dropped_attributes_count",
        expected.resource_dropped,
        got.resource_dropped,
    );
    differences.field(&at, "scope.name", &expected.scope_name, &got.scope_name);
    differences.field(
        &at,
        "scope.version",
        &expected.scope_version,
        &got.scope_version,
    );
    differences.attributes(
        &at,
        "scope.attributes",
        &expected.scope_attributes,
        &got.scope_attributes,
    );
    differences.field(
        &at,
        "scope.dropped_attributes_count",
        expected.scope_dropped,
        got.scope_dropped,
    );
    match (&expected.span, &got.span) {
        (Some(expected_span), Some(got_span)) => {
            compare_span(&at, expected_span, got_span, differences);
        }
        (None, None) => {}
        (Some(_), None) => differences.push(format!(
            "{at}: expected this span, got only a duplicate of its span ID"
        )),
        (None, Some(got_span)) => differences.push(format!(
            "{at}: expected a duplicate span ID here, got span {} {:?}",
            hex::encode(&got_span.span_id),
            got_span.name
        )),
    }
}

fn compare_span(at: &str, expected: &NormalSpan, got: &NormalSpan, differences: &mut Differences) {
    differences.attributes(at, "attributes", &expected.attributes, &got.attributes);
    differences.field(
        at,
        "dropped_attributes_count",
        expected.dropped_attributes,
        got.dropped_attributes,
    );
    differences.hex_field(at, "trace_id", &expected.trace_id, &got.trace_id);
    differences.hex_field(at, "span_id", &expected.span_id, &got.span_id);
    differences.field(at, "trace_state", &expected.trace_state, &got.trace_state);
    differences.hex_field(
        at,
        "parent_span_id",
        &expected.parent_span_id,
        &got.parent_span_id,
    );
    differences.field(at, "name", &expected.name, &got.name);
    differences.field(at, "kind", expected.kind, got.kind);
    differences.field(at, "start_time_unix_nano", expected.start, got.start);
    differences.field(at, "end_time_unix_nano", expected.end, got.end);
    if expected.events.len() == got.events.len() {
        for (index, (expected_event, got_event)) in
            expected.events.iter().zip(&got.events).enumerate()
        {
            let field = format!("events[{index}]");
            differences.field(
                at,
                &format!("{field}.name"),
                &expected_event.name,
                &got_event.name,
            );
            differences.field(
                at,
                &format!("{field}.time_unix_nano"),
                expected_event.time,
                got_event.time,
            );
            differences.attributes(
                at,
                &format!("{field}.attributes"),
                &expected_event.attributes,
                &got_event.attributes,
            );
            differences.field(
                at,
                &format!("{field}.dropped_attributes_count"),
                expected_event.dropped_attributes,
                got_event.dropped_attributes,
            );
        }
    } else {
        differences.push(format!(
            "{at}: events: expected {} event(s), got {}",
            expected.events.len(),
            got.events.len()
        ));
    }
    differences.field(
        at,
        "dropped_events_count",
        expected.dropped_events,
        got.dropped_events,
    );
    if expected.links.len() == got.links.len() {
        for (index, (expected_link, got_link)) in expected.links.iter().zip(&got.links).enumerate()
        {
            let field = format!("links[{index}]");
            differences.hex_field(
                at,
                &format!("{field}.trace_id"),
                &expected_link.trace_id,
                &got_link.trace_id,
            );
            differences.hex_field(
                at,
                &format!("{field}.span_id"),
                &expected_link.span_id,
                &got_link.span_id,
            );
            differences.field(
                at,
                &format!("{field}.trace_state"),
                &expected_link.trace_state,
                &got_link.trace_state,
            );
            differences.attributes(
                at,
                &format!("{field}.attributes"),
                &expected_link.attributes,
                &got_link.attributes,
            );
            differences.field(
                at,
                &format!("{field}.dropped_attributes_count"),
                expected_link.dropped_attributes,
                got_link.dropped_attributes,
            );
        }
    } else {
        differences.push(format!(
            "{at}: links: expected {} link(s), got {}",
            expected.links.len(),
            got.links.len()
        ));
    }
    differences.field(
        at,
        "dropped_links_count",
        expected.dropped_links,
        got.dropped_links,
    );
    differences.field(at, "status.code", expected.status_code, got.status_code);
    differences.field(
        at,
        "status.message",
        &expected.status_message,
        &got.status_message,
    );
}

fn span_labels(entries: &[Entry]) -> BTreeMap<String, usize> {
    let mut labels = BTreeMap::new();
    for entry in entries {
        *labels.entry(entry.label()).or_default() += 1;
    }
    labels
}

fn multiset_difference(
    left: &BTreeMap<String, usize>,
    right: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut only_left = Vec::new();
    for (label, count) in left {
        let other = right.get(label).copied().unwrap_or(0);
        if *count > other {
            let times = count - other;
            only_left.push(if times > 1 {
                format!("{label} ×{times}")
            } else {
                label.clone()
            });
        }
    }
    only_left
}

/// Compares two traces; `Err` holds a readable report naming the trace, span and field of every
/// difference (up to a limit).
pub fn compare_traces(expected: &OtlpTrace, actual: &OtlpTrace) -> Result<(), String> {
    let trace_label = format!("trace {}", expected.trace_id_hex());
    let expected_entries = prepare(expected);
    let actual_entries = prepare(actual);
    let mut differences = Differences::default();
    let same_spans = expected_entries.len() == actual_entries.len()
        && expected_entries
            .iter()
            .zip(&actual_entries)
            .all(|(left, right)| match (&left.span, &right.span) {
                (Some(left), Some(right)) => left.span_id == right.span_id,
                _ => true,
            });
    if same_spans {
        for (expected_entry, actual_entry) in expected_entries.iter().zip(&actual_entries) {
            compare_entry(expected_entry, actual_entry, &mut differences);
        }
    } else {
        let expected_labels = span_labels(&expected_entries);
        let actual_labels = span_labels(&actual_entries);
        differences.push(format!(
            "expected {} span(s), got {}",
            expected_entries.len(),
            actual_entries.len()
        ));
        let missing = multiset_difference(&expected_labels, &actual_labels);
        if !missing.is_empty() {
            differences.push(format!("missing: {}", missing.join(", ")));
        }
        let unexpected = multiset_difference(&actual_labels, &expected_labels);
        if !unexpected.is_empty() {
            differences.push(format!("unexpected: {}", unexpected.join(", ")));
        }
    }
    if differences.total == 0 {
        return Ok(());
    }
    let mut report = format!("{trace_label}: {} difference(s)", differences.total);
    for line in &differences.lines {
        report.push_str("\n  ");
        report.push_str(line);
    }
    if differences.total > differences.lines.len() {
        report.push_str(&format!(
            "\n  … and {} more",
            differences.total - differences.lines.len()
        ));
    }
    Err(report)
}

/// Compares two lists of traces as Jaeger's `CompareTraceSlices`: same length, then pairwise
/// after sorting both by the trace ID of their first span.
pub fn compare_trace_slices(expected: &[OtlpTrace], actual: &[OtlpTrace]) -> Result<(), String> {
    let mut expected_sorted: Vec<&OtlpTrace> = expected.iter().collect();
    let mut actual_sorted: Vec<&OtlpTrace> = actual.iter().collect();
    expected_sorted.sort_by(|left, right| left.trace_id().cmp(&right.trace_id()));
    actual_sorted.sort_by(|left, right| left.trace_id().cmp(&right.trace_id()));
    if expected_sorted.len() != actual_sorted.len() {
        let ids = |traces: &[&OtlpTrace]| {
            traces
                .iter()
                .map(|trace| trace.trace_id_hex())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "expected {} trace(s) [{}], got {} [{}]",
            expected_sorted.len(),
            ids(&expected_sorted),
            actual_sorted.len(),
            ids(&actual_sorted)
        ));
    }
    let mut reports = Vec::new();
    for (expected_trace, actual_trace) in expected_sorted.iter().zip(&actual_sorted) {
        if expected_trace.trace_id() != actual_trace.trace_id() {
            reports.push(format!(
                "expected trace {}, got trace {} in its place",
                expected_trace.trace_id_hex(),
                actual_trace.trace_id_hex()
            ));
            continue;
        }
        if let Err(report) = compare_traces(expected_trace, actual_trace) {
            reports.push(report);
        }
    }
    if reports.is_empty() {
        Ok(())
    } else {
        Err(reports.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn string(text: &str) -> any_value::Value {
        any_value::Value::StringValue(text.into())
    }

    fn span(id: u8, name: &str) -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
            name: name.into(),
            start_time_unix_nano: 100 + u64::from(id),
            end_time_unix_nano: 200,
            attributes: vec![kv("b", any_value::Value::IntValue(1)), kv("a", string("x"))],
            events: vec![
                Event {
                    time_unix_nano: 150,
                    name: "second".into(),
                    attributes: vec![kv("e", any_value::Value::BoolValue(true))],
                    dropped_attributes_count: 0,
                },
                Event {
                    time_unix_nano: 120,
                    name: "first".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn resource(service: &str) -> Resource {
        Resource {
            attributes: vec![kv("service.name", string(service))],
            ..Default::default()
        }
    }

    fn grouped(spans: Vec<(&str, Span)>) -> OtlpTrace {
        OtlpTrace::new(
            spans
                .into_iter()
                .map(|(service, span)| ResourceSpans {
                    resource: Some(resource(service)),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            version: "1".into(),
                            ..Default::default()
                        }),
                        spans: vec![span],
                        schema_url: "https://ignored".into(),
                    }],
                    schema_url: "https://also-ignored".into(),
                })
                .collect(),
        )
    }

    #[test]
    fn grouping_order_and_schema_urls_are_ignored() {
        let expected = grouped(vec![("svc", span(1, "a")), ("svc", span(2, "b"))]);
        // Same spans, one group, reversed order, reordered attributes and events.
        let mut reversed_first = span(2, "b");
        reversed_first.attributes.reverse();
        reversed_first.events.reverse();
        let actual = OtlpTrace::new(vec![ResourceSpans {
            resource: Some(resource("svc")),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1".into(),
                    ..Default::default()
                }),
                spans: vec![reversed_first, span(1, "a")],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }]);
        assert_eq!(compare_traces(&expected, &actual), Ok(()));
    }

    #[test]
    fn typed_values_differ_and_the_report_names_trace_span_and_field() {
        let expected = grouped(vec![("svc", span(1, "op"))]);
        let mut changed = span(1, "op");
        changed.attributes[0] = kv("b", string("1"));
        let actual = grouped(vec![("svc", changed)]);
        let report = compare_traces(&expected, &actual).unwrap_err();
        assert!(report.contains(&"07".repeat(16)), "{report}");
        assert!(report.contains("span 0000000000000001 \"op\""), "{report}");
        assert!(
            report.contains("attributes[\"b\"]: expected Int(1), got Str(\"1\")"),
            "{report}"
        );

        let mut double = span(1, "op");
        double.attributes[0] = kv("b", any_value::Value::DoubleValue(1.0));
        assert!(compare_traces(&expected, &grouped(vec![("svc", double)])).is_err());
        let mut bytes = span(1, "op");
        bytes.attributes[1] = kv("a", any_value::Value::BytesValue(b"x".to_vec()));
        assert!(compare_traces(&expected, &grouped(vec![("svc", bytes)])).is_err());
    }

    #[test]
    fn event_and_link_fields_are_compared_but_flags_are_not() {
        let mut with_link = span(1, "op");
        with_link.links.push(Link {
            trace_id: vec![9; 16],
            span_id: vec![9; 8],
            attributes: vec![kv("l", string("v"))],
            flags: 1,
            ..Default::default()
        });
        with_link.flags = 257;
        let expected = grouped(vec![("svc", with_link.clone())]);

        let mut other_flags = with_link.clone();
        other_flags.flags = 0;
        other_flags.links[0].flags = 0;
        assert_eq!(
            compare_traces(&expected, &grouped(vec![("svc", other_flags)])),
            Ok(())
        );

        let mut no_event_attributes = with_link.clone();
        for event in &mut no_event_attributes.events {
            event.attributes.clear();
        }
        let report =
            compare_traces(&expected, &grouped(vec![("svc", no_event_attributes)])).unwrap_err();
        assert!(
            report.contains("events[1].attributes[\"e\"]: missing (expected Bool(true))"),
            "{report}"
        );

        let mut link_state = with_link;
        link_state.links[0].trace_state = "k=v".into();
        let report = compare_traces(&expected, &grouped(vec![("svc", link_state)])).unwrap_err();
        assert!(report.contains("links[0].trace_state"), "{report}");
    }

    #[test]
    fn resource_scope_status_and_dropped_counts_are_compared() {
        let expected = grouped(vec![("svc", span(1, "op"))]);
        let mut actual = grouped(vec![("other", span(1, "op"))]);
        let report = compare_traces(&expected, &actual).unwrap_err();
        assert!(
            report.contains("resource.attributes[\"service.name\"]"),
            "{report}"
        );

        actual = grouped(vec![("svc", span(1, "op"))]);
        actual.resource_spans[0].scope_spans[0]
            .scope
            .as_mut()
            .unwrap()
            .version = "2".into();
        let first = &mut actual.resource_spans[0].scope_spans[0].spans[0];
        first.status = Some(Status {
            message: "boom".into(),
            code: 2,
        });
        first.dropped_links_count = 4;
        let report = compare_traces(&expected, &actual).unwrap_err();
        for field in [
            "scope.version",
            "status.code",
            "status.message",
            "dropped_links_count",
        ] {
            assert!(report.contains(field), "{field} missing from {report}");
        }
    }

    #[test]
    fn duplicates_are_deduped_but_extra_duplicates_still_mismatch() {
        let mut copy = span(1, "op");
        copy.start_time_unix_nano += 1;
        let expected = grouped(vec![("svc", span(1, "op")), ("svc", copy.clone())]);
        let same = grouped(vec![("svc", copy.clone()), ("svc", span(1, "op"))]);
        assert_eq!(compare_traces(&expected, &same), Ok(()));
        let single = grouped(vec![("svc", span(1, "op"))]);
        let report = compare_traces(&expected, &single).unwrap_err();
        assert!(report.contains("expected 2 span(s), got 1"), "{report}");
    }

    #[test]
    fn missing_and_unexpected_spans_are_listed() {
        let expected = grouped(vec![("svc", span(1, "a")), ("svc", span(2, "b"))]);
        let actual = grouped(vec![("svc", span(1, "a")), ("svc", span(3, "c"))]);
        let report = compare_traces(&expected, &actual).unwrap_err();
        assert!(
            report.contains("missing: span 0000000000000002"),
            "{report}"
        );
        assert!(
            report.contains("unexpected: span 0000000000000003"),
            "{report}"
        );
    }

    #[test]
    fn slices_compare_by_sorted_trace_id() {
        let first = grouped(vec![("svc", span(1, "a"))]);
        let mut second_span = span(2, "b");
        second_span.trace_id = vec![1; 16];
        let second = grouped(vec![("svc", second_span)]);
        assert_eq!(
            compare_trace_slices(
                &[first.clone(), second.clone()],
                &[second.clone(), first.clone()]
            ),
            Ok(())
        );
        let report = compare_trace_slices(&[first.clone(), second], &[first]).unwrap_err();
        assert!(report.contains("expected 2 trace(s)"), "{report}");
    }
}
