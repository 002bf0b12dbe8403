//! Modes 2 and 3 and the v1 API: our server started in-process on port 0, once over each
//! backend that can run here (memory; LSM in a temporary directory; Elasticsearch/OpenSearch
//! under a fresh index prefix when `CONFORMANCE_OPENSEARCH_URL` or `CONFORMANCE_ELASTICSEARCH_URL`
//! names an engine; Cassandra in a fresh keyspace when `CONFORMANCE_CASSANDRA_URL` names a node;
//! PostgreSQL in
//! a fresh schema when `CONFORMANCE_POSTGRES_URL` names a database), the suite run through gRPC as
//! Jaeger's direct suite (typed values, Export on the main port), as Jaeger's e2e suite (string
//! values, 5-span Exports on the writer port) and as Jaeger v1's storage client
//! (`WriteSpanStream` + `SpanReaderPlugin`), each with this crate's fixtures and then (when
//! present) Jaeger's. On the memory backend also: v1 unary writes, the cross-API runs (v1
//! writes read through v2, v2 writes read through v1) and a check that reading through v1
//! leaves what v2 stored intact. Nothing is excused but the searches the v1 model cannot
//! carry (`storage_conformance::v1::forced_losses`); each backend's declared capabilities set
//! what the runs expect, and writes declared readable on return are read back without waiting.

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use libtest_mimic::{Arguments, Failed, Trial};
use remote_storage::{RunningServer, ServerConfig};
use remote_storage_core::Backend;
use storage_conformance::{
    CrossApiTarget, FixtureSet, GrpcTarget, GrpcTargetConfig, SuiteOptions, SuiteRun, SuiteTarget,
    V1GrpcTarget, V1Path, V1Writer, WireMode, fixture_sets, libtest_trials, new_runtime,
    v1_suite_run,
};

fn target_config(server: &RunningServer, mode: WireMode) -> anyhow::Result<GrpcTargetConfig> {
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
    Ok(config)
}

fn target(server: &RunningServer, mode: WireMode) -> anyhow::Result<GrpcTarget> {
    GrpcTarget::new(target_config(server, mode)?)
}

/// Jaeger v1's storage client: reads and writes on the one endpoint it is given.
fn v1_target(server: &RunningServer, writer: V1Writer) -> anyhow::Result<V1GrpcTarget> {
    V1GrpcTarget::new(&target_config(server, WireMode::Direct)?, writer)
}

/// The v1 runs of one server: streaming writes on every backend; on the reference backend
/// (memory) also unary writes and both cross-API directions.
fn v1_runs(
    backend_name: &str,
    options: &SuiteOptions,
    server: &RunningServer,
    sets: &[(String, Arc<FixtureSet>)],
    with_cross_api: bool,
) -> anyhow::Result<Vec<SuiteRun>> {
    let stream: Arc<dyn SuiteTarget> = Arc::new(v1_target(server, V1Writer::Stream)?);
    let mut runs = Vec::new();
    for (label, fixtures) in sets {
        runs.push(v1_suite_run(
            format!("{backend_name}/v1/{label}"),
            Arc::clone(&stream),
            fixtures,
            options.clone(),
            V1Path::WrittenThroughV1,
        )?);
    }
    if !with_cross_api {
        return Ok(runs);
    }
    let unary: Arc<dyn SuiteTarget> = Arc::new(v1_target(server, V1Writer::Unary)?);
    let v2: Arc<dyn SuiteTarget> = Arc::new(target(server, WireMode::Direct)?);
    let v1_writes_v2_reads: Arc<dyn SuiteTarget> =
        Arc::new(CrossApiTarget::new(Arc::clone(&stream), Arc::clone(&v2)));
    let v2_writes_v1_reads: Arc<dyn SuiteTarget> =
        Arc::new(CrossApiTarget::new(Arc::clone(&v2), Arc::clone(&stream)));
    for (label, fixtures) in sets {
        runs.push(v1_suite_run(
            format!("{backend_name}/v1-unary/{label}"),
            Arc::clone(&unary),
            fixtures,
            options.clone(),
            V1Path::WrittenThroughV1,
        )?);
        runs.push(v1_suite_run(
            format!("{backend_name}/v1-write-v2-read/{label}"),
            Arc::clone(&v1_writes_v2_reads),
            fixtures,
            options.clone(),
            V1Path::WrittenThroughV1,
        )?);
        runs.push(v1_suite_run(
            format!("{backend_name}/v2-write-v1-read/{label}"),
            Arc::clone(&v2_writes_v1_reads),
            fixtures,
            options.clone(),
            V1Path::ReadThroughV1,
        )?);
    }
    Ok(runs)
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
        let mut intact_check = None;
        for (backend_name, backend) in backends {
            // What the backend declares is what every run through the server expects.
            let options = SuiteOptions::declared(backend.capabilities);
            let server = RunningServer::start(ServerConfig::for_tests(), backend).await?;
            for mode in [WireMode::Direct, WireMode::ViaJaeger] {
                let grpc_target = Arc::new(target(&server, mode)?);
                for (label, fixtures) in &sets {
                    runs.push(SuiteRun {
                        name: format!("{backend_name}/{}/{label}", mode.name()),
                        target: grpc_target.clone(),
                        fixtures: Arc::clone(fixtures),
                        options: options.clone(),
                    });
                }
            }
            let reference = backend_name == backend_memory::NAME;
            runs.extend(v1_runs(backend_name, &options, &server, &sets, reference)?);
            if reference {
                intact_check = Some(IntactCheck {
                    v2: Arc::new(target(&server, WireMode::Direct)?),
                    v1: Arc::new(v1_target(&server, V1Writer::Stream)?),
                    fixtures: sets.iter().map(|(_, set)| Arc::clone(set)).collect(),
                });
            }
            servers.push(server);
        }
        anyhow::Ok((servers, runs, postgres, intact_check))
    });
    let (servers, runs, postgres, intact_check) = match started {
        Ok(started) => started,
        Err(error) => {
            eprintln!("cannot start the test server: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = libtest_trials(&runtime, &runs, &args);
    if let Some(check) = intact_check {
        let runtime = Arc::clone(&runtime);
        trials.push(Trial::test(
            "memory/cross-api/V2_data_intact_after_v1_reads",
            move || {
                runtime
                    .block_on(check.run())
                    .map_err(|error| Failed::from(format!("{error:#}")))
            },
        ));
    }
    let code = libtest_mimic::run(&args, trials).exit_code();
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

/// Reading through v1 is a view: after every fixture was read through v1 (GetTrace and
/// FindTraces by service), v2 still reads each exactly as it was written.
struct IntactCheck {
    v2: Arc<GrpcTarget>,
    v1: Arc<V1GrpcTarget>,
    fixtures: Vec<Arc<FixtureSet>>,
}

impl IntactCheck {
    async fn run(&self) -> anyhow::Result<()> {
        for fixtures in &self.fixtures {
            let result = self.check(fixtures).await;
            self.v2.purge().await?;
            result.with_context(|| fixtures.label().to_owned())?;
        }
        Ok(())
    }

    async fn check(&self, fixtures: &FixtureSet) -> anyhow::Result<()> {
        let names = fixtures.query_fixture_names();
        for name in &names {
            self.v2
                .write_traces(fixtures.trace(name)?.resource_spans.clone())
                .await
                .with_context(|| format!("writing {name}"))?;
        }
        for name in &names {
            let original = fixtures.trace(name)?;
            let trace_id = storage_conformance::target::trace_id_array(
                original.trace_id().context("empty fixture")?,
            )?;
            let through_v1 = self.v1.get_traces(&[trace_id]).await?;
            anyhow::ensure!(through_v1.len() == 1, "{name}: v1 GetTrace found no trace");
            for group in &original.resource_spans {
                let service = storage_conformance::suite::service_name(group.resource.as_ref());
                let search = storage_conformance::TraceSearch {
                    service_name: service,
                    search_depth: 1000,
                    ..Default::default()
                };
                self.v1.find_traces(&search).await?;
            }
            let read = self.v2.get_traces(&[trace_id]).await?;
            let [again] = read.as_slice() else {
                anyhow::bail!("{name}: v2 GetTraces returned {} traces", read.len());
            };
            storage_conformance::compare::compare_traces(original, again)
                .map_err(|diff| anyhow::anyhow!("{name} changed after v1 reads: {diff}"))?;
        }
        Ok(())
    }
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
    let opensearch = storage_conformance::environment::service_url(
        "opensearch",
        "elasticsearch/opensearch through the server",
    );
    let elasticsearch = storage_conformance::environment::external_url(
        "CONFORMANCE_ELASTICSEARCH_URL",
        "elasticsearch through the server against a real Elasticsearch",
        "export CONFORMANCE_ELASTICSEARCH_URL=http://[USER:PASSWORD@]HOST:9200",
    );
    for (name, url) in [
        (backend_elasticsearch::NAME, opensearch),
        ("elasticsearch-real", elasticsearch),
    ] {
        let Some(url) = url else { continue };
        let mut config = backend_elasticsearch::ElasticsearchConfig::new(url);
        config.index_prefix = format!("grpc-conformance-{}-{name}", std::process::id());
        config.replicas = 0;
        backends.push((name, backend_elasticsearch::open(config).await?));
    }
    if let Some(url) = storage_conformance::environment::external_url(
        "CONFORMANCE_CASSANDRA_URL",
        "cassandra through the server",
        "export CONFORMANCE_CASSANDRA_URL=HOST:9042",
    ) {
        let mut config = backend_cassandra::CassandraConfig::new(
            backend_cassandra::CassandraConfig::DEFAULT_SERVER,
        );
        config.servers = url
            .trim_start_matches("cassandra://")
            .split(',')
            .map(str::to_owned)
            .collect();
        config.keyspace = format!("grpc_conformance_{}", std::process::id());
        config.bucket = std::time::Duration::from_secs(300);
        config.shards = 4;
        backends.push((
            backend_cassandra::NAME,
            backend_cassandra::open(config).await?,
        ));
    }
    let Some(url) =
        storage_conformance::environment::service_url("postgres", "postgres through the server")
    else {
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
