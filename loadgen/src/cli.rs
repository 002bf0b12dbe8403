//! Command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// OTLP/gRPC load generator and query benchmark for jaeger-remote-storage (or any OTLP
/// `TraceService` + `jaeger.storage.v2.TraceReader` server), with a Jaeger v1 mode.
///
/// Load: builds a deterministic tracegen-like workload (traces of 1 SERVER root + 9 CLIENT
/// children, 11 string attributes per span from 97 keys x 1000 values, 10 services), encodes a
/// ring of distinct Export requests BEFORE the clock starts, then sends them with fresh trace IDs
/// patched in (no protobuf encoding in the timed loop). Every trace of a run has its own ID:
/// 8 bytes derived from --run-id, then the trace's sequence number.
///
/// v1 mode (--api v1): the same workload sent the way a Jaeger v1 collector writes to a grpc
/// storage (jaeger.storage.v1): every span translated to a v1 span with its process (by the
/// server's own OTLP -> v1 translation) and encoded as one WriteSpanRequest BEFORE the clock
/// starts, then written over --concurrency long-lived StreamingSpanWriterPlugin.WriteSpanStream
/// streams, one span per message, each stream closed at the end and its answer checked
/// (--v1-writer stream, after one Capabilities call), or one SpanWriterPlugin.WriteSpan call per
/// span with --concurrency calls in flight (--v1-writer unary). A stream answers once, when it
/// is closed, so stream runs report spans/s and spans per server CPU-second but no latency; a
/// stream's spans count as accepted only when its final answer is OK. Unary runs report the
/// WriteSpan latency. --verify then reads every trace back through the v2 reader and one trace
/// through v1 GetTrace, which must equal the spans sent; --queries times the v1 reads (see
/// below). --rate is not available in v1 mode.
///
/// Query mode (--queries [K]): after the load (or instead of it, with --no-load) discovers a
/// service, operation, tag, duration and trace ID from the stored data and times K repetitions
/// each of FindTraces by service, service+operation, service+tag, service+duration range and tag
/// without service, FindTraceSummaries, GetServices, GetOperations, GetDependencies over the
/// query window and GetTraces of one trace and of a large trace (--large-trace-spans),
/// printing p50/p99/max in ms and how many traces/spans each returned. With --api v1 it times
/// Jaeger v1's reads instead, with the same discovered parameters: v1 FindTraces by service and
/// by service+tag, GetServices, GetOperations, GetTrace of one trace and of the large trace,
/// and, for comparison, v2 GetTraces of the large trace (the large trace is written through
/// OTLP Export in both modes).
///
/// Exit status: 0 on success, 1 when --verify finds a mismatch, 2 on bad flags, 3 on other
/// errors (cannot connect, discovery failed, ...), 4 when a load accepted no span at all.
///
/// Examples:
///   loadgen --duration 30s --concurrency 8 --server-pid $(pidof jaeger-remote-storage)
///   loadgen --spans 200000 --verify --json out.json
///   loadgen --rate 50000 --duration 60s --batch-size 500
///   loadgen --no-load --queries 50
///   loadgen --api v1 --spans 1000000 --verify --server-pid $(pidof jaeger-remote-storage)
///   loadgen --api v1 --v1-writer unary --spans 100000 --concurrency 16
///   loadgen --api v1 --no-load --queries 50
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, verbatim_doc_comment)]
pub(crate) struct Args {
    /// gRPC endpoint the spans are written to (HOST:PORT or http://HOST:PORT): OTLP Export,
    /// or the jaeger.storage.v1 writers with --api v1.
    #[arg(long, default_value = "127.0.0.1:17271")]
    pub(crate) endpoint: String,

    /// The API to write (and, with --queries, read) through: v2 = OTLP Export and
    /// jaeger.storage.v2 reads; v1 = Jaeger v1's jaeger.storage.v1 writers and reader.
    #[arg(long, value_enum, default_value_t = Api::V2)]
    pub(crate) api: Api,

    /// With --api v1: how spans are written, as Jaeger v1 does when the server offers streaming
    /// (stream: --concurrency WriteSpanStream streams) or not (unary: one WriteSpan per span).
    #[arg(long, value_enum, default_value_t = V1Writer::Stream)]
    pub(crate) v1_writer: V1Writer,

    /// TraceReader endpoint for --verify and --queries (default: --endpoint).
    #[arg(long)]
    pub(crate) query_endpoint: Option<String>,

    /// Send for this long (e.g. 30s, 2m). The default when --spans is not given is 30s.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "spans")]
    pub(crate) duration: Option<Duration>,

    /// Stop after exactly N spans (a multiple of 10).
    #[arg(long)]
    pub(crate) spans: Option<u64>,

    /// Export requests in flight at once (closed loop), or at most in flight (with --rate).
    /// With --api v1: open WriteSpanStream streams, or WriteSpan calls in flight.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,

    /// HTTP/2 connections; requests (v1: streams, calls) are spread over them round-robin.
    #[arg(long, default_value_t = 1)]
    pub(crate) connections: usize,

    /// Spans per Export request (a multiple of 10). With --api v1, the spans a stream or
    /// worker takes from the workload at a time; each span is still its own message.
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch_size: usize,

    /// Fixed-rate mode: send this many spans per second on a timer; latency is measured from
    /// each request's intended send time (no coordinated omission).
    #[arg(long)]
    pub(crate) rate: Option<f64>,

    /// Distinct pre-encoded requests, reused in turn with fresh trace IDs.
    #[arg(long, default_value_t = 100)]
    pub(crate) ring: usize,

    /// Seed of the workload content (services, names, attributes, times).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,

    /// Seed of this run's trace IDs (default: from the clock, so reruns never collide).
    #[arg(long)]
    pub(crate) run_id: Option<u64>,

    /// Span start times are spread over this range ending now.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub(crate) time_spread: Duration,

    /// Server process to measure: utime+stime from /proc/PID/stat before and after the load.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,

    /// A database's main process (PostgreSQL's postmaster) to measure apart from the server:
    /// its CPU and that of its child processes, those still running and those it has reaped,
    /// before and after the load.
    #[arg(long)]
    pub(crate) database_pid: Option<u32>,

    /// Gzip-compress Export requests (v1: every message).
    #[arg(long)]
    pub(crate) gzip: bool,

    /// Tenant sent in --tenant-header on every call.
    #[arg(long)]
    pub(crate) tenant: Option<String>,

    /// Metadata key carrying --tenant.
    #[arg(long, default_value = "x-tenant")]
    pub(crate) tenant_header: String,

    /// After the load, read every sent trace back with GetTraces and compare the exact span
    /// count with the spans accepted; with --api v1 also read the run's first trace with v1
    /// GetTrace and compare it with the spans sent. Exit 1 on mismatch.
    #[arg(long)]
    pub(crate) verify: bool,

    /// Keep re-reading for up to this long while the count does not match yet.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub(crate) verify_timeout: Duration,

    /// Run the query benchmark with K repetitions per query (K defaults to 20).
    #[arg(long, value_name = "K", num_args = 0..=1, default_missing_value = "20")]
    pub(crate) queries: Option<u32>,

    /// With --queries: stop repeating a query once its repetitions took this long in total
    /// (after at least 5), e.g. 20s; the report gives the repetitions done. Default: no limit.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) query_budget: Option<Duration>,

    /// With --queries: do not run the query of this name (as printed, e.g. "GetDependencies");
    /// repeatable.
    #[arg(long, value_name = "NAME")]
    pub(crate) skip_query: Vec<String>,

    /// search_depth of the Find* queries.
    #[arg(long, default_value_t = 20)]
    pub(crate) search_depth: i32,

    /// Find* queries cover [now - LOOKBACK, now + 5m] (default: --time-spread + 1h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) query_lookback: Option<Duration>,

    /// With --queries: first write one trace of this many spans and time GetTraces (v1:
    /// GetTrace) of it (0 = skip).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) large_trace_spans: u32,

    /// Skip the load (e.g. to run --queries against existing data).
    #[arg(long)]
    pub(crate) no_load: bool,

    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Seconds between progress lines on stderr (0 = none).
    #[arg(long, default_value_t = 5)]
    pub(crate) progress: u64,
}

/// The API spans are written and read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Api {
    /// Jaeger v1's `jaeger.storage.v1` (`SPAN_STORAGE_TYPE=grpc`).
    V1,
    /// OTLP Export and `jaeger.storage.v2`.
    V2,
}

/// How `--api v1` writes spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum V1Writer {
    /// `StreamingSpanWriterPlugin.WriteSpanStream`: long-lived streams, one span per message.
    Stream,
    /// `SpanWriterPlugin.WriteSpan`: one call per span.
    Unary,
}
