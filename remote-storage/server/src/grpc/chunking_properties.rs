//! Property test of stream chunking over arbitrary traces and budgets: the chunks carry every
//! span exactly once, in order, with its own resource and scope; no chunk is empty or holds
//! another trace; and each respects both budgets unless one span alone exceeds the bytes.

use std::num::NonZeroUsize;
use std::sync::Arc;

use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, TracesData};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message as _;
use remote_storage_core::TraceId;
use remote_storage_core::model::{Scope, Span, Trace};
use remote_storage_core::testing::resource;

use super::chunking::{ChunkBudget, trace_chunks};

/// A trace of spans with payloads of varied size, whose resource and scope change in runs.
fn trace() -> impl Strategy<Value = Trace> {
    vec((0..3usize, 0..2usize, 0..3_000usize), 0..120).prop_map(|shapes| {
        let resources = [resource("a"), resource("b"), resource("c")];
        let scopes = [
            Arc::new(Scope::default()),
            Arc::new(Scope::new(
                jaeger_remote_proto::otlp::common::InstrumentationScope {
                    name: "lib".into(),
                    ..Default::default()
                },
                String::new(),
            )),
        ];
        let spans = shapes
            .into_iter()
            .enumerate()
            .map(|(index, (resource, scope, payload))| {
                let otlp = OtlpSpan {
                    trace_id: vec![9; 16],
                    span_id: u64::try_from(index + 1)
                        .expect("small")
                        .to_be_bytes()
                        .to_vec(),
                    name: "op".into(),
                    start_time_unix_nano: 1_000,
                    end_time_unix_nano: 2_000,
                    attributes: vec![KeyValue {
                        key: "payload".into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue("p".repeat(payload))),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                Span::new(
                    Arc::clone(&resources[resource]),
                    Arc::clone(&scopes[scope]),
                    otlp,
                )
                .expect("a valid span")
            })
            .collect();
        Trace {
            trace_id: TraceId([9; 16]),
            spans,
        }
    })
}

proptest! {
    #[test]
    fn chunks_carry_every_span_once_in_order_within_both_budgets(
        trace in trace(),
        max_items in 1..40usize,
        max_bytes in 100..20_000usize,
    ) {
        let budget = ChunkBudget {
            max_items: NonZeroUsize::new(max_items).expect("non-zero"),
            max_bytes: NonZeroUsize::new(max_bytes).expect("non-zero"),
        };
        let mut read = Vec::new();
        for chunk in trace_chunks(&trace, budget) {
            let data = TracesData::decode(chunk.0.as_slice()).expect("a chunk decodes");
            let mut spans = 0;
            for group in &data.resource_spans {
                for scope in &group.scope_spans {
                    for span in &scope.spans {
                        prop_assert_eq!(&span.trace_id, &vec![9u8; 16]);
                        spans += 1;
                        read.push((group.resource.clone(), scope.scope.clone(), span.clone()));
                    }
                }
            }
            prop_assert!(spans > 0, "an empty chunk");
            prop_assert!(spans <= max_items);
            prop_assert!(
                spans == 1 || data.encoded_len() <= max_bytes,
                "{} spans in {} bytes over {}",
                spans,
                data.encoded_len(),
                max_bytes
            );
        }
        prop_assert_eq!(read.len(), trace.spans.len());
        for ((resource, scope, span), stored) in read.iter().zip(&trace.spans) {
            prop_assert_eq!(span, stored.otlp());
            prop_assert_eq!(resource.as_ref(), Some(stored.resource().otlp()));
            prop_assert_eq!(scope.clone().unwrap_or_default(), stored.scope().otlp().clone());
        }
    }
}
