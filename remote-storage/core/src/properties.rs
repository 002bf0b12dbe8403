//! Property tests of the edges where client bytes become the model: OTLP Export batches and
//! search requests. Whatever a client sends, conversion never panics, every span is either
//! stored or counted as refused (with the path of the first refused one), the stored ones
//! read back as sent, and a query is either valid or refused with `INVALID_ARGUMENT` naming a
//! field.

use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span as OtlpSpan};
use jaeger_remote_proto::storage::v2 as proto;
use proptest::collection::vec;
use proptest::prelude::*;
use prost_types::{Duration as ProtoDuration, Timestamp};

use crate::convert::{resource_spans_from_spans, spans_from_resource_spans};
use crate::error::ErrorKind;
use crate::query::{QueryLimits, TraceQuery};

/// IDs of any length, mostly the valid ones, sometimes all zero.
fn id(valid_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), valid_len),
        1 => vec(any::<u8>(), 0..20),
        1 => Just(vec![0; valid_len]),
    ]
}

fn value() -> impl Strategy<Value = Option<AnyValue>> {
    prop::option::of(
        prop_oneof![
            ".{0,10}".prop_map(Value::StringValue),
            any::<i64>().prop_map(Value::IntValue),
            any::<f64>().prop_map(Value::DoubleValue),
            any::<bool>().prop_map(Value::BoolValue),
            vec(any::<u8>(), 0..8).prop_map(Value::BytesValue),
        ]
        .prop_map(|value| AnyValue { value: Some(value) }),
    )
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec((".{0,6}", value()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value,
                ..Default::default()
            })
            .collect()
    })
}

fn otlp_span() -> impl Strategy<Value = OtlpSpan> {
    (
        id(16),
        id(8),
        prop_oneof![Just(Vec::new()), id(8)],
        ".{0,8}",
        any::<i32>(),
        any::<u64>(),
        any::<u64>(),
        attributes(),
    )
        .prop_map(
            |(trace_id, span_id, parent_span_id, name, kind, start, end, attributes)| OtlpSpan {
                trace_id,
                span_id,
                parent_span_id,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                ..Default::default()
            },
        )
}

fn batch() -> impl Strategy<Value = Vec<ResourceSpans>> {
    vec(
        (
            prop::option::of(attributes()),
            vec(vec(otlp_span(), 0..5), 0..3),
        )
            .prop_map(|(resource, scopes)| ResourceSpans {
                resource: resource.map(|attributes| Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|spans| ScopeSpans {
                        spans,
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }),
        0..3,
    )
}

fn timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    prop::option::of(
        (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Timestamp { seconds, nanos }),
    )
}

fn duration() -> impl Strategy<Value = Option<ProtoDuration>> {
    prop::option::of(
        (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| ProtoDuration { seconds, nanos }),
    )
}

proptest! {
    #[test]
    fn every_span_of_an_export_is_stored_or_counted_and_stored_ones_read_back_as_sent(
        batch in batch(),
    ) {
        let sent: Vec<OtlpSpan> = batch
            .iter()
            .flat_map(|group| &group.scope_spans)
            .flat_map(|scope| scope.spans.clone())
            .collect();
        let decoded = spans_from_resource_spans(batch);
        prop_assert_eq!(decoded.spans.len() as u64 + decoded.rejected, sent.len() as u64);
        prop_assert_eq!(decoded.first_rejection.is_some(), decoded.rejected > 0);
        if let Some(reason) = &decoded.first_rejection {
            prop_assert!(reason.starts_with("resource_spans["), "{}", reason);
        }
        for span in &decoded.spans {
            prop_assert_eq!(span.otlp().trace_id.len(), 16);
            prop_assert_eq!(span.otlp().span_id.len(), 8);
            prop_assert!(span.otlp().trace_id.iter().any(|byte| *byte != 0));
        }
        // The stored spans regroup into OTLP carrying exactly them, in order.
        let regrouped: Vec<OtlpSpan> = resource_spans_from_spans(&decoded.spans)
            .into_iter()
            .flat_map(|group| group.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect();
        let stored: Vec<&OtlpSpan> = decoded.spans.iter().map(|span| span.otlp()).collect();
        prop_assert_eq!(regrouped.iter().collect::<Vec<_>>(), stored);
        let mut remaining = sent.iter();
        for stored in &decoded.spans {
            prop_assert!(
                remaining.any(|sent| sent == stored.otlp()),
                "stored spans are sent spans, in order"
            );
        }
    }

    #[test]
    fn a_search_is_valid_or_refused_naming_a_field(
        service_name in ".{0,4}",
        attributes in vec((".{0,4}", ".{0,4}"), 0..3),
        start_time_min in timestamp(),
        start_time_max in timestamp(),
        duration_min in duration(),
        duration_max in duration(),
        search_depth in any::<i32>(),
    ) {
        let parameters = proto::TraceQueryParameters {
            service_name,
            attributes: attributes
                .into_iter()
                .map(|(key, value)| proto::KeyValue {
                    key,
                    value: Some(proto::AnyValue {
                        value: Some(proto::any_value::Value::StringValue(value)),
                    }),
                })
                .collect(),
            start_time_min,
            start_time_max,
            duration_min,
            duration_max,
            search_depth,
            ..Default::default()
        };
        match TraceQuery::from_proto(Some(parameters), QueryLimits::default()) {
            Ok(query) => {
                if let (Some(min), Some(max)) = (query.start_time_min, query.start_time_max) {
                    prop_assert!(min <= max);
                }
                if let (Some(min), Some(max)) = (query.duration_min, query.duration_max) {
                    prop_assert!(min <= max);
                }
                prop_assert!(query.search_depth <= QueryLimits::default().max_search_depth);
            }
            Err(error) => {
                prop_assert_eq!(error.kind(), ErrorKind::InvalidArgument);
                prop_assert!(error.to_string().contains("query."), "{}", error);
            }
        }
    }
}
