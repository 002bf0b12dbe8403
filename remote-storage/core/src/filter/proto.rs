//! The finalized wire form of a resolved filter: what a boundary forwards after resolution
//! (constants as sent, the reference first), and what filter equality compares.

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{
    AttributeReference, Call, Expression, FieldReference, List, NestedReference, Scalar,
};

use super::{AttributeLevel, Collection, Constant, Operand, Predicate, Reference, ScalarType};

pub(super) fn predicate_to_call(predicate: &Predicate) -> Call {
    match predicate {
        Predicate::And(operands) => call("and", operands.iter().map(call_expression).collect()),
        Predicate::Or(operands) => call("or", operands.iter().map(call_expression).collect()),
        Predicate::Not(operand) => call("not", vec![call_expression(operand)]),
        Predicate::Compare { op, left, right } => call(
            op.name(),
            vec![operand_expression(left), operand_expression(right)],
        ),
        Predicate::Regex { target, pattern } => call(
            "regex",
            vec![
                reference_expression(target),
                expression(Term::Scalar(Scalar {
                    value: pattern.text.clone(),
                    r#type: type_name(pattern.typed_string.then_some(ScalarType::String)),
                })),
            ],
        ),
        Predicate::Exists(target) => call("exists", vec![reference_expression(target)]),
        Predicate::In {
            negated,
            target,
            list,
        } => call(
            if *negated { "not_in" } else { "in" },
            vec![
                reference_expression(target),
                expression(Term::List(List {
                    values: list.values.iter().map(|value| value.text.clone()).collect(),
                    r#type: type_name(list.declared),
                })),
            ],
        ),
        Predicate::Some {
            collection,
            predicate,
        } => call(
            "some",
            vec![
                expression(Term::Nested(NestedReference {
                    level: match collection {
                        Collection::Event => "event",
                        Collection::Link => "link",
                    }
                    .to_owned(),
                })),
                call_expression(predicate),
            ],
        ),
    }
}

fn call(op: &str, args: Vec<Expression>) -> Call {
    Call {
        op: op.to_owned(),
        args,
    }
}

fn expression(term: Term) -> Expression {
    Expression { term: Some(term) }
}

fn call_expression(predicate: &Predicate) -> Expression {
    expression(Term::Call(predicate_to_call(predicate)))
}

fn operand_expression(operand: &Operand) -> Expression {
    match operand {
        Operand::Reference(reference) => reference_expression(reference),
        Operand::Constant(constant) => constant_expression(constant),
    }
}

fn constant_expression(constant: &Constant) -> Expression {
    expression(Term::Scalar(Scalar {
        value: constant.text.clone(),
        r#type: type_name(constant.declared),
    }))
}

fn reference_expression(reference: &Reference) -> Expression {
    match reference {
        Reference::Attribute { key, level } => expression(Term::Attr(AttributeReference {
            key: key.clone(),
            level: match level {
                AttributeLevel::SpanOrResource => String::new(),
                AttributeLevel::Level(level) => level.name().to_owned(),
            },
        })),
        Reference::Field(field) => {
            let (level, name) = field.level_and_name();
            expression(Term::Field(FieldReference {
                name: name.to_owned(),
                level: level.name().to_owned(),
            }))
        }
    }
}

fn type_name(declared: Option<ScalarType>) -> String {
    declared.map_or("", ScalarType::name).to_owned()
}
