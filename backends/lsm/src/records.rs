//! Value encodings: span groups, resource and scope records, and trace summary fragments.
//!
//! Every value starts with a format byte so a later version can change a layout without
//! guessing.

use std::collections::HashMap;

use prost::Message as _;
use remote_storage_core::model::{Resource, Scope};
use remote_storage_core::proto::otlp::trace::{ResourceSpans, ScopeSpans};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, xxh3_128};

use crate::error::LsmError;
use crate::keys::{ContentId, Discriminator, put_bytes, put_len, take_bytes, take_varint};

const FORMAT_V1: u8 = 1;
/// Span group records: lz4-compressed.
const FORMAT_GROUP: u8 = 2;
/// The most lz4 can expand its input (a run of one byte compresses about 255 to 1).
const MAX_LZ4_RATIO: u64 = 256;

/// A resource with its `ResourceSpans.schema_url`, as one protobuf message
/// (`ResourceSpans` without spans), and the hash that names it.
pub(crate) fn encode_resource(resource: &Resource) -> (ContentId, Vec<u8>) {
    let message = ResourceSpans {
        resource: Some(resource.otlp().clone()),
        scope_spans: Vec::new(),
        schema_url: resource.schema_url().to_owned(),
    };
    versioned(message.encode_to_vec())
}

/// A scope with its `ScopeSpans.schema_url` (`ScopeSpans` without spans) and its hash.
pub(crate) fn encode_scope(scope: &Scope) -> (ContentId, Vec<u8>) {
    let message = ScopeSpans {
        scope: Some(scope.otlp().clone()),
        spans: Vec::new(),
        schema_url: scope.schema_url().to_owned(),
    };
    versioned(message.encode_to_vec())
}

fn versioned(encoded: Vec<u8>) -> (ContentId, Vec<u8>) {
    let id = xxh3_128(&encoded).to_be_bytes();
    let mut value = Vec::with_capacity(encoded.len() + 1);
    value.push(FORMAT_V1);
    value.extend_from_slice(&encoded);
    (id, value)
}

fn unversioned<'a>(value: &'a [u8], what: &str) -> Result<&'a [u8], LsmError> {
    match value.split_first() {
        Some((&FORMAT_V1, rest)) => Ok(rest),
        _ => Err(LsmError::corrupt(format!(
            "{what} record has an unknown format"
        ))),
    }
}

pub(crate) fn decode_resource(value: &[u8]) -> Result<Resource, LsmError> {
    let message = ResourceSpans::decode(unversioned(value, "resource")?)?;
    Ok(Resource::new(
        message.resource.unwrap_or_default(),
        message.schema_url,
    ))
}

pub(crate) fn decode_scope(value: &[u8]) -> Result<Scope, LsmError> {
    let message = ScopeSpans::decode(unversioned(value, "scope")?)?;
    Ok(Scope::new(
        message.scope.unwrap_or_default(),
        message.schema_url,
    ))
}

/// The hash of a resource and scope pair: the first half of a [`Discriminator`].
pub(crate) fn content_group_hash(resource_id: &ContentId, scope_id: &ContentId) -> u64 {
    let mut input = [0u8; 32];
    input[..16].copy_from_slice(resource_id);
    input[16..].copy_from_slice(scope_id);
    xxh3_64(&input)
}

/// The key-order position of a stored span within its trace: `group_hash` (see
/// [`content_group_hash`]) then `hash(span bytes, seeded with group_hash)`; the n-th identical
/// copy of a span within one batch (n > 0) hashes its number in too. A re-sent span thus gets
/// the same discriminator (reads keep one), while identical copies inside one batch are all
/// kept.
pub(crate) fn discriminator(group_hash: u64, span_bytes: &[u8], copy: u32) -> Discriminator {
    let content_hash = xxh3_64_with_seed(span_bytes, group_hash);
    let copy_hash = if copy == 0 {
        content_hash
    } else {
        let mut input = [0u8; 12];
        input[..8].copy_from_slice(&content_hash.to_be_bytes());
        input[8..].copy_from_slice(&copy.to_be_bytes());
        xxh3_64(&input)
    };
    let mut disc = [0u8; 16];
    disc[..8].copy_from_slice(&group_hash.to_be_bytes());
    disc[8..].copy_from_slice(&copy_hash.to_be_bytes());
    disc
}

/// The spans of one trace written by one batch into one partition, before encoding.
#[derive(Debug, Default)]
pub(crate) struct SpanGroupBuilder {
    resources: Vec<ContentId>,
    scopes: Vec<ContentId>,
    body: Vec<u8>,
    count: usize,
}

impl SpanGroupBuilder {
    pub(crate) fn add(&mut self, resource: &ContentId, scope: &ContentId, span: &[u8]) {
        let resource_index = position_or_push(&mut self.resources, resource);
        let scope_index = position_or_push(&mut self.scopes, scope);
        put_len(&mut self.body, resource_index);
        put_len(&mut self.body, scope_index);
        put_bytes(&mut self.body, span);
        self.count += 1;
    }

    /// `format 2 ‖ lz4(n resources ‖ ids… ‖ n scopes ‖ ids… ‖ n spans ‖
    /// (resource index ‖ scope index ‖ lp(OTLP span))…)`, the uncompressed size first.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut plain = Vec::with_capacity(
            8 + 16 * (self.resources.len() + self.scopes.len()) + self.body.len(),
        );
        put_len(&mut plain, self.resources.len());
        for id in &self.resources {
            plain.extend_from_slice(id);
        }
        put_len(&mut plain, self.scopes.len());
        for id in &self.scopes {
            plain.extend_from_slice(id);
        }
        put_len(&mut plain, self.count);
        plain.extend_from_slice(&self.body);
        let compressed = lz4_flex::compress_prepend_size(&plain);
        let mut value = Vec::with_capacity(1 + compressed.len());
        value.push(FORMAT_GROUP);
        value.extend_from_slice(&compressed);
        value
    }
}

fn position_or_push(ids: &mut Vec<ContentId>, id: &ContentId) -> usize {
    match ids.iter().position(|known| known == id) {
        Some(index) => index,
        None => {
            ids.push(*id);
            ids.len() - 1
        }
    }
}

/// One stored span of a decoded group.
pub(crate) struct GroupSpan<'a> {
    pub(crate) resource: ContentId,
    pub(crate) scope: ContentId,
    pub(crate) span: &'a [u8],
    pub(crate) disc: Discriminator,
}

/// A decoded span group; [`SpanGroup::spans`] lists its spans in write order.
pub(crate) struct SpanGroup {
    plain: Vec<u8>,
    resources: Vec<ContentId>,
    scopes: Vec<ContentId>,
    /// Offset of the first span entry in `plain`.
    body_start: usize,
    count: usize,
}

impl SpanGroup {
    pub(crate) fn decode(value: &[u8]) -> Result<Self, LsmError> {
        let compressed = match value.split_first() {
            Some((&FORMAT_GROUP, rest)) => rest,
            _ => return Err(LsmError::corrupt("span group record has an unknown format")),
        };
        // A corrupt size prefix must not make us reserve gigabytes: lz4 expands at most
        // about 255 to 1, so a larger claim is corrupt.
        let declared = compressed
            .get(..4)
            .and_then(|prefix| prefix.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        if u64::from(declared) > (compressed.len() as u64).saturating_mul(MAX_LZ4_RATIO) {
            return Err(LsmError::corrupt(format!(
                "span group claims {declared} bytes from {} compressed",
                compressed.len()
            )));
        }
        let plain = lz4_flex::decompress_size_prepended(compressed).map_err(|error| {
            LsmError::corrupt(format!("span group does not decompress: {error}"))
        })?;
        Self::parse(plain).ok_or_else(|| LsmError::corrupt("span group is truncated"))
    }

    fn parse(plain: Vec<u8>) -> Option<Self> {
        let mut input = plain.as_slice();
        let resource_count = usize::try_from(take_varint(&mut input)?).ok()?;
        let mut resources = Vec::with_capacity(resource_count.min(1024));
        for _ in 0..resource_count {
            resources.push(take_array::<16>(&mut input)?);
        }
        let scope_count = usize::try_from(take_varint(&mut input)?).ok()?;
        let mut scopes = Vec::with_capacity(scope_count.min(1024));
        for _ in 0..scope_count {
            scopes.push(take_array::<16>(&mut input)?);
        }
        let count = usize::try_from(take_varint(&mut input)?).ok()?;
        let body_start = plain.len() - input.len();
        Some(Self {
            plain,
            resources,
            scopes,
            body_start,
            count,
        })
    }

    /// The group's spans in write order, each with its discriminator.
    pub(crate) fn spans(&self) -> Result<Vec<GroupSpan<'_>>, LsmError> {
        self.spans_inner()
            .ok_or_else(|| LsmError::corrupt("span group entry is truncated"))
    }

    fn spans_inner(&self) -> Option<Vec<GroupSpan<'_>>> {
        let mut input = self.plain.get(self.body_start..)?;
        let mut spans = Vec::with_capacity(self.count.min(65_536));
        let mut copies: HashMap<Discriminator, u32> = HashMap::new();
        let mut group_hashes: HashMap<(usize, usize), u64> = HashMap::new();
        for _ in 0..self.count {
            let resource_index = usize::try_from(take_varint(&mut input)?).ok()?;
            let scope_index = usize::try_from(take_varint(&mut input)?).ok()?;
            let span = take_bytes(&mut input)?;
            let resource = *self.resources.get(resource_index)?;
            let scope = *self.scopes.get(scope_index)?;
            let group_hash = *group_hashes
                .entry((resource_index, scope_index))
                .or_insert_with(|| content_group_hash(&resource, &scope));
            let first = discriminator(group_hash, span, 0);
            let copy = copies.entry(first).or_insert(0);
            let disc = if *copy == 0 {
                first
            } else {
                discriminator(group_hash, span, *copy)
            };
            *copy += 1;
            spans.push(GroupSpan {
                resource,
                scope,
                span,
                disc,
            });
        }
        input.is_empty().then_some(spans)
    }
}

/// What a summary needs of one span, kept in the trace's summary fragments so summaries and
/// dependencies never load whole spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FragmentEntry {
    /// The span's discriminator: identifies it (a re-sent span has the same one) and gives
    /// its position in the trace.
    pub(crate) disc: Discriminator,
    pub(crate) span_id: [u8; 8],
    /// Parent span ID; `None` for a root.
    pub(crate) parent: Option<[u8; 8]>,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) error: bool,
    pub(crate) service: String,
    /// The span name, kept only for roots (the only spans whose name a summary shows).
    pub(crate) root_name: Option<String>,
}

const FLAG_ERROR: u8 = 1;
const FLAG_ROOT: u8 = 2;

/// `format ‖ n services ‖ services… ‖ n entries ‖ entries…`; each entry is
/// `disc ‖ span id ‖ parent (zeros = none) ‖ start ‖ end ‖ flags ‖ service index [‖ name]`.
pub(crate) fn encode_fragment(entries: &[FragmentEntry]) -> Vec<u8> {
    let mut services: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(16 + entries.len() * 56);
    out.push(FORMAT_V1);
    let mut indexes = Vec::with_capacity(entries.len());
    for entry in entries {
        let index = match services.iter().position(|name| *name == entry.service) {
            Some(index) => index,
            None => {
                services.push(&entry.service);
                services.len() - 1
            }
        };
        indexes.push(index);
    }
    put_len(&mut out, services.len());
    for service in &services {
        put_bytes(&mut out, service.as_bytes());
    }
    put_len(&mut out, entries.len());
    for (entry, service_index) in entries.iter().zip(indexes) {
        out.extend_from_slice(&entry.disc);
        out.extend_from_slice(&entry.span_id);
        out.extend_from_slice(&entry.parent.unwrap_or([0; 8]));
        out.extend_from_slice(&entry.start.to_be_bytes());
        out.extend_from_slice(&entry.end.to_be_bytes());
        let mut flags = 0;
        if entry.error {
            flags |= FLAG_ERROR;
        }
        if entry.root_name.is_some() {
            flags |= FLAG_ROOT;
        }
        out.push(flags);
        put_len(&mut out, service_index);
        if let Some(name) = &entry.root_name {
            put_bytes(&mut out, name.as_bytes());
        }
    }
    out
}

pub(crate) fn decode_fragment(value: &[u8]) -> Result<Vec<FragmentEntry>, LsmError> {
    decode_fragment_inner(unversioned(value, "fragment")?)
        .ok_or_else(|| LsmError::corrupt("summary fragment is truncated"))
}

fn take_array<const N: usize>(input: &mut &[u8]) -> Option<[u8; N]> {
    let array = input.get(..N)?.try_into().ok()?;
    *input = input.get(N..)?;
    Some(array)
}

fn take_text(input: &mut &[u8]) -> Option<String> {
    String::from_utf8(take_bytes(input)?.to_vec()).ok()
}

fn decode_fragment_inner(mut input: &[u8]) -> Option<Vec<FragmentEntry>> {
    let service_count = usize::try_from(take_varint(&mut input)?).ok()?;
    let mut services = Vec::with_capacity(service_count.min(1024));
    for _ in 0..service_count {
        services.push(take_text(&mut input)?);
    }
    let entry_count = usize::try_from(take_varint(&mut input)?).ok()?;
    let mut entries = Vec::with_capacity(entry_count.min(65_536));
    for _ in 0..entry_count {
        let disc = take_array::<16>(&mut input)?;
        let span_id = take_array::<8>(&mut input)?;
        let parent = take_array::<8>(&mut input)?;
        let start = u64::from_be_bytes(take_array::<8>(&mut input)?);
        let end = u64::from_be_bytes(take_array::<8>(&mut input)?);
        let flags = take_array::<1>(&mut input)?[0];
        let service_index = usize::try_from(take_varint(&mut input)?).ok()?;
        let root_name = if flags & FLAG_ROOT != 0 {
            Some(take_text(&mut input)?)
        } else {
            None
        };
        entries.push(FragmentEntry {
            disc,
            span_id,
            parent: (parent != [0; 8]).then_some(parent),
            start,
            end,
            error: flags & FLAG_ERROR != 0,
            service: services.get(service_index)?.clone(),
            root_name,
        });
    }
    input.is_empty().then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_round_trip() {
        let entries = vec![
            FragmentEntry {
                disc: [1; 16],
                span_id: [2; 8],
                parent: None,
                start: 10,
                end: 20,
                error: true,
                service: "svc-a".into(),
                root_name: Some("root".into()),
            },
            FragmentEntry {
                disc: [3; 16],
                span_id: [4; 8],
                parent: Some([2; 8]),
                start: 11,
                end: 12,
                error: false,
                service: "svc-b".into(),
                root_name: None,
            },
            FragmentEntry {
                disc: [5; 16],
                span_id: [6; 8],
                parent: Some([9; 8]),
                start: 13,
                end: 14,
                error: false,
                service: "svc-a".into(),
                root_name: None,
            },
        ];
        let encoded = encode_fragment(&entries);
        assert_eq!(decode_fragment(&encoded).unwrap(), entries);
        assert!(decode_fragment(&encoded[..encoded.len() - 1]).is_err());
    }

    #[test]
    fn span_groups_round_trip_and_keep_copies_apart() {
        let mut builder = SpanGroupBuilder::default();
        builder.add(&[7; 16], &[8; 16], b"payload");
        builder.add(&[9; 16], &[8; 16], b"other");
        builder.add(&[7; 16], &[8; 16], b"payload");
        let value = builder.encode();
        let group = SpanGroup::decode(&value).unwrap();
        let spans = group.spans().unwrap();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].resource, [7; 16]);
        assert_eq!(spans[1].resource, [9; 16]);
        assert_eq!(spans[1].scope, [8; 16]);
        assert_eq!(spans[2].span, b"payload");
        let group_hash = content_group_hash(&[7; 16], &[8; 16]);
        assert_eq!(spans[0].disc, discriminator(group_hash, b"payload", 0));
        assert_ne!(spans[0].disc, spans[2].disc);
        assert_eq!(spans[0].disc[..8], spans[2].disc[..8]);
        assert!(SpanGroup::decode(&value[..value.len() - 1]).is_err());
    }
}
