//! What one write stores, as rows (the columns of `schema.rs`), and the spans read back from
//! them.
//!
//! A span row holds the span's protobuf, its scope (`ScopeSpans` without spans: the scope and
//! its schema URL) and the ID of its resource; the resource itself (`ResourceSpans` without
//! scope spans) is one `resources` row per write that carries it, shared by its spans. The
//! document ID is a hash of the tenant, the stored bytes and the copy's ordinal within the
//! write: a re-sent write lands on the rows it wrote before (idempotent), while identical
//! copies inside one write are all kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prost::Message as _;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::index_term::index_term;
use remote_storage_core::matcher::span_level_attributes;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::proto::otlp::trace::{ResourceSpans, ScopeSpans, Span as OtlpSpan};
use remote_storage_core::{Resource, Scope, Span, StoreError, Tenant, TraceId, UnixNanos};
use xxhash_rust::xxh3::xxh3_128;

use crate::buckets::Buckets;

/// A 16-byte ID (trace, document, resource).
pub type Id = [u8; 16];

/// One row of `spans`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRow {
    /// The trace (partition key, with the tenant).
    pub trace_id: Id,
    /// The document ID (clustering key).
    pub document_id: Id,
    /// The write's sequence number.
    pub batch: i64,
    /// The span's position in its write.
    pub position: i32,
    /// Start, nanoseconds since the epoch.
    pub start: i64,
    /// End, nanoseconds since the epoch.
    pub finish: i64,
    /// The resource's ID in `resources`.
    pub resource_id: Id,
    /// `ScopeSpans` without spans.
    pub scope: Vec<u8>,
    /// The OTLP span.
    pub span: Vec<u8>,
}

/// What an index partition is keyed by, besides tenant, bucket and shard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexKey {
    /// `span_index`: every span.
    All,
    /// `service_index`: a service's spans.
    Service(String),
    /// `tag_index`: the spans holding a term.
    Tag(String),
}

/// One index partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Which index, under which key.
    pub key: IndexKey,
    /// Time bucket.
    pub bucket: i64,
    /// Shard.
    pub shard: i16,
}

/// One index row (the columns every index shares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Span start, nanoseconds (clustering, descending).
    pub start: i64,
    /// The span's document ID (clustering).
    pub document_id: Id,
    /// The span's trace.
    pub trace_id: Id,
    /// Service name.
    pub service: String,
    /// Operation (span name).
    pub operation: String,
    /// Span kind (OTLP number).
    pub kind: i8,
    /// Status code (OTLP number).
    pub status: i8,
    /// Duration, nanoseconds.
    pub duration: i64,
}

/// One span's index row and the partitions it goes into (one per index key: all spans, its
/// service, each of its terms), kept once rather than copied per partition.
#[derive(Debug)]
pub struct IndexedSpan {
    /// The row.
    pub entry: IndexEntry,
    /// Where it is written.
    pub partitions: Vec<Partition>,
}

/// Every row of one write.
#[derive(Debug, Default)]
pub struct WriteRows {
    /// `spans` rows.
    pub spans: Vec<SpanRow>,
    /// `resources` rows: ID and `ResourceSpans` bytes.
    pub resources: Vec<(Id, Vec<u8>)>,
    /// Index rows, each with its partition.
    pub index: Vec<IndexedSpan>,
    /// Distinct buckets of the write's spans.
    pub buckets: Vec<i64>,
    /// When the write happened (its batch number: the writer's clock, nanoseconds).
    pub written_at: i64,
    /// Distinct services.
    pub services: Vec<String>,
    /// Distinct (service, kind, operation).
    pub operations: Vec<(String, String, String)>,
}

impl WriteRows {
    /// Every index row with its partition.
    pub fn index_rows(&self) -> impl Iterator<Item = (&Partition, &IndexEntry)> {
        self.index.iter().flat_map(|indexed| {
            indexed
                .partitions
                .iter()
                .map(move |partition| (partition, &indexed.entry))
        })
    }
}

/// A nanosecond value as CQL `bigint` (times past 2262 are clamped).
pub fn nanos_column(nanos: u64) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// The rows of one write of `spans` for `tenant`, `batch` ordering it among writes.
pub fn write_rows(tenant: &Tenant, spans: &[Span], buckets: &Buckets, batch: i64) -> WriteRows {
    let mut rows = WriteRows {
        written_at: batch,
        ..WriteRows::default()
    };
    let mut resources: HashMap<*const Resource, (Id, Vec<String>)> = HashMap::new();
    let mut scopes: HashMap<*const Scope, (Vec<u8>, Vec<String>)> = HashMap::new();
    let mut copies: HashMap<u128, u32> = HashMap::new();
    let mut services = HashSet::new();
    let mut operations = HashSet::new();
    for (position, span) in spans.iter().enumerate() {
        let (resource_id, resource_terms) = resources
            .entry(Arc::as_ptr(span.resource()))
            .or_insert_with(|| {
                let bytes = ResourceSpans {
                    resource: Some(span.resource().otlp().clone()),
                    schema_url: span.resource().schema_url().to_owned(),
                    scope_spans: Vec::new(),
                }
                .encode_to_vec();
                let id = xxh3_128(&bytes).to_be_bytes();
                rows.resources.push((id, bytes));
                (id, terms(&span.resource().otlp().attributes))
            })
            .clone();
        let (scope, scope_terms) = scopes
            .entry(Arc::as_ptr(span.scope()))
            .or_insert_with(|| {
                let bytes = ScopeSpans {
                    scope: Some(span.scope().otlp().clone()),
                    schema_url: span.scope().schema_url().to_owned(),
                    spans: Vec::new(),
                }
                .encode_to_vec();
                (bytes, terms(&span.scope().otlp().attributes))
            })
            .clone();
        let span_bytes = span.otlp().encode_to_vec();

        let mut content = Vec::with_capacity(16 + scope.len() + span_bytes.len());
        content.extend_from_slice(&resource_id);
        content.extend_from_slice(&(scope.len() as u64).to_le_bytes());
        content.extend_from_slice(&scope);
        content.extend_from_slice(&span_bytes);
        let content = xxh3_128(&content);
        let ordinal = copies.entry(content).or_insert(0);
        let mut identity = Vec::with_capacity(tenant.name().len() + 28);
        identity.extend_from_slice(&(tenant.name().len() as u64).to_le_bytes());
        identity.extend_from_slice(tenant.name().as_bytes());
        identity.extend_from_slice(&content.to_le_bytes());
        identity.extend_from_slice(&ordinal.to_le_bytes());
        *ordinal += 1;
        let document_id = xxh3_128(&identity).to_be_bytes();

        let start = nanos_column(span.start().0);
        let entry = IndexEntry {
            start,
            document_id,
            trace_id: *span.trace_id().as_bytes(),
            service: span.service_name().to_owned(),
            operation: span.name().to_owned(),
            kind: i8::try_from(span.otlp().kind).unwrap_or(0),
            status: span
                .otlp()
                .status
                .as_ref()
                .map_or(0, |status| i8::try_from(status.code).unwrap_or(0)),
            duration: nanos_column(span.duration_nanos()),
        };
        let bucket = buckets.bucket_of(span.start());
        if !rows.buckets.contains(&bucket) {
            rows.buckets.push(bucket);
        }
        let shard = buckets.shard_of(&document_id);
        let partition = |key| Partition { key, bucket, shard };
        let mut span_terms: HashSet<String> = terms(span_level_attributes(span.otlp()));
        span_terms.extend(resource_terms.iter().cloned());
        span_terms.extend(scope_terms.iter().cloned());
        let mut span_terms: Vec<String> = span_terms.into_iter().collect();
        span_terms.sort_unstable();
        let mut partitions = Vec::with_capacity(2 + span_terms.len());
        partitions.push(partition(IndexKey::All));
        partitions.push(partition(IndexKey::Service(entry.service.clone())));
        partitions.extend(
            span_terms
                .into_iter()
                .map(|term| partition(IndexKey::Tag(term))),
        );
        rows.index.push(IndexedSpan { entry, partitions });

        if services.insert(span.service_name()) {
            rows.services.push(span.service_name().to_owned());
        }
        let kind = span_kind_name(span.kind());
        if operations.insert((span.service_name(), kind, span.name())) {
            rows.operations.push((
                span.service_name().to_owned(),
                kind.to_owned(),
                span.name().to_owned(),
            ));
        }
        rows.spans.push(SpanRow {
            trace_id: *span.trace_id().as_bytes(),
            document_id,
            batch,
            position: i32::try_from(position).unwrap_or(i32::MAX),
            start,
            finish: nanos_column(span.end().0),
            resource_id,
            scope,
            span: span_bytes,
        });
    }
    rows
}

/// The distinct index terms of some attributes.
fn terms<'a, C: FromIterator<String>>(attributes: impl IntoIterator<Item = &'a KeyValue>) -> C {
    attributes
        .into_iter()
        .map(|attribute| index_term(&attribute.key, &any_value_text(attribute.value.as_ref())).text)
        .collect()
}

/// Turns stored rows back into spans, sharing one resource and one scope among the spans that
/// were written with equal ones.
#[derive(Default)]
pub struct SpanDecoder {
    resources: HashMap<Id, Arc<Resource>>,
    scopes: HashMap<(Id, Vec<u8>), Arc<Scope>>,
}

impl SpanDecoder {
    /// Whether the resource `id` was already given to [`SpanDecoder::add_resource`].
    pub fn has_resource(&self, id: &Id) -> bool {
        self.resources.contains_key(id)
    }

    /// Makes the resource stored as `bytes` (`ResourceSpans` without scope spans) known.
    pub fn add_resource(&mut self, id: Id, bytes: &[u8]) -> Result<(), StoreError> {
        let stored = ResourceSpans::decode(bytes)
            .map_err(|error| corrupt(format!("resource is not ResourceSpans: {error}")))?;
        self.resources.insert(
            id,
            Arc::new(Resource::new(
                stored.resource.unwrap_or_default(),
                stored.schema_url,
            )),
        );
        Ok(())
    }

    /// The span of `row`; its resource must have been added.
    pub fn decode(&mut self, row: &SpanRow) -> Result<Span, StoreError> {
        let resource = self
            .resources
            .get(&row.resource_id)
            .cloned()
            .ok_or_else(|| {
                corrupt(format!(
                    "span {} refers to resource {} which is not stored",
                    hex::encode(row.document_id),
                    hex::encode(row.resource_id)
                ))
            })?;
        let scope = match self.scopes.get(&(row.resource_id, row.scope.clone())) {
            Some(scope) => Arc::clone(scope),
            None => {
                let stored = ScopeSpans::decode(row.scope.as_slice())
                    .map_err(|error| corrupt(format!("scope is not ScopeSpans: {error}")))?;
                let scope = Arc::new(Scope::new(
                    stored.scope.unwrap_or_default(),
                    stored.schema_url,
                ));
                self.scopes
                    .insert((row.resource_id, row.scope.clone()), Arc::clone(&scope));
                scope
            }
        };
        let otlp = OtlpSpan::decode(row.span.as_slice())
            .map_err(|error| corrupt(format!("span is not an OTLP span: {error}")))?;
        Span::new(resource, scope, otlp).map_err(|error| corrupt(error.to_string()))
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::internal("stored data is corrupt", detail)
}

/// The trace ID of a stored row.
pub fn trace_id(id: &Id) -> TraceId {
    TraceId(*id)
}

/// A time column (start or end) back as nanoseconds.
pub fn start_of(column: i64) -> UnixNanos {
    UnixNanos(u64::try_from(column).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use remote_storage_core::testing::span;

    use super::*;

    fn buckets() -> Buckets {
        Buckets::new(900, 4)
    }

    #[test]
    fn spans_round_trip_through_their_rows_sharing_resources_and_scopes() {
        let spans = vec![
            span(1, 1, None, "svc", "root", 1_000, 5_000, false),
            span(1, 2, Some(1), "svc", "child", 2_000, 3_000, true),
        ];
        let rows = write_rows(&Tenant::default(), &spans, &buckets(), 7);
        assert_eq!(rows.spans.len(), 2);
        assert_eq!(rows.services, ["svc"]);
        assert_eq!(rows.operations.len(), 2);
        let mut decoder = SpanDecoder::default();
        for (id, bytes) in &rows.resources {
            decoder.add_resource(*id, bytes).unwrap();
        }
        let back: Vec<Span> = rows
            .spans
            .iter()
            .map(|row| decoder.decode(row).unwrap())
            .collect();
        for (original, back) in spans.iter().zip(&back) {
            assert_eq!(back.otlp(), original.otlp());
            assert_eq!(back.resource().otlp(), original.resource().otlp());
            assert_eq!(back.scope().otlp(), original.scope().otlp());
        }
        if Arc::ptr_eq(spans[0].resource(), spans[1].resource()) {
            assert!(Arc::ptr_eq(back[0].resource(), back[1].resource()));
            assert_eq!(rows.resources.len(), 1, "one resource row per write");
        }
        assert_eq!(rows.spans[1].position, 1);
        assert_eq!(rows.spans[1].batch, 7);
    }

    #[test]
    fn every_span_is_indexed_once_per_index_key_in_its_bucket_and_shard() {
        let spans = vec![span(1, 1, None, "svc", "root", 1_000, 5_000, false)];
        let rows = write_rows(&Tenant::default(), &spans, &buckets(), 1);
        let row = &rows.spans[0];
        let keys: Vec<&IndexKey> = rows
            .index_rows()
            .map(|(partition, _)| &partition.key)
            .collect();
        assert_eq!(keys[0], &IndexKey::All);
        assert_eq!(keys[1], &IndexKey::Service("svc".into()));
        let terms = keys
            .iter()
            .filter(|key| matches!(key, IndexKey::Tag(_)))
            .count();
        assert_eq!(terms, keys.len() - 2);
        for (partition, entry) in rows.index_rows() {
            assert_eq!(partition.bucket, buckets().bucket_of(UnixNanos(1_000)));
            assert_eq!(partition.shard, buckets().shard_of(&row.document_id));
            assert_eq!(entry.document_id, row.document_id);
            assert_eq!(entry.duration, 4_000);
        }
    }

    #[test]
    fn copies_in_one_write_are_kept_and_a_re_sent_write_repeats_its_ids() {
        let one = span(1, 2, None, "svc", "op", 1_000, 2_000, false);
        let batch = vec![one.clone(), one];
        let ids = |tenant: &Tenant| -> Vec<Id> {
            write_rows(tenant, &batch, &buckets(), 1)
                .spans
                .iter()
                .map(|row| row.document_id)
                .collect()
        };
        let first = ids(&Tenant::default());
        assert_ne!(first[0], first[1]);
        assert_eq!(ids(&Tenant::default()), first);
        assert_ne!(ids(&Tenant::new("acme"))[0], first[0]);
    }

    #[test]
    fn a_row_whose_resource_is_missing_or_bytes_are_not_a_span_is_corrupt() {
        let spans = vec![span(1, 1, None, "svc", "root", 1_000, 5_000, false)];
        let mut rows = write_rows(&Tenant::default(), &spans, &buckets(), 1);
        let mut decoder = SpanDecoder::default();
        assert!(decoder.decode(&rows.spans[0]).is_err());
        let (id, bytes) = &rows.resources[0];
        decoder.add_resource(*id, bytes).unwrap();
        rows.spans[0].span = vec![0xff, 0xff];
        assert!(decoder.decode(&rows.spans[0]).is_err());
    }
}
