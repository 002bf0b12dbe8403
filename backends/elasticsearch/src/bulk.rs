//! The `_bulk` bodies of one write, encoded straight into the request bytes: every span
//! document (see `document.rs` for its fields) and the service/operation documents the write
//! adds, each after its `{"index":{…}}` line.
//!
//! This is the hot path of ingest, so nothing here goes through a JSON value or a
//! per-document buffer: fields are appended to the body as they are computed, the parts shared
//! by many spans (a resource's and a scope's protobuf bytes and attribute terms) are encoded
//! once per write, and the span's protobuf is written once into a reused buffer that is hashed
//! for the document ID and base64-encoded into the body in place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::matcher::span_level_attributes;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::{Resource, Scope, Span, Tenant, UnixNanos};
use xxhash_rust::xxh3::xxh3_128;

use remote_storage_core::index_term::{MAX_INDEX_TERM_BYTES, value_hash};

use crate::document::micros;
use crate::indices::{IndexKind, IndexNames};

/// One `_bulk` request body and how many documents it holds.
pub(crate) struct BulkChunk {
    /// Newline-delimited JSON, uncompressed.
    pub(crate) body: Vec<u8>,
    /// Documents in `body`.
    pub(crate) documents: usize,
}

/// Encodes the documents of one write into bodies of at most about `max_bytes` each (a body
/// is closed after the document that reaches the limit). `buffer` supplies the vectors the
/// bodies are written into, so the caller can hand back ones it has used.
///
/// `batch` orders this write among others (a nanosecond clock reading, unique per process):
/// with the span's position in the write it forms the document's `seq`, the key traces are
/// read back in, so spans come back in the order they were written.
pub(crate) fn encode_write(
    tenant: &Tenant,
    spans: &[Span],
    names: &IndexNames,
    batch: u64,
    max_bytes: usize,
    mut buffer: impl FnMut() -> Vec<u8>,
) -> Vec<BulkChunk> {
    let mut chunks = Vec::new();
    let mut current = BulkChunk {
        body: buffer(),
        documents: 0,
    };
    let mut close_if_full = |current: &mut BulkChunk, chunks: &mut Vec<BulkChunk>| {
        current.documents += 1;
        if current.body.len() >= max_bytes {
            let next = BulkChunk {
                body: buffer(),
                documents: 0,
            };
            chunks.push(std::mem::replace(current, next));
        }
    };
    let mut writer = SpanDocuments::new(tenant, names, batch);
    for (position, span) in spans.iter().enumerate() {
        writer.write(span, position, &mut current.body);
        close_if_full(&mut current, &mut chunks);
    }
    for service in service_documents(tenant, spans, names) {
        service.write(&mut current.body);
        close_if_full(&mut current, &mut chunks);
    }
    if current.documents > 0 {
        chunks.push(current);
    }
    chunks
}

/// Writes span documents, keeping what a write's spans share.
struct SpanDocuments<'a> {
    tenant: &'a Tenant,
    batch: u64,
    index: CachedIndexName<'a>,
    /// Per resource: its `ResourceSpans` fields before `scope_spans`, and its attribute terms.
    resources: HashMap<*const Resource, Shared>,
    /// Per scope: its `ScopeSpans` fields before `spans`, and its attribute terms.
    scopes: HashMap<*const Scope, Shared>,
    /// How many documents of this write already hold each content hash.
    copies: HashMap<u128, u32>,
    /// The current span's stored bytes (reused).
    blob: Vec<u8>,
}

/// What every span of one resource or scope repeats.
struct Shared {
    /// Its protobuf fields inside the one-span `ResourceSpans` message.
    proto: Vec<u8>,
    /// Its attribute terms as a JSON array fragment (`"t1","t2"`), empty when it has none.
    terms: Vec<u8>,
}

impl Shared {
    /// `message` as field 1, then `schema_url` as field 3 when set (the layout of both
    /// `ResourceSpans` and `ScopeSpans` before their repeated field 2).
    fn new(message: &impl prost::Message, schema_url: &str, attributes: &[KeyValue]) -> Self {
        let mut proto = Vec::new();
        encode_key(1, WireType::LengthDelimited, &mut proto);
        encode_varint(message.encoded_len() as u64, &mut proto);
        message.encode_raw(&mut proto);
        if !schema_url.is_empty() {
            encode_key(3, WireType::LengthDelimited, &mut proto);
            encode_varint(schema_url.len() as u64, &mut proto);
            proto.extend_from_slice(schema_url.as_bytes());
        }
        let mut terms = Vec::new();
        write_terms(attributes.iter(), &mut true, &mut terms);
        Self { proto, terms }
    }
}

impl<'a> SpanDocuments<'a> {
    fn new(tenant: &'a Tenant, names: &'a IndexNames, batch: u64) -> Self {
        Self {
            tenant,
            batch,
            index: CachedIndexName::new(names, IndexKind::Span),
            resources: HashMap::new(),
            scopes: HashMap::new(),
            copies: HashMap::new(),
            blob: Vec::new(),
        }
    }

    fn write(&mut self, span: &Span, position: usize, out: &mut Vec<u8>) {
        let resource = self
            .resources
            .entry(Arc::as_ptr(span.resource()))
            .or_insert_with(|| {
                let resource = span.resource();
                Shared::new(
                    resource.otlp(),
                    resource.schema_url(),
                    &resource.otlp().attributes,
                )
            });
        let scope = self
            .scopes
            .entry(Arc::as_ptr(span.scope()))
            .or_insert_with(|| {
                let scope = span.scope();
                Shared::new(scope.otlp(), scope.schema_url(), &scope.otlp().attributes)
            });

        // The stored span: a one-span ResourceSpans (scope_spans = 2; ScopeSpans.spans = 2).
        let otlp = span.otlp();
        let span_len = otlp.encoded_len();
        let scope_spans_len =
            scope.proto.len() + 1 + encoded_len_varint(span_len as u64) + span_len;
        self.blob.clear();
        self.blob.extend_from_slice(&resource.proto);
        encode_key(2, WireType::LengthDelimited, &mut self.blob);
        encode_varint(scope_spans_len as u64, &mut self.blob);
        self.blob.extend_from_slice(&scope.proto);
        encode_key(2, WireType::LengthDelimited, &mut self.blob);
        encode_varint(span_len as u64, &mut self.blob);
        otlp.encode_raw(&mut self.blob);

        // The ID: tenant, content and the copy's ordinal within this write, so identical
        // copies in one write are all kept while a re-sent write maps onto its documents.
        let content = xxh3_128(&self.blob);
        let ordinal = self.copies.entry(content).or_insert(0);
        let tenant = self.tenant.name();
        let mut identity = Vec::with_capacity(tenant.len() + 28);
        identity.extend_from_slice(&(tenant.len() as u64).to_le_bytes());
        identity.extend_from_slice(tenant.as_bytes());
        identity.extend_from_slice(&content.to_le_bytes());
        identity.extend_from_slice(&ordinal.to_le_bytes());
        *ordinal += 1;
        let id = hex128(xxh3_128(&identity));

        out.extend_from_slice(b"{\"index\":{\"_index\":");
        push_string(out, self.index.name(span.start()));
        out.extend_from_slice(b",\"_id\":\"");
        out.extend_from_slice(&id);
        out.extend_from_slice(b"\"}}\n{\"tenant\":");
        push_string(out, tenant);
        out.extend_from_slice(b",\"trace_id\":\"");
        push_hex(out, span.trace_id().as_bytes());
        out.extend_from_slice(b"\",\"span_id\":\"");
        push_hex(out, span.span_id().as_bytes());
        out.extend_from_slice(b"\",\"service\":");
        push_string(out, span.service_name());
        out.extend_from_slice(b",\"operation\":");
        push_string(out, span.name());
        out.extend_from_slice(b",\"kind\":");
        push_string(out, span_kind_name(span.kind()));
        out.extend_from_slice(b",\"status\":");
        push_integer(out, otlp.status.as_ref().map_or(0, |status| status.code));
        out.extend_from_slice(b",\"start\":");
        push_integer(out, micros(span.start().0));
        out.extend_from_slice(b",\"start_ns\":\"");
        push_padded(out, span.start().0, 20);
        out.extend_from_slice(b"\",\"duration\":");
        push_integer(out, micros(span.duration_nanos()));
        out.extend_from_slice(b",\"duration_ns\":\"");
        push_padded(out, span.duration_nanos(), 20);
        out.extend_from_slice(b"\",\"end_ns\":\"");
        push_padded(out, span.end().0, 20);
        out.extend_from_slice(b"\",\"seq\":\"");
        push_padded(out, self.batch, 20);
        push_padded(out, position as u64, 10);
        out.extend_from_slice(b"\",\"terms\":[");
        let mut first = true;
        write_terms(span_level_attributes(otlp), &mut first, out);
        for shared in [&scope.terms, &resource.terms] {
            if shared.is_empty() {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(shared);
        }
        out.extend_from_slice(b"],\"doc_id\":\"");
        out.extend_from_slice(&id);
        out.extend_from_slice(b"\",\"blob\":\"");
        let engine = base64::engine::general_purpose::STANDARD;
        let start = out.len();
        out.resize(
            start + base64::encoded_len(self.blob.len(), true).unwrap_or(0),
            0,
        );
        let written = engine
            .encode_slice(&self.blob, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        out.extend_from_slice(b"\"}\n");
    }
}

/// A service/operation document: one per (period, tenant, service, operation, kind), with an
/// ID derived from those, so writing one again is a no-op.
struct ServiceDocument<'a> {
    index: String,
    id: [u8; 32],
    tenant: &'a str,
    service: &'a str,
    operation: &'a str,
    kind: &'static str,
}

impl ServiceDocument<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"index\":{\"_index\":");
        push_string(out, &self.index);
        out.extend_from_slice(b",\"_id\":\"");
        out.extend_from_slice(&self.id);
        out.extend_from_slice(b"\"}}\n{\"tenant\":");
        push_string(out, self.tenant);
        out.extend_from_slice(b",\"service\":");
        push_string(out, self.service);
        out.extend_from_slice(b",\"operation\":");
        push_string(out, self.operation);
        out.extend_from_slice(b",\"kind\":");
        push_string(out, self.kind);
        out.extend_from_slice(b"}\n");
    }
}

/// The distinct service documents of a write's spans, in first-seen order.
fn service_documents<'a>(
    tenant: &'a Tenant,
    spans: &'a [Span],
    names: &IndexNames,
) -> Vec<ServiceDocument<'a>> {
    let mut seen = HashSet::new();
    let mut documents = Vec::new();
    let mut index = CachedIndexName::new(names, IndexKind::Service);
    for span in spans {
        let kind = span_kind_name(span.kind());
        let key = (
            names.period_key(span.start()),
            span.service_name(),
            span.name(),
            kind,
        );
        if !seen.insert(key) {
            continue;
        }
        let mut identity = Vec::new();
        for part in [tenant.name(), span.service_name(), span.name(), kind] {
            identity.extend_from_slice(&(part.len() as u64).to_le_bytes());
            identity.extend_from_slice(part.as_bytes());
        }
        documents.push(ServiceDocument {
            index: index.name(span.start()).to_owned(),
            id: hex128(xxh3_128(&identity)),
            tenant: tenant.name(),
            service: span.service_name(),
            operation: span.name(),
            kind,
        });
    }
    documents
}

/// The index name of a kind for span start times, formatted once per period: consecutive
/// spans of a write mostly share one.
struct CachedIndexName<'a> {
    names: &'a IndexNames,
    kind: IndexKind,
    period: Option<u64>,
    name: String,
}

impl<'a> CachedIndexName<'a> {
    fn new(names: &'a IndexNames, kind: IndexKind) -> Self {
        Self {
            names,
            kind,
            period: None,
            name: String::new(),
        }
    }

    fn name(&mut self, start: UnixNanos) -> &str {
        let period = self.names.period_key(start);
        if self.period != Some(period) {
            self.name = self.names.index_for(self.kind, start);
            self.period = Some(period);
        }
        &self.name
    }
}

/// Appends the attribute terms of `attributes` to a JSON array being written (each preceded by
/// a comma unless it is the array's first element, which `first` tracks). Each is the term
/// `remote_storage_core::index_term::index_term` makes, written without building it.
fn write_terms<'a>(
    attributes: impl Iterator<Item = &'a KeyValue>,
    first: &mut bool,
    out: &mut Vec<u8>,
) {
    let mut key_length = itoa::Buffer::new();
    for attribute in attributes {
        if !std::mem::take(first) {
            out.push(b',');
        }
        let key = attribute.key.as_str();
        let value = any_value_text(attribute.value.as_ref());
        let length = key_length.format(key.len());
        out.push(b'"');
        out.extend_from_slice(length.as_bytes());
        out.push(b':');
        push_escaped(out, key);
        if length.len() + 1 + key.len() + 1 + value.len() <= MAX_INDEX_TERM_BYTES {
            out.push(b'=');
            push_escaped(out, &value);
        } else {
            out.push(b'#');
            out.extend_from_slice(value_hash(&value).as_bytes());
        }
        out.push(b'"');
    }
}

/// A 128-bit number as 32 lowercase hex digits.
fn hex128(value: u128) -> [u8; 32] {
    let mut text = [0; 32];
    // The output is exactly twice the input's length, so this cannot fail.
    let _ = hex::encode_to_slice(value.to_be_bytes(), &mut text);
    text
}

/// Lowercase hex of a trace (16 bytes) or span (8 bytes) ID.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut text = [0; 32];
    let text = &mut text[..2 * bytes.len().min(16)];
    // The output is exactly twice the input's length, so this cannot fail.
    let _ = hex::encode_to_slice(&bytes[..text.len() / 2], text);
    out.extend_from_slice(text);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn push_integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `value` as exactly `width` decimal digits, zero-padded (`width` ≤ 20, and wide enough):
/// nanosecond times padded to 20 digits sort and compare as text exactly as the numbers do,
/// with no precision lost (the sort key, and the exact bound checks).
fn push_padded(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// A JSON string, quoted.
fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_escaped(out, text);
    out.push(b'"');
}

/// The contents of a JSON string: `"`, `\` and control characters escaped as serde_json
/// escapes them, everything else (all of UTF-8) as is.
fn push_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Almost every string needs no escape: one pass without early exit (which the compiler
    // vectorizes) settles that, and the text is copied whole.
    let plain = bytes.iter().fold(true, |plain, &byte| {
        plain & (byte >= 0x20) & (byte != b'"') & (byte != b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        return;
    }
    let mut copied = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[copied..at]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX_DIGITS[usize::from(byte >> 4)]);
            out.push(HEX_DIGITS[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        copied = at + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use remote_storage_core::proto::otlp::common::{AnyValue, any_value::Value as V};
    use remote_storage_core::testing::span;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::IndexRotation;
    use crate::document::{decode_blob, span_terms};
    use remote_storage_core::index_term::index_term;

    fn names() -> IndexNames {
        IndexNames::new("jr", IndexRotation::Day)
    }

    /// The documents of one body: (header, source) pairs.
    fn documents(chunks: &[BulkChunk]) -> Vec<(Value, Value)> {
        let mut documents = Vec::new();
        for chunk in chunks {
            let lines: Vec<Value> = std::str::from_utf8(&chunk.body)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            assert_eq!(lines.len(), chunk.documents * 2);
            for pair in lines.chunks(2) {
                documents.push((pair[0].clone(), pair[1].clone()));
            }
        }
        documents
    }

    fn with_attribute(original: &Span, key: &str, value: V) -> Span {
        let mut otlp = original.otlp().clone();
        otlp.attributes.push(KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        });
        Span::new(
            Arc::clone(original.resource()),
            Arc::clone(original.scope()),
            otlp,
        )
        .unwrap()
    }

    fn encode(tenant: &Tenant, spans: &[Span]) -> Vec<BulkChunk> {
        encode_write(tenant, spans, &names(), 1, usize::MAX, Vec::new)
    }

    #[test]
    fn documents_hold_the_span_whole_and_every_level_s_terms() {
        let mut original = span(1, 2, Some(1), "svc", "op", 1_000, 2_000, true);
        original = with_attribute(&original, "n", V::IntValue(500));
        original = with_attribute(&original, "quote\"d\n", V::StringValue("ü\\\u{1}".into()));
        original = with_attribute(&original, "sql", V::StringValue("x".repeat(1_000)));
        let chunks = encode(&Tenant::default(), std::slice::from_ref(&original));
        let documents = documents(&chunks);
        assert_eq!(documents.len(), 2, "one span and one service document");
        let (header, source) = &documents[0];
        assert_eq!(header["index"]["_id"], source["doc_id"]);
        let mut terms: Vec<String> = serde_json::from_value(source["terms"].clone()).unwrap();
        terms.sort_unstable();
        terms.dedup();
        assert_eq!(terms, span_terms(&original), "every level's terms");
        assert!(terms.contains(&"1:n=500".to_owned()), "{terms:?}");
        assert!(terms.contains(&index_term("sql", &"x".repeat(1_000)).text));
        let back = decode_blob(source["blob"].as_str().unwrap()).unwrap();
        assert_eq!(back.otlp(), original.otlp());
        assert_eq!(back.resource().otlp(), original.resource().otlp());
        assert_eq!(back.scope().otlp(), original.scope().otlp());
        assert_eq!(source["start_ns"], json!("00000000000000001000"));
        assert_eq!(source["end_ns"], json!("00000000000000002000"));
        assert_eq!(source["seq"], json!("000000000000000000010000000000"));
    }

    #[test]
    fn ids_keep_copies_within_a_write_and_repeat_across_writes() {
        let one = span(1, 2, None, "svc", "op", 1_000, 2_000, false);
        let batch = vec![
            one.clone(),
            one.clone(),
            span(1, 3, None, "svc", "op", 1_000, 2_000, false),
        ];
        let ids = |tenant: &Tenant| -> Vec<Value> {
            documents(&encode(tenant, &batch))
                .into_iter()
                .take(3)
                .map(|(header, _)| header["index"]["_id"].clone())
                .collect()
        };
        let first = ids(&Tenant::default());
        assert_eq!(first.len(), 3);
        assert_ne!(
            first[0], first[1],
            "identical copies in one write are distinct documents"
        );
        assert_eq!(
            ids(&Tenant::default()),
            first,
            "a re-sent write has the same IDs"
        );
        assert_ne!(
            ids(&Tenant::new("acme"))[0],
            first[0],
            "tenants never share a document"
        );
    }

    #[test]
    fn one_service_document_per_operation_and_period() {
        let spans = vec![
            span(1, 1, None, "svc", "op", 1_000, 2_000, false),
            span(1, 2, None, "svc", "op", 1_500, 2_000, false),
            span(1, 3, None, "svc", "other", 1_500, 2_000, false),
            span(
                1,
                4,
                None,
                "svc",
                "op",
                90_000_000_000_000,
                90_000_000_000_500,
                false,
            ),
        ];
        let services: Vec<Value> = documents(&encode(&Tenant::default(), &spans))
            .into_iter()
            .skip(4)
            .map(|(_, source)| source)
            .collect();
        assert_eq!(
            services,
            [
                json!({"tenant": "", "service": "svc", "operation": "op", "kind": ""}),
                json!({"tenant": "", "service": "svc", "operation": "other", "kind": ""}),
                json!({"tenant": "", "service": "svc", "operation": "op", "kind": ""}),
            ]
        );
    }

    #[test]
    fn bodies_are_split_after_the_document_that_reaches_the_limit() {
        let spans: Vec<Span> = (1..=5)
            .map(|id| span(1, id, None, "svc", "op", 1_000, 2_000, false))
            .collect();
        let whole = encode(&Tenant::default(), &spans);
        assert_eq!(whole.len(), 1);
        let one_document = whole[0].body.len() / whole[0].documents;
        let split = encode_write(
            &Tenant::default(),
            &spans,
            &names(),
            1,
            one_document,
            Vec::new,
        );
        assert!(split.len() > 1);
        assert_eq!(
            split.iter().map(|chunk| chunk.documents).sum::<usize>(),
            whole[0].documents
        );
        assert_eq!(documents(&split), documents(&whole));
    }

    proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in any::<String>()) {
            let mut ours = Vec::new();
            push_string(&mut ours, &text);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn padded_numbers_are_fixed_width_decimals(value in any::<u64>()) {
            let mut ours = Vec::new();
            push_padded(&mut ours, value, 20);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), format!("{value:020}"));
        }
    }
}
