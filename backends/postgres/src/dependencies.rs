//! GetDependencies: the window's whole minutes from `call_rollups` (one indexed range scan,
//! summed in PostgreSQL), its partial minutes at either edge, and any minute before the
//! rollups were complete (`rollups_from`), counted from the spans with [`DependencyCounter`].

use std::collections::{HashMap, VecDeque};

use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::{DependencyLink, DependencyQuery, StoreError, StoreResult, TraceId};
use sqlx::postgres::PgPool;
use tokio::task::JoinHandle;

use crate::error::store_error;
use crate::rollups::plan_window;
use crate::rows::{SLOT_NS, TraceRows, decode_stored, merge_stored};
use crate::schema::to_db_nanos;

/// The edges read and decode the traces of their window in groups of this many, so memory
/// stays bounded for wide windows (a window counted from spans alone).
const DEPENDENCY_GROUP_TRACES: usize = 2_000;

/// The links of the calls whose callee starts inside `window`.
pub(crate) async fn links(
    pool: &PgPool,
    tenant: &str,
    window: &DependencyQuery,
    rollups_from: i64,
) -> StoreResult<Vec<DependencyLink>> {
    let plan = plan_window(window, rollups_from);
    let mut counter = DependencyCounter::default();
    if let Some(minutes) = plan.rollup_minutes {
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT parent, child, sum(calls)::bigint FROM call_rollups \
             WHERE tenant = $1 AND minute >= $2 AND minute < $3 \
             GROUP BY parent, child",
        )
        .bind(tenant)
        .bind(minutes.start)
        .bind(minutes.end)
        .fetch_all(pool)
        .await
        .map_err(|error| store_error("reading call rollups", error))?;
        for (parent, child, calls) in rows {
            // Names were written from Rust strings: always UTF-8.
            let parent = String::from_utf8_lossy(&parent);
            let child = String::from_utf8_lossy(&child);
            counter.add_calls(&parent, &child, u64::try_from(calls).unwrap_or(0));
        }
    }
    for edge in &plan.from_spans {
        for link in from_spans(pool, tenant, edge).await? {
            counter.add_calls(&link.parent, &link.child, link.call_count);
        }
    }
    Ok(counter.finish())
}

/// Counted from the spans: every trace with a row overlapping the window is decoded whole (a
/// parent may start outside the window; with duplicated span IDs the first stored span is the
/// parent) and counted by the shared code. Traces are read in groups by ID; two groups decode
/// at a time while the next is read.
async fn from_spans(
    pool: &PgPool,
    tenant: &str,
    window: &DependencyQuery,
) -> StoreResult<Vec<DependencyLink>> {
    let failed = |error| store_error("computing dependencies", error);
    // A row's starts lie within one slot, so `max_start < end + slot` follows from
    // `min_start <= end`: stated, it bounds the time index's range on both sides (without it
    // the planner walked a whole partition's primary key or every newer entry of the time
    // index: 14-24 ms for an edge minute of a 1 M-span day instead of well under one).
    let trace_ids: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT DISTINCT trace_id FROM chunks WHERE tenant = $1 \
           AND max_start >= $2 AND max_start < $3 + $4 \
           AND min_start > $2 - $4 AND min_start <= $3",
    )
    .bind(tenant)
    .bind(to_db_nanos(window.start.0))
    .bind(to_db_nanos(window.end.0))
    .bind(SLOT_NS)
    .fetch_all(pool)
    .await
    .map_err(failed)?;
    let mut pending: VecDeque<JoinHandle<StoreResult<DependencyCounter>>> = VecDeque::new();
    let mut counters = Vec::new();
    for group in trace_ids.chunks(DEPENDENCY_GROUP_TRACES) {
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT trace_id, batch_seq, payload FROM chunks \
             WHERE tenant = $1 AND trace_id = ANY($2)",
        )
        .bind(tenant)
        .bind(group)
        .fetch_all(pool)
        .await
        .map_err(failed)?;
        let mut traces: HashMap<Vec<u8>, TraceRows> = HashMap::new();
        for (trace_id, batch_seq, payload) in rows {
            traces
                .entry(trace_id)
                .or_default()
                .push((batch_seq, payload));
        }
        if pending.len() >= 2
            && let Some(oldest) = pending.pop_front()
        {
            counters.push(join_counter(oldest).await?);
        }
        let window = *window;
        pending.push_back(tokio::task::spawn_blocking(move || {
            let mut counter = DependencyCounter::default();
            for (trace_id, rows) in traces {
                let trace_id = TraceId::from_bytes(&trace_id, "trace_id")?;
                let spans = merge_stored(decode_stored(trace_id, rows)?);
                counter.add_spans(&spans, &window);
            }
            Ok(counter)
        }));
    }
    while let Some(task) = pending.pop_front() {
        counters.push(join_counter(task).await?);
    }
    let mut total = DependencyCounter::default();
    for counter in counters {
        for link in counter.finish() {
            total.add_calls(&link.parent, &link.child, link.call_count);
        }
    }
    Ok(total.finish())
}

async fn join_counter(
    task: JoinHandle<StoreResult<DependencyCounter>>,
) -> StoreResult<DependencyCounter> {
    task.await
        .map_err(|error| StoreError::internal("postgres: dependency task failed", error))?
}
