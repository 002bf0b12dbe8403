//! The timed load: closed-loop (`--concurrency` requests in flight) or fixed-rate (`--rate`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceResponse;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::Status;

use crate::codec::ExportClient;
use crate::workload::Workload;

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
    pub(crate) requests_sent: u64,
    pub(crate) requests_ok: u64,
    pub(crate) spans_sent: u64,
    pub(crate) spans_accepted: u64,
    pub(crate) spans_rejected: u64,
    /// Failed requests by gRPC code name.
    pub(crate) errors: BTreeMap<String, u64>,
    /// One example message per gRPC code.
    pub(crate) error_examples: BTreeMap<String, String>,
    /// Latency of successful Export calls, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) wall: Duration,
    /// Request numbers `0..claimed` may have reached the server (some may have been skipped).
    pub(crate) requests_claimed: u64,
}

impl LoadResult {
    fn new() -> Result<Self> {
        Ok(Self {
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

    fn record(
        &mut self,
        spans: u64,
        latency: Duration,
        res: Result<ExportTraceServiceResponse, Status>,
    ) {
        self.requests_sent += 1;
        self.spans_sent += spans;
        match res {
            Ok(resp) => {
                let rejected = resp
                    .partial_success
                    .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
                    .min(spans);
                self.requests_ok += 1;
                self.spans_rejected += rejected;
                self.spans_accepted += spans - rejected;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us.saturating_record(us.max(1));
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

struct Shared {
    workload: Workload,
    cfg: LoadConfig,
    next_seq: AtomicU64,
    accepted: AtomicU64,
    stop: AtomicBool,
}

/// Runs the load over `clients` (used round-robin) and returns what was measured.
pub(crate) async fn run(
    workload: Workload,
    clients: Vec<ExportClient>,
    cfg: LoadConfig,
) -> Result<LoadResult> {
    anyhow::ensure!(!clients.is_empty(), "no connection");
    let shared = Arc::new(Shared {
        workload,
        cfg,
        next_seq: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let progress = shared.cfg.progress.map(|every| {
        let shared = Arc::clone(&shared);
        tokio::spawn(progress_loop(shared, start, every))
    });
    let mut result = match shared.cfg.rate {
        Some(rate) => fixed_rate(&shared, clients, rate, start).await?,
        None => closed_loop(&shared, clients, start).await?,
    };
    result.wall = start.elapsed();
    result.requests_claimed = shared.next_seq.load(Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        p.abort();
    }
    Ok(result)
}

#[allow(clippy::cast_precision_loss)]
async fn progress_loop(shared: Arc<Shared>, start: Instant, every: Duration) {
    let mut tick = tokio::time::interval_at(start + every, every);
    let mut last = 0u64;
    loop {
        tick.tick().await;
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = shared.accepted.load(Ordering::Relaxed);
        eprintln!(
            "[{:>6.1}s] {now} spans accepted, {:.0} spans/s over the last {:?}",
            start.elapsed().as_secs_f64(),
            (now - last) as f64 / every.as_secs_f64(),
            every
        );
        last = now;
    }
}

fn past_deadline(shared: &Shared, start: Instant, at: Instant) -> bool {
    shared.cfg.duration.is_some_and(|d| at >= start + d)
}

async fn closed_loop(
    shared: &Arc<Shared>,
    clients: Vec<ExportClient>,
    start: Instant,
) -> Result<LoadResult> {
    let mut workers = JoinSet::new();
    for w in 0..shared.cfg.concurrency.max(1) {
        let mut client = clients[w % clients.len()].clone();
        let shared = Arc::clone(shared);
        workers.spawn(async move {
            let mut stats = LoadResult::new()?;
            loop {
                let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
                if past_deadline(&shared, start, Instant::now()) {
                    break;
                }
                let Some(tpl) = shared.workload.template(seq) else {
                    break;
                };
                let body = tpl.render(shared.cfg.prefix, seq, shared.workload.traces_per_request());
                let t0 = Instant::now();
                let res = client.export(body).await;
                let latency = t0.elapsed();
                if res.is_ok() {
                    shared.accepted.fetch_add(tpl.spans(), Ordering::Relaxed);
                }
                stats.record(tpl.spans(), latency, res);
            }
            anyhow::Ok(stats)
        });
    }
    let mut total = LoadResult::new()?;
    while let Some(joined) = workers.join_next().await {
        total.merge(joined??)?;
    }
    Ok(total)
}

/// Open loop: request `i` is due at `start + i * interval`; its latency is measured from that
/// intended time, so a slow server cannot hide queueing delay (no coordinated omission).
async fn fixed_rate(
    shared: &Arc<Shared>,
    clients: Vec<ExportClient>,
    rate: f64,
    start: Instant,
) -> Result<LoadResult> {
    anyhow::ensure!(
        rate.is_finite() && rate > 0.0,
        "--rate must be a positive number"
    );
    let permits = Arc::new(Semaphore::new(shared.cfg.concurrency.max(1)));
    let mut tasks: JoinSet<(u64, Duration, Result<ExportTraceServiceResponse, Status>)> =
        JoinSet::new();
    let mut total = LoadResult::new()?;
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
            if res.is_ok() {
                counter.accepted.fetch_add(spans, Ordering::Relaxed);
            }
            (spans, latency, res)
        });
        while let Some(done) = tasks.try_join_next() {
            let (spans, latency, res) = done?;
            total.record(spans, latency, res);
        }
        seq += 1;
    }
    while let Some(done) = tasks.join_next().await {
        let (spans, latency, res) = done?;
        total.record(spans, latency, res);
    }
    Ok(total)
}

#[allow(clippy::cast_precision_loss)]
fn batch_spans(shared: &Shared) -> f64 {
    shared
        .workload
        .template(0)
        .map_or(1.0, |t| t.spans() as f64)
}
