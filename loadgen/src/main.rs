//! `loadgen`: OTLP/gRPC (and Jaeger v1 gRPC) load generator and query benchmark. See
//! `loadgen --help`.

mod cli;
mod codec;
mod conn;
#[cfg(test)]
mod e2e_tests;
#[cfg(test)]
mod filter_e2e_tests;
mod filter_queries;
mod large_trace;
mod proc_cpu;
mod queries;
mod report;
mod run;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod v1_e2e_tests;
mod v1_queries;
mod v1_workload;
mod v1_writer;
mod verify;

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, Parser as _};
use loadgen::workload;
use tonic::transport::Channel;

use crate::cli::{Api, Args, V1Writer};
use crate::codec::RawClient;
use crate::conn::Tenant;
use crate::report::{LoadReport, Report, WorkloadReport};
use crate::run::{LoadConfig, LoadResult};
use crate::workload::{RequestTemplate, Workload, WorkloadConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.api == Api::V1 && args.rate.is_some() {
        Args::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--rate is not available with --api v1",
            )
            .exit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

async fn run(args: Args) -> Result<ExitCode> {
    let tenant = Tenant::new(&args.tenant_header, args.tenant.as_deref())?;
    let run_id = args.run_id.unwrap_or_else(|| unix_nanos(SystemTime::now()));
    let mut report = Report {
        endpoint: args.endpoint.clone(),
        api: args.api,
        concurrency: args.concurrency,
        connections: args.connections,
        rate: args.rate,
        gzip: args.gzip,
        workload: None,
        load: None,
        verify: None,
        query_target: None,
        queries: Vec::new(),
    };
    let mut code = ExitCode::SUCCESS;
    let query_endpoint = args.query_endpoint.as_deref().unwrap_or(&args.endpoint);

    if !args.no_load {
        let duration = match (args.spans, args.duration) {
            (None, None) => Some(Duration::from_secs(30)),
            (_, d) => d,
        };
        let workload_config = WorkloadConfig {
            seed: args.seed,
            batch_size: args.batch_size,
            ring: args.ring,
            total_spans: args.spans,
            time_spread: args.time_spread,
            now_unix_nanos: unix_nanos(SystemTime::now()),
        };
        let load_config = LoadConfig {
            concurrency: args.concurrency,
            duration,
            rate: args.rate,
            prefix: workload::run_prefix(run_id),
            progress: (args.progress > 0).then(|| Duration::from_secs(args.progress)),
        };
        let built = Instant::now();
        // The v1 spans of the run's first trace as sent, for the v1 GetTrace check.
        let mut v1_sent_trace = None;
        let (result, server_cpu, traces_per_request) = match args.api {
            Api::V2 => {
                let workload = Workload::build(&workload_config)?;
                let traces_per_request = workload.traces_per_request();
                report.workload = Some(announce(&args, &workload, built, run_id, duration));
                let (_, clients) = connect_all(&args, &tenant).await?;
                let (result, cpu) =
                    with_server_cpu(&args, run::run(workload, clients, load_config.clone()))
                        .await?;
                (result, cpu, traces_per_request)
            }
            Api::V1 => {
                let workload = v1_workload::build(&workload_config)?;
                let traces_per_request = workload.traces_per_request();
                if args.verify {
                    v1_sent_trace =
                        Some(v1_workload::sent_trace(&workload, load_config.prefix, 0)?);
                }
                report.workload = Some(announce(&args, &workload, built, run_id, duration));
                let (channels, clients) = connect_all(&args, &tenant).await?;
                if args.v1_writer == V1Writer::Stream
                    && let Some(channel) = channels.first()
                {
                    v1_writer::check_streaming(channel.clone(), &tenant).await?;
                }
                let (result, cpu) = with_server_cpu(
                    &args,
                    v1_writer::run(workload, clients, load_config.clone(), args.v1_writer),
                )
                .await?;
                (result, cpu, traces_per_request)
            }
        };
        let load = LoadReport::new(&result, server_cpu.server, server_cpu.database);
        print!("{}", report::load_text(&load));
        if load.spans_accepted == 0 {
            code = ExitCode::from(4);
        }
        report.load = Some(load);

        if args.verify {
            let ids = sent_trace_ids(
                &args,
                load_config.prefix,
                result.requests_claimed,
                traces_per_request,
            )?;
            let channel = conn::connect(query_endpoint).await?;
            let mut v = verify::verify(
                &channel,
                &tenant,
                &ids,
                result.spans_accepted,
                args.concurrency,
                args.verify_timeout,
            )
            .await
            .context("verification failed to run")?;
            if let Some(sent) = v1_sent_trace {
                let check = verify::check_v1_trace(&channel, &tenant, sent).await;
                v.ok &= check.difference.is_none();
                v.v1_get_trace = Some(check);
            }
            println!("{}", report::verify_text(&v));
            if !v.ok {
                code = ExitCode::from(1);
            }
            report.verify = Some(v);
        }
    }

    if let Some(reps) = args.queries {
        let channel = conn::connect(query_endpoint).await?;
        let large_trace = if args.large_trace_spans > 0 {
            let writer = conn::connect(&args.endpoint).await?;
            Some(large_trace::write(writer, &tenant, args.large_trace_spans, run_id).await?)
        } else {
            None
        };
        let (target, results) = queries::run(
            channel,
            tenant.clone(),
            queries::QueryConfig {
                reps,
                budget: args.query_budget,
                search_depth: args.search_depth,
                large_trace,
                skip: args.skip_query.clone(),
                lookback: args
                    .query_lookback
                    .unwrap_or(args.time_spread + Duration::from_secs(3600)),
            },
            args.api,
        )
        .await?;
        print!(
            "{}",
            report::queries_text(&target, &results, args.search_depth)
        );
        report.query_target = Some(target);
        report.queries = results;
    }

    if let Some(path) = &args.json {
        report::write_json(path, &report)?;
    }
    Ok(code)
}

/// Prints what is about to be sent and returns the workload's part of the report.
fn announce<T: RequestTemplate>(
    args: &Args,
    workload: &Workload<T>,
    built: Instant,
    run_id: u64,
    duration: Option<Duration>,
) -> WorkloadReport {
    #[allow(clippy::cast_precision_loss)]
    let wl = WorkloadReport {
        seed: args.seed,
        run_id,
        batch_size: args.batch_size,
        encoding: match args.api {
            Api::V2 => "OTLP Export requests",
            Api::V1 => "batches of WriteSpanRequest messages (one span each)",
        },
        distinct_requests: workload.distinct_requests(),
        bytes_per_span: workload.bytes_per_span(),
        encoded_mb: workload.encoded_bytes() as f64 / 1e6,
        build_seconds: built.elapsed().as_secs_f64(),
    };
    let sender = match (args.api, args.v1_writer) {
        (Api::V2, _) => format!(
            "OTLP Export, batch {}, concurrency {}",
            args.batch_size, args.concurrency
        ),
        (Api::V1, V1Writer::Stream) => format!(
            "v1 WriteSpanStream, {} streams, one span per message",
            args.concurrency
        ),
        (Api::V1, V1Writer::Unary) => format!(
            "v1 WriteSpan, one span per call, concurrency {}",
            args.concurrency
        ),
    };
    println!(
        "loadgen: {} to {} ({sender}, {} connection(s){}{})",
        match (args.spans, duration) {
            (Some(n), _) => format!("{n} spans"),
            (None, Some(d)) => format!("for {}", humantime::format_duration(d)),
            (None, None) => "until done".to_string(),
        },
        args.endpoint,
        args.connections,
        args.rate
            .map(|r| format!(", fixed rate {r} spans/s"))
            .unwrap_or_default(),
        if args.gzip { ", gzip" } else { "" },
    );
    println!("{}", report::workload_text(&wl));
    wl
}

/// Opens `--connections` connections to the write endpoint, and a client over each.
async fn connect_all(args: &Args, tenant: &Tenant) -> Result<(Vec<Channel>, Vec<RawClient>)> {
    let mut channels = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        channels.push(conn::connect(&args.endpoint).await?);
    }
    let clients = channels
        .iter()
        .map(|channel| RawClient::new(channel.clone(), args.gzip, tenant.clone()))
        .collect();
    Ok((channels, clients))
}

/// CPU seconds used during the load, when measured.
#[derive(Debug, Clone, Copy, Default)]
struct LoadCpu {
    /// `--server-pid`'s.
    server: Option<f64>,
    /// `--database-pid`'s, with its children.
    database: Option<f64>,
}

/// Runs the load, measuring the server's CPU time around it when `--server-pid` is given, and
/// the database's when `--database-pid` is.
async fn with_server_cpu(
    args: &Args,
    load: impl Future<Output = Result<LoadResult>>,
) -> Result<(LoadResult, LoadCpu)> {
    let server_before = args.server_pid.map(proc_cpu::cpu_seconds).transpose()?;
    let database_before = args
        .database_pid
        .map(proc_cpu::tree_cpu_seconds)
        .transpose()?;
    let result = load.await?;
    let mut cpu = LoadCpu::default();
    if let (Some(pid), Some(before)) = (args.server_pid, server_before) {
        cpu.server = Some(proc_cpu::cpu_seconds(pid)? - before);
    }
    if let (Some(pid), Some(before)) = (args.database_pid, database_before) {
        cpu.database = Some(proc_cpu::tree_cpu_seconds(pid)? - before);
    }
    Ok((result, cpu))
}

/// Trace IDs of every request number that may have been sent (`0..claimed`); the traces of a
/// shorter last request are covered too, since IDs that were never sent are simply not found.
fn sent_trace_ids(
    args: &Args,
    prefix: [u8; 8],
    claimed: u64,
    traces_per_request: u64,
) -> Result<Vec<[u8; 16]>> {
    let mut max_traces = claimed * traces_per_request;
    if let Some(n) = args.spans {
        max_traces = max_traces.min(n / workload::SPANS_PER_TRACE as u64);
    }
    let cap = usize::try_from(max_traces).context("too many traces to verify")?;
    let mut ids = Vec::with_capacity(cap);
    ids.extend((0..max_traces).map(|t| workload::trace_id(prefix, t)));
    Ok(ids)
}
