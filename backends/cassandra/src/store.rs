//! The store: the trait implementations over [`Tables`], thin; the work lives in `rows.rs`
//! (what a write stores), `search.rs` (searches) and `planner.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::model::span_kind_name;
use remote_storage_core::{
    DependencyLink, DependencyQuery, DependencyStore, FoundTraceId, Operation, OperationQuery,
    Purger, Span, StoreLifecycle, StoreResult, Tenant, Trace, TraceLookup, TraceQuery, TraceStore,
    TraceStream, UnixNanos,
};

use crate::buckets::Buckets;
use crate::rows::{Id, SpanDecoder, start_of, trace_id, write_rows};
use crate::search;
use crate::tables::Tables;

/// Traces whose time hints are read at once after a search.
const EXTENT_READS: usize = 16;

/// The Cassandra store over some [`Tables`].
pub struct CassandraStore<T: Tables> {
    tables: Arc<T>,
    buckets: Buckets,
    retention: Duration,
    /// The last write's batch number (a nanosecond clock reading, strictly increasing).
    last_batch: AtomicU64,
}

impl<T: Tables> CassandraStore<T> {
    /// A store over `tables`, indexing with `buckets`, keeping rows for `retention`.
    pub fn new(tables: Arc<T>, buckets: Buckets, retention: Duration) -> Self {
        Self {
            tables,
            buckets,
            retention,
            last_batch: AtomicU64::new(0),
        }
    }

    /// A batch number above every earlier one of this process.
    fn next_batch(&self) -> i64 {
        let now = UnixNanos::now().0;
        let previous = self
            .last_batch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        i64::try_from(now.max(previous + 1)).unwrap_or(i64::MAX)
    }

    fn ttl_seconds(&self) -> i32 {
        i32::try_from(self.retention.as_secs()).unwrap_or(i32::MAX)
    }

    /// Every span of one trace in write order, or `None` when none is stored.
    async fn read_trace(&self, tenant: &Tenant, id: &Id) -> StoreResult<Option<Trace>> {
        let mut rows = self.tables.trace(tenant.name(), id).await?;
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
                match self
                    .tables
                    .resource(tenant.name(), &row.resource_id)
                    .await?
                {
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
}

#[async_trait]
impl<T: Tables> TraceStore for CassandraStore<T> {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let rows = write_rows(tenant, &spans, &self.buckets, self.next_batch());
        self.tables
            .write(tenant.name(), &rows, self.ttl_seconds())
            .await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        let mut traces = Vec::with_capacity(lookups.len());
        for lookup in lookups {
            if let Some(trace) = self.read_trace(tenant, lookup.trace_id.as_bytes()).await? {
                traces.push(Ok(trace));
            }
        }
        Ok(futures::stream::iter(traces).boxed())
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
        let found = search::find(
            self.tables.as_ref(),
            tenant.name(),
            &query,
            &self.buckets,
            UnixNanos::now(),
            u64::try_from(self.retention.as_nanos()).unwrap_or(u64::MAX),
        )
        .await?;
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
}

#[async_trait]
impl<T: Tables> DependencyStore for CassandraStore<T> {
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let mut counter = DependencyCounter::default();
        let traces = search::traces_in_window(
            self.tables.as_ref(),
            tenant.name(),
            &self.buckets,
            query.start,
            query.end,
        )
        .await?;
        for id in traces {
            if let Some(trace) = self.read_trace(tenant, &id).await? {
                counter.add_trace(&trace, &query);
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
