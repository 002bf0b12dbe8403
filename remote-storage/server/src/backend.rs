//! The backend registry: the one place in the server that knows every backend. Each storing
//! backend is compiled in by a cargo feature of this crate (`backend-<name>`, all on by
//! default); a build without one still knows its name, and selecting it says which feature adds
//! it. Adding a backend here is one [`BackendKind`] value, one [`BackendArgs`] field, one
//! [`BackendConfig`] variant and one arm in [`BackendConfig::from_args`] and [`open_backend`]
//! (see `backends/README.md`).

use clap::ValueEnum;
use remote_storage_core::Backend;

/// Every backend the server knows, whether or not this build contains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// In process memory, bounded; data is lost on exit.
    Memory,
    /// Embedded LSM store (fjall) in `--lsm.data-dir`: persistent, single node.
    Lsm,
    /// PostgreSQL at `--postgres.url`: time-partitioned tables, shared by many servers.
    Postgres,
    /// Elasticsearch 7.10–9 or OpenSearch 1–3 at `--es.server-urls` (`opensearch` is the same
    /// backend).
    #[value(alias = "opensearch")]
    Elasticsearch,
    /// Cassandra 4/5 or ScyllaDB at `--cassandra.servers`: time-bucketed, sharded indices.
    #[value(alias = "scylladb")]
    Cassandra,
    /// Stores nothing: spans are decoded and dropped, reads answer empty (the decode-only
    /// baseline of benchmarks).
    Discard,
}

impl BackendKind {
    /// The name used by `--backend`, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Lsm => "lsm",
            Self::Postgres => "postgres",
            Self::Elasticsearch => "elasticsearch",
            Self::Cassandra => "cassandra",
            Self::Discard => "discard",
        }
    }

    /// The cargo feature of this crate that compiles the backend in (`None`: always present).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Memory => Some("backend-memory"),
            Self::Lsm => Some("backend-lsm"),
            Self::Postgres => Some("backend-postgres"),
            Self::Elasticsearch => Some("backend-elasticsearch"),
            Self::Cassandra => Some("backend-cassandra"),
            Self::Discard => None,
        }
    }
}

/// The flags of every backend in this build, each group under its own `--help` heading.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    #[cfg(feature = "backend-memory")]
    #[command(flatten)]
    #[allow(missing_docs)]
    pub memory: backend_memory::MemoryArgs,

    #[cfg(feature = "backend-lsm")]
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lsm: backend_lsm::LsmArgs,

    #[cfg(feature = "backend-postgres")]
    #[command(flatten)]
    #[allow(missing_docs)]
    pub postgres: backend_postgres::PostgresArgs,

    #[cfg(feature = "backend-elasticsearch")]
    #[command(flatten)]
    #[allow(missing_docs)]
    pub elasticsearch: backend_elasticsearch::ElasticsearchArgs,

    #[cfg(feature = "backend-cassandra")]
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cassandra: backend_cassandra::CassandraArgs,
}

/// Which backend to open, with its settings.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// Process memory; data is lost on exit.
    #[cfg(feature = "backend-memory")]
    Memory(backend_memory::MemoryConfig),
    /// The embedded LSM store (fjall), persistent in a data directory.
    #[cfg(feature = "backend-lsm")]
    Lsm(backend_lsm::LsmConfig),
    /// PostgreSQL through sqlx.
    #[cfg(feature = "backend-postgres")]
    Postgres(backend_postgres::PostgresConfig),
    /// Elasticsearch or OpenSearch over HTTP.
    #[cfg(feature = "backend-elasticsearch")]
    Elasticsearch(backend_elasticsearch::ElasticsearchConfig),
    /// Cassandra or ScyllaDB through the scylla driver.
    #[cfg(feature = "backend-cassandra")]
    Cassandra(backend_cassandra::CassandraConfig),
    /// Drops every span and answers reads empty: the decode-only baseline of benchmarks.
    Discard,
}

impl BackendConfig {
    /// The settings of backend `kind` from its flags, validated (errors name the flag), or
    /// an error naming the cargo feature when this build lacks the backend.
    pub fn from_args(kind: BackendKind, args: &BackendArgs) -> anyhow::Result<Self> {
        // A build with no storing backend reads no flags.
        let _ = args;
        // In a full build every kind has its arm and the fallback is unreachable.
        #[allow(unreachable_patterns)]
        let config = match kind {
            #[cfg(feature = "backend-memory")]
            BackendKind::Memory => Self::Memory((&args.memory).into()),
            #[cfg(feature = "backend-lsm")]
            BackendKind::Lsm => Self::Lsm((&args.lsm).try_into()?),
            #[cfg(feature = "backend-postgres")]
            BackendKind::Postgres => Self::Postgres((&args.postgres).try_into()?),
            #[cfg(feature = "backend-elasticsearch")]
            BackendKind::Elasticsearch => Self::Elasticsearch((&args.elasticsearch).try_into()?),
            #[cfg(feature = "backend-cassandra")]
            BackendKind::Cassandra => Self::Cassandra((&args.cassandra).try_into()?),
            BackendKind::Discard => Self::Discard,
            missing => return Err(missing_backend(missing)),
        };
        Ok(config)
    }

    /// The backend's short name, as used in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "backend-memory")]
            Self::Memory(_) => backend_memory::NAME,
            #[cfg(feature = "backend-lsm")]
            Self::Lsm(_) => backend_lsm::NAME,
            #[cfg(feature = "backend-postgres")]
            Self::Postgres(_) => backend_postgres::NAME,
            #[cfg(feature = "backend-elasticsearch")]
            Self::Elasticsearch(_) => backend_elasticsearch::NAME,
            #[cfg(feature = "backend-cassandra")]
            Self::Cassandra(_) => backend_cassandra::NAME,
            Self::Discard => backend_discard::NAME,
        }
    }
}

impl BackendConfig {
    /// The DDL the backend applies at start-up, for `--print-schema`; `None` for backends
    /// with no schema an operator could apply (or that migrate only by themselves).
    pub fn schema_script(&self) -> Option<String> {
        match self {
            #[cfg(feature = "backend-cassandra")]
            Self::Cassandra(cassandra) => Some(backend_cassandra::schema::full_script(
                &cassandra.keyspace,
                &cassandra.replication,
                cassandra.retention,
            )),
            _ => None,
        }
    }
}

/// The error for a backend this build was compiled without.
fn missing_backend(kind: BackendKind) -> anyhow::Error {
    let feature = kind.feature().unwrap_or("default");
    anyhow::anyhow!(
        "this build of jaeger-remote-storage does not contain the {name} backend: rebuild with \
         `cargo build -p remote-storage --features {feature}` (or with the default features, \
         which include every backend)",
        name = kind.name()
    )
}

/// Opens the configured backend. Async because networked backends connect and migrate here.
pub async fn open_backend(config: &BackendConfig) -> anyhow::Result<Backend> {
    match config {
        #[cfg(feature = "backend-memory")]
        BackendConfig::Memory(memory) => Ok(backend_memory::open(*memory)),
        #[cfg(feature = "backend-lsm")]
        BackendConfig::Lsm(lsm) => {
            // Opening replays fjall's journal: blocking file I/O, kept off the async workers.
            let lsm = lsm.clone();
            let backend = tokio::task::spawn_blocking(move || backend_lsm::open(lsm)).await??;
            Ok(backend)
        }
        #[cfg(feature = "backend-postgres")]
        BackendConfig::Postgres(postgres) => Ok(backend_postgres::open(postgres.clone()).await?),
        #[cfg(feature = "backend-elasticsearch")]
        BackendConfig::Elasticsearch(elasticsearch) => {
            Ok(backend_elasticsearch::open(elasticsearch.clone()).await?)
        }
        #[cfg(feature = "backend-cassandra")]
        BackendConfig::Cassandra(cassandra) => {
            Ok(backend_cassandra::open(cassandra.clone()).await?)
        }
        BackendConfig::Discard => Ok(backend_discard::open()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_backend_crates() {
        assert_eq!(BackendKind::Discard.name(), backend_discard::NAME);
        #[cfg(feature = "backend-memory")]
        assert_eq!(BackendKind::Memory.name(), backend_memory::NAME);
        #[cfg(feature = "backend-lsm")]
        assert_eq!(BackendKind::Lsm.name(), backend_lsm::NAME);
        #[cfg(feature = "backend-postgres")]
        assert_eq!(BackendKind::Postgres.name(), backend_postgres::NAME);
        #[cfg(feature = "backend-elasticsearch")]
        assert_eq!(
            BackendKind::Elasticsearch.name(),
            backend_elasticsearch::NAME
        );
        #[cfg(feature = "backend-cassandra")]
        assert_eq!(BackendKind::Cassandra.name(), backend_cassandra::NAME);
        for kind in BackendKind::value_variants() {
            let value = kind.to_possible_value().unwrap();
            assert_eq!(value.get_name(), kind.name(), "--backend value of {kind:?}");
        }
    }

    #[test]
    fn a_missing_backend_names_its_feature() {
        let message = missing_backend(BackendKind::Postgres).to_string();
        assert!(message.contains("postgres backend"), "{message}");
        assert!(message.contains("--features backend-postgres"), "{message}");
    }
}
