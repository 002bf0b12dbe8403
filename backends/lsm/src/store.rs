//! The store traits over the synchronous [`Engine`]: every fjall call runs in
//! `spawn_blocking` (or the background thread), and streamed reads produce one trace at a time
//! through a small bounded channel.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use remote_storage_core::{
    Backend, DependencyLink, DependencyQuery, DependencyStore, EncodedTraceStream, FoundTraceId,
    Operation, OperationQuery, Purger, Span, StoreError, StoreLifecycle, StoreResult, StoreStats,
    SummaryStream, Tenant, TraceId, TraceLookup, TraceQuery, TraceStore, TraceStream, UnixNanos,
};

use crate::config::{LsmConfig, StorageLocation, SyncPolicy};
use crate::engine::{Engine, Partition};
use crate::error::LsmError;
use crate::fault::Fault;
use crate::read::{ContentCache, Skeletons};
use crate::{CAPABILITIES, NAME};

/// Items buffered between a blocking reader and the consumer of its stream. Small, so a slow
/// client holds at most a couple of traces in memory.
const STREAM_BUFFER: usize = 2;
/// Longest a readiness probe may take; it waits for the journal lock, which a write stuck on a
/// failing disk may hold.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest `close` may take: flushing the memtables of a healthy store takes seconds at most;
/// beyond this the engine is taken as stuck, so the process can still exit (the journal is
/// replayed at the next start).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(8);
/// How often the background thread folds the call records written meanwhile: a fold costs a
/// scan of the records of the partitions written since the last one.
const FOLD_INTERVAL: Duration = Duration::from_secs(5);

/// The background thread: periodic fsync, retention and folding of call records.
struct Background {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

/// A trace store on an embedded fjall database.
pub struct LsmStore {
    engine: Arc<Engine>,
    background: Mutex<Option<Background>>,
    /// A readiness probe is running; a stuck one is not joined by another.
    probing: Arc<AtomicBool>,
}

impl std::fmt::Debug for LsmStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmStore").finish_non_exhaustive()
    }
}

impl LsmStore {
    /// Opens or creates the database. Blocking: startup reads only keyspace names and one
    /// small counts record per partition, so it takes milliseconds, not a data scan. Expired
    /// partitions are dropped before this returns.
    pub fn open(config: LsmConfig) -> StoreResult<Self> {
        config.validate()?;
        let started = Instant::now();
        let (path, temp_dir): (PathBuf, _) = match &config.location {
            StorageLocation::Directory(path) => {
                std::fs::create_dir_all(path).map_err(|error| {
                    StoreError::internal(
                        format!("lsm.data-dir {} cannot be created", path.display()),
                        error,
                    )
                })?;
                (path.clone(), None)
            }
            StorageLocation::Ephemeral => {
                let dir = tempfile::Builder::new()
                    .prefix("jaeger-lsm-")
                    .tempdir()
                    .map_err(|error| {
                        StoreError::internal("temporary lsm directory cannot be created", error)
                    })?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let retention_nanos = (!config.retention.is_zero())
            .then(|| u64::try_from(config.retention.as_nanos()).unwrap_or(u64::MAX));
        let engine = Arc::new(
            Engine::open(
                &path,
                config.cache_size_bytes,
                config.memtable_size_bytes,
                config.effective_partition_span().as_secs(),
                retention_nanos,
                config.sync,
                temp_dir,
            )
            .map_err(StoreError::from)?,
        );
        engine.expire(UnixNanos::now()).map_err(StoreError::from)?;
        let background = spawn_background(&engine, &config);
        tracing::info!(
            path = %path.display(),
            partitions = engine.snapshot().len(),
            elapsed_ms = started.elapsed().as_millis(),
            "lsm store opened"
        );
        Ok(Self {
            engine,
            background: Mutex::new(background),
            probing: Arc::default(),
        })
    }

    /// Bundles this store as a [`Backend`].
    pub fn into_backend(self) -> Backend {
        Backend::from_store(NAME, CAPABILITIES, Arc::new(self))
    }

    /// Runs one retention pass as if the time were `now`; returns how many partitions were
    /// dropped. The background thread does this every `expiry_interval`.
    pub async fn expire(&self, now: UnixNanos) -> StoreResult<usize> {
        blocking(&self.engine, move |engine| engine.expire(now)).await
    }

    /// Bytes on disk (journals and every keyspace), as fjall reports them.
    pub async fn disk_space(&self) -> StoreResult<u64> {
        blocking(&self.engine, |engine| Ok(engine.db.disk_space()?)).await
    }

    /// Flushes every partition's memtables into tables and waits, so data no longer lives only
    /// in the journal. For tests that measure disk use; fjall flushes on its own otherwise.
    #[doc(hidden)]
    pub async fn flush_memtables(&self) -> StoreResult<()> {
        blocking(&self.engine, |engine| {
            let keyspaces: Vec<_> = engine
                .snapshot()
                .iter()
                .flat_map(|partition| [partition.spans.clone(), partition.index.clone()])
                .collect();
            engine.flush(&keyspaces)
        })
        .await
    }

    /// How many time partitions are live.
    pub fn partition_count(&self) -> usize {
        self.engine.snapshot().len()
    }

    fn stop_background(&self) -> Option<JoinHandle<()>> {
        let background = self.background.lock().take()?;
        drop(background.stop);
        Some(background.handle)
    }
}

impl Drop for LsmStore {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread, which then exits; not joined here so a
        // drop never blocks an async worker.
        if let Some(background) = self.background.get_mut().take() {
            drop(background.stop);
        }
    }
}

fn spawn_background(engine: &Arc<Engine>, config: &LsmConfig) -> Option<Background> {
    let sync_period = match config.sync {
        SyncPolicy::Periodic(period) => Some(period),
        SyncPolicy::Batch => None,
    };
    let expiry_period = (!config.retention.is_zero()).then_some(config.expiry_interval);
    let tick = [sync_period, expiry_period]
        .into_iter()
        .flatten()
        .fold(FOLD_INTERVAL, Duration::min);
    let weak = Arc::downgrade(engine);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("lsm-background".into())
        .spawn(move || {
            let mut next_sync = sync_period.map(|period| Instant::now() + period);
            let mut next_expiry = expiry_period.map(|period| Instant::now() + period);
            let mut next_fold = Instant::now() + FOLD_INTERVAL;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                let Some(engine) = weak.upgrade() else { break };
                // A latched fault fails every pass and was logged once when latched.
                if engine.health.is_failed() {
                    continue;
                }
                let now = Instant::now();
                if let (Some(due), Some(period)) = (next_sync, sync_period)
                    && now >= due
                {
                    if let Err(error) = engine.sync_all() {
                        let error = engine.store_error(error);
                        tracing::error!(%error, "lsm periodic fsync failed");
                    }
                    next_sync = Some(now + period);
                }
                if let (Some(due), Some(period)) = (next_expiry, expiry_period)
                    && now >= due
                {
                    if let Err(error) = engine.expire(UnixNanos::now()) {
                        let error = engine.store_error(error);
                        tracing::error!(%error, "lsm retention pass failed");
                    }
                    next_expiry = Some(now + period);
                }
                if now >= next_fold {
                    if let Err(error) = engine.fold_calls() {
                        let error = engine.store_error(error);
                        tracing::error!(%error, "lsm call record fold failed");
                    }
                    next_fold = now + FOLD_INTERVAL;
                }
            }
            // Whatever the policy, leave nothing unsynced behind on a clean stop.
            if sync_period.is_some()
                && let Some(engine) = weak.upgrade()
                && !engine.health.is_failed()
                && let Err(error) = engine.sync_all()
            {
                let error = engine.store_error(error);
                tracing::error!(%error, "lsm final fsync failed");
            }
        });
    match spawned {
        Ok(handle) => Some(Background { stop, handle }),
        Err(error) => {
            tracing::error!(%error, "lsm background thread could not start");
            None
        }
    }
}

/// Runs blocking engine work off the async workers. A failed store answers at once; a call
/// that is stuck in the engine when the store fails (a write waiting for a flush worker that
/// died) answers as soon as the failure is known, leaving its thread behind.
async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    work: impl FnOnce(&Engine) -> Result<T, LsmError> + Send + 'static,
) -> StoreResult<T> {
    engine.health.check()?;
    let worker_engine = Arc::clone(engine);
    let task = tokio::task::spawn_blocking(move || {
        work(&worker_engine).map_err(|error| worker_engine.store_error(error))
    });
    tokio::select! {
        biased;
        joined = task => joined
            .map_err(|error| StoreError::internal("lsm store task failed", error))?,
        () = engine.health.failed() => Err(engine.health.failure()),
    }
}

/// A stream fed by a blocking producer one item at a time; the producer stops as soon as the
/// consumer goes away (`emit` returns `false`). A failed store answers at once.
fn stream_blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    produce: impl FnOnce(&Engine, &mut dyn FnMut(T) -> bool) -> Result<(), LsmError> + Send + 'static,
) -> StoreResult<BoxStream<'static, StoreResult<T>>> {
    engine.health.check()?;
    let engine = Arc::clone(engine);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER);
    tokio::task::spawn_blocking(move || {
        let mut emit = |item: T| sender.blocking_send(Ok(item)).is_ok();
        if let Err(error) = produce(&engine, &mut emit) {
            // The consumer may be gone already; nothing else to tell.
            let _ = sender.blocking_send(Err(engine.store_error(error)));
        }
    });
    Ok(futures::stream::poll_fn(move |context| receiver.poll_recv(context)).boxed())
}

/// How one trace is read for [`stream_traces`]: whole, or as its stored bytes.
type LoadTrace<T> = fn(
    &Engine,
    &Tenant,
    TraceId,
    &[Arc<Partition>],
    &mut ContentCache,
) -> Result<Option<T>, LsmError>;

/// Streams the traces of `lookups` in request order with `load`, over one snapshot of the
/// partitions, skipping unknown IDs and stopping when the consumer goes away.
fn stream_traces<T: Send + 'static>(
    engine: &Arc<Engine>,
    tenant: &Tenant,
    lookups: Vec<TraceLookup>,
    load: LoadTrace<T>,
) -> StoreResult<BoxStream<'static, StoreResult<T>>> {
    let tenant = tenant.clone();
    stream_blocking(engine, move |engine, emit| {
        let partitions = engine.snapshot();
        let mut cache = ContentCache::default();
        for lookup in lookups {
            if let Some(trace) = load(engine, &tenant, lookup.trace_id, &partitions, &mut cache)?
                && !emit(trace)
            {
                break;
            }
        }
        Ok(())
    })
}

#[async_trait]
impl TraceStore for LsmStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let tenant = tenant.clone();
        blocking(&self.engine, move |engine| {
            engine.health.ensure_directory()?;
            engine.write(&tenant, &spans)
        })
        .await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        stream_traces(&self.engine, tenant, lookups, Engine::load_trace)
    }

    /// The stored span bytes go out as they are: no span is decoded.
    async fn get_encoded_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<EncodedTraceStream> {
        stream_traces(&self.engine, tenant, lookups, Engine::load_encoded_trace)
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        let tenant = tenant.clone();
        blocking(&self.engine, move |engine| engine.services(&tenant)).await
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        let tenant = tenant.clone();
        blocking(&self.engine, move |engine| {
            engine.operations(&tenant, &query.service, query.span_kind)
        })
        .await
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let tenant = tenant.clone();
        blocking(&self.engine, move |engine| {
            let partitions = engine.snapshot();
            let mut found = Vec::new();
            engine.search(&tenant, &query, &partitions, &mut |trace_id| {
                found.push(trace_id);
                Ok(true)
            })?;
            // Time hints from the summary fragments: cheap, and they narrow a later lookup.
            let mut with_hints = Vec::with_capacity(found.len());
            for trace_id in found {
                let entries = engine.fragment_entries(&tenant, &trace_id, &partitions)?;
                with_hints.push(FoundTraceId {
                    trace_id,
                    start: entries.iter().map(|entry| UnixNanos(entry.start)).min(),
                    end: entries.iter().map(|entry| UnixNanos(entry.end)).max(),
                });
            }
            Ok(with_hints)
        })
        .await
    }

    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        let tenant = tenant.clone();
        stream_blocking(&self.engine, move |engine, emit| {
            let partitions = engine.snapshot();
            let mut cache = ContentCache::default();
            engine.search(
                &tenant,
                &query,
                &partitions,
                &mut |trace_id| match engine.load_trace(
                    &tenant,
                    trace_id,
                    &partitions,
                    &mut cache,
                )? {
                    Some(trace) => Ok(emit(trace)),
                    None => Ok(true),
                },
            )
        })
    }

    async fn find_trace_summaries(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<SummaryStream> {
        let tenant = tenant.clone();
        stream_blocking(&self.engine, move |engine, emit| {
            let partitions = engine.snapshot();
            let mut skeletons = Skeletons::default();
            engine.search(
                &tenant,
                &query,
                &partitions,
                &mut |trace_id| match engine.summary(
                    &tenant,
                    trace_id,
                    &partitions,
                    &mut skeletons,
                )? {
                    Some(summary) => Ok(emit(summary)),
                    None => Ok(true),
                },
            )
        })
    }
}

#[async_trait]
impl DependencyStore for LsmStore {
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let tenant = tenant.clone();
        blocking(&self.engine, move |engine| {
            engine.dependencies(&tenant, &query)
        })
        .await
    }
}

#[async_trait]
impl Purger for LsmStore {
    async fn purge(&self) -> StoreResult<()> {
        blocking(&self.engine, Engine::purge).await
    }
}

#[async_trait]
impl StoreLifecycle for LsmStore {
    /// Ready while no fatal storage fault is latched, the data directory is still the one
    /// opened, and fjall has not poisoned itself (a background flush that died on a full disk
    /// shows up only here until the next write).
    async fn ready(&self) -> StoreResult<()> {
        self.engine.health.check()?;
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Unavailable {
                message: "lsm store health probe is still waiting for the disk".into(),
                source: None,
            });
        }
        let probing = Arc::clone(&self.probing);
        let engine = Arc::clone(&self.engine);
        let probe = tokio::task::spawn_blocking(move || {
            let probed = engine.health.probe(&engine.db);
            probing.store(false, Ordering::Release);
            probed
        });
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(joined) => {
                joined.map_err(|error| StoreError::internal("lsm health probe failed", error))?
            }
            Err(_elapsed) => Err(StoreError::Unavailable {
                message: format!("lsm store health probe took longer than {PROBE_TIMEOUT:?}"),
                source: None,
            }),
        }
    }

    fn stats(&self) -> Option<StoreStats> {
        Some(self.engine.stats())
    }

    /// Stops the background thread, writes the memtables out as tables (so the next start
    /// replays no journal and sealed journals are freed) and fsyncs everything. A failed store
    /// answers its fault at once (a flush would wait for workers that died), and a stuck one
    /// gives up after [`CLOSE_TIMEOUT`]; either way the journal holds every acknowledged write.
    async fn close(&self) -> StoreResult<()> {
        let health = &self.engine.health;
        let closing = async {
            if let Some(handle) = self.stop_background() {
                let joined = tokio::task::spawn_blocking(move || handle.join());
                tokio::select! {
                    joined = joined => joined
                        .map_err(|error| StoreError::internal("lsm background stop failed", error))?
                        .map_err(|_| StoreError::Internal {
                            message: "lsm background thread panicked".into(),
                            source: None,
                        })?,
                    () = health.failed() => return Err(health.failure()),
                }
            }
            blocking(&self.engine, Engine::flush_and_sync).await
        };
        match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            Ok(closed) => closed,
            Err(_elapsed) => Err(health.latch(&Fault::CloseTimedOut(CLOSE_TIMEOUT))),
        }
    }
}
