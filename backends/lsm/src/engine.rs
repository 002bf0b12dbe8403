//! The synchronous core: the database, its time partitions, writes, purge and expiry.
//! Every method here blocks on disk I/O; the async layer ([`crate::store`]) calls them from
//! `spawn_blocking` or the background thread only.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use fjall::config::{CompressionPolicy, FilterPolicy};
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use prost::Message as _;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::matcher::span_level_attributes;
use remote_storage_core::model::{Resource, SERVICE_NAME_KEY, Scope};
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::{Span, StoreStats, Tenant, TraceId, UnixNanos};
use xxhash_rust::xxh3::xxh3_64;

use crate::config::SyncPolicy;
use crate::error::LsmError;
use crate::keys::{self, ContentId, Discriminator, Posting, Term};
use crate::records::{self, FragmentEntry, SpanGroupBuilder};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Journals kept before fjall forces memtables to disk. A crash replays at most this much at
/// startup, so recovery stays within seconds (fjall's default is 512 MiB; 64 MiB is its floor).
const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;
/// Once-per-partition records remembered as written; beyond this the memory is reset (the
/// records are then simply written again, which is harmless).
const WRITTEN_CACHE_LIMIT: usize = 100_000;

/// A time partition: spans whose start lies in `[start, start + span)` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PartitionId {
    pub(crate) start_secs: u64,
    pub(crate) span_secs: u64,
}

impl PartitionId {
    pub(crate) fn for_time(nanos: u64, span_secs: u64) -> Self {
        let seconds = nanos / NANOS_PER_SECOND;
        Self {
            start_secs: seconds - seconds % span_secs,
            span_secs,
        }
    }

    pub(crate) fn start_nanos(&self) -> u64 {
        self.start_secs.saturating_mul(NANOS_PER_SECOND)
    }

    /// Exclusive end.
    pub(crate) fn end_nanos(&self) -> u64 {
        self.start_secs
            .saturating_add(self.span_secs)
            .saturating_mul(NANOS_PER_SECOND)
    }

    /// Whether a span starting in `min..=max` may live here.
    pub(crate) fn overlaps(&self, min: u64, max: u64) -> bool {
        self.start_nanos() <= max && self.end_nanos() > min
    }

    /// `p<start seconds>-<width seconds>-<kind>`, zero-padded so names sort by time.
    fn keyspace_name(&self, kind: &str) -> String {
        format!("p{:012}-{:08}-{kind}", self.start_secs, self.span_secs)
    }

    fn parse(name: &str) -> Option<(Self, &str)> {
        let mut parts = name.strip_prefix('p')?.splitn(3, '-');
        let start_secs = parts.next()?.parse().ok()?;
        let span_secs: u64 = parts.next()?.parse().ok()?;
        let kind = parts.next()?;
        (span_secs > 0).then_some((
            Self {
                start_secs,
                span_secs,
            },
            kind,
        ))
    }
}

/// The on-disk format this build reads and writes. Version 1 (one record per span, text
/// index keys) is not readable: a directory holding it is refused at open.
const FORMAT_VERSION: u8 = 2;
/// The keyspace holding the format record.
const META_KEYSPACE: &str = "meta";

const SPANS_KIND: &str = "spans";
const INDEX_KIND: &str = "index";

/// Approximate counts of one partition, persisted in its `Z` record.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) spans: u64,
    /// Root spans written: a trace is counted where its root lands.
    pub(crate) traces: u64,
}

impl Counts {
    fn encode(self) -> Vec<u8> {
        let mut value = Vec::with_capacity(16);
        value.extend_from_slice(&self.spans.to_be_bytes());
        value.extend_from_slice(&self.traces.to_be_bytes());
        value
    }

    fn decode(value: &[u8]) -> Self {
        let read = |range: std::ops::Range<usize>| {
            value
                .get(range)
                .and_then(|bytes| bytes.try_into().ok())
                .map_or(0, u64::from_be_bytes)
        };
        Self {
            spans: read(0..8),
            traces: read(8..16),
        }
    }
}

/// One time partition's keyspaces: `spans` (span groups) and `index` (everything else).
pub(crate) struct Partition {
    pub(crate) id: PartitionId,
    pub(crate) spans: Keyspace,
    pub(crate) index: Keyspace,
    /// Keys of once-per-partition records (resources, scopes, services, operations) already
    /// committed, so a write does not repeat them.
    written: Mutex<HashSet<Vec<u8>>>,
    counts: Mutex<Counts>,
}

type PartitionMap = BTreeMap<PartitionId, Arc<Partition>>;

/// The database and its live partitions.
pub(crate) struct Engine {
    pub(crate) db: Database,
    span_secs: u64,
    retention_nanos: Option<u64>,
    sync: SyncPolicy,
    partitions: RwLock<PartitionMap>,
    /// Holds the format record and the batch ID reservation.
    meta: Keyspace,
    batch_ids: Mutex<BatchIds>,
    /// An ephemeral store's directory; declared last so it is removed after the database
    /// closes (streams hold the engine, so it lives as long as they do).
    _temp_dir: Option<tempfile::TempDir>,
}

impl Engine {
    /// Opens (or creates) the database and finds its partitions by keyspace name; no data is
    /// scanned, only one small counts record per partition is read.
    pub(crate) fn open(
        path: &Path,
        cache_size_bytes: u64,
        span_secs: u64,
        retention_nanos: Option<u64>,
        sync: SyncPolicy,
        temp_dir: Option<tempfile::TempDir>,
    ) -> Result<Self, LsmError> {
        let db = Database::builder(path)
            .cache_size(cache_size_bytes)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()?;
        let mut ids = BTreeSet::new();
        for name in db.list_keyspace_names() {
            if let Some((id, _)) = PartitionId::parse(&name) {
                ids.insert(id);
            }
        }
        let meta = check_format(&db, path, !ids.is_empty())?;
        let batch_ids = BatchIds::reserve(&db, &meta)?;
        let engine = Self {
            db,
            span_secs,
            retention_nanos,
            sync,
            partitions: RwLock::new(BTreeMap::new()),
            meta,
            batch_ids: Mutex::new(batch_ids),
            _temp_dir: temp_dir,
        };
        let mut partitions = BTreeMap::new();
        for id in ids {
            partitions.insert(id, Arc::new(engine.open_partition(id)?));
        }
        *engine.partitions.write() = partitions;
        Ok(engine)
    }

    fn open_partition(&self, id: PartitionId) -> Result<Partition, LsmError> {
        // Span groups are lz4-compressed already, so neither tables nor blob files compress
        // them again. Groups over 1 KiB go to blob files, so compaction moves only small keys.
        // Reads find groups by prefix scans, which bloom filters do not serve.
        let spans = self.db.keyspace(&id.keyspace_name(SPANS_KIND), || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
                .filter_policy(FilterPolicy::disabled())
                .with_kv_separation(Some(
                    KvSeparationOptions::default().compression(CompressionType::None),
                ))
        })?;
        // Index entries are read by range scans only (bloom filters would cost a hash per
        // key and bytes per entry for nothing) and compress well at every level.
        let index = self.db.keyspace(&id.keyspace_name(INDEX_KIND), || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                .filter_policy(FilterPolicy::disabled())
        })?;
        let counts = index
            .get(keys::counts_key())?
            .map(|value| Counts::decode(&value))
            .unwrap_or_default();
        Ok(Partition {
            id,
            spans,
            index,
            written: Mutex::new(HashSet::new()),
            counts: Mutex::new(counts),
        })
    }

    /// The live partitions, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Store-wide approximate counts.
    pub(crate) fn stats(&self) -> StoreStats {
        let mut stats = StoreStats::default();
        for partition in self.partitions.read().values() {
            let counts = *partition.counts.lock();
            stats.spans += counts.spans;
            stats.traces += counts.traces;
        }
        stats
    }

    /// Forces everything written so far to disk.
    pub(crate) fn sync_all(&self) -> Result<(), LsmError> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    /// Flushes every memtable into tables, then syncs: fjall frees a journal only once every
    /// keyspace written in it is flushed, so this leaves no journal to replay or keep.
    pub(crate) fn flush_and_sync(&self) -> Result<(), LsmError> {
        for partition in self.snapshot() {
            partition.spans.rotate_memtable_and_wait()?;
            partition.index.rotate_memtable_and_wait()?;
        }
        self.meta.rotate_memtable_and_wait()?;
        self.sync_all()
    }

    /// A read guard over the partition map that holds every partition in `ids`, creating the
    /// missing ones. Purge and expiry take the write lock, so no partition is deleted while
    /// a write holds this guard.
    fn partitions_with(
        &self,
        ids: &BTreeSet<PartitionId>,
    ) -> Result<RwLockReadGuard<'_, PartitionMap>, LsmError> {
        {
            let guard = self.partitions.read();
            if ids.iter().all(|id| guard.contains_key(id)) {
                return Ok(guard);
            }
        }
        let mut guard = self.partitions.write();
        for id in ids {
            if !guard.contains_key(id) {
                let partition = self.open_partition(*id)?;
                guard.insert(*id, Arc::new(partition));
            }
        }
        Ok(RwLockWriteGuard::downgrade(guard))
    }

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

    /// Deletes every partition (all tenants). Returns once the keyspaces are gone from the
    /// database; their folders are removed as soon as in-flight reads release them.
    pub(crate) fn purge(&self) -> Result<(), LsmError> {
        let mut guard = self.partitions.write();
        let dropped = std::mem::take(&mut *guard);
        for partition in dropped.into_values() {
            self.delete_partition(&partition)?;
        }
        // Keyspaces of a partition that was only half created before a crash.
        for name in self.db.list_keyspace_names() {
            if PartitionId::parse(&name).is_some() {
                let handle = self.db.keyspace(&name, KeyspaceCreateOptions::default)?;
                self.db.delete_keyspace(handle)?;
            }
        }
        drop(guard);
        self.sync_all()
    }

    /// Drops every partition whose spans all started more than the retention before `now`.
    /// Returns how many partitions were dropped.
    pub(crate) fn expire(&self, now: UnixNanos) -> Result<usize, LsmError> {
        let Some(retention) = self.retention_nanos else {
            return Ok(0);
        };
        let cutoff = now.0.saturating_sub(retention);
        let expired: Vec<PartitionId> = self
            .partitions
            .read()
            .keys()
            .filter(|id| id.end_nanos() <= cutoff)
            .copied()
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let mut guard = self.partitions.write();
        let mut dropped = 0;
        for id in expired {
            if let Some(partition) = guard.remove(&id) {
                self.delete_partition(&partition)?;
                dropped += 1;
            }
        }
        drop(guard);
        tracing::info!(
            partitions = dropped,
            "lsm retention dropped expired partitions"
        );
        Ok(dropped)
    }

    fn delete_partition(&self, partition: &Partition) -> Result<(), LsmError> {
        self.db.delete_keyspace(partition.spans.clone())?;
        self.db.delete_keyspace(partition.index.clone())?;
        Ok(())
    }
}

/// Write batch IDs: unique for the life of the directory. Postings name traces by batch ID
/// and position, so a repeated ID would mix two batches' trace tables.
struct BatchIds {
    next: u64,
    /// IDs below this are reserved (persisted) for this process.
    reserved_until: u64,
}

/// Batch IDs reserved per persisted reservation.
const BATCH_ID_RESERVATION: u64 = 1 << 32;

impl BatchIds {
    /// Starts at the clock or past every ID an earlier process may have used.
    fn reserve(db: &Database, meta: &Keyspace) -> Result<Self, LsmError> {
        let stored = meta
            .get(keys::batch_reservation_key())?
            .and_then(|value| value.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let mut ids = Self {
            next: UnixNanos::now().0.max(stored),
            reserved_until: 0,
        };
        ids.extend(db, meta)?;
        Ok(ids)
    }

    fn extend(&mut self, db: &Database, meta: &Keyspace) -> Result<(), LsmError> {
        let until = self.next.saturating_add(BATCH_ID_RESERVATION);
        meta.insert(keys::batch_reservation_key(), until.to_be_bytes())?;
        persist_meta(db)?;
        self.reserved_until = until;
        Ok(())
    }

    fn next(&mut self, db: &Database, meta: &Keyspace) -> Result<u64, LsmError> {
        if self.next >= self.reserved_until {
            self.extend(db, meta)?;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

/// Makes meta records durable. They stay in the meta memtable (a flush per open would cost a
/// journal rotation); fjall flushes it once the journals outgrow their limit, and `close`
/// flushes it with the partitions.
fn persist_meta(db: &Database) -> Result<(), LsmError> {
    db.persist(PersistMode::SyncAll)?;
    Ok(())
}

/// Refuses a directory written in another on-disk format, and stamps a new one.
fn check_format(db: &Database, path: &Path, has_partitions: bool) -> Result<Keyspace, LsmError> {
    let meta = db.keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)?;
    match meta.get(keys::format_key())? {
        Some(version) if version.as_ref() == [FORMAT_VERSION] => Ok(meta),
        Some(version) => Err(LsmError::Format(format!(
            "lsm.data-dir {} holds on-disk format {:?}, this build reads format {FORMAT_VERSION}; \
             point lsm.data-dir at an empty directory or delete this one",
            path.display(),
            version.as_ref()
        ))),
        None if has_partitions => Err(LsmError::Format(format!(
            "lsm.data-dir {} holds data in on-disk format 1 (pre-release), this build reads \
             format {FORMAT_VERSION}; point lsm.data-dir at an empty directory or delete this one",
            path.display()
        ))),
        None => {
            meta.insert(keys::format_key(), [FORMAT_VERSION])?;
            persist_meta(db)?;
            Ok(meta)
        }
    }
}

/// A span kind as stored in operation records.
pub(crate) fn kind_byte(span: &Span) -> u8 {
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
        self.batch.commit()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_and_sort_by_time() {
        let early = PartitionId::for_time(3_600 * NANOS_PER_SECOND + 5, 3_600);
        assert_eq!(early.start_secs, 3_600);
        let late = PartitionId::for_time(36_000 * NANOS_PER_SECOND, 3_600);
        let early_name = early.keyspace_name(INDEX_KIND);
        let late_name = late.keyspace_name(INDEX_KIND);
        assert!(early_name < late_name);
        assert_eq!(PartitionId::parse(&early_name), Some((early, INDEX_KIND)));
        assert_eq!(PartitionId::parse("meta"), None);
        assert!(early.overlaps(early.start_nanos(), early.start_nanos()));
        assert!(!early.overlaps(early.end_nanos(), u64::MAX));
    }
}
