//! The synchronous core: the database, its time partitions, writes, purge and expiry.
//! Every method here blocks on disk I/O; the async layer ([`crate::store`]) calls them from
//! `spawn_blocking` or the background thread only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use prost::Message as _;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::model::{Resource, SERVICE_NAME_KEY, Scope};
use remote_storage_core::proto::otlp::common::KeyValue;
use remote_storage_core::{Span, StoreStats, Tenant, TraceId, UnixNanos};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::config::SyncPolicy;
use crate::error::LsmError;
use crate::keys::{self, ContentId, Discriminator, SpanRef};
use crate::records::{self, FragmentEntry};

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

/// One time partition's keyspaces: `spans` (span records) and `index` (everything else).
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
    next_batch_id: AtomicU64,
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
        let engine = Self {
            db,
            span_secs,
            retention_nanos,
            sync,
            partitions: RwLock::new(BTreeMap::new()),
            next_batch_id: AtomicU64::new(UnixNanos::now().0),
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
        // Large spans (over 1 KiB) go to blob files, so compaction moves only small keys.
        let spans = self.db.keyspace(&id.keyspace_name(SPANS_KIND), || {
            KeyspaceCreateOptions::default()
                .with_kv_separation(Some(KvSeparationOptions::default()))
        })?;
        let index = self.db.keyspace(
            &id.keyspace_name(INDEX_KIND),
            KeyspaceCreateOptions::default,
        )?;
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
            let batch_id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
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
    resources: HashMap<*const Resource, (ContentId, Vec<u8>)>,
    scopes: HashMap<*const Scope, (ContentId, Vec<u8>)>,
    /// Once-per-partition records added by this batch.
    once: HashSet<(PartitionId, Vec<u8>)>,
    /// Copies of one span content seen so far in this batch, per trace.
    occurrences: HashMap<(TraceId, u64), u32>,
    fragments: BTreeMap<(PartitionId, TraceId), Vec<FragmentEntry>>,
    counts: BTreeMap<PartitionId, Counts>,
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
            occurrences: HashMap::new(),
            fragments: BTreeMap::new(),
            counts: BTreeMap::new(),
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

    fn add(&mut self, span: &Span) -> Result<(), LsmError> {
        let id = PartitionId::for_time(span.start().0, self.engine.span_secs);
        let partitions = self.partitions;
        let Some(partition) = partitions.get(&id) else {
            return Err(LsmError::corrupt("partition vanished during a write"));
        };
        let tenant = self.tenant;

        let resource = Arc::as_ptr(span.resource());
        let (resource_id, resource_value) = self
            .resources
            .entry(resource)
            .or_insert_with(|| records::encode_resource(span.resource()))
            .clone();
        self.put_once(
            partition,
            keys::resource_key(tenant, &resource_id),
            &resource_value,
        );
        let scope = Arc::as_ptr(span.scope());
        let (scope_id, scope_value) = self
            .scopes
            .entry(scope)
            .or_insert_with(|| records::encode_scope(span.scope()))
            .clone();
        self.put_once(partition, keys::scope_key(tenant, &scope_id), &scope_value);

        let span_bytes = span.otlp().encode_to_vec();
        let disc = self.discriminator(span.trace_id(), &resource_id, &scope_id, &span_bytes);
        let trace_id = span.trace_id();
        self.batch.insert(
            &partition.spans,
            keys::span_key(tenant, &trace_id, &disc),
            records::encode_span(&resource_id, &scope_id, &span_bytes),
        );

        let reference = SpanRef {
            start: span.start().0,
            trace_id,
            disc,
        };
        let service = span.service_name();
        let index = &partition.index;
        let empty: &[u8] = &[];
        let entries = [
            keys::index_key(&keys::global_prefix(tenant), &reference),
            keys::index_key(&keys::service_prefix(tenant, service), &reference),
            keys::index_key(
                &keys::operation_prefix(tenant, service, span.name()),
                &reference,
            ),
            keys::duration_key(
                &keys::duration_prefix(tenant, service),
                span.duration_nanos(),
                &reference,
            ),
        ];
        for key in entries {
            self.batch.insert(index, key, empty);
        }
        if span.is_error() {
            self.batch.insert(
                index,
                keys::index_key(&keys::error_prefix(tenant), &reference),
                empty,
            );
        }
        for (key, value) in indexed_attributes(span) {
            self.batch.insert(
                index,
                keys::index_key(&keys::attribute_prefix(tenant, key, &value), &reference),
                empty,
            );
        }

        self.put_once(
            partition,
            keys::service_name_key(tenant, service),
            service.as_bytes(),
        );
        let kind = kind_byte(span);
        let mut operation_value = Vec::with_capacity(1 + span.name().len());
        operation_value.push(kind);
        operation_value.extend_from_slice(span.name().as_bytes());
        self.put_once(
            partition,
            keys::operation_name_key(tenant, service, kind, span.name()),
            &operation_value,
        );

        let is_root = span.parent_span_id().is_none();
        self.fragments
            .entry((id, trace_id))
            .or_default()
            .push(FragmentEntry {
                disc,
                span_id: *span.span_id().as_bytes(),
                parent: span.parent_span_id().map(|parent| *parent.as_bytes()),
                start: span.start().0,
                end: span.end().0,
                error: span.is_error(),
                service: service.to_owned(),
                root_name: is_root.then(|| span.name().to_owned()),
            });
        let counts = self.counts.entry(id).or_default();
        counts.spans += 1;
        counts.traces += u64::from(is_root);
        Ok(())
    }

    /// `hash(resource, scope)` then `hash(resource, scope, span bytes)`; the n-th identical
    /// copy of a span within one batch (n > 0) hashes its number in too. A re-sent batch thus
    /// rewrites the same keys (idempotent), while identical copies inside one batch are kept.
    fn discriminator(
        &mut self,
        trace_id: TraceId,
        resource_id: &ContentId,
        scope_id: &ContentId,
        span_bytes: &[u8],
    ) -> Discriminator {
        let mut group = Xxh3::new();
        group.update(resource_id);
        group.update(scope_id);
        let group_hash = group.digest();
        let mut content = Xxh3::new();
        content.update(resource_id);
        content.update(scope_id);
        content.update(span_bytes);
        let content_hash = content.digest();
        let occurrence = self
            .occurrences
            .entry((trace_id, content_hash))
            .or_insert(0);
        let this_copy = *occurrence;
        *occurrence += 1;
        let copy_hash = if this_copy == 0 {
            content_hash
        } else {
            let mut input = [0u8; 12];
            input[..8].copy_from_slice(&content_hash.to_be_bytes());
            input[8..].copy_from_slice(&this_copy.to_be_bytes());
            xxh3_64(&input)
        };
        let mut disc = [0u8; 16];
        disc[..8].copy_from_slice(&group_hash.to_be_bytes());
        disc[8..].copy_from_slice(&copy_hash.to_be_bytes());
        disc
    }

    fn commit(mut self, batch_id: u64) -> Result<(), LsmError> {
        let tenant = self.tenant;
        for ((id, trace_id), entries) in std::mem::take(&mut self.fragments) {
            let Some(partition) = self.partitions.get(&id) else {
                continue;
            };
            let value = records::encode_fragment(&entries);
            let key = keys::fragment_key(tenant, &trace_id, batch_id, xxh3_64(&value));
            self.batch.insert(&partition.index, key, value);
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
fn indexed_attributes(span: &Span) -> BTreeSet<(&str, String)> {
    fn add<'s>(
        pairs: &mut BTreeSet<(&'s str, String)>,
        attributes: &'s [KeyValue],
        skip_service: bool,
    ) {
        for attribute in attributes {
            if skip_service && attribute.key == SERVICE_NAME_KEY {
                continue;
            }
            pairs.insert((
                attribute.key.as_str(),
                any_value_text(attribute.value.as_ref()).into_owned(),
            ));
        }
    }
    let otlp = span.otlp();
    let mut pairs = BTreeSet::new();
    add(&mut pairs, &otlp.attributes, false);
    for event in &otlp.events {
        add(&mut pairs, &event.attributes, false);
    }
    for link in &otlp.links {
        add(&mut pairs, &link.attributes, false);
    }
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
