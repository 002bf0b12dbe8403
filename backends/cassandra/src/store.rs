//! The store: the trait implementations over [`Tables`], thin; the work lives in `rows.rs`
//! (what a write stores), `search.rs` (searches) and `planner.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::{
    DependencyLink, DependencyQuery, DependencyStore, FoundTraceId, Operation, OperationQuery,
    Purger, Span, StoreLifecycle, StoreResult, Tenant, Trace, TraceLookup, TraceQuery, TraceStore,
    TraceStream, UnixNanos, WriteClock,
};

use crate::buckets::Buckets;
use crate::rollups;
use crate::rows::{Id, SpanDecoder, nanos_column, start_of, trace_id, write_rows};
use crate::search;
use crate::tables::{ActiveBucket, Tables};

/// Traces whose time hints are read at once after a search.
const EXTENT_READS: usize = 16;
/// Traces read at once by GetTraces, FindTraces and dependency counting.
const TRACE_READS: usize = 8;

/// The Cassandra store over some [`Tables`].
pub struct CassandraStore<T: Tables> {
    tables: Arc<T>,
    buckets: Buckets,
    retention: Duration,
    /// Numbers writes, so a trace's spans read back in write order.
    writes: WriteClock,
}

impl<T: Tables> CassandraStore<T> {
    /// A store over `tables`, indexing with `buckets`, keeping rows for `retention`.
    pub fn new(tables: Arc<T>, buckets: Buckets, retention: Duration) -> Self {
        Self {
            tables,
            buckets,
            retention,
            writes: WriteClock::default(),
        }
    }

    fn ttl_seconds(&self) -> i32 {
        i32::try_from(self.retention.as_secs()).unwrap_or(i32::MAX)
    }

    /// The traces `query` finds, newest first.
    async fn search(&self, tenant: &Tenant, query: &TraceQuery) -> StoreResult<Vec<Id>> {
        search::find(
            self.tables.as_ref(),
            tenant.name(),
            query,
            &self.buckets,
            UnixNanos::now(),
            u64::try_from(self.retention.as_nanos()).unwrap_or(u64::MAX),
        )
        .await
    }

    /// Every span of one trace in write order, or `None` when none is stored.
    async fn read_trace(&self, tenant: &Tenant, id: &Id) -> StoreResult<Option<Trace>> {
        read_trace(self.tables.as_ref(), tenant.name(), id).await
    }
}

/// Every span of one trace in write order, or `None` when none is stored.
async fn read_trace(tables: &dyn Tables, tenant: &str, id: &Id) -> StoreResult<Option<Trace>> {
    let mut rows = tables.trace(tenant, id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by(|a, b| {
        (a.batch, a.position, a.document_id).cmp(&(b.batch, b.position, b.document_id))
    });
    let mut decoder = SpanDecoder::default();
    let mut spans = Vec::with_capacity(rows.len());
    for row in &rows {
        if !decoder.has_resource(&row.resource_id) {
            match tables.resource(tenant, &row.resource_id).await? {
                Some(bytes) => decoder.add_resource(row.resource_id, &bytes)?,
                // Its resource expired first (written earlier): the span goes with it.
                None => continue,
            }
        }
        spans.push(decoder.decode(row)?);
    }
    Ok((!spans.is_empty()).then(|| Trace {
        trace_id: trace_id(id),
        spans,
    }))
}

#[async_trait]
impl<T: Tables> TraceStore for CassandraStore<T> {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let rows = write_rows(
            tenant,
            &spans,
            &self.buckets,
            nanos_column(self.writes.next()),
        );
        self.tables
            .write(tenant.name(), &rows, self.ttl_seconds())
            .await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        // A few traces read at once, streamed in request order as they complete.
        let tables = Arc::clone(&self.tables);
        let tenant = tenant.name().to_owned();
        let traces = futures::stream::iter(lookups)
            .map(move |lookup| {
                let tables = Arc::clone(&tables);
                let tenant = tenant.clone();
                async move { read_trace(tables.as_ref(), &tenant, lookup.trace_id.as_bytes()).await }
            })
            .buffered(TRACE_READS)
            .filter_map(|read| async move { read.transpose() });
        Ok(traces.boxed())
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        let mut services = self.tables.services(tenant.name()).await?;
        services.retain(|service| !service.is_empty());
        Ok(services)
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        let kind = query.span_kind.map(span_kind_name);
        Ok(self
            .tables
            .operations(tenant.name(), &query.service, kind)
            .await?
            .into_iter()
            .map(|(span_kind, name)| Operation { name, span_kind })
            .collect())
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let found = self.search(tenant, &query).await?;
        // The time hints of each trace, a few traces at a time.
        futures::stream::iter(found)
            .map(|id| async move {
                let extents = self.tables.extents(tenant.name(), &id).await?;
                Ok(FoundTraceId {
                    trace_id: trace_id(&id),
                    start: extents.map(|(start, _)| start_of(start)),
                    end: extents.map(|(_, finish)| start_of(finish)),
                })
            })
            .buffered(EXTENT_READS)
            .try_collect()
            .await
    }

    /// The found traces read whole, without the time hints `find_trace_ids` reads for them:
    /// trace reads here do not use hints, so reading them would be a second read per trace.
    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        let found = self.search(tenant, &query).await?;
        let lookups = found
            .iter()
            .map(|id| TraceLookup::whole(trace_id(id)))
            .collect();
        self.get_traces(tenant, lookups).await
    }
}

#[async_trait]
impl<T: Tables> DependencyStore for CassandraStore<T> {
    /// Per bucket of the window that holds spans: the stored links of a settled bucket the
    /// window covers whole (computed and stored when missing or older than the bucket's last
    /// write), or links counted from the traces of the part of the bucket in the window.
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let window: Vec<i64> = self.buckets.newest_first(query.start, query.end).collect();
        let (Some(&oldest), Some(&newest)) = (window.last(), window.first()) else {
            return Ok(Vec::new());
        };
        let now = UnixNanos::now();
        let settle = u64::try_from(rollups::SETTLE.as_nanos()).unwrap_or(u64::MAX);
        let mut totals: HashMap<(String, String), u64> = HashMap::new();
        for active in self.tables.buckets(tenant.name(), oldest, newest).await? {
            let (first, last) = self.buckets.span_of(active.bucket);
            let whole = query.start <= first && last <= query.end;
            let settled = last.0.saturating_add(settle) < now.0;
            let links = if whole && settled {
                self.settled_links(tenant, active, first, last).await?
            } else {
                let part = DependencyQuery {
                    start: query.start.max(first),
                    end: query.end.min(last),
                };
                self.count_links(tenant, &part).await?
            };
            for link in links {
                *totals.entry((link.parent, link.child)).or_default() += link.call_count;
            }
        }
        let mut links: Vec<DependencyLink> = totals
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
            })
            .collect();
        links.sort_unstable_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
        Ok(links)
    }
}

impl<T: Tables> CassandraStore<T> {
    /// A settled bucket's links: stored ones computed after its last write, or computed now
    /// and stored.
    async fn settled_links(
        &self,
        tenant: &Tenant,
        active: ActiveBucket,
        first: UnixNanos,
        last: UnixNanos,
    ) -> StoreResult<Vec<DependencyLink>> {
        if let Some((computed_at, bytes)) = self.tables.rollup(tenant.name(), active.bucket).await?
            && computed_at > active.last_write
        {
            return rollups::decode(&bytes);
        }
        // Stamped before reading: a write that lands while counting is newer, so the next
        // call counts again.
        let computed_at = nanos_column(UnixNanos::now().0);
        let links = self
            .count_links(
                tenant,
                &DependencyQuery {
                    start: first,
                    end: last,
                },
            )
            .await?;
        self.tables
            .put_rollup(
                tenant.name(),
                active.bucket,
                computed_at,
                &rollups::encode(&links),
                self.ttl_seconds(),
            )
            .await?;
        Ok(links)
    }

    /// Links of the spans starting in `window`, counted from their whole traces.
    async fn count_links(
        &self,
        tenant: &Tenant,
        window: &DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let mut counter = DependencyCounter::default();
        let traces = search::traces_in_window(
            self.tables.as_ref(),
            tenant.name(),
            &self.buckets,
            window.start,
            window.end,
        )
        .await?;
        let mut traces = futures::stream::iter(traces)
            .map(|id| async move { self.read_trace(tenant, &id).await })
            .buffered(TRACE_READS);
        while let Some(trace) = traces.try_next().await? {
            if let Some(trace) = trace {
                counter.add_trace(&trace, window);
            }
        }
        Ok(counter.finish())
    }
}

#[async_trait]
impl<T: Tables> Purger for CassandraStore<T> {
    async fn purge(&self) -> StoreResult<()> {
        self.tables.truncate().await
    }
}

#[async_trait]
impl<T: Tables> StoreLifecycle for CassandraStore<T> {
    async fn ready(&self) -> StoreResult<()> {
        self.tables.ping().await
    }
}

#[cfg(test)]
mod tests {
    use remote_storage_core::testing::span;

    use super::*;
    use crate::model::ModelTables;

    const HOUR: u64 = 3_600 * 1_000_000_000;

    #[tokio::test]
    async fn settled_buckets_reuse_their_stored_links_until_written_again() {
        let tables = Arc::new(ModelTables::default());
        let store = CassandraStore::new(
            Arc::clone(&tables),
            Buckets::new(60, 2),
            Duration::from_secs(7 * 86_400),
        );
        let tenant = Tenant::default();
        let now = UnixNanos::now().0;
        let start = now - 2 * HOUR;
        store
            .write_spans(
                &tenant,
                vec![
                    span(1, 1, None, "frontend", "root", start, start + 1_000, false),
                    span(1, 2, Some(1), "cart", "add", start + 10, start + 500, false),
                ],
            )
            .await
            .unwrap();
        let window = DependencyQuery {
            start: UnixNanos(now - 3 * HOUR),
            end: UnixNanos(now),
        };
        let links = store.get_dependencies(&tenant, window).await.unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].call_count, 1);
        let reads = tables.trace_reads();
        assert!(reads > 0, "computed from the traces the first time");

        let again = store.get_dependencies(&tenant, window).await.unwrap();
        assert_eq!(again, links);
        assert_eq!(
            tables.trace_reads(),
            reads,
            "the settled bucket's links were stored"
        );

        // A late span in that bucket: the stored links are stale, and counted again.
        store
            .write_spans(
                &tenant,
                vec![span(
                    1,
                    3,
                    Some(1),
                    "cart",
                    "remove",
                    start + 20,
                    start + 30,
                    false,
                )],
            )
            .await
            .unwrap();
        let after = store.get_dependencies(&tenant, window).await.unwrap();
        assert_eq!(after[0].call_count, 2);
        assert!(tables.trace_reads() > reads);

        // A window that cuts the bucket counts only the spans inside it, from the traces.
        let cut = DependencyQuery {
            start: UnixNanos(start + 15),
            end: UnixNanos(now),
        };
        let partial = store.get_dependencies(&tenant, cut).await.unwrap();
        assert_eq!(partial[0].call_count, 1, "only the span starting at +20");
    }
}
