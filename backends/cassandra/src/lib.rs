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

pub mod buckets;
pub mod config;
pub mod planner;
pub mod schema;
pub mod statements;

pub use buckets::Buckets;
pub use config::{CassandraConfig, Consistency};

/// The backend's name (`--backend cassandra`).
pub const NAME: &str = "cassandra";
