//! One tenant's traces and the indexes that answer searches without scanning every span.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;

use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::{
    DependencyLink, DependencyQuery, FoundTraceId, Operation, Span, Trace, TraceId, TraceQuery,
    UnixNanos,
};

/// Position of one span: its start time first, so a range over the set walks spans by time.
/// The trace ID and the span's index within the trace make every key unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SpanKey {
    start: UnixNanos,
    trace_id: TraceId,
    index: u32,
}

impl SpanKey {
    /// The largest key at `start`, so `..=upper(max)` includes every span starting at `max`.
    fn upper(start: UnixNanos) -> Self {
        Self {
            start,
            trace_id: TraceId([u8::MAX; 16]),
            index: u32::MAX,
        }
    }

    fn lower(start: UnixNanos) -> Self {
        Self {
            start,
            trace_id: TraceId([0; 16]),
            index: 0,
        }
    }
}

/// A service's operation as recorded in the operations index.
type ServiceOperation = (Arc<str>, Operation);

#[derive(Debug)]
struct StoredTrace {
    spans: Vec<Span>,
    start: UnixNanos,
    end: UnixNanos,
    /// Distinct services and operations this trace contributes to the indexes, so that evicting
    /// it can release exactly those references.
    services: HashSet<Arc<str>>,
    operations: HashSet<ServiceOperation>,
}

/// All data of one tenant, bounded to `max_traces` traces.
#[derive(Debug)]
pub(crate) struct TenantStore {
    max_traces: NonZeroUsize,
    traces: HashMap<TraceId, StoredTrace>,
    /// Trace IDs in creation order; the front is evicted first.
    creation_order: VecDeque<TraceId>,
    /// Every span by start time.
    spans_by_start: BTreeSet<SpanKey>,
    /// Every span by service, then start time.
    spans_by_service: HashMap<Arc<str>, BTreeSet<SpanKey>>,
    /// Service name → number of stored traces holding it.
    service_refs: HashMap<Arc<str>, usize>,
    /// Service name → operation → number of stored traces holding it.
    operation_refs: HashMap<Arc<str>, HashMap<Operation, usize>>,
    span_count: usize,
}

impl TenantStore {
    pub(crate) fn new(max_traces: NonZeroUsize) -> Self {
        Self {
            max_traces,
            traces: HashMap::new(),
            creation_order: VecDeque::new(),
            spans_by_start: BTreeSet::new(),
            spans_by_service: HashMap::new(),
            service_refs: HashMap::new(),
            operation_refs: HashMap::new(),
            span_count: 0,
        }
    }

    pub(crate) fn trace_count(&self) -> usize {
        self.traces.len()
    }

    pub(crate) fn span_count(&self) -> usize {
        self.span_count
    }

    /// Appends spans; new traces may evict the oldest ones.
    pub(crate) fn write(&mut self, spans: Vec<Span>) {
        for span in spans {
            self.append(span);
        }
    }

    fn append(&mut self, span: Span) {
        let trace_id = span.trace_id();
        if !self.traces.contains_key(&trace_id) {
            if self.traces.len() >= self.max_traces.get() {
                self.evict_oldest();
            }
            self.creation_order.push_back(trace_id);
            self.traces.insert(
                trace_id,
                StoredTrace {
                    spans: Vec::new(),
                    start: span.start(),
                    end: span.end(),
                    services: HashSet::new(),
                    operations: HashSet::new(),
                },
            );
        }
        let Some(trace) = self.traces.get_mut(&trace_id) else {
            return;
        };
        let Ok(index) = u32::try_from(trace.spans.len()) else {
            // 4 billion spans in one trace: refuse to index more rather than alias keys.
            return;
        };
        let key = SpanKey {
            start: span.start(),
            trace_id,
            index,
        };
        let service: Arc<str> = match self.service_refs.get_key_value(span.service_name()) {
            Some((existing, _)) => Arc::clone(existing),
            None => Arc::from(span.service_name()),
        };
        if trace.services.insert(Arc::clone(&service)) {
            *self.service_refs.entry(Arc::clone(&service)).or_default() += 1;
        }
        let service_operation = (
            Arc::clone(&service),
            Operation {
                name: span.name().to_owned(),
                span_kind: span_kind_name(span.kind()).to_owned(),
            },
        );
        // Most spans repeat an operation their trace already holds: copy it only when new.
        if !trace.operations.contains(&service_operation) {
            *self
                .operation_refs
                .entry(Arc::clone(&service))
                .or_default()
                .entry(service_operation.1.clone())
                .or_default() += 1;
            trace.operations.insert(service_operation);
        }
        self.spans_by_start.insert(key);
        self.spans_by_service
            .entry(service)
            .or_default()
            .insert(key);
        trace.start = trace.start.min(span.start());
        trace.end = trace.end.max(span.end());
        trace.spans.push(span);
        self.span_count += 1;
    }

    fn evict_oldest(&mut self) {
        let Some(trace_id) = self.creation_order.pop_front() else {
            return;
        };
        let Some(trace) = self.traces.remove(&trace_id) else {
            return;
        };
        for (index, span) in trace.spans.iter().enumerate() {
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            let key = SpanKey {
                start: span.start(),
                trace_id,
                index,
            };
            self.spans_by_start.remove(&key);
            if let Some(keys) = self.spans_by_service.get_mut(span.service_name()) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.spans_by_service.remove(span.service_name());
                }
            }
        }
        self.span_count -= trace.spans.len();
        for service in trace.services {
            release(&mut self.service_refs, &service);
        }
        for (service, operation) in trace.operations {
            if let Some(operations) = self.operation_refs.get_mut(&service) {
                release(operations, &operation);
                if operations.is_empty() {
                    self.operation_refs.remove(&service);
                }
            }
        }
    }

    pub(crate) fn services(&self) -> Vec<String> {
        let mut services: Vec<String> = self
            .service_refs
            .keys()
            .map(|service| service.to_string())
            .collect();
        services.sort_unstable();
        services
    }

    pub(crate) fn operations(&self, service: &str, span_kind: Option<&str>) -> Vec<Operation> {
        let Some(operations) = self.operation_refs.get(service) else {
            return Vec::new();
        };
        let mut found: Vec<Operation> = operations
            .keys()
            .filter(|operation| span_kind.is_none_or(|kind| operation.span_kind == kind))
            .cloned()
            .collect();
        found.sort_unstable();
        found
    }

    /// A copy (cheap: reference counts) of a stored trace.
    pub(crate) fn trace(&self, trace_id: &TraceId) -> Option<Trace> {
        self.traces.get(trace_id).map(|stored| Trace {
            trace_id: *trace_id,
            spans: stored.spans.clone(),
        })
    }

    /// Walks candidate spans newest first within the query's window (one service's index when
    /// the query names a service) and keeps each trace the first time one of its spans matches,
    /// so results are ranked by their newest matching span.
    pub(crate) fn find_trace_ids(&self, query: &TraceQuery) -> Vec<FoundTraceId> {
        let candidates = match query.service_name.as_deref() {
            Some(service) => match self.spans_by_service.get(service) {
                Some(keys) => keys,
                None => return Vec::new(),
            },
            None => &self.spans_by_start,
        };
        let lower = SpanKey::lower(query.start_time_min.unwrap_or_default());
        let upper = SpanKey::upper(query.start_time_max.unwrap_or(UnixNanos(u64::MAX)));
        if upper < lower {
            return Vec::new();
        }
        let matcher = SpanMatcher::new(query);
        let depth = query.search_depth.get();
        let mut seen: HashSet<TraceId> = HashSet::new();
        let mut found = Vec::new();
        for key in candidates.range(lower..=upper).rev() {
            if seen.contains(&key.trace_id) {
                continue;
            }
            let Some(trace) = self.traces.get(&key.trace_id) else {
                continue;
            };
            let Some(span) = usize::try_from(key.index)
                .ok()
                .and_then(|index| trace.spans.get(index))
            else {
                continue;
            };
            if !matcher.matches(span) {
                continue;
            }
            seen.insert(key.trace_id);
            found.push(FoundTraceId {
                trace_id: key.trace_id,
                start: Some(trace.start),
                end: Some(trace.end),
            });
            if found.len() >= depth {
                break;
            }
        }
        found
    }

    /// Links from the traces that have a span starting inside the window.
    pub(crate) fn dependencies(&self, window: &DependencyQuery) -> Vec<DependencyLink> {
        let lower = SpanKey::lower(window.start);
        let upper = SpanKey::upper(window.end);
        let mut counted: HashSet<TraceId> = HashSet::new();
        let mut counter = DependencyCounter::default();
        for key in self.spans_by_start.range(lower..=upper) {
            if !counted.insert(key.trace_id) {
                continue;
            }
            if let Some(trace) = self.traces.get(&key.trace_id) {
                counter.add_spans(&trace.spans, window);
            }
        }
        counter.finish()
    }
}

fn release<Q, K>(counts: &mut HashMap<Q, usize>, key: &K)
where
    Q: std::hash::Hash + Eq + std::borrow::Borrow<K>,
    K: std::hash::Hash + Eq + ?Sized,
{
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}
