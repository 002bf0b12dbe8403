//! One write: its rows and the change it makes to the call rollups, in one transaction.
//!
//! 1. `trace_heads` upsert of the write's traces, sorted by ID: a new row means nothing of the
//!    trace is stored; an existing one means the trace continues. Either way the row stays
//!    locked until commit, so writes of one trace run one after the other (others in parallel)
//!    and a continuing write sees every earlier write of its traces committed. Row locks, not
//!    advisory locks: an Export of thousands of traces must not fill the shared lock table.
//! 2. Only for continuing traces: their stored rows are read and decoded, and the calls are
//!    counted with and without this write's rows (a parent arriving after its children, a
//!    child after its parent, duplicated span IDs and re-sent spans are then all the shared
//!    rules applied to the stored spans). A new trace's calls are counted from the write alone.
//! 3. The chunks, services and operations insert (one statement, as before), its
//!    `nextval('batch_seq')` taken under the locks of step 1: within a trace, storage order is
//!    commit order, so the first stored span of an ID is never displaced by a later commit.
//! 4. One `call_rollups` upsert of the summed changes, sorted by key (no deadlocks between
//!    writes), last so its row locks are held only until the commit that follows.

use std::collections::HashSet;

use remote_storage_core::{StoreError, StoreResult};
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use crate::rollups::{CallDeltas, StoredChunk, WriteTraces, continuing_deltas, rows_of};
use crate::rows::Batch;

/// Writes `batch` with its rollup changes. The outer error is the driver's (the caller may
/// retry the whole transaction); the inner one anything else.
pub(crate) async fn write_batch(
    pool: &PgPool,
    tenant: &str,
    batch: &Batch,
    traces: &WriteTraces,
    width: i64,
) -> Result<StoreResult<()>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let (ids, last_starts): (Vec<&[u8]>, Vec<i64>) = traces
        .traces
        .iter()
        .map(|trace| (trace.id.as_slice(), trace.last_start))
        .unzip();
    // Rows not updated by the WHERE are still locked; `xmax = 0` marks an inserted row.
    let heads: Vec<(Vec<u8>, bool)> = sqlx::query_as(
        "INSERT INTO trace_heads (tenant, trace_id, last_start) \
         SELECT $1, u.trace_id, u.last_start \
         FROM unnest($2::bytea[], $3::bigint[]) WITH ORDINALITY AS u(trace_id, last_start, n) \
         ORDER BY u.n \
         ON CONFLICT (tenant, trace_id) DO UPDATE SET last_start = EXCLUDED.last_start \
             WHERE trace_heads.last_start < EXCLUDED.last_start \
         RETURNING trace_id, xmax = 0",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(&last_starts)
    .fetch_all(&mut *transaction)
    .await?;
    let new: HashSet<Vec<u8>> = heads
        .into_iter()
        .filter_map(|(id, inserted)| inserted.then_some(id))
        .collect();

    let mut deltas = CallDeltas::default();
    let mut continuing = Vec::new();
    for trace in &traces.traces {
        if new.contains(trace.id.as_slice()) {
            deltas.merge(&trace.calls);
        } else {
            continuing.push(trace.id.to_vec());
        }
    }
    if !continuing.is_empty() {
        let stored: Vec<StoredChunk> = sqlx::query_as(
            "SELECT trace_id, chunk_hash, min_start, batch_seq, payload FROM chunks \
             WHERE tenant = $1 AND trace_id = ANY($2)",
        )
        .bind(tenant)
        .bind(&continuing)
        .fetch_all(&mut *transaction)
        .await?;
        let mine = rows_of(batch, &continuing);
        // Decoding is CPU work: off the async runtime.
        let changes = tokio::task::spawn_blocking(move || continuing_deltas(stored, mine, width))
            .await
            .map_err(|error| StoreError::internal("postgres: rollup task failed", error));
        match changes.and_then(|changes| changes) {
            Ok(changes) => deltas.merge(&changes),
            Err(error) => return Ok(Err(error)),
        }
    }

    insert_rows(&mut transaction, tenant, batch).await?;
    upsert_rollups(&mut transaction, tenant, deltas).await?;
    transaction.commit().await?;
    Ok(Ok(()))
}

/// Inserts the services, operations and chunks of a write in one statement (rows sorted by
/// key). Everything is `ON CONFLICT DO NOTHING`, so a retried write changes nothing.
async fn insert_rows(
    connection: &mut PgConnection,
    tenant: &str,
    batch: &Batch,
) -> Result<(), sqlx::Error> {
    let (service_names, service_buckets): (Vec<&str>, Vec<i64>) = batch
        .services
        .iter()
        .map(|(name, bucket)| (name.as_str(), *bucket))
        .unzip();
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
    let chunks = &batch.chunks;
    sqlx::query(
        "WITH seq AS MATERIALIZED (SELECT nextval('batch_seq') AS value), \
         new_services AS ( \
             INSERT INTO services (tenant, name, bucket) \
             SELECT $1, u.name, u.bucket FROM unnest($2::text[], $3::bigint[]) AS u(name, bucket) \
             ON CONFLICT DO NOTHING), \
         new_operations AS ( \
             INSERT INTO operations (tenant, service, name, kind, bucket) \
             SELECT $1, u.service, u.name, u.kind, u.bucket \
             FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[]) \
                  AS u(service, name, kind, bucket) \
             ON CONFLICT DO NOTHING) \
         INSERT INTO chunks (tenant, trace_id, chunk_hash, min_start, max_start, max_end, \
                             min_duration, max_duration, service, batch_seq, span_count, \
                             bloom, payload) \
         SELECT $1, u.trace_id, u.chunk_hash, u.min_start, u.max_start, u.max_end, \
                u.min_duration, u.max_duration, u.service, seq.value, u.span_count, \
                u.bloom, u.payload \
         FROM seq, unnest($8::bytea[], $9::bigint[], $10::bigint[], $11::bigint[], \
                          $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], \
                          $16::int4[], $17::bytea[], $18::bytea[]) \
              AS u(trace_id, chunk_hash, min_start, max_start, max_end, min_duration, \
                   max_duration, service, span_count, bloom, payload) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(&service_names)
    .bind(&service_buckets)
    .bind(&operation_services)
    .bind(&operation_names)
    .bind(&operation_kinds)
    .bind(&operation_buckets)
    .bind(&chunks.trace_id)
    .bind(&chunks.chunk_hash)
    .bind(&chunks.min_start)
    .bind(&chunks.max_start)
    .bind(&chunks.max_end)
    .bind(&chunks.min_duration)
    .bind(&chunks.max_duration)
    .bind(&chunks.service)
    .bind(&chunks.span_count)
    .bind(&chunks.bloom)
    .bind(&chunks.payload)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Adds the changes to `call_rollups` (rows created at their first call).
async fn upsert_rollups(
    connection: &mut PgConnection,
    tenant: &str,
    deltas: CallDeltas,
) -> Result<(), sqlx::Error> {
    let rows = deltas.into_sorted();
    if rows.is_empty() {
        return Ok(());
    }
    let mut minutes = Vec::with_capacity(rows.len());
    let mut parents = Vec::with_capacity(rows.len());
    let mut children = Vec::with_capacity(rows.len());
    let mut parent_buckets = Vec::with_capacity(rows.len());
    let mut calls = Vec::with_capacity(rows.len());
    for (key, delta) in rows {
        minutes.push(key.minute);
        parents.push(key.parent);
        children.push(key.child);
        parent_buckets.push(key.parent_bucket);
        calls.push(delta);
    }
    sqlx::query(
        "INSERT INTO call_rollups (tenant, minute, parent, child, parent_bucket, calls) \
         SELECT $1, u.minute, u.parent, u.child, u.parent_bucket, u.calls \
         FROM unnest($2::bigint[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[]) \
              WITH ORDINALITY AS u(minute, parent, child, parent_bucket, calls, n) \
         ORDER BY u.n \
         ON CONFLICT (tenant, minute, parent, child, parent_bucket) \
             DO UPDATE SET calls = call_rollups.calls + EXCLUDED.calls",
    )
    .bind(tenant)
    .bind(&minutes)
    .bind(&parents)
    .bind(&children)
    .bind(&parent_buckets)
    .bind(&calls)
    .execute(&mut *connection)
    .await?;
    Ok(())
}
