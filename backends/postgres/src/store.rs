//! The store traits over one connection pool.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::{
    DependencyLink, DependencyQuery, DependencyStore, EncodedTrace, EncodedTraceStream,
    FoundTraceId, Operation, OperationQuery, Purger, Span, StoreError, StoreLifecycle, StoreResult,
    SummaryStream, Tenant, Trace, TraceId, TraceLookup, TraceQuery, TraceStore, TraceStream,
    TraceSummary, UnixNanos,
};
use sqlx::postgres::PgPool;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::PostgresConfig;
use crate::dependencies;
use crate::encoded::encode_trace;
use crate::error::{sql_state, store_error, timed_out};
use crate::rollups::WriteTraces;
use crate::rows::{Batch, SLOT_NS, TraceRows, decode_stored, decode_trace, merge_stored, pg_text};
use crate::schema::{Partitions, from_db_nanos, to_db_nanos};
use crate::search::{Planned, SearchPlan};
use crate::summaries::SummaryCache;
use crate::write::{Written, write_batch};

/// Traces whose compressed rows add up to more than this decode on both cores.
const PARALLEL_DECODE_BYTES: usize = 256 * 1024;

/// What the background task and the store share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) partitions: Partitions,
    pub(crate) config: PostgresConfig,
    /// Stored nanoseconds from which the call rollups hold every call (earlier minutes are
    /// counted from the spans); fixed when the rollups table was created.
    pub(crate) rollups_from: i64,
    /// Summaries of recently written traces: a write continuing one of them need not read it.
    pub(crate) summaries: SummaryCache,
}

/// A trace store in one PostgreSQL schema.
#[derive(Debug)]
pub struct PostgresStore {
    shared: Arc<Shared>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
}

impl PostgresStore {
    pub(crate) fn new(
        pool: PgPool,
        partitions: Partitions,
        config: PostgresConfig,
        rollups_from: i64,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                partitions,
                config,
                rollups_from,
                summaries: SummaryCache::default(),
            }),
            maintenance: Mutex::new(None),
        }
    }

    /// Starts the background task that creates upcoming partitions and drops expired ones
    /// every `maintenance_interval`.
    pub(crate) fn start_maintenance(&self) {
        let shared = Arc::clone(&self.shared);
        let handle = tokio::spawn(async move {
            let interval = shared.config.maintenance_interval;
            loop {
                tokio::time::sleep(interval).await;
                if let Err(error) = shared.maintain(UnixNanos::now()).await {
                    warn!(backend = crate::NAME, error = %error, "partition maintenance failed");
                }
            }
        });
        if let Some(previous) = self.maintenance.lock().replace(handle) {
            previous.abort();
        }
    }

    /// Creates the partitions of the current and next two buckets and drops every partition
    /// older than the retention, as of `now`. Returns the start (Unix nanoseconds) of each
    /// dropped bucket. The background task calls this; it is public for tests and tools.
    pub async fn run_maintenance(&self, now: UnixNanos) -> StoreResult<Vec<i64>> {
        self.shared.maintain(now).await
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// Runs database work under the configured query timeout.
    async fn bounded<T>(
        &self,
        context: &str,
        work: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        bounded(self.shared.config.query_timeout, context, work).await
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(handle) = self.maintenance.lock().take() {
            handle.abort();
        }
    }
}

async fn bounded<T>(
    timeout: Duration,
    context: &str,
    work: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(context)),
    }
}

fn tenant_text(tenant: &Tenant) -> String {
    pg_text(tenant.name()).into_owned()
}

impl Shared {
    async fn maintain(&self, now: UnixNanos) -> StoreResult<Vec<i64>> {
        let dropped = bounded(
            self.config.query_timeout,
            "partition maintenance",
            self.partitions
                .maintain(&self.pool, now, self.config.retention),
        )
        .await?;
        if !dropped.is_empty() {
            // A kept summary may describe spans that were just dropped.
            self.summaries.clear();
        }
        Ok(dropped)
    }

    async fn write(&self, tenant: &str, batch: &Batch, mut traces: WriteTraces) -> StoreResult<()> {
        self.partitions.ensure(&self.pool, &batch.buckets).await?;
        let width = self.partitions.width();
        let write = || write_batch(&self.pool, tenant, batch, &traces, width, &self.summaries);
        let written = match write().await {
            // A partition vanished under us (dropped by another process): reload and retry.
            Err(error) if sql_state(&error).as_deref() == Some("23514") => {
                self.partitions.forget();
                self.partitions.ensure(&self.pool, &batch.buckets).await?;
                write()
                    .await
                    .map_err(|error| store_error("writing spans", error))?
            }
            // Two writes deadlocked (e.g. on a new service row): the loser is rolled back whole
            // and can run again.
            Err(error) if sql_state(&error).as_deref() == Some("40P01") => write()
                .await
                .map_err(|error| store_error("writing spans", error))?,
            Err(error) => Err(store_error("writing spans", error)),
            Ok(written) => written,
        }?;
        self.keep_summaries(tenant, &mut traces, written);
        Ok(())
    }

    /// Keeps the summaries of a committed write's traces for the next write of each.
    fn keep_summaries(&self, tenant: &str, traces: &mut WriteTraces, written: Written) {
        for (trace, (version, summary)) in traces.traces.iter_mut().zip(written) {
            if let Some(summary) = summary.or_else(|| trace.summary.take()) {
                self.summaries.put(tenant, trace.id, version, summary);
            }
        }
    }

    /// The rows `(batch_seq, payload)` of each lookup's trace, in the lookups' order (`None`
    /// for a trace with no rows), with one query: a search's traces cost one round trip, not
    /// one each.
    ///
    /// The query is bounded by the union of the lookups' time hints (so partitions outside
    /// it are pruned) and each row is then kept only within its own lookup's hints.
    async fn fetch_rows(
        &self,
        tenant: &str,
        lookups: &[TraceLookup],
    ) -> StoreResult<Vec<Option<TraceRows>>> {
        let ids: Vec<&[u8]> = lookups
            .iter()
            .map(|lookup| lookup.trace_id.as_bytes().as_slice())
            .collect();
        let low = |lookup: &TraceLookup| lookup.start.map(|time| to_db_nanos(time.0));
        let high = |lookup: &TraceLookup| lookup.end.map(|time| to_db_nanos(time.0));
        // A bound holds for the union only when every lookup has it.
        let union_low = lookups
            .iter()
            .map(low)
            .try_fold(i64::MAX, |min, low| low.map(|low| min.min(low)));
        let union_high = lookups
            .iter()
            .map(high)
            .try_fold(i64::MIN, |max, high| high.map(|high| max.max(high)));
        let rows: Vec<(Vec<u8>, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT trace_id, min_start, batch_seq, payload FROM chunks \
             WHERE tenant = $1 AND trace_id = ANY($2) \
               AND ($3::bigint IS NULL OR min_start >= $3 - $5) \
               AND ($4::bigint IS NULL OR min_start <= $4)",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(union_low)
        .bind(union_high)
        .bind(SLOT_NS)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| store_error("reading traces", error))?;
        // Per trace: `(min_start, batch_seq, payload)` of its rows.
        type StartedRows = Vec<(i64, i64, Vec<u8>)>;
        let mut by_trace: HashMap<Vec<u8>, StartedRows> = HashMap::new();
        for (trace_id, min_start, batch_seq, payload) in rows {
            by_trace
                .entry(trace_id)
                .or_default()
                .push((min_start, batch_seq, payload));
        }
        // A trace asked for twice has its rows copied for all but its last lookup.
        let mut remaining: HashMap<&[u8], usize> = HashMap::new();
        for id in &ids {
            *remaining.entry(id).or_default() += 1;
        }
        Ok(lookups
            .iter()
            .zip(&ids)
            .map(|(lookup, id)| {
                let count = remaining.get_mut(id)?;
                *count -= 1;
                let stored = if *count == 0 {
                    by_trace.remove(*id)?
                } else {
                    by_trace.get(*id)?.clone()
                };
                let (low, high) = (low(lookup), high(lookup));
                let rows: TraceRows = stored
                    .into_iter()
                    .filter(|(min_start, ..)| {
                        low.is_none_or(|low| *min_start >= low.saturating_sub(SLOT_NS))
                            && high.is_none_or(|high| *min_start <= high)
                    })
                    .map(|(_, batch_seq, payload)| (batch_seq, payload))
                    .collect();
                (!rows.is_empty()).then_some(rows)
            })
            .collect())
    }

    /// The traces a search finds, ranked: IDs only, then [`PostgresStore::read_traces`]
    /// reads them without time hints (all of a trace's rows), which saves the query for the
    /// hints.
    async fn search(&self, tenant: &str, query: &TraceQuery) -> StoreResult<Vec<TraceId>> {
        let page_rows = usize::try_from(self.config.search_walk_rows.get()).unwrap_or(usize::MAX);
        match SearchPlan::plan(tenant, query, page_rows) {
            Planned::NothingMatches => Ok(Vec::new()),
            Planned::Search(plan) => plan.trace_ids(&self.pool).await,
        }
    }

    async fn find_trace_ids(
        &self,
        tenant: &str,
        query: &TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let ids = self.search(tenant, query).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let id_bytes: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let bounds: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT trace_id, min(min_start), max(max_end) FROM chunks \
             WHERE tenant = $1 AND trace_id = ANY($2) GROUP BY trace_id",
        )
        .bind(tenant)
        .bind(&id_bytes)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| store_error("reading trace bounds", error))?;
        let bounds: HashMap<Vec<u8>, (i64, i64)> = bounds
            .into_iter()
            .map(|(id, start, end)| (id, (start, end)))
            .collect();
        Ok(ids
            .into_iter()
            .zip(id_bytes)
            .map(|(trace_id, bytes)| {
                let hint = bounds.get(&bytes);
                FoundTraceId {
                    trace_id,
                    start: hint.map(|(start, _)| from_db_nanos(*start)),
                    end: hint.map(|(_, end)| from_db_nanos(*end)),
                }
            })
            .collect())
    }
}

/// Rows of one trace decoded off the async runtime. Large traces are split over both cores:
/// rows decode independently, the storage-order merge comes after.
async fn decode_rows(trace_id: TraceId, rows: TraceRows) -> StoreResult<Vec<Span>> {
    let total: usize = rows.iter().map(|(_, payload)| payload.len()).sum();
    if rows.len() < 2 || total < PARALLEL_DECODE_BYTES {
        return tokio::task::spawn_blocking(move || decode_trace(trace_id, rows))
            .await
            .map_err(|error| StoreError::internal("postgres: decoding task failed", error))?;
    }
    let mut rows = rows;
    let half = rows.len() / 2;
    let second = rows.split_off(half);
    let first = tokio::task::spawn_blocking(move || decode_stored(trace_id, rows));
    let second = tokio::task::spawn_blocking(move || decode_stored(trace_id, second));
    let (first, second) = futures::future::try_join(first, second)
        .await
        .map_err(|error| StoreError::internal("postgres: decoding task failed", error))?;
    let mut stored = first?;
    stored.extend(second?);
    Ok(merge_stored(stored))
}

/// What [`PostgresStore::read_traces`] makes of one trace's rows.
trait FromRows: 'static {
    type Item: Send + 'static;

    /// The item, computed on the calling thread (a blocking one).
    fn from_rows(trace_id: TraceId, rows: TraceRows) -> StoreResult<Self::Item>;

    /// The item of a large trace, off the async runtime.
    fn from_large_rows(
        trace_id: TraceId,
        rows: TraceRows,
    ) -> BoxFuture<'static, StoreResult<Self::Item>> {
        async move {
            tokio::task::spawn_blocking(move || Self::from_rows(trace_id, rows))
                .await
                .map_err(|error| StoreError::internal("postgres: decoding task failed", error))?
        }
        .boxed()
    }
}

/// Whole traces, decoded.
struct Decoded;

impl FromRows for Decoded {
    type Item = Trace;

    fn from_rows(trace_id: TraceId, rows: TraceRows) -> StoreResult<Trace> {
        let spans = decode_trace(trace_id, rows)?;
        Ok(Trace { trace_id, spans })
    }

    /// Decoded on both cores (see [`decode_rows`]).
    fn from_large_rows(
        trace_id: TraceId,
        rows: TraceRows,
    ) -> BoxFuture<'static, StoreResult<Trace>> {
        async move {
            let spans = decode_rows(trace_id, rows).await?;
            Ok(Trace { trace_id, spans })
        }
        .boxed()
    }
}

/// Traces as OTLP bytes, no span decoded (see [`crate::encoded`]).
struct Encoded;

impl FromRows for Encoded {
    type Item = EncodedTrace;

    fn from_rows(trace_id: TraceId, rows: TraceRows) -> StoreResult<EncodedTrace> {
        encode_trace(trace_id, rows)
    }
}

/// Summaries, from the decoded traces (the shared rules by construction).
struct Summarised;

impl FromRows for Summarised {
    type Item = TraceSummary;

    fn from_rows(trace_id: TraceId, rows: TraceRows) -> StoreResult<TraceSummary> {
        Decoded::from_rows(trace_id, rows).map(|trace| TraceSummary::from_trace(&trace))
    }
}

/// Traces read with one query. Jaeger's UI asks for 20 traces a search, so a search's
/// traces take one query; the compressed rows of a group are held until its traces are sent.
const TRACES_PER_QUERY: usize = 20;

/// One group of traces as read: small ones already made into items together (one hop to a
/// blocking thread for the group, not one per trace), larger ones still rows.
enum Group<T> {
    Made(Vec<T>),
    Rows(Vec<(TraceId, TraceRows)>),
}

impl PostgresStore {
    /// Streams the traces of `lookups` in request order, read [`TRACES_PER_QUERY`] at a
    /// time (each query bounded by the query timeout) and made into `F`'s items; unknown IDs
    /// are skipped.
    fn read_traces<F: FromRows>(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> BoxStream<'static, StoreResult<F::Item>> {
        let shared = Arc::clone(&self.shared);
        let tenant = tenant_text(tenant);
        let groups: Vec<Vec<TraceLookup>> = lookups
            .chunks(TRACES_PER_QUERY)
            .map(<[TraceLookup]>::to_vec)
            .collect();
        futures::stream::iter(groups)
            .then(move |group| {
                let shared = Arc::clone(&shared);
                let tenant = tenant.clone();
                async move {
                    let rows = bounded(
                        shared.config.query_timeout,
                        "reading traces",
                        shared.fetch_rows(&tenant, &group),
                    )
                    .await?;
                    let found: Vec<(TraceId, TraceRows)> = group
                        .into_iter()
                        .zip(rows)
                        .filter_map(|(lookup, rows)| Some((lookup.trace_id, rows?)))
                        .collect();
                    let bytes: usize = found
                        .iter()
                        .flat_map(|(_, rows)| rows.iter().map(|(_, payload)| payload.len()))
                        .sum();
                    if bytes >= PARALLEL_DECODE_BYTES {
                        return Ok(Group::Rows(found));
                    }
                    let made = tokio::task::spawn_blocking(move || {
                        found
                            .into_iter()
                            .map(|(trace_id, rows)| F::from_rows(trace_id, rows))
                            .collect::<StoreResult<Vec<_>>>()
                    })
                    .await
                    .map_err(|error| {
                        StoreError::internal("postgres: decoding task failed", error)
                    })??;
                    Ok::<_, StoreError>(Group::Made(made))
                }
            })
            .flat_map(|group| match group {
                Ok(Group::Made(items)) => futures::stream::iter(items.into_iter().map(Ok)).boxed(),
                Ok(Group::Rows(traces)) => futures::stream::iter(traces)
                    .then(|(trace_id, rows)| F::from_large_rows(trace_id, rows))
                    .boxed(),
                Err(error) => futures::stream::once(async { Err(error) }).boxed(),
            })
            .boxed()
    }

    /// The traces a search finds, read in groups (see [`PostgresStore::read_traces`]).
    async fn found_traces<F: FromRows>(
        &self,
        tenant: &Tenant,
        query: &TraceQuery,
    ) -> StoreResult<BoxStream<'static, StoreResult<F::Item>>> {
        let tenant_name = tenant_text(tenant);
        let ids = self
            .bounded("searching traces", self.shared.search(&tenant_name, query))
            .await?;
        let lookups = ids.into_iter().map(TraceLookup::whole).collect();
        Ok(self.read_traces::<F>(tenant, lookups))
    }
}

#[async_trait]
impl TraceStore for PostgresStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let width = self.shared.partitions.width();
        let (batch, traces) = tokio::task::spawn_blocking(move || {
            let batch = Batch::build(&spans, width)?;
            let traces = WriteTraces::build(&spans, &batch, width);
            Ok::<_, StoreError>((batch, traces))
        })
        .await
        .map_err(|error| StoreError::internal("postgres: encoding task failed", error))??;
        let tenant = tenant_text(tenant);
        self.bounded("writing spans", self.shared.write(&tenant, &batch, traces))
            .await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        Ok(self.read_traces::<Decoded>(tenant, lookups))
    }

    /// The stored span bytes go out with the trace ID put back: no span is decoded.
    async fn get_encoded_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<EncodedTraceStream> {
        Ok(self.read_traces::<Encoded>(tenant, lookups))
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        let tenant = tenant_text(tenant);
        self.bounded("listing services", async {
            let mut services: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT name FROM services WHERE tenant = $1")
                    .bind(&tenant)
                    .fetch_all(&self.shared.pool)
                    .await
                    .map_err(|error| store_error("listing services", error))?;
            services.sort_unstable();
            Ok(services)
        })
        .await
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        let tenant = tenant_text(tenant);
        let kind = query.span_kind.map(span_kind_name);
        self.bounded("listing operations", async {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT DISTINCT name, kind FROM operations \
                 WHERE tenant = $1 AND service = $2 AND ($3::text IS NULL OR kind = $3)",
            )
            .bind(&tenant)
            .bind(pg_text(&query.service).as_ref())
            .bind(kind)
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|error| store_error("listing operations", error))?;
            let mut operations: Vec<Operation> = rows
                .into_iter()
                .map(|(name, span_kind)| Operation { name, span_kind })
                .collect();
            operations.sort_unstable();
            Ok(operations)
        })
        .await
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let tenant = tenant_text(tenant);
        self.bounded(
            "searching traces",
            self.shared.find_trace_ids(&tenant, &query),
        )
        .await
    }

    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        self.found_traces::<Decoded>(tenant, &query).await
    }

    async fn find_trace_summaries(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<SummaryStream> {
        self.found_traces::<Summarised>(tenant, &query).await
    }
}

#[async_trait]
impl DependencyStore for PostgresStore {
    /// Exact [`DependencyCounter`] semantics: the window's whole minutes from the call
    /// rollups, its partial minutes at either edge from the spans (see `crate::dependencies`).
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let tenant = tenant_text(tenant);
        self.bounded(
            "computing dependencies",
            dependencies::links(&self.shared.pool, &tenant, &query, self.shared.rollups_from),
        )
        .await
    }
}

#[async_trait]
impl Purger for PostgresStore {
    async fn purge(&self) -> StoreResult<()> {
        self.bounded("purging", async {
            sqlx::query("TRUNCATE chunks, services, operations, call_rollups, trace_heads")
                .execute(&self.shared.pool)
                .await
                .map_err(|error| store_error("purging", error))?;
            self.shared.summaries.clear();
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl StoreLifecycle for PostgresStore {
    async fn ready(&self) -> StoreResult<()> {
        let timeout = self.shared.config.connect_timeout;
        bounded(timeout, "readiness probe", async {
            sqlx::query("SELECT 1")
                .execute(&self.shared.pool)
                .await
                .map_err(|error| store_error("readiness probe", error))?;
            Ok(())
        })
        .await
    }

    async fn close(&self) -> StoreResult<()> {
        if let Some(handle) = self.maintenance.lock().take() {
            handle.abort();
        }
        self.shared.pool.close().await;
        Ok(())
    }
}
