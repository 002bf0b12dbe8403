//! `storage-conformance`: certifies a running Jaeger remote-storage server with the Rust port of
//! Jaeger's storage integration suite. See the crate README.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use storage_conformance::{
    Capabilities, CrossApiTarget, Excused, FixtureSet, GrpcTarget, GrpcTargetConfig, Outcome,
    Progress, Report, SuiteOptions, SuiteRun, SuiteTarget, TlsSettings, V1GrpcTarget, V1Path,
    V1Writer, WaitPolicy, WireMode, run_suite, v1_suite_run,
};

/// Runs Jaeger's storage integration suite (ported to Rust) against a remote-storage server.
#[derive(Debug, Parser)]
#[command(name = "storage-conformance", version)]
struct Cli {
    /// gRPC endpoint of the reader API (host:port or URL).
    #[arg(
        long,
        env = "REMOTE_STORAGE_ENDPOINT",
        default_value = "localhost:17271"
    )]
    endpoint: String,

    /// gRPC endpoint serving OTLP Export; defaults to the reader endpoint.
    #[arg(long, env = "REMOTE_STORAGE_WRITER_ENDPOINT")]
    writer_endpoint: Option<String>,

    /// Full URL of the purger (POST, must answer 200 once all data is gone).
    #[arg(
        long = "purger-url",
        env = "PURGER_ENDPOINT",
        default_value = "http://localhost:9231/purge"
    )]
    purger_url: String,

    /// Use TLS for both gRPC connections.
    #[arg(long)]
    tls: bool,

    /// PEM CA certificate to trust (implies --tls); without it the web PKI roots are used.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// Server name to verify, when it differs from the endpoint's host (implies --tls).
    #[arg(long, value_name = "NAME")]
    tls_domain: Option<String>,

    /// Tenant sent with every call (multi-tenant servers).
    #[arg(long)]
    tenant: Option<String>,

    /// Metadata key carrying the tenant.
    #[arg(long, default_value = "x-tenant")]
    tenant_header: String,

    /// Also run with the fixtures of this directory (Jaeger's format: queries.json and
    /// traces/*.json), e.g. a checkout of Jaeger's internal/storage/integration/fixtures.
    #[arg(long, value_name = "DIR")]
    fixtures: Vec<PathBuf>,

    /// Do not run with this tool's own (embedded) fixtures.
    #[arg(long)]
    no_own_fixtures: bool,

    /// Which of Jaeger's suites to imitate (v2 API; with `--api v1` only the endpoints and
    /// options apply).
    #[arg(long, value_enum, default_value_t = Mode::Direct)]
    mode: Mode,

    /// Which storage API to certify: Jaeger v2's (`jaeger.storage.v2` + OTLP Export), Jaeger
    /// v1's (`jaeger.storage.v1`, as Jaeger v1 components call it), or one written through one
    /// API and read through the other.
    #[arg(long, value_enum, default_value_t = Api::V2)]
    api: Api,

    /// How `--api v1` writes: one span per message over `WriteSpanStream` (Jaeger's collector
    /// when the server declares streaming), or one `WriteSpan` call per span.
    #[arg(long, value_enum, default_value_t = V1WriterArg::Stream)]
    v1_writer: V1WriterArg,

    /// Skip tests whose name contains this text (repeatable), e.g. `Scope_Attributes`.
    #[arg(long, value_name = "PATTERN")]
    skip: Vec<String>,

    /// Run only tests whose name contains this text (repeatable; any may match).
    #[arg(long = "run", value_name = "PATTERN")]
    run_only: Vec<String>,

    /// The server needs a service name to search: FindTracesWithoutServiceName expects
    /// INVALID_ARGUMENT instead of results.
    #[arg(long)]
    search_requires_service_name: bool,

    /// Expect every structured filter refused with INVALID_ARGUMENT (FindTracesWithFilter and
    /// FindTracesFilterForm), whatever the server declares. Without it, the filter trials
    /// expect answers exactly when the server declares filter support in GetCapabilities.
    #[arg(long)]
    no_structured_filters: bool,

    /// GetOperations answers without span kinds: compare names only, and expect
    /// INVALID_ARGUMENT for a kind filter.
    #[arg(long)]
    get_operations_missing_span_kind: bool,

    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Polls of each wait before the final one.
    #[arg(long, default_value_t = WaitPolicy::EXTERNAL.iterations)]
    wait_iterations: u32,

    /// Pause between polls, e.g. `1s` or `200ms`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    wait_interval: Duration,

    /// Deadline of each gRPC and purger call.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    call_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Like Jaeger's direct grpc suite: typed tag values, one Export per trace on the reader
    /// endpoint unless a writer endpoint is given.
    Direct,
    /// Like Jaeger's e2e grpc suite: string tag values, 5-span Exports, capabilities required
    /// for searches without service name, FindTraceSummaries fallback.
    ViaJaeger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Api {
    /// `jaeger.storage.v2` reads, OTLP Export writes.
    V2,
    /// `jaeger.storage.v1`: SpanWriterPlugin / StreamingSpanWriterPlugin writes,
    /// SpanReaderPlugin and DependenciesReaderPlugin reads.
    V1,
    /// Writes through v1, reads through v2.
    V1WriteV2Read,
    /// Writes through v2 (OTLP Export), reads through v1.
    V2WriteV1Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum V1WriterArg {
    /// WriteSpanStream, one span per message.
    Stream,
    /// WriteSpan, one call per span.
    Unary,
}

impl Cli {
    fn target(&self) -> anyhow::Result<(Arc<dyn SuiteTarget>, Option<V1Path>)> {
        let config = self.target_config()?;
        let writer = match self.v1_writer {
            V1WriterArg::Stream => V1Writer::Stream,
            V1WriterArg::Unary => V1Writer::Unary,
        };
        let v2 = || -> anyhow::Result<Arc<dyn SuiteTarget>> {
            Ok(Arc::new(GrpcTarget::new(config.clone())?))
        };
        let v1 = || -> anyhow::Result<Arc<dyn SuiteTarget>> {
            Ok(Arc::new(V1GrpcTarget::new(&config, writer)?))
        };
        Ok(match self.api {
            Api::V2 => (v2()?, None),
            Api::V1 => (v1()?, Some(V1Path::WrittenThroughV1)),
            Api::V1WriteV2Read => (
                Arc::new(CrossApiTarget::new(v1()?, v2()?)),
                Some(V1Path::WrittenThroughV1),
            ),
            Api::V2WriteV1Read => (
                Arc::new(CrossApiTarget::new(v2()?, v1()?)),
                Some(V1Path::ReadThroughV1),
            ),
        })
    }

    fn target_config(&self) -> anyhow::Result<GrpcTargetConfig> {
        let tls = if self.tls || self.tls_ca.is_some() || self.tls_domain.is_some() {
            let ca_pem = match &self.tls_ca {
                Some(path) => Some(
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                ),
                None => None,
            };
            Some(TlsSettings {
                ca_pem,
                domain: self.tls_domain.clone(),
            })
        } else {
            None
        };
        let writer_endpoint = self
            .writer_endpoint
            .clone()
            .filter(|writer| !writer.is_empty() && *writer != self.endpoint);
        Ok(GrpcTargetConfig {
            endpoint: self.endpoint.clone(),
            writer_endpoint,
            purger_url: Some(self.purger_url.clone()),
            tls,
            tenant: self
                .tenant
                .clone()
                .map(|tenant| (self.tenant_header.clone(), tenant)),
            mode: match self.mode {
                Mode::Direct => WireMode::Direct,
                Mode::ViaJaeger => WireMode::ViaJaeger,
            },
            call_timeout: self.call_timeout,
        })
    }

    fn options(&self) -> SuiteOptions {
        let capabilities = Capabilities {
            without_service_name: !self.search_requires_service_name,
            structured_filters: !self.no_structured_filters,
            operation_span_kinds: !self.get_operations_missing_span_kind,
            ..Capabilities::FULL
        };
        SuiteOptions {
            capabilities,
            excused: Excused {
                skip: self.skip.clone(),
                explained: Vec::new(),
            },
            wait: WaitPolicy {
                iterations: self.wait_iterations,
                interval: self.wait_interval,
            },
            reference: None,
        }
    }

    fn fixture_sets(&self) -> anyhow::Result<Vec<(String, Arc<FixtureSet>)>> {
        let mut sets = Vec::new();
        if !self.no_own_fixtures {
            sets.push(("own".to_owned(), Arc::new(FixtureSet::own()?)));
        }
        for dir in &self.fixtures {
            let label = dir.file_name().map_or_else(
                || "fixtures".to_owned(),
                |name| name.to_string_lossy().into_owned(),
            );
            sets.push((label, Arc::new(FixtureSet::load_dir(dir)?)));
        }
        anyhow::ensure!(
            !sets.is_empty(),
            "no fixtures: drop --no-own-fixtures or add --fixtures DIR"
        );
        Ok(sets)
    }
}

fn print_progress(event: Progress<'_>) {
    match event {
        Progress::Started(name) => {
            print!("test {name} ... ");
            let _ = std::io::stdout().flush();
        }
        Progress::Finished(result) => {
            let millis = result.duration.as_millis();
            match &result.outcome {
                Outcome::Passed => println!("ok ({millis} ms)"),
                Outcome::Failed(_) => println!("FAILED ({millis} ms)"),
                Outcome::Skipped(reason) => println!("skipped ({reason})"),
            }
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let (target, v1_path) = cli.target()?;
    let mut options = cli.options();
    if !cli.no_structured_filters {
        // Filter trials follow what the server declares, as Jaeger's query service does.
        let probe = GrpcTarget::new(cli.target_config()?)?;
        let declared = probe.declares_structured_filters().await.with_context(|| {
            format!(
                "the server does not answer GetCapabilities at {}: is it running?",
                cli.endpoint
            )
        })?;
        options.capabilities.structured_filters = declared;
        println!(
            "storage-conformance: structured filters {} in GetCapabilities: the filter trials \
             expect {}",
            if declared { "declared" } else { "not declared" },
            if declared {
                "answers"
            } else {
                "INVALID_ARGUMENT refusals"
            }
        );
    }
    println!(
        "storage-conformance: {} — purger {}, waits up to {} × {:?}",
        target.describe(),
        cli.purger_url,
        options.wait.iterations,
        options.wait.interval
    );
    // Fail fast when nothing answers, instead of waiting out every test.
    target.get_services().await.with_context(|| {
        format!(
            "the server does not answer GetServices at {}: is it running?",
            cli.endpoint
        )
    })?;
    let select = |name: &str| {
        cli.run_only.is_empty() || cli.run_only.iter().any(|pattern| name.contains(pattern))
    };
    let mut report = Report::default();
    for (label, fixtures) in cli.fixture_sets()? {
        println!("storage-conformance: running with {}", fixtures.label());
        let run = match v1_path {
            None => SuiteRun {
                name: label,
                target: Arc::clone(&target),
                fixtures,
                options: options.clone(),
            },
            Some(path) => {
                v1_suite_run(label, Arc::clone(&target), &fixtures, options.clone(), path)?
            }
        };
        report.extend(run_suite(&run, &select, &mut print_progress).await);
    }
    Ok(report)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("storage-conformance: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(&cli)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("storage-conformance: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let failures: Vec<(&str, &str)> = report
        .results
        .iter()
        .filter_map(|result| match &result.outcome {
            Outcome::Failed(message) => Some((result.name.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        println!("\nfailures:");
        for (name, message) in &failures {
            println!("\n---- {name} ----\n{message}");
        }
        println!();
    }
    if let Some(path) = &cli.junit {
        let written = report.to_junit("storage-conformance").and_then(|xml| {
            std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
        });
        if let Err(error) = written {
            eprintln!("storage-conformance: {error:#}");
            println!("{}", report.summary_line());
            return ExitCode::FAILURE;
        }
    }
    println!("{}", report.summary_line());
    if report.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
