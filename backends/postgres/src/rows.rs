//! Trace chunks: how one write's spans become rows of `chunks`, and how rows become spans again.
//!
//! A write groups its spans by `(trace, service, minute slot)`; each group is one row (split
//! every [`MAX_CHUNK_SPANS`] spans) holding the spans, their resources and scopes as one
//! zstd-compressed payload, plus what searches prefilter on: the service, the start/duration
//! ranges and a Bloom filter over the [keys](search_key) of everything a query condition can
//! name. Index entries
//! are per row, so their cost is divided by the spans per row.
//!
//! Payload: the uncompressed length (varint), then zstd (level 1) of (varints are LEB128 as in
//! protobuf):
//!
//! ```text
//! version=1
//! resources: count, then per resource: len + prost Resource, len + schema URL
//! scopes:    count, then per scope:    len + prost InstrumentationScope, len + schema URL
//! spans:     count, then per span: resource index, scope index, position in the write,
//!            occurrence, 8-byte content hash (LE), len + prost Span (trace ID left out)
//! ```
//!
//! The content hash and occurrence (the index among identical spans of the write) make reads
//! drop spans that an earlier write already stored (a partly re-sent Export), exactly as the
//! former per-span primary key did; identical copies inside one write are all kept.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use prost::Message as _;
use prost::bytes::Buf as _;
use prost::encoding::{decode_varint, encode_varint};
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::matcher::span_level_attributes;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::common::{InstrumentationScope, KeyValue};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::Span as OtlpSpan;
use remote_storage_core::{Resource, Scope, Span, StoreError, StoreResult, TraceId};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::schema::{bucket_of, to_db_nanos};

/// Spans of one trace and service within this window share a row. A row's spans then start
/// less than this apart, which lets searches bound a time window on `max_start` alone.
pub(crate) const SLOT_NS: i64 = 60 * 1_000_000_000;
/// Largest number of spans in one row: bounds the work of decoding a search candidate.
const MAX_CHUNK_SPANS: usize = 256;
const PAYLOAD_VERSION: u64 = 1;
/// zstd level of payloads: level 1 compresses these small, repetitive inputs as well as
/// higher levels (measured on the loadgen workload: ~100 bytes per span) and fastest.
const ZSTD_LEVEL: i32 = 1;
/// Refuse to inflate a payload beyond this (a corrupt length must not exhaust memory).
const MAX_RAW_PAYLOAD: u64 = 1 << 30;

/// PostgreSQL text cannot hold NUL: it is replaced, on writes and on query values alike.
pub(crate) fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// What a search key stands for. Each kind hashes in its own namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyKind {
    /// An attribute of the span, an event, a link, the scope or the resource.
    Anywhere = 1,
    /// An attribute of the resource.
    Resource = 2,
    ScopeName = 3,
    ScopeVersion = 4,
    Operation = 5,
    Kind = 6,
    Status = 7,
}

/// The 64-bit hash of one searchable fact, as set in (and tested against) a row's Bloom filter.
///
/// The hashed bytes are the kind, then each part as its length (u64 LE) and its bytes. Stored
/// rows' filters hold these values, so the layout must never change.
pub(crate) fn search_key(kind: KeyKind, parts: &[&str]) -> u64 {
    /// Keys are computed for every attribute of every span written: most fit this buffer,
    /// which saves an allocation each.
    const INLINE: usize = 256;
    let len = parts.iter().map(|part| part.len() + 8).sum::<usize>() + 1;
    let fill = |buffer: &mut [u8]| {
        buffer[0] = kind as u8;
        let mut at = 1;
        for part in parts {
            buffer[at..at + 8].copy_from_slice(&(part.len() as u64).to_le_bytes());
            at += 8;
            buffer[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
    };
    if len <= INLINE {
        let mut buffer = [0u8; INLINE];
        fill(&mut buffer[..len]);
        xxh3_64(&buffer[..len])
    } else {
        let mut buffer = vec![0u8; len];
        fill(&mut buffer);
        xxh3_64(&buffer)
    }
}

/// The search key of a span kind or status code (keyed by its number as decimal text).
fn code_key(kind: KeyKind, code: i32) -> u64 {
    search_key(kind, &[&code.to_string()])
}

/// Bits set per key in a row's Bloom filter. Stored filters were written with this many:
/// never change it.
pub(crate) const BLOOM_PROBES: u64 = 4;
/// Filter bits per key, rounded up to whole 64-bit words: ~0.8 % false positives for one key,
/// e.g. ~130 keys of a 10-span loadgen row in 1,472 bits (184 bytes). A rare term's search
/// walks its service's rows and fetches the payload of each row its filter passes, so false
/// positives cost payload reads; but the filter is part of both time indexes' entries, and a
/// long walk reads pages in proportion to their size. Measured (1 M / 10 M spans, FindTraces
/// service+tag p50): 6 bits a key (power-of-two sizes, ~3 %) 52 / 36 ms, 16 bits 14 / 91 ms,
/// 11 bits 18 / 53 ms. Rows written with other sizes are still read: a probe is taken modulo
/// the row's own filter size.
const BLOOM_BITS_PER_KEY: usize = 11;
const BLOOM_MIN_BITS: usize = 64;
/// Largest filter (2 kB): it is part of the time indexes' entries, which btree caps at ~2.7 kB.
const BLOOM_MAX_BITS: usize = 1 << 14;

/// The two halves of a key's hash: probe `i` tests bit `(low + i * high) mod bits`.
pub(crate) fn bloom_probe_base(key: u64) -> (i64, i64) {
    let low = i64::try_from(key & 0xFFFF_FFFF).unwrap_or(0);
    let high = i64::try_from(key >> 32).unwrap_or(0);
    (low, high)
}

/// A Bloom filter over `keys` (distinct), in PostgreSQL's `get_bit` numbering (bit `n` is bit
/// `n % 8` of byte `n / 8`, least significant first).
fn bloom(keys: &[u64]) -> Vec<u8> {
    let bits = (keys.len() * BLOOM_BITS_PER_KEY)
        .next_multiple_of(64)
        .clamp(BLOOM_MIN_BITS, BLOOM_MAX_BITS);
    let mut filter = vec![0u8; bits / 8];
    let modulus = bits as u64;
    for key in keys {
        let (low, high) = bloom_probe_base(*key);
        for probe in 0..BLOOM_PROBES {
            let bit = (low.unsigned_abs() + probe * high.unsigned_abs()) % modulus;
            let byte = usize::try_from(bit / 8).unwrap_or(0);
            if let Some(slot) = filter.get_mut(byte) {
                *slot |= 1 << (bit % 8);
            }
        }
    }
    filter
}

fn attribute_keys<'a>(
    keys: &mut Vec<u64>,
    kind: KeyKind,
    attributes: impl IntoIterator<Item = &'a KeyValue>,
) {
    for attribute in attributes {
        let value = any_value_text(attribute.value.as_ref());
        keys.push(search_key(kind, &[&attribute.key, &value]));
    }
}

/// Sorted and without repeats.
fn distinct(mut keys: Vec<u64>) -> Vec<u64> {
    keys.sort_unstable();
    keys.dedup();
    keys
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

fn put_bytes(buffer: &mut Vec<u8>, bytes: &[u8]) {
    encode_varint(bytes.len() as u64, buffer);
    buffer.extend_from_slice(bytes);
}

/// Column arrays of the `chunks` insert, one entry per row.
#[derive(Debug, Default)]
pub(crate) struct ChunkColumns {
    pub(crate) trace_id: Vec<Vec<u8>>,
    pub(crate) chunk_hash: Vec<i64>,
    pub(crate) min_start: Vec<i64>,
    pub(crate) max_start: Vec<i64>,
    pub(crate) max_end: Vec<i64>,
    pub(crate) min_duration: Vec<i64>,
    pub(crate) max_duration: Vec<i64>,
    pub(crate) service: Vec<String>,
    pub(crate) span_count: Vec<i32>,
    pub(crate) bloom: Vec<Vec<u8>>,
    pub(crate) payload: Vec<Vec<u8>>,
}

/// Everything one write inserts.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) buckets: BTreeSet<i64>,
    pub(crate) chunks: ChunkColumns,
    /// `(name, bucket)`, sorted.
    pub(crate) services: Vec<(String, i64)>,
    /// `(service, name, kind, bucket)`, sorted.
    pub(crate) operations: Vec<(String, String, String, i64)>,
}

/// A resource or scope encoded once per write.
struct Encoded {
    hash: [u8; 16],
    payload: Vec<u8>,
    schema_url: String,
    keys: Vec<u64>,
}

fn encode_resource(resource: &Resource) -> Encoded {
    let payload = resource.otlp().encode_to_vec();
    let mut keys = Vec::new();
    attribute_keys(&mut keys, KeyKind::Anywhere, &resource.otlp().attributes);
    attribute_keys(&mut keys, KeyKind::Resource, &resource.otlp().attributes);
    Encoded {
        hash: content_hash(&[&payload, resource.schema_url().as_bytes()]),
        payload,
        schema_url: resource.schema_url().to_owned(),
        keys: distinct(keys),
    }
}

fn encode_scope(scope: &Scope) -> Encoded {
    let otlp = scope.otlp();
    let payload = otlp.encode_to_vec();
    let mut keys = Vec::new();
    attribute_keys(&mut keys, KeyKind::Anywhere, &otlp.attributes);
    keys.push(search_key(KeyKind::ScopeName, &[&otlp.name]));
    keys.push(search_key(KeyKind::ScopeVersion, &[&otlp.version]));
    Encoded {
        hash: content_hash(&[&payload, scope.schema_url().as_bytes()]),
        payload,
        schema_url: scope.schema_url().to_owned(),
        keys: distinct(keys),
    }
}

/// One span, encoded, waiting for its row.
struct EncodedSpan {
    position: u64,
    resource: Arc<Encoded>,
    scope: Arc<Encoded>,
    hash: u64,
    occurrence: u64,
    start_ns: i64,
    end_ns: i64,
    keys: Vec<u64>,
    payload: Vec<u8>,
}

/// A span's prost encoding without its trace ID (the row holds it): the bytes prost writes for
/// the span with `trace_id` empty. prost writes fields in number order and the trace ID is
/// field 1, so when set it is the first field, and dropping it leaves exactly those bytes
/// (no copy of the span needed).
fn encode_without_trace_id(otlp: &OtlpSpan, scratch: &mut Vec<u8>) -> Vec<u8> {
    scratch.clear();
    otlp.encode_raw(scratch);
    let id_len = otlp.trace_id.len();
    let skip = if id_len == 0 {
        0
    } else {
        1 + prost::encoding::encoded_len_varint(id_len as u64) + id_len
    };
    scratch.get(skip..).unwrap_or_default().to_vec()
}

impl Batch {
    /// Groups and encodes a write. Deterministic: a re-sent write yields the same rows (same
    /// `chunk_hash`), which the insert then ignores.
    pub(crate) fn build(spans: &[Span], width: i64) -> StoreResult<Self> {
        let mut resources: HashMap<*const Resource, Arc<Encoded>> = HashMap::new();
        let mut scopes: HashMap<*const Scope, Arc<Encoded>> = HashMap::new();
        let mut services: HashSet<(Cow<'_, str>, i64)> = HashSet::new();
        let mut operations: HashSet<(Cow<'_, str>, Cow<'_, str>, &'static str, i64)> =
            HashSet::new();
        let mut occurrences: HashMap<([u8; 16], u64), u64> = HashMap::new();
        let mut code_keys: HashMap<(u8, i32), u64> = HashMap::new();
        let mut buckets = BTreeSet::new();
        // (trace, service, slot) -> spans in write order.
        let mut groups: HashMap<([u8; 16], Cow<'_, str>, i64), Vec<EncodedSpan>> = HashMap::new();
        let mut scratch = Vec::new();

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
            let trace_id = *span.trace_id().as_bytes();
            let payload = encode_without_trace_id(otlp, &mut scratch);
            let full_hash = content_hash(&[&resource.hash, &scope.hash, &trace_id, &payload]);
            let hash = u64::from_le_bytes(full_hash[..8].try_into().unwrap_or([0; 8]));
            let occurrence = occurrences.entry((trace_id, hash)).or_insert(0);
            let this_occurrence = *occurrence;
            *occurrence += 1;

            let start_ns = to_db_nanos(otlp.start_time_unix_nano);
            let end_ns = to_db_nanos(otlp.end_time_unix_nano).max(start_ns);
            let bucket = bucket_of(start_ns, width);
            buckets.insert(bucket);
            // Borrowed names: copying them costs nothing (a NUL makes an owned one, rarely).
            let service = pg_text(span.service_name());
            services.insert((service.clone(), bucket));
            operations.insert((
                service.clone(),
                pg_text(span.name()),
                span_kind_name(span.kind()),
                bucket,
            ));

            let mut keys = Vec::with_capacity(otlp.attributes.len() + 3);
            attribute_keys(&mut keys, KeyKind::Anywhere, span_level_attributes(otlp));
            keys.push(search_key(KeyKind::Operation, &[span.name()]));
            let mut code = |kind: KeyKind, code: i32| {
                *code_keys
                    .entry((kind as u8, code))
                    .or_insert_with(|| code_key(kind, code))
            };
            keys.push(code(KeyKind::Kind, span.kind() as i32));
            keys.push(code(KeyKind::Status, span.status_code() as i32));
            let slot = bucket_of(start_ns, SLOT_NS);
            groups
                .entry((trace_id, service, slot))
                .or_default()
                .push(EncodedSpan {
                    position: position as u64,
                    resource,
                    scope,
                    hash,
                    occurrence: this_occurrence,
                    start_ns,
                    end_ns,
                    keys: distinct(keys),
                    payload,
                });
        }
        // Rows in key order, so concurrent retries insert in one order.
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        let mut services: Vec<(String, i64)> = services
            .into_iter()
            .map(|(name, bucket)| (name.into_owned(), bucket))
            .collect();
        services.sort_unstable();
        let mut operations: Vec<(String, String, String, i64)> = operations
            .into_iter()
            .map(|(service, name, kind, bucket)| {
                (
                    service.into_owned(),
                    name.into_owned(),
                    kind.to_owned(),
                    bucket,
                )
            })
            .collect();
        operations.sort_unstable();

        let mut batch = Self {
            buckets,
            services,
            operations,
            ..Self::default()
        };
        // One compression context for the whole write: creating one per row costs more than
        // compressing a 10-span row.
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|error| StoreError::internal("postgres: creating a compressor", error))?;
        for ((trace_id, service, _slot), group) in groups {
            for piece in group.chunks(MAX_CHUNK_SPANS) {
                batch
                    .chunks
                    .push(&mut compressor, &trace_id, &service, piece)?;
            }
        }
        Ok(batch)
    }
}

impl ChunkColumns {
    fn push(
        &mut self,
        compressor: &mut zstd::bulk::Compressor<'_>,
        trace_id: &[u8; 16],
        service: &str,
        spans: &[EncodedSpan],
    ) -> StoreResult<()> {
        let mut resource_index: HashMap<[u8; 16], u64> = HashMap::new();
        let mut scope_index: HashMap<[u8; 16], u64> = HashMap::new();
        let mut resource_list: Vec<&Encoded> = Vec::new();
        let mut scope_list: Vec<&Encoded> = Vec::new();
        let mut keys: Vec<u64> = Vec::new();
        let mut identity = Vec::with_capacity(spans.len() * 16 + 8);
        let (mut min_start, mut max_start, mut max_end) = (i64::MAX, i64::MIN, i64::MIN);
        let (mut min_duration, mut max_duration) = (i64::MAX, i64::MIN);
        let mut span_refs = Vec::with_capacity(spans.len());
        for span in spans {
            let resource = *resource_index.entry(span.resource.hash).or_insert_with(|| {
                resource_list.push(&span.resource);
                keys.extend(span.resource.keys.iter().copied());
                resource_list.len() as u64 - 1
            });
            let scope = *scope_index.entry(span.scope.hash).or_insert_with(|| {
                scope_list.push(&span.scope);
                keys.extend(span.scope.keys.iter().copied());
                scope_list.len() as u64 - 1
            });
            keys.extend(span.keys.iter().copied());
            identity.extend_from_slice(&span.hash.to_le_bytes());
            identity.extend_from_slice(&span.occurrence.to_le_bytes());
            min_start = min_start.min(span.start_ns);
            max_start = max_start.max(span.start_ns);
            max_end = max_end.max(span.end_ns);
            let duration = span.end_ns.saturating_sub(span.start_ns);
            min_duration = min_duration.min(duration);
            max_duration = max_duration.max(duration);
            span_refs.push((resource, scope, span));
        }
        let mut raw = Vec::with_capacity(
            spans
                .iter()
                .map(|span| span.payload.len() + 24)
                .sum::<usize>()
                + 256,
        );
        encode_varint(PAYLOAD_VERSION, &mut raw);
        encode_varint(resource_list.len() as u64, &mut raw);
        for resource in &resource_list {
            put_bytes(&mut raw, &resource.payload);
            put_bytes(&mut raw, resource.schema_url.as_bytes());
        }
        encode_varint(scope_list.len() as u64, &mut raw);
        for scope in &scope_list {
            put_bytes(&mut raw, &scope.payload);
            put_bytes(&mut raw, scope.schema_url.as_bytes());
        }
        encode_varint(span_refs.len() as u64, &mut raw);
        for (resource, scope, span) in &span_refs {
            encode_varint(*resource, &mut raw);
            encode_varint(*scope, &mut raw);
            encode_varint(span.position, &mut raw);
            encode_varint(span.occurrence, &mut raw);
            raw.extend_from_slice(&span.hash.to_le_bytes());
            put_bytes(&mut raw, &span.payload);
        }
        // The row's identity: which spans it holds, not where they were in the write, so a
        // re-send with other neighbours still maps onto the stored row when it is the same.
        identity.extend_from_slice(&min_start.to_le_bytes());
        let chunk_hash = i64::from_le_bytes(xxh3_64(&identity).to_le_bytes());

        self.trace_id.push(trace_id.to_vec());
        self.chunk_hash.push(chunk_hash);
        self.min_start.push(min_start);
        self.max_start.push(max_start);
        self.max_end.push(max_end);
        self.min_duration.push(min_duration);
        self.max_duration.push(max_duration);
        self.service.push(service.to_owned());
        self.span_count
            .push(i32::try_from(spans.len()).unwrap_or(i32::MAX));
        self.bloom.push(bloom(&distinct(keys)));
        self.payload.push(compress(compressor, &raw)?);
        Ok(())
    }
}

fn compress(compressor: &mut zstd::bulk::Compressor<'_>, raw: &[u8]) -> StoreResult<Vec<u8>> {
    let compressed = compressor
        .compress(raw)
        .map_err(|error| StoreError::internal("postgres: compressing a chunk", error))?;
    let mut payload = Vec::with_capacity(compressed.len() + 10);
    encode_varint(raw.len() as u64, &mut payload);
    payload.extend_from_slice(&compressed);
    Ok(payload)
}

/// The uncompressed payload of a row.
pub(crate) fn decompress(payload: &[u8]) -> StoreResult<Vec<u8>> {
    let mut input = payload;
    let raw_len = get_varint(&mut input)?;
    if raw_len > MAX_RAW_PAYLOAD {
        return Err(corrupt("length"));
    }
    let capacity = usize::try_from(raw_len).map_err(|_| corrupt("length"))?;
    thread_local! {
        /// One decompression context per thread: creating one per row costs more than
        /// decompressing a small row.
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.as_mut() {
            Some(decompressor) => decompressor,
            None => slot.insert(zstd::bulk::Decompressor::new().map_err(|error| {
                StoreError::internal("postgres: creating a decompressor", error)
            })?),
        };
        decompressor
            .decompress(input, capacity)
            .map_err(|error| StoreError::internal("postgres: corrupt chunk compression", error))
    })
}

/// One span read back from a row.
#[derive(Debug)]
pub(crate) struct StoredSpan {
    /// Position in its write (orders the spans of one write across rows).
    pub(crate) position: u64,
    pub(crate) hash: u64,
    pub(crate) occurrence: u64,
    pub(crate) span: Span,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal {
        message: format!("postgres: corrupt chunk payload: {what}"),
        source: None,
    }
}

fn get_varint(input: &mut &[u8]) -> StoreResult<u64> {
    decode_varint(input).map_err(|error| StoreError::internal("postgres: corrupt chunk", error))
}

fn get_bytes<'a>(input: &mut &'a [u8]) -> StoreResult<&'a [u8]> {
    let len = usize::try_from(get_varint(input)?).map_err(|_| corrupt("length"))?;
    if input.len() < len {
        return Err(corrupt("truncated"));
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

fn get_string(input: &mut &[u8]) -> StoreResult<String> {
    String::from_utf8(get_bytes(input)?.to_vec()).map_err(|_| corrupt("schema URL"))
}

/// Decodes one row's payload into its spans, in the order they were written.
pub(crate) fn decode_chunk(trace_id: TraceId, payload: &[u8]) -> StoreResult<Vec<StoredSpan>> {
    decode_raw(trace_id, &decompress(payload)?)
}

/// Decodes an uncompressed payload (see [`decompress`]).
pub(crate) fn decode_raw(trace_id: TraceId, raw: &[u8]) -> StoreResult<Vec<StoredSpan>> {
    let mut spans = Vec::new();
    parse_raw(raw, |entry| {
        let mut otlp = OtlpSpan::decode(&raw[entry.span.clone()])
            .map_err(|error| StoreError::internal("postgres: corrupt span payload", error))?;
        otlp.trace_id = trace_id.as_bytes().to_vec();
        spans.push(StoredSpan {
            position: entry.position,
            hash: entry.hash,
            occurrence: entry.occurrence,
            span: Span::new(Arc::clone(entry.resource), Arc::clone(entry.scope), otlp)?,
        });
        Ok(())
    })?;
    Ok(spans)
}

/// One span entry of an uncompressed payload, undecoded.
pub(crate) struct RawEntry<'a> {
    pub(crate) resource: &'a Arc<Resource>,
    pub(crate) scope: &'a Arc<Scope>,
    pub(crate) position: u64,
    pub(crate) occurrence: u64,
    pub(crate) hash: u64,
    /// Where the span's OTLP bytes (without the trace ID) lie in the payload.
    pub(crate) span: std::ops::Range<usize>,
}

/// Walks the span entries of an uncompressed payload, in write order, decoding its resources
/// and scopes but not its spans.
pub(crate) fn parse_raw(
    raw: &[u8],
    mut each: impl FnMut(RawEntry<'_>) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut input: &[u8] = raw;
    if get_varint(&mut input)? != PAYLOAD_VERSION {
        return Err(corrupt("unknown version"));
    }
    let resource_count = get_varint(&mut input)?;
    let mut resources = Vec::new();
    for _ in 0..resource_count {
        let otlp = OtlpResource::decode(get_bytes(&mut input)?)
            .map_err(|error| StoreError::internal("postgres: corrupt resource", error))?;
        let schema_url = get_string(&mut input)?;
        resources.push(Arc::new(Resource::new(otlp, schema_url)));
    }
    let scope_count = get_varint(&mut input)?;
    let mut scopes = Vec::new();
    for _ in 0..scope_count {
        let otlp = InstrumentationScope::decode(get_bytes(&mut input)?)
            .map_err(|error| StoreError::internal("postgres: corrupt scope", error))?;
        let schema_url = get_string(&mut input)?;
        scopes.push(Arc::new(Scope::new(otlp, schema_url)));
    }
    let span_count = usize::try_from(get_varint(&mut input)?).map_err(|_| corrupt("count"))?;
    for _ in 0..span_count {
        let resource = usize::try_from(get_varint(&mut input)?).map_err(|_| corrupt("index"))?;
        let scope = usize::try_from(get_varint(&mut input)?).map_err(|_| corrupt("index"))?;
        let position = get_varint(&mut input)?;
        let occurrence = get_varint(&mut input)?;
        if input.len() < 8 {
            return Err(corrupt("truncated"));
        }
        let hash = input.get_u64_le();
        let span_len = get_bytes(&mut input)?.len();
        let span_end = raw.len() - input.len();
        each(RawEntry {
            resource: resources
                .get(resource)
                .ok_or_else(|| corrupt("resource index"))?,
            scope: scopes.get(scope).ok_or_else(|| corrupt("scope index"))?,
            position,
            occurrence,
            hash,
            span: span_end - span_len..span_end,
        })?;
    }
    Ok(())
}

/// The rows of one trace as read: `(batch_seq, payload)`.
pub(crate) type TraceRows = Vec<(i64, Vec<u8>)>;

/// A stored span (decoded, or where its bytes are) with its storage-order key and identity:
/// `(batch_seq, position, hash, occurrence, span)`.
pub(crate) type Ordered<T = Span> = (i64, u64, u64, u64, T);

/// Decodes rows `(batch_seq, payload)` of one trace, in no particular order.
pub(crate) fn decode_stored(trace_id: TraceId, rows: TraceRows) -> StoreResult<Vec<Ordered>> {
    let mut stored = Vec::new();
    for (batch_seq, payload) in rows {
        for span in decode_chunk(trace_id, &payload)? {
            stored.push((
                batch_seq,
                span.position,
                span.hash,
                span.occurrence,
                span.span,
            ));
        }
    }
    Ok(stored)
}

/// Storage order, without the copies a later write re-sent (first stored wins).
pub(crate) fn merge_stored<T>(mut stored: Vec<Ordered<T>>) -> Vec<T> {
    stored.sort_by_key(|(batch_seq, position, ..)| (*batch_seq, *position));
    let mut seen: HashSet<(u64, u64)> = HashSet::with_capacity(stored.len());
    stored
        .into_iter()
        .filter(|(_, _, hash, occurrence, _)| seen.insert((*hash, *occurrence)))
        .map(|(.., span)| span)
        .collect()
}

/// The spans of one trace from its rows `(batch_seq, payload)`, in storage order.
pub(crate) fn decode_trace(trace_id: TraceId, rows: TraceRows) -> StoreResult<Vec<Span>> {
    Ok(merge_stored(decode_stored(trace_id, rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use remote_storage_core::testing::span;

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn bloom_filters_hold_their_keys() {
        let keys: Vec<u64> = distinct(
            (0..113)
                .map(|i| search_key(KeyKind::Anywhere, &["k", &i.to_string()]))
                .collect(),
        );
        let filter = bloom(&keys);
        assert_eq!(filter.len(), 160);
        let bits = i64::try_from(filter.len() * 8).unwrap();
        let holds = |key: u64| {
            let (low, high) = bloom_probe_base(key);
            (0..i64::try_from(BLOOM_PROBES).unwrap()).all(|probe| {
                let bit = (low + probe * high) % bits;
                filter[usize::try_from(bit / 8).unwrap()] & (1 << (bit % 8)) != 0
            })
        };
        assert!(keys.iter().all(|key| holds(*key)));
        let false_positives = (1000..11_000)
            .filter(|i| holds(search_key(KeyKind::Anywhere, &["k", &i.to_string()])))
            .count();
        // ~0.8 % expected (11.3 bits a key, 4 probes).
        assert!(false_positives < 120, "{false_positives}");
    }

    /// Stored rows' Bloom filters hold these hashes: the bytes hashed must stay the same, for
    /// short parts (hashed from the stack) and long ones alike.
    #[test]
    fn search_keys_hash_the_documented_bytes() {
        let long = "x".repeat(300);
        for parts in [
            vec![],
            vec!["k", "v"],
            vec!["service.name", &long],
            vec![&long[..240]],
        ] {
            let mut bytes = vec![KeyKind::Resource as u8];
            for part in &parts {
                bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
                bytes.extend_from_slice(part.as_bytes());
            }
            assert_eq!(search_key(KeyKind::Resource, &parts), xxh3_64(&bytes));
        }
    }

    #[test]
    fn span_bytes_without_trace_id_equal_the_span_encoded_without_it() {
        let mut scratch = vec![1, 2, 3];
        for stored in [
            span(1, 1, None, "a", "root", 10, 20, false),
            span(200, 7, Some(3), "b", "child", 11, 12, true),
        ] {
            let otlp = stored.otlp();
            let expected = OtlpSpan {
                trace_id: Vec::new(),
                ..otlp.clone()
            }
            .encode_to_vec();
            assert!(!otlp.trace_id.is_empty());
            assert_eq!(encode_without_trace_id(otlp, &mut scratch), expected);
            let no_id = OtlpSpan {
                trace_id: Vec::new(),
                ..otlp.clone()
            };
            assert_eq!(encode_without_trace_id(&no_id, &mut scratch), expected);
        }
    }

    #[test]
    fn search_keys_are_namespaced() {
        assert_eq!(
            search_key(KeyKind::Anywhere, &["k", "v"]),
            search_key(KeyKind::Anywhere, &["k", "v"])
        );
        assert_ne!(
            search_key(KeyKind::Anywhere, &["k", "v"]),
            search_key(KeyKind::Resource, &["k", "v"])
        );
        assert_ne!(
            search_key(KeyKind::Anywhere, &["a=b", "c"]),
            search_key(KeyKind::Anywhere, &["a", "b=c"])
        );
    }

    #[test]
    fn rows_group_a_trace_and_service_and_round_trip() {
        let spans = vec![
            span(1, 1, None, "a", "root", 10, 20, false),
            span(2, 1, None, "a", "other", 10, 20, true),
            span(1, 2, Some(1), "b", "child", 11, 12, false),
            span(1, 3, Some(1), "a", "child", 12, 13, false),
        ];
        let batch = Batch::build(&spans, HOUR).unwrap();
        assert_eq!(batch.chunks.trace_id.len(), 3);
        assert_eq!(batch.chunks.span_count, [2, 1, 1]);
        let rows: Vec<(i64, Vec<u8>)> = batch
            .chunks
            .payload
            .iter()
            .zip(&batch.chunks.trace_id)
            .filter(|(_, trace)| trace[0] == 1)
            .map(|(payload, _)| (7, payload.clone()))
            .collect();
        let trace = decode_trace(TraceId([1; 16]), rows).unwrap();
        let names: Vec<&str> = trace.iter().map(Span::name).collect();
        assert_eq!(names, ["root", "child", "child"]);
        assert_eq!(trace[1].service_name(), "b");
        assert_eq!(trace[0].otlp(), spans[0].otlp());
    }

    #[test]
    fn copies_in_one_write_are_kept_and_re_sent_copies_dropped() {
        let spans = vec![
            span(1, 2, Some(1), "b", "child", 11, 12, false),
            span(1, 2, Some(1), "b", "child", 11, 12, false),
            span(1, 2, Some(1), "b", "child", 11, 13, false),
        ];
        let batch = Batch::build(&spans, HOUR).unwrap();
        let again = Batch::build(&spans, HOUR).unwrap();
        assert_eq!(batch.chunks.chunk_hash, again.chunks.chunk_hash);
        // The first two spans re-sent in another write, with a new one.
        let partial = Batch::build(
            &[
                span(1, 4, Some(1), "b", "new", 11, 12, false),
                span(1, 2, Some(1), "b", "child", 11, 12, false),
                span(1, 2, Some(1), "b", "child", 11, 12, false),
            ],
            HOUR,
        )
        .unwrap();
        assert_ne!(batch.chunks.chunk_hash, partial.chunks.chunk_hash);
        let rows = vec![
            (1, batch.chunks.payload[0].clone()),
            (2, partial.chunks.payload[0].clone()),
        ];
        let trace = decode_trace(TraceId([1; 16]), rows).unwrap();
        assert_eq!(trace.len(), 4);
        assert_eq!(trace[3].name(), "new");
    }
}
