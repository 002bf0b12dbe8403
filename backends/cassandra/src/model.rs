//! An in-memory model of the tables (feature `table-model`): the partition and clustering
//! semantics of `schema.rs` (index partitions ordered by start descending then document ID;
//! rows keyed by their primary key, so a re-written row replaces itself), and nothing else.
//! It lets the store's logic run the whole conformance suite in process without a node. It is
//! not Cassandra and is never reported as the Cassandra backend: TTLs, consistency and the
//! driver are not modelled.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;
use remote_storage_core::StoreResult;

use crate::rows::{Id, IndexEntry, Partition, SpanRow, WriteRows};
use crate::tables::{ActiveBucket, IndexPage, PageToken, Tables};

/// The clustering key of an index row: start descending, then document ID ascending.
type Clustering = (std::cmp::Reverse<i64>, Id);

#[derive(Default)]
struct State {
    spans: HashMap<(String, Id), BTreeMap<Id, SpanRow>>,
    resources: HashMap<(String, Id), Vec<u8>>,
    index: HashMap<(String, Partition), BTreeMap<Clustering, IndexEntry>>,
    /// Per tenant: bucket → last write.
    buckets: HashMap<String, BTreeMap<i64, i64>>,
    rollups: HashMap<(String, i64), (i64, Vec<u8>)>,
    services: HashMap<String, BTreeSet<String>>,
    operations: HashMap<(String, String), BTreeSet<(String, String)>>,
}

/// The in-memory tables.
pub struct ModelTables {
    state: RwLock<State>,
    trace_reads: AtomicU64,
    page_rows: usize,
}

impl Default for ModelTables {
    /// Pages of a few rows, so searches cross page boundaries even over small data sets.
    fn default() -> Self {
        Self::with_page_rows(3)
    }
}

impl ModelTables {
    /// Tables answering index reads `page_rows` rows at a time.
    pub fn with_page_rows(page_rows: usize) -> Self {
        Self {
            state: RwLock::default(),
            trace_reads: AtomicU64::default(),
            page_rows: page_rows.max(1),
        }
    }

    /// How many times a trace partition was read (what a rollup saves).
    pub fn trace_reads(&self) -> u64 {
        self.trace_reads.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Tables for ModelTables {
    async fn write(&self, tenant: &str, rows: &WriteRows, _ttl_seconds: i32) -> StoreResult<()> {
        let mut state = self.state.write();
        for (id, bytes) in &rows.resources {
            state
                .resources
                .insert((tenant.to_owned(), *id), bytes.clone());
        }
        for row in &rows.spans {
            state
                .spans
                .entry((tenant.to_owned(), row.trace_id))
                .or_default()
                .insert(row.document_id, row.clone());
        }
        for (partition, entry) in rows.index_rows() {
            state
                .index
                .entry((tenant.to_owned(), partition.clone()))
                .or_default()
                .insert(
                    (std::cmp::Reverse(entry.start), entry.document_id),
                    entry.clone(),
                );
        }
        let buckets = state.buckets.entry(tenant.to_owned()).or_default();
        for bucket in &rows.buckets {
            buckets.insert(*bucket, rows.written_at);
        }
        for service in &rows.services {
            state
                .services
                .entry(tenant.to_owned())
                .or_default()
                .insert(service.clone());
        }
        for (service, kind, operation) in &rows.operations {
            state
                .operations
                .entry((tenant.to_owned(), service.clone()))
                .or_default()
                .insert((kind.clone(), operation.clone()));
        }
        Ok(())
    }

    async fn trace(&self, tenant: &str, trace_id: &Id) -> StoreResult<Vec<SpanRow>> {
        self.trace_reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .state
            .read()
            .spans
            .get(&(tenant.to_owned(), *trace_id))
            .map(|rows| rows.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn extents(&self, tenant: &str, trace_id: &Id) -> StoreResult<Option<(i64, i64)>> {
        Ok(self
            .state
            .read()
            .spans
            .get(&(tenant.to_owned(), *trace_id))
            .and_then(|rows| {
                let start = rows.values().map(|row| row.start).min()?;
                let finish = rows.values().map(|row| row.finish).max()?;
                Some((start, finish))
            }))
    }

    async fn span(
        &self,
        tenant: &str,
        trace_id: &Id,
        document_id: &Id,
    ) -> StoreResult<Option<SpanRow>> {
        Ok(self
            .state
            .read()
            .spans
            .get(&(tenant.to_owned(), *trace_id))
            .and_then(|rows| rows.get(document_id).cloned()))
    }

    async fn resource(&self, tenant: &str, resource_id: &Id) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .state
            .read()
            .resources
            .get(&(tenant.to_owned(), *resource_id))
            .cloned())
    }

    async fn index_page(
        &self,
        tenant: &str,
        partition: &Partition,
        window: (i64, i64),
        page: Option<PageToken>,
    ) -> StoreResult<IndexPage> {
        let page_size = self.page_rows;
        let state = self.state.read();
        let Some(rows) = state.index.get(&(tenant.to_owned(), partition.clone())) else {
            return Ok(IndexPage::default());
        };
        // The token is the number of window rows already returned.
        let skip = page
            .and_then(|token| token.0.try_into().ok().map(usize::from_le_bytes))
            .unwrap_or(0);
        let in_window = rows
            .range((std::cmp::Reverse(window.1), [0; 16])..)
            .map(|(_, entry)| entry)
            .take_while(|entry| entry.start >= window.0);
        let rows: Vec<IndexEntry> = in_window.skip(skip).take(page_size + 1).cloned().collect();
        let more = rows.len() > page_size;
        Ok(IndexPage {
            rows: rows.into_iter().take(page_size).collect(),
            next: more.then(|| PageToken((skip + page_size).to_le_bytes().to_vec())),
        })
    }

    async fn buckets(&self, tenant: &str, min: i64, max: i64) -> StoreResult<Vec<ActiveBucket>> {
        if min > max {
            return Ok(Vec::new());
        }
        Ok(self
            .state
            .read()
            .buckets
            .get(tenant)
            .map(|buckets| {
                buckets
                    .range(min..=max)
                    .rev()
                    .map(|(&bucket, &last_write)| ActiveBucket { bucket, last_write })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn rollup(&self, tenant: &str, bucket: i64) -> StoreResult<Option<(i64, Vec<u8>)>> {
        Ok(self
            .state
            .read()
            .rollups
            .get(&(tenant.to_owned(), bucket))
            .cloned())
    }

    async fn put_rollup(
        &self,
        tenant: &str,
        bucket: i64,
        computed_at: i64,
        links: &[u8],
        _ttl_seconds: i32,
    ) -> StoreResult<()> {
        self.state
            .write()
            .rollups
            .insert((tenant.to_owned(), bucket), (computed_at, links.to_vec()));
        Ok(())
    }

    async fn services(&self, tenant: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .state
            .read()
            .services
            .get(tenant)
            .map(|services| services.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn operations(
        &self,
        tenant: &str,
        service: &str,
        kind: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .state
            .read()
            .operations
            .get(&(tenant.to_owned(), service.to_owned()))
            .map(|operations| {
                operations
                    .iter()
                    .filter(|(stored, _)| kind.is_none_or(|kind| kind == stored))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn truncate(&self) -> StoreResult<()> {
        *self.state.write() = State::default();
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
