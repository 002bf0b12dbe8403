//! Structured filters (`jaeger.expression.v1`, `TraceQueryParameters.filter`): one engine that
//! decodes, validates and resolves a filter [`Call`] into a typed [`Predicate`], and evaluates it
//! on the span model, so every backend gets the same semantics.
//!
//! # Stages
//! [`Filter::from_proto`] runs the three stages every boundary runs, in order, over the whole
//! tree: the first failing stage is the one reported, with the path of the offending expression
//! inside the request (`query.filter.args[1].call.args[0]: unknown field "durationn" at level
//! span`).
//! 1. **Decode** (`resolve.rs`): exactly one term per expression, typed scalars parse (Go
//!    `strconv` rules), calls nested at most [`MAX_NESTING_DEPTH`] deep (root call = 1).
//! 2. **Validate**: closed vocabularies (operators, levels, field names, scalar types), arity and
//!    argument kinds, non-empty keys and lists, a type on lists compared with an attribute,
//!    domains that agree, orderability, RE2 rules for `regex` (`pattern.rs`), `some` binding.
//! 3. **Resolve**: constants parsed against the built-in field they are compared with
//!    (durations in Go syntax, RFC 3339 timestamps, span kind and status words, `literal.rs`),
//!    list elements parsed, and the reference put first (`gt("2s", span.duration)` becomes
//!    `lt(span.duration, "2s")`). Resolving a resolved filter ([`Filter::to_proto`]) gives it
//!    back unchanged.
//!
//! Evaluation (`eval.rs`) follows the spec's reference rules: a leaf on a multi-valued reference
//! (an unqualified attribute is looked up on the span and on its resource; an event or link
//! reference outside `some` has one value per element) holds when one value satisfies it;
//! `ne` and `not_in` need the reference present and no value equal; `not` of a leaf on an absent
//! reference is true.
//!
//! # Decisions on the spec's open points
//! - **Array, map and bytes attributes** are one value each, compared through their canonical
//!   text (JSON for arrays and maps, base64 for bytes; [`crate::attribute::any_value_text`]),
//!   which is what the legacy `attributes` search compares: an untyped constant equals them
//!   when it equals that text. A typed constant never equals them (no wire type names them),
//!   and they are unorderable (ordering predicates on them are false).
//! - **Untyped constants beside an attribute** equal a stored value when they equal its
//!   canonical text (`"500"` matches int 500 and string `"500"`; `"500.0"` matches neither), so
//!   the legacy `attributes` map and `eq(attr(k), "v")` select exactly the same spans. Ordering
//!   an untyped constant follows the stored type: numbers compare numerically when the constant
//!   is a number (else the predicate is false), strings lexicographically, other types never.
//! - **Typed constants** only meet values stored at their type: an `int` constant never
//!   compares with a stored double, nor a `double` with a stored int (the RFC gives no
//!   crossover). Two references compare when their values have the same type.
//! - **`regex` on attributes not stored as strings** matches against their canonical text
//!   (`regex(attr(http.status_code), "5..")` finds int 503), as the legacy search and text
//!   indexes see them.
//! - **Empty built-in text fields are absent**: a root span has no `span.parentSpanID`, an
//!   empty `span.statusMessage`, `span.traceState` or `scope.version` is no value (proto3
//!   cannot tell empty from unset). So `exists(span.parentSpanID)` selects non-root spans and
//!   `ne(span.statusMessage, "x")` needs a message. `span.kind` and `span.status` always have a
//!   value (`unspecified`, `unset`).
//! - **Two multi-valued references** (`ne(attr(span:a), attr(resource:a))`): a positive
//!   comparison holds when some pair of values satisfies it; `ne` needs both sides present and
//!   no pair equal.
//! - **The window**: the matching span itself must start inside the query's time window (as the
//!   legacy search and Jaeger's memory store do): the window is ANDed with the filter per span
//!   ([`crate::matcher::SpanMatcher`]).
//! - **`not` over a positive leaf** is evaluated exactly (true on absence); backends that
//!   widen unqualified references must refuse it, as they refuse `ne` and `not_in`.
//! - **Regex dialect**: RE2 as Go's `regexp` reads it. Perl classes keep RE2's ASCII meaning
//!   (`\d` is `[0-9]`, not Unicode digits); RE2 syntax Rust's parser lacks (`\Q…\E`, `\C`,
//!   octal escapes) is refused as unparsable, and Rust-only syntax (class set operations,
//!   `\u` escapes, the `x`, `u` and `R` flags) is refused as not RE2.

use std::sync::Arc;

use jaeger_remote_proto::expression::v1::Call;

use crate::error::StoreError;
use crate::model::Span;

pub mod build;
mod eval;
mod legacy;
mod literal;
mod pattern;
mod plan;
mod proto;
mod resolve;

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use legacy::{AttributeReach, legacy_filter_form};
pub use pattern::Pattern;
pub use plan::{AttributeTerms, FilterPlan, NanosRange};
pub use resolve::MAX_NESTING_DEPTH;

/// A decoded, validated and resolved structured filter, ready to test spans.
///
/// Equality compares the finalized form ([`Filter::to_proto`]), so a filter and its
/// re-resolved finalized form are equal.
#[derive(Debug, Clone)]
pub struct Filter {
    predicate: Arc<Predicate>,
    finalized: Arc<Call>,
}

impl Filter {
    /// Decodes, validates and resolves a filter. `path` names the filter in the request
    /// (`query.filter`); errors are `INVALID_ARGUMENT` naming the path of the offending
    /// expression below it.
    pub fn from_proto(call: &Call, path: &str) -> Result<Self, StoreError> {
        let predicate = resolve::resolve_filter(call, path)?;
        let finalized = proto::predicate_to_call(&predicate);
        Ok(Self {
            predicate: Arc::new(predicate),
            finalized: Arc::new(finalized),
        })
    }

    /// Whether this one span satisfies the filter (the trace matches when one span does).
    pub fn matches(&self, span: &Span) -> bool {
        eval::matches(&self.predicate, span)
    }

    /// The necessary conditions an index can answer ([`FilterPlan`]): every span the filter
    /// matches satisfies them, so a backend may narrow its candidates with them and must
    /// still decide each candidate with [`Filter::matches`].
    pub fn plan(&self) -> FilterPlan {
        FilterPlan::of(&self.predicate)
    }

    /// The resolved predicate tree, for backends that translate filters into their own query
    /// language.
    pub fn predicate(&self) -> &Predicate {
        &self.predicate
    }

    /// The finalized wire form: constants as sent, the reference first in every comparison.
    pub fn to_proto(&self) -> Call {
        Call::clone(&self.finalized)
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.finalized == other.finalized
    }
}

// The finalized `Call` holds only strings and lists of them, so its equality is reflexive.
impl Eq for Filter {}

/// A resolved filter node. Every node is a predicate on one span (and, inside `some`, on the
/// event or link bound by it).
#[derive(Debug, Clone)]
pub enum Predicate {
    /// All hold (at least two operands).
    And(Vec<Predicate>),
    /// At least one holds (at least two operands).
    Or(Vec<Predicate>),
    /// The operand does not hold.
    Not(Box<Predicate>),
    /// `eq ne gt lt gte lte`. `left` is a reference unless both operands are constants.
    Compare {
        /// The comparison, mirrored when the operands were swapped to put the reference first.
        op: CompareOp,
        /// The reference (or, when both are constants, the first constant).
        left: Operand,
        /// The other operand.
        right: Operand,
    },
    /// One value of the target contains a match of the pattern (unanchored, case-sensitive).
    Regex {
        /// An attribute or a text field.
        target: Reference,
        /// The checked and compiled pattern.
        pattern: Pattern,
    },
    /// The reference has a value.
    Exists(Reference),
    /// `in` (`negated: false`): one value equals one element; `not_in`: the reference is
    /// present and no value is in the list.
    In {
        /// Whether this is `not_in`.
        negated: bool,
        /// The reference tested.
        target: Reference,
        /// The elements, resolved at the list's (or the field's) type.
        list: ValueList,
    },
    /// At least one event (or link) of the span satisfies the predicate, with references at
    /// that level bound to it.
    Some {
        /// The quantified collection.
        collection: Collection,
        /// The predicate tested on each element.
        predicate: Box<Predicate>,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: some value equals.
    Eq,
    /// `ne`: present and no value equals.
    Ne,
    /// `gt`.
    Gt,
    /// `lt`.
    Lt,
    /// `gte`.
    Gte,
    /// `lte`.
    Lte,
}

impl CompareOp {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Lt => "lt",
            Self::Gte => "gte",
            Self::Lte => "lte",
        }
    }

    /// The operator that holds with the operands swapped (`a > b` is `b < a`).
    pub fn mirrored(self) -> Self {
        match self {
            Self::Eq => Self::Eq,
            Self::Ne => Self::Ne,
            Self::Gt => Self::Lt,
            Self::Lt => Self::Gt,
            Self::Gte => Self::Lte,
            Self::Lte => Self::Gte,
        }
    }

    /// Whether the operator orders its operands (and so needs orderable ones).
    pub fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Lt | Self::Gte | Self::Lte)
    }
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub enum Operand {
    /// An attribute or a built-in field of the span.
    Reference(Reference),
    /// A constant.
    Constant(Constant),
}

/// Something looked up on the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// An attribute by key.
    Attribute {
        /// The key (never empty).
        key: String,
        /// Where it is looked up.
        level: AttributeLevel,
    },
    /// A built-in field.
    Field(Field),
}

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeLevel {
    /// Level `""`: the span's attributes and its resource's (not scope, event or link).
    SpanOrResource,
    /// A level named in the reference.
    Level(Level),
}

/// The five levels of the span model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The span itself.
    Span,
    /// The enclosing `ResourceSpans`' resource.
    Resource,
    /// The enclosing `ScopeSpans`' instrumentation scope.
    Scope,
    /// The span's events.
    Event,
    /// The span's links.
    Link,
}

impl Level {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Span => "span",
            Self::Resource => "resource",
            Self::Scope => "scope",
            Self::Event => "event",
            Self::Link => "link",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        let level = match name {
            "span" => Self::Span,
            "resource" => Self::Resource,
            "scope" => Self::Scope,
            "event" => Self::Event,
            "link" => Self::Link,
            _ => return None,
        };
        Some(level)
    }
}

/// The collection `some` quantifies over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// The span's events.
    Event,
    /// The span's links.
    Link,
}

/// The built-in fields of the registry (spec §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `span.traceID` (lower-case hex).
    SpanTraceId,
    /// `span.spanID` (lower-case hex).
    SpanSpanId,
    /// `span.parentSpanID` (lower-case hex; absent on a root span).
    SpanParentSpanId,
    /// `span.traceState`.
    SpanTraceState,
    /// `span.name`.
    SpanName,
    /// `span.statusMessage`.
    SpanStatusMessage,
    /// `span.kind`.
    SpanKind,
    /// `span.status`.
    SpanStatus,
    /// `span.startTime`.
    SpanStartTime,
    /// `span.endTime`.
    SpanEndTime,
    /// `span.duration` (end − start).
    SpanDuration,
    /// `resource.service` (the resource's `service.name`).
    ResourceService,
    /// `resource.schemaURL`.
    ResourceSchemaUrl,
    /// `scope.name`.
    ScopeName,
    /// `scope.version`.
    ScopeVersion,
    /// `scope.schemaURL`.
    ScopeSchemaUrl,
    /// `event.name`.
    EventName,
    /// `event.time`.
    EventTime,
    /// `event.timeSinceStart` (event time − span start).
    EventTimeSinceStart,
    /// `link.traceID` of the linked span.
    LinkTraceId,
    /// `link.spanID` of the linked span.
    LinkSpanId,
    /// `link.traceState` of the linked span.
    LinkTraceState,
}

/// Every field, for lookups and tests.
const FIELDS: [Field; 22] = [
    Field::SpanTraceId,
    Field::SpanSpanId,
    Field::SpanParentSpanId,
    Field::SpanTraceState,
    Field::SpanName,
    Field::SpanStatusMessage,
    Field::SpanKind,
    Field::SpanStatus,
    Field::SpanStartTime,
    Field::SpanEndTime,
    Field::SpanDuration,
    Field::ResourceService,
    Field::ResourceSchemaUrl,
    Field::ScopeName,
    Field::ScopeVersion,
    Field::ScopeSchemaUrl,
    Field::EventName,
    Field::EventTime,
    Field::EventTimeSinceStart,
    Field::LinkTraceId,
    Field::LinkSpanId,
    Field::LinkTraceState,
];

impl Field {
    /// The field's level and its case-sensitive registry name.
    pub fn level_and_name(self) -> (Level, &'static str) {
        match self {
            Self::SpanTraceId => (Level::Span, "traceID"),
            Self::SpanSpanId => (Level::Span, "spanID"),
            Self::SpanParentSpanId => (Level::Span, "parentSpanID"),
            Self::SpanTraceState => (Level::Span, "traceState"),
            Self::SpanName => (Level::Span, "name"),
            Self::SpanStatusMessage => (Level::Span, "statusMessage"),
            Self::SpanKind => (Level::Span, "kind"),
            Self::SpanStatus => (Level::Span, "status"),
            Self::SpanStartTime => (Level::Span, "startTime"),
            Self::SpanEndTime => (Level::Span, "endTime"),
            Self::SpanDuration => (Level::Span, "duration"),
            Self::ResourceService => (Level::Resource, "service"),
            Self::ResourceSchemaUrl => (Level::Resource, "schemaURL"),
            Self::ScopeName => (Level::Scope, "name"),
            Self::ScopeVersion => (Level::Scope, "version"),
            Self::ScopeSchemaUrl => (Level::Scope, "schemaURL"),
            Self::EventName => (Level::Event, "name"),
            Self::EventTime => (Level::Event, "time"),
            Self::EventTimeSinceStart => (Level::Event, "timeSinceStart"),
            Self::LinkTraceId => (Level::Link, "traceID"),
            Self::LinkSpanId => (Level::Link, "spanID"),
            Self::LinkTraceState => (Level::Link, "traceState"),
        }
    }

    /// Looks a field up by level and exact name.
    pub fn find(level: Level, name: &str) -> Option<Self> {
        FIELDS
            .into_iter()
            .find(|field| field.level_and_name() == (level, name))
    }

    /// The field's value type.
    pub fn field_type(self) -> FieldType {
        match self {
            Self::SpanKind => FieldType::SpanKind,
            Self::SpanStatus => FieldType::SpanStatus,
            Self::SpanStartTime | Self::SpanEndTime | Self::EventTime => FieldType::Timestamp,
            Self::SpanDuration | Self::EventTimeSinceStart => FieldType::Duration,
            _ => FieldType::String,
        }
    }

    /// `level.name`, as errors and docs write it.
    pub fn display_name(self) -> String {
        let (level, name) = self.level_and_name();
        format!("{}.{name}", level.name())
    }
}

/// The type of a built-in field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    String,
    /// One of `unspecified internal server client producer consumer`.
    SpanKind,
    /// One of `unset ok error`.
    SpanStatus,
    /// A point in time (nanoseconds since the Unix epoch).
    Timestamp,
    /// A signed span of time in nanoseconds.
    Duration,
}

/// The wire types of `Scalar.type` and `List.type` (besides `""`, untyped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    /// `string`.
    String,
    /// `int`: Go `strconv.ParseInt(s, 10, 64)`.
    Int,
    /// `double`: Go `strconv.ParseFloat(s, 64)`.
    Double,
    /// `bool`: Go `strconv.ParseBool`.
    Bool,
}

impl ScalarType {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Double => "double",
            Self::Bool => "bool",
        }
    }

    /// `Ok(None)` for `""` (untyped), `Err(())` for a name outside the closed set.
    pub(crate) fn from_wire(name: &str) -> Result<Option<Self>, ()> {
        match name {
            "" => Ok(None),
            "string" => Ok(Some(Self::String)),
            "int" => Ok(Some(Self::Int)),
            "double" => Ok(Some(Self::Double)),
            "bool" => Ok(Some(Self::Bool)),
            _ => Err(()),
        }
    }
}

/// A constant as sent, with its value resolved against what it is compared with.
#[derive(Debug, Clone)]
pub struct Constant {
    /// The text as sent (never rewritten: `"1.50"` stays `"1.50"`).
    pub text: String,
    /// The declared `type`; `None` when untyped.
    pub declared: Option<ScalarType>,
    /// The resolved value.
    pub value: ConstValue,
}

/// A constant's resolved value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstValue {
    /// Untyped beside an attribute or another constant: it equals a stored value whose
    /// canonical text is [`Constant::text`] and orders as the stored value.
    Untyped,
    /// Text ([`Constant::text`]): a typed `string`, or a constant beside a text, span kind or
    /// span status field (then one of the field's words).
    Text,
    /// A typed `int`.
    Int(i64),
    /// A typed `double`.
    Double(f64),
    /// A typed `bool`.
    Bool(bool),
    /// A timestamp beside a timestamp field, in nanoseconds since the Unix epoch.
    Timestamp(i128),
    /// A duration beside a duration field, in nanoseconds.
    Duration(i128),
}

/// The elements of an `in` / `not_in` list, all of one type.
#[derive(Debug, Clone)]
pub struct ValueList {
    /// The list's declared `type`; `None` when it takes the compared field's type.
    pub declared: Option<ScalarType>,
    /// The elements, each resolved.
    pub values: Vec<Constant>,
}
