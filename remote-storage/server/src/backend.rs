//! Backend selection. Adding a backend is one `BackendConfig` variant, one CLI value and one
//! match arm in [`open_backend`].

use remote_storage_core::Backend;

/// Which backend to open, with its settings.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// Process memory; data is lost on exit.
    Memory(backend_memory::MemoryConfig),
    /// The embedded LSM store (fjall), persistent in a data directory.
    Lsm(backend_lsm::LsmConfig),
    /// PostgreSQL through sqlx.
    Postgres(backend_postgres::PostgresConfig),
    /// Drops every span and answers reads empty: the decode-only baseline of benchmarks.
    Discard,
}

impl BackendConfig {
    /// The backend's short name, as used in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => backend_memory::NAME,
            Self::Lsm(_) => backend_lsm::NAME,
            Self::Postgres(_) => backend_postgres::NAME,
            Self::Discard => backend_discard::NAME,
        }
    }
}

/// Opens the configured backend. Async because networked backends connect and migrate here.
pub async fn open_backend(config: &BackendConfig) -> anyhow::Result<Backend> {
    match config {
        BackendConfig::Memory(memory) => Ok(backend_memory::open(*memory)),
        BackendConfig::Lsm(lsm) => {
            // Opening replays fjall's journal: blocking file I/O, kept off the async workers.
            let lsm = lsm.clone();
            let backend = tokio::task::spawn_blocking(move || backend_lsm::open(lsm)).await??;
            Ok(backend)
        }
        BackendConfig::Postgres(postgres) => Ok(backend_postgres::open(postgres.clone()).await?),
        BackendConfig::Discard => Ok(backend_discard::open()),
    }
}
