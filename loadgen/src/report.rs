//! The report: human-readable on stdout, machine-readable with `--json FILE`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::cli::Api;
use crate::queries::{QueryResult, Target};
use crate::run::{LoadResult, Sender};
use crate::verify::VerifyResult;

/// Request latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
}

/// The load phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadReport {
    /// The RPC that carried the spans.
    pub(crate) sender: Sender,
    /// Export requests, WriteSpan calls or WriteSpanStream streams.
    pub(crate) requests_sent: u64,
    pub(crate) requests_ok: u64,
    pub(crate) spans_sent: u64,
    pub(crate) spans_accepted: u64,
    pub(crate) spans_rejected: u64,
    pub(crate) wall_seconds: f64,
    pub(crate) spans_per_second: f64,
    /// Latency of successful requests (from the intended send time with --rate); `None` for
    /// streams, which answer once, when closed.
    pub(crate) latency: Option<Latency>,
    pub(crate) server_cpu_seconds: Option<f64>,
    pub(crate) spans_per_server_cpu_second: Option<u64>,
    /// CPU of `--database-pid` and its children during the load, apart from the server's.
    pub(crate) database_cpu_seconds: Option<f64>,
    pub(crate) spans_per_database_cpu_second: Option<u64>,
    /// Failed requests by gRPC code.
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) error_examples: BTreeMap<String, String>,
}

impl LoadReport {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub(crate) fn new(
        r: &LoadResult,
        server_cpu_seconds: Option<f64>,
        database_cpu_seconds: Option<f64>,
    ) -> Self {
        let wall = r.wall.as_secs_f64();
        let h = &r.latency_us;
        let q = |x: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(x) as f64 / 1e3
            }
        };
        Self {
            sender: r.sender,
            requests_sent: r.requests_sent,
            requests_ok: r.requests_ok,
            spans_sent: r.spans_sent,
            spans_accepted: r.spans_accepted,
            spans_rejected: r.spans_rejected,
            wall_seconds: wall,
            spans_per_second: if wall > 0.0 {
                r.spans_accepted as f64 / wall
            } else {
                0.0
            },
            latency: r.sender.has_latency().then(|| Latency {
                p50_ms: q(0.5),
                p99_ms: q(0.99),
                p999_ms: q(0.999),
                max_ms: if h.is_empty() {
                    0.0
                } else {
                    h.max() as f64 / 1e3
                },
                mean_ms: h.mean() / 1e3,
            }),
            server_cpu_seconds,
            // Rounded to an integer; the value is far below u64::MAX and never negative.
            spans_per_server_cpu_second: server_cpu_seconds
                .filter(|s| *s > 0.0)
                .map(|s| (r.spans_accepted as f64 / s).round() as u64),
            database_cpu_seconds,
            spans_per_database_cpu_second: database_cpu_seconds
                .filter(|s| *s > 0.0)
                .map(|s| (r.spans_accepted as f64 / s).round() as u64),
            errors: r.errors.clone(),
            error_examples: r.error_examples.clone(),
        }
    }
}

/// The workload that was sent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkloadReport {
    pub(crate) seed: u64,
    pub(crate) run_id: u64,
    pub(crate) batch_size: usize,
    /// What the spans were pre-encoded as.
    pub(crate) encoding: &'static str,
    pub(crate) distinct_requests: usize,
    pub(crate) bytes_per_span: f64,
    pub(crate) encoded_mb: f64,
    pub(crate) build_seconds: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) endpoint: String,
    pub(crate) api: Api,
    pub(crate) concurrency: usize,
    pub(crate) connections: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) gzip: bool,
    pub(crate) workload: Option<WorkloadReport>,
    pub(crate) load: Option<LoadReport>,
    pub(crate) verify: Option<VerifyResult>,
    pub(crate) query_target: Option<Target>,
    pub(crate) queries: Vec<QueryResult>,
}

pub(crate) fn workload_text(w: &WorkloadReport) -> String {
    format!(
        "workload: seed {} run-id {}, {} distinct pre-encoded {} of up to {} spans, \
         {:.1} bytes/span encoded, {:.1} MB in memory, built in {:.2} s",
        w.seed,
        w.run_id,
        w.distinct_requests,
        w.encoding,
        w.batch_size,
        w.bytes_per_span,
        w.encoded_mb,
        w.build_seconds
    )
}

pub(crate) fn load_text(l: &LoadReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "spans sent:        {}", l.spans_sent);
    let _ = writeln!(
        s,
        "spans accepted:    {} (rejected by server: {})",
        l.spans_accepted, l.spans_rejected
    );
    let _ = writeln!(
        s,
        "requests:          {} {} sent, {} ok",
        l.requests_sent,
        l.sender.request_name(),
        l.requests_ok
    );
    let _ = writeln!(s, "wall seconds:      {:.3}", l.wall_seconds);
    let _ = writeln!(s, "spans/s:           {:.0}", l.spans_per_second);
    match &l.latency {
        Some(latency) => {
            let _ = writeln!(
                s,
                "{:<19}p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  max {:.2} ms  mean {:.2} ms",
                match l.sender {
                    Sender::V1WriteSpan => "WriteSpan latency:",
                    _ => "export latency:",
                },
                latency.p50_ms,
                latency.p99_ms,
                latency.p999_ms,
                latency.max_ms,
                latency.mean_ms
            );
        }
        None => {
            let _ = writeln!(
                s,
                "latency:           none (a stream answers once, when closed; spans count as \
                 accepted when their stream's answer is OK)"
            );
        }
    }
    if let Some(cpu) = l.server_cpu_seconds {
        let _ = writeln!(s, "server CPU:        {cpu:.2} s");
    }
    if let Some(n) = l.spans_per_server_cpu_second {
        let _ = writeln!(s, "{n} spans per server CPU-second");
    }
    if let Some(cpu) = l.database_cpu_seconds {
        let _ = writeln!(s, "database CPU:      {cpu:.2} s");
    }
    if let Some(n) = l.spans_per_database_cpu_second {
        let _ = writeln!(s, "{n} spans per database CPU-second");
    }
    if l.errors.is_empty() {
        let _ = writeln!(s, "errors:            none");
    } else {
        for (code, n) in &l.errors {
            let example = l.error_examples.get(code).map_or("", String::as_str);
            let _ = writeln!(s, "errors:            {code} x{n} (e.g. {example:?})");
        }
    }
    s
}

pub(crate) fn verify_text(v: &VerifyResult) -> String {
    let mut s = format!(
        "verify: {}: {} spans in {} of {} traces stored, {} expected (accepted){}, {} read-back(s)",
        if v.ok { "OK" } else { "MISMATCH" },
        v.stored_spans,
        v.stored_traces,
        v.queried_traces,
        v.expected_spans,
        if v.foreign_spans > 0 {
            format!(", {} spans of unrequested traces", v.foreign_spans)
        } else {
            String::new()
        },
        v.attempts
    );
    if let Some(check) = &v.v1_get_trace {
        let _ = write!(
            s,
            "\nverify: v1 GetTrace of trace {}: {} spans read, {} sent: {}",
            check.trace_id,
            check.read_spans,
            check.sent_spans,
            check.difference.as_deref().unwrap_or("identical")
        );
    }
    s
}

pub(crate) fn queries_text(target: &Target, results: &[QueryResult], depth: i32) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "queries (search_depth {depth}): service {:?}, operation {:?}, tag {}={:?}, \
         duration {:.2}..{:.2} ms, trace {}",
        target.service,
        target.operation,
        target.tag_key,
        target.tag_value,
        target.duration_min_ms,
        target.duration_max_ms,
        target.trace_id
    );
    let _ = writeln!(
        s,
        "{:<32} {:>5} {:>9} {:>9} {:>9} {:>7} {:>7} {:>6}  errors",
        "query", "ok", "p50 ms", "p99 ms", "max ms", "traces", "spans", "items"
    );
    for r in results {
        let errors = if r.errors.is_empty() {
            String::new()
        } else {
            format!(
                "{:?} {}",
                r.errors,
                r.first_error.as_deref().unwrap_or_default()
            )
        };
        let _ = writeln!(
            s,
            "{:<32} {:>2}/{:<2} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7} {:>6}  {errors}",
            r.name, r.ok, r.reps, r.p50_ms, r.p99_ms, r.max_ms, r.traces, r.spans, r.items
        );
    }
    s
}

pub(crate) fn write_json(path: &Path, report: &Report) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}
