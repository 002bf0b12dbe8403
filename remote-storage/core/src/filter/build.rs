//! Builders of filter expressions, for code that writes filters rather than reads them: the
//! legacy filter forms, and tests here and in the backends.

use jaeger_remote_proto::expression::v1::expression::Term;
use jaeger_remote_proto::expression::v1::{
    AttributeReference, Call, Expression, FieldReference, Scalar,
};

/// `op(args…)`.
pub fn call(op: &str, args: Vec<Expression>) -> Call {
    Call {
        op: op.into(),
        args,
    }
}

/// A call as an argument of another.
pub fn nest(call: Call) -> Expression {
    Expression {
        term: Some(Term::Call(call)),
    }
}

/// The built-in field `name` at `level`.
pub fn field(level: &str, name: &str) -> Expression {
    Expression {
        term: Some(Term::Field(FieldReference {
            name: name.into(),
            level: level.into(),
        })),
    }
}

/// The attribute `key` at `level` (`""`: the span's or the resource's).
pub fn attr(level: &str, key: &str) -> Expression {
    Expression {
        term: Some(Term::Attr(AttributeReference {
            key: key.into(),
            level: level.into(),
        })),
    }
}

/// A constant of `scalar_type` (`""`: untyped, read as the compared field's type).
pub fn typed(value: &str, scalar_type: &str) -> Expression {
    Expression {
        term: Some(Term::Scalar(Scalar {
            value: value.into(),
            r#type: scalar_type.into(),
        })),
    }
}

/// An untyped constant.
pub fn text(value: &str) -> Expression {
    typed(value, "")
}
