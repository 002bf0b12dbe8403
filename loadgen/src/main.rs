//! `loadgen`: OTLP/gRPC load generator and query benchmark. See `loadgen --help`.

mod cli;
mod codec;
mod conn;
#[cfg(test)]
mod e2e_tests;
mod large_trace;
mod proc_cpu;
mod queries;
mod report;
mod run;
mod verify;

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use clap::Parser as _;
use loadgen::workload;

use crate::cli::Args;
use crate::codec::ExportClient;
use crate::conn::Tenant;
use crate::report::{LoadReport, Report, WorkloadReport};
use crate::workload::{Workload, WorkloadConfig};

fn main() -> ExitCode {
    let args = Args::parse();
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
        let built = Instant::now();
        let workload = Workload::build(&WorkloadConfig {
            seed: args.seed,
            batch_size: args.batch_size,
            ring: args.ring,
            total_spans: args.spans,
            time_spread: args.time_spread,
            now_unix_nanos: unix_nanos(SystemTime::now()),
        })?;
        #[allow(clippy::cast_precision_loss)]
        let wl = WorkloadReport {
            seed: args.seed,
            run_id,
            batch_size: args.batch_size,
            distinct_requests: workload.distinct_requests(),
            bytes_per_span: workload.bytes_per_span(),
            encoded_mb: workload.encoded_bytes() as f64 / 1e6,
            build_seconds: built.elapsed().as_secs_f64(),
        };
        println!(
            "loadgen: {} to {} (batch {}, concurrency {}, {} connection(s){}{})",
            match (args.spans, duration) {
                (Some(n), _) => format!("{n} spans"),
                (None, Some(d)) => format!("for {}", humantime::format_duration(d)),
                (None, None) => "until done".to_string(),
            },
            args.endpoint,
            args.batch_size,
            args.concurrency,
            args.connections,
            args.rate
                .map(|r| format!(", fixed rate {r} spans/s"))
                .unwrap_or_default(),
            if args.gzip { ", gzip" } else { "" },
        );
        println!("{}", report::workload_text(&wl));
        report.workload = Some(wl);

        let mut clients = Vec::with_capacity(args.connections.max(1));
        for _ in 0..args.connections.max(1) {
            let channel = conn::connect(&args.endpoint).await?;
            clients.push(ExportClient::new(channel, args.gzip, tenant.clone()));
        }
        let prefix = workload::run_prefix(run_id);
        let traces_per_request = workload.traces_per_request();
        let cpu_before = args.server_pid.map(proc_cpu::cpu_seconds).transpose()?;
        let result = run::run(
            workload,
            clients,
            run::LoadConfig {
                concurrency: args.concurrency,
                duration,
                rate: args.rate,
                prefix,
                progress: (args.progress > 0).then(|| Duration::from_secs(args.progress)),
            },
        )
        .await?;
        let server_cpu = match (args.server_pid, cpu_before) {
            (Some(pid), Some(before)) => Some(proc_cpu::cpu_seconds(pid)? - before),
            _ => None,
        };
        let load = LoadReport::new(&result, server_cpu);
        print!("{}", report::load_text(&load));
        if load.spans_accepted == 0 {
            code = ExitCode::from(4);
        }
        report.load = Some(load);

        if args.verify {
            let ids = sent_trace_ids(&args, prefix, result.requests_claimed, traces_per_request)?;
            let channel = conn::connect(query_endpoint).await?;
            let v = verify::verify(
                &channel,
                &tenant,
                &ids,
                result.spans_accepted,
                args.concurrency,
                args.verify_timeout,
            )
            .await
            .context("verification failed to run")?;
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
                lookback: args
                    .query_lookback
                    .unwrap_or(args.time_spread + Duration::from_secs(3600)),
            },
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
