//! Shared helpers of the PostgreSQL tests: the database from the environment, one random
//! schema per test (dropped at the end), and span builders.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backend_postgres::{PartitionSpan, PostgresConfig, PostgresStore};
use remote_storage_core::Backend;

/// The database URL from `CONFORMANCE_POSTGRES_URL` (or `DATABASE_URL`); prints the one skip
/// line when neither is set.
pub fn database_url() -> Option<String> {
    static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();
    if let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        && std::env::var_os("CONFORMANCE_POSTGRES_URL").is_none()
    {
        return Some(url);
    }
    let mut url = std::env::var("CONFORMANCE_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty());
    if url.is_none() {
        SKIP_NOTICE.call_once(|| {
            url = storage_conformance::environment::service_url(
                "postgres",
                "the PostgreSQL backend's tests and conformance suite",
            );
        });
    }
    url
}

/// A schema name no other test or run uses.
pub fn unique_schema(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "t_{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Settings for tests: short timeouts, a fresh schema.
pub fn test_config(url: &str, schema: &str) -> PostgresConfig {
    let mut config = PostgresConfig::new(url);
    config.schema = schema.to_owned();
    config.max_connections = std::num::NonZeroU32::new(4).unwrap();
    config.acquire_timeout = Duration::from_secs(3);
    config.connect_timeout = Duration::from_secs(3);
    config.query_timeout = Duration::from_secs(30);
    config.partition_span = PartitionSpan::Day;
    config
}

/// A store in its own schema.
pub struct TestStore {
    pub store: Arc<PostgresStore>,
    pub backend: Backend,
    pub schema: String,
    pub url: String,
}

impl TestStore {
    /// Opens a store in a fresh schema, or `None` (after the skip line) without a database.
    pub async fn open(prefix: &str) -> Option<Self> {
        let url = database_url()?;
        let schema = unique_schema(prefix);
        Some(Self::open_with(test_config(&url, &schema)).await)
    }

    pub async fn open_with(config: PostgresConfig) -> Self {
        let schema = config.schema.clone();
        let url = config.url.clone();
        let store = backend_postgres::open_store(config)
            .await
            .expect("opening the postgres store");
        let backend = Backend::from_store(
            backend_postgres::NAME,
            backend_postgres::CAPABILITIES,
            Arc::clone(&store),
        );
        Self {
            store,
            backend,
            schema,
            url,
        }
    }

    /// Closes the store and drops its schema.
    pub async fn finish(self) {
        let pool = self.store.pool().clone();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        )))
        .execute(&pool)
        .await
        .expect("dropping the test schema");
        self.backend.lifecycle.close().await.unwrap();
    }
}
