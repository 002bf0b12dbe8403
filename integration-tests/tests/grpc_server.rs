//! Modes 2 and 3: our server started in-process on port 0, once over each backend that can run
//! here (memory; LSM in a temporary directory; PostgreSQL in a fresh schema when
//! `CONFORMANCE_POSTGRES_URL` names a database), the suite run through gRPC as Jaeger's direct suite (typed values, Export on the main port) and as
//! Jaeger's e2e suite (string values, 5-span Exports on the writer port), each with this
//! crate's fixtures and then (when present) Jaeger's. Nothing is excused.

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use remote_storage::{RunningServer, ServerConfig};
use remote_storage_core::Backend;
use storage_conformance::{
    GrpcTarget, GrpcTargetConfig, SuiteOptions, SuiteRun, WireMode, fixture_sets, new_runtime,
    run_libtest,
};

fn target(server: &RunningServer, mode: WireMode) -> anyhow::Result<GrpcTarget> {
    let purger = server
        .purger_addr
        .context("the test server has no purger")?;
    let mut config = GrpcTargetConfig::new(server.grpc_addr.to_string());
    config.mode = mode;
    config.purger_url = Some(format!("http://{purger}/purge"));
    // Jaeger's direct suite writes to the main endpoint; Jaeger itself to the writer endpoint.
    if mode == WireMode::ViaJaeger {
        config.writer_endpoint = server.writer_addr.map(|addr| addr.to_string());
    }
    GrpcTarget::new(config)
}

fn main() -> ExitCode {
    let runtime = match new_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot build a runtime: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let started = runtime.block_on(async {
        let sets = fixture_sets()?;
        let mut servers = Vec::new();
        let mut runs = Vec::new();
        let (backends, postgres) = backends().await?;
        for (backend_name, backend) in backends {
            let server = RunningServer::start(ServerConfig::for_tests(), backend).await?;
            for mode in [WireMode::Direct, WireMode::ViaJaeger] {
                let grpc_target = Arc::new(target(&server, mode)?);
                for (label, fixtures) in &sets {
                    runs.push(SuiteRun {
                        name: format!("{backend_name}/{}/{label}", mode.name()),
                        target: grpc_target.clone(),
                        fixtures: Arc::clone(fixtures),
                        options: SuiteOptions::in_process(),
                    });
                }
            }
            servers.push(server);
        }
        anyhow::Ok((servers, runs, postgres))
    });
    let (servers, runs, postgres) = match started {
        Ok(started) => started,
        Err(error) => {
            eprintln!("cannot start the test server: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = run_libtest(&runtime, &runs);
    drop(runs);
    // Before the servers stop: stopping closes the store's pool.
    if let Some(postgres) = postgres {
        runtime.block_on(postgres.drop_schema());
    }
    for server in servers {
        if let Err(error) = runtime.block_on(server.stop()) {
            eprintln!("stopping a test server failed: {error:#}");
            return ExitCode::FAILURE;
        }
    }
    code
}

/// The PostgreSQL store under test and its throw-away schema.
struct PostgresUnderTest {
    store: Arc<backend_postgres::PostgresStore>,
    schema: String,
}

impl PostgresUnderTest {
    async fn drop_schema(self) {
        let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(self.store.pool())
            .await
        {
            eprintln!("could not drop test schema {}: {error}", self.schema);
        }
    }
}

/// Every backend that can run here, freshly opened and empty.
async fn backends() -> anyhow::Result<(Vec<(&'static str, Backend)>, Option<PostgresUnderTest>)> {
    let max_traces = NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN);
    let memory = backend_memory::open(backend_memory::MemoryConfig { max_traces });
    let lsm = backend_lsm::open(backend_lsm::LsmConfig::ephemeral())?;
    let mut backends = vec![(backend_memory::NAME, memory), (backend_lsm::NAME, lsm)];
    let Some(url) = std::env::var("CONFORMANCE_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!("skipping postgres through the server: CONFORMANCE_POSTGRES_URL is not set");
        return Ok((backends, None));
    };
    let schema = format!("grpc_conformance_{}", std::process::id());
    let mut config = backend_postgres::PostgresConfig::new(url);
    config.schema.clone_from(&schema);
    let store = backend_postgres::open_store(config).await?;
    backends.push((
        backend_postgres::NAME,
        Backend::from_store(
            backend_postgres::NAME,
            backend_postgres::CAPABILITIES,
            Arc::clone(&store),
        ),
    ));
    Ok((backends, Some(PostgresUnderTest { store, schema })))
}
