//! Reads: whole traces, searches, services and operations, summaries and dependencies.
//! Synchronous like [`crate::engine`]; called from blocking tasks only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use prost::Message as _;
use remote_storage_core::filter::{Filter, FilterPlan};
use remote_storage_core::matcher::{AttributeCondition, SpanMatcher};
use remote_storage_core::model::{Resource, SERVICE_NAME_KEY, Scope, span_kind_name};
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value};
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::span::SpanKind;
use remote_storage_core::proto::otlp::trace::status::StatusCode;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status};
use remote_storage_core::{
    EncodedTrace, Operation, Span, Tenant, Trace, TraceId, TraceQuery, TraceSummary, UnixNanos,
};

use crate::engine::{Engine, Partition};
use crate::error::LsmError;
use crate::keys::{self, ContentId, Posting, SpanRef, Term};
use crate::records::{self, FragmentEntry, GroupSpan, SpanGroup};

/// Trace tables a search keeps (one per write batch and partition); reset beyond this.
const TRACE_TABLE_CACHE_LIMIT: usize = 4_096;
/// Decoded resources and scopes kept per read; reset beyond this.
const CONTENT_CACHE_LIMIT: usize = 4_096;
/// Traces whose spans a search keeps decoded (per partition); reset beyond this.
const VERIFIED_TRACES_LIMIT: usize = 256;

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
}

/// Decodes stored spans, each with its resolved resource and scope, keeping their order.
fn decode_spans(
    records: &[GroupSpan<'_>],
    contents: Vec<(Arc<Resource>, Arc<Scope>)>,
) -> Result<Vec<Span>, LsmError> {
    let mut spans = Vec::with_capacity(records.len());
    for (record, (resource, scope)) in records.iter().zip(contents) {
        let otlp = OtlpSpan::decode(record.span)?;
        spans.push(Span::new(resource, scope, otlp).map_err(LsmError::InvalidSpan)?);
    }
    Ok(spans)
}

/// Spans of recently verified traces, per partition, so the candidates of one trace decode
/// its span groups once.
#[derive(Default)]
struct VerifiedTraces {
    spans: HashMap<(usize, TraceId), Vec<Span>>,
}

/// How a search finds its candidate spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// No span can match (e.g. `error=maybe`).
    Nothing,
    /// The posting lists of `term`, walked newest first. `filter`: the term bits (see
    /// [`keys::term_bits`]) its postings must carry: an attribute's, or the operation's in a
    /// service list.
    Postings { term: Term, filter: Option<u16> },
}

/// Picks the index expected to yield the fewest candidates. Every plan yields a superset of
/// the matching spans; [`SpanMatcher`] then decides, so results equal the memory backend's.
/// A structured filter's query has no legacy conditions; its [`FilterPlan`] names what the
/// indexes can narrow by (one service, one span name, one attribute text, status error).
pub(crate) fn plan(
    tenant: &Tenant,
    query: &TraceQuery,
    conditions: &[AttributeCondition],
    filter: &FilterPlan,
) -> Plan {
    let whole = |term: Term| Plan::Postings { term, filter: None };
    if conditions.contains(&AttributeCondition::Error(None)) || filter.is_unsatisfiable() {
        return Plan::Nothing;
    }
    let service = query
        .service_name
        .as_deref()
        .or_else(|| single(filter.services.as_ref()));
    let operation = query
        .operation_name
        .as_deref()
        .or_else(|| single(filter.span_names.as_ref()));
    if let (Some(service), Some(operation)) = (service, operation) {
        return Plan::Postings {
            term: keys::service_term(tenant, service),
            filter: Some(keys::term_bits(
                keys::operation_term(tenant, service, operation).hash,
            )),
        };
    }
    let attribute_posting = |key: &str, value: &str| {
        let hash = keys::attribute_hash(tenant, key.as_bytes(), value.as_bytes(), &mut Vec::new());
        let (shard, bits) = keys::attribute_shard(hash);
        keys::attribute_shards(tenant)
            .get(shard)
            .map(|&term| Plan::Postings {
                term,
                filter: Some(bits),
            })
    };
    for condition in conditions {
        match condition {
            // The span's service is its resource's `service.name`.
            AttributeCondition::Resource { key, value } if key == SERVICE_NAME_KEY => {
                return whole(keys::service_term(tenant, value));
            }
            AttributeCondition::Resource { key, value }
            | AttributeCondition::Anywhere { key, value }
                if key != SERVICE_NAME_KEY =>
            {
                if let Some(plan) = attribute_posting(key, value) {
                    return plan;
                }
            }
            _ => {}
        }
    }
    // Every level's attributes are indexed, but for the resource's `service.name`, which
    // only the service index covers.
    for terms in &filter.attributes {
        if let (Some(text), true) = (single(Some(&terms.texts)), terms.key != SERVICE_NAME_KEY)
            && let Some(plan) = attribute_posting(&terms.key, text)
        {
            return plan;
        }
    }
    let error = StatusCode::Error as i32;
    if conditions.contains(&AttributeCondition::Error(Some(true)))
        || filter
            .statuses
            .as_ref()
            .is_some_and(|codes| codes.len() == 1 && codes.contains(&error))
    {
        return whole(keys::error_term(tenant));
    }
    if let Some(service) = service {
        return whole(keys::service_term(tenant, service));
    }
    whole(keys::global_term(tenant))
}

/// The only element of a set of one.
fn single(set: Option<&BTreeSet<String>>) -> Option<&str> {
    match set {
        Some(set) if set.len() == 1 => set.first().map(String::as_str),
        _ => None,
    }
}

/// What a posting must satisfy to be a candidate: cheap checks before any span is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PostingFilter {
    pub(crate) term: Option<u16>,
    pub(crate) min_start: u64,
    pub(crate) max_start: u64,
    /// Applied to postings that carry a duration (all but attribute postings).
    pub(crate) min_duration: u64,
    pub(crate) max_duration: u64,
}

impl PostingFilter {
    fn accepts(&self, tag: u8, posting: &Posting) -> bool {
        if posting.start < self.min_start || posting.start > self.max_start {
            return false;
        }
        if self.term.is_some_and(|term| term != posting.term) {
            return false;
        }
        // Attribute postings carry no duration.
        tag == keys::tag::ATTRIBUTE
            || (posting.duration >= self.min_duration && posting.duration <= self.max_duration)
    }
}

/// Candidates from the posting lists of one term, newest first: partitions newest first,
/// their time buckets newest first, and each bucket's postings (from every batch) sorted by
/// start. Partitions cover disjoint times, so this is newest first overall.
pub(crate) struct PostingWalk<'p> {
    partitions: &'p [Arc<Partition>],
    term: Term,
    filter: PostingFilter,
    /// (partition position, bucket) still to read, in reading order.
    steps: std::vec::IntoIter<(usize, u32)>,
    /// The current bucket's postings, oldest first (popped from the end).
    buffer: Vec<(u64, u64, u32)>,
    position: usize,
    /// Trace tables by partition position and batch ID.
    tables: HashMap<(usize, u64), fjall::UserValue>,
}

impl<'p> PostingWalk<'p> {
    pub(crate) fn new(partitions: &'p [Arc<Partition>], term: Term, filter: PostingFilter) -> Self {
        let mut steps = Vec::new();
        for (position, partition) in partitions.iter().enumerate().rev() {
            let (min, max) = (filter.min_start, filter.max_start);
            if !partition.id.overlaps(min, max) {
                continue;
            }
            let low = min.max(partition.id.start_nanos());
            let high = max.min(partition.id.end_nanos().saturating_sub(1));
            if low > high {
                continue;
            }
            for bucket in (keys::bucket_of(low)..=keys::bucket_of(high)).rev() {
                steps.push((position, bucket));
            }
        }
        Self {
            partitions,
            term,
            filter,
            steps: steps.into_iter(),
            buffer: Vec::new(),
            position: 0,
            tables: HashMap::new(),
        }
    }

    fn load(&mut self, position: usize, bucket: u32) -> Result<(), LsmError> {
        let Some(partition) = self.partitions.get(position) else {
            return Ok(());
        };
        self.position = position;
        self.buffer.clear();
        let tag = self.term.tag;
        let filter = self.filter;
        let buffer = &mut self.buffer;
        for guard in partition
            .index
            .prefix(keys::posting_prefix(self.term, bucket))
        {
            let (key, value) = guard.into_inner()?;
            let batch = keys::posting_batch(&key)
                .ok_or_else(|| LsmError::corrupt("posting key is too short"))?;
            keys::decode_postings(tag, &value, |posting| {
                if filter.accepts(tag, &posting) {
                    buffer.push((posting.start, batch, posting.ordinal));
                }
            })
            .ok_or_else(|| LsmError::corrupt("posting list is truncated"))?;
        }
        self.buffer.sort_unstable();
        self.buffer.dedup();
        Ok(())
    }

    fn trace_id(&mut self, batch: u64, ordinal: u32) -> Result<TraceId, LsmError> {
        let position = self.position;
        let table = match self.tables.get(&(position, batch)) {
            Some(table) => table,
            None => {
                let Some(partition) = self.partitions.get(position) else {
                    return Err(LsmError::corrupt("partition vanished during a search"));
                };
                let table = partition
                    .index
                    .get(keys::trace_table_key(batch))?
                    .ok_or_else(|| LsmError::corrupt("posting refers to a missing trace table"))?;
                if self.tables.len() >= TRACE_TABLE_CACHE_LIMIT {
                    self.tables.clear();
                }
                self.tables.entry((position, batch)).or_insert(table)
            }
        };
        let at = usize::try_from(ordinal)
            .unwrap_or(usize::MAX)
            .saturating_mul(16);
        table
            .get(at..at.saturating_add(16))
            .and_then(|bytes| bytes.try_into().ok())
            .map(TraceId)
            .ok_or_else(|| LsmError::corrupt("posting refers past its trace table"))
    }

    fn next_candidate(&mut self) -> Result<Option<(usize, SpanRef)>, LsmError> {
        loop {
            if let Some((start, batch, ordinal)) = self.buffer.pop() {
                let trace_id = self.trace_id(batch, ordinal)?;
                return Ok(Some((self.position, SpanRef { start, trace_id })));
            }
            let Some((position, bucket)) = self.steps.next() else {
                return Ok(None);
            };
            self.load(position, bucket)?;
        }
    }
}

impl Iterator for PostingWalk<'_> {
    type Item = Result<(usize, SpanRef), LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_candidate().transpose()
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
        let mut spans = Vec::new();
        for partition in partitions {
            spans.extend(self.partition_spans(tenant, trace_id, partition, cache)?);
        }
        Ok((!spans.is_empty()).then_some(Trace { trace_id, spans }))
    }

    /// The spans of a trace stored in one partition, in discriminator order (spans of one
    /// resource and scope together), each re-sent span once.
    fn partition_spans(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
        partition: &Partition,
        cache: &mut ContentCache,
    ) -> Result<Vec<Span>, LsmError> {
        self.with_partition_records(tenant, trace_id, partition, cache, decode_spans)
    }

    /// Every stored span of a trace as [`Engine::load_trace`] orders them, each as its stored
    /// OTLP bytes (the spans were validated and encoded by prost when written), without
    /// decoding any. `None` when the trace has no spans.
    pub(crate) fn load_encoded_trace(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
        partitions: &[Arc<Partition>],
        cache: &mut ContentCache,
    ) -> Result<Option<EncodedTrace>, LsmError> {
        let mut encoded = EncodedTrace::new(trace_id);
        for partition in partitions {
            self.with_partition_records(
                tenant,
                trace_id,
                partition,
                cache,
                |records, contents| {
                    encoded.reserve(records.iter().map(|record| record.span.len()).sum());
                    for (record, (resource, scope)) in records.iter().zip(contents) {
                        encoded.push(&resource, &scope, |out| {
                            out.extend_from_slice(record.span);
                            Ok::<_, LsmError>(())
                        })?;
                    }
                    Ok(())
                },
            )?;
        }
        Ok((!encoded.is_empty()).then_some(encoded))
    }

    /// Hands `use_records` the span records of a trace in one partition, in discriminator
    /// order, each re-sent span once, with each record's resource and scope.
    fn with_partition_records<T>(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
        partition: &Partition,
        cache: &mut ContentCache,
        use_records: impl FnOnce(
            &[GroupSpan<'_>],
            Vec<(Arc<Resource>, Arc<Scope>)>,
        ) -> Result<T, LsmError>,
    ) -> Result<T, LsmError> {
        let prefix = keys::span_prefix(tenant, &trace_id);
        let mut groups = Vec::new();
        for guard in partition.spans.prefix(&prefix) {
            let (_, value) = guard.into_inner()?;
            groups.push(SpanGroup::decode(&value)?);
        }
        let mut by_disc = BTreeMap::new();
        for group in &groups {
            for record in group.spans()? {
                by_disc.entry(record.disc).or_insert(record);
            }
        }
        let records: Vec<GroupSpan<'_>> = by_disc.into_values().collect();
        let mut contents = Vec::with_capacity(records.len());
        for record in &records {
            contents.push((
                cache.resource(partition, tenant, &record.resource)?,
                cache.scope(partition, tenant, &record.scope)?,
            ));
        }
        use_records(&records, contents)
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
        let matcher = SpanMatcher::new(query);
        let filter_plan = query.filter.as_ref().map(Filter::plan).unwrap_or_default();
        // Ranges of the filter's `span.startTime` and `span.duration` conditions narrow the
        // postings like the window and the legacy duration bounds.
        let Some(((plan_start_min, plan_start_max), (plan_duration_min, plan_duration_max))) =
            filter_plan
                .start
                .unsigned()
                .zip(filter_plan.duration.unsigned())
        else {
            return Ok(());
        };
        match plan(tenant, query, matcher.conditions(), &filter_plan) {
            Plan::Nothing => Ok(()),
            Plan::Postings { term, filter } => {
                let filter = PostingFilter {
                    term: filter,
                    min_start: query
                        .start_time_min
                        .map_or(0, |time| time.0)
                        .max(plan_start_min),
                    max_start: query
                        .start_time_max
                        .map_or(u64::MAX, |time| time.0)
                        .min(plan_start_max),
                    min_duration: query.duration_min.unwrap_or(0).max(plan_duration_min),
                    max_duration: query
                        .duration_max
                        .unwrap_or(u64::MAX)
                        .min(plan_duration_max),
                };
                let candidates = PostingWalk::new(partitions, term, filter);
                self.verify(tenant, query, &matcher, partitions, candidates, found)
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
        let mut verified = VerifiedTraces::default();
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
            let cache_key = (position, reference.trace_id);
            if !verified.spans.contains_key(&cache_key) {
                if verified.spans.len() >= VERIFIED_TRACES_LIMIT {
                    verified.spans.clear();
                }
                let spans =
                    self.partition_spans(tenant, reference.trace_id, partition, &mut cache)?;
                verified.spans.insert(cache_key, spans);
            }
            let matched = verified.spans.get(&cache_key).is_some_and(|spans| {
                spans
                    .iter()
                    .any(|span| span.start().0 == reference.start && matcher.matches(span))
            });
            if !matched {
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

    pub(crate) fn spans(
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
