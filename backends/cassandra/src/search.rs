//! The search walk of a [`SearchPlan`]: buckets newest first; in each, every shard's
//! partition read page by page and merged newest first (ties: larger trace ID first); each
//! row filtered on its own columns, then, when the plan says so, decided by the matcher on the
//! stored span; stopping at `search_depth` distinct traces.

use std::collections::{HashSet, VecDeque};

use futures::future::try_join_all;
use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::{StoreResult, TraceQuery, UnixNanos};

use crate::buckets::Buckets;
use crate::planner::{DrivingIndex, IndexRow, SearchPlan};
use crate::rows::{Id, IndexEntry, IndexKey, Partition, SpanDecoder, nanos_column};
use crate::tables::{PageToken, Tables};

/// One shard's partition, read page by page.
struct Cursor {
    partition: Partition,
    rows: VecDeque<IndexEntry>,
    next: Option<PageToken>,
    exhausted: bool,
}

impl Cursor {
    fn new(partition: Partition) -> Self {
        Self {
            partition,
            rows: VecDeque::new(),
            next: None,
            exhausted: false,
        }
    }

    /// Loads the next page when the current one is used up; false once nothing is left.
    async fn fill(
        &mut self,
        tables: &dyn Tables,
        tenant: &str,
        window: (i64, i64),
    ) -> StoreResult<bool> {
        while self.rows.is_empty() && !self.exhausted {
            let page = tables
                .index_page(tenant, &self.partition, window, self.next.take())
                .await?;
            self.rows.extend(page.rows);
            self.exhausted = page.next.is_none();
            self.next = page.next;
        }
        Ok(!self.rows.is_empty())
    }
}

/// The rows of every shard's partition of `key` in one bucket, merged newest first.
struct BucketWalk<'a> {
    tables: &'a dyn Tables,
    tenant: &'a str,
    window: (i64, i64),
    cursors: Vec<Cursor>,
}

impl<'a> BucketWalk<'a> {
    /// Starts the walk, reading every shard's first page in parallel.
    async fn start(
        tables: &'a dyn Tables,
        tenant: &'a str,
        key: &IndexKey,
        bucket: i64,
        buckets: &Buckets,
        window: (i64, i64),
    ) -> StoreResult<Self> {
        let mut cursors: Vec<Cursor> = buckets
            .shards()
            .map(|shard| {
                Cursor::new(Partition {
                    key: key.clone(),
                    bucket,
                    shard,
                })
            })
            .collect();
        try_join_all(
            cursors
                .iter_mut()
                .map(|cursor| cursor.fill(tables, tenant, window)),
        )
        .await?;
        Ok(Self {
            tables,
            tenant,
            window,
            cursors,
        })
    }

    /// The next group of rows with one start time (the newest left), ordered by trace ID,
    /// largest first; `None` when the bucket is done.
    async fn next_group(&mut self) -> StoreResult<Option<Vec<IndexEntry>>> {
        let newest = self
            .cursors
            .iter()
            .filter_map(|cursor| cursor.rows.front().map(|row| row.start))
            .max();
        let Some(newest) = newest else {
            return Ok(None);
        };
        let mut group = Vec::new();
        for cursor in &mut self.cursors {
            while cursor.rows.front().is_some_and(|row| row.start == newest) {
                group.extend(cursor.rows.pop_front());
                if cursor.rows.is_empty() {
                    cursor.fill(self.tables, self.tenant, self.window).await?;
                }
            }
        }
        group.sort_by(|a, b| {
            b.trace_id
                .cmp(&a.trace_id)
                .then(a.document_id.cmp(&b.document_id))
        });
        Ok(Some(group))
    }
}

/// The traces `query` finds, newest first, at most `search_depth`.
pub(crate) async fn find(
    tables: &dyn Tables,
    tenant: &str,
    query: &TraceQuery,
    buckets: &Buckets,
    now: UnixNanos,
    retention_nanos: u64,
) -> StoreResult<Vec<Id>> {
    let matcher = SpanMatcher::new(query);
    let plan = SearchPlan::new(query, matcher.conditions(), buckets, now, retention_nanos);
    let window = (nanos_column(plan.window.0.0), nanos_column(plan.window.1.0));
    if window.0 > window.1 {
        return Ok(Vec::new());
    }
    let key = match &plan.index {
        DrivingIndex::Tag(term) => IndexKey::Tag(term.clone()),
        DrivingIndex::Service(service) => IndexKey::Service(service.clone()),
        DrivingIndex::All => IndexKey::All,
    };
    let depth = query.search_depth.get();
    let mut found: Vec<Id> = Vec::new();
    let mut seen: HashSet<Id> = HashSet::new();
    let mut decoder = SpanDecoder::default();
    for bucket in active(tables, tenant, &plan.buckets).await? {
        let mut walk = BucketWalk::start(tables, tenant, &key, bucket, buckets, window).await?;
        while let Some(group) = walk.next_group().await? {
            for entry in group {
                if seen.contains(&entry.trace_id) {
                    continue;
                }
                let row = IndexRow {
                    service: &entry.service,
                    operation: &entry.operation,
                    kind: entry.kind,
                    status: entry.status,
                    duration: u64::try_from(entry.duration).unwrap_or(0),
                };
                if !plan.filter.admits(&row) {
                    continue;
                }
                if plan.needs_span
                    && !span_matches(tables, tenant, &entry, &matcher, &mut decoder).await?
                {
                    continue;
                }
                seen.insert(entry.trace_id);
                found.push(entry.trace_id);
                if found.len() == depth {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}

/// Those of `planned` (newest first) that hold spans.
async fn active(tables: &dyn Tables, tenant: &str, planned: &[i64]) -> StoreResult<Vec<i64>> {
    match (planned.last(), planned.first()) {
        (Some(&oldest), Some(&newest)) => Ok(tables
            .buckets(tenant, oldest, newest)
            .await?
            .into_iter()
            .map(|active| active.bucket)
            .collect()),
        _ => Ok(Vec::new()),
    }
}

/// Whether the stored span of an index row matches every condition.
async fn span_matches(
    tables: &dyn Tables,
    tenant: &str,
    entry: &IndexEntry,
    matcher: &SpanMatcher,
    decoder: &mut SpanDecoder,
) -> StoreResult<bool> {
    let Some(row) = tables
        .span(tenant, &entry.trace_id, &entry.document_id)
        .await?
    else {
        // Indexed but not (or no longer) stored: written by a write still in flight, or
        // expired first. Nothing to match.
        return Ok(false);
    };
    if !decoder.has_resource(&row.resource_id) {
        let Some(bytes) = tables.resource(tenant, &row.resource_id).await? else {
            return Ok(false);
        };
        decoder.add_resource(row.resource_id, &bytes)?;
    }
    Ok(matcher.matches(&decoder.decode(&row)?))
}

/// Every distinct trace with a span starting in `start ..= end`, newest first.
pub(crate) async fn traces_in_window(
    tables: &dyn Tables,
    tenant: &str,
    buckets: &Buckets,
    start: UnixNanos,
    end: UnixNanos,
) -> StoreResult<Vec<Id>> {
    let window = (nanos_column(start.0), nanos_column(end.0));
    let mut found = Vec::new();
    if window.0 > window.1 {
        return Ok(found);
    }
    let mut seen = HashSet::new();
    let window_buckets: Vec<i64> = buckets.newest_first(start, end).collect();
    for bucket in active(tables, tenant, &window_buckets).await? {
        let mut walk =
            BucketWalk::start(tables, tenant, &IndexKey::All, bucket, buckets, window).await?;
        while let Some(group) = walk.next_group().await? {
            for entry in group {
                if seen.insert(entry.trace_id) {
                    found.push(entry.trace_id);
                }
            }
        }
    }
    Ok(found)
}
