//! Property tests of the row encoding: any write's rows decode back to its spans, trace by
//! trace in write order, whatever their attributes, services and times; and no payload read
//! back (corrupted or foreign) makes the decoder panic.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use remote_storage_core::TraceId;
use remote_storage_core::model::{Scope, Span};
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value};
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status, status::StatusCode};
use remote_storage_core::testing::resource;

use crate::rows::{Batch, decode_chunk, decode_raw, decode_trace};

const HOUR: i64 = 3_600_000_000_000;

/// A span of trace `[trace; 16]` with arbitrary attributes, of one of three services, starting
/// anywhere in a few days (so one write spans several time buckets).
fn span() -> impl Strategy<Value = Span> {
    (
        1..4u8,
        any::<[u8; 8]>().prop_filter("a span ID is not zero", |id| *id != [0; 8]),
        0..3usize,
        ".{0,12}",
        0..(72 * HOUR as u64),
        0..1_000_000u64,
        any::<bool>(),
        vec((".{0,8}", ".{0,16}"), 0..4),
    )
        .prop_map(
            |(trace, span_id, service, name, start, duration, error, attributes)| {
                let otlp = OtlpSpan {
                    trace_id: vec![trace; 16],
                    span_id: span_id.to_vec(),
                    name,
                    start_time_unix_nano: 1_700_000_000_000_000_000 + start,
                    end_time_unix_nano: 1_700_000_000_000_000_000 + start + duration,
                    status: error.then(|| Status {
                        code: StatusCode::Error as i32,
                        message: String::new(),
                    }),
                    attributes: attributes
                        .into_iter()
                        .map(|(key, value)| KeyValue {
                            key,
                            value: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(value)),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                Span::new(
                    resource(["a", "b", "c"][service]),
                    Arc::new(Scope::default()),
                    otlp,
                )
                .expect("a valid span")
            },
        )
}

proptest! {
    #[test]
    fn every_write_reads_back_trace_by_trace_in_write_order(spans in vec(span(), 1..40)) {
        let batch = Batch::build(&spans, HOUR).expect("encodes");
        for trace in 1..4u8 {
            let trace_id = TraceId([trace; 16]);
            let rows: Vec<(i64, Vec<u8>)> = batch
                .chunks
                .payload
                .iter()
                .zip(&batch.chunks.trace_id)
                .filter(|(_, id)| id.as_slice() == trace_id.as_bytes())
                .map(|(payload, _)| (1, payload.clone()))
                .collect();
            let read = decode_trace(trace_id, rows).expect("decodes");
            let written: Vec<&Span> =
                spans.iter().filter(|span| span.trace_id() == trace_id).collect();
            prop_assert_eq!(read.len(), written.len());
            for (read, written) in read.iter().zip(written) {
                prop_assert_eq!(read.otlp(), written.otlp());
                prop_assert_eq!(read.service_name(), written.service_name());
            }
        }
    }

    #[test]
    fn no_payload_makes_the_decoder_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = decode_chunk(TraceId([1; 16]), &bytes);
        let _ = decode_raw(TraceId([1; 16]), &bytes);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic(
        spans in vec(span(), 1..10),
        at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let batch = Batch::build(&spans, HOUR).expect("encodes");
        let mut payload = batch.chunks.payload[0].clone();
        let index = at.index(payload.len());
        payload[index] ^= flip;
        let _ = decode_chunk(TraceId([1; 16]), &payload);
    }
}
