//! The synchronous core: the database, its time partitions, writes, purge and expiry.
//! Every method here blocks on disk I/O; the async layer ([`crate::store`]) calls them from
//! `spawn_blocking` or the background thread only.
//!
//! This file holds the engine's lifecycle: opening the database (format check, meta
//! records), the partition map, stats, syncing, purge and expiry. A partition and its naming
//! live in [`partition`], batch ID reservation in [`batch_ids`], the write path in [`write`],
//! its dependency-call side in [`calls`], and the folding of call records in [`fold`].

mod batch_ids;
mod calls;
mod fold;
mod partition;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use remote_storage_core::{StoreError, StoreStats, UnixNanos};

use self::batch_ids::BatchIds;
pub(crate) use self::partition::Partition;
pub(crate) use self::partition::PartitionId;
use crate::config::SyncPolicy;
use crate::error::LsmError;
use crate::health::StoreHealth;
use crate::keys;
use crate::rollups::cache::SiteCache;

/// Journals kept before fjall forces memtables to disk. A crash replays at most this much at
/// startup, so recovery stays within seconds (fjall's default is 512 MiB; 64 MiB is its floor).
const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// The on-disk format this build reads and writes. Version 1 (one record per span, text
/// index keys) and version 2 (no dependency rollups, which cannot be rebuilt without reading
/// every trace) are not readable: a directory holding them is refused at open.
const FORMAT_VERSION: u8 = 3;
/// The keyspace holding the format record.
const META_KEYSPACE: &str = "meta";
/// How often a flush wait looks at fjall's progress (and whether it has died).
const FLUSH_POLL: Duration = Duration::from_millis(10);

type PartitionMap = BTreeMap<PartitionId, Arc<Partition>>;

/// The database and its live partitions.
pub(crate) struct Engine {
    pub(crate) db: Database,
    span_secs: u64,
    /// Memtable size of the partitions this process creates.
    memtable_size_bytes: u64,
    retention_nanos: Option<u64>,
    sync: SyncPolicy,
    partitions: RwLock<PartitionMap>,
    /// Holds the format record and the batch ID reservation.
    meta: Keyspace,
    batch_ids: Mutex<BatchIds>,
    /// Call sites of recently written traces. Its lock is held by a write from reading the
    /// sites of its traces to committing its batch, so the call deltas of concurrent writes
    /// to one trace are computed one after the other (see `engine::write`).
    pub(crate) call_sites: Mutex<SiteCache>,
    /// Held by a fold of the call records, so two never fold one hour at once.
    folding: Mutex<()>,
    /// Whether the store still serves; latches the first fatal storage fault.
    pub(crate) health: StoreHealth,
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
        memtable_size_bytes: u64,
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
            memtable_size_bytes,
            retention_nanos,
            sync,
            partitions: RwLock::new(BTreeMap::new()),
            meta,
            batch_ids: Mutex::new(batch_ids),
            call_sites: Mutex::new(SiteCache::default()),
            folding: Mutex::new(()),
            health: StoreHealth::new(path),
            _temp_dir: temp_dir,
        };
        let mut partitions = BTreeMap::new();
        for id in ids {
            let partition = Partition::open(&engine.db, id, memtable_size_bytes)?;
            partitions.insert(id, Arc::new(partition));
        }
        *engine.partitions.write() = partitions;
        Ok(engine)
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
        let mut keyspaces = vec![self.meta.clone()];
        for partition in self.snapshot() {
            keyspaces.push(partition.spans.clone());
            keyspaces.push(partition.index.clone());
        }
        self.flush(&keyspaces)?;
        self.sync_all()
    }

    /// Seals the memtables of `keyspaces` and waits until fjall has written them out as
    /// tables. Unlike fjall's `rotate_memtable_and_wait`, gives up as soon as the database is
    /// poisoned: a flush worker that died (a full disk) never empties the queue, and that wait
    /// would never return.
    pub(crate) fn flush(&self, keyspaces: &[Keyspace]) -> Result<(), LsmError> {
        for keyspace in keyspaces {
            keyspace.rotate_memtable()?;
        }
        while keyspaces
            .iter()
            .any(|keyspace| keyspace.sealed_memtable_count() > 0)
        {
            // Writes nothing to disk; fails once fjall has poisoned itself.
            self.db.persist(PersistMode::Buffer)?;
            std::thread::sleep(FLUSH_POLL);
        }
        Ok(())
    }

    /// The store's error for a failed engine call, latching fatal faults. Blocking.
    pub(crate) fn store_error(&self, error: LsmError) -> StoreError {
        self.health.store_error(error, &self.db)
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
                let partition = Partition::open(&self.db, *id, self.memtable_size_bytes)?;
                guard.insert(*id, Arc::new(partition));
            }
        }
        Ok(RwLockWriteGuard::downgrade(guard))
    }

    /// Deletes every partition (all tenants). Returns once the keyspaces are gone from the
    /// database; their folders are removed as soon as in-flight reads release them.
    pub(crate) fn purge(&self) -> Result<(), LsmError> {
        let mut guard = self.partitions.write();
        // Writes hold the partition map's read lock until their batch is committed and their
        // sites remembered, so none is between the two here.
        self.call_sites.lock().clear();
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
        // Remembered sites may lie in the dropped partitions (see `purge`).
        self.call_sites.lock().clear();
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

impl Drop for Engine {
    fn drop(&mut self) {
        if self.health.is_failed() {
            // Closing a fjall database waits for its worker threads, and one stuck on the
            // failed disk would hold this thread, and with it the process, forever. The store
            // is dead and everything acknowledged is in the journal already: leave the
            // database to the process exit.
            std::mem::forget(self.db.clone());
        }
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
