//! Reads: whole traces, searches, services and operations, summaries and dependencies.
//! Synchronous like [`crate::engine`]; called from blocking tasks only.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::iter::Rev;
use std::sync::Arc;

use prost::Message as _;
use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::matcher::{AttributeCondition, SpanMatcher};
use remote_storage_core::model::{Resource, SERVICE_NAME_KEY, Scope, span_kind_name};
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::span::SpanKind;
use remote_storage_core::proto::otlp::trace::status::StatusCode;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status};
use remote_storage_core::{
    DependencyLink, DependencyQuery, Operation, Span, Tenant, Trace, TraceId, TraceQuery,
    TraceSummary, UnixNanos,
};

use crate::engine::{Engine, Partition};
use crate::error::LsmError;
use crate::keys::{self, ContentId, SPAN_REF_LEN, SpanRef};
use crate::records::{self, FragmentEntry};

/// A duration-index probe that finds more candidates than this falls back to the time-ordered
/// service index (which can stop early), so a loose duration bound never means a huge sort.
const DURATION_PROBE_BUDGET: usize = 20_000;
/// Decoded resources and scopes kept per read; reset beyond this.
const CONTENT_CACHE_LIMIT: usize = 4_096;

/// Decoded resources and scopes, shared by the spans of one read so each is decoded once and
/// spans of one resource share one `Arc` (and regroup into one OTLP `ResourceSpans`).
#[derive(Default)]
pub(crate) struct ContentCache {
    resources: HashMap<ContentId, Arc<Resource>>,
    scopes: HashMap<ContentId, Arc<Scope>>,
}

impl ContentCache {
    fn resource(
        &mut self,
        partition: &Partition,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Arc<Resource>, LsmError> {
        if let Some(found) = self.resources.get(id) {
            return Ok(Arc::clone(found));
        }
        let value = partition
            .index
            .get(keys::resource_key(tenant, id))?
            .ok_or_else(|| LsmError::corrupt("span refers to a missing resource record"))?;
        let resource = Arc::new(records::decode_resource(&value)?);
        if self.resources.len() >= CONTENT_CACHE_LIMIT {
            self.resources.clear();
        }
        self.resources.insert(*id, Arc::clone(&resource));
        Ok(resource)
    }

    fn scope(
        &mut self,
        partition: &Partition,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Arc<Scope>, LsmError> {
        if let Some(found) = self.scopes.get(id) {
            return Ok(Arc::clone(found));
        }
        let value = partition
            .index
            .get(keys::scope_key(tenant, id))?
            .ok_or_else(|| LsmError::corrupt("span refers to a missing scope record"))?;
        let scope = Arc::new(records::decode_scope(&value)?);
        if self.scopes.len() >= CONTENT_CACHE_LIMIT {
            self.scopes.clear();
        }
        self.scopes.insert(*id, Arc::clone(&scope));
        Ok(scope)
    }

    fn span(
        &mut self,
        partition: &Partition,
        tenant: &Tenant,
        value: &[u8],
    ) -> Result<Span, LsmError> {
        let record = records::decode_span(value)?;
        let resource = self.resource(partition, tenant, &record.resource)?;
        let scope = self.scope(partition, tenant, &record.scope)?;
        let otlp = OtlpSpan::decode(record.span)?;
        Span::new(resource, scope, otlp).map_err(LsmError::InvalidSpan)
    }
}

/// How a search finds its candidate spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// No span can match (e.g. `error=maybe`).
    Nothing,
    /// Entries `prefix ‖ span ref`, walked newest first.
    ByTime(Vec<u8>),
    /// Entries `prefix ‖ duration ‖ span ref` with the duration in `min..=max`, sorted by time
    /// in memory; falls back to `fallback` (walked by time) when there are too many.
    ByDuration {
        prefix: Vec<u8>,
        min: u64,
        max: u64,
        fallback: Vec<u8>,
    },
}

/// Picks the index expected to yield the fewest candidates. Every plan yields a superset of
/// the matching spans; [`SpanMatcher`] then decides, so results equal the memory backend's.
pub(crate) fn plan(tenant: &Tenant, query: &TraceQuery, conditions: &[AttributeCondition]) -> Plan {
    if conditions.contains(&AttributeCondition::Error(None)) {
        return Plan::Nothing;
    }
    if let (Some(service), Some(operation)) = (&query.service_name, &query.operation_name) {
        return Plan::ByTime(keys::operation_prefix(tenant, service, operation));
    }
    for condition in conditions {
        match condition {
            // The span's service is its resource's `service.name`.
            AttributeCondition::Resource { key, value } if key == SERVICE_NAME_KEY => {
                return Plan::ByTime(keys::service_prefix(tenant, value));
            }
            AttributeCondition::Resource { key, value }
            | AttributeCondition::Anywhere { key, value }
                if key != SERVICE_NAME_KEY =>
            {
                return Plan::ByTime(keys::attribute_prefix(tenant, key, value));
            }
            _ => {}
        }
    }
    if conditions.contains(&AttributeCondition::Error(Some(true))) {
        return Plan::ByTime(keys::error_prefix(tenant));
    }
    if let Some(service) = &query.service_name {
        let fallback = keys::service_prefix(tenant, service);
        return match query.duration_min {
            Some(min) => Plan::ByDuration {
                prefix: keys::duration_prefix(tenant, service),
                min,
                max: query.duration_max.unwrap_or(u64::MAX),
                fallback,
            },
            None => Plan::ByTime(fallback),
        };
    }
    Plan::ByTime(keys::global_prefix(tenant))
}

/// Index entries of several partitions merged newest first by their span-ref tail.
struct NewestFirst {
    iterators: Vec<(usize, Rev<fjall::Iter>)>,
    heads: Vec<Option<fjall::UserKey>>,
    failed: Option<LsmError>,
}

impl NewestFirst {
    fn new(iterators: Vec<(usize, Rev<fjall::Iter>)>) -> Self {
        let mut merged = Self {
            heads: Vec::with_capacity(iterators.len()),
            iterators,
            failed: None,
        };
        for position in 0..merged.iterators.len() {
            let head = merged.pull(position);
            merged.heads.push(head);
        }
        merged
    }

    fn pull(&mut self, position: usize) -> Option<fjall::UserKey> {
        let (_, iterator) = self.iterators.get_mut(position)?;
        match iterator.next()?.key() {
            Ok(key) => Some(key),
            Err(error) => {
                self.failed = Some(error.into());
                None
            }
        }
    }
}

impl Iterator for NewestFirst {
    type Item = Result<(usize, SpanRef), LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.failed.take() {
            return Some(Err(error));
        }
        let mut best: Option<(usize, &[u8])> = None;
        for (position, head) in self.heads.iter().enumerate() {
            let Some(key) = head else { continue };
            let tail = keys::key_tail(key);
            if best.is_none_or(|(_, best_tail)| tail.cmp(best_tail) == Ordering::Greater) {
                best = Some((position, tail));
            }
        }
        let (position, _) = best?;
        let key = self.heads.get_mut(position)?.take()?;
        let next_head = self.pull(position);
        if let Some(slot) = self.heads.get_mut(position) {
            *slot = next_head;
        }
        let partition = self.iterators.get(position).map(|(index, _)| *index)?;
        Some(
            SpanRef::from_key_tail(&key)
                .map(|reference| (partition, reference))
                .ok_or_else(|| LsmError::corrupt("index key is too short")),
        )
    }
}

/// What a search reports for each proven trace: whether to go on.
pub(crate) type Found<'a> = dyn FnMut(TraceId) -> Result<bool, LsmError> + 'a;

impl Engine {
    /// Every stored span of a trace, oldest partition first, then key order (spans of one
    /// resource and scope together). `None` when the trace has no spans.
    pub(crate) fn load_trace(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
        partitions: &[Arc<Partition>],
        cache: &mut ContentCache,
    ) -> Result<Option<Trace>, LsmError> {
        let prefix = keys::span_prefix(tenant, &trace_id);
        let mut spans = Vec::new();
        for partition in partitions {
            for guard in partition.spans.prefix(&prefix) {
                let (_, value) = guard.into_inner()?;
                spans.push(cache.span(partition, tenant, &value)?);
            }
        }
        Ok((!spans.is_empty()).then_some(Trace { trace_id, spans }))
    }

    /// Walks candidates newest first and reports each trace the first time one of its spans
    /// matches, until `search_depth` traces are found or `found` says stop.
    pub(crate) fn search(
        &self,
        tenant: &Tenant,
        query: &TraceQuery,
        partitions: &[Arc<Partition>],
        found: &mut Found<'_>,
    ) -> Result<(), LsmError> {
        let min = query.start_time_min.map_or(0, |time| time.0);
        let max = query.start_time_max.map_or(u64::MAX, |time| time.0);
        let in_window: Vec<usize> = partitions
            .iter()
            .enumerate()
            .filter(|(_, partition)| partition.id.overlaps(min, max))
            .map(|(position, _)| position)
            .collect();
        let matcher = SpanMatcher::new(query);
        let by_time = |prefix: &[u8]| {
            let (lower, upper) = keys::u64_range(prefix, min, max, SPAN_REF_LEN - 8);
            let iterators = in_window
                .iter()
                .filter_map(|&position| {
                    let partition = partitions.get(position)?;
                    Some((
                        position,
                        partition.index.range(lower.clone()..=upper.clone()).rev(),
                    ))
                })
                .collect();
            NewestFirst::new(iterators)
        };
        match plan(tenant, query, matcher.conditions()) {
            Plan::Nothing => Ok(()),
            Plan::ByTime(prefix) => {
                self.verify(tenant, query, &matcher, partitions, by_time(&prefix), found)
            }
            Plan::ByDuration {
                prefix,
                min: shortest,
                max: longest,
                fallback,
            } => {
                let mut candidates = Vec::new();
                let (lower, upper) = keys::u64_range(&prefix, shortest, longest, SPAN_REF_LEN);
                'probe: for &position in &in_window {
                    let Some(partition) = partitions.get(position) else {
                        continue;
                    };
                    for guard in partition.index.range(lower.clone()..=upper.clone()) {
                        let key = guard.key()?;
                        let reference = SpanRef::from_key_tail(&key)
                            .ok_or_else(|| LsmError::corrupt("index key is too short"))?;
                        if !matcher.matches_start(UnixNanos(reference.start)) {
                            continue;
                        }
                        candidates.push((position, reference));
                        if candidates.len() > DURATION_PROBE_BUDGET {
                            break 'probe;
                        }
                    }
                }
                if candidates.len() > DURATION_PROBE_BUDGET {
                    return self.verify(
                        tenant,
                        query,
                        &matcher,
                        partitions,
                        by_time(&fallback),
                        found,
                    );
                }
                candidates.sort_unstable_by_key(|(_, reference)| std::cmp::Reverse(*reference));
                self.verify(
                    tenant,
                    query,
                    &matcher,
                    partitions,
                    candidates.into_iter().map(Ok),
                    found,
                )
            }
        }
    }

    fn verify(
        &self,
        tenant: &Tenant,
        query: &TraceQuery,
        matcher: &SpanMatcher,
        partitions: &[Arc<Partition>],
        candidates: impl Iterator<Item = Result<(usize, SpanRef), LsmError>>,
        found: &mut Found<'_>,
    ) -> Result<(), LsmError> {
        let depth = query.search_depth.get();
        let mut proven: HashSet<TraceId> = HashSet::new();
        let mut cache = ContentCache::default();
        for candidate in candidates {
            let (position, reference) = candidate?;
            if proven.contains(&reference.trace_id)
                || !matcher.matches_start(UnixNanos(reference.start))
            {
                continue;
            }
            let Some(partition) = partitions.get(position) else {
                continue;
            };
            let key = keys::span_key(tenant, &reference.trace_id, &reference.disc);
            let Some(value) = partition.spans.get(key)? else {
                continue;
            };
            let span = cache.span(partition, tenant, &value)?;
            if !matcher.matches(&span) {
                continue;
            }
            proven.insert(reference.trace_id);
            if !found(reference.trace_id)? || proven.len() >= depth {
                break;
            }
        }
        Ok(())
    }

    /// Distinct service names of a tenant, from the per-partition service records.
    pub(crate) fn services(&self, tenant: &Tenant) -> Result<Vec<String>, LsmError> {
        let prefix = keys::service_names_prefix(tenant);
        let mut services = BTreeSet::new();
        for partition in self.snapshot() {
            for guard in partition.index.prefix(&prefix) {
                let (_, value) = guard.into_inner()?;
                services.insert(
                    String::from_utf8(value.to_vec())
                        .map_err(|_| LsmError::corrupt("service name is not UTF-8"))?,
                );
            }
        }
        Ok(services.into_iter().collect())
    }

    /// Distinct operations of a service, from the per-partition operation records.
    pub(crate) fn operations(
        &self,
        tenant: &Tenant,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<Operation>, LsmError> {
        let prefix = keys::operation_names_prefix(tenant, service);
        let mut operations = BTreeSet::new();
        for partition in self.snapshot() {
            for guard in partition.index.prefix(&prefix) {
                let (_, value) = guard.into_inner()?;
                let Some((&kind_byte, name)) = value.split_first() else {
                    return Err(LsmError::corrupt("operation record is empty"));
                };
                let stored_kind =
                    SpanKind::try_from(i32::from(kind_byte)).unwrap_or(SpanKind::Unspecified);
                if kind.is_some_and(|wanted| wanted != stored_kind) {
                    continue;
                }
                operations.insert(Operation {
                    name: String::from_utf8(name.to_vec())
                        .map_err(|_| LsmError::corrupt("operation name is not UTF-8"))?,
                    span_kind: span_kind_name(stored_kind).to_owned(),
                });
            }
        }
        Ok(operations.into_iter().collect())
    }

    /// The summary entries of a trace in trace order (oldest partition first, then
    /// discriminator), each span once however often it was re-sent.
    pub(crate) fn fragment_entries(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
        partitions: &[Arc<Partition>],
    ) -> Result<Vec<FragmentEntry>, LsmError> {
        let prefix = keys::fragment_prefix(tenant, trace_id);
        let mut entries = Vec::new();
        for partition in partitions {
            let mut by_disc = BTreeMap::new();
            for guard in partition.index.prefix(&prefix) {
                let (_, value) = guard.into_inner()?;
                for entry in records::decode_fragment(&value)? {
                    by_disc.entry(entry.disc).or_insert(entry);
                }
            }
            entries.extend(by_disc.into_values());
        }
        Ok(entries)
    }

    /// A trace's summary from its fragments alone, computed by [`TraceSummary::from_trace`]
    /// over skeleton spans so the rules are exactly the shared ones.
    pub(crate) fn summary(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
        partitions: &[Arc<Partition>],
        skeletons: &mut Skeletons,
    ) -> Result<Option<TraceSummary>, LsmError> {
        let entries = self.fragment_entries(tenant, &trace_id, partitions)?;
        if entries.is_empty() {
            return Ok(None);
        }
        let trace = Trace {
            trace_id,
            spans: skeletons.spans(trace_id, &entries)?,
        };
        Ok(Some(TraceSummary::from_trace(&trace)))
    }

    /// Calls of the traces with a span starting in the window, counted by
    /// [`DependencyCounter`] over skeleton spans built from the summary fragments.
    pub(crate) fn dependencies(
        &self,
        tenant: &Tenant,
        window: &DependencyQuery,
    ) -> Result<Vec<DependencyLink>, LsmError> {
        let partitions = self.snapshot();
        let prefix = keys::global_prefix(tenant);
        let (lower, upper) =
            keys::u64_range(&prefix, window.start.0, window.end.0, SPAN_REF_LEN - 8);
        let mut traces = Vec::new();
        let mut seen = HashSet::new();
        for partition in &partitions {
            if !partition.id.overlaps(window.start.0, window.end.0) {
                continue;
            }
            for guard in partition.index.range(lower.clone()..=upper.clone()) {
                let key = guard.key()?;
                let reference = SpanRef::from_key_tail(&key)
                    .ok_or_else(|| LsmError::corrupt("index key is too short"))?;
                if seen.insert(reference.trace_id) {
                    traces.push(reference.trace_id);
                }
            }
        }
        let mut counter = DependencyCounter::default();
        let mut skeletons = Skeletons::default();
        for trace_id in traces {
            let entries = self.fragment_entries(tenant, &trace_id, &partitions)?;
            let spans = skeletons.spans(trace_id, &entries)?;
            counter.add_spans(&spans, window);
        }
        Ok(counter.finish())
    }
}

/// Builds minimal [`Span`]s (IDs, times, status, service, root name) from fragment entries.
#[derive(Default)]
pub(crate) struct Skeletons {
    resources: HashMap<String, Arc<Resource>>,
    scope: Arc<Scope>,
}

impl Skeletons {
    fn resource(&mut self, service: &str) -> Arc<Resource> {
        if let Some(found) = self.resources.get(service) {
            return Arc::clone(found);
        }
        let resource = Arc::new(Resource::new(
            OtlpResource {
                attributes: vec![KeyValue {
                    key: SERVICE_NAME_KEY.to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.to_owned())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            String::new(),
        ));
        self.resources
            .insert(service.to_owned(), Arc::clone(&resource));
        resource
    }

    fn spans(
        &mut self,
        trace_id: TraceId,
        entries: &[FragmentEntry],
    ) -> Result<Vec<Span>, LsmError> {
        let mut spans = Vec::with_capacity(entries.len());
        for entry in entries {
            let otlp = OtlpSpan {
                trace_id: trace_id.as_bytes().to_vec(),
                span_id: entry.span_id.to_vec(),
                parent_span_id: entry
                    .parent
                    .map(|parent| parent.to_vec())
                    .unwrap_or_default(),
                name: entry.root_name.clone().unwrap_or_default(),
                start_time_unix_nano: entry.start,
                end_time_unix_nano: entry.end,
                status: entry.error.then(|| Status {
                    code: StatusCode::Error as i32,
                    message: String::new(),
                }),
                ..Default::default()
            };
            let resource = self.resource(&entry.service);
            spans.push(
                Span::new(resource, Arc::clone(&self.scope), otlp)
                    .map_err(LsmError::InvalidSpan)?,
            );
        }
        Ok(spans)
    }
}
