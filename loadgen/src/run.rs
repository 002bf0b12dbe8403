//! The timed load and what it measured: [`drive`] runs any sender over a workload (the shared
//! request counter, deadline, progress line and wall clock); [`run`] sends OTLP Export requests
//! closed-loop (`--concurrency` requests in flight) or at a fixed rate (`--rate`). The v1
//! senders are in `v1_writer`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceResponse;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::Status;

use crate::codec::RawClient;
use crate::workload::{RequestTemplate, Template, Workload};

/// The RPC that carries the spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sender {
    /// OTLP `TraceService/Export`, a batch of spans per request.
    OtlpExport,
    /// Jaeger v1 `StreamingSpanWriterPlugin/WriteSpanStream`: long-lived streams, one span per
    /// message, one answer per stream when it is closed.
    V1WriteSpanStream,
    /// Jaeger v1 `SpanWriterPlugin/WriteSpan`: one unary call per span.
    V1WriteSpan,
}

impl Sender {
    /// What a "request" of [`LoadResult`] is for this sender.
    pub(crate) fn request_name(self) -> &'static str {
        match self {
            Self::OtlpExport => "Export requests",
            Self::V1WriteSpanStream => "WriteSpanStream streams",
            Self::V1WriteSpan => "WriteSpan calls",
        }
    }

    /// Whether each request has a latency worth reporting: a stream answers once, at its
    /// end, so only its spans/s and CPU cost mean something.
    pub(crate) fn has_latency(self) -> bool {
        self != Self::V1WriteSpanStream
    }
}

/// How the load is driven.
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    /// Requests in flight at most.
    pub(crate) concurrency: usize,
    /// Stop sending after this long (`None`: stop when the workload is exhausted).
    pub(crate) duration: Option<Duration>,
    /// Fixed rate in spans per second (`None`: closed loop).
    pub(crate) rate: Option<f64>,
    /// Trace-ID prefix of this run.
    pub(crate) prefix: [u8; 8],
    /// Print a progress line to stderr this often (`None`: never).
    pub(crate) progress: Option<Duration>,
}

/// Everything measured during the load.
#[derive(Debug)]
pub(crate) struct LoadResult {
    pub(crate) sender: Sender,
    /// Requests, calls or streams (see [`Sender::request_name`]).
    pub(crate) requests_sent: u64,
    pub(crate) requests_ok: u64,
    pub(crate) spans_sent: u64,
    pub(crate) spans_accepted: u64,
    pub(crate) spans_rejected: u64,
    /// Failed requests by gRPC code name.
    pub(crate) errors: BTreeMap<String, u64>,
    /// One example message per gRPC code.
    pub(crate) error_examples: BTreeMap<String, String>,
    /// Latency of successful requests, in microseconds (empty for streams).
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) wall: Duration,
    /// Request numbers `0..claimed` may have reached the server (some may have been skipped).
    pub(crate) requests_claimed: u64,
}

impl LoadResult {
    pub(crate) fn new(sender: Sender) -> Result<Self> {
        Ok(Self {
            sender,
            requests_sent: 0,
            requests_ok: 0,
            spans_sent: 0,
            spans_accepted: 0,
            spans_rejected: 0,
            errors: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            latency_us: new_histogram()?,
            wall: Duration::ZERO,
            requests_claimed: 0,
        })
    }

    /// Records one request of `spans` spans: `Ok` with the number of spans the server
    /// rejected in a successful answer, or the failure.
    pub(crate) fn record(
        &mut self,
        spans: u64,
        latency: Option<Duration>,
        res: Result<u64, Status>,
    ) {
        self.requests_sent += 1;
        self.spans_sent += spans;
        match res {
            Ok(rejected) => {
                let rejected = rejected.min(spans);
                self.requests_ok += 1;
                self.spans_rejected += rejected;
                self.spans_accepted += spans - rejected;
                if let Some(latency) = latency {
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    self.latency_us.saturating_record(us.max(1));
                }
            }
            Err(status) => {
                let code = format!("{:?}", status.code());
                *self.errors.entry(code.clone()).or_default() += 1;
                self.error_examples
                    .entry(code)
                    .or_insert_with(|| status.message().to_string());
            }
        }
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.requests_sent += other.requests_sent;
        self.requests_ok += other.requests_ok;
        self.spans_sent += other.spans_sent;
        self.spans_accepted += other.spans_accepted;
        self.spans_rejected += other.spans_rejected;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.error_examples {
            self.error_examples.entry(k).or_insert(v);
        }
        self.latency_us.add(&other.latency_us)?;
        Ok(())
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs .. 1 h at 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// The state every sender task shares: the workload, the next request number to claim, and
/// the progress counter.
pub(crate) struct Shared<T> {
    pub(crate) workload: Workload<T>,
    pub(crate) cfg: LoadConfig,
    next_seq: AtomicU64,
    /// Spans counted by the progress line: accepted, or sent for streams.
    pub(crate) progress: AtomicU64,
    progress_name: &'static str,
    stop: AtomicBool,
}

impl<T: RequestTemplate> Shared<T> {
    /// Claims the next request: its number and template, or `None` once the workload is
    /// exhausted or the `--duration` has passed.
    pub(crate) fn claim(&self, start: Instant) -> Option<(u64, &T)> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        if past_deadline(self, start, Instant::now()) {
            return None;
        }
        self.workload.template(seq).map(|template| (seq, template))
    }

    /// Whether a sender should stop early: the `--duration` has passed.
    pub(crate) fn past_deadline(&self, start: Instant) -> bool {
        past_deadline(self, start, Instant::now())
    }
}

/// Runs `send` (the sender tasks of one API) over `workload` and returns what it measured,
/// with the wall time and the number of requests claimed filled in. `progress_name` says what
/// the progress line counts (`Shared::progress`).
pub(crate) async fn drive<T, F, Fut>(
    workload: Workload<T>,
    cfg: LoadConfig,
    progress_name: &'static str,
    send: F,
) -> Result<LoadResult>
where
    T: RequestTemplate + Send + Sync + 'static,
    F: FnOnce(Arc<Shared<T>>, Instant) -> Fut,
    Fut: Future<Output = Result<LoadResult>>,
{
    let shared = Arc::new(Shared {
        workload,
        cfg,
        next_seq: AtomicU64::new(0),
        progress: AtomicU64::new(0),
        progress_name,
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let progress = shared.cfg.progress.map(|every| {
        let shared = Arc::clone(&shared);
        tokio::spawn(progress_loop(shared, start, every))
    });
    let mut result = send(Arc::clone(&shared), start).await?;
    result.wall = start.elapsed();
    result.requests_claimed = shared.next_seq.load(Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        p.abort();
    }
    Ok(result)
}

/// Sends the workload as OTLP Export requests over `clients` (used round-robin) and returns
/// what was measured.
pub(crate) async fn run(
    workload: Workload,
    clients: Vec<RawClient>,
    cfg: LoadConfig,
) -> Result<LoadResult> {
    anyhow::ensure!(!clients.is_empty(), "no connection");
    drive(workload, cfg, "accepted", |shared, start| async move {
        match shared.cfg.rate {
            Some(rate) => fixed_rate(&shared, clients, rate, start).await,
            None => closed_loop(&shared, clients, start).await,
        }
    })
    .await
}

/// The spans the server rejected in a successful Export answer.
fn rejected_spans(response: &ExportTraceServiceResponse) -> u64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

#[allow(clippy::cast_precision_loss)]
async fn progress_loop<T>(shared: Arc<Shared<T>>, start: Instant, every: Duration) {
    let mut tick = tokio::time::interval_at(start + every, every);
    let mut last = 0u64;
    loop {
        tick.tick().await;
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = shared.progress.load(Ordering::Relaxed);
        eprintln!(
            "[{:>6.1}s] {now} spans {}, {:.0} spans/s over the last {:?}",
            start.elapsed().as_secs_f64(),
            shared.progress_name,
            (now - last) as f64 / every.as_secs_f64(),
            every
        );
        last = now;
    }
}

fn past_deadline<T>(shared: &Shared<T>, start: Instant, at: Instant) -> bool {
    shared.cfg.duration.is_some_and(|d| at >= start + d)
}

async fn closed_loop(
    shared: &Arc<Shared<Template>>,
    clients: Vec<RawClient>,
    start: Instant,
) -> Result<LoadResult> {
    let mut workers = JoinSet::new();
    for w in 0..shared.cfg.concurrency.max(1) {
        let mut client = clients[w % clients.len()].clone();
        let shared = Arc::clone(shared);
        workers.spawn(async move {
            let mut stats = LoadResult::new(Sender::OtlpExport)?;
            while let Some((seq, tpl)) = shared.claim(start) {
                let body = tpl.render(shared.cfg.prefix, seq, shared.workload.traces_per_request());
                let t0 = Instant::now();
                let res = client.export(body).await;
                let latency = t0.elapsed();
                let res = res.map(|response| rejected_spans(&response));
                if let Ok(rejected) = res {
                    shared
                        .progress
                        .fetch_add(tpl.spans().saturating_sub(rejected), Ordering::Relaxed);
                }
                stats.record(tpl.spans(), Some(latency), res);
            }
            anyhow::Ok(stats)
        });
    }
    join_all(workers, Sender::OtlpExport).await
}

/// Merges what every worker measured.
pub(crate) async fn join_all(
    mut workers: JoinSet<Result<LoadResult>>,
    sender: Sender,
) -> Result<LoadResult> {
    let mut total = LoadResult::new(sender)?;
    while let Some(joined) = workers.join_next().await {
        total.merge(joined??)?;
    }
    Ok(total)
}

/// Open loop: request `i` is due at `start + i * interval`; its latency is measured from that
/// intended time, so a slow server cannot hide queueing delay (no coordinated omission).
async fn fixed_rate(
    shared: &Arc<Shared<Template>>,
    clients: Vec<RawClient>,
    rate: f64,
    start: Instant,
) -> Result<LoadResult> {
    anyhow::ensure!(
        rate.is_finite() && rate > 0.0,
        "--rate must be a positive number"
    );
    let permits = Arc::new(Semaphore::new(shared.cfg.concurrency.max(1)));
    let mut tasks: JoinSet<(u64, Duration, Result<u64, Status>)> = JoinSet::new();
    let mut total = LoadResult::new(Sender::OtlpExport)?;
    let mut seq = 0u64;
    while let Some(tpl) = shared.workload.template(seq) {
        // Each request is due when the spans before it have been "paid for" at `rate`.
        #[allow(clippy::cast_precision_loss)]
        let due = start + Duration::from_secs_f64(seq as f64 * batch_spans(shared) / rate);
        if past_deadline(shared, start, due) {
            break;
        }
        tokio::time::sleep_until(due).await;
        let permit = Arc::clone(&permits).acquire_owned().await?;
        shared.next_seq.store(seq + 1, Ordering::Relaxed);
        let body = tpl.render(shared.cfg.prefix, seq, shared.workload.traces_per_request());
        let spans = tpl.spans();
        let idx = usize::try_from(seq % clients.len() as u64)?;
        let mut client = clients[idx].clone();
        let counter = Arc::clone(shared);
        tasks.spawn(async move {
            let res = client.export(body).await;
            let latency = due.elapsed();
            drop(permit);
            let res = res.map(|response| rejected_spans(&response));
            if let Ok(rejected) = res {
                counter
                    .progress
                    .fetch_add(spans.saturating_sub(rejected), Ordering::Relaxed);
            }
            (spans, latency, res)
        });
        while let Some(done) = tasks.try_join_next() {
            let (spans, latency, res) = done?;
            total.record(spans, Some(latency), res);
        }
        seq += 1;
    }
    while let Some(done) = tasks.join_next().await {
        let (spans, latency, res) = done?;
        total.record(spans, Some(latency), res);
    }
    Ok(total)
}

#[allow(clippy::cast_precision_loss)]
fn batch_spans(shared: &Shared<Template>) -> f64 {
    shared
        .workload
        .template(0)
        .map_or(1.0, |t| t.spans() as f64)
}
