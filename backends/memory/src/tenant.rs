//! One tenant's traces, kept compact, and the indexes that answer searches without decoding
//! every span.
//!
//! Per span the tenant keeps an index record ([`StoredSpan`]: times, IDs, service and
//! operation numbers) and compact bytes for the rest (string attributes as dictionary terms,
//! see `codec`), about 200 bytes for a span with a dozen attributes instead of the ~2 KB the
//! decoded OTLP message takes. Spans are decoded only to answer a read or to test a search
//! condition the index record cannot decide.

#[cfg(test)]
mod dependency_properties;
mod search;

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;

use hashbrown::HashMap;
use remote_storage_core::dependencies::{CallSite, DependencyCounter, split_at_minutes};
use remote_storage_core::{
    DependencyLink, DependencyQuery, EncodedTrace, Operation, Span, SpanId, StoreError,
    StoreResult, Trace, TraceId, UnixNanos,
};

use crate::blocks::SpanBlocks;
use crate::codec;
use crate::names::{Operations, Services};
use crate::records::{
    Group, MAX_SPANS_PER_TRACE, MAX_TRACE_SEQUENCE, SpanKey, SpanSlot, StoredSpan, StoredTrace,
};
use crate::rollups::{self, CallRollups, KeptCalls};
use crate::terms::TermDictionary;

/// All data of one tenant, bounded to `max_traces` traces.
#[derive(Debug)]
pub(crate) struct TenantStore {
    max_traces: NonZeroUsize,
    /// Live traces in creation order; the trace at position `i` has sequence number
    /// `first_sequence + i`, and the front is evicted first.
    traces: VecDeque<StoredTrace>,
    first_sequence: u64,
    sequence_by_id: HashMap<TraceId, u64>,
    /// Services, each with its spans by start time (the only time index: see `time_index`).
    services: Services,
    operations: Operations,
    /// Attribute terms.
    terms: TermDictionary,
    /// The attribute index.
    blocks: SpanBlocks,
    span_count: usize,
    /// Dependency calls by minute, kept as spans arrive.
    calls: CallRollups,
    /// Traces this write added spans to, with their span count before it: their new calls
    /// are counted when the write ends (or before an eviction, which must see them counted).
    unsettled: HashMap<u64, usize>,
    /// What the next write of a trace written more than once needs to count its calls.
    kept_calls: KeptCalls,
    /// Reused buffers of the write path.
    scratch_payload: Vec<u8>,
    scratch_hashes: Vec<u64>,
}

impl TenantStore {
    pub(crate) fn new(max_traces: NonZeroUsize) -> Self {
        Self {
            max_traces,
            traces: VecDeque::new(),
            first_sequence: 0,
            sequence_by_id: HashMap::new(),
            services: Services::default(),
            operations: Operations::default(),
            terms: TermDictionary::default(),
            blocks: SpanBlocks::default(),
            span_count: 0,
            calls: CallRollups::default(),
            unsettled: HashMap::new(),
            kept_calls: KeptCalls::default(),
            scratch_payload: Vec::new(),
            scratch_hashes: Vec::new(),
        }
    }

    pub(crate) fn trace_count(&self) -> usize {
        self.traces.len()
    }

    pub(crate) fn span_count(&self) -> usize {
        self.span_count
    }

    /// Appends spans; new traces may evict the oldest ones. Spans that would exceed a limit
    /// (spans per trace, traces per tenant lifetime) are not stored, and the error says so
    /// after every other span was.
    pub(crate) fn write(&mut self, spans: &[Span]) -> StoreResult<()> {
        // Spans per trace in this write: a trace's span vector is sized once per write
        // instead of doubling (most traces arrive in one write, and doubling left ~40 % of
        // every vector unused).
        let mut pending: HashMap<TraceId, usize> = HashMap::new();
        for span in spans {
            *pending.entry(span.trace_id()).or_default() += 1;
        }
        let mut refused: Option<StoreError> = None;
        for span in spans {
            let remaining = pending.get_mut(&span.trace_id()).map_or(1, |count| {
                let remaining = *count;
                *count = count.saturating_sub(1);
                remaining
            });
            if let Err(error) = self.append(span, remaining) {
                refused.get_or_insert(error);
            }
        }
        self.settle();
        refused.map_or(Ok(()), Err)
    }

    /// Counts the calls the spans appended since the last settle add.
    fn settle(&mut self) {
        let Self {
            traces,
            first_sequence,
            calls,
            unsettled,
            kept_calls,
            ..
        } = self;
        for (sequence, old_len) in unsettled.drain() {
            let Some(trace) = usize::try_from(sequence - *first_sequence)
                .ok()
                .and_then(|position| traces.get(position))
            else {
                continue;
            };
            let mut count = |start, parent, child| calls.add(start, parent, child);
            if old_len == 0 {
                // Most traces arrive in one write: nothing is kept for them.
                rollups::trace_calls(&trace.spans, count);
                continue;
            }
            let (held, added) = trace.spans.split_at(old_len.min(trace.spans.len()));
            let mut trace_calls = kept_calls.take(sequence, held);
            trace_calls.add(added, &mut count);
            kept_calls.put(sequence, trace_calls);
        }
    }

    fn oldest_live(&self) -> SpanSlot {
        SpanSlot::first_of(self.first_sequence)
    }

    fn trace_at(&self, sequence: u64) -> Option<&StoredTrace> {
        let position = usize::try_from(sequence.checked_sub(self.first_sequence)?).ok()?;
        self.traces.get(position)
    }

    /// The sequence number of the span's trace, creating the trace (and evicting the oldest)
    /// when it is new.
    fn sequence_for(&mut self, span: &Span) -> StoreResult<u64> {
        let trace_id = span.trace_id();
        if let Some(&sequence) = self.sequence_by_id.get(&trace_id) {
            return Ok(sequence);
        }
        // Numbers are never reused: refuse before evicting anything.
        if self.first_sequence + self.traces.len() as u64 > MAX_TRACE_SEQUENCE {
            return Err(StoreError::invalid_argument(
                "the memory backend numbered 10^12 traces for this tenant and must be purged \
                 or restarted to store new ones",
            ));
        }
        if self.traces.len() >= self.max_traces.get() {
            self.settle();
            self.evict_oldest();
        }
        let sequence = self.first_sequence + self.traces.len() as u64;
        self.traces.push_back(StoredTrace {
            trace_id,
            spans: Vec::new(),
            start: span.start(),
            end: span.end(),
            services: Vec::new(),
            operations: Vec::new(),
            groups: Vec::new(),
        });
        self.sequence_by_id.insert(trace_id, sequence);
        Ok(sequence)
    }

    /// Stores one span; `remaining` counts it and the spans of its trace after it in the
    /// same write.
    fn append(&mut self, span: &Span, remaining: usize) -> StoreResult<()> {
        let sequence = self.sequence_for(span)?;
        let Self {
            traces,
            first_sequence,
            services,
            operations,
            terms,
            blocks,
            span_count,
            scratch_payload,
            scratch_hashes,
            unsettled,
            ..
        } = self;
        let Some(trace) = usize::try_from(sequence - *first_sequence)
            .ok()
            .and_then(|position| traces.get_mut(position))
        else {
            return Ok(());
        };
        let index = trace.spans.len();
        if index >= MAX_SPANS_PER_TRACE {
            return Err(StoreError::invalid_argument(format!(
                "trace {} already holds {MAX_SPANS_PER_TRACE} spans, the most the memory \
                 backend keeps per trace",
                trace.trace_id
            )));
        }
        let slot = SpanSlot::new(sequence, index);
        unsettled.entry(sequence).or_insert(index);

        let service = services.id_or_insert(span.service_name());
        if !trace.services.contains(&service) {
            trace.services.push(service);
            services.hold(service);
        }
        let operation = operations.id_or_insert(service, span.name(), span.otlp().kind);
        if !trace.operations.contains(&operation) {
            trace.operations.push(operation);
            operations.hold(operation);
        }

        // A trace sent in many Exports gets new resource and scope objects with each one:
        // equal ones share a group, or a trace sent span by span would keep a group per span
        // and search them all for each.
        let (resource, scope) = (span.resource(), span.scope());
        let found = trace
            .groups
            .iter()
            .rposition(|group| group.is(resource, scope))
            .or_else(|| {
                let position = trace
                    .groups
                    .iter()
                    .rposition(|group| group.equals(resource, scope))?;
                // The rest of this Export's spans then match by pointer.
                let group = &mut trace.groups[position];
                group.resource = Arc::clone(resource);
                group.scope = Arc::clone(scope);
                Some(position)
            });
        let group = match found {
            Some(group) => group,
            None => {
                let resource = &span.resource().otlp().attributes;
                let hashes = resource
                    .iter()
                    .chain(&span.scope().otlp().attributes)
                    .map(|attribute| terms.hash_attribute(attribute))
                    .collect();
                trace.groups.push(Group {
                    resource: Arc::clone(span.resource()),
                    scope: Arc::clone(span.scope()),
                    hashes,
                });
                trace.groups.len() - 1
            }
        };

        scratch_payload.clear();
        scratch_hashes.clear();
        codec::encode_span(span.otlp(), terms, scratch_hashes, scratch_payload);
        if let Some(group) = trace.groups.get(group) {
            scratch_hashes.extend_from_slice(&group.hashes);
        }
        dedup_hashes(scratch_hashes);
        blocks.add(slot, scratch_hashes);

        let key = SpanKey {
            start: span.start(),
            slot,
        };
        if let Some(entry) = services.get_mut(service) {
            entry.spans.insert(key);
        }
        trace.start = trace.start.min(span.start());
        trace.end = trace.end.max(span.end());
        if trace.spans.len() == trace.spans.capacity() {
            // Sized to the write's spans of the trace; a trace that keeps growing across
            // writes grows by at least a quarter, so one sent span by span is not copied
            // whole for every span.
            trace
                .spans
                .reserve_exact(remaining.max(trace.spans.len() / 4).max(1));
        }
        let parent = span.parent_span_id();
        trace.spans.push(StoredSpan {
            body: codec::span_body(scratch_hashes, scratch_payload),
            start: span.start().0,
            end: span.end().0,
            span_id: *span.span_id().as_bytes(),
            parent_span_id: parent.map_or([0; 8], |id| *id.as_bytes()),
            service,
            operation,
            // At most one group per span, so the count fits whenever the span count does.
            group: u32::try_from(group).unwrap_or(u32::MAX),
            has_parent: parent.is_some(),
        });
        *span_count += 1;
        Ok(())
    }

    fn evict_oldest(&mut self) {
        let Some(trace) = self.traces.pop_front() else {
            return;
        };
        let sequence = self.first_sequence;
        self.first_sequence += 1;
        self.sequence_by_id.remove(&trace.trace_id);
        self.kept_calls.forget(sequence);
        let calls = &mut self.calls;
        rollups::trace_calls(&trace.spans, |start, parent, child| {
            calls.remove(start, parent, child);
        });
        for (index, span) in trace.spans.iter().enumerate() {
            let key = SpanKey {
                start: UnixNanos(span.start),
                slot: SpanSlot::new(sequence, index),
            };
            if let Some(entry) = self.services.get_mut(span.service) {
                entry.spans.remove(&key);
            }
        }
        self.span_count -= trace.spans.len();
        for service in trace.services {
            self.services.release(service);
        }
        for operation in trace.operations {
            self.operations.release(operation);
        }
        self.blocks.drop_evicted(self.oldest_live());
    }

    pub(crate) fn services(&self) -> Vec<String> {
        self.services.names()
    }

    pub(crate) fn operations(&self, service: &str, span_kind: Option<&str>) -> Vec<Operation> {
        self.services
            .id(service)
            .map(|id| self.operations.of_service(id, span_kind))
            .unwrap_or_default()
    }

    /// A stored trace, decoded.
    pub(crate) fn trace(&self, trace_id: &TraceId) -> StoreResult<Option<Trace>> {
        let Some(trace) = self
            .sequence_by_id
            .get(trace_id)
            .and_then(|&sequence| self.trace_at(sequence))
        else {
            return Ok(None);
        };
        let spans = trace
            .spans
            .iter()
            .map(|span| self.decode(trace, span))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(Trace {
            trace_id: *trace_id,
            spans,
        }))
    }

    /// A trace with its spans written as OTLP bytes straight from their compact form (see
    /// [`codec::write_otlp_span`]): what GetTraces sends, without building model spans.
    pub(crate) fn encoded_trace(&self, trace_id: &TraceId) -> StoreResult<Option<EncodedTrace>> {
        let Some(trace) = self
            .sequence_by_id
            .get(trace_id)
            .and_then(|&sequence| self.trace_at(sequence))
        else {
            return Ok(None);
        };
        let mut encoded = EncodedTrace::new(*trace_id);
        // Attributes come back from the dictionary, so a span's OTLP bytes are about twice
        // its compact bytes; a close guess saves regrowing a multi-megabyte buffer.
        encoded.reserve(
            trace
                .spans
                .iter()
                .map(|span| 2 * span.body.len() + 64)
                .sum(),
        );
        for span in &trace.spans {
            let (name, kind) = self
                .operations
                .get(span.operation)
                .map_or(("", 0), |operation| (&*operation.name, operation.kind));
            let group = trace.groups.get(span.group as usize).ok_or_else(|| {
                StoreError::internal(
                    "memory backend: a stored span has no resource",
                    format!("group {} of {}", span.group, trace.groups.len()),
                )
            })?;
            let parent = span.parent();
            let header = codec::SpanHeader {
                trace_id: trace_id.as_bytes(),
                span_id: &span.span_id,
                parent_span_id: parent.as_ref(),
                name,
                kind,
                start: span.start,
                end: span.end,
            };
            encoded.push(&group.resource, &group.scope, |out| {
                codec::write_otlp_span(&header, &span.body, &self.terms, out)
            })?;
        }
        Ok(Some(encoded))
    }

    /// Rebuilds the model span from its index record and compact bytes.
    fn decode(&self, trace: &StoredTrace, span: &StoredSpan) -> StoreResult<Span> {
        let mut otlp = codec::decode_span(&span.body, &self.terms)?;
        let (name, kind) = self
            .operations
            .get(span.operation)
            .map_or(("", 0), |operation| (&*operation.name, operation.kind));
        span.restore(&mut otlp, &trace.trace_id, name, kind);
        let group = trace.groups.get(span.group as usize).ok_or_else(|| {
            StoreError::internal(
                "memory backend: a stored span has no resource",
                format!("group {} of {}", span.group, trace.groups.len()),
            )
        })?;
        Span::new(Arc::clone(&group.resource), Arc::clone(&group.scope), otlp)
    }

    /// Links of the calls whose callee starts inside the window: the window's whole minutes
    /// from the rollups, its partial minutes at either edge from the spans.
    pub(crate) fn dependencies(&self, window: &DependencyQuery) -> Vec<DependencyLink> {
        let mut counter = DependencyCounter::default();
        let split = split_at_minutes(window);
        for edge in &split.edges {
            self.count_from_spans(edge, &mut counter);
        }
        if let Some(whole) = split.whole {
            for (parent, child, count) in self.calls.calls(whole) {
                counter.add_calls(self.services.name(parent), self.services.name(child), count);
            }
        }
        counter.finish()
    }

    /// Links counted from the spans alone (what the rollups must always equal).
    #[cfg(test)]
    pub(crate) fn dependencies_from_spans(&self, window: &DependencyQuery) -> Vec<DependencyLink> {
        let mut counter = DependencyCounter::default();
        self.count_from_spans(window, &mut counter);
        counter.finish()
    }

    /// Counts the calls whose callee starts inside the window, trace by trace.
    fn count_from_spans(&self, window: &DependencyQuery, counter: &mut DependencyCounter) {
        let lower = SpanKey::lowest(window.start);
        let upper = SpanKey::highest(window.end);
        let mut counted: HashSet<u64> = HashSet::new();
        let keys = self
            .services
            .indexes()
            .flat_map(|index| index.range(lower..=upper));
        for key in keys {
            let sequence = key.slot.sequence();
            if !counted.insert(sequence) {
                continue;
            }
            if let Some(trace) = self.trace_at(sequence) {
                counter.add_call_sites(
                    trace.spans.iter().map(|span| CallSite {
                        span_id: SpanId(span.span_id),
                        parent_span_id: span.parent().map(SpanId),
                        service: self.services.name(span.service),
                        start: UnixNanos(span.start),
                    }),
                    window,
                );
            }
        }
    }
}

/// Most hashes deduplicated by comparing each with those kept before it; a span with more
/// terms is sorted instead, so a huge span costs n log n, not n².
const SMALL_DEDUP: usize = 64;

/// Drops repeated hashes (a term in both the span's and its resource's attributes), so each
/// term counts once in its block and has one fingerprint. Order does not matter to either.
fn dedup_hashes(hashes: &mut Vec<u64>) {
    if hashes.len() > SMALL_DEDUP {
        hashes.sort_unstable();
        hashes.dedup();
        return;
    }
    let mut kept = 0;
    for index in 0..hashes.len() {
        let hash = hashes[index];
        if !hashes[..kept].contains(&hash) {
            hashes[kept] = hash;
            kept += 1;
        }
    }
    hashes.truncate(kept);
}

#[cfg(test)]
mod tests {
    use remote_storage_core::testing::span;

    use super::*;

    #[test]
    fn repeated_hashes_are_dropped_whatever_the_count() {
        for len in [0, 1, 5, SMALL_DEDUP, SMALL_DEDUP + 1, 500] {
            let mut hashes: Vec<u64> = (0..len as u64).map(|i| i % 7 * 1_000 + i % 3).collect();
            let mut expected = hashes.clone();
            expected.sort_unstable();
            expected.dedup();
            dedup_hashes(&mut hashes);
            hashes.sort_unstable();
            assert_eq!(hashes, expected, "{len} hashes");
        }
    }

    #[test]
    fn a_trace_sent_span_by_span_keeps_one_group_per_resource() {
        let mut store = TenantStore::new(NonZeroUsize::new(10).expect("non-zero"));
        // Every `span` call builds its own resource and scope objects, as every Export does.
        for (id, service) in [(1, "a"), (2, "a"), (3, "b"), (4, "a"), (5, "b")] {
            let spans = [span(7, id, Some(1), service, "op", 1_000, 2_000, false)];
            store.write(&spans).expect("stored");
        }
        let trace = store.trace_at(store.first_sequence).expect("the trace");
        assert_eq!(trace.spans.len(), 5);
        assert_eq!(trace.groups.len(), 2);
        let services: Vec<&str> = trace
            .spans
            .iter()
            .map(|stored| {
                let group = usize::try_from(stored.group).expect("a group index");
                trace.groups[group].resource.service_name()
            })
            .collect();
        assert_eq!(services, ["a", "a", "b", "a", "b"]);
    }
}
