//! Writes the `TracesData` wire bytes of a run of spans directly, grouping consecutive spans
//! that share a resource and scope exactly as `resource_spans_from_spans` does, so the bytes are
//! those of `TracesData { resource_spans: resource_spans_from_spans(spans) }.encode_to_vec()`
//! without cloning any span into a message first. The spans are either model [`Span`]s or an
//! [`EncodedTrace`]'s ready-made span bytes.

use std::ops::Range;
use std::sync::Arc;

use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use remote_storage_core::{EncodedTrace, Resource, Scope, Span};

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

/// The spans of one trace, as the encoder and the chunk sizing see them.
pub(crate) trait SpanRun: Sync {
    /// Number of spans.
    fn span_count(&self) -> usize;
    /// The resource of span `index`.
    fn resource(&self, index: usize) -> &Arc<Resource>;
    /// The scope of span `index`.
    fn scope(&self, index: usize) -> &Arc<Scope>;
    /// The encoded length of span `index`'s `Span` message.
    fn span_len(&self, index: usize) -> usize;
    /// Appends span `index`'s `Span` message (without its tag and length).
    fn write_span(&self, index: usize, out: &mut Vec<u8>);
}

impl SpanRun for [Span] {
    fn span_count(&self) -> usize {
        self.len()
    }

    fn resource(&self, index: usize) -> &Arc<Resource> {
        self[index].resource()
    }

    fn scope(&self, index: usize) -> &Arc<Scope> {
        self[index].scope()
    }

    fn span_len(&self, index: usize) -> usize {
        self[index].otlp().encoded_len()
    }

    fn write_span(&self, index: usize, out: &mut Vec<u8>) {
        self[index].otlp().encode_raw(out);
    }
}

impl SpanRun for EncodedTrace {
    fn span_count(&self) -> usize {
        self.len()
    }

    fn resource(&self, index: usize) -> &Arc<Resource> {
        EncodedTrace::resource(self, index)
    }

    fn scope(&self, index: usize) -> &Arc<Scope> {
        EncodedTrace::scope(self, index)
    }

    fn span_len(&self, index: usize) -> usize {
        self.span_bytes(index).len()
    }

    fn write_span(&self, index: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(self.span_bytes(index));
    }
}

/// Spans `range` of `spans`, with each one's encoded length (`lens[i]` is span
/// `range.start + i`'s).
struct Run<'a, S: ?Sized> {
    spans: &'a S,
    start: usize,
    lens: &'a [usize],
}

// Not derived: a derive would require `S: Copy`, and only the references are copied.
impl<S: ?Sized> Clone for Run<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized> Copy for Run<'_, S> {}

impl<'a, S: SpanRun + ?Sized> Run<'a, S> {
    fn end(&self) -> usize {
        self.start + self.lens.len()
    }

    fn len_of(&self, index: usize) -> usize {
        self.lens[index - self.start]
    }

    fn sub(&self, range: Range<usize>) -> Self {
        Self {
            spans: self.spans,
            start: range.start,
            lens: &self.lens[range.start - self.start..range.end - self.start],
        }
    }

    /// Consecutive runs of spans for which `same(first, other)` holds.
    fn groups(
        self,
        same: impl Fn(&S, usize, usize) -> bool + 'a,
    ) -> impl Iterator<Item = Run<'a, S>> + 'a {
        let mut next = self.start;
        std::iter::from_fn(move || {
            let first = next;
            if first >= self.end() {
                return None;
            }
            next = (first + 1..self.end())
                .find(|&index| !same(self.spans, first, index))
                .unwrap_or(self.end());
            Some(self.sub(first..next))
        })
    }

    fn resource_groups(self) -> impl Iterator<Item = Run<'a, S>> + 'a {
        self.groups(|spans, first, index| Arc::ptr_eq(spans.resource(first), spans.resource(index)))
    }

    fn scope_groups(self) -> impl Iterator<Item = Run<'a, S>> + 'a {
        self.groups(|spans, first, index| Arc::ptr_eq(spans.scope(first), spans.scope(index)))
    }
}

/// Appends the encoded `TracesData` of spans `range` of `spans` to `out`; `span_lens` holds
/// each of those spans' [`SpanRun::span_len`] (the caller has them from sizing the chunk).
pub(crate) fn encode_traces_data<S: SpanRun + ?Sized>(
    spans: &S,
    range: Range<usize>,
    span_lens: &[usize],
    out: &mut Vec<u8>,
) {
    debug_assert_eq!(range.len(), span_lens.len());
    out.reserve(
        span_lens
            .iter()
            .map(|&len| delimited_len(1, len))
            .sum::<usize>()
            + 256,
    );
    let run = Run {
        spans,
        start: range.start,
        lens: span_lens,
    };
    for group in run.resource_groups() {
        encode_resource_spans(group, out);
    }
}

fn scope_spans_len<S: SpanRun + ?Sized>(run: Run<'_, S>) -> usize {
    let scope = run.spans.scope(run.start);
    delimited_len(field::RESOURCE_OR_SCOPE, scope.otlp().encoded_len())
        + run
            .lens
            .iter()
            .map(|&len| delimited_len(field::SCOPE_SPANS_OR_SPANS, len))
            .sum::<usize>()
        + string_len(field::SCHEMA_URL, scope.schema_url())
}

fn encode_resource_spans<S: SpanRun + ?Sized>(run: Run<'_, S>, out: &mut Vec<u8>) {
    let resource = run.spans.resource(run.start);
    let resource_len = resource.otlp().encoded_len();
    let payload_len = delimited_len(field::RESOURCE_OR_SCOPE, resource_len)
        + run
            .scope_groups()
            .map(|group| delimited_len(field::SCOPE_SPANS_OR_SPANS, scope_spans_len(group)))
            .sum::<usize>()
        + string_len(field::SCHEMA_URL, resource.schema_url());

    write_delimiter(field::RESOURCE_SPANS, payload_len, out);
    write_delimiter(field::RESOURCE_OR_SCOPE, resource_len, out);
    resource.otlp().encode_raw(out);
    for group in run.scope_groups() {
        let scope = run.spans.scope(group.start);
        write_delimiter(field::SCOPE_SPANS_OR_SPANS, scope_spans_len(group), out);
        write_delimiter(field::RESOURCE_OR_SCOPE, scope.otlp().encoded_len(), out);
        scope.otlp().encode_raw(out);
        for index in group.start..group.end() {
            write_delimiter(field::SCOPE_SPANS_OR_SPANS, group.len_of(index), out);
            run.spans.write_span(index, out);
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
            encode_traces_data(chunk, 0..end, &lens, &mut bytes);
            let expected = TracesData {
                resource_spans: resource_spans_from_spans(chunk),
            }
            .encode_to_vec();
            assert_eq!(bytes, expected, "first {end} spans");
            // The same spans as ready-made bytes, from an offset inside a longer trace.
            let trace = remote_storage_core::Trace {
                trace_id: remote_storage_core::TraceId([1; 16]),
                spans: spans.to_vec(),
            };
            let encoded = EncodedTrace::from_trace(&trace);
            for start in 0..=end {
                let mut from_bytes = Vec::new();
                let lens: Vec<usize> = (start..end).map(|i| encoded.span_len(i)).collect();
                encode_traces_data(&encoded, start..end, &lens, &mut from_bytes);
                let expected = TracesData {
                    resource_spans: resource_spans_from_spans(&spans[start..end]),
                }
                .encode_to_vec();
                assert_eq!(from_bytes, expected, "encoded spans {start}..{end}");
            }
        }
    }
}
