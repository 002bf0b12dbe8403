//! Cassandra / ScyllaDB trace store: the parts that need no node, written first.
//!
//! **Not a backend yet**: the server does not offer it, and no store talks to a cluster. What is
//! here is the layout the store will use, each piece unit-tested without a node:
//!
//! - [`config`]: every setting and its default, written once.
//! - [`buckets`]: time buckets and shards, which bound every index partition by
//!   `span rate × bucket width / shards` rows whatever the total data.
//! - [`schema`]: the versioned, idempotent DDL (`CREATE … IF NOT EXISTS`, TTL retention,
//!   time-window compaction sized to it).
//! - [`statements`]: every CQL statement the store sends, checked against that DDL.
//! - [`planner`] and the search walk: which partitions a query reads and where it stops.
//! - [`rows`]: what a write stores, and the spans read back.
//! - [`store`]: the store's logic over [`Tables`], the seam to the cluster. With the
//!   `table-model` feature, [`model`] implements it in memory, so the logic runs the whole
//!   conformance suite without a node; the CQL implementation on the scylla driver comes next.

use remote_storage_core::{Capabilities, Rewrites, SpanOrder, Visibility};

/// What the store declares: every query shape, operations with span kinds, links derived
/// from spans, re-sent writes idempotent (rows are keyed by content), spans in write order.
/// Writes are readable on return at `LOCAL_QUORUM` (the default): see
/// [`Consistency::reads_own_writes`].
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
    operation_span_kinds: true,
    dependency_source: "",
    rewrites: Rewrites::Idempotent,
    visibility: Visibility::OnReturn,
    span_order: SpanOrder::AsWritten,
};

pub mod buckets;
pub mod config;
#[cfg(any(test, feature = "table-model"))]
pub mod model;
pub mod planner;
pub mod rows;
pub mod schema;
mod search;
pub mod statements;
pub mod store;
pub mod tables;

pub use buckets::Buckets;
pub use config::{CassandraConfig, Consistency};
pub use store::CassandraStore;
pub use tables::Tables;

/// The backend's name (`--backend cassandra`).
pub const NAME: &str = "cassandra";
