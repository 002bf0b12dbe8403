//! Decoding, validation and resolution of a filter `Call` into a [`Predicate`].
//!
//! Stage 1 (decode) is a walk of its own, so a decoding error anywhere in the tree wins over a
//! validation error elsewhere. Stages 2 and 3 share one walk: validation errors end it at once,
//! resolution errors (constants that do not parse at the compared field's type) are kept, the
//! first one reported once the whole tree has validated. Every error names the path of the
//! offending expression (`query.filter.args[1].call.args[0]`).

use std::fmt::Display;

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{
    AttributeReference, Call, Expression, FieldReference, Scalar,
};

use super::literal::{
    SPAN_KIND_WORDS, SPAN_STATUS_WORDS, parse_go_bool, parse_go_duration, parse_go_float,
    parse_go_int, parse_rfc3339,
};
use super::{
    AttributeLevel, Collection, CompareOp, ConstValue, Constant, Field, FieldType, Level, Operand,
    Pattern, Predicate, Reference, ScalarType, ValueList,
};
use crate::error::StoreError;

/// Jaeger's `MaxNestingDepth`: the root call is at depth 1 and each call argument one deeper,
/// so 19 `not`s around an `eq` pass and 20 are refused. It also bounds the recursion of every
/// walk over a filter.
pub const MAX_NESTING_DEPTH: usize = 20;

const OPERATORS: &str = "and, or, not, eq, ne, gt, lt, gte, lte, regex, exists, in, not_in or some";
const LEVELS: &str = "span, resource, scope, event or link";

/// Runs the three stages on a filter whose request path is `path`.
pub(super) fn resolve_filter(call: &Call, path: &str) -> Result<Predicate, StoreError> {
    decode_call(call, path, 1)?;
    let mut resolver = Resolver { deferred: None };
    let predicate = resolver.call(call, path, Bound::default())?;
    match resolver.deferred {
        Some(error) => Err(error),
        None => Ok(predicate),
    }
}

fn invalid(path: &str, message: impl Display) -> StoreError {
    StoreError::invalid_argument(format!("{path}: {message}"))
}

fn argument_path(path: &str, index: usize) -> String {
    format!("{path}.args[{index}]")
}

/// What an expression holds, for messages.
fn term_name(expression: &Expression) -> &'static str {
    match &expression.term {
        None => "nothing",
        Some(Term::Attr(_)) => "attr",
        Some(Term::Field(_)) => "field",
        Some(Term::Nested(_)) => "nested",
        Some(Term::Scalar(_)) => "scalar",
        Some(Term::List(_)) => "list",
        Some(Term::Call(_)) => "call",
    }
}

// Stage 1.

fn decode_call(call: &Call, path: &str, depth: usize) -> Result<(), StoreError> {
    if depth > MAX_NESTING_DEPTH {
        return Err(invalid(
            path,
            format!("filter nested too deeply (calls nest at most {MAX_NESTING_DEPTH} deep)"),
        ));
    }
    for (index, argument) in call.args.iter().enumerate() {
        let path_of_argument = argument_path(path, index);
        match &argument.term {
            None => {
                return Err(invalid(
                    &path_of_argument,
                    "expression has no term (set exactly one of attr, field, nested, scalar, \
                     list or call)",
                ));
            }
            Some(Term::Call(inner)) => {
                decode_call(inner, &format!("{path_of_argument}.call"), depth + 1)?;
            }
            Some(Term::Scalar(scalar)) => {
                let declared = scalar_type(&scalar.r#type, &path_of_argument)?;
                if let Some(declared) = declared {
                    parse_typed(&scalar.value, declared)
                        .map_err(|message| invalid(&path_of_argument, message))?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn scalar_type(name: &str, path: &str) -> Result<Option<ScalarType>, StoreError> {
    ScalarType::from_wire(name).map_err(|()| {
        invalid(
            path,
            format!("unknown type {name:?} (expected \"\", string, int, double or bool)"),
        )
    })
}

/// A typed constant's value (Go `strconv` rules).
fn parse_typed(text: &str, declared: ScalarType) -> Result<ConstValue, String> {
    let parsed = match declared {
        ScalarType::String => Some(ConstValue::Text),
        ScalarType::Int => parse_go_int(text).map(ConstValue::Int),
        ScalarType::Double => parse_go_float(text).map(ConstValue::Double),
        ScalarType::Bool => parse_go_bool(text).map(ConstValue::Bool),
    };
    parsed.ok_or_else(|| format!("{text:?} is not a valid {}", declared.name()))
}

// Stages 2 and 3.

/// Value domains: two operands with known domains must share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    Number,
    Duration,
    Timestamp,
    Text,
    Bool,
}

impl Domain {
    fn of_field(field_type: FieldType) -> Self {
        match field_type {
            FieldType::String | FieldType::SpanKind | FieldType::SpanStatus => Self::Text,
            FieldType::Timestamp => Self::Timestamp,
            FieldType::Duration => Self::Duration,
        }
    }

    fn of_scalar(declared: ScalarType) -> Self {
        match declared {
            ScalarType::String => Self::Text,
            ScalarType::Int | ScalarType::Double => Self::Number,
            ScalarType::Bool => Self::Bool,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Duration => "duration",
            Self::Timestamp => "timestamp",
            Self::Text => "text",
            Self::Bool => "bool",
        }
    }
}

/// Which nested levels an enclosing `some` binds.
#[derive(Debug, Clone, Copy, Default)]
struct Bound {
    event: bool,
    link: bool,
}

/// A comparison operand before resolution.
enum RawOperand<'a> {
    Reference(Reference),
    Scalar {
        scalar: &'a Scalar,
        declared: Option<ScalarType>,
        path: String,
    },
}

impl RawOperand<'_> {
    fn domain(&self) -> Option<Domain> {
        match self {
            Self::Reference(Reference::Field(field)) => Some(Domain::of_field(field.field_type())),
            Self::Reference(Reference::Attribute { .. }) => None,
            Self::Scalar { declared, .. } => declared.map(Domain::of_scalar),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Reference(Reference::Field(field)) => field.display_name(),
            Self::Reference(Reference::Attribute { key, .. }) => format!("attribute {key:?}"),
            Self::Scalar {
                scalar, declared, ..
            } => match declared {
                Some(declared) => format!("{:?}:{}", scalar.value, declared.name()),
                None => format!("{:?}", scalar.value),
            },
        }
    }

    /// Why this operand cannot be ordered, if it cannot.
    fn unorderable(&self) -> Option<String> {
        match self {
            Self::Reference(Reference::Field(field @ (Field::SpanKind | Field::SpanStatus))) => {
                Some(format!("{} is not orderable", field.display_name()))
            }
            Self::Scalar {
                declared: Some(ScalarType::Bool),
                ..
            } => Some("bool constants are not orderable".to_owned()),
            _ => None,
        }
    }
}

struct Resolver {
    /// The first resolution error, reported once validation of the whole tree has passed.
    deferred: Option<StoreError>,
}

impl Resolver {
    fn defer(&mut self, error: StoreError) {
        if self.deferred.is_none() {
            self.deferred = Some(error);
        }
    }

    fn call(&mut self, call: &Call, path: &str, bound: Bound) -> Result<Predicate, StoreError> {
        let arguments = call.args.as_slice();
        match call.op.as_str() {
            operator @ ("and" | "or") => {
                if arguments.len() < 2 {
                    return Err(invalid(
                        path,
                        format!(
                            "{operator} takes at least 2 arguments, got {}",
                            arguments.len()
                        ),
                    ));
                }
                let mut operands = Vec::with_capacity(arguments.len());
                for (index, argument) in arguments.iter().enumerate() {
                    operands.push(self.predicate_argument(
                        operator,
                        argument,
                        &argument_path(path, index),
                        bound,
                    )?);
                }
                Ok(if operator == "and" {
                    Predicate::And(operands)
                } else {
                    Predicate::Or(operands)
                })
            }
            "not" => {
                let [operand] = exact_arguments("not", arguments, path)?;
                let predicate =
                    self.predicate_argument("not", operand, &argument_path(path, 0), bound)?;
                Ok(Predicate::Not(Box::new(predicate)))
            }
            "some" => self.some(arguments, path, bound),
            "exists" => {
                let [target] = exact_arguments("exists", arguments, path)?;
                let reference = reference_argument("exists", target, &argument_path(path, 0))?;
                Ok(Predicate::Exists(reference))
            }
            "eq" => self.compare(CompareOp::Eq, arguments, path),
            "ne" => self.compare(CompareOp::Ne, arguments, path),
            "gt" => self.compare(CompareOp::Gt, arguments, path),
            "lt" => self.compare(CompareOp::Lt, arguments, path),
            "gte" => self.compare(CompareOp::Gte, arguments, path),
            "lte" => self.compare(CompareOp::Lte, arguments, path),
            "regex" => regex(arguments, path),
            "in" => self.membership(false, arguments, path),
            "not_in" => self.membership(true, arguments, path),
            unknown => Err(invalid(
                path,
                format!("unknown operator {unknown:?} (expected {OPERATORS})"),
            )),
        }
    }

    fn predicate_argument(
        &mut self,
        operator: &str,
        argument: &Expression,
        path: &str,
        bound: Bound,
    ) -> Result<Predicate, StoreError> {
        match &argument.term {
            Some(Term::Call(call)) => self.call(call, &format!("{path}.call"), bound),
            Some(Term::Nested(_)) => Err(nested_misplaced(path)),
            _ => Err(invalid(
                path,
                format!(
                    "{operator} takes predicates (calls) as arguments, got {}",
                    term_name(argument)
                ),
            )),
        }
    }

    fn some(
        &mut self,
        arguments: &[Expression],
        path: &str,
        bound: Bound,
    ) -> Result<Predicate, StoreError> {
        let [collection_argument, predicate_argument] = exact_arguments("some", arguments, path)?;
        let collection_path = argument_path(path, 0);
        let Some(Term::Nested(nested)) = &collection_argument.term else {
            return Err(invalid(
                &collection_path,
                format!(
                    "some takes a nested reference (event or link) as its first argument, got {}",
                    term_name(collection_argument)
                ),
            ));
        };
        let (collection, already_bound) = match nested.level.as_str() {
            "event" => (Collection::Event, bound.event),
            "link" => (Collection::Link, bound.link),
            other => {
                return Err(invalid(
                    &collection_path,
                    format!("nested level must be event or link, got {other:?}"),
                ));
            }
        };
        if already_bound {
            return Err(invalid(
                &collection_path,
                format!(
                    "some over {0} inside some over {0} is refused: the level is already bound",
                    nested.level
                ),
            ));
        }
        let inner_bound = Bound {
            event: bound.event || collection == Collection::Event,
            link: bound.link || collection == Collection::Link,
        };
        let predicate = self.predicate_argument(
            "some",
            predicate_argument,
            &argument_path(path, 1),
            inner_bound,
        )?;
        Ok(Predicate::Some {
            collection,
            predicate: Box::new(predicate),
        })
    }

    fn compare(
        &mut self,
        op: CompareOp,
        arguments: &[Expression],
        path: &str,
    ) -> Result<Predicate, StoreError> {
        let [first, second] = exact_arguments(op.name(), arguments, path)?;
        let first_path = argument_path(path, 0);
        let second_path = argument_path(path, 1);
        let first_operand = comparison_operand(op, first, &first_path)?;
        let second_operand = comparison_operand(op, second, &second_path)?;
        if let (Some(first_domain), Some(second_domain)) =
            (first_operand.domain(), second_operand.domain())
            && first_domain != second_domain
        {
            return Err(invalid(
                path,
                format!(
                    "{} cannot compare {} ({}) with {} ({})",
                    op.name(),
                    first_operand.describe(),
                    first_domain.name(),
                    second_operand.describe(),
                    second_domain.name()
                ),
            ));
        }
        if op.is_ordering() {
            for (operand, operand_path) in [
                (&first_operand, &first_path),
                (&second_operand, &second_path),
            ] {
                if let Some(reason) = operand.unorderable() {
                    return Err(invalid(operand_path, format!("{}: {reason}", op.name())));
                }
            }
        }
        // Reference first: a constant on the left swaps with a reference on the right.
        let constant_first = matches!(
            (&first_operand, &second_operand),
            (RawOperand::Scalar { .. }, RawOperand::Reference(_))
        );
        let (op, left, right) = if constant_first {
            (op.mirrored(), second_operand, first_operand)
        } else {
            (op, first_operand, second_operand)
        };
        let resolved_left = self.resolve_operand(&left, &right);
        let resolved_right = self.resolve_operand(&right, &left);
        Ok(Predicate::Compare {
            op,
            left: resolved_left,
            right: resolved_right,
        })
    }

    fn resolve_operand(&mut self, operand: &RawOperand<'_>, other: &RawOperand<'_>) -> Operand {
        match operand {
            RawOperand::Reference(reference) => Operand::Reference(reference.clone()),
            RawOperand::Scalar {
                scalar,
                declared,
                path,
            } => {
                let resolved = match (other, declared) {
                    (RawOperand::Reference(Reference::Field(field)), _) => {
                        resolve_against_field(&scalar.value, field.field_type())
                    }
                    (_, Some(declared)) => parse_typed(&scalar.value, *declared),
                    (_, None) => Ok(ConstValue::Untyped),
                };
                let value = resolved.unwrap_or_else(|message| {
                    self.defer(invalid(path, message));
                    ConstValue::Untyped
                });
                Operand::Constant(Constant {
                    text: scalar.value.clone(),
                    declared: *declared,
                    value,
                })
            }
        }
    }

    fn membership(
        &mut self,
        negated: bool,
        arguments: &[Expression],
        path: &str,
    ) -> Result<Predicate, StoreError> {
        let operator = if negated { "not_in" } else { "in" };
        let [target_argument, list_argument] = exact_arguments(operator, arguments, path)?;
        let target = reference_argument(operator, target_argument, &argument_path(path, 0))?;
        let list_path = argument_path(path, 1);
        let Some(Term::List(list)) = &list_argument.term else {
            return Err(match &list_argument.term {
                Some(Term::Nested(_)) => nested_misplaced(&list_path),
                _ => invalid(
                    &list_path,
                    format!(
                        "{operator} takes a list as its second argument, got {}",
                        term_name(list_argument)
                    ),
                ),
            });
        };
        if list.values.is_empty() {
            return Err(invalid(&list_path, "list must not be empty"));
        }
        let declared = scalar_type(&list.r#type, &list_path)?;
        match (&target, declared) {
            (Reference::Attribute { .. }, None) => {
                return Err(invalid(
                    &list_path,
                    "a list compared with an attribute needs a type (string, int, double or \
                     bool)",
                ));
            }
            (Reference::Field(field), Some(declared))
                if Domain::of_scalar(declared) != Domain::of_field(field.field_type()) =>
            {
                return Err(invalid(
                    &list_path,
                    format!(
                        "{operator} cannot compare {} ({}) with a {} list ({})",
                        field.display_name(),
                        Domain::of_field(field.field_type()).name(),
                        declared.name(),
                        Domain::of_scalar(declared).name()
                    ),
                ));
            }
            _ => {}
        }
        let mut values = Vec::with_capacity(list.values.len());
        for (index, text) in list.values.iter().enumerate() {
            let resolved = match (&target, declared) {
                (Reference::Field(field), _) => resolve_against_field(text, field.field_type()),
                (Reference::Attribute { .. }, Some(declared)) => parse_typed(text, declared),
                // Refused above; kept total rather than panicking.
                (Reference::Attribute { .. }, None) => Ok(ConstValue::Untyped),
            };
            let value = resolved.unwrap_or_else(|message| {
                self.defer(invalid(
                    &format!("{list_path}.list.values[{index}]"),
                    message,
                ));
                ConstValue::Untyped
            });
            values.push(Constant {
                text: text.clone(),
                declared,
                value,
            });
        }
        Ok(Predicate::In {
            negated,
            target,
            list: ValueList { declared, values },
        })
    }
}

fn exact_arguments<'a, const N: usize>(
    operator: &str,
    arguments: &'a [Expression],
    path: &str,
) -> Result<&'a [Expression; N], StoreError> {
    <&[Expression; N]>::try_from(arguments).map_err(|_| {
        let plural = if N == 1 { "" } else { "s" };
        invalid(
            path,
            format!(
                "{operator} takes {N} argument{plural}, got {}",
                arguments.len()
            ),
        )
    })
}

fn nested_misplaced(path: &str) -> StoreError {
    invalid(path, "nested is only allowed as the first argument of some")
}

fn comparison_operand<'a>(
    op: CompareOp,
    argument: &'a Expression,
    path: &str,
) -> Result<RawOperand<'a>, StoreError> {
    match &argument.term {
        Some(Term::Attr(attribute)) => {
            Ok(RawOperand::Reference(attribute_reference(attribute, path)?))
        }
        Some(Term::Field(field)) => Ok(RawOperand::Reference(field_reference(field, path)?)),
        Some(Term::Scalar(scalar)) => Ok(RawOperand::Scalar {
            scalar,
            declared: scalar_type(&scalar.r#type, path)?,
            path: path.to_owned(),
        }),
        Some(Term::Nested(_)) => Err(nested_misplaced(path)),
        _ => Err(invalid(
            path,
            format!(
                "{} operands must be attr, field or scalar, got {}",
                op.name(),
                term_name(argument)
            ),
        )),
    }
}

fn reference_argument(
    operator: &str,
    argument: &Expression,
    path: &str,
) -> Result<Reference, StoreError> {
    match &argument.term {
        Some(Term::Attr(attribute)) => attribute_reference(attribute, path),
        Some(Term::Field(field)) => field_reference(field, path),
        Some(Term::Nested(_)) => Err(nested_misplaced(path)),
        _ => Err(invalid(
            path,
            format!(
                "{operator} takes an attr or field reference here, got {}",
                term_name(argument)
            ),
        )),
    }
}

fn attribute_reference(
    attribute: &AttributeReference,
    path: &str,
) -> Result<Reference, StoreError> {
    if attribute.key.is_empty() {
        return Err(invalid(path, "attribute key must not be empty"));
    }
    let level = if attribute.level.is_empty() {
        AttributeLevel::SpanOrResource
    } else {
        let level = Level::from_name(&attribute.level).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "unknown level {:?} (expected \"\", {LEVELS})",
                    attribute.level
                ),
            )
        })?;
        AttributeLevel::Level(level)
    };
    Ok(Reference::Attribute {
        key: attribute.key.clone(),
        level,
    })
}

fn field_reference(field: &FieldReference, path: &str) -> Result<Reference, StoreError> {
    if field.level.is_empty() {
        return Err(invalid(
            path,
            format!("field {:?} needs a level ({LEVELS})", field.name),
        ));
    }
    let level = Level::from_name(&field.level).ok_or_else(|| {
        invalid(
            path,
            format!("unknown level {:?} (expected {LEVELS})", field.level),
        )
    })?;
    let found = Field::find(level, &field.name).ok_or_else(|| {
        invalid(
            path,
            format!("unknown field {:?} at level {}", field.name, level.name()),
        )
    })?;
    Ok(Reference::Field(found))
}

fn regex(arguments: &[Expression], path: &str) -> Result<Predicate, StoreError> {
    let [target_argument, pattern_argument] = exact_arguments("regex", arguments, path)?;
    let target_path = argument_path(path, 0);
    let pattern_path = argument_path(path, 1);
    let target = reference_argument("regex", target_argument, &target_path)?;
    if let Reference::Field(field) = &target
        && matches!(
            field.field_type(),
            FieldType::Duration | FieldType::Timestamp
        )
    {
        return Err(invalid(
            &target_path,
            format!(
                "regex does not apply to {} ({})",
                field.display_name(),
                Domain::of_field(field.field_type()).name()
            ),
        ));
    }
    let Some(Term::Scalar(scalar)) = &pattern_argument.term else {
        return Err(invalid(
            &pattern_path,
            format!(
                "regex takes an untyped or string scalar as its pattern, got {}",
                term_name(pattern_argument)
            ),
        ));
    };
    let typed_string = match scalar_type(&scalar.r#type, &pattern_path)? {
        None => false,
        Some(ScalarType::String) => true,
        Some(other) => {
            return Err(invalid(
                &pattern_path,
                format!(
                    "regex pattern must be untyped or string, got {}",
                    other.name()
                ),
            ));
        }
    };
    let pattern = Pattern::new(&scalar.value, typed_string)
        .map_err(|message| invalid(&pattern_path, message))?;
    Ok(Predicate::Regex { target, pattern })
}

/// A constant compared with a built-in field takes the field's type.
fn resolve_against_field(text: &str, field_type: FieldType) -> Result<ConstValue, String> {
    match field_type {
        FieldType::String => Ok(ConstValue::Text),
        FieldType::SpanKind => {
            if SPAN_KIND_WORDS.contains(&text) {
                Ok(ConstValue::Text)
            } else {
                Err(format!(
                    "{text:?} is not a span kind (expected one of {}, lower case)",
                    SPAN_KIND_WORDS.join(" ")
                ))
            }
        }
        FieldType::SpanStatus => {
            if SPAN_STATUS_WORDS.contains(&text) {
                Ok(ConstValue::Text)
            } else {
                Err(format!(
                    "{text:?} is not a span status (expected one of {}, lower case)",
                    SPAN_STATUS_WORDS.join(" ")
                ))
            }
        }
        FieldType::Timestamp => parse_rfc3339(text)
            .map(ConstValue::Timestamp)
            .ok_or_else(|| {
                format!(
                    "{text:?} is not an RFC 3339 timestamp with offset (e.g. \
                 2026-08-16T18:56:20.123456789Z)"
                )
            }),
        FieldType::Duration => {
            parse_go_duration(text)
                .map(ConstValue::Duration)
                .map_err(|reason| {
                    format!("{text:?} is not a duration: {reason} (e.g. 1m30s, 250ms, 50µs)")
                })
        }
    }
}
