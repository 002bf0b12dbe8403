//! OTLP ⇄ model conversion, used at the edges only: Export requests in, `TracesData` out.

use std::sync::Arc;

use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans};

use crate::model::{Resource, Scope, Span};

/// The spans of an OTLP batch that passed validation, and what was refused.
#[derive(Debug, Default)]
pub struct DecodedSpans {
    /// Valid spans, in request order; spans of one OTLP group share their resource and scope.
    pub spans: Vec<Span>,
    /// How many spans were refused.
    pub rejected: u64,
    /// Why the first refused span was refused, with its position in the request.
    pub first_rejection: Option<String>,
}

/// Validates and converts every span of an OTLP batch. Invalid spans are counted and skipped;
/// they never prevent the valid spans of the same batch from being stored.
pub fn spans_from_resource_spans(resource_spans: Vec<ResourceSpans>) -> DecodedSpans {
    let mut decoded = DecodedSpans::default();
    for (resource_index, group) in resource_spans.into_iter().enumerate() {
        let resource = Arc::new(Resource::new(
            group.resource.unwrap_or_default(),
            group.schema_url,
        ));
        for (scope_index, scope_group) in group.scope_spans.into_iter().enumerate() {
            let scope = Arc::new(Scope::new(
                scope_group.scope.unwrap_or_default(),
                scope_group.schema_url,
            ));
            for (span_index, otlp_span) in scope_group.spans.into_iter().enumerate() {
                match Span::new(Arc::clone(&resource), Arc::clone(&scope), otlp_span) {
                    Ok(span) => decoded.spans.push(span),
                    Err(error) => {
                        decoded.rejected += 1;
                        if decoded.first_rejection.is_none() {
                            decoded.first_rejection = Some(format!(
                                "resource_spans[{resource_index}].scope_spans[{scope_index}].spans[{span_index}]: {error}"
                            ));
                        }
                    }
                }
            }
        }
    }
    decoded
}

/// Regroups spans into OTLP `ResourceSpans`: consecutive spans that share one resource and one
/// scope (the same `Arc`) go into one group, so a trace written in one Export reads back with
/// its original grouping.
pub fn resource_spans_from_spans<'a>(
    spans: impl IntoIterator<Item = &'a Span>,
) -> Vec<ResourceSpans> {
    let mut groups: Vec<ResourceSpans> = Vec::new();
    let mut current_resource: Option<&Arc<Resource>> = None;
    let mut current_scope: Option<&Arc<Scope>> = None;
    for span in spans {
        let same_resource =
            current_resource.is_some_and(|resource| Arc::ptr_eq(resource, span.resource()));
        if !same_resource {
            groups.push(ResourceSpans {
                resource: Some(span.resource().otlp().clone()),
                scope_spans: Vec::new(),
                schema_url: span.resource().schema_url().to_owned(),
            });
            current_resource = Some(span.resource());
            current_scope = None;
        }
        let same_scope = current_scope.is_some_and(|scope| Arc::ptr_eq(scope, span.scope()));
        let Some(group) = groups.last_mut() else {
            continue;
        };
        if !same_scope {
            group.scope_spans.push(ScopeSpans {
                scope: Some(span.scope().otlp().clone()),
                spans: Vec::new(),
                schema_url: span.scope().schema_url().to_owned(),
            });
            current_scope = Some(span.scope());
        }
        if let Some(scope_group) = group.scope_spans.last_mut() {
            scope_group.spans.push(span.otlp().clone());
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
    use jaeger_remote_proto::otlp::resource::Resource as OtlpResource;
    use jaeger_remote_proto::otlp::trace::Span as OtlpSpan;

    fn otlp_span(trace_byte: u8, span_byte: u8) -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![trace_byte; 16],
            span_id: vec![span_byte; 8],
            name: format!("op-{span_byte}"),
            start_time_unix_nano: 100,
            end_time_unix_nano: 200,
            ..Default::default()
        }
    }

    fn group(service: &str, spans: Vec<OtlpSpan>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(OtlpResource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: "https://scope".into(),
            }],
            schema_url: "https://resource".into(),
        }
    }

    #[test]
    fn invalid_spans_are_counted_and_valid_ones_kept() {
        let mut bad_trace = otlp_span(1, 2);
        bad_trace.trace_id.clear();
        let mut bad_span = otlp_span(1, 3);
        bad_span.span_id = vec![1, 2, 3];
        let decoded = spans_from_resource_spans(vec![group(
            "svc",
            vec![otlp_span(1, 1), bad_trace, bad_span, otlp_span(2, 4)],
        )]);
        assert_eq!(decoded.spans.len(), 2);
        assert_eq!(decoded.rejected, 2);
        let message = decoded.first_rejection.unwrap();
        assert!(message.contains("spans[1]"), "{message}");
        assert!(message.contains("trace_id must be 16 bytes"), "{message}");
    }

    #[test]
    fn grouping_round_trips() {
        let original = vec![
            group("a", vec![otlp_span(1, 1), otlp_span(1, 2)]),
            group("b", vec![otlp_span(1, 3)]),
        ];
        let decoded = spans_from_resource_spans(original.clone());
        assert_eq!(decoded.rejected, 0);
        let regrouped = resource_spans_from_spans(&decoded.spans);
        assert_eq!(regrouped, original);
    }
}
