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

use std::sync::Arc;

use remote_storage_core::{Backend, Capabilities, Rewrites, SpanOrder, StoreResult, Visibility};

/// What the store declares: every query shape, operations with span kinds, links derived
/// from spans, re-sent writes idempotent (rows are keyed by content), spans in write order.
/// Writes are readable on return at `LOCAL_QUORUM` (the default): see
/// [`Consistency::reads_own_writes`].
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
    // The matcher runs the filter on every candidate's stored span (`filter_narrowing`).
    structured_filters: true,
    operation_span_kinds: true,
    dependency_source: "",
    rewrites: Rewrites::Idempotent,
    visibility: Visibility::OnReturn,
    span_order: SpanOrder::AsWritten,
};

#[cfg(feature = "cli")]
mod args;
pub mod buckets;
pub mod config;
pub mod cql;
mod filter_narrowing;
#[cfg(test)]
mod filter_search_tests;
#[cfg(any(test, feature = "table-model"))]
pub mod model;
pub mod planner;
pub mod rollups;
pub mod rows;
pub mod schema;
mod search;
pub mod statements;
pub mod store;
pub mod tables;
mod tls;

#[cfg(feature = "cli")]
pub use args::CassandraArgs;
pub use buckets::Buckets;
pub use config::{CassandraConfig, Consistency, Password, TlsFiles};
pub use store::CassandraStore;
pub use tables::Tables;

/// The backend's name (`--backend cassandra`).
pub const NAME: &str = "cassandra";

/// What a store with `config` declares: [`CAPABILITIES`], except that a consistency level
/// at which a read may miss an acknowledged write (`ONE`, `LOCAL_ONE`) declares writes
/// readable within a bound instead of on return.
pub fn capabilities(config: &CassandraConfig) -> Capabilities {
    if config.consistency.reads_own_writes() {
        CAPABILITIES
    } else {
        Capabilities {
            visibility: Visibility::WithinRefresh(config.request_timeout),
            ..CAPABILITIES
        }
    }
}

/// Connects to the cluster (failing within twice the connect timeout, naming the servers,
/// when none answers), applies or checks the schema and prepares every statement.
pub async fn open(config: CassandraConfig) -> StoreResult<Backend> {
    let tables = cql::CqlTables::connect(&config).await?;
    let store = CassandraStore::new(
        Arc::new(tables),
        Buckets::new(config.bucket.as_secs(), config.shards),
        config.retention,
    );
    Ok(Backend::from_store(
        NAME,
        capabilities(&config),
        Arc::new(store),
    ))
}
