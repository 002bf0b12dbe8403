//! The store traits over one connection pool.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use parking_lot::Mutex;
use prost::Message as _;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::proto::otlp::common::InstrumentationScope;
use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
use remote_storage_core::proto::otlp::trace::{Span as OtlpSpan, Status};
use remote_storage_core::{
    DependencyLink, DependencyQuery, DependencyStore, FoundTraceId, Operation, OperationQuery,
    Purger, Resource, Scope, Span, StoreError, StoreLifecycle, StoreResult, SummaryStream, Tenant,
    Trace, TraceId, TraceLookup, TraceQuery, TraceStore, TraceStream, TraceSummary, UnixNanos,
};
use sqlx::postgres::PgPool;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::PostgresConfig;
use crate::error::{sql_state, store_error, timed_out};
use crate::rows::{Batch, pg_text};
use crate::schema::{Partitions, from_db_nanos, to_db_nanos};
use crate::search::{Planned, SearchPlan};

/// Decoded resources and scopes by content hash. Content-addressed, so entries never go stale;
/// the maps are simply cleared when they grow past this many entries.
const CACHE_LIMIT: usize = 10_000;

/// What the background task and the store share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) partitions: Partitions,
    pub(crate) config: PostgresConfig,
    resources: Mutex<HashMap<Vec<u8>, Arc<Resource>>>,
    scopes: Mutex<HashMap<Vec<u8>, Arc<Scope>>>,
}

/// A trace store in one PostgreSQL schema.
#[derive(Debug)]
pub struct PostgresStore {
    shared: Arc<Shared>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
}

impl PostgresStore {
    pub(crate) fn new(pool: PgPool, partitions: Partitions, config: PostgresConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                partitions,
                config,
                resources: Mutex::new(HashMap::new()),
                scopes: Mutex::new(HashMap::new()),
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
        bounded(
            self.config.query_timeout,
            "partition maintenance",
            self.partitions
                .maintain(&self.pool, now, self.config.retention),
        )
        .await
    }

    async fn write(&self, tenant: &str, batch: &Batch) -> StoreResult<()> {
        self.partitions.ensure(&self.pool, &batch.buckets).await?;
        match self.insert(tenant, batch).await {
            // A partition vanished under us (dropped by another process): reload and retry.
            Err(error) if sql_state(&error).as_deref() == Some("23514") => {
                self.partitions.forget();
                self.partitions.ensure(&self.pool, &batch.buckets).await?;
                self.insert(tenant, batch)
                    .await
                    .map_err(|error| store_error("writing spans", error))
            }
            other => other.map_err(|error| store_error("writing spans", error)),
        }
    }

    /// Inserts resources, scopes, services and operations (each its own short statement, rows
    /// sorted by key), then the spans in one statement, which is what makes the write atomic.
    /// Everything is `ON CONFLICT DO NOTHING`, so a retried batch changes nothing.
    async fn insert(&self, tenant: &str, batch: &Batch) -> Result<(), sqlx::Error> {
        let mut connection = self.pool.acquire().await?;
        let resources = &batch.resources;
        sqlx::query(
            "INSERT INTO resources (tenant, bucket, hash, service, schema_url, terms, payload) \
             SELECT $1, u.bucket, u.hash, u.service, u.schema_url, \
                    string_to_array(u.terms, chr(30)), u.payload \
             FROM unnest($2::bigint[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::bytea[]) \
                  AS u(bucket, hash, service, schema_url, terms, payload) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&resources.bucket)
        .bind(&resources.hash)
        .bind(&resources.service)
        .bind(&resources.schema_url)
        .bind(&resources.terms)
        .bind(&resources.payload)
        .execute(&mut *connection)
        .await?;

        let scopes = &batch.scopes;
        sqlx::query(
            "INSERT INTO scopes (tenant, bucket, hash, name, version, schema_url, terms, payload) \
             SELECT $1, u.bucket, u.hash, u.name, u.version, u.schema_url, \
                    string_to_array(u.terms, chr(30)), u.payload \
             FROM unnest($2::bigint[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[]) \
                  AS u(bucket, hash, name, version, schema_url, terms, payload) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&scopes.bucket)
        .bind(&scopes.hash)
        .bind(&scopes.name)
        .bind(&scopes.version)
        .bind(&scopes.schema_url)
        .bind(&scopes.terms)
        .bind(&scopes.payload)
        .execute(&mut *connection)
        .await?;

        let (service_names, service_buckets): (Vec<&str>, Vec<i64>) = batch
            .services
            .iter()
            .map(|(name, bucket)| (name.as_str(), *bucket))
            .unzip();
        sqlx::query(
            "INSERT INTO services (tenant, name, bucket) \
             SELECT $1, u.name, u.bucket FROM unnest($2::text[], $3::bigint[]) AS u(name, bucket) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&service_names)
        .bind(&service_buckets)
        .execute(&mut *connection)
        .await?;

        let mut operation_services = Vec::with_capacity(batch.operations.len());
        let mut operation_names = Vec::with_capacity(batch.operations.len());
        let mut operation_kinds = Vec::with_capacity(batch.operations.len());
        let mut operation_buckets = Vec::with_capacity(batch.operations.len());
        for (service, name, kind, bucket) in &batch.operations {
            operation_services.push(service.as_str());
            operation_names.push(name.as_str());
            operation_kinds.push(kind.as_str());
            operation_buckets.push(*bucket);
        }
        sqlx::query(
            "INSERT INTO operations (tenant, service, name, kind, bucket) \
             SELECT $1, u.service, u.name, u.kind, u.bucket \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(service, name, kind, bucket) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&operation_services)
        .bind(&operation_names)
        .bind(&operation_kinds)
        .bind(&operation_buckets)
        .execute(&mut *connection)
        .await?;

        let spans = &batch.spans;
        sqlx::query(
            "WITH seq AS MATERIALIZED (SELECT nextval('batch_seq') AS value) \
             INSERT INTO spans (tenant, start_ns, trace_id, span_id, content_hash, occurrence, \
                                parent_span_id, end_ns, service, operation, kind, status, \
                                resource_hash, scope_hash, batch_seq, batch_ord, terms, payload) \
             SELECT $1, u.start_ns, u.trace_id, u.span_id, u.content_hash, u.occurrence, \
                    u.parent_span_id, u.end_ns, u.service, u.operation, u.kind, u.status, \
                    u.resource_hash, u.scope_hash, seq.value, u.batch_ord, \
                    string_to_array(u.terms, chr(30)), u.payload \
             FROM seq, unnest($2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[], $6::int4[], \
                              $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::int2[], \
                              $12::int2[], $13::bytea[], $14::bytea[], $15::int4[], $16::text[], \
                              $17::bytea[]) \
                  AS u(start_ns, trace_id, span_id, content_hash, occurrence, parent_span_id, \
                       end_ns, service, operation, kind, status, resource_hash, scope_hash, \
                       batch_ord, terms, payload) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&spans.start_ns)
        .bind(&spans.trace_id)
        .bind(&spans.span_id)
        .bind(&spans.content_hash)
        .bind(&spans.occurrence)
        .bind(&spans.parent_span_id)
        .bind(&spans.end_ns)
        .bind(&spans.service)
        .bind(&spans.operation)
        .bind(&spans.kind)
        .bind(&spans.status)
        .bind(&spans.resource_hash)
        .bind(&spans.scope_hash)
        .bind(&spans.batch_ord)
        .bind(&spans.terms)
        .bind(&spans.payload)
        .execute(&mut *connection)
        .await?;
        Ok(())
    }

    /// All stored spans of one trace, in storage order; `None` when there are none.
    async fn fetch_trace(&self, tenant: &str, lookup: TraceLookup) -> StoreResult<Option<Trace>> {
        let rows: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT payload, resource_hash, scope_hash FROM spans \
             WHERE tenant = $1 AND trace_id = $2 \
               AND ($3::bigint IS NULL OR start_ns >= $3) AND ($4::bigint IS NULL OR start_ns <= $4) \
             ORDER BY batch_seq, batch_ord",
        )
        .bind(tenant)
        .bind(lookup.trace_id.as_bytes().as_slice())
        .bind(lookup.start.map(|time| to_db_nanos(time.0)))
        .bind(lookup.end.map(|time| to_db_nanos(time.0)))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| store_error("reading a trace", error))?;
        if rows.is_empty() {
            return Ok(None);
        }
        self.load_parts(tenant, &rows).await?;
        let resources = self
            .resources
            .lock()
            .clone_subset(rows.iter().map(|row| &row.1));
        let scopes = self
            .scopes
            .lock()
            .clone_subset(rows.iter().map(|row| &row.2));
        let trace_id = lookup.trace_id;
        let decoded =
            tokio::task::spawn_blocking(move || decode_trace(trace_id, rows, &resources, &scopes))
                .await
                .map_err(|error| StoreError::internal("postgres: decoding task failed", error))??;
        Ok(Some(decoded))
    }

    /// Loads the resources and scopes the rows reference that are not cached yet.
    async fn load_parts(
        &self,
        tenant: &str,
        rows: &[(Vec<u8>, Vec<u8>, Vec<u8>)],
    ) -> StoreResult<()> {
        let missing_resources: Vec<Vec<u8>> = {
            let cache = self.resources.lock();
            let mut missing: Vec<Vec<u8>> = rows
                .iter()
                .filter(|row| !cache.contains_key(&row.1))
                .map(|row| row.1.clone())
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if !missing_resources.is_empty() {
            let found: Vec<(Vec<u8>, Vec<u8>, String)> = sqlx::query_as(
                "SELECT DISTINCT ON (hash) hash, payload, schema_url FROM resources \
                 WHERE tenant = $1 AND hash = ANY($2)",
            )
            .bind(tenant)
            .bind(&missing_resources)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| store_error("reading resources", error))?;
            let mut cache = self.resources.lock();
            if cache.len() + found.len() > CACHE_LIMIT {
                cache.clear();
            }
            for (hash, payload, schema_url) in found {
                let otlp = OtlpResource::decode(payload.as_slice())
                    .map_err(|error| StoreError::internal("postgres: corrupt resource", error))?;
                cache.insert(hash, Arc::new(Resource::new(otlp, schema_url)));
            }
        }
        let missing_scopes: Vec<Vec<u8>> = {
            let cache = self.scopes.lock();
            let mut missing: Vec<Vec<u8>> = rows
                .iter()
                .filter(|row| !cache.contains_key(&row.2))
                .map(|row| row.2.clone())
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if !missing_scopes.is_empty() {
            let found: Vec<(Vec<u8>, Vec<u8>, String)> = sqlx::query_as(
                "SELECT DISTINCT ON (hash) hash, payload, schema_url FROM scopes \
                 WHERE tenant = $1 AND hash = ANY($2)",
            )
            .bind(tenant)
            .bind(&missing_scopes)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| store_error("reading scopes", error))?;
            let mut cache = self.scopes.lock();
            if cache.len() + found.len() > CACHE_LIMIT {
                cache.clear();
            }
            for (hash, payload, schema_url) in found {
                let otlp = InstrumentationScope::decode(payload.as_slice())
                    .map_err(|error| StoreError::internal("postgres: corrupt scope", error))?;
                cache.insert(hash, Arc::new(Scope::new(otlp, schema_url)));
            }
        }
        Ok(())
    }

    /// The spans of one trace reduced to what a summary needs (no payloads), in storage order.
    async fn fetch_summary(
        &self,
        tenant: &str,
        found: FoundTraceId,
    ) -> StoreResult<Option<TraceSummary>> {
        type Row = (i64, Option<i64>, String, String, i16, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT span_id, parent_span_id, service, operation, status, start_ns, end_ns FROM spans \
             WHERE tenant = $1 AND trace_id = $2 \
               AND ($3::bigint IS NULL OR start_ns >= $3) AND ($4::bigint IS NULL OR start_ns <= $4) \
             ORDER BY batch_seq, batch_ord",
        )
        .bind(tenant)
        .bind(found.trace_id.as_bytes().as_slice())
        .bind(found.start.map(|time| to_db_nanos(time.0)))
        .bind(found.end.map(|time| to_db_nanos(time.0)))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| store_error("summarising a trace", error))?;
        if rows.is_empty() {
            return Ok(None);
        }
        // Rebuild minimal spans and let the shared code apply the summary rules, so the result
        // equals `TraceSummary::from_trace` on the full trace by construction.
        let mut resources: HashMap<String, Arc<Resource>> = HashMap::new();
        let scope = Arc::new(Scope::default());
        let mut spans = Vec::with_capacity(rows.len());
        for (span_id, parent, service, operation, status, start_ns, end_ns) in rows {
            let resource = Arc::clone(
                resources
                    .entry(service.clone())
                    .or_insert_with(|| remote_storage_core::testing::resource(&service)),
            );
            let otlp = OtlpSpan {
                trace_id: found.trace_id.as_bytes().to_vec(),
                span_id: span_id.to_be_bytes().to_vec(),
                parent_span_id: parent
                    .map(|id| id.to_be_bytes().to_vec())
                    .unwrap_or_default(),
                name: operation,
                start_time_unix_nano: from_db_nanos(start_ns).0,
                end_time_unix_nano: from_db_nanos(end_ns).0,
                status: Some(Status {
                    code: i32::from(status),
                    message: String::new(),
                }),
                ..Default::default()
            };
            spans.push(Span::new(resource, Arc::clone(&scope), otlp)?);
        }
        Ok(Some(TraceSummary::from_trace(&Trace {
            trace_id: found.trace_id,
            spans,
        })))
    }

    async fn find_trace_ids(
        &self,
        tenant: &str,
        query: &TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let walk_rows = usize::try_from(self.config.search_walk_rows.get()).unwrap_or(usize::MAX);
        let width = self.partitions.width();
        let plan = match SearchPlan::plan(&self.pool, tenant, query, width, walk_rows).await? {
            Planned::NothingMatches => return Ok(Vec::new()),
            Planned::Search(plan) => plan,
        };
        let ids = plan.trace_ids(&self.pool).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let id_bytes: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let bounds: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT trace_id, min(start_ns), max(end_ns) FROM spans \
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

trait CloneSubset<V> {
    fn clone_subset<'a>(&self, keys: impl Iterator<Item = &'a Vec<u8>>) -> HashMap<Vec<u8>, V>;
}

impl<V: Clone> CloneSubset<V> for HashMap<Vec<u8>, V> {
    fn clone_subset<'a>(&self, keys: impl Iterator<Item = &'a Vec<u8>>) -> HashMap<Vec<u8>, V> {
        let mut subset = HashMap::new();
        for key in keys {
            if !subset.contains_key(key)
                && let Some(value) = self.get(key)
            {
                subset.insert(key.clone(), value.clone());
            }
        }
        subset
    }
}

fn decode_trace(
    trace_id: TraceId,
    rows: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    resources: &HashMap<Vec<u8>, Arc<Resource>>,
    scopes: &HashMap<Vec<u8>, Arc<Scope>>,
) -> StoreResult<Trace> {
    let mut spans = Vec::with_capacity(rows.len());
    for (payload, resource_hash, scope_hash) in rows {
        let otlp = OtlpSpan::decode(payload.as_slice())
            .map_err(|error| StoreError::internal("postgres: corrupt span payload", error))?;
        let resource =
            resources
                .get(&resource_hash)
                .cloned()
                .ok_or_else(|| StoreError::Internal {
                    message: format!(
                        "postgres: resource {} of a span of trace {trace_id} is missing",
                        hex::encode(&resource_hash)
                    ),
                    source: None,
                })?;
        let scope = scopes
            .get(&scope_hash)
            .cloned()
            .ok_or_else(|| StoreError::Internal {
                message: format!(
                    "postgres: scope {} of a span of trace {trace_id} is missing",
                    hex::encode(&scope_hash)
                ),
                source: None,
            })?;
        spans.push(Span::new(resource, scope, otlp)?);
    }
    Ok(Trace { trace_id, spans })
}

#[async_trait]
impl TraceStore for PostgresStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let width = self.shared.partitions.width();
        let batch = tokio::task::spawn_blocking(move || Batch::build(&spans, width))
            .await
            .map_err(|error| StoreError::internal("postgres: encoding task failed", error))?;
        let tenant = tenant_text(tenant);
        self.bounded("writing spans", self.shared.write(&tenant, &batch))
            .await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        let shared = Arc::clone(&self.shared);
        let tenant = tenant_text(tenant);
        let stream = futures::stream::iter(lookups)
            .then(move |lookup| {
                let shared = Arc::clone(&shared);
                let tenant = tenant.clone();
                async move {
                    bounded(
                        shared.config.query_timeout,
                        "reading a trace",
                        shared.fetch_trace(&tenant, lookup),
                    )
                    .await
                }
            })
            .filter_map(|result| async move { result.transpose() });
        Ok(stream.boxed())
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

    async fn find_trace_summaries(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<SummaryStream> {
        let found = self.find_trace_ids(tenant, query).await?;
        let shared = Arc::clone(&self.shared);
        let tenant = tenant_text(tenant);
        let stream = futures::stream::iter(found)
            .then(move |found| {
                let shared = Arc::clone(&shared);
                let tenant = tenant.clone();
                async move {
                    bounded(
                        shared.config.query_timeout,
                        "summarising a trace",
                        shared.fetch_summary(&tenant, found),
                    )
                    .await
                }
            })
            .filter_map(|result| async move { result.transpose() });
        Ok(stream.boxed())
    }
}

#[async_trait]
impl DependencyStore for PostgresStore {
    /// Exact [`DependencyCounter`](remote_storage_core::dependencies::DependencyCounter)
    /// semantics in one statement: every span starting inside the window whose parent ID is
    /// found in the same trace (at any time) counts one call parent-service → child-service;
    /// with duplicated span IDs the first stored span is the parent.
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let tenant = tenant_text(tenant);
        self.bounded("computing dependencies", async {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "WITH children AS MATERIALIZED ( \
                     SELECT trace_id, parent_span_id, service FROM spans \
                     WHERE tenant = $1 AND start_ns >= $2 AND start_ns <= $3 \
                       AND parent_span_id IS NOT NULL \
                 ), parents AS ( \
                     SELECT DISTINCT ON (trace_id, span_id) trace_id, span_id, service FROM spans \
                     WHERE tenant = $1 AND trace_id IN (SELECT trace_id FROM children) \
                     ORDER BY trace_id, span_id, batch_seq, batch_ord \
                 ) \
                 SELECT p.service, c.service, count(*) FROM children c \
                 JOIN parents p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id \
                 GROUP BY p.service, c.service",
            )
            .bind(&tenant)
            .bind(to_db_nanos(query.start.0))
            .bind(to_db_nanos(query.end.0))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|error| store_error("computing dependencies", error))?;
            let mut links: Vec<DependencyLink> = rows
                .into_iter()
                .map(|(parent, child, calls)| DependencyLink {
                    parent,
                    child,
                    call_count: u64::try_from(calls).unwrap_or(0),
                })
                .collect();
            links.sort_unstable();
            Ok(links)
        })
        .await
    }
}

#[async_trait]
impl Purger for PostgresStore {
    async fn purge(&self) -> StoreResult<()> {
        self.bounded("purging", async {
            sqlx::query("TRUNCATE spans, resources, scopes, services, operations")
                .execute(&self.shared.pool)
                .await
                .map_err(|error| store_error("purging", error))?;
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
