//! Turning a batch of spans into column arrays for one `INSERT … SELECT FROM unnest(…)` per
//! table, plus the search terms and content hashes that make searches and retries exact.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use prost::Message as _;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::{Resource, Scope, Span};
use xxhash_rust::xxh3::xxh3_128;

use crate::schema::{bucket_of, to_db_nanos};

/// Terms longer than this are stored (and searched) as a hash, so GIN entries stay small.
const MAX_TERM_BYTES: usize = 256;
/// Separates the terms of one row in the packed text sent to `string_to_array(…, chr(30))`.
pub(crate) const TERM_SEPARATOR: char = '\u{1e}';

/// PostgreSQL text cannot hold NUL: it is replaced, on writes and on query values alike.
pub(crate) fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The search term of one `key = value text` pair: `<key length>:<key>=<value>` (the length
/// makes it unambiguous), or `#<xxh3-128 hex>` of that when it is long or holds a character
/// that text storage or packing cannot carry. Writes and queries build terms the same way.
pub(crate) fn term(key: &str, value_text: &str) -> String {
    let raw = format!("{}:{key}={value_text}", key.len());
    if raw.len() > MAX_TERM_BYTES || raw.contains(['\0', TERM_SEPARATOR]) {
        format!("#{}", hex::encode(xxh3_128(raw.as_bytes()).to_be_bytes()))
    } else {
        raw
    }
}

fn push_terms(terms: &mut BTreeSet<String>, attributes: &[KeyValue]) {
    for attribute in attributes {
        terms.insert(term(
            &attribute.key,
            &any_value_text(attribute.value.as_ref()),
        ));
    }
}

fn pack(terms: BTreeSet<String>) -> String {
    let mut packed = String::new();
    for (index, one) in terms.into_iter().enumerate() {
        if index > 0 {
            packed.push(TERM_SEPARATOR);
        }
        packed.push_str(&one);
    }
    packed
}

/// Content hash of a resource (attributes, dropped count, entity refs and schema URL).
fn resource_hash(resource: &Resource, payload: &[u8]) -> [u8; 16] {
    content_hash(&[payload, resource.schema_url().as_bytes()])
}

fn scope_hash(scope: &Scope, payload: &[u8]) -> [u8; 16] {
    content_hash(&[payload, scope.schema_url().as_bytes()])
}

/// xxh3-128 over length-prefixed parts.
fn content_hash(parts: &[&[u8]]) -> [u8; 16] {
    let mut buffer = Vec::with_capacity(parts.iter().map(|part| part.len() + 8).sum());
    for part in parts {
        buffer.extend_from_slice(&(part.len() as u64).to_le_bytes());
        buffer.extend_from_slice(part);
    }
    xxh3_128(&buffer).to_be_bytes()
}

/// Span IDs are stored as `bigint` (the 8 bytes big-endian).
pub(crate) fn span_id_to_db(bytes: [u8; 8]) -> i64 {
    i64::from_be_bytes(bytes)
}

/// Column arrays of the `spans` insert, sorted by primary key (so concurrent retries of
/// overlapping batches lock rows in one order and cannot deadlock).
#[derive(Debug, Default)]
pub(crate) struct SpanColumns {
    pub(crate) start_ns: Vec<i64>,
    pub(crate) trace_id: Vec<Vec<u8>>,
    pub(crate) span_id: Vec<i64>,
    pub(crate) content_hash: Vec<Vec<u8>>,
    pub(crate) occurrence: Vec<i32>,
    pub(crate) parent_span_id: Vec<Option<i64>>,
    pub(crate) end_ns: Vec<i64>,
    pub(crate) service: Vec<String>,
    pub(crate) operation: Vec<String>,
    pub(crate) kind: Vec<i16>,
    pub(crate) status: Vec<i16>,
    pub(crate) resource_hash: Vec<Vec<u8>>,
    pub(crate) scope_hash: Vec<Vec<u8>>,
    pub(crate) batch_ord: Vec<i32>,
    pub(crate) terms: Vec<String>,
    pub(crate) payload: Vec<Vec<u8>>,
}

/// Column arrays of the `resources` insert.
#[derive(Debug, Default)]
pub(crate) struct ResourceColumns {
    pub(crate) bucket: Vec<i64>,
    pub(crate) hash: Vec<Vec<u8>>,
    pub(crate) service: Vec<String>,
    pub(crate) schema_url: Vec<String>,
    pub(crate) terms: Vec<String>,
    pub(crate) payload: Vec<Vec<u8>>,
}

/// Column arrays of the `scopes` insert.
#[derive(Debug, Default)]
pub(crate) struct ScopeColumns {
    pub(crate) bucket: Vec<i64>,
    pub(crate) hash: Vec<Vec<u8>>,
    pub(crate) name: Vec<String>,
    pub(crate) version: Vec<String>,
    pub(crate) schema_url: Vec<String>,
    pub(crate) terms: Vec<String>,
    pub(crate) payload: Vec<Vec<u8>>,
}

/// Everything one write inserts.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) buckets: BTreeSet<i64>,
    pub(crate) spans: SpanColumns,
    pub(crate) resources: ResourceColumns,
    pub(crate) scopes: ScopeColumns,
    /// `(name, bucket)`, sorted.
    pub(crate) services: Vec<(String, i64)>,
    /// `(service, name, kind, bucket)`, sorted.
    pub(crate) operations: Vec<(String, String, String, i64)>,
}

struct SpanRow {
    key: ([u8; 16], i64, [u8; 16], i32),
    start_ns: i64,
    parent_span_id: Option<i64>,
    end_ns: i64,
    service: String,
    operation: String,
    kind: i16,
    status: i16,
    resource_hash: [u8; 16],
    scope_hash: [u8; 16],
    batch_ord: i32,
    terms: String,
    payload: Vec<u8>,
}

struct EncodedResource {
    hash: [u8; 16],
    service: String,
    schema_url: String,
    terms: String,
    payload: Vec<u8>,
}

struct EncodedScope {
    hash: [u8; 16],
    name: String,
    version: String,
    schema_url: String,
    terms: String,
    payload: Vec<u8>,
}

impl Batch {
    /// Encodes a batch. Resources and scopes are encoded once per distinct `Arc` and stored
    /// once per bucket; identical spans within the batch get increasing occurrence numbers so
    /// they are all kept, while a re-sent batch maps onto the same keys and is ignored.
    pub(crate) fn build(spans: &[Span], width: i64) -> Self {
        let mut resources: HashMap<*const Resource, Arc<EncodedResource>> = HashMap::new();
        let mut scopes: HashMap<*const Scope, Arc<EncodedScope>> = HashMap::new();
        let mut resource_rows: BTreeMap<([u8; 16], i64), Arc<EncodedResource>> = BTreeMap::new();
        let mut scope_rows: BTreeMap<([u8; 16], i64), Arc<EncodedScope>> = BTreeMap::new();
        let mut services: BTreeSet<(String, i64)> = BTreeSet::new();
        let mut operations: BTreeSet<(String, String, String, i64)> = BTreeSet::new();
        let mut occurrences: HashMap<([u8; 16], i64, [u8; 16]), i32> = HashMap::new();
        let mut buckets = BTreeSet::new();
        let mut rows = Vec::with_capacity(spans.len());

        for (position, span) in spans.iter().enumerate() {
            let resource = Arc::clone(
                resources
                    .entry(Arc::as_ptr(span.resource()))
                    .or_insert_with(|| Arc::new(encode_resource(span.resource()))),
            );
            let scope = Arc::clone(
                scopes
                    .entry(Arc::as_ptr(span.scope()))
                    .or_insert_with(|| Arc::new(encode_scope(span.scope()))),
            );
            let otlp = span.otlp();
            let payload = otlp.encode_to_vec();
            let hash = content_hash(&[&resource.hash, &scope.hash, &payload]);
            let start_ns = to_db_nanos(otlp.start_time_unix_nano);
            let end_ns = to_db_nanos(otlp.end_time_unix_nano).max(start_ns);
            let bucket = bucket_of(start_ns, width);
            buckets.insert(bucket);
            resource_rows
                .entry((resource.hash, bucket))
                .or_insert_with(|| Arc::clone(&resource));
            scope_rows
                .entry((scope.hash, bucket))
                .or_insert_with(|| Arc::clone(&scope));
            let service = pg_text(span.service_name()).into_owned();
            let operation = pg_text(span.name()).into_owned();
            services.insert((service.clone(), bucket));
            operations.insert((
                service.clone(),
                operation.clone(),
                span_kind_name(span.kind()).to_owned(),
                bucket,
            ));

            let trace_id = *span.trace_id().as_bytes();
            let span_id = span_id_to_db(*span.span_id().as_bytes());
            let occurrence = occurrences.entry((trace_id, span_id, hash)).or_insert(0);
            let key = (trace_id, span_id, hash, *occurrence);
            *occurrence += 1;

            let mut terms = BTreeSet::new();
            push_terms(&mut terms, &otlp.attributes);
            for event in &otlp.events {
                push_terms(&mut terms, &event.attributes);
            }
            for link in &otlp.links {
                push_terms(&mut terms, &link.attributes);
            }
            rows.push(SpanRow {
                key,
                start_ns,
                parent_span_id: span
                    .parent_span_id()
                    .map(|parent| span_id_to_db(*parent.as_bytes())),
                end_ns,
                service,
                operation,
                kind: i16::try_from(span.kind() as i32).unwrap_or(0),
                status: i16::try_from(span.status_code() as i32).unwrap_or(0),
                resource_hash: resource.hash,
                scope_hash: scope.hash,
                batch_ord: i32::try_from(position).unwrap_or(i32::MAX),
                terms: pack(terms),
                payload,
            });
        }
        rows.sort_by_key(|row| row.key);

        let mut batch = Self {
            buckets,
            services: services.into_iter().collect(),
            operations: operations.into_iter().collect(),
            ..Self::default()
        };
        let columns = &mut batch.spans;
        for row in rows {
            let (trace_id, span_id, hash, occurrence) = row.key;
            columns.start_ns.push(row.start_ns);
            columns.trace_id.push(trace_id.to_vec());
            columns.span_id.push(span_id);
            columns.content_hash.push(hash.to_vec());
            columns.occurrence.push(occurrence);
            columns.parent_span_id.push(row.parent_span_id);
            columns.end_ns.push(row.end_ns);
            columns.service.push(row.service);
            columns.operation.push(row.operation);
            columns.kind.push(row.kind);
            columns.status.push(row.status);
            columns.resource_hash.push(row.resource_hash.to_vec());
            columns.scope_hash.push(row.scope_hash.to_vec());
            columns.batch_ord.push(row.batch_ord);
            columns.terms.push(row.terms);
            columns.payload.push(row.payload);
        }
        for ((hash, bucket), resource) in resource_rows {
            let columns = &mut batch.resources;
            columns.bucket.push(bucket);
            columns.hash.push(hash.to_vec());
            columns.service.push(resource.service.clone());
            columns.schema_url.push(resource.schema_url.clone());
            columns.terms.push(resource.terms.clone());
            columns.payload.push(resource.payload.clone());
        }
        for ((hash, bucket), scope) in scope_rows {
            let columns = &mut batch.scopes;
            columns.bucket.push(bucket);
            columns.hash.push(hash.to_vec());
            columns.name.push(scope.name.clone());
            columns.version.push(scope.version.clone());
            columns.schema_url.push(scope.schema_url.clone());
            columns.terms.push(scope.terms.clone());
            columns.payload.push(scope.payload.clone());
        }
        batch
    }
}

fn encode_resource(resource: &Resource) -> EncodedResource {
    let payload = resource.otlp().encode_to_vec();
    let mut terms = BTreeSet::new();
    push_terms(&mut terms, &resource.otlp().attributes);
    EncodedResource {
        hash: resource_hash(resource, &payload),
        service: pg_text(resource.service_name()).into_owned(),
        schema_url: pg_text(resource.schema_url()).into_owned(),
        terms: pack(terms),
        payload,
    }
}

fn encode_scope(scope: &Scope) -> EncodedScope {
    let payload = scope.otlp().encode_to_vec();
    let mut terms = BTreeSet::new();
    push_terms(&mut terms, &scope.otlp().attributes);
    EncodedScope {
        hash: scope_hash(scope, &payload),
        name: pg_text(&scope.otlp().name).into_owned(),
        version: pg_text(&scope.otlp().version).into_owned(),
        schema_url: pg_text(scope.schema_url()).into_owned(),
        terms: pack(terms),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remote_storage_core::testing::span;

    #[test]
    fn terms_are_unambiguous_and_long_ones_hashed() {
        assert_eq!(term("a=b", "c"), "3:a=b=c");
        assert_ne!(term("a=b", "c"), term("a", "b=c"));
        let long = "x".repeat(400);
        let hashed = term("sql", &long);
        assert!(hashed.starts_with('#') && hashed.len() == 33, "{hashed}");
        assert_eq!(hashed, term("sql", &long));
        assert!(term("k", "a\u{1e}b").starts_with('#'));
        assert!(term("k", "a\0b").starts_with('#'));
    }

    #[test]
    fn identical_spans_in_one_batch_get_distinct_occurrences() {
        let spans = vec![
            span(1, 2, Some(1), "b", "child", 11, 12, false),
            span(1, 2, Some(1), "b", "child", 11, 12, false),
            span(1, 2, Some(1), "b", "child", 11, 13, false),
        ];
        let batch = Batch::build(&spans, 3_600_000_000_000);
        assert_eq!(
            batch.spans.occurrence.iter().filter(|o| **o == 1).count(),
            1
        );
        assert_eq!(batch.spans.payload.len(), 3);
        // Each span has its own resource Arc, but equal content: one resource row.
        assert_eq!(batch.resources.hash.len(), 1);
        assert_eq!(batch.services, vec![("b".to_owned(), 0)]);
        let again = Batch::build(&spans, 3_600_000_000_000);
        assert_eq!(batch.spans.content_hash, again.spans.content_hash);
        assert_eq!(batch.spans.occurrence, again.spans.occurrence);
    }
}
