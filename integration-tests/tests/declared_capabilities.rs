//! A backend is tested for what it declares and for refusing what it does not. The memory
//! store declared narrowly (no search without a service name, no structured filters, no span
//! kinds for operations, links from a named source, a refresh bound instead of read-on-return) must pass the whole
//! suite in process, through the server over v2 (direct and via Jaeger) and over v1, and its
//! backend checks: undeclared shapes answered `INVALID_ARGUMENT`, never empty. And a backend
//! that declares the narrow set but answers service-less searches anyway must FAIL.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use backend_memory::{MemoryConfig, MemoryStore};
use libtest_mimic::{Arguments, Failed, Trial};
use remote_storage::{RunningServer, ServerConfig};
use remote_storage_core::{Backend, Capabilities, Visibility};
use storage_conformance::{
    FixtureSet, GrpcTarget, GrpcTargetConfig, InProcessTarget, Outcome, SuiteOptions, SuiteRun,
    SuiteTarget, V1GrpcTarget, V1Path, V1Writer, WireMode, backend_trials, libtest_trials,
    new_runtime, run_suite, v1_suite_run,
};

/// Everything the memory store can do, but declared without the optional query shapes.
const NARROW: Capabilities = Capabilities {
    without_service_name: false,
    structured_filters: false,
    operation_span_kinds: false,
    dependency_source: "jaeger",
    visibility: Visibility::WithinRefresh(Duration::from_millis(100)),
    ..backend_memory::CAPABILITIES
};

fn narrow_memory() -> Backend {
    let store = Arc::new(MemoryStore::new(MemoryConfig::default()));
    Backend::from_store("memory-narrow", NARROW, store)
}

fn server_target(server: &RunningServer, mode: WireMode) -> anyhow::Result<GrpcTargetConfig> {
    let purger = server
        .purger_addr
        .context("the test server has no purger")?;
    let mut config = GrpcTargetConfig::new(server.grpc_addr.to_string());
    config.mode = mode;
    config.purger_url = Some(format!("http://{purger}/purge"));
    Ok(config)
}

/// The runs: in process, and through a server over v2 (both modes) and v1.
async fn runs(
    fixtures: &Arc<FixtureSet>,
    options: &SuiteOptions,
) -> anyhow::Result<(RunningServer, Vec<SuiteRun>)> {
    let mut runs = vec![SuiteRun {
        name: "memory-narrow/in-process".to_owned(),
        target: Arc::new(InProcessTarget::new(narrow_memory())),
        fixtures: Arc::clone(fixtures),
        options: options.clone(),
    }];
    let server = RunningServer::start(ServerConfig::for_tests(), narrow_memory()).await?;
    for mode in [WireMode::Direct, WireMode::ViaJaeger] {
        let target: Arc<dyn SuiteTarget> =
            Arc::new(GrpcTarget::new(server_target(&server, mode)?)?);
        runs.push(SuiteRun {
            name: format!("memory-narrow/{}", mode.name()),
            target,
            fixtures: Arc::clone(fixtures),
            options: options.clone(),
        });
    }
    let v1: Arc<dyn SuiteTarget> = Arc::new(V1GrpcTarget::new(
        &server_target(&server, WireMode::Direct)?,
        V1Writer::Stream,
    )?);
    runs.push(v1_suite_run(
        "memory-narrow/v1".to_owned(),
        v1,
        fixtures,
        options.clone(),
        V1Path::WrittenThroughV1,
    )?);
    Ok((server, runs))
}

/// A backend declaring no service-less search (nor filters) that answers one anyway fails the
/// suite's `FindTracesWithoutServiceName` (and `FindTracesWithFilter`), naming the refusal it
/// expected.
async fn overclaiming_backend_fails(fixtures: Arc<FixtureSet>) -> anyhow::Result<()> {
    for case in [
        "FindTracesWithoutServiceName",
        "FindTracesWithFilter/Typed_constants_are_authoritative",
    ] {
        // The store behind it admits every shape: only the declaration is narrow. The filter
        // case needs service-less searches admitted too, so only the filters are undeclared.
        let declared = if case == "FindTracesWithoutServiceName" {
            NARROW
        } else {
            Capabilities {
                without_service_name: true,
                ..NARROW
            }
        };
        let answers_anyway = Backend {
            capabilities: declared,
            ..backend_memory::open(MemoryConfig::default())
        };
        let run = SuiteRun {
            name: String::new(),
            target: Arc::new(InProcessTarget::new(answers_anyway)),
            fixtures: Arc::clone(&fixtures),
            options: SuiteOptions::declared(declared),
        };
        let report = run_suite(&run, &|name| name == case, &mut |_| {}).await;
        let [result] = report.results.as_slice() else {
            anyhow::bail!("{case}: expected one case, ran {}", report.results.len());
        };
        match &result.outcome {
            Outcome::Failed(message) if message.contains("expected INVALID_ARGUMENT") => {}
            other => anyhow::bail!("{case}: the over-claiming backend was not caught: {other:?}"),
        }
    }
    Ok(())
}

/// The runner reads the filter declaration from GetCapabilities: not declared by the narrow
/// server, declared by one serving the full memory backend.
async fn runner_reads_the_filter_declaration(narrow: GrpcTargetConfig) -> anyhow::Result<()> {
    let declared = GrpcTarget::new(narrow)?
        .declares_structured_filters()
        .await?;
    anyhow::ensure!(!declared, "the narrow server was read as declaring filters");
    let full = RunningServer::start(
        ServerConfig::for_tests(),
        backend_memory::open(MemoryConfig::default()),
    )
    .await?;
    let declared = GrpcTarget::new(server_target(&full, WireMode::Direct)?)?
        .declares_structured_filters()
        .await;
    full.stop().await?;
    anyhow::ensure!(
        declared?,
        "the full memory server was read as declaring no filters"
    );
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match new_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot build a runtime: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let options = SuiteOptions::declared(NARROW);
    let prepared = runtime.block_on(async {
        let fixtures = Arc::new(FixtureSet::own()?);
        let (server, runs) = runs(&fixtures, &options).await?;
        anyhow::Ok((fixtures, server, runs))
    });
    let (fixtures, server, runs) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("cannot start the narrow runs: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let mut trials = libtest_trials(&runtime, &runs, &args);
    trials.extend(backend_trials(
        &runtime,
        "memory-narrow",
        Arc::new(|| async { Ok(narrow_memory()) }),
        &options,
    ));
    let narrow_target = match server_target(&server, WireMode::Direct) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("{error:#}");
            return ExitCode::FAILURE;
        }
    };
    let for_trial = Arc::clone(&runtime);
    trials.push(Trial::test(
        "memory-narrow/Runner_reads_the_filter_declaration",
        move || {
            for_trial
                .block_on(runner_reads_the_filter_declaration(narrow_target))
                .map_err(|error| Failed::from(format!("{error:#}")))
        },
    ));
    let for_trial = Arc::clone(&runtime);
    trials.push(Trial::test(
        "memory-narrow/Overclaiming_backend_fails",
        move || {
            for_trial
                .block_on(overclaiming_backend_fails(fixtures))
                .map_err(|error| Failed::from(format!("{error:#}")))
        },
    ));
    let code = libtest_mimic::run(&args, trials).exit_code();
    drop(runs);
    if let Err(error) = runtime.block_on(server.stop()) {
        eprintln!("stopping the test server failed: {error:#}");
        return ExitCode::FAILURE;
    }
    code
}
