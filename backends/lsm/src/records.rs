//! Value encodings: span records, resource and scope records, and trace summary fragments.
//!
//! Every value starts with a format byte so a later version can change a layout without
//! guessing.

use prost::Message as _;
use remote_storage_core::model::{Resource, Scope};
use remote_storage_core::proto::otlp::trace::{ResourceSpans, ScopeSpans};
use xxhash_rust::xxh3::xxh3_128;

use crate::error::LsmError;
use crate::keys::{ContentId, Discriminator, put_bytes, put_len, take_bytes, take_varint};

const FORMAT_V1: u8 = 1;

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

/// A span record: `format ‖ resource id ‖ scope id ‖ prost-encoded OTLP span`.
pub(crate) fn encode_span(resource: &ContentId, scope: &ContentId, span: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + 32 + span.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(resource);
    value.extend_from_slice(scope);
    value.extend_from_slice(span);
    value
}

/// The parts of a span record.
pub(crate) struct SpanRecord<'a> {
    pub(crate) resource: ContentId,
    pub(crate) scope: ContentId,
    pub(crate) span: &'a [u8],
}

pub(crate) fn decode_span(value: &[u8]) -> Result<SpanRecord<'_>, LsmError> {
    let rest = unversioned(value, "span")?;
    let (Some(resource), Some(scope), Some(span)) =
        (rest.get(..16), rest.get(16..32), rest.get(32..))
    else {
        return Err(LsmError::corrupt("span record is truncated"));
    };
    Ok(SpanRecord {
        resource: resource
            .try_into()
            .map_err(|_| LsmError::corrupt("span record resource id"))?,
        scope: scope
            .try_into()
            .map_err(|_| LsmError::corrupt("span record scope id"))?,
        span,
    })
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
    fn span_records_round_trip() {
        let value = encode_span(&[7; 16], &[8; 16], b"payload");
        let record = decode_span(&value).unwrap();
        assert_eq!(record.resource, [7; 16]);
        assert_eq!(record.scope, [8; 16]);
        assert_eq!(record.span, b"payload");
        assert!(decode_span(&value[..10]).is_err());
    }
}
