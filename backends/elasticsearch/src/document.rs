//! The span document: the span stored whole (OTLP protobuf with its resource and scope, base64
//! in a `binary` field that is not indexed) plus the fields searches filter on, in a fixed set
//! whatever the data: no field per attribute key, no nested documents.
//!
//! Attribute conditions search one keyword array, `terms`, holding `<key length>:<key>=<value>`
//! for every attribute of the span, its events and links, its scope and its resource, with the
//! canonical value text the shared matcher compares (so `500` and `"500"` are one term). The
//! key length makes the term unambiguous whatever characters keys and values hold. A value too
//! long for a keyword is indexed as a hash of its text (`<len>:<key>#<hash>`): such conditions
//! narrow by the hash and are then decided by the matcher on the decoded span.
//!
//! Times are indexed twice: whole microseconds in `long` fields (`start`, `duration`) that
//! range filters narrow on, and exact nanoseconds as fixed-width text (`start_ns`,
//! `duration_ns`) that sorts exactly and that the bounds are checked against.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint};
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::matcher::span_level_attributes;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::proto::otlp::trace::ResourceSpans;
use remote_storage_core::{Resource, Scope, Span, Tenant};
use serde_json::json;
use xxhash_rust::xxh3::xxh3_128;

use crate::error::EsError;
use crate::indices::{IndexKind, IndexNames};

/// Values whose term would be longer than this are indexed as a hash.
const MAX_TERM_BYTES: usize = 256;

/// An indexing action of a `_bulk` body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexAction {
    /// Target index.
    pub(crate) index: String,
    /// Document ID: deterministic, so re-sending a batch overwrites instead of duplicating.
    pub(crate) id: String,
    /// The document, serialized.
    pub(crate) source: Vec<u8>,
}

/// A service/operation document.
#[derive(serde::Serialize)]
struct ServiceSource<'a> {
    tenant: &'a str,
    service: &'a str,
    operation: &'a str,
    kind: &'static str,
}

/// The term of one attribute, and whether it is a hash (not exact on its own).
pub(crate) fn attribute_term(key: &str, value: &str) -> (String, bool) {
    let term = format!("{}:{key}={value}", key.len());
    if term.len() <= MAX_TERM_BYTES {
        return (term, false);
    }
    (
        format!("{}:{key}#{:032x}", key.len(), xxh3_128(value.as_bytes())),
        true,
    )
}

/// Appends the attribute terms of `attributes` to a JSON array being written (each preceded by
/// a comma unless it is the array's first element, which `first` tracks).
fn write_terms<'a>(
    attributes: impl Iterator<Item = &'a KeyValue>,
    first: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), EsError> {
    for attribute in attributes {
        let (term, _) = attribute_term(&attribute.key, &any_value_text(attribute.value.as_ref()));
        if !std::mem::take(first) {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &term).map_err(encoding_error)?;
    }
    Ok(())
}

/// The terms a resource's and a scope's attributes add to every span of theirs, written once
/// per batch as a JSON array fragment (`"t1","t2"`). Duplicates across levels are harmless in
/// a keyword array, so nothing is sorted or merged.
#[derive(Default)]
struct SharedTerms {
    resources: HashMap<*const Resource, Vec<u8>>,
    scopes: HashMap<*const Scope, Vec<u8>>,
}

impl SharedTerms {
    fn write(&mut self, span: &Span, first: &mut bool, out: &mut Vec<u8>) -> Result<(), EsError> {
        for fragment in [
            Self::fragment(&mut self.scopes, span.scope(), |scope| {
                &scope.otlp().attributes
            })?,
            Self::fragment(&mut self.resources, span.resource(), |resource| {
                &resource.otlp().attributes
            })?,
        ] {
            if fragment.is_empty() {
                continue;
            }
            if !std::mem::take(first) {
                out.push(b',');
            }
            out.extend_from_slice(fragment);
        }
        Ok(())
    }

    fn fragment<'m, T>(
        cache: &'m mut HashMap<*const T, Vec<u8>>,
        shared: &Arc<T>,
        attributes: impl Fn(&T) -> &Vec<KeyValue>,
    ) -> Result<&'m [u8], EsError> {
        let entry = cache.entry(Arc::as_ptr(shared));
        let bytes = match entry {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let mut bytes = Vec::new();
                write_terms(attributes(shared).iter(), &mut true, &mut bytes)?;
                entry.insert(bytes)
            }
        };
        Ok(bytes)
    }
}

/// Every attribute term of a span over every level the matcher searches, sorted and without
/// duplicates (what the `terms` array of its document holds, as a set).
#[cfg(test)]
pub(crate) fn span_terms(span: &Span) -> Vec<String> {
    let levels = span_level_attributes(span.otlp())
        .chain(&span.scope().otlp().attributes)
        .chain(&span.resource().otlp().attributes);
    let mut terms: Vec<String> = levels
        .map(|attribute| {
            attribute_term(&attribute.key, &any_value_text(attribute.value.as_ref())).0
        })
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Appends `"name":` and a JSON string.
fn write_string_field(out: &mut Vec<u8>, name: &str, value: &str) -> Result<(), EsError> {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    serde_json::to_writer(&mut *out, value).map_err(encoding_error)
}

/// Appends `"name":` and a number.
fn write_number_field(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "\"{name}\":{value}");
}

/// Appends a length-delimited field.
fn put_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Encodes spans as one-span `ResourceSpans` messages, encoding each shared resource and scope
/// once per batch: a protobuf message is the concatenation of its fields, so the resource part
/// and the scope part are reused around each span's own bytes.
#[derive(Default)]
struct BlobEncoder {
    resources: HashMap<*const Resource, Vec<u8>>,
    scopes: HashMap<*const Scope, Vec<u8>>,
}

impl BlobEncoder {
    fn encode(&mut self, span: &Span) -> Vec<u8> {
        let resource = self
            .resources
            .entry(Arc::as_ptr(span.resource()))
            .or_insert_with(|| {
                let mut bytes = Vec::new();
                // ResourceSpans.resource = 1, .schema_url = 3.
                put_field(1, &span.resource().otlp().encode_to_vec(), &mut bytes);
                if !span.resource().schema_url().is_empty() {
                    put_field(3, span.resource().schema_url().as_bytes(), &mut bytes);
                }
                bytes
            });
        let mut scope_spans = self
            .scopes
            .entry(Arc::as_ptr(span.scope()))
            .or_insert_with(|| {
                let mut bytes = Vec::new();
                // ScopeSpans.scope = 1, .schema_url = 3.
                put_field(1, &span.scope().otlp().encode_to_vec(), &mut bytes);
                if !span.scope().schema_url().is_empty() {
                    put_field(3, span.scope().schema_url().as_bytes(), &mut bytes);
                }
                bytes
            })
            .clone();
        // ScopeSpans.spans = 2.
        put_field(2, &span.otlp().encode_to_vec(), &mut scope_spans);
        let mut blob = resource.clone();
        // ResourceSpans.scope_spans = 2.
        put_field(2, &scope_spans, &mut blob);
        blob
    }
}

/// The span documents of one write, with deterministic IDs: a hash of the tenant, the stored
/// bytes and the copy's ordinal, so identical copies inside one batch are all kept while a
/// re-sent batch maps onto the documents it wrote before.
///
/// `batch` orders this write among others (a nanosecond clock reading, unique per process):
/// with the span's position in the batch it forms `seq`, the key traces are read back in, so
/// spans come back in the order they were written.
pub(crate) fn span_actions(
    tenant: &Tenant,
    spans: &[Span],
    names: &IndexNames,
    batch: u64,
) -> Result<Vec<IndexAction>, EsError> {
    let mut encoder = BlobEncoder::default();
    let mut index_of = CachedIndexName::new(names, IndexKind::Span);
    let mut shared_terms = SharedTerms::default();
    let mut blob_text = String::new();
    let mut copies: HashMap<u128, u32> = HashMap::new();
    let base64 = base64::engine::general_purpose::STANDARD;
    spans
        .iter()
        .enumerate()
        .map(|(position, span)| {
            let blob = encoder.encode(span);
            let content = xxh3_128(&blob);
            let ordinal = copies.entry(content).or_insert(0);
            let mut identity = Vec::with_capacity(tenant.name().len() + 24);
            identity.extend_from_slice(&(tenant.name().len() as u64).to_le_bytes());
            identity.extend_from_slice(tenant.name().as_bytes());
            identity.extend_from_slice(&content.to_le_bytes());
            identity.extend_from_slice(&ordinal.to_le_bytes());
            *ordinal += 1;
            let id = format!("{:032x}", xxh3_128(&identity));
            let mut source = Vec::with_capacity(blob.len() * 2 + 512);
            source.push(b'{');
            write_string_field(&mut source, "tenant", tenant.name())?;
            source.push(b',');
            write_string_field(
                &mut source,
                "trace_id",
                &hex::encode(span.trace_id().as_bytes()),
            )?;
            source.push(b',');
            write_string_field(
                &mut source,
                "span_id",
                &hex::encode(span.span_id().as_bytes()),
            )?;
            source.push(b',');
            write_string_field(&mut source, "service", span.service_name())?;
            source.push(b',');
            write_string_field(&mut source, "operation", span.name())?;
            source.push(b',');
            write_string_field(&mut source, "kind", span_kind_name(span.kind()))?;
            source.push(b',');
            let status = span.otlp().status.as_ref().map_or(0, |status| status.code);
            write_number_field(&mut source, "status", status);
            source.push(b',');
            write_number_field(&mut source, "start", micros(span.start().0));
            source.push(b',');
            write_string_field(&mut source, "start_ns", &nanos_text(span.start().0))?;
            source.push(b',');
            write_number_field(&mut source, "duration", micros(span.duration_nanos()));
            source.push(b',');
            write_string_field(
                &mut source,
                "duration_ns",
                &nanos_text(span.duration_nanos()),
            )?;
            source.push(b',');
            write_string_field(&mut source, "end_ns", &nanos_text(span.end().0))?;
            source.push(b',');
            write_string_field(&mut source, "seq", &format!("{batch:020}{position:010}"))?;
            source.extend_from_slice(b",\"terms\":[");
            let mut first = true;
            write_terms(span_level_attributes(span.otlp()), &mut first, &mut source)?;
            shared_terms.write(span, &mut first, &mut source)?;
            source.extend_from_slice(b"],");
            write_string_field(&mut source, "doc_id", &id)?;
            source.extend_from_slice(b",\"blob\":\"");
            base64.encode_string(&blob, &mut blob_text);
            source.extend_from_slice(blob_text.as_bytes());
            blob_text.clear();
            source.extend_from_slice(b"\"}");
            Ok(IndexAction {
                index: index_of.name(span.start()),
                source,
                id,
            })
        })
        .collect()
}

/// The service/operation documents of one write: one per (period, tenant, service, operation,
/// kind), with an ID derived from those, so re-writing one is a no-op.
pub(crate) fn service_actions(
    tenant: &Tenant,
    spans: &[Span],
    names: &IndexNames,
) -> Result<Vec<IndexAction>, EsError> {
    let mut actions: Vec<IndexAction> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut index_of = CachedIndexName::new(names, IndexKind::Service);
    for span in spans {
        let index = index_of.name(span.start());
        let kind = span_kind_name(span.kind());
        let key = [tenant.name(), span.service_name(), span.name(), kind];
        let mut identity = Vec::new();
        for part in key {
            identity.extend_from_slice(&(part.len() as u64).to_le_bytes());
            identity.extend_from_slice(part.as_bytes());
        }
        let id = format!("{:032x}", xxh3_128(&identity));
        if !seen.insert((index.clone(), id.clone())) {
            continue;
        }
        let source = ServiceSource {
            tenant: tenant.name(),
            service: span.service_name(),
            operation: span.name(),
            kind,
        };
        actions.push(IndexAction {
            index,
            id,
            source: serde_json::to_vec(&source).map_err(encoding_error)?,
        });
    }
    Ok(actions)
}

/// The index name of a kind for span start times, formatted once per period: consecutive
/// spans of a batch mostly share one.
struct CachedIndexName<'a> {
    names: &'a IndexNames,
    kind: IndexKind,
    last: Option<(u64, String)>,
}

impl<'a> CachedIndexName<'a> {
    fn new(names: &'a IndexNames, kind: IndexKind) -> Self {
        Self {
            names,
            kind,
            last: None,
        }
    }

    fn name(&mut self, start: remote_storage_core::UnixNanos) -> String {
        let period = self.names.period_key(start);
        match &self.last {
            Some((cached, name)) if *cached == period => name.clone(),
            _ => {
                let name = self.names.index_for(self.kind, start);
                self.last = Some((period, name.clone()));
                name
            }
        }
    }
}

/// Appends `actions` to a `_bulk` body.
pub(crate) fn append_bulk(actions: &[IndexAction], body: &mut Vec<u8>) -> Result<(), EsError> {
    for action in actions {
        let header = json!({"index": {"_index": action.index, "_id": action.id}});
        serde_json::to_writer(&mut *body, &header).map_err(encoding_error)?;
        body.push(b'\n');
        body.extend_from_slice(&action.source);
        body.push(b'\n');
    }
    Ok(())
}

fn encoding_error(error: serde_json::Error) -> EsError {
    EsError::Answer {
        what: "bulk".to_owned(),
        detail: format!("document does not encode: {error}"),
    }
}

/// Whole microseconds of a nanosecond time or duration, for the `long` range fields: below
/// 2^53, so engines (or test doubles) that compare numbers as doubles stay exact.
pub(crate) fn micros(nanos: u64) -> u64 {
    nanos / 1_000
}

/// A nanosecond value as 20 zero-padded digits: sorts and compares as text exactly as the
/// numbers do, with no precision lost anywhere (the sort key, and the exact bound checks).
pub(crate) fn nanos_text(nanos: u64) -> String {
    format!("{nanos:020}")
}

/// Decodes stored spans, sharing one resource and one scope among the spans that were written
/// with equal ones, so a trace reads back grouped as it was written.
#[derive(Default)]
pub(crate) struct SpanDecoder {
    resources: HashMap<Vec<u8>, Arc<Resource>>,
    scopes: HashMap<(usize, Vec<u8>), Arc<Scope>>,
}

impl SpanDecoder {
    /// The span stored in a document's `blob`.
    pub(crate) fn decode(&mut self, blob: &str) -> Result<Span, EsError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|error| EsError::Corrupt(format!("blob is not base64: {error}")))?;
        let group = ResourceSpans::decode(bytes.as_slice())
            .map_err(|error| EsError::Corrupt(format!("blob is not ResourceSpans: {error}")))?;
        let otlp_resource = group.resource.unwrap_or_default();
        let mut resource_key = otlp_resource.encode_to_vec();
        resource_key.extend_from_slice(group.schema_url.as_bytes());
        let resource = Arc::clone(
            self.resources
                .entry(resource_key)
                .or_insert_with(|| Arc::new(Resource::new(otlp_resource, group.schema_url))),
        );
        let [scope_spans] = <[_; 1]>::try_from(group.scope_spans)
            .map_err(|_| EsError::Corrupt("blob does not hold exactly one scope".to_owned()))?;
        let otlp_scope = scope_spans.scope.unwrap_or_default();
        let mut scope_key = otlp_scope.encode_to_vec();
        scope_key.extend_from_slice(scope_spans.schema_url.as_bytes());
        let scope = Arc::clone(
            self.scopes
                .entry((Arc::as_ptr(&resource) as usize, scope_key))
                .or_insert_with(|| Arc::new(Scope::new(otlp_scope, scope_spans.schema_url))),
        );
        let [otlp] = <[_; 1]>::try_from(scope_spans.spans)
            .map_err(|_| EsError::Corrupt("blob does not hold exactly one span".to_owned()))?;
        Span::new(resource, scope, otlp).map_err(|error| EsError::Corrupt(error.to_string()))
    }
}

/// The span stored in one document's `blob`.
pub(crate) fn decode_blob(blob: &str) -> Result<Span, EsError> {
    SpanDecoder::default().decode(blob)
}

#[cfg(test)]
mod tests {
    use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value::Value as V};
    use remote_storage_core::testing::span;

    use super::*;
    use crate::config::IndexRotation;
    use serde_json::Value;

    fn names() -> IndexNames {
        IndexNames::new("jr", IndexRotation::Day)
    }

    #[test]
    fn blobs_round_trip_every_field() {
        let mut original = span(1, 2, Some(1), "svc", "op", 1_000, 2_000, true);
        let mut otlp = original.otlp().clone();
        otlp.attributes.push(KeyValue {
            key: "n".into(),
            value: Some(AnyValue {
                value: Some(V::IntValue(500)),
            }),
            ..Default::default()
        });
        original = Span::new(
            Arc::clone(original.resource()),
            Arc::clone(original.scope()),
            otlp,
        )
        .unwrap();
        let actions = span_actions(
            &Tenant::default(),
            std::slice::from_ref(&original),
            &names(),
            1,
        )
        .unwrap();
        let source: Value = serde_json::from_slice(&actions[0].source).unwrap();
        let blob = source["blob"].as_str().unwrap();
        let mut terms: Vec<String> = serde_json::from_value(source["terms"].clone()).unwrap();
        terms.sort_unstable();
        terms.dedup();
        assert_eq!(terms, span_terms(&original), "every level's terms");
        let back = decode_blob(blob).unwrap();
        assert_eq!(back.otlp(), original.otlp());
        assert_eq!(back.resource().otlp(), original.resource().otlp());
        assert_eq!(back.scope().otlp(), original.scope().otlp());
        assert!(
            source["terms"]
                .as_array()
                .unwrap()
                .contains(&json!("1:n=500")),
            "{source}"
        );
        assert!(decode_blob("not base64!").is_err());
    }

    #[test]
    fn ids_keep_copies_within_a_batch_and_repeat_across_batches() {
        let one = span(1, 2, None, "svc", "op", 1_000, 2_000, false);
        let batch = vec![
            one.clone(),
            one.clone(),
            span(1, 3, None, "svc", "op", 1_000, 2_000, false),
        ];
        let ids = |tenant: &Tenant| -> Vec<String> {
            span_actions(tenant, &batch, &names(), 1)
                .unwrap()
                .into_iter()
                .map(|action| action.id)
                .collect()
        };
        let first = ids(&Tenant::default());
        assert_eq!(first.len(), 3);
        assert_ne!(
            first[0], first[1],
            "identical copies in one batch are distinct documents"
        );
        assert_eq!(
            ids(&Tenant::default()),
            first,
            "a re-sent batch writes the same IDs"
        );
        assert_ne!(
            ids(&Tenant::new("acme"))[0],
            first[0],
            "tenants never share a document"
        );
    }

    #[test]
    fn long_values_are_hashed_and_keys_cannot_collide() {
        let (short, hashed) = attribute_term("http.status_code", "500");
        assert_eq!(short, "16:http.status_code=500");
        assert!(!hashed);
        let (long, hashed) = attribute_term("sql", &"x".repeat(1_000));
        assert!(hashed);
        assert!(long.len() < 100, "{long}");
        assert_ne!(attribute_term("a=b", "c").0, attribute_term("a", "b=c").0);
    }

    #[test]
    fn one_service_document_per_operation_and_period() {
        let spans = vec![
            span(1, 1, None, "svc", "op", 1_000, 2_000, false),
            span(1, 2, None, "svc", "op", 1_500, 2_000, false),
            span(1, 3, None, "svc", "other", 1_500, 2_000, false),
        ];
        let actions = service_actions(&Tenant::default(), &spans, &names()).unwrap();
        assert_eq!(actions.len(), 2);
        let mut body = Vec::new();
        append_bulk(&actions, &mut body).unwrap();
        assert_eq!(body.iter().filter(|byte| **byte == b'\n').count(), 4);
    }
}
