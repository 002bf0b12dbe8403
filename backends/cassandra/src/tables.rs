//! The seam between the store's logic and the cluster: one async method per statement of
//! `statements.rs` (or per group written together). `cql.rs` implements it over the scylla
//! driver; `model.rs` (feature `table-model`) over in-memory maps with the same partition and
//! clustering semantics, so the store's logic runs the conformance suite without a node.

use async_trait::async_trait;
use remote_storage_core::StoreResult;

use crate::rows::{Id, IndexEntry, Partition, SpanRow, WriteRows};

/// A bucket that holds spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveBucket {
    /// The bucket.
    pub bucket: i64,
    /// When a write last added spans to it (the writer's clock, nanoseconds).
    pub last_write: i64,
}

/// Where the next page of a partition read starts (opaque; from the previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(pub Vec<u8>);

/// One page of index rows, newest first, and where the next one starts.
#[derive(Debug, Default)]
pub struct IndexPage {
    /// Rows of the page.
    pub rows: Vec<IndexEntry>,
    /// `None` when the partition has no more rows in the window.
    pub next: Option<PageToken>,
}

/// Reads and writes the backend's tables.
#[async_trait]
pub trait Tables: Send + Sync + 'static {
    /// Writes every row of one write, with `ttl_seconds`. Returns only once every row is
    /// written at the configured consistency; an error means some rows may be missing (the
    /// write is safe to repeat: every row is keyed by content).
    async fn write(&self, tenant: &str, rows: &WriteRows, ttl_seconds: i32) -> StoreResult<()>;

    /// Every `spans` row of a trace.
    async fn trace(&self, tenant: &str, trace_id: &Id) -> StoreResult<Vec<SpanRow>>;

    /// The earliest start and latest end of a trace's spans; `None` when none is stored.
    async fn extents(&self, tenant: &str, trace_id: &Id) -> StoreResult<Option<(i64, i64)>>;

    /// One `spans` row.
    async fn span(
        &self,
        tenant: &str,
        trace_id: &Id,
        document_id: &Id,
    ) -> StoreResult<Option<SpanRow>>;

    /// One resource's bytes.
    async fn resource(&self, tenant: &str, resource_id: &Id) -> StoreResult<Option<Vec<u8>>>;

    /// One page of a partition's rows with `min ≤ start ≤ max`, newest first (the page size
    /// is the implementation's).
    async fn index_page(
        &self,
        tenant: &str,
        partition: &Partition,
        window: (i64, i64),
        page: Option<PageToken>,
    ) -> StoreResult<IndexPage>;

    /// The buckets in `min ..= max` that hold spans, newest first.
    async fn buckets(&self, tenant: &str, min: i64, max: i64) -> StoreResult<Vec<ActiveBucket>>;

    /// A bucket's stored dependency links, when computed: when, and the encoded links.
    async fn rollup(&self, tenant: &str, bucket: i64) -> StoreResult<Option<(i64, Vec<u8>)>>;

    /// Stores a bucket's dependency links, computed at `computed_at`.
    async fn put_rollup(
        &self,
        tenant: &str,
        bucket: i64,
        computed_at: i64,
        links: &[u8],
        ttl_seconds: i32,
    ) -> StoreResult<()>;

    /// A tenant's services.
    async fn services(&self, tenant: &str) -> StoreResult<Vec<String>>;

    /// A service's (kind, operation) pairs, of one kind when `kind` is set.
    async fn operations(
        &self,
        tenant: &str,
        service: &str,
        kind: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>>;

    /// Empties every table (the purger, for tests).
    async fn truncate(&self) -> StoreResult<()>;

    /// `Ok` when the cluster answers.
    async fn ping(&self) -> StoreResult<()>;
}
