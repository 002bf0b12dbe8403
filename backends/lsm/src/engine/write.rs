//! The write path: a `write_spans` call becomes one atomic fjall batch holding, per
//! partition, the span groups, trace fragments, trace table, postings, once-per-partition
//! records (resources, scopes, services, operations) and the updated counts.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::MutexGuard;
use prost::Message as _;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::matcher::span_level_attributes;
use remote_storage_core::model::{Resource, SERVICE_NAME_KEY, Scope};
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::{Span, Tenant, TraceId};
use xxhash_rust::xxh3::xxh3_64;

use super::partition::{Counts, Partition, PartitionId};
use super::{Engine, PartitionMap, calls};
use crate::config::SyncPolicy;
use crate::error::LsmError;
use crate::keys::{self, ContentId, Discriminator, Posting, Term};
use crate::records::{self, FragmentEntry, SpanGroupBuilder};
use crate::rollups::CallDeltas;
use crate::rollups::cache::SiteCache;
use crate::rollups::sites::{Order, Site, TraceSites};

/// Once-per-partition records remembered as written; beyond this the memory is reset (the
/// records are then simply written again, which is harmless).
const WRITTEN_CACHE_LIMIT: usize = 100_000;

impl Engine {
    /// Writes spans as one atomic fjall batch, then syncs if the policy says so.
    pub(crate) fn write(&self, tenant: &Tenant, spans: &[Span]) -> Result<(), LsmError> {
        let ids: BTreeSet<PartitionId> = spans
            .iter()
            .map(|span| PartitionId::for_time(span.start().0, self.span_secs))
            .collect();
        {
            let partitions = self.partitions_with(&ids)?;
            let batch_id = self.batch_ids.lock().next(&self.db, &self.meta)?;
            let mut writer = BatchWriter::new(self, tenant, &partitions);
            for span in spans {
                writer.add(span)?;
            }
            writer.commit(batch_id)?;
        }
        if self.sync == SyncPolicy::Batch {
            self.sync_all()?;
        }
        Ok(())
    }
}

/// A span kind as stored in operation records.
fn kind_byte(span: &Span) -> u8 {
    u8::try_from(span.kind() as i32).unwrap_or(0)
}

/// Builds the one fjall batch of a `write_spans` call.
struct BatchWriter<'a> {
    engine: &'a Engine,
    tenant: &'a Tenant,
    partitions: &'a PartitionMap,
    batch: fjall::OwnedWriteBatch,
    /// Content IDs of the batch's resources and scopes, by allocation (spans of one OTLP
    /// `ResourceSpans` share an `Arc`).
    resources: HashMap<*const Resource, ContentId>,
    scopes: HashMap<*const Scope, ContentId>,
    /// Once-per-partition records added by this batch, and their cheap identities, so a
    /// repeat costs one hash lookup and no key building.
    once: HashSet<(PartitionId, Vec<u8>)>,
    seen_contents: HashSet<(PartitionId, ContentId)>,
    seen_services: HashSet<(PartitionId, &'a str)>,
    seen_operations: HashSet<(PartitionId, &'a str, u8, &'a str)>,
    /// Spans, summary entries and trace-table position per partition and trace.
    groups: HashMap<(PartitionId, TraceId), TraceGroup>,
    /// Trace tables per partition: the trace IDs in position order.
    trace_tables: HashMap<PartitionId, Vec<u8>>,
    /// Postings per partition, term and bucket.
    postings: HashMap<(PartitionId, Term, u32), Vec<Posting>, PostingHasher>,
    counts: BTreeMap<PartitionId, Counts>,
    /// Service-level terms of this batch (few distinct), so each is hashed once.
    terms: HashMap<TermText<'a>, Term>,
    global_term: Term,
    error_term: Term,
    attribute_shards: Vec<Term>,
    /// Attribute term hashes of the span being added (deduplicated per span).
    span_terms: Vec<u64>,
    /// Copies of one span content seen so far in this batch, per trace.
    occurrences: HashMap<(TraceId, Discriminator), u32>,
    /// Reused buffer for hashing attribute terms.
    scratch: Vec<u8>,
    /// The batch's call sites per trace, and its service names shared by them.
    sites: HashMap<TraceId, Vec<(Order, Site)>>,
    services: HashMap<&'a str, Arc<str>>,
}

/// Hashes posting-list identities: a partition, a term (itself an xxh3 hash) and a bucket,
/// all fixed-width integers, so a multiply-rotate mix is enough and much cheaper than SipHash
/// on this hot path (about 15 lookups per span).
type PostingHasher = std::hash::BuildHasherDefault<IntegerHasher>;

#[derive(Debug, Default, Clone, Copy)]
struct IntegerHasher(u64);

impl IntegerHasher {
    fn mix(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for IntegerHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            if let Some(prefix) = word.get_mut(..chunk.len()) {
                prefix.copy_from_slice(chunk);
            }
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What a batch writes for one trace in one partition.
#[derive(Default)]
struct TraceGroup {
    ordinal: u32,
    spans: SpanGroupBuilder,
    fragment: Vec<FragmentEntry>,
}

/// The text of a service-level index term, before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TermText<'a> {
    Service(&'a str),
    Operation(&'a str, &'a str),
}

impl<'a> BatchWriter<'a> {
    fn new(engine: &'a Engine, tenant: &'a Tenant, partitions: &'a PartitionMap) -> Self {
        Self {
            engine,
            tenant,
            partitions,
            batch: engine.db.batch(),
            resources: HashMap::new(),
            scopes: HashMap::new(),
            once: HashSet::new(),
            seen_contents: HashSet::new(),
            seen_services: HashSet::new(),
            seen_operations: HashSet::new(),
            groups: HashMap::new(),
            trace_tables: HashMap::new(),
            postings: HashMap::default(),
            counts: BTreeMap::new(),
            terms: HashMap::new(),
            global_term: keys::global_term(tenant),
            error_term: keys::error_term(tenant),
            attribute_shards: keys::attribute_shards(tenant),
            span_terms: Vec::new(),
            occurrences: HashMap::new(),
            scratch: Vec::with_capacity(64),
            sites: HashMap::new(),
            services: HashMap::new(),
        }
    }

    /// Adds a record that each partition needs once (resource, scope, service, operation).
    fn put_once(&mut self, partition: &Partition, key: Vec<u8>, value: &[u8]) {
        let marker = (partition.id, key);
        if self.once.contains(&marker) || partition.written.lock().contains(&marker.1) {
            return;
        }
        self.batch.insert(&partition.index, marker.1.clone(), value);
        self.once.insert(marker);
    }

    fn term(&mut self, text: TermText<'a>) -> Term {
        let tenant = self.tenant;
        *self.terms.entry(text).or_insert_with(|| match text {
            TermText::Service(service) => keys::service_term(tenant, service),
            TermText::Operation(service, name) => keys::operation_term(tenant, service, name),
        })
    }

    fn post(&mut self, partition: PartitionId, term: Term, bucket: u32, posting: Posting) {
        self.postings
            .entry((partition, term, bucket))
            .or_default()
            .push(posting);
    }

    fn add(&mut self, span: &'a Span) -> Result<(), LsmError> {
        let id = PartitionId::for_time(span.start().0, self.engine.span_secs);
        let partitions = self.partitions;
        let Some(partition) = partitions.get(&id) else {
            return Err(LsmError::corrupt("partition vanished during a write"));
        };
        let tenant = self.tenant;

        let resource_id = *self
            .resources
            .entry(Arc::as_ptr(span.resource()))
            .or_insert_with(|| records::encode_resource(span.resource()).0);
        if self.seen_contents.insert((id, resource_id)) {
            let (_, value) = records::encode_resource(span.resource());
            self.put_once(partition, keys::resource_key(tenant, &resource_id), &value);
        }
        let scope_id = *self
            .scopes
            .entry(Arc::as_ptr(span.scope()))
            .or_insert_with(|| records::encode_scope(span.scope()).0);
        if self.seen_contents.insert((id, scope_id)) {
            let (_, value) = records::encode_scope(span.scope());
            self.put_once(partition, keys::scope_key(tenant, &scope_id), &value);
        }

        let span_bytes = span.otlp().encode_to_vec();
        let trace_id = span.trace_id();
        let group_hash = records::content_group_hash(&resource_id, &scope_id);
        let first = records::discriminator(group_hash, &span_bytes, 0);
        let occurrence = self.occurrences.entry((trace_id, first)).or_insert(0);
        let disc = if *occurrence == 0 {
            first
        } else {
            records::discriminator(group_hash, &span_bytes, *occurrence)
        };
        *occurrence += 1;
        let group = match self.groups.entry((id, trace_id)) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let table = self.trace_tables.entry(id).or_default();
                let ordinal = u32::try_from(table.len() / 16)
                    .map_err(|_| LsmError::corrupt("too many traces in one write batch"))?;
                table.extend_from_slice(trace_id.as_bytes());
                entry.insert(TraceGroup {
                    ordinal,
                    ..TraceGroup::default()
                })
            }
        };
        group.spans.add(&resource_id, &scope_id, &span_bytes);
        let ordinal = group.ordinal;
        let service = span.service_name();
        let is_root = span.parent_span_id().is_none();
        group.fragment.push(FragmentEntry {
            disc,
            span_id: *span.span_id().as_bytes(),
            parent: span.parent_span_id().map(|parent| *parent.as_bytes()),
            start: span.start().0,
            end: span.end().0,
            error: span.is_error(),
            service: service.to_owned(),
            root_name: is_root.then(|| span.name().to_owned()),
        });

        let start = span.start().0;
        let site_service = Arc::clone(
            self.services
                .entry(service)
                .or_insert_with(|| Arc::from(service)),
        );
        self.sites.entry(trace_id).or_default().push((
            (id, disc),
            Site {
                span_id: *span.span_id().as_bytes(),
                parent: span.parent_span_id().map(|parent| *parent.as_bytes()),
                service: site_service,
                start,
            },
        ));
        let bucket = keys::bucket_of(start);
        let timed = Posting {
            start,
            ordinal,
            term: 0,
            duration: span.duration_nanos(),
        };
        self.post(id, self.global_term, bucket, timed);
        if span.is_error() {
            self.post(id, self.error_term, bucket, timed);
        }
        let service_term = self.term(TermText::Service(service));
        let operation_term = self.term(TermText::Operation(service, span.name()));
        self.post(
            id,
            service_term,
            bucket,
            Posting {
                term: keys::term_bits(operation_term.hash),
                ..timed
            },
        );
        self.span_terms.clear();
        for (key, value) in indexed_attributes(span) {
            let hash =
                keys::attribute_hash(tenant, key.as_bytes(), value.as_bytes(), &mut self.scratch);
            if self.span_terms.contains(&hash) {
                continue;
            }
            self.span_terms.push(hash);
            let (shard, bits) = keys::attribute_shard(hash);
            let Some(&shard_term) = self.attribute_shards.get(shard) else {
                continue;
            };
            let posting = Posting {
                start,
                ordinal,
                term: bits,
                duration: 0,
            };
            self.post(id, shard_term, bucket, posting);
        }

        if self.seen_services.insert((id, service)) {
            self.put_once(
                partition,
                keys::service_name_key(tenant, service),
                service.as_bytes(),
            );
        }
        let kind = kind_byte(span);
        if self
            .seen_operations
            .insert((id, service, kind, span.name()))
        {
            let mut operation_value = Vec::with_capacity(1 + span.name().len());
            operation_value.push(kind);
            operation_value.extend_from_slice(span.name().as_bytes());
            self.put_once(
                partition,
                keys::operation_name_key(tenant, service, kind, span.name()),
                &operation_value,
            );
        }

        let counts = self.counts.entry(id).or_default();
        counts.spans += 1;
        counts.traces += u64::from(is_root);
        Ok(())
    }

    fn commit(mut self, batch_id: u64) -> Result<(), LsmError> {
        let tenant = self.tenant;
        for ((id, trace_id), group) in std::mem::take(&mut self.groups) {
            let Some(partition) = self.partitions.get(&id) else {
                continue;
            };
            let value = group.spans.encode();
            let content_hash = xxh3_64(&value);
            self.batch.insert(
                &partition.spans,
                keys::span_group_key(tenant, &trace_id, batch_id, content_hash),
                value,
            );
            let fragment = records::encode_fragment(&group.fragment);
            let key = keys::fragment_key(tenant, &trace_id, batch_id, xxh3_64(&fragment));
            self.batch.insert(&partition.index, key, fragment);
        }
        for (id, table) in std::mem::take(&mut self.trace_tables) {
            if let Some(partition) = self.partitions.get(&id) {
                self.batch
                    .insert(&partition.index, keys::trace_table_key(batch_id), table);
            }
        }
        for ((id, term, bucket), mut postings) in std::mem::take(&mut self.postings) {
            if let Some(partition) = self.partitions.get(&id) {
                self.batch.insert(
                    &partition.index,
                    keys::posting_key(term, bucket, batch_id),
                    keys::encode_postings(term.tag, &mut postings),
                );
            }
        }
        for (id, delta) in &self.counts {
            let Some(partition) = self.partitions.get(id) else {
                continue;
            };
            let mut counts = partition.counts.lock();
            counts.spans += delta.spans;
            counts.traces += delta.traces;
            self.batch
                .insert(&partition.index, keys::counts_key(), counts.encode());
        }
        let (mut cache, settled) = self.add_calls(batch_id)?;
        self.batch.commit()?;
        for (trace_id, sites) in settled {
            cache.put(tenant, trace_id, sites);
        }
        drop(cache);
        for (id, key) in self.once {
            if let Some(partition) = self.partitions.get(&id) {
                let mut written = partition.written.lock();
                if written.len() >= WRITTEN_CACHE_LIMIT {
                    written.clear();
                }
                written.insert(key);
            }
        }
        Ok(())
    }
}

/// The traces a batch computed call deltas for, with their sites after it.
type Settled = Vec<(TraceId, TraceSites)>;

impl<'a> BatchWriter<'a> {
    /// Adds the batch's call deltas and trace markers. Returns the call-site lock, held from
    /// reading the sites of the batch's traces until the caller has committed the batch and
    /// remembered the traces' new sites, so a concurrent write to the same trace computes its
    /// deltas against these spans. One lock for all traces, not one per trace: fjall
    /// serializes batch commits on its journal anyway, so what this adds to the serialized
    /// part is the delta computation (a few hash lookups per span) and, for traces not
    /// remembered, one bloom-filtered marker read per partition.
    fn add_calls(
        &mut self,
        batch_id: u64,
    ) -> Result<(MutexGuard<'a, SiteCache>, Settled), LsmError> {
        let tenant = self.tenant;
        let partitions = self.partitions;
        let mut cache = self.engine.call_sites.lock();
        let mut deltas = CallDeltas::default();
        let mut settled = Vec::with_capacity(self.sites.len());
        let mut new_partitions: Vec<PartitionId> = Vec::new();
        for (trace_id, new) in std::mem::take(&mut self.sites) {
            let mut sites = match cache.take(tenant, trace_id) {
                Some(sites) => sites,
                None => calls::stored_sites(partitions, tenant, &trace_id)?,
            };
            // A marker per partition the trace is new to, so a later write finds it there.
            new_partitions.clear();
            new_partitions.extend(new.iter().map(|((id, _), _)| *id));
            new_partitions.sort_unstable();
            new_partitions.dedup();
            for id in &new_partitions {
                if !sites.holds(*id)
                    && let Some(partition) = partitions.get(id)
                {
                    self.batch.insert(
                        &partition.index,
                        keys::trace_marker_key(tenant, &trace_id),
                        [],
                    );
                }
            }
            sites.add(new, &mut deltas);
            settled.push((trace_id, sites));
        }
        calls::put_call_records(&mut self.batch, partitions, tenant, batch_id, deltas)?;
        Ok((cache, settled))
    }
}

/// The distinct `(key, canonical value text)` pairs a span can be found by: its own, its
/// events', its links', its scope's and its resource's attributes. The resource's
/// `service.name` is left out: the service index covers it.
/// Repeats are possible (the caller skips them).
fn indexed_attributes(span: &Span) -> Vec<(&str, Cow<'_, str>)> {
    fn add<'s>(
        pairs: &mut Vec<(&'s str, Cow<'s, str>)>,
        attributes: impl IntoIterator<Item = &'s KeyValue>,
        skip_service: bool,
    ) {
        for attribute in attributes {
            if skip_service && attribute.key == SERVICE_NAME_KEY {
                continue;
            }
            pairs.push((
                attribute.key.as_str(),
                any_value_text(attribute.value.as_ref()),
            ));
        }
    }
    let otlp = span.otlp();
    let mut pairs = Vec::with_capacity(otlp.attributes.len() + 8);
    add(&mut pairs, span_level_attributes(otlp), false);
    add(&mut pairs, &span.scope().otlp().attributes, false);
    add(&mut pairs, &span.resource().otlp().attributes, true);
    pairs
}
