//! What one tenant keeps per trace and per span, and the keys its indexes are sorted by.

use std::sync::Arc;

use jaeger_remote_proto::otlp::trace::Span as OtlpSpan;
use remote_storage_core::{Resource, Scope, TraceId, UnixNanos};

/// Bits of a [`SpanSlot`] that hold the span's index within its trace.
const INDEX_BITS: u32 = 24;

/// Most spans one trace can hold (16.7 million).
pub(crate) const MAX_SPANS_PER_TRACE: usize = 1 << INDEX_BITS;

/// Most traces a tenant can ever create before it must be purged (10^12).
pub(crate) const MAX_TRACE_SEQUENCE: u64 = (1 << (64 - INDEX_BITS)) - 1;

/// Where a span lives: its trace's creation number, then its index within the trace, in one
/// `u64` so index entries stay small. Traces are numbered in creation order and evicted in
/// that order, so every slot below the oldest live trace's is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SpanSlot(u64);

impl SpanSlot {
    /// `index` must be at most [`MAX_SPANS_PER_TRACE`] and `sequence` at most
    /// [`MAX_TRACE_SEQUENCE`]; callers check both before storing.
    pub(crate) const fn new(sequence: u64, index: usize) -> Self {
        Self((sequence << INDEX_BITS) | (index as u64 & (MAX_SPANS_PER_TRACE as u64 - 1)))
    }

    /// The first slot of a trace.
    pub(crate) const fn first_of(sequence: u64) -> Self {
        Self::new(sequence, 0)
    }

    pub(crate) fn sequence(self) -> u64 {
        self.0 >> INDEX_BITS
    }

    pub(crate) fn index(self) -> usize {
        // Masked to 24 bits.
        usize::try_from(self.0 & (MAX_SPANS_PER_TRACE as u64 - 1)).unwrap_or(0)
    }
}

/// An entry of a time index: start first, so a range walks spans by time; the slot makes every
/// key unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SpanKey {
    pub(crate) start: UnixNanos,
    pub(crate) slot: SpanSlot,
}

impl SpanKey {
    pub(crate) fn lowest(start: UnixNanos) -> Self {
        Self {
            start,
            slot: SpanSlot(0),
        }
    }

    pub(crate) fn highest(start: UnixNanos) -> Self {
        Self {
            start,
            slot: SpanSlot(u64::MAX),
        }
    }
}

/// One stored span: the fields searches filter on, and everything else as compact bytes
/// (see `codec`). 64 bytes plus the compact bytes.
#[derive(Debug)]
pub(crate) struct StoredSpan {
    pub(crate) body: Box<[u8]>,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) span_id: [u8; 8],
    /// Meaningful when `has_parent`.
    pub(crate) parent_span_id: [u8; 8],
    pub(crate) service: u32,
    pub(crate) operation: u32,
    /// Index of the span's resource and scope in [`StoredTrace::groups`].
    pub(crate) group: u32,
    pub(crate) has_parent: bool,
}

impl StoredSpan {
    pub(crate) fn duration(&self) -> u64 {
        self.end - self.start
    }

    pub(crate) fn parent(&self) -> Option<[u8; 8]> {
        self.has_parent.then_some(self.parent_span_id)
    }

    /// Puts back the fields the compact bytes leave out.
    pub(crate) fn restore(&self, otlp: &mut OtlpSpan, trace_id: &TraceId, name: &str, kind: i32) {
        otlp.trace_id = trace_id.as_bytes().to_vec();
        otlp.span_id = self.span_id.to_vec();
        otlp.parent_span_id = self.parent().map(|id| id.to_vec()).unwrap_or_default();
        otlp.name = name.to_owned();
        otlp.kind = kind;
        otlp.start_time_unix_nano = self.start;
        otlp.end_time_unix_nano = self.end;
    }
}

/// A resource and scope some of a trace's spans share.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) resource: Arc<Resource>,
    pub(crate) scope: Arc<Scope>,
    /// Term hashes of the resource and scope attributes, which every span of the group
    /// carries for attribute searches.
    pub(crate) hashes: Box<[u64]>,
}

impl Group {
    /// Whether the group is this very resource and scope (the spans of one Export share them).
    pub(crate) fn is(&self, resource: &Arc<Resource>, scope: &Arc<Scope>) -> bool {
        Arc::ptr_eq(&self.resource, resource) && Arc::ptr_eq(&self.scope, scope)
    }

    /// Whether the group holds an equal resource and scope (another Export of the trace
    /// from the same process).
    pub(crate) fn equals(&self, resource: &Resource, scope: &Scope) -> bool {
        *self.resource == *resource && *self.scope == *scope
    }
}

/// One stored trace.
#[derive(Debug)]
pub(crate) struct StoredTrace {
    pub(crate) trace_id: TraceId,
    pub(crate) spans: Vec<StoredSpan>,
    pub(crate) start: UnixNanos,
    pub(crate) end: UnixNanos,
    /// Distinct services and operations of the trace: what evicting it releases.
    pub(crate) services: Vec<u32>,
    pub(crate) operations: Vec<u32>,
    /// The resource and scope pairs of the trace's spans.
    pub(crate) groups: Vec<Group>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_order_by_trace_then_index_and_read_back() {
        let a = SpanSlot::new(7, 3);
        let b = SpanSlot::new(7, 4);
        let c = SpanSlot::new(8, 0);
        assert!(a < b && b < c);
        assert_eq!((a.sequence(), a.index()), (7, 3));
        let last = SpanSlot::new(MAX_TRACE_SEQUENCE, MAX_SPANS_PER_TRACE - 1);
        assert_eq!(
            (last.sequence(), last.index()),
            (MAX_TRACE_SEQUENCE, MAX_SPANS_PER_TRACE - 1)
        );
        assert_eq!(SpanSlot::first_of(8), c);
    }
}
