//! Key encoding. Every key is built here, so the layout is in one place.
//!
//! Rules that make keys collision-free and range-friendly:
//! - The first byte is a tag naming the record type, so record types never share a prefix.
//! - Every variable-length component (tenant, service, operation, attribute key and value) is
//!   written as [`compact`] text: a LEB128 length, then a marker byte and the bytes. A length
//!   prefix makes the split between components unambiguous, so two distinct tuples never
//!   encode to the same bytes.
//! - Integers are big-endian and fixed-width, so byte order is numeric order and a range over
//!   `prefix ‖ start` walks entries by time.
//! - Every index entry ends with the same 40-byte [`SpanRef`] (start, trace ID, span
//!   discriminator), so any index scan can be merged with any other by comparing key tails.

use remote_storage_core::{Tenant, TraceId};
use xxhash_rust::xxh3::xxh3_128;

/// Tags of the records in a partition's `index` keyspace.
pub(crate) mod tag {
    /// Every span by start time.
    pub(crate) const GLOBAL: u8 = b'g';
    /// Spans by service, then start time.
    pub(crate) const SERVICE: u8 = b's';
    /// Spans by service and operation, then start time.
    pub(crate) const OPERATION: u8 = b'o';
    /// Spans by attribute key and canonical value text, then start time.
    pub(crate) const ATTRIBUTE: u8 = b'a';
    /// Spans with status ERROR, by start time.
    pub(crate) const ERROR: u8 = b'e';
    /// Spans by service and duration, then start time.
    pub(crate) const DURATION: u8 = b'd';
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
    /// Span records (in the `spans` keyspace).
    pub(crate) const SPAN: u8 = b'T';
}

/// Texts up to this many bytes are stored as they are; longer ones as a prefix plus a hash.
const INLINE_TEXT_MAX: usize = 200;
/// How many leading bytes of a long text are kept next to its hash.
const LONG_TEXT_PREFIX: usize = 128;
/// Length of a [`SpanRef`] when encoded.
pub(crate) const SPAN_REF_LEN: usize = 8 + 16 + 16;

/// Identifies one stored span within a trace: 8 bytes hashing its resource and scope (so spans
/// of one resource and scope sort together and read back as one OTLP group), then 8 bytes
/// hashing its content and its occurrence number within the write batch.
pub(crate) type Discriminator = [u8; 16];

/// The reference to a span that ends every index key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SpanRef {
    /// Span start, Unix nanoseconds.
    pub(crate) start: u64,
    /// The span's trace.
    pub(crate) trace_id: TraceId,
    /// The span's discriminator within the trace.
    pub(crate) disc: Discriminator,
}

impl SpanRef {
    pub(crate) fn encode_into(&self, key: &mut Vec<u8>) {
        key.extend_from_slice(&self.start.to_be_bytes());
        key.extend_from_slice(self.trace_id.as_bytes());
        key.extend_from_slice(&self.disc);
    }

    /// Reads the reference at the end of an index key.
    pub(crate) fn from_key_tail(key: &[u8]) -> Option<Self> {
        let tail = key.get(key.len().checked_sub(SPAN_REF_LEN)?..)?;
        let start = u64::from_be_bytes(tail.get(..8)?.try_into().ok()?);
        let trace_id = TraceId(tail.get(8..24)?.try_into().ok()?);
        let disc = tail.get(24..40)?.try_into().ok()?;
        Some(Self {
            start,
            trace_id,
            disc,
        })
    }
}

/// The last [`SPAN_REF_LEN`] bytes of an index key; comparing tails orders entries by
/// (start, trace ID, discriminator).
pub(crate) fn key_tail(key: &[u8]) -> &[u8] {
    key.get(key.len().saturating_sub(SPAN_REF_LEN)..)
        .unwrap_or(key)
}

/// Appends LEB128 `value`.
fn put_varint(key: &mut Vec<u8>, mut value: u64) {
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

/// `g ‖ tenant` — then [`SpanRef`].
pub(crate) fn global_prefix(tenant: &Tenant) -> Vec<u8> {
    start(tag::GLOBAL, tenant)
}

/// `e ‖ tenant` — then [`SpanRef`].
pub(crate) fn error_prefix(tenant: &Tenant) -> Vec<u8> {
    start(tag::ERROR, tenant)
}

/// `s ‖ tenant ‖ service` — then [`SpanRef`].
pub(crate) fn service_prefix(tenant: &Tenant, service: &str) -> Vec<u8> {
    let mut key = start(tag::SERVICE, tenant);
    put_compact(&mut key, service.as_bytes());
    key
}

/// `o ‖ tenant ‖ service ‖ operation` — then [`SpanRef`].
pub(crate) fn operation_prefix(tenant: &Tenant, service: &str, operation: &str) -> Vec<u8> {
    let mut key = start(tag::OPERATION, tenant);
    put_compact(&mut key, service.as_bytes());
    put_compact(&mut key, operation.as_bytes());
    key
}

/// `a ‖ tenant ‖ key ‖ value text` — then [`SpanRef`].
pub(crate) fn attribute_prefix(tenant: &Tenant, key_name: &str, value: &str) -> Vec<u8> {
    let mut key = start(tag::ATTRIBUTE, tenant);
    put_compact(&mut key, key_name.as_bytes());
    put_compact(&mut key, value.as_bytes());
    key
}

/// `d ‖ tenant ‖ service` — then duration (u64 BE), then [`SpanRef`].
pub(crate) fn duration_prefix(tenant: &Tenant, service: &str) -> Vec<u8> {
    let mut key = start(tag::DURATION, tenant);
    put_compact(&mut key, service.as_bytes());
    key
}

/// A whole index key: `prefix ‖ span ref`.
pub(crate) fn index_key(prefix: &[u8], span: &SpanRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + SPAN_REF_LEN);
    key.extend_from_slice(prefix);
    span.encode_into(&mut key);
    key
}

/// A whole duration index key: `prefix ‖ duration ‖ span ref`.
pub(crate) fn duration_key(prefix: &[u8], duration: u64, span: &SpanRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8 + SPAN_REF_LEN);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&duration.to_be_bytes());
    span.encode_into(&mut key);
    key
}

/// Inclusive bounds of the entries under `prefix` whose next 8 bytes lie in `min..=max`.
pub(crate) fn u64_range(prefix: &[u8], min: u64, max: u64, rest_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut lower = Vec::with_capacity(prefix.len() + 8);
    lower.extend_from_slice(prefix);
    lower.extend_from_slice(&min.to_be_bytes());
    let mut upper = Vec::with_capacity(prefix.len() + 8 + rest_len);
    upper.extend_from_slice(prefix);
    upper.extend_from_slice(&max.to_be_bytes());
    upper.resize(upper.len() + rest_len, u8::MAX);
    (lower, upper)
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

/// `T ‖ tenant ‖ trace` — then discriminator. Lives in the `spans` keyspace.
pub(crate) fn span_prefix(tenant: &Tenant, trace_id: &TraceId) -> Vec<u8> {
    let mut key = start(tag::SPAN, tenant);
    key.extend_from_slice(trace_id.as_bytes());
    key
}

/// `T ‖ tenant ‖ trace ‖ discriminator`.
pub(crate) fn span_key(tenant: &Tenant, trace_id: &TraceId, disc: &Discriminator) -> Vec<u8> {
    let mut key = span_prefix(tenant, trace_id);
    key.extend_from_slice(disc);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn span_ref(start: u64, trace: u8, disc: u8) -> SpanRef {
        SpanRef {
            start,
            trace_id: TraceId([trace; 16]),
            disc: [disc; 16],
        }
    }

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
        for tenant in tenants {
            let tenant = Tenant::new(tenant);
            for first in texts {
                for second in texts {
                    count += 2;
                    seen.insert(operation_prefix(&tenant, first, second));
                    seen.insert(attribute_prefix(&tenant, first, second));
                }
                count += 4;
                seen.insert(service_prefix(&tenant, first));
                seen.insert(service_name_key(&tenant, first));
                seen.insert(duration_prefix(&tenant, first));
                seen.insert(operation_name_key(&tenant, first, 1, first));
            }
            count += 2;
            seen.insert(global_prefix(&tenant));
            seen.insert(error_prefix(&tenant));
        }
        assert_eq!(seen.len(), count, "some distinct tuples share an encoding");
    }

    #[test]
    fn compact_text_is_prefix_free() {
        // "a" then "bc" must differ from "ab" then "c" and from "abc" then "".
        let tenant = Tenant::default();
        let one = operation_prefix(&tenant, "a", "bc");
        let two = operation_prefix(&tenant, "ab", "c");
        let three = operation_prefix(&tenant, "abc", "");
        assert_ne!(one, two);
        assert_ne!(two, three);
        assert!(!service_prefix(&tenant, "ab").starts_with(&service_prefix(&tenant, "a")));
    }

    #[test]
    fn long_texts_are_bounded_and_still_distinct() {
        let tenant = Tenant::default();
        let long_a = "q".repeat(10_000);
        let mut long_b = long_a.clone();
        long_b.push('!');
        let key_a = attribute_prefix(&tenant, "db.statement", &long_a);
        let key_b = attribute_prefix(&tenant, "db.statement", &long_b);
        assert!(key_a.len() < 200);
        assert_ne!(key_a, key_b);
        assert_eq!(key_a, attribute_prefix(&tenant, "db.statement", &long_a));
    }

    #[test]
    fn index_keys_sort_by_time_then_trace() {
        let prefix = service_prefix(&Tenant::new("t"), "svc");
        let refs = [
            span_ref(1, 9, 9),
            span_ref(2, 1, 1),
            span_ref(2, 1, 2),
            span_ref(2, 2, 0),
            span_ref(256, 0, 0),
            span_ref(u64::MAX, 0, 0),
        ];
        let keys: Vec<Vec<u8>> = refs.iter().map(|r| index_key(&prefix, r)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (key, expected) in keys.iter().zip(refs) {
            assert_eq!(SpanRef::from_key_tail(key), Some(expected));
        }
    }

    #[test]
    fn time_ranges_cover_exactly_the_inclusive_window() {
        let prefix = global_prefix(&Tenant::default());
        let (lower, upper) = u64_range(&prefix, 10, 20, SPAN_REF_LEN);
        let inside = |start| {
            let key = index_key(&prefix, &span_ref(start, 0xff, 0xff));
            lower <= key && key <= upper
        };
        assert!(!inside(9));
        assert!(inside(10));
        assert!(inside(20));
        assert!(!inside(21));
        let low_edge = index_key(&prefix, &span_ref(10, 0, 0));
        assert!(lower <= low_edge);
    }

    #[test]
    fn duration_keys_sort_by_duration() {
        let prefix = duration_prefix(&Tenant::default(), "svc");
        let short = duration_key(&prefix, 5, &span_ref(100, 1, 1));
        let long = duration_key(&prefix, 6, &span_ref(1, 1, 1));
        assert!(short < long);
        assert_eq!(SpanRef::from_key_tail(&long), Some(span_ref(1, 1, 1)));
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
    }
}
