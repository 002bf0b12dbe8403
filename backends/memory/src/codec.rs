//! The compact bytes a stored span keeps: fingerprints of its terms, its attributes with
//! string values as dictionary terms, then the OTLP fields that the span's index record does
//! not already hold.
//!
//! Layout: a varint count of fingerprints and that many bytes, one per distinct term the span
//! carries (the top byte of the term's hash; see [`fingerprint`]). Then a varint count of
//! attributes, then per attribute either `term << 1` (a string
//! attribute, read back from the dictionary) or `len << 1 | 1` followed by `len` bytes of the
//! OTLP `KeyValue` (any other value, or a string too long to number). The rest is an OTLP
//! `Span` message holding only the fields below, so reading it back is a prost decode. IDs,
//! name, kind, start and end live in the index record and are put back by the caller.

use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use jaeger_remote_proto::otlp::trace::Span as OtlpSpan;
use prost::Message as _;
use prost::bytes::Buf as _;
use prost::encoding::{decode_varint, encode_varint, fixed32, message, string, uint32};
use remote_storage_core::matcher::span_level_attributes;

use crate::error::CorruptSpan;
use crate::terms::{TermDictionary, TermId};

/// OTLP `Span` field numbers: those of the index record, then those kept in the compact bytes.
mod field {
    pub(super) const TRACE_ID: u32 = 1;
    pub(super) const SPAN_ID: u32 = 2;
    pub(super) const PARENT_SPAN_ID: u32 = 4;
    pub(super) const NAME: u32 = 5;
    pub(super) const KIND: u32 = 6;
    pub(super) const START_TIME: u32 = 7;
    pub(super) const END_TIME: u32 = 8;
    pub(super) const ATTRIBUTES: u32 = 9;
    pub(super) const TRACE_STATE: u32 = 3;
    pub(super) const DROPPED_ATTRIBUTES_COUNT: u32 = 10;
    pub(super) const EVENTS: u32 = 11;
    pub(super) const DROPPED_EVENTS_COUNT: u32 = 12;
    pub(super) const LINKS: u32 = 13;
    pub(super) const DROPPED_LINKS_COUNT: u32 = 14;
    pub(super) const STATUS: u32 = 15;
    pub(super) const FLAGS: u32 = 16;
}

/// The byte of a term hash kept per span, to rule spans out without decoding them.
pub(crate) fn fingerprint(hash: u64) -> u8 {
    (hash >> 56) as u8
}

/// The compact bytes: fingerprints of `hashes` (distinct), then `payload` from
/// [`encode_span`].
pub(crate) fn span_body(hashes: &[u64], payload: &[u8]) -> Box<[u8]> {
    let mut body = Vec::with_capacity(1 + hashes.len() + payload.len());
    encode_varint(hashes.len() as u64, &mut body);
    body.extend(hashes.iter().map(|&hash| fingerprint(hash)));
    body.extend_from_slice(payload);
    body.into_boxed_slice()
}

/// The fingerprints at the start of compact bytes (none if the bytes are corrupt).
pub(crate) fn fingerprints(body: &[u8]) -> &[u8] {
    split_fingerprints(body).map_or(&[], |(fingerprints, _)| fingerprints)
}

fn split_fingerprints(mut body: &[u8]) -> Result<(&[u8], &[u8]), CorruptSpan> {
    let count = usize::try_from(decode_varint(&mut body)?)
        .ok()
        .filter(|&count| count <= body.len())
        .ok_or(CorruptSpan::Layout("fingerprint count overflows"))?;
    Ok(body.split_at(count))
}

/// Appends the attributes and remaining fields of `span` to `out`, and the hashes of the
/// terms of its span, event and link attributes (what an attribute search can find on this
/// span, besides its resource and scope) to `hashes`.
pub(crate) fn encode_span(
    span: &OtlpSpan,
    terms: &mut TermDictionary,
    hashes: &mut Vec<u64>,
    out: &mut Vec<u8>,
) {
    let first = hashes.len();
    hashes.extend(span_level_attributes(span).map(|attribute| terms.hash_attribute(attribute)));
    // Touch the table slots of all the span's attributes first, so that their cache misses
    // overlap (see `terms`).
    let touched = hashes[first..]
        .iter()
        .take(span.attributes.len())
        .fold(0, |touched, &hash| touched ^ terms.touch(hash));
    std::hint::black_box(touched);
    encode_varint(span.attributes.len() as u64, out);
    // The span's own attributes come first among its span-level attributes.
    for (attribute, &hash) in span.attributes.iter().zip(&hashes[first..]) {
        let term = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(text)) if attribute.key_strindex == 0 => {
                terms.intern(hash, &attribute.key, text)
            }
            _ => None,
        };
        match term {
            Some(term) => encode_varint(u64::from(term) << 1, out),
            None => {
                let len = attribute.encoded_len();
                encode_varint(((len as u64) << 1) | 1, out);
                attribute.encode_raw(out);
            }
        }
    }
    if !span.trace_state.is_empty() {
        string::encode(field::TRACE_STATE, &span.trace_state, out);
    }
    if span.dropped_attributes_count != 0 {
        uint32::encode(
            field::DROPPED_ATTRIBUTES_COUNT,
            &span.dropped_attributes_count,
            out,
        );
    }
    message::encode_repeated(field::EVENTS, &span.events, out);
    if span.dropped_events_count != 0 {
        uint32::encode(field::DROPPED_EVENTS_COUNT, &span.dropped_events_count, out);
    }
    message::encode_repeated(field::LINKS, &span.links, out);
    if span.dropped_links_count != 0 {
        uint32::encode(field::DROPPED_LINKS_COUNT, &span.dropped_links_count, out);
    }
    if let Some(status) = &span.status {
        message::encode(field::STATUS, status, out);
    }
    if span.flags != 0 {
        fixed32::encode(field::FLAGS, &span.flags, out);
    }
}

/// Reads compact bytes back: an OTLP span with its attributes and the fields written by
/// [`encode_span`]; IDs, name, kind and times are left at their defaults.
pub(crate) fn decode_span(body: &[u8], terms: &TermDictionary) -> Result<OtlpSpan, CorruptSpan> {
    let (_, mut bytes) = split_fingerprints(body)?;
    let count = usize::try_from(decode_varint(&mut bytes)?)
        .map_err(|_| CorruptSpan::Layout("attribute count overflows"))?;
    let mut attributes = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let tag = decode_varint(&mut bytes)?;
        if tag & 1 == 0 {
            let term = TermId::try_from(tag >> 1)
                .map_err(|_| CorruptSpan::Layout("term number overflows"))?;
            let (key, value) = terms
                .term(term)
                .ok_or(CorruptSpan::Layout("unknown attribute term"))?;
            attributes.push(KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(value.to_owned())),
                }),
                key_strindex: 0,
            });
        } else {
            let len = usize::try_from(tag >> 1)
                .ok()
                .filter(|&len| len <= bytes.len())
                .ok_or(CorruptSpan::Layout("attribute length overflows"))?;
            attributes.push(KeyValue::decode(&bytes[..len])?);
            bytes.advance(len);
        }
    }
    let mut span = OtlpSpan::decode(bytes)?;
    span.attributes = attributes;
    Ok(span)
}

/// The fields of a span that its index record holds, for [`write_otlp_span`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanHeader<'a> {
    pub(crate) trace_id: &'a [u8; 16],
    pub(crate) span_id: &'a [u8; 8],
    pub(crate) parent_span_id: Option<&'a [u8; 8]>,
    pub(crate) name: &'a str,
    pub(crate) kind: i32,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// Appends the OTLP `Span` message of `header` and compact bytes `body` to `out`, straight from
/// the compact form: the bytes equal prost's encoding of the span [`decode_span`] and the
/// index record rebuild, without building it (no `String` per attribute).
pub(crate) fn write_otlp_span(
    header: &SpanHeader<'_>,
    body: &[u8],
    terms: &TermDictionary,
    out: &mut Vec<u8>,
) -> Result<(), CorruptSpan> {
    let (_, mut bytes) = split_fingerprints(body)?;
    let count = decode_varint(&mut bytes)?;
    write_bytes(field::TRACE_ID, header.trace_id, out);
    write_bytes(field::SPAN_ID, header.span_id, out);
    // The attributes sit between the IDs and the rest, so find where the rest starts first:
    // trace state (field 3) comes before the parent ID in prost's field order.
    let attributes = bytes;
    for _ in 0..count {
        let tag = decode_varint(&mut bytes)?;
        if tag & 1 == 1 {
            let len = usize::try_from(tag >> 1)
                .ok()
                .filter(|&len| len <= bytes.len())
                .ok_or(CorruptSpan::Layout("attribute length overflows"))?;
            bytes.advance(len);
        }
    }
    let mut rest = bytes;
    if let Some(trace_state) = take_trace_state(&mut rest)? {
        write_bytes(field::TRACE_STATE, trace_state, out);
    }
    if let Some(parent) = header.parent_span_id {
        write_bytes(field::PARENT_SPAN_ID, parent, out);
    }
    write_bytes(field::NAME, header.name.as_bytes(), out);
    if header.kind != 0 {
        prost::encoding::int32::encode(field::KIND, &header.kind, out);
    }
    if header.start != 0 {
        prost::encoding::fixed64::encode(field::START_TIME, &header.start, out);
    }
    if header.end != 0 {
        prost::encoding::fixed64::encode(field::END_TIME, &header.end, out);
    }
    let mut attributes = attributes;
    for _ in 0..count {
        let tag = decode_varint(&mut attributes)?;
        if tag & 1 == 0 {
            let term = TermId::try_from(tag >> 1)
                .map_err(|_| CorruptSpan::Layout("term number overflows"))?;
            let (key, value) = terms
                .term(term)
                .ok_or(CorruptSpan::Layout("unknown attribute term"))?;
            write_string_attribute(key, value, out);
        } else {
            // Bounds were checked by the first pass.
            let len = usize::try_from(tag >> 1).unwrap_or(usize::MAX);
            write_bytes(field::ATTRIBUTES, &attributes[..len], out);
            attributes.advance(len);
        }
    }
    out.extend_from_slice(rest);
    Ok(())
}

/// Takes the trace state field off the front of the compact bytes' OTLP fields, where
/// [`encode_span`] writes it.
fn take_trace_state<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, CorruptSpan> {
    let key = (field::TRACE_STATE << 3) | 2;
    if rest.first().map(|&byte| u32::from(byte)) != Some(key) {
        return Ok(None);
    }
    let mut after_key = &rest[1..];
    let len = usize::try_from(decode_varint(&mut after_key)?)
        .ok()
        .filter(|&len| len <= after_key.len())
        .ok_or(CorruptSpan::Layout("trace state length overflows"))?;
    let (trace_state, after) = after_key.split_at(len);
    *rest = after;
    Ok(Some(trace_state))
}

/// A length-delimited field, left out when empty (as prost does for proto3 bytes and strings).
fn write_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    if !bytes.is_empty() {
        prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
        encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
}

/// A span attribute `KeyValue { key, value: AnyValue { string_value } }`.
fn write_string_attribute(key: &str, value: &str, out: &mut Vec<u8>) {
    let len_of = |payload: usize| 1 + prost::encoding::encoded_len_varint(payload as u64) + payload;
    // A oneof member is written even when empty; the key only when it is not.
    let any_value_len = len_of(value.len());
    let key_len = if key.is_empty() { 0 } else { len_of(key.len()) };
    let key_value_len = key_len + len_of(any_value_len);
    prost::encoding::encode_key(
        field::ATTRIBUTES,
        prost::encoding::WireType::LengthDelimited,
        out,
    );
    encode_varint(key_value_len as u64, out);
    write_bytes(1, key.as_bytes(), out);
    prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, out);
    encode_varint(any_value_len as u64, out);
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::trace::span::{Event, Link};
    use jaeger_remote_proto::otlp::trace::{Status, status::StatusCode};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        }
    }

    fn round_trip(span: &OtlpSpan, terms: &mut TermDictionary) -> (OtlpSpan, Vec<u64>) {
        let mut payload = Vec::new();
        let mut hashes = Vec::new();
        encode_span(span, terms, &mut hashes, &mut payload);
        let body = span_body(&hashes, &payload);
        let expected: Vec<u8> = hashes.iter().map(|&hash| fingerprint(hash)).collect();
        assert_eq!(fingerprints(&body), expected.as_slice());
        (decode_span(&body, terms).expect("decodes"), hashes)
    }

    #[test]
    fn every_kept_field_reads_back_and_ids_are_left_out() {
        let span = OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "a=b".to_owned(),
            parent_span_id: vec![3; 8],
            flags: 0x301,
            name: "op".to_owned(),
            kind: 2,
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![
                kv("http.method", Value::StringValue("GET".to_owned())),
                kv("http.status_code", Value::IntValue(200)),
                kv("long", Value::StringValue("x".repeat(400))),
                KeyValue {
                    key: "empty".to_owned(),
                    value: None,
                    key_strindex: 0,
                },
                KeyValue {
                    key: "indexed".to_owned(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue("by key_strindex".to_owned())),
                    }),
                    key_strindex: 7,
                },
            ],
            dropped_attributes_count: 1,
            events: vec![Event {
                name: "boom".to_owned(),
                attributes: vec![kv("event.key", Value::BoolValue(true))],
                ..Event::default()
            }],
            dropped_events_count: 2,
            links: vec![Link {
                trace_id: vec![4; 16],
                attributes: vec![kv("link.key", Value::StringValue("l".to_owned()))],
                ..Link::default()
            }],
            dropped_links_count: 3,
            status: Some(Status {
                message: "bad".to_owned(),
                code: StatusCode::Error as i32,
            }),
        };
        let mut terms = TermDictionary::default();
        let (decoded, hashes) = round_trip(&span, &mut terms);
        let expected = OtlpSpan {
            trace_id: Vec::new(),
            span_id: Vec::new(),
            parent_span_id: Vec::new(),
            name: String::new(),
            kind: 0,
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            ..span
        };
        assert_eq!(decoded, expected);
        let expected_terms = [
            ("empty", ""),
            ("event.key", "true"),
            ("http.method", "GET"),
            ("http.status_code", "200"),
            ("indexed", "by key_strindex"),
            ("link.key", "l"),
            ("long", &"x".repeat(400)),
        ];
        let mut expected_hashes: Vec<u64> = expected_terms
            .iter()
            .map(|(key, value)| terms.hash(key, value))
            .collect();
        expected_hashes.sort_unstable();
        let mut hashes = hashes;
        hashes.sort_unstable();
        assert_eq!(hashes, expected_hashes);
        let mut names: Vec<_> = (0..16).filter_map(|term| terms.term(term)).collect();
        names.sort_unstable();
        assert_eq!(names, vec![("http.method", "GET")]);
    }

    #[test]
    fn repeated_string_attributes_cost_a_few_bytes() {
        let span = OtlpSpan {
            attributes: (0..11)
                .map(|i| {
                    kv(
                        &format!("attr.key.{i:02}"),
                        Value::StringValue(format!("value-{i:03}")),
                    )
                })
                .collect(),
            ..OtlpSpan::default()
        };
        let mut terms = TermDictionary::default();
        let mut payload = Vec::new();
        encode_span(&span, &mut terms, &mut Vec::new(), &mut payload);
        assert!(payload.len() <= 12, "{} bytes", payload.len());
        let body = span_body(&[], &payload);
        assert_eq!(decode_span(&body, &terms).expect("decodes"), span);
    }

    /// The bytes [`write_otlp_span`] writes for `span`, stored in `terms`.
    fn written(span: &OtlpSpan, terms: &mut TermDictionary) -> Vec<u8> {
        let mut payload = Vec::new();
        let mut hashes = Vec::new();
        encode_span(span, terms, &mut hashes, &mut payload);
        let body = span_body(&hashes, &payload);
        let header = SpanHeader {
            trace_id: span.trace_id.as_slice().try_into().expect("16 bytes"),
            span_id: span.span_id.as_slice().try_into().expect("8 bytes"),
            parent_span_id: (!span.parent_span_id.is_empty())
                .then(|| span.parent_span_id.as_slice().try_into().expect("8 bytes")),
            name: &span.name,
            kind: span.kind,
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
        };
        let mut out = Vec::new();
        write_otlp_span(&header, &body, terms, &mut out).expect("writes");
        out
    }

    #[test]
    fn spans_are_written_as_prost_encodes_them() {
        let full = OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "a=b".to_owned(),
            parent_span_id: vec![3; 8],
            flags: 0x301,
            name: "op".to_owned(),
            kind: 2,
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![
                kv("http.method", Value::StringValue("GET".to_owned())),
                kv("", Value::StringValue(String::new())),
                kv("http.status_code", Value::IntValue(200)),
                kv("long", Value::StringValue("x".repeat(400))),
                KeyValue {
                    key: "empty".to_owned(),
                    value: None,
                    key_strindex: 0,
                },
            ],
            dropped_attributes_count: 1,
            events: vec![Event {
                name: "boom".to_owned(),
                ..Event::default()
            }],
            links: vec![Link {
                trace_id: vec![4; 16],
                ..Link::default()
            }],
            status: Some(Status {
                message: "bad".to_owned(),
                code: StatusCode::Error as i32,
            }),
            ..OtlpSpan::default()
        };
        let bare = OtlpSpan {
            trace_id: vec![5; 16],
            span_id: vec![6; 8],
            ..OtlpSpan::default()
        };
        let negative_kind = OtlpSpan {
            kind: -3,
            trace_state: "only=state".to_owned(),
            ..bare.clone()
        };
        let mut terms = TermDictionary::default();
        for span in [full, bare, negative_kind] {
            // Twice: the second time every string attribute is a known term.
            for _ in 0..2 {
                assert_eq!(written(&span, &mut terms), span.encode_to_vec(), "{span:?}");
            }
        }
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let terms = TermDictionary::default();
        let header = SpanHeader {
            trace_id: &[1; 16],
            span_id: &[2; 8],
            parent_span_id: None,
            name: "op",
            kind: 1,
            start: 1,
            end: 2,
        };
        for body in [
            &[0, 1, 0][..],
            &[0, 1, 0x21],
            &[0, 0xff],
            &[5, 1],
            &[0, 0, 0x1a, 9],
        ] {
            assert!(write_otlp_span(&header, body, &terms, &mut Vec::new()).is_err());
        }
        assert!(decode_span(&[0, 1, 0], &terms).is_err());
        assert!(decode_span(&[0, 1, 0x21], &terms).is_err());
        assert!(decode_span(&[0, 0xff], &terms).is_err());
        assert!(decode_span(&[5, 1], &terms).is_err());
        assert!(fingerprints(&[5, 1]).is_empty());
    }
}
