//! One write: its rows and the change it makes to the call rollups, in one transaction.
//!
//! 1. `trace_heads` upsert of the write's traces, sorted by ID: a new row means nothing of the
//!    trace is stored; an existing one means the trace continues. Either way the row stays
//!    locked until commit, so writes of one trace run one after the other (others in parallel)
//!    and a continuing write sees every earlier write of its traces committed. Row locks, not
//!    advisory locks: an Export of thousands of traces must not fill the shared lock table.
//! 2. Only for continuing traces: what the write adds to their calls, from the trace's
//!    summary (`crate::summaries`): the one this process kept when the row's version says no
//!    one wrote the trace since, else one rebuilt from the trace's stored rows, read and
//!    decoded here. A parent arriving after its children, a child after its parent, duplicated
//!    span IDs and re-sent spans then follow the shared rules applied to the stored spans. A
//!    new trace's calls are counted from the write alone.
//! 3. The chunks, services and operations insert (one statement, as before), its
//!    `nextval('batch_seq')` taken under the locks of step 1: within a trace, storage order is
//!    commit order, so the first stored span of an ID is never displaced by a later commit.
//! 4. One `call_rollups` upsert of the summed changes, sorted by key (no deadlocks between
//!    writes), last so its row locks are held only until the commit that follows.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};

use remote_storage_core::{StoreError, StoreResult, TraceId};
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use crate::rollups::{CallDeltas, StoredChunk, WriteTraces, rows_of, summaries_from_rows};
use crate::rows::Batch;
use crate::summaries::{SummaryCache, TraceSummary};

/// What a committed write leaves for the summary cache, in the order of the write's traces:
/// the `trace_heads` version after the write and the trace's summary when the write continued
/// it (a trace the write started has the write's own summary, [`WriteTrace::summary`]).
///
/// [`WriteTrace::summary`]: crate::rollups::WriteTrace
pub(crate) type Written = Vec<(i64, Option<TraceSummary>)>;

/// Writes `batch` with its rollup changes. The outer error is the driver's (the caller may
/// retry the whole transaction); the inner one anything else. Summaries of continuing traces
/// are taken from `cache` when they describe the stored trace, else rebuilt from its rows.
pub(crate) async fn write_batch(
    pool: &PgPool,
    tenant: &str,
    batch: &Batch,
    traces: &WriteTraces,
    width: i64,
    cache: &SummaryCache,
) -> Result<StoreResult<Written>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let (ids, last_starts): (Vec<&[u8]>, Vec<i64>) = traces
        .traces
        .iter()
        .map(|trace| (trace.id.as_slice(), trace.last_start))
        .unzip();
    // Every row is updated (its version counts the writes), so every row is returned and
    // locked; `xmax = 0` marks an inserted row. A new row's version starts anywhere, so a
    // trace deleted and written again never matches a summary kept of it before.
    let heads: HashMap<Vec<u8>, (bool, i64)> = sqlx::query_as(
        "INSERT INTO trace_heads (tenant, trace_id, last_start, version) \
         SELECT $1, u.trace_id, u.last_start, $4 \
         FROM unnest($2::bytea[], $3::bigint[]) WITH ORDINALITY AS u(trace_id, last_start, n) \
         ORDER BY u.n \
         ON CONFLICT (tenant, trace_id) DO UPDATE \
             SET last_start = greatest(trace_heads.last_start, EXCLUDED.last_start), \
                 version = trace_heads.version + 1 \
         RETURNING trace_id, xmax = 0, version",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(&last_starts)
    .bind(first_version())
    .fetch_all(&mut *transaction)
    .await?
    .into_iter()
    .map(|(id, inserted, version): (Vec<u8>, bool, i64)| (id, (inserted, version)))
    .collect();

    let mut deltas = CallDeltas::default();
    let mut written: Written = Vec::with_capacity(traces.traces.len());
    let mut continuing = Vec::new();
    for trace in &traces.traces {
        let Some(&(inserted, version)) = heads.get(trace.id.as_slice()) else {
            return Ok(Err(StoreError::internal(
                "postgres: a trace lock was not returned",
                TraceId(trace.id).to_string(),
            )));
        };
        if inserted {
            deltas.merge(&trace.calls);
            written.push((version, None));
            continue;
        }
        let cached = cache
            .take(tenant, trace.id, version.wrapping_sub(1))
            .filter(|summary| !summary.holds_any_chunk(trace.chunks.iter().copied()));
        if let Some(mut summary) = cached {
            summary.add_spans(&trace.facts, width, &mut deltas);
            summary.add_chunks(trace.chunks.iter().copied());
            written.push((version, Some(summary)));
        } else {
            continuing.push(trace.id.to_vec());
            // Filled in below, from the stored rows.
            written.push((version, None));
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
        let rebuilt = tokio::task::spawn_blocking(move || {
            let mut deltas = CallDeltas::default();
            summaries_from_rows(stored, mine, width, &mut deltas).map(|rebuilt| (rebuilt, deltas))
        })
        .await
        .map_err(|error| StoreError::internal("postgres: rollup task failed", error));
        match rebuilt.and_then(|rebuilt| rebuilt) {
            Ok((mut rebuilt, changes)) => {
                deltas.merge(&changes);
                for (trace, (_, summary)) in traces.traces.iter().zip(&mut written) {
                    if let Some(found) = rebuilt.remove(trace.id.as_slice()) {
                        *summary = Some(found);
                    }
                }
            }
            Err(error) => return Ok(Err(error)),
        }
    }

    insert_rows(&mut transaction, tenant, batch).await?;
    upsert_rollups(&mut transaction, tenant, deltas).await?;
    transaction.commit().await?;
    Ok(Ok(written))
}

/// A new `trace_heads` row's version: random, below 2^62 so counting writes never overflows.
fn first_version() -> i64 {
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    i64::try_from(random >> 2).unwrap_or(0)
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
