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

/// OTLP `Span` field numbers of the fields kept in the compact bytes.
mod field {
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

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let terms = TermDictionary::default();
        assert!(decode_span(&[0, 1, 0], &terms).is_err());
        assert!(decode_span(&[0, 1, 0x21], &terms).is_err());
        assert!(decode_span(&[0, 0xff], &terms).is_err());
        assert!(decode_span(&[5, 1], &terms).is_err());
        assert!(fingerprints(&[5, 1]).is_empty());
    }
}
