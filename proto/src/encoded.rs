//! A `TracesData` message that is already encoded.
//!
//! GetTraces and FindTraces stream traces that are often large (10,000 spans and more). Building
//! `TracesData` messages only to encode them copies every span once more; the server writes the
//! wire bytes directly from its stored spans instead and hands them to gRPC as this type, which
//! encodes as exactly those bytes. Clients decode the same bytes as an ordinary `TracesData`.

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, skip_field};

/// The encoded fields of one `opentelemetry.proto.trace.v1.TracesData` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedTracesData(pub Vec<u8>);

impl prost::Message for EncodedTracesData {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// Only the server encodes this type; decoding it keeps nothing (decode `TracesData`).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}
