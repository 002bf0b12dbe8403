//! Key encoding. Every key is built here, so the layout is in one place.
//!
//! Rules that make keys collision-free (or collision-safe) and range-friendly:
//! - The first byte is a tag naming the record type, so record types never share a prefix.
//! - Search indexes are posting lists: one record per (term, time bucket, write batch), so a
//!   1,000-span Export writes a few hundred index records instead of one per span and term.
//!   A term is a fixed-width xxh3-64 hash of the tenant and the indexed texts (each
//!   length-prefixed, so distinct tuples hash distinct inputs). Attribute terms are many, so
//!   they share [`ATTRIBUTE_SHARDS`] posting lists per bucket and each posting keeps 32 bits
//!   of its term's hash to filter on. Hash collisions are harmless: every candidate is
//!   verified against the stored span by `SpanMatcher`, and spans are read under the
//!   tenant's own text key.
//! - Records read by exact text (service and operation names, spans, fragments) keep the
//!   tenant and texts as [`compact`](put_compact) text: a LEB128 length, then a marker byte
//!   and the bytes, so the split between components is unambiguous.
//! - Integers are big-endian and fixed-width, so byte order is numeric order.

use remote_storage_core::{Tenant, TraceId};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// Tags of the records in a partition's `index` keyspace.
pub(crate) mod tag {
    /// Postings of every span.
    pub(crate) const GLOBAL: u8 = b'g';
    /// Postings by service (each with its operation's term bits and the duration).
    pub(crate) const SERVICE: u8 = b's';
    /// Operation terms (hashed into service postings, never a posting list of their own).
    pub(crate) const OPERATION: u8 = b'o';
    /// Postings by attribute key and canonical value text (sharded).
    pub(crate) const ATTRIBUTE: u8 = b'a';
    /// Postings of spans with status ERROR.
    pub(crate) const ERROR: u8 = b'e';
    /// A write batch's trace table in one partition: postings name traces by position.
    pub(crate) const TRACE_TABLE: u8 = b'b';
    /// Trace summary fragment: one per trace per write batch.
    pub(crate) const FRAGMENT: u8 = b'f';
    /// Service names.
    pub(crate) const SERVICE_NAME: u8 = b'V';
    /// Operations of a service.
    pub(crate) const OPERATION_NAME: u8 = b'P';
    /// Resource records, keyed by content hash.
    pub(crate) const RESOURCE: u8 = b'R';
    /// Instrumentation-scope records, keyed by content hash.
    pub(crate) const SCOPE: u8 = b'C';
    /// The partition's approximate span and trace counts.
    pub(crate) const COUNTS: u8 = b'Z';
    /// Span group records (in the `spans` keyspace).
    pub(crate) const SPAN: u8 = b'T';
    /// Dependency call deltas per minute: one record per tenant, 4-hour block of the callee's start
    /// and write batch (or one folded record).
    pub(crate) const CALLS: u8 = b'd';
    /// Dependency call deltas per callee start: one record per tenant, minute of the callee's
    /// start and write batch.
    pub(crate) const CALL_STARTS: u8 = b'l';
    /// A trace has fragments in this partition (a point key, found through bloom filters).
    pub(crate) const TRACE_MARKER: u8 = b'x';
}

/// Texts up to this many bytes are stored as they are; longer ones as a prefix plus a hash.
const INLINE_TEXT_MAX: usize = 200;
/// How many leading bytes of a long text are kept next to its hash.
const LONG_TEXT_PREFIX: usize = 128;
/// Length of an index term prefix: the tag and a 64-bit hash.
pub(crate) const TERM_LEN: usize = 1 + 8;
/// Width of a posting-list time bucket: 4 h. Wider buckets mean fewer records per write batch
/// when a batch spans hours (clock skew, late spans) and fewer records per search; narrower
/// ones mean fewer postings decoded before the newest ones are known.
pub(crate) const BUCKET_NANOS: u64 = 4 * 3_600 * 1_000_000_000;
/// Posting lists that the attribute terms of one bucket and batch are spread over.
pub(crate) const ATTRIBUTE_SHARDS: u64 = 32;

/// Identifies one stored span within a trace: 8 bytes hashing its resource and scope (so spans
/// of one resource and scope sort together and read back as one OTLP group), then 8 bytes
/// hashing its content and its occurrence number within the write batch.
pub(crate) type Discriminator = [u8; 16];

/// A search candidate: the spans of `trace_id` starting at `start` (in the partition the
/// posting lives in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SpanRef {
    /// Span start, Unix nanoseconds.
    pub(crate) start: u64,
    /// The span's trace.
    pub(crate) trace_id: TraceId,
}

/// An index term: its tag and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Term {
    pub(crate) tag: u8,
    pub(crate) hash: u64,
}

/// The time bucket of a time.
pub(crate) fn bucket_of(nanos: u64) -> u32 {
    u32::try_from(nanos / BUCKET_NANOS).unwrap_or(u32::MAX)
}

/// One entry of a posting list. Attribute postings carry 16 bits of their term's hash and
/// no duration; service postings carry 16 bits of their operation's term hash and the span
/// duration; global and error postings carry the duration only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Posting {
    pub(crate) start: u64,
    pub(crate) ordinal: u32,
    pub(crate) term: u16,
    pub(crate) duration: u64,
}

/// Which optional fields the postings of a tag carry: (term, duration).
fn posting_fields(tag: u8) -> (bool, bool) {
    match tag {
        tag::ATTRIBUTE => (true, false),
        tag::SERVICE => (true, true),
        _ => (false, true),
    }
}

/// The 16 bits of a term hash that postings keep.
pub(crate) fn term_bits(hash: u64) -> u16 {
    u16::try_from(hash >> 48).unwrap_or(0)
}

/// Encodes postings (sorted here by start) as `count ‖ (start delta ‖ ordinal [‖ term u16]
/// [‖ duration])…`, integers as LEB128, each start as the difference to the previous one.
pub(crate) fn encode_postings(tag: u8, postings: &mut [Posting]) -> Vec<u8> {
    let (has_term, has_duration) = posting_fields(tag);
    postings.sort_unstable();
    let mut out = Vec::with_capacity(2 + postings.len() * 12);
    put_len(&mut out, postings.len());
    let mut previous = 0;
    for posting in postings.iter() {
        put_varint(&mut out, posting.start - previous);
        previous = posting.start;
        put_varint(&mut out, u64::from(posting.ordinal));
        if has_term {
            out.extend_from_slice(&posting.term.to_be_bytes());
        }
        if has_duration {
            put_varint(&mut out, posting.duration);
        }
    }
    out
}

/// Decodes what [`encode_postings`] wrote, calling `each` per posting in start order.
pub(crate) fn decode_postings(
    tag: u8,
    mut input: &[u8],
    mut each: impl FnMut(Posting),
) -> Option<()> {
    let (has_term, has_duration) = posting_fields(tag);
    let count = take_varint(&mut input)?;
    let mut start: u64 = 0;
    for _ in 0..count {
        start = start.checked_add(take_varint(&mut input)?)?;
        let ordinal = u32::try_from(take_varint(&mut input)?).ok()?;
        let term = if has_term {
            let bytes = input.get(..2)?;
            input = input.get(2..)?;
            u16::from_be_bytes(bytes.try_into().ok()?)
        } else {
            0
        };
        let duration = if has_duration {
            take_varint(&mut input)?
        } else {
            0
        };
        each(Posting {
            start,
            ordinal,
            term,
            duration,
        });
    }
    input.is_empty().then_some(())
}

/// Appends LEB128 `value`.
pub(crate) fn put_varint(key: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = value.to_le_bytes()[0] & 0x7f;
        value >>= 7;
        if value == 0 {
            key.push(low);
            return;
        }
        key.push(low | 0x80);
    }
}

/// Reads LEB128 from the front of `input`, advancing it.
pub(crate) fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint.
pub(crate) fn put_len(out: &mut Vec<u8>, value: usize) {
    put_varint(out, value as u64);
}

/// Reads a length-prefixed byte string from the front of `input`, advancing it.
pub(crate) fn take_bytes<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let length = usize::try_from(take_varint(input)?).ok()?;
    let bytes = input.get(..length)?;
    *input = input.get(length..)?;
    Some(bytes)
}

/// Appends `text` in its compact key form: short texts as they are (marker 0), long ones as
/// their first 128 bytes and a 128-bit hash of the whole (marker 1), the whole length-prefixed.
/// Equal texts give equal forms; a long text's form never equals a short text's (the marker
/// differs), and two long texts share a form only on a 128-bit hash collision.
pub(crate) fn put_compact(key: &mut Vec<u8>, text: &[u8]) {
    if text.len() <= INLINE_TEXT_MAX {
        put_varint(key, text.len() as u64 + 1);
        key.push(0);
        key.extend_from_slice(text);
    } else {
        let prefix = text.get(..LONG_TEXT_PREFIX).unwrap_or(text);
        put_varint(key, (prefix.len() + 16 + 1) as u64);
        key.push(1);
        key.extend_from_slice(prefix);
        key.extend_from_slice(&xxh3_128(text).to_be_bytes());
    }
}

fn start(tag: u8, tenant: &Tenant) -> Vec<u8> {
    let mut key = Vec::with_capacity(96);
    key.push(tag);
    put_compact(&mut key, tenant.name().as_bytes());
    key
}

/// `xxh3-64(tag ‖ lp(tenant) ‖ lp(part)…)`, built in `scratch` (so a hot loop allocates
/// nothing).
pub(crate) fn term_hash(tag: u8, tenant: &Tenant, parts: &[&[u8]], scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    scratch.push(tag);
    put_bytes(scratch, tenant.name().as_bytes());
    for part in parts {
        put_bytes(scratch, part);
    }
    xxh3_64(scratch)
}

/// A term of `tag` over the tenant and `parts`.
pub(crate) fn term(tag: u8, tenant: &Tenant, parts: &[&[u8]]) -> Term {
    Term {
        tag,
        hash: term_hash(tag, tenant, parts, &mut Vec::with_capacity(64)),
    }
}

/// Every span of a tenant.
pub(crate) fn global_term(tenant: &Tenant) -> Term {
    term(tag::GLOBAL, tenant, &[])
}

/// Spans with status ERROR.
pub(crate) fn error_term(tenant: &Tenant) -> Term {
    term(tag::ERROR, tenant, &[])
}

/// Spans of a service.
pub(crate) fn service_term(tenant: &Tenant, service: &str) -> Term {
    term(tag::SERVICE, tenant, &[service.as_bytes()])
}

/// Spans of a service and operation.
pub(crate) fn operation_term(tenant: &Tenant, service: &str, operation: &str) -> Term {
    term(
        tag::OPERATION,
        tenant,
        &[service.as_bytes(), operation.as_bytes()],
    )
}

/// The full hash of an attribute term (`key`, canonical value text).
pub(crate) fn attribute_hash(
    tenant: &Tenant,
    key_name: &[u8],
    value: &[u8],
    scratch: &mut Vec<u8>,
) -> u64 {
    term_hash(tag::ATTRIBUTE, tenant, &[key_name, value], scratch)
}

/// The posting-list term of every attribute shard of a tenant, by shard number.
pub(crate) fn attribute_shards(tenant: &Tenant) -> Vec<Term> {
    (0..ATTRIBUTE_SHARDS)
        .map(|shard| term(tag::ATTRIBUTE, tenant, &[&shard.to_be_bytes()]))
        .collect()
}

/// The shard an attribute term hash lives in, and the bits its postings keep.
pub(crate) fn attribute_shard(hash: u64) -> (usize, u16) {
    let shard = usize::try_from(hash % ATTRIBUTE_SHARDS).unwrap_or(0);
    (shard, term_bits(hash))
}

/// `tag ‖ term hash ‖ bucket u32` — then the batch ID.
pub(crate) fn posting_prefix(term: Term, bucket: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(TERM_LEN + 4 + 8);
    key.push(term.tag);
    key.extend_from_slice(&term.hash.to_be_bytes());
    key.extend_from_slice(&bucket.to_be_bytes());
    key
}

/// `tag ‖ term hash ‖ bucket u32 ‖ batch u64`: one batch's postings of a term in a bucket.
pub(crate) fn posting_key(term: Term, bucket: u32, batch_id: u64) -> Vec<u8> {
    let mut key = posting_prefix(term, bucket);
    key.extend_from_slice(&batch_id.to_be_bytes());
    key
}

/// The batch ID at the end of a posting key.
pub(crate) fn posting_batch(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// `b ‖ batch u64`: the trace IDs (16 bytes each) a batch wrote into a partition, in the
/// order postings number them.
pub(crate) fn trace_table_key(batch_id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(tag::TRACE_TABLE);
    key.extend_from_slice(&batch_id.to_be_bytes());
    key
}

/// `f ‖ tenant ‖ trace` — then the write batch ID and a content hash (u64 BE each).
pub(crate) fn fragment_prefix(tenant: &Tenant, trace_id: &TraceId) -> Vec<u8> {
    let mut key = start(tag::FRAGMENT, tenant);
    key.extend_from_slice(trace_id.as_bytes());
    key
}

/// `f ‖ tenant ‖ trace ‖ batch ‖ content hash`. The content hash makes a clash of batch IDs
/// (a clock stepping back across a restart) overwrite only an identical fragment.
pub(crate) fn fragment_key(
    tenant: &Tenant,
    trace_id: &TraceId,
    batch_id: u64,
    content_hash: u64,
) -> Vec<u8> {
    let mut key = fragment_prefix(tenant, trace_id);
    key.extend_from_slice(&batch_id.to_be_bytes());
    key.extend_from_slice(&content_hash.to_be_bytes());
    key
}

/// `V ‖ tenant` — then service.
pub(crate) fn service_names_prefix(tenant: &Tenant) -> Vec<u8> {
    start(tag::SERVICE_NAME, tenant)
}

/// `V ‖ tenant ‖ service`; the value is the service name.
pub(crate) fn service_name_key(tenant: &Tenant, service: &str) -> Vec<u8> {
    let mut key = service_names_prefix(tenant);
    put_compact(&mut key, service.as_bytes());
    key
}

/// `P ‖ tenant ‖ service` — then kind, operation.
pub(crate) fn operation_names_prefix(tenant: &Tenant, service: &str) -> Vec<u8> {
    let mut key = start(tag::OPERATION_NAME, tenant);
    put_compact(&mut key, service.as_bytes());
    key
}

/// `P ‖ tenant ‖ service ‖ kind ‖ operation`; the value is `kind ‖ operation name`.
pub(crate) fn operation_name_key(tenant: &Tenant, service: &str, kind: u8, name: &str) -> Vec<u8> {
    let mut key = operation_names_prefix(tenant, service);
    key.push(kind);
    put_compact(&mut key, name.as_bytes());
    key
}

/// A 128-bit content hash of a resource or scope record.
pub(crate) type ContentId = [u8; 16];

/// `R ‖ tenant ‖ content hash`.
pub(crate) fn resource_key(tenant: &Tenant, id: &ContentId) -> Vec<u8> {
    let mut key = start(tag::RESOURCE, tenant);
    key.extend_from_slice(id);
    key
}

/// `C ‖ tenant ‖ content hash`.
pub(crate) fn scope_key(tenant: &Tenant, id: &ContentId) -> Vec<u8> {
    let mut key = start(tag::SCOPE, tenant);
    key.extend_from_slice(id);
    key
}

/// `Z`: the partition's counts (not tenant data: stats are store-wide).
pub(crate) fn counts_key() -> Vec<u8> {
    vec![tag::COUNTS]
}

/// `T ‖ tenant ‖ trace` — then the write batch ID and a content hash. Lives in the `spans`
/// keyspace.
pub(crate) fn span_prefix(tenant: &Tenant, trace_id: &TraceId) -> Vec<u8> {
    let mut key = start(tag::SPAN, tenant);
    key.extend_from_slice(trace_id.as_bytes());
    key
}

/// `T ‖ tenant ‖ trace ‖ batch ‖ content hash`: the spans of one trace written by one batch
/// into one partition, as one compressed group record.
pub(crate) fn span_group_key(
    tenant: &Tenant,
    trace_id: &TraceId,
    batch_id: u64,
    content_hash: u64,
) -> Vec<u8> {
    let mut key = span_prefix(tenant, trace_id);
    key.extend_from_slice(&batch_id.to_be_bytes());
    key.extend_from_slice(&content_hash.to_be_bytes());
    key
}

/// `x ‖ tenant ‖ trace`: present in a partition once the trace has fragments there, so a write
/// learns where a trace it does not remember is stored with one bloom-filtered point read per
/// partition instead of a prefix scan.
pub(crate) fn trace_marker_key(tenant: &Tenant, trace_id: &TraceId) -> Vec<u8> {
    let mut key = start(tag::TRACE_MARKER, tenant);
    key.extend_from_slice(trace_id.as_bytes());
    key
}

/// `d ‖ tenant` — then the block (u32) and the batch ID.
pub(crate) fn calls_prefix(tenant: &Tenant) -> Vec<u8> {
    start(tag::CALLS, tenant)
}

/// `d ‖ tenant ‖ block u32`: the start of a block's call records.
pub(crate) fn calls_block_prefix(tenant: &Tenant, block: u32) -> Vec<u8> {
    let mut key = calls_prefix(tenant);
    key.extend_from_slice(&block.to_be_bytes());
    key
}

/// `d ‖ tenant ‖ block u32 ‖ batch u64`: the call deltas one write batch added to a 4-hour block of
/// callee starts (a folded record keeps the key of the newest record it replaced).
pub(crate) fn calls_key(tenant: &Tenant, block: u32, batch_id: u64) -> Vec<u8> {
    let mut key = calls_block_prefix(tenant, block);
    key.extend_from_slice(&batch_id.to_be_bytes());
    key
}

/// `l ‖ tenant ‖ minute u32`: the call deltas of a minute, per callee start — then the batch.
pub(crate) fn call_starts_prefix(tenant: &Tenant, minute: u32) -> Vec<u8> {
    let mut key = start(tag::CALL_STARTS, tenant);
    key.extend_from_slice(&minute.to_be_bytes());
    key
}

/// `l ‖ tenant ‖ minute u32 ‖ batch u64`: the call deltas one write batch added to a minute,
/// per callee start.
pub(crate) fn call_starts_key(tenant: &Tenant, minute: u32, batch_id: u64) -> Vec<u8> {
    let mut key = call_starts_prefix(tenant, minute);
    key.extend_from_slice(&batch_id.to_be_bytes());
    key
}

/// `M`: the database's on-disk format version (in the `meta` keyspace).
pub(crate) fn format_key() -> Vec<u8> {
    vec![b'M']
}

/// `B`: the first write batch ID the next process may use (in the `meta` keyspace), so batch
/// IDs never repeat across restarts even if the clock steps back.
pub(crate) fn batch_reservation_key() -> Vec<u8> {
    vec![b'B']
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_tuples_never_encode_equal() {
        let tenants = ["", "a", "ab", "a\u{0}", "\u{1}a"];
        let texts = [
            "",
            "a",
            "ab",
            "b",
            "a\u{0}",
            "\u{0}",
            "\u{1}",
            "aa",
            &"x".repeat(200),
            &"x".repeat(201),
            &"x".repeat(400),
        ];
        let mut seen = HashSet::new();
        let mut count = 0;
        let mut scratch = Vec::new();
        for tenant in tenants {
            let tenant = Tenant::new(tenant);
            for first in texts {
                for second in texts {
                    count += 2;
                    seen.insert(operation_term(&tenant, first, second).hash);
                    seen.insert(attribute_hash(
                        &tenant,
                        first.as_bytes(),
                        second.as_bytes(),
                        &mut scratch,
                    ));
                }
                count += 2;
                seen.insert(service_term(&tenant, first).hash);
                seen.insert(xxh3_64(&service_name_key(&tenant, first)));
            }
            count += 2;
            seen.insert(global_term(&tenant).hash);
            seen.insert(error_term(&tenant).hash);
        }
        assert_eq!(seen.len(), count, "some distinct tuples share an encoding");
    }

    #[test]
    fn term_splits_are_unambiguous() {
        // "a" then "bc" must differ from "ab" then "c" and from "abc" then "".
        let tenant = Tenant::default();
        let one = operation_term(&tenant, "a", "bc");
        let two = operation_term(&tenant, "ab", "c");
        let three = operation_term(&tenant, "abc", "");
        assert_ne!(one, two);
        assert_ne!(two, three);
        assert_ne!(
            operation_term(&Tenant::new("a"), "b", "c"),
            operation_term(&Tenant::default(), "a", "bc")
        );
        let compact_one = operation_name_key(&tenant, "a", 1, "bc");
        let compact_two = operation_name_key(&tenant, "ab", 1, "c");
        assert_ne!(compact_one, compact_two);
        assert!(!service_name_key(&tenant, "ab").starts_with(&service_name_key(&tenant, "a")));
    }

    #[test]
    fn long_texts_are_bounded_and_still_distinct() {
        let tenant = Tenant::default();
        let long_a = "q".repeat(10_000);
        let mut long_b = long_a.clone();
        long_b.push('!');
        let mut scratch = Vec::new();
        let hash_a = attribute_hash(&tenant, b"db.statement", long_a.as_bytes(), &mut scratch);
        let hash_b = attribute_hash(&tenant, b"db.statement", long_b.as_bytes(), &mut scratch);
        assert_ne!(hash_a, hash_b);
        let compact = service_name_key(&tenant, &long_a);
        assert!(compact.len() < 200);
        assert_ne!(compact, service_name_key(&tenant, &long_b));
    }

    #[test]
    fn posting_keys_group_by_term_then_bucket() {
        let term = service_term(&Tenant::new("t"), "svc");
        let key = posting_key(term, 7, 42);
        assert!(key.starts_with(&posting_prefix(term, 7)));
        assert!(!key.starts_with(&posting_prefix(term, 8)));
        assert_eq!(posting_batch(&key), Some(42));
        assert!(posting_key(term, 7, u64::MAX) < posting_key(term, 8, 0));
        assert_eq!(bucket_of(BUCKET_NANOS - 1), 0);
        assert_eq!(bucket_of(BUCKET_NANOS), 1);
    }

    #[test]
    fn postings_round_trip() {
        for tag in [tag::ATTRIBUTE, tag::SERVICE, tag::GLOBAL] {
            let (has_term, has_duration) = posting_fields(tag);
            let mut postings = vec![
                Posting {
                    start: 1 << 40,
                    ordinal: 3,
                    term: if has_term { 9 } else { 0 },
                    duration: if has_duration { 77 } else { 0 },
                },
                Posting {
                    start: 5,
                    ordinal: u32::MAX,
                    term: if has_term { u16::MAX } else { 0 },
                    duration: if has_duration { u64::MAX } else { 0 },
                },
            ];
            let encoded = encode_postings(tag, &mut postings);
            let mut decoded = Vec::new();
            assert_eq!(
                decode_postings(tag, &encoded, |posting| decoded.push(posting)),
                Some(())
            );
            assert_eq!(decoded, postings);
            assert!(decoded[0].start < decoded[1].start);
            assert!(decode_postings(tag, &encoded[..encoded.len() - 1], |_| {}).is_none());
        }
        let (shard, bits) = attribute_shard(u64::MAX);
        assert!(u64::try_from(shard).unwrap() < ATTRIBUTE_SHARDS);
        assert_eq!(bits, u16::MAX);
    }

    #[test]
    fn varints_round_trip() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut input = out.as_slice();
            assert_eq!(take_varint(&mut input), Some(value));
            assert!(input.is_empty());
        }
        let mut out = Vec::new();
        put_bytes(&mut out, b"hello");
        let mut input = out.as_slice();
        assert_eq!(take_bytes(&mut input), Some(&b"hello"[..]));
    }

    #[test]
    fn tenants_prefix_every_key() {
        let red = Tenant::new("red");
        let blue = Tenant::new("blue");
        let trace = TraceId([1; 16]);
        assert_ne!(span_prefix(&red, &trace), span_prefix(&blue, &trace));
        assert_ne!(
            fragment_prefix(&red, &trace),
            fragment_prefix(&blue, &trace)
        );
        assert_ne!(service_names_prefix(&red), service_names_prefix(&blue));
        assert_ne!(calls_prefix(&red), calls_prefix(&blue));
        assert_ne!(call_starts_prefix(&red, 1), call_starts_prefix(&blue, 1));
        assert_ne!(
            trace_marker_key(&red, &trace),
            trace_marker_key(&blue, &trace)
        );
        assert_ne!(global_term(&red), global_term(&blue));
        assert_ne!(attribute_shards(&red), attribute_shards(&blue));
    }
}
