//! Evaluation of a resolved [`Predicate`] on one span.
//!
//! A reference yields zero or more values ([`Datum`]s): an unqualified attribute its span and
//! resource values, an event or link reference one value per element (only the bound element
//! inside `some`). A leaf holds when one value (one pair, for two references) satisfies it;
//! `ne` and `not_in` need every side present and no value equal.

use std::borrow::Cow;
use std::cmp::Ordering;

use jaeger_remote_proto::otlp::common::{KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::trace::span::{Event, Link, SpanKind};
use jaeger_remote_proto::otlp::trace::status::StatusCode;

use super::literal::{parse_go_float, parse_go_int};
use super::{
    AttributeLevel, Collection, CompareOp, ConstValue, Constant, Field, Level, Operand, Predicate,
    Reference,
};
use crate::attribute::{attribute_value, value_text};
use crate::model::Span;

/// The span under test, and the event or link bound by enclosing `some`s.
#[derive(Clone, Copy)]
struct Context<'a> {
    span: &'a Span,
    event: Option<&'a Event>,
    link: Option<&'a Link>,
}

/// One value of a reference or a constant.
#[derive(Debug)]
enum Datum<'a> {
    /// A string attribute, a text field (span kind and status as their words), a typed
    /// `string` constant or one resolved against a text field.
    Text(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Nanoseconds since the Unix epoch.
    Time(i128),
    /// Nanoseconds.
    Duration(i128),
    /// A bytes, array or map attribute: compared through its canonical text only.
    Opaque(&'a Value),
    /// An untyped constant beside an attribute or another constant.
    Untyped(&'a str),
}

pub(super) fn matches(predicate: &Predicate, span: &Span) -> bool {
    holds(
        predicate,
        Context {
            span,
            event: None,
            link: None,
        },
    )
}

fn holds(predicate: &Predicate, context: Context<'_>) -> bool {
    match predicate {
        Predicate::And(operands) => operands.iter().all(|operand| holds(operand, context)),
        Predicate::Or(operands) => operands.iter().any(|operand| holds(operand, context)),
        Predicate::Not(operand) => !holds(operand, context),
        Predicate::Compare { op, left, right } => compare(*op, left, right, context),
        Predicate::Regex { target, pattern } => any_value(target, context, &mut |value| {
            canonical_text(value).is_some_and(|text| pattern.is_match(&text))
        }),
        Predicate::Exists(target) => is_present(target, context),
        Predicate::In {
            negated,
            target,
            list,
        } => {
            let mut in_list = |value: &Datum<'_>| {
                list.values
                    .iter()
                    .any(|element| equal(value, &constant_datum(element)))
            };
            if *negated {
                is_present(target, context) && !any_value(target, context, &mut in_list)
            } else {
                any_value(target, context, &mut in_list)
            }
        }
        Predicate::Some {
            collection,
            predicate,
        } => {
            let otlp = context.span.otlp();
            match collection {
                Collection::Event => otlp.events.iter().any(|event| {
                    holds(
                        predicate,
                        Context {
                            event: Some(event),
                            ..context
                        },
                    )
                }),
                Collection::Link => otlp.links.iter().any(|link| {
                    holds(
                        predicate,
                        Context {
                            link: Some(link),
                            ..context
                        },
                    )
                }),
            }
        }
    }
}

fn compare(op: CompareOp, left: &Operand, right: &Operand, context: Context<'_>) -> bool {
    if op == CompareOp::Ne {
        return operand_present(left, context)
            && operand_present(right, context)
            && !any_operand(left, context, &mut |left_value| {
                any_operand(right, context, &mut |right_value| {
                    equal(left_value, right_value)
                })
            });
    }
    any_operand(left, context, &mut |left_value| {
        any_operand(right, context, &mut |right_value| {
            relates(op, left_value, right_value)
        })
    })
}

fn relates(op: CompareOp, left: &Datum<'_>, right: &Datum<'_>) -> bool {
    match op {
        CompareOp::Eq => equal(left, right),
        CompareOp::Ne => !equal(left, right),
        CompareOp::Gt => order(left, right) == Some(Ordering::Greater),
        CompareOp::Lt => order(left, right) == Some(Ordering::Less),
        CompareOp::Gte => matches!(
            order(left, right),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        CompareOp::Lte => matches!(order(left, right), Some(Ordering::Less | Ordering::Equal)),
    }
}

fn operand_present(operand: &Operand, context: Context<'_>) -> bool {
    match operand {
        Operand::Reference(reference) => is_present(reference, context),
        Operand::Constant(_) => true,
    }
}

fn any_operand(
    operand: &Operand,
    context: Context<'_>,
    visit: &mut dyn FnMut(&Datum<'_>) -> bool,
) -> bool {
    match operand {
        Operand::Reference(reference) => any_value(reference, context, visit),
        Operand::Constant(constant) => visit(&constant_datum(constant)),
    }
}

fn is_present(reference: &Reference, context: Context<'_>) -> bool {
    any_value(reference, context, &mut |_| true)
}

fn constant_datum(constant: &Constant) -> Datum<'_> {
    match constant.value {
        ConstValue::Untyped => Datum::Untyped(&constant.text),
        ConstValue::Text => Datum::Text(Cow::Borrowed(&constant.text)),
        ConstValue::Int(number) => Datum::Int(number),
        ConstValue::Double(number) => Datum::Double(number),
        ConstValue::Bool(flag) => Datum::Bool(flag),
        ConstValue::Timestamp(nanos) => Datum::Time(nanos),
        ConstValue::Duration(nanos) => Datum::Duration(nanos),
    }
}

/// Whether `visit` accepts one value of the reference on this span.
fn any_value(
    reference: &Reference,
    context: Context<'_>,
    visit: &mut dyn FnMut(&Datum<'_>) -> bool,
) -> bool {
    let span = context.span;
    match reference {
        Reference::Attribute { key, level } => match level {
            AttributeLevel::SpanOrResource => {
                any_attribute(&span.otlp().attributes, key, visit)
                    || any_attribute(&span.resource().otlp().attributes, key, visit)
            }
            AttributeLevel::Level(Level::Span) => {
                any_attribute(&span.otlp().attributes, key, visit)
            }
            AttributeLevel::Level(Level::Resource) => {
                any_attribute(&span.resource().otlp().attributes, key, visit)
            }
            AttributeLevel::Level(Level::Scope) => {
                any_attribute(&span.scope().otlp().attributes, key, visit)
            }
            AttributeLevel::Level(Level::Event) => events(context)
                .iter()
                .any(|event| any_attribute(&event.attributes, key, visit)),
            AttributeLevel::Level(Level::Link) => links(context)
                .iter()
                .any(|link| any_attribute(&link.attributes, key, visit)),
        },
        Reference::Field(field) => any_field_value(*field, context, visit),
    }
}

/// The bound event, or every event of the span.
fn events<'a>(context: Context<'a>) -> &'a [Event] {
    match context.event {
        Some(event) => std::slice::from_ref(event),
        None => &context.span.otlp().events,
    }
}

/// The bound link, or every link of the span.
fn links<'a>(context: Context<'a>) -> &'a [Link] {
    match context.link {
        Some(link) => std::slice::from_ref(link),
        None => &context.span.otlp().links,
    }
}

fn any_attribute(
    attributes: &[KeyValue],
    key: &str,
    visit: &mut dyn FnMut(&Datum<'_>) -> bool,
) -> bool {
    attributes
        .iter()
        .filter(|attribute| attribute.key == key)
        .filter_map(attribute_value)
        .filter_map(attribute_datum)
        .any(|value| visit(&value))
}

/// A stored attribute value; one without a value (or a profiles-only string index) is absent.
fn attribute_datum(value: &Value) -> Option<Datum<'_>> {
    let datum = match value {
        Value::StringValue(text) => Datum::Text(Cow::Borrowed(text)),
        Value::IntValue(number) => Datum::Int(*number),
        Value::DoubleValue(number) => Datum::Double(*number),
        Value::BoolValue(flag) => Datum::Bool(*flag),
        Value::StringValueStrindex(_) => return None,
        Value::BytesValue(_) | Value::ArrayValue(_) | Value::KvlistValue(_) => Datum::Opaque(value),
    };
    Some(datum)
}

/// Empty text is no value (see the module decisions: proto3 cannot tell it from unset).
fn visit_text(text: &str, visit: &mut dyn FnMut(&Datum<'_>) -> bool) -> bool {
    !text.is_empty() && visit(&Datum::Text(Cow::Borrowed(text)))
}

fn visit_hex(bytes: &[u8], visit: &mut dyn FnMut(&Datum<'_>) -> bool) -> bool {
    !bytes.is_empty() && visit(&Datum::Text(Cow::Owned(hex::encode(bytes))))
}

fn any_field_value(
    field: Field,
    context: Context<'_>,
    visit: &mut dyn FnMut(&Datum<'_>) -> bool,
) -> bool {
    let span = context.span;
    let otlp = span.otlp();
    let start = i128::from(otlp.start_time_unix_nano);
    match field {
        Field::SpanTraceId => visit_hex(&otlp.trace_id, visit),
        Field::SpanSpanId => visit_hex(&otlp.span_id, visit),
        Field::SpanParentSpanId => visit_hex(&otlp.parent_span_id, visit),
        Field::SpanTraceState => visit_text(&otlp.trace_state, visit),
        Field::SpanName => visit_text(&otlp.name, visit),
        Field::SpanStatusMessage => visit_text(
            otlp.status
                .as_ref()
                .map_or("", |status| status.message.as_str()),
            visit,
        ),
        Field::SpanKind => visit_text(kind_word(span.kind()), visit),
        Field::SpanStatus => visit_text(status_word(span.status_code()), visit),
        Field::SpanStartTime => visit(&Datum::Time(start)),
        Field::SpanEndTime => visit(&Datum::Time(i128::from(otlp.end_time_unix_nano))),
        Field::SpanDuration => visit(&Datum::Duration(
            i128::from(otlp.end_time_unix_nano) - start,
        )),
        Field::ResourceService => visit_text(span.service_name(), visit),
        Field::ResourceSchemaUrl => visit_text(span.resource().schema_url(), visit),
        Field::ScopeName => visit_text(&span.scope().otlp().name, visit),
        Field::ScopeVersion => visit_text(&span.scope().otlp().version, visit),
        Field::ScopeSchemaUrl => visit_text(span.scope().schema_url(), visit),
        Field::EventName => events(context)
            .iter()
            .any(|event| visit_text(&event.name, visit)),
        Field::EventTime => events(context)
            .iter()
            .any(|event| visit(&Datum::Time(i128::from(event.time_unix_nano)))),
        Field::EventTimeSinceStart => events(context)
            .iter()
            .any(|event| visit(&Datum::Duration(i128::from(event.time_unix_nano) - start))),
        Field::LinkTraceId => links(context)
            .iter()
            .any(|link| visit_hex(&link.trace_id, visit)),
        Field::LinkSpanId => links(context)
            .iter()
            .any(|link| visit_hex(&link.span_id, visit)),
        Field::LinkTraceState => links(context)
            .iter()
            .any(|link| visit_text(&link.trace_state, visit)),
    }
}

/// The spec's span kind words (unlike Jaeger's legacy words, unspecified has one).
pub(super) fn kind_word(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

pub(super) fn status_word(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    }
}

/// The text a value is stored as (the legacy search's canonical text), for untyped equality
/// and `regex`. Times and durations have none: nothing compares them as text.
fn canonical_text<'a>(value: &'a Datum<'_>) -> Option<Cow<'a, str>> {
    match value {
        Datum::Text(text) => Some(Cow::Borrowed(text.as_ref())),
        Datum::Untyped(text) => Some(Cow::Borrowed(text)),
        Datum::Int(number) => Some(Cow::Owned(number.to_string())),
        Datum::Double(number) => Some(value_text(&Value::DoubleValue(*number)).into_owned().into()),
        Datum::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        Datum::Opaque(stored) => Some(value_text(stored)),
        Datum::Time(_) | Datum::Duration(_) => None,
    }
}

fn equal(left: &Datum<'_>, right: &Datum<'_>) -> bool {
    match (left, right) {
        (Datum::Untyped(left), Datum::Untyped(right)) => left == right,
        (Datum::Untyped(constant), stored) | (stored, Datum::Untyped(constant)) => {
            canonical_text(stored).is_some_and(|text| text == *constant)
        }
        (Datum::Text(left), Datum::Text(right)) => left == right,
        (Datum::Int(left), Datum::Int(right)) => left == right,
        (Datum::Double(left), Datum::Double(right)) => left == right,
        (Datum::Bool(left), Datum::Bool(right)) => left == right,
        (Datum::Time(left), Datum::Time(right))
        | (Datum::Duration(left), Datum::Duration(right)) => left == right,
        (Datum::Opaque(left), Datum::Opaque(right)) => left == right,
        _ => false,
    }
}

/// How `left` orders against `right`; `None` when they do not order (different types,
/// unorderable types, NaN, an untyped constant that is not a number beside a number).
fn order(left: &Datum<'_>, right: &Datum<'_>) -> Option<Ordering> {
    match (left, right) {
        (Datum::Untyped(left), Datum::Untyped(right)) => Some(left.cmp(right)),
        (Datum::Untyped(constant), stored) => order_untyped(constant, stored),
        (stored, Datum::Untyped(constant)) => {
            order_untyped(constant, stored).map(Ordering::reverse)
        }
        (Datum::Text(left), Datum::Text(right)) => Some(left.cmp(right)),
        (Datum::Int(left), Datum::Int(right)) => Some(left.cmp(right)),
        (Datum::Double(left), Datum::Double(right)) => left.partial_cmp(right),
        (Datum::Time(left), Datum::Time(right))
        | (Datum::Duration(left), Datum::Duration(right)) => Some(left.cmp(right)),
        _ => None,
    }
}

/// An untyped constant orders as the stored value's type: numerically beside numbers,
/// lexicographically beside text.
fn order_untyped(constant: &str, stored: &Datum<'_>) -> Option<Ordering> {
    match stored {
        Datum::Text(text) => Some(constant.cmp(text.as_ref())),
        Datum::Int(number) => match parse_go_int(constant) {
            Some(integer) => Some(integer.cmp(number)),
            // A fractional constant beside an int: compared as doubles (exact up to 2^53).
            #[allow(clippy::cast_precision_loss)]
            None => parse_go_float(constant)?.partial_cmp(&(*number as f64)),
        },
        Datum::Double(number) => parse_go_float(constant)?.partial_cmp(number),
        _ => None,
    }
}
