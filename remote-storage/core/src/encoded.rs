//! Traces whose spans are already in their OTLP wire form, for reads that only send spans on:
//! a backend whose stored form encodes faster than it decodes into [`Span`](crate::Span)s (which allocate
//! every attribute) hands the server bytes instead, and the server frames them into chunks.

use std::ops::Range;
use std::sync::Arc;

use futures::stream::BoxStream;
use prost::Message as _;

use crate::error::StoreResult;
use crate::ids::TraceId;
use crate::model::{Resource, Scope, Trace};

/// Stream of encoded traces.
pub type EncodedTraceStream = BoxStream<'static, StoreResult<EncodedTrace>>;

/// One trace: each span as an encoded OTLP `Span` message (with its trace ID), in stored
/// order, with the resource and scope it belongs to.
///
/// The spans' bytes share one buffer, and spans name their resource and scope by index, so a
/// trace of 10,000 spans is a handful of allocations.
#[derive(Debug, Clone)]
pub struct EncodedTrace {
    trace_id: TraceId,
    bytes: Vec<u8>,
    /// Per span: where its bytes end in `bytes`, and its index in `groups`.
    spans: Vec<(usize, u32)>,
    groups: Vec<(Arc<Resource>, Arc<Scope>)>,
}

impl EncodedTrace {
    /// An empty trace.
    pub fn new(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            bytes: Vec::new(),
            spans: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Every span of `trace`, encoded with prost.
    pub fn from_trace(trace: &Trace) -> Self {
        let mut encoded = Self::new(trace.trace_id);
        encoded.bytes.reserve(
            trace
                .spans
                .iter()
                .map(|span| span.otlp().encoded_len())
                .sum(),
        );
        for span in &trace.spans {
            let written: Result<(), std::convert::Infallible> =
                encoded.push(span.resource(), span.scope(), |out| {
                    span.otlp().encode_raw(out);
                    Ok(())
                });
            let Ok(()) = written;
        }
        encoded
    }

    /// The trace's ID.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// Appends one span: `write` appends the fields of its OTLP `Span` message (the trace ID
    /// included) to the buffer it is given. If `write` fails, the trace is left as it was.
    ///
    /// Consecutive spans sharing a resource and scope (the same `Arc`s) share a group, which is
    /// how the server groups them into `ResourceSpans`/`ScopeSpans` too.
    pub fn push<E>(
        &mut self,
        resource: &Arc<Resource>,
        scope: &Arc<Scope>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let before = self.bytes.len();
        if let Err(error) = write(&mut self.bytes) {
            self.bytes.truncate(before);
            return Err(error);
        }
        let same_group = self
            .groups
            .last()
            .is_some_and(|(last_resource, last_scope)| {
                Arc::ptr_eq(last_resource, resource) && Arc::ptr_eq(last_scope, scope)
            });
        if !same_group {
            self.groups.push((Arc::clone(resource), Arc::clone(scope)));
        }
        // A trace never holds 2^32 groups: each needs a span, and spans are far larger.
        let group = u32::try_from(self.groups.len() - 1).unwrap_or(u32::MAX);
        self.spans.push((self.bytes.len(), group));
        Ok(())
    }

    /// Reserves room for `additional` more bytes of spans.
    pub fn reserve(&mut self, additional: usize) {
        self.bytes.reserve(additional);
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the trace has no span.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The encoded `Span` message of span `index`.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn span_bytes(&self, index: usize) -> &[u8] {
        &self.bytes[self.span_range(index)]
    }

    fn span_range(&self, index: usize) -> Range<usize> {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.spans[previous].0);
        start..self.spans[index].0
    }

    /// The resource of span `index`.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn resource(&self, index: usize) -> &Arc<Resource> {
        &self.groups[self.spans[index].1 as usize].0
    }

    /// The scope of span `index`.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn scope(&self, index: usize) -> &Arc<Scope> {
        &self.groups[self.spans[index].1 as usize].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::otlp::trace::Span as OtlpSpan;
    use crate::testing::{span, trace_of};

    #[test]
    fn spans_read_back_as_they_were_encoded_with_their_groups() {
        let first = span(4, 1, None, "svc-a", "root", 10, 90, false);
        let second = span(4, 2, Some(1), "svc-b", "child", 20, 30, true);
        let trace = trace_of(vec![first.clone(), second.clone(), first.clone()]);
        let encoded = EncodedTrace::from_trace(&trace);
        assert_eq!(encoded.trace_id(), trace.trace_id);
        assert_eq!(encoded.len(), 3);
        for (index, original) in trace.spans.iter().enumerate() {
            let decoded = OtlpSpan::decode(encoded.span_bytes(index)).expect("decodes");
            assert_eq!(&decoded, original.otlp());
            assert!(Arc::ptr_eq(encoded.resource(index), original.resource()));
            assert!(Arc::ptr_eq(encoded.scope(index), original.scope()));
        }
        // Three spans alternating between two resources make three groups.
        assert_eq!(encoded.groups.len(), 3);
    }

    #[test]
    fn a_failed_write_leaves_the_trace_as_it_was() {
        let kept = span(4, 1, None, "svc", "root", 10, 90, false);
        let mut encoded = EncodedTrace::from_trace(&trace_of(vec![kept.clone()]));
        let failed = encoded.push(kept.resource(), kept.scope(), |out| {
            out.extend_from_slice(b"half a span");
            Err("corrupt")
        });
        assert_eq!(failed, Err("corrupt"));
        assert_eq!(encoded.len(), 1);
        assert_eq!(
            encoded.span_bytes(0),
            kept.otlp().encode_to_vec().as_slice()
        );
    }
}
