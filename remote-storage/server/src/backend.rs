//! Backend selection. Adding a backend is one `BackendConfig` variant, one CLI value and one
//! match arm in [`open_backend`].

use remote_storage_core::Backend;

/// Which backend to open, with its settings.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// Process memory; data is lost on exit.
    Memory(backend_memory::MemoryConfig),
}

impl BackendConfig {
    /// The backend's short name, as used in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => backend_memory::NAME,
        }
    }
}

/// Opens the configured backend. Async because networked backends connect and migrate here.
pub async fn open_backend(config: &BackendConfig) -> anyhow::Result<Backend> {
    match config {
        BackendConfig::Memory(memory) => Ok(backend_memory::open(*memory)),
    }
}
