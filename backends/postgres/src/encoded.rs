//! A trace's stored spans as OTLP bytes for GetTraces, without decoding them: each payload is
//! decompressed and walked for its span entries, which keep the span's prost bytes with the
//! trace ID left out; the ID is written back in front (it is field 1, so the bytes are those
//! prost writes for the whole span).

use prost::encoding::{WireType, encode_key, encode_varint};
use remote_storage_core::{EncodedTrace, StoreError, StoreResult, TraceId};

use crate::rows::{Ordered, TraceRows, decompress, merge_stored, parse_raw};

/// OTLP `Span.trace_id`.
const TRACE_ID_FIELD: u32 = 1;

/// Where one span lies: its row's index in the decompressed payloads, and its byte range.
struct Located {
    row: usize,
    span: std::ops::Range<usize>,
    resource: std::sync::Arc<remote_storage_core::Resource>,
    scope: std::sync::Arc<remote_storage_core::Scope>,
}

/// The spans of one trace from its rows `(batch_seq, payload)`, in the storage order and with
/// the copies [`crate::rows::decode_trace`] keeps, as OTLP bytes.
pub(crate) fn encode_trace(trace_id: TraceId, rows: TraceRows) -> StoreResult<EncodedTrace> {
    let mut payloads = Vec::with_capacity(rows.len());
    let mut stored: Vec<Ordered<Located>> = Vec::new();
    for (row, (batch_seq, payload)) in rows.into_iter().enumerate() {
        let raw = decompress(&payload)?;
        parse_raw(&raw, |entry| {
            stored.push((
                batch_seq,
                entry.position,
                entry.hash,
                entry.occurrence,
                Located {
                    row,
                    span: entry.span,
                    resource: std::sync::Arc::clone(entry.resource),
                    scope: std::sync::Arc::clone(entry.scope),
                },
            ));
            Ok(())
        })?;
        payloads.push(raw);
    }
    let spans = merge_stored(stored);
    let mut encoded = EncodedTrace::new(trace_id);
    encoded.reserve(spans.iter().map(|span| span.span.len() + 18).sum());
    for span in spans {
        let bytes = payloads
            .get(span.row)
            .and_then(|raw| raw.get(span.span.clone()))
            .ok_or_else(|| StoreError::internal("postgres: corrupt chunk payload", "span range"))?;
        encoded.push(&span.resource, &span.scope, |out| {
            encode_key(TRACE_ID_FIELD, WireType::LengthDelimited, out);
            encode_varint(trace_id.as_bytes().len() as u64, out);
            out.extend_from_slice(trace_id.as_bytes());
            out.extend_from_slice(bytes);
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use remote_storage_core::Trace;
    use remote_storage_core::testing::span;

    use super::*;
    use crate::rows::{Batch, decode_trace};

    #[test]
    fn encoded_spans_equal_the_decoded_ones_with_their_copies_and_order() {
        let first = vec![
            span(5, 1, None, "front", "root", 10, 90, false),
            span(5, 2, Some(1), "back", "child", 20, 30, true),
        ];
        // A second write re-sends the child (dropped as a copy) and adds a grandchild.
        let second = vec![
            span(5, 2, Some(1), "back", "child", 20, 30, true),
            span(5, 3, Some(2), "back", "grandchild", 21, 29, false),
        ];
        let mut rows = Vec::new();
        for (batch_seq, spans) in [(2, second), (1, first)] {
            let batch = Batch::build(&spans, 3_600_000_000_000).expect("builds");
            rows.extend(
                batch
                    .chunks
                    .payload
                    .into_iter()
                    .map(|payload| (batch_seq, payload)),
            );
        }
        let trace_id = TraceId([5; 16]);
        let decoded = Trace {
            trace_id,
            spans: decode_trace(trace_id, rows.clone()).expect("decodes"),
        };
        let encoded = encode_trace(trace_id, rows).expect("encodes");
        assert_eq!(decoded.spans.len(), 3);
        assert_eq!(encoded.len(), decoded.spans.len());
        for (index, span) in decoded.spans.iter().enumerate() {
            assert_eq!(
                encoded.span_bytes(index),
                span.otlp().encode_to_vec().as_slice()
            );
            assert_eq!(encoded.resource(index).otlp(), span.resource().otlp());
            assert_eq!(encoded.scope(index).otlp(), span.scope().otlp());
        }
    }

    #[test]
    fn a_corrupt_payload_is_an_error() {
        let rows = vec![(1, vec![3, 1, 2, 3])];
        assert!(encode_trace(TraceId([5; 16]), rows).is_err());
    }
}
