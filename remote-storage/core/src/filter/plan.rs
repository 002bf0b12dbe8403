//! What an index can use from a filter: the positive conjunctive parts ([`FilterPlan`]).
//!
//! A plan is a set of necessary conditions: every span that satisfies the filter satisfies the
//! plan ([`FilterPlan::admits`]), never the reverse. A backend narrows its candidates with
//! the parts its indexes answer and decides every candidate with [`super::Filter::matches`],
//! so an index can make a search faster but never change its answer.
//!
//! Only the conjuncts of the top-level `and` (nested `and`s flattened) are read, and of those
//! only the leaves whose truth implies a value an index holds:
//! - `eq` / `in` on `resource.service`, `span.name`, `span.kind`, `span.status`: the field is
//!   one of the constants (several such conjuncts intersect);
//! - `eq` / `in` on an attribute with a constant: the span carries the attribute with one of
//!   the constants' canonical texts, the text every index stores
//!   ([`crate::attribute::any_value_text`]);
//! - `eq gt gte lt lte` on `span.duration` and `span.startTime`: an inclusive range.
//!
//! Everything else (`or`, `not`, `ne`, `not_in`, `regex`, `exists`, `some`, event and link
//! fields, reference-to-reference comparisons) narrows nothing: such a filter walks the time
//! window, newest first, until `search_depth` traces pass.

use std::collections::BTreeSet;

use jaeger_remote_proto::otlp::common::any_value::Value;
use jaeger_remote_proto::otlp::trace::span::SpanKind;
use jaeger_remote_proto::otlp::trace::status::StatusCode;

use super::{
    AttributeLevel, CompareOp, ConstValue, Constant, Field, Operand, Predicate, Reference,
    ValueList,
};
use crate::attribute::{any_value_text, value_text};
use crate::model::Span;

/// The necessary conditions of a filter that indexes can answer. `None` (or an empty range
/// bound) means "not narrowed".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterPlan {
    /// The span's service (`resource.service`) is one of these.
    pub services: Option<BTreeSet<String>>,
    /// The span's name is one of these.
    pub span_names: Option<BTreeSet<String>>,
    /// The span's kind is one of these.
    pub kinds: Option<BTreeSet<i32>>,
    /// The span's status code is one of these.
    pub statuses: Option<BTreeSet<i32>>,
    /// Each must hold: the span (at the term's level) carries the attribute with one of the
    /// texts.
    pub attributes: Vec<AttributeTerms>,
    /// Inclusive bounds on the span's duration in nanoseconds.
    pub duration: NanosRange,
    /// Inclusive bounds on the span's start in Unix nanoseconds (the filter's own
    /// `span.startTime` conditions; the query's window is separate).
    pub start: NanosRange,
}

/// An attribute condition an index can look up: `key` with one of `texts` (canonical value
/// texts) at `level`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeTerms {
    /// The attribute key.
    pub key: String,
    /// Where the filter looks it up (`SpanOrResource`: the span's or its resource's
    /// attributes; an event or link level: any event's or link's).
    pub level: AttributeLevel,
    /// The canonical texts one of which the attribute's value renders as (never empty).
    pub texts: BTreeSet<String>,
}

/// An inclusive range of nanoseconds; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NanosRange {
    /// Lowest value admitted.
    pub min: Option<i128>,
    /// Highest value admitted.
    pub max: Option<i128>,
}

impl NanosRange {
    fn contains(self, value: i128) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    fn is_empty(self) -> bool {
        matches!((self.min, self.max), (Some(min), Some(max)) if min > max)
    }

    fn narrow(&mut self, min: Option<i128>, max: Option<i128>) {
        if let Some(min) = min {
            self.min = Some(self.min.map_or(min, |old| old.max(min)));
        }
        if let Some(max) = max {
            self.max = Some(self.max.map_or(max, |old| old.min(max)));
        }
    }

    /// The range as unsigned bounds (durations and start times are never negative), `None`
    /// when it holds no such value.
    pub fn unsigned(self) -> Option<(u64, u64)> {
        let min = self
            .min
            .map_or(0, |min| u64::try_from(min.max(0)).unwrap_or(u64::MAX));
        let max = match self.max {
            None => u64::MAX,
            Some(max) if max < 0 => return None,
            Some(max) => u64::try_from(max).unwrap_or(u64::MAX),
        };
        (min <= max).then_some((min, max))
    }
}

impl FilterPlan {
    /// The plan of a resolved predicate.
    pub fn of(predicate: &Predicate) -> Self {
        let mut plan = Self::default();
        plan.add(predicate);
        plan
    }

    /// Whether no span can satisfy the plan (so none satisfies the filter).
    pub fn is_unsatisfiable(&self) -> bool {
        [&self.services, &self.span_names]
            .into_iter()
            .any(|set| set.as_ref().is_some_and(BTreeSet::is_empty))
            || [&self.kinds, &self.statuses]
                .into_iter()
                .any(|set| set.as_ref().is_some_and(BTreeSet::is_empty))
            || self.duration.is_empty()
            || self.start.is_empty()
            || self.attributes.iter().any(|terms| terms.texts.is_empty())
    }

    /// Whether the plan narrows nothing (every span is a candidate).
    pub fn is_unconstrained(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the span satisfies every necessary condition: true for every span the filter
    /// matches. Backends answer the same conditions from their indexes; this is their
    /// reference (and the planner's test).
    pub fn admits(&self, span: &Span) -> bool {
        let in_set = |set: &Option<BTreeSet<String>>, value: &str| {
            set.as_ref().is_none_or(|set| set.contains(value))
        };
        let in_codes = |set: &Option<BTreeSet<i32>>, value: i32| {
            set.as_ref().is_none_or(|set| set.contains(&value))
        };
        in_set(&self.services, span.service_name())
            && in_set(&self.span_names, span.name())
            && in_codes(&self.kinds, span.kind() as i32)
            && in_codes(&self.statuses, span.status_code() as i32)
            && self.duration.contains(i128::from(span.duration_nanos()))
            && self.start.contains(i128::from(span.start().0))
            && self.attributes.iter().all(|terms| terms.admits(span))
    }

    fn add(&mut self, predicate: &Predicate) {
        match predicate {
            Predicate::And(operands) => operands.iter().for_each(|operand| self.add(operand)),
            Predicate::Compare {
                op,
                left: Operand::Reference(reference),
                right: Operand::Constant(constant),
            } => self.add_comparison(*op, reference, constant),
            Predicate::In {
                negated: false,
                target,
                list,
            } => self.add_membership(target, list),
            _ => {}
        }
    }

    fn add_comparison(&mut self, op: CompareOp, reference: &Reference, constant: &Constant) {
        if op == CompareOp::Eq {
            self.add_membership_of(reference, std::slice::from_ref(constant));
            return;
        }
        let (range, nanos) = match (reference, constant.value) {
            (Reference::Field(Field::SpanDuration), ConstValue::Duration(nanos)) => {
                (&mut self.duration, nanos)
            }
            (Reference::Field(Field::SpanStartTime), ConstValue::Timestamp(nanos)) => {
                (&mut self.start, nanos)
            }
            _ => return,
        };
        match op {
            CompareOp::Gt => range.narrow(Some(nanos.saturating_add(1)), None),
            CompareOp::Gte => range.narrow(Some(nanos), None),
            CompareOp::Lt => range.narrow(None, Some(nanos.saturating_sub(1))),
            CompareOp::Lte => range.narrow(None, Some(nanos)),
            CompareOp::Eq | CompareOp::Ne => {}
        }
    }

    fn add_membership(&mut self, target: &Reference, list: &ValueList) {
        self.add_membership_of(target, &list.values);
    }

    /// `reference` equals one of `constants` (a one-element list for `eq`).
    fn add_membership_of(&mut self, reference: &Reference, constants: &[Constant]) {
        match reference {
            Reference::Field(field) => self.add_field_values(*field, constants),
            Reference::Attribute { key, level } => {
                let mut texts = BTreeSet::new();
                for constant in constants {
                    texts.extend(equal_texts(constant));
                }
                // A constant that no stored value equals (a timestamp beside an attribute
                // cannot be resolved, so this is only defensive) narrows to nothing: the
                // empty text set is kept and no span is admitted.
                self.attributes.push(AttributeTerms {
                    key: key.clone(),
                    level: *level,
                    texts,
                });
            }
        }
    }

    fn add_field_values(&mut self, field: Field, constants: &[Constant]) {
        match field {
            Field::ResourceService => intersect(&mut self.services, texts_of(constants)),
            Field::SpanName => intersect(&mut self.span_names, texts_of(constants)),
            Field::SpanKind => intersect(
                &mut self.kinds,
                texts_of(constants)
                    .iter()
                    .filter_map(|word| kind_of_word(word))
                    .map(|kind| kind as i32)
                    .collect(),
            ),
            Field::SpanStatus => intersect(
                &mut self.statuses,
                texts_of(constants)
                    .iter()
                    .filter_map(|word| status_of_word(word))
                    .map(|code| code as i32)
                    .collect(),
            ),
            Field::SpanDuration | Field::SpanStartTime => {
                // `eq` pins one instant; `in` over several narrows to the range spanning them.
                let values: Vec<i128> = constants
                    .iter()
                    .filter_map(|constant| match constant.value {
                        ConstValue::Duration(nanos) | ConstValue::Timestamp(nanos) => Some(nanos),
                        _ => None,
                    })
                    .collect();
                let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
                    return;
                };
                let range = if field == Field::SpanDuration {
                    &mut self.duration
                } else {
                    &mut self.start
                };
                range.narrow(Some(min), Some(max));
            }
            _ => {}
        }
    }
}

impl AttributeTerms {
    /// Whether the span carries the attribute at the term's level with one of the texts.
    pub fn admits(&self, span: &Span) -> bool {
        let otlp = span.otlp();
        let has = |attributes: &[jaeger_remote_proto::otlp::common::KeyValue]| {
            attributes.iter().any(|attribute| {
                attribute.key == self.key
                    && attribute
                        .value
                        .as_ref()
                        .and_then(|value| value.value.as_ref())
                        .is_some()
                    && self
                        .texts
                        .contains(any_value_text(attribute.value.as_ref()).as_ref())
            })
        };
        let resource = &span.resource().otlp().attributes;
        match self.level {
            AttributeLevel::SpanOrResource => has(&otlp.attributes) || has(resource),
            AttributeLevel::Level(level) => match level {
                super::Level::Span => has(&otlp.attributes),
                super::Level::Resource => has(resource),
                super::Level::Scope => has(&span.scope().otlp().attributes),
                super::Level::Event => otlp.events.iter().any(|event| has(&event.attributes)),
                super::Level::Link => otlp.links.iter().any(|link| has(&link.attributes)),
            },
        }
    }
}

/// The canonical texts of the stored values a constant can equal beside an attribute.
fn equal_texts(constant: &Constant) -> Vec<String> {
    match constant.value {
        // Untyped: equal when the stored value's canonical text is the constant's text.
        ConstValue::Untyped | ConstValue::Text => vec![constant.text.clone()],
        ConstValue::Int(number) => vec![number.to_string()],
        ConstValue::Bool(flag) => vec![flag.to_string()],
        // 0.0 equals -0.0, whose texts differ; NaN equals nothing.
        ConstValue::Double(0.0) => vec!["0".to_owned(), "-0".to_owned()],
        ConstValue::Double(number) if number.is_nan() => Vec::new(),
        ConstValue::Double(number) => vec![value_text(&Value::DoubleValue(number)).into_owned()],
        ConstValue::Timestamp(_) | ConstValue::Duration(_) => Vec::new(),
    }
}

/// The texts of constants compared with a text field (resolved to the field's words).
fn texts_of(constants: &[Constant]) -> BTreeSet<String> {
    constants
        .iter()
        .filter(|constant| constant.value == ConstValue::Text)
        .map(|constant| constant.text.clone())
        .collect()
}

fn intersect<T: Ord>(current: &mut Option<BTreeSet<T>>, values: BTreeSet<T>) {
    *current = Some(match current.take() {
        None => values,
        Some(old) => old
            .into_iter()
            .filter(|value| values.contains(value))
            .collect(),
    });
}

fn kind_of_word(word: &str) -> Option<SpanKind> {
    Some(match word {
        "unspecified" => SpanKind::Unspecified,
        "internal" => SpanKind::Internal,
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => return None,
    })
}

fn status_of_word(word: &str) -> Option<StatusCode> {
    Some(match word {
        "unset" => StatusCode::Unset,
        "ok" => StatusCode::Ok,
        "error" => StatusCode::Error,
        _ => return None,
    })
}
