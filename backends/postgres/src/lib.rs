#![doc = include_str!("../README.md")]

use std::sync::Arc;

use remote_storage_core::{
    Backend, Capabilities, Rewrites, SpanOrder, StoreResult, UnixNanos, Visibility,
};

#[cfg(feature = "cli")]
mod args;
mod config;
mod dependencies;
mod encoded;
mod error;
#[cfg(test)]
mod properties;
mod rollups;
mod rows;
mod schema;
mod search;
mod store;
mod summaries;
mod write;

#[cfg(feature = "cli")]
pub use args::PostgresArgs;
pub use config::{PartitionSpan, PostgresConfig};
pub use store::PostgresStore;

/// Backend name used in logs and metrics.
pub const NAME: &str = "postgres";

/// What the PostgreSQL backend can answer: every query shape, each condition on one span. A
/// re-sent batch adds nothing; a committed write is readable on return, spans in write order.
pub const CAPABILITIES: Capabilities = Capabilities {
    without_service_name: true,
    same_span_conjunction: true,
    // Every candidate is decided by the shared filter evaluator on the whole stored span.
    structured_filters: true,
    operation_span_kinds: true,
    dependency_source: "",
    rewrites: Rewrites::Idempotent,
    visibility: Visibility::OnReturn,
    span_order: SpanOrder::AsWritten,
};

/// Opens the store: validates the settings, connects, applies the embedded migrations (unless
/// `skip_migrations`), creates the current partitions, drops expired ones and starts the
/// maintenance task. PostgreSQL unreachable at start-up is an `Unavailable` error after about
/// `connect_timeout`.
pub async fn open(config: PostgresConfig) -> StoreResult<Backend> {
    let store = open_store(config).await?;
    Ok(Backend::from_store(NAME, CAPABILITIES, store))
}

/// Same as [`open`], returning the concrete store (for tests and tools that run maintenance).
pub async fn open_store(config: PostgresConfig) -> StoreResult<Arc<PostgresStore>> {
    config.validate()?;
    let pool = schema::pool(&config)?;
    let setup = async {
        if !config.skip_migrations {
            schema::migrate(&pool, &config.schema).await?;
        }
        let span = schema::stored_partition_span(&pool, config.partition_span).await?;
        Ok((span, schema::rollups_from(&pool).await?))
    };
    let setup_timeout = config.connect_timeout.saturating_add(config.query_timeout);
    let (span, rollups_from) = match tokio::time::timeout(setup_timeout, setup).await {
        Ok(setup) => setup?,
        Err(_) => return Err(error::timed_out("opening the store")),
    };
    let partitions = schema::Partitions::new(&config.schema, span);
    let store = Arc::new(PostgresStore::new(pool, partitions, config, rollups_from));
    store.run_maintenance(UnixNanos::now()).await?;
    store.start_maintenance();
    Ok(store)
}
