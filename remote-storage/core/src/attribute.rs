//! The canonical text form of attribute values, used to match typed and string query values
//! alike (`123` matches `"123"`), following pdata's `Value.AsString` rules.

use std::borrow::Cow;

use base64::Engine as _;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::storage::v2 as storage;

/// Renders an OTLP attribute value as text: strings as-is, integers in decimal, booleans as
/// `true`/`false`, doubles in JavaScript style, bytes as standard base64, arrays and maps as JSON.
/// An empty value renders as the empty string.
pub fn any_value_text(value: Option<&AnyValue>) -> Cow<'_, str> {
    match value.and_then(|value| value.value.as_ref()) {
        None => Cow::Borrowed(""),
        Some(value) => value_text(value),
    }
}

/// [`any_value_text`] of a value that is set.
pub fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        // `string_value_strindex` is only meaningful inside OTLP profiles.
        Value::StringValueStrindex(_) => Cow::Borrowed(""),
        Value::StringValue(text) => Cow::Borrowed(text),
        Value::BoolValue(flag) => Cow::Borrowed(if *flag { "true" } else { "false" }),
        Value::IntValue(number) => Cow::Owned(number.to_string()),
        Value::DoubleValue(number) => Cow::Owned(double_text(*number)),
        Value::BytesValue(bytes) => {
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        other @ (Value::ArrayValue(_) | Value::KvlistValue(_)) => {
            Cow::Owned(value_json(Some(other)).to_string())
        }
    }
}

/// Renders a `jaeger.storage.v2.AnyValue` (the query's copy of OTLP's type) the same way.
pub fn query_value_text(value: Option<&storage::AnyValue>) -> String {
    any_value_text(query_value_to_otlp(value).as_ref()).into_owned()
}

/// Converts the query's `AnyValue` copy into the OTLP type.
pub fn query_value_to_otlp(value: Option<&storage::AnyValue>) -> Option<AnyValue> {
    use storage::any_value::Value as Query;
    let value = value?.value.as_ref()?;
    let converted = match value {
        Query::StringValue(text) => Value::StringValue(text.clone()),
        Query::BoolValue(flag) => Value::BoolValue(*flag),
        Query::IntValue(number) => Value::IntValue(*number),
        Query::DoubleValue(number) => Value::DoubleValue(*number),
        Query::BytesValue(bytes) => Value::BytesValue(bytes.clone()),
        Query::ArrayValue(array) => {
            Value::ArrayValue(jaeger_remote_proto::otlp::common::ArrayValue {
                values: array
                    .values
                    .iter()
                    .filter_map(|item| query_value_to_otlp(Some(item)))
                    .collect(),
            })
        }
        Query::KvlistValue(list) => {
            Value::KvlistValue(jaeger_remote_proto::otlp::common::KeyValueList {
                values: list
                    .values
                    .iter()
                    .map(|pair| KeyValue {
                        key: pair.key.clone(),
                        value: query_value_to_otlp(pair.value.as_ref()),
                        ..Default::default()
                    })
                    .collect(),
            })
        }
    };
    Some(AnyValue {
        value: Some(converted),
    })
}

/// Converts an OTLP value into the query's copy of `AnyValue`.
pub fn otlp_value_to_query(value: &AnyValue) -> Option<storage::AnyValue> {
    use storage::any_value::Value as Query;
    let converted = match value.value.as_ref()? {
        Value::StringValue(text) => Query::StringValue(text.clone()),
        Value::BoolValue(flag) => Query::BoolValue(*flag),
        Value::IntValue(number) => Query::IntValue(*number),
        Value::DoubleValue(number) => Query::DoubleValue(*number),
        Value::BytesValue(bytes) => Query::BytesValue(bytes.clone()),
        Value::ArrayValue(array) => Query::ArrayValue(storage::ArrayValue {
            values: array
                .values
                .iter()
                .filter_map(otlp_value_to_query)
                .collect(),
        }),
        Value::KvlistValue(list) => Query::KvlistValue(storage::KeyValueList {
            values: list
                .values
                .iter()
                .map(|pair| storage::KeyValue {
                    key: pair.key.clone(),
                    value: pair.value.as_ref().and_then(otlp_value_to_query),
                })
                .collect(),
        }),
        Value::StringValueStrindex(_) => return None,
    };
    Some(storage::AnyValue {
        value: Some(converted),
    })
}

/// JavaScript-style number text, as pdata renders doubles: shortest round-trip digits, with an
/// exponent only below 1e-6 or from 1e21 up (`72.5`, `1e+21`, `1e-7`).
fn double_text(number: f64) -> String {
    if number.is_nan() {
        return "NaN".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let magnitude = number.abs();
    if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) {
        return format!("{number}");
    }
    let exponent_form = format!("{number:e}");
    match exponent_form.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            format!("{mantissa}e+{exponent}")
        }
        _ => exponent_form,
    }
}

fn value_json(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        None | Some(Value::StringValueStrindex(_)) => Json::Null,
        Some(Value::StringValue(text)) => Json::String(text.clone()),
        Some(Value::BoolValue(flag)) => Json::Bool(*flag),
        Some(Value::IntValue(number)) => Json::from(*number),
        Some(Value::DoubleValue(number)) => serde_json::Number::from_f64(*number)
            .map_or_else(|| Json::String(double_text(*number)), Json::Number),
        Some(Value::BytesValue(bytes)) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Some(Value::ArrayValue(array)) => Json::Array(
            array
                .values
                .iter()
                .map(|item| value_json(item.value.as_ref()))
                .collect(),
        ),
        Some(Value::KvlistValue(list)) => {
            // Go marshals maps with sorted keys.
            let sorted: std::collections::BTreeMap<&str, serde_json::Value> = list
                .values
                .iter()
                .map(|pair| {
                    (
                        pair.key.as_str(),
                        value_json(pair.value.as_ref().and_then(|value| value.value.as_ref())),
                    )
                })
                .collect();
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect(),
            )
        }
    }
}

/// The value of an attribute, when it has one.
pub fn attribute_value(attribute: &KeyValue) -> Option<&Value> {
    attribute
        .value
        .as_ref()
        .and_then(|value| value.value.as_ref())
}

/// Finds the first attribute with `key` in a list.
pub fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attributes.iter().find(|attribute| attribute.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::common::{ArrayValue, KeyValueList};

    fn text(value: Value) -> String {
        any_value_text(Some(&AnyValue { value: Some(value) })).into_owned()
    }

    #[test]
    fn scalars_render_like_pdata() {
        assert_eq!(text(Value::StringValue("abc".into())), "abc");
        assert_eq!(text(Value::IntValue(123)), "123");
        assert_eq!(text(Value::IntValue(-5)), "-5");
        assert_eq!(text(Value::BoolValue(true)), "true");
        assert_eq!(text(Value::DoubleValue(72.5)), "72.5");
        assert_eq!(text(Value::DoubleValue(1.0)), "1");
        assert_eq!(text(Value::DoubleValue(1e21)), "1e+21");
        assert_eq!(text(Value::DoubleValue(1e-7)), "1e-7");
        assert_eq!(text(Value::DoubleValue(0.000_001)), "0.000001");
        assert_eq!(text(Value::BytesValue(vec![0, 0, 0x30, 0x39])), "AAAwOQ==");
        assert_eq!(any_value_text(None), "");
    }

    #[test]
    fn arrays_and_maps_render_as_json_with_sorted_keys() {
        let array = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
                AnyValue {
                    value: Some(Value::StringValue("a".into())),
                },
            ],
        });
        assert_eq!(text(array), r#"[1,"a"]"#);
        let map = Value::KvlistValue(KeyValueList {
            values: vec![
                KeyValue {
                    key: "z".into(),
                    value: Some(AnyValue {
                        value: Some(Value::BoolValue(false)),
                    }),
                    ..Default::default()
                },
                KeyValue {
                    key: "a".into(),
                    value: Some(AnyValue {
                        value: Some(Value::IntValue(2)),
                    }),
                    ..Default::default()
                },
            ],
        });
        assert_eq!(text(map), r#"{"a":2,"z":false}"#);
    }

    #[test]
    fn otlp_and_query_values_convert_both_ways() {
        let nested = AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![KeyValue {
                    key: "k".into(),
                    value: Some(AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue {
                                value: Some(Value::BytesValue(vec![1, 2])),
                            }],
                        })),
                    }),
                    ..Default::default()
                }],
            })),
        };
        let query = otlp_value_to_query(&nested);
        assert_eq!(query_value_to_otlp(query.as_ref()), Some(nested));
    }

    #[test]
    fn typed_query_values_render_like_stored_values() {
        let query = storage::AnyValue {
            value: Some(storage::any_value::Value::IntValue(123)),
        };
        assert_eq!(query_value_text(Some(&query)), "123");
        let double = storage::AnyValue {
            value: Some(storage::any_value::Value::DoubleValue(72.5)),
        };
        assert_eq!(query_value_text(Some(&double)), "72.5");
    }
}
