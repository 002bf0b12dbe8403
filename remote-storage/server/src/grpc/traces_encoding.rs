//! Writes the `TracesData` wire bytes of a run of spans directly, grouping consecutive spans
//! that share a resource and scope exactly as `resource_spans_from_spans` does, so the bytes are
//! those of `TracesData { resource_spans: resource_spans_from_spans(spans) }.encode_to_vec()`
//! without cloning any span into a message first.

use std::sync::Arc;

use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use remote_storage_core::Span;

/// Field numbers of the enclosing OTLP messages.
mod field {
    /// `TracesData.resource_spans`.
    pub(super) const RESOURCE_SPANS: u32 = 1;
    /// `ResourceSpans.resource` / `ScopeSpans.scope`.
    pub(super) const RESOURCE_OR_SCOPE: u32 = 1;
    /// `ResourceSpans.scope_spans` / `ScopeSpans.spans`.
    pub(super) const SCOPE_SPANS_OR_SPANS: u32 = 2;
    /// `ResourceSpans.schema_url` / `ScopeSpans.schema_url`.
    pub(super) const SCHEMA_URL: u32 = 3;
}

/// Appends the encoded `TracesData` of `spans` to `out`; `span_lens` holds each span's
/// `encoded_len()` (the caller has them from sizing the chunk).
pub(crate) fn encode_traces_data(spans: &[Span], span_lens: &[usize], out: &mut Vec<u8>) {
    out.reserve(
        span_lens
            .iter()
            .map(|&len| delimited_len(1, len))
            .sum::<usize>()
            + 256,
    );
    let mut rest = spans;
    let mut rest_lens = span_lens;
    while let Some(first) = rest.first() {
        let in_resource = rest
            .iter()
            .take_while(|span| Arc::ptr_eq(span.resource(), first.resource()))
            .count();
        let (group, after) = rest.split_at(in_resource);
        let (group_lens, after_lens) = rest_lens.split_at(in_resource);
        encode_resource_spans(group, group_lens, out);
        rest = after;
        rest_lens = after_lens;
    }
}

/// Spans of one resource: scope groups of consecutive spans sharing a scope.
fn scope_groups<'a>(
    spans: &'a [Span],
    lens: &'a [usize],
) -> impl Iterator<Item = (&'a [Span], &'a [usize])> {
    let mut rest = (spans, lens);
    std::iter::from_fn(move || {
        let first = rest.0.first()?;
        let count = rest
            .0
            .iter()
            .take_while(|span| Arc::ptr_eq(span.scope(), first.scope()))
            .count();
        let (group, after) = rest.0.split_at(count);
        let (group_lens, after_lens) = rest.1.split_at(count);
        rest = (after, after_lens);
        Some((group, group_lens))
    })
}

fn scope_spans_len(spans: &[Span], lens: &[usize]) -> usize {
    let Some(first) = spans.first() else {
        return 0;
    };
    let scope = first.scope();
    delimited_len(field::RESOURCE_OR_SCOPE, scope.otlp().encoded_len())
        + lens
            .iter()
            .map(|&len| delimited_len(field::SCOPE_SPANS_OR_SPANS, len))
            .sum::<usize>()
        + string_len(field::SCHEMA_URL, scope.schema_url())
}

fn encode_resource_spans(spans: &[Span], lens: &[usize], out: &mut Vec<u8>) {
    let Some(first) = spans.first() else {
        return;
    };
    let resource = first.resource();
    let resource_len = resource.otlp().encoded_len();
    let payload_len = delimited_len(field::RESOURCE_OR_SCOPE, resource_len)
        + scope_groups(spans, lens)
            .map(|(group, group_lens)| {
                delimited_len(
                    field::SCOPE_SPANS_OR_SPANS,
                    scope_spans_len(group, group_lens),
                )
            })
            .sum::<usize>()
        + string_len(field::SCHEMA_URL, resource.schema_url());

    write_delimiter(field::RESOURCE_SPANS, payload_len, out);
    write_delimiter(field::RESOURCE_OR_SCOPE, resource_len, out);
    resource.otlp().encode_raw(out);
    for (group, group_lens) in scope_groups(spans, lens) {
        let Some(first) = group.first() else {
            continue;
        };
        let scope = first.scope();
        write_delimiter(
            field::SCOPE_SPANS_OR_SPANS,
            scope_spans_len(group, group_lens),
            out,
        );
        write_delimiter(field::RESOURCE_OR_SCOPE, scope.otlp().encoded_len(), out);
        scope.otlp().encode_raw(out);
        for (span, &len) in group.iter().zip(group_lens) {
            write_delimiter(field::SCOPE_SPANS_OR_SPANS, len, out);
            span.otlp().encode_raw(out);
        }
        write_string(field::SCHEMA_URL, scope.schema_url(), out);
    }
    write_string(field::SCHEMA_URL, resource.schema_url(), out);
}

/// Size of a length-delimited field holding `payload_len` bytes.
fn delimited_len(tag: u32, payload_len: usize) -> usize {
    key_len(tag) + encoded_len_varint(payload_len as u64) + payload_len
}

/// Size of a proto3 string field (absent when empty).
fn string_len(tag: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        delimited_len(tag, text.len())
    }
}

fn write_delimiter(tag: u32, payload_len: usize, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(payload_len as u64, out);
}

fn write_string(tag: u32, text: &str, out: &mut Vec<u8>) {
    if !text.is_empty() {
        write_delimiter(tag, text.len(), out);
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::common::InstrumentationScope;
    use jaeger_remote_proto::otlp::trace::{Span as OtlpSpan, TracesData};
    use remote_storage_core::convert::resource_spans_from_spans;
    use remote_storage_core::testing::otlp_resource;
    use remote_storage_core::{Resource, Scope};

    fn span(resource: &Arc<Resource>, scope: &Arc<Scope>, id: u8) -> Span {
        let otlp = OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            name: format!("op-{id}"),
            start_time_unix_nano: 100,
            end_time_unix_nano: 200 + u64::from(id),
            ..OtlpSpan::default()
        };
        Span::new(Arc::clone(resource), Arc::clone(scope), otlp).expect("valid span")
    }

    #[test]
    fn bytes_equal_the_encoded_messages_for_every_grouping() {
        let plain = Arc::new(Resource::new(otlp_resource("a"), String::new()));
        let with_schema = Arc::new(Resource::new(
            otlp_resource("b"),
            "https://schema/1".to_owned(),
        ));
        let empty_scope = Arc::new(Scope::new(InstrumentationScope::default(), String::new()));
        let named_scope = Arc::new(Scope::new(
            InstrumentationScope {
                name: "lib".to_owned(),
                version: "1.0".to_owned(),
                ..InstrumentationScope::default()
            },
            "https://schema/scope".to_owned(),
        ));
        let spans = [
            span(&plain, &empty_scope, 1),
            span(&plain, &empty_scope, 2),
            span(&plain, &named_scope, 3),
            span(&with_schema, &named_scope, 4),
            span(&with_schema, &empty_scope, 5),
            span(&plain, &empty_scope, 6),
        ];
        for end in 0..=spans.len() {
            let chunk = &spans[..end];
            let mut bytes = Vec::new();
            let lens: Vec<usize> = chunk.iter().map(|span| span.otlp().encoded_len()).collect();
            encode_traces_data(chunk, &lens, &mut bytes);
            let expected = TracesData {
                resource_spans: resource_spans_from_spans(chunk),
            }
            .encode_to_vec();
            assert_eq!(bytes, expected, "first {end} spans");
        }
    }
}
