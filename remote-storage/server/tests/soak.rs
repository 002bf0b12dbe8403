//! A bounded soak (issue 14, item 7): the real binary on each embedded backend (memory, lsm)
//! under mixed Export and query load. After a warm-up, resident memory and open file
//! descriptors stay flat, and not one call fails.
//!
//! `SOAK_SECONDS` sets the length of each run (default 60, what CI runs); the ignored
//! `long_soak_*` tests default to 10 minutes each (`cargo test --test soak -- --ignored`).
//!
//! Flat means: the peak of the last third of the run is at most the peak of the middle third
//! × 1.2 plus a small absolute slack (16 MiB of memory, 16 descriptors). Descriptors of live
//! files in the lsm data directory are left out of that: fjall keeps table files open (up to
//! 900, its descriptor cache) and their number grows with the data, which is kept for the
//! retention; descriptors of deleted files there count, like every other descriptor. The first third is the
//! warm-up, in which the memory backend fills up to its trace limit and the lsm store fills its
//! (deliberately small) block cache and memtables. Comparing peaks, not means, lets a sawtooth
//! (memtables filling and flushing, allocator pages returned late) pass while growth from window
//! to window fails; the 20 % absorbs a sawtooth whose peaks fall unevenly into the two windows.
//! This asserts "no leak", not any speed: the load is closed-loop and the figures are only
//! printed.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Started, start_binary};
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{
    FindTracesRequest, GetOperationsRequest, GetServicesRequest, GetTraceParams, GetTracesRequest,
    TraceQueryParameters,
};
use loadgen::workload::{WorkloadConfig, build_request, service_name};
use parking_lot::Mutex;
use remote_storage_core::UnixNanos;
use tonic::transport::Channel;

/// Default length of a CI run and of a long run.
const CI_SECONDS: u64 = 60;
const LONG_SECONDS: u64 = 600;
/// How often memory and descriptors are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Allowed growth of the last third's peak over the middle third's (see the module docs).
const GROWTH_PERCENT: u64 = 20;
const RSS_SLACK_KIB: u64 = 16 * 1024;
const FD_SLACK: u64 = 16;
/// Concurrent writers and readers, each a closed loop.
const WRITERS: u64 = 2;
const READERS: u64 = 2;
/// Spans per Export (whole traces of `loadgen::workload::SPANS_PER_TRACE`).
const SPANS_PER_EXPORT: usize = 200;
/// The memory backend's trace limit: reached early in the warm-up, so its data stops growing.
const MEMORY_MAX_TRACES: &str = "5000";
/// Recent trace IDs kept for GetTraces.
const RECENT_IDS: usize = 256;

fn soak_duration(default_seconds: u64) -> Duration {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default_seconds);
    Duration::from_secs(seconds)
}

/// One reading of the server process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    /// Open descriptors, except those of live files in the data directory.
    fds: u64,
    /// Open descriptors of live files in the data directory (fjall's table cache).
    data_fds: u64,
}

fn sample(pid: u32, at: Duration, data_dir: Option<&Path>) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    let (mut fds, mut data_fds) = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        // A descriptor closed since the listing has no target: not counted.
        let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
            continue;
        };
        let deleted = target.to_string_lossy().ends_with(" (deleted)");
        if !deleted && data_dir.is_some_and(|dir| target.starts_with(dir)) {
            data_fds += 1;
        } else {
            fds += 1;
        }
    }
    Sample {
        at,
        rss_kib,
        fds,
        data_fds,
    }
}

/// What the load did.
#[derive(Debug, Default)]
struct Counts {
    exports: AtomicU64,
    queries: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Counts {
    fn record<T>(&self, what: &str, result: Result<T, tonic::Status>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(status) => {
                self.errors.lock().push(format!("{what}: {status:?}"));
                None
            }
        }
    }
}

async fn write_loop(
    channel: Channel,
    writer: u64,
    counts: Arc<Counts>,
    recent: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
) {
    let mut client = TraceServiceClient::new(channel);
    let mut index = writer << 32;
    while !stop.load(Ordering::Acquire) {
        let config = WorkloadConfig {
            seed: 14,
            batch_size: SPANS_PER_EXPORT,
            ring: 1,
            total_spans: None,
            time_spread: Duration::from_secs(1),
            now_unix_nanos: UnixNanos::now().0,
        };
        // Fresh trace IDs every time (they derive from the seed and the index).
        let (request, ids) = build_request(&config, index, SPANS_PER_EXPORT);
        index += 1;
        if counts
            .record("Export", client.export(request).await)
            .is_some()
        {
            counts.exports.fetch_add(1, Ordering::Relaxed);
            let mut recent = recent.lock();
            recent.extend(ids);
            let excess = recent.len().saturating_sub(RECENT_IDS);
            recent.drain(..excess);
        }
    }
}

async fn read_loop(
    channel: Channel,
    reader: u64,
    counts: Arc<Counts>,
    recent: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
) {
    let mut client = TraceReaderClient::new(channel).max_decoding_message_size(64 << 20);
    let mut round = reader;
    while !stop.load(Ordering::Acquire) {
        let service = service_name(usize::try_from(round % 10).unwrap());
        round += 1;
        let now = UnixNanos::now();
        let query = TraceQueryParameters {
            service_name: service.clone(),
            start_time_min: Some(now.saturating_sub(300 * 1_000_000_000).to_proto()),
            start_time_max: Some(now.to_proto()),
            search_depth: 20,
            ..Default::default()
        };
        let found = client
            .find_traces(FindTracesRequest { query: Some(query) })
            .await;
        if let Some(response) = counts.record("FindTraces", found) {
            let mut stream = response.into_inner();
            while let Some(chunk) = counts.record("FindTraces stream", stream.message().await) {
                if chunk.is_none() {
                    break;
                }
            }
        }
        let trace_id = recent.lock().last().cloned();
        if let Some(trace_id) = trace_id {
            let request = GetTracesRequest {
                query: vec![GetTraceParams {
                    trace_id,
                    ..Default::default()
                }],
            };
            if let Some(response) = counts.record("GetTraces", client.get_traces(request).await) {
                let mut stream = response.into_inner();
                while let Some(chunk) = counts.record("GetTraces stream", stream.message().await) {
                    if chunk.is_none() {
                        break;
                    }
                }
            }
        }
        counts.record(
            "GetServices",
            client.get_services(GetServicesRequest {}).await,
        );
        counts.record(
            "GetOperations",
            client
                .get_operations(GetOperationsRequest {
                    service,
                    span_kind: String::new(),
                })
                .await,
        );
        counts.queries.fetch_add(4, Ordering::Relaxed);
    }
}

/// The peaks of the middle and last thirds of the run.
fn third_peaks(samples: &[Sample], run: Duration, value: impl Fn(&Sample) -> u64) -> (u64, u64) {
    let third = run / 3;
    let peak = |from: Duration, to: Duration| {
        samples
            .iter()
            .filter(|sample| sample.at >= from && sample.at < to)
            .map(&value)
            .max()
            .expect("samples in every third")
    };
    (peak(third, 2 * third), peak(2 * third, run + SAMPLE_EVERY))
}

fn within_growth(middle: u64, last: u64, slack: u64) -> bool {
    last <= middle + middle * GROWTH_PERCENT / 100 + slack
}

/// Runs the load against a started server for `run`, sampling the process, then asserts.
async fn soak(name: &str, arguments: &[&str], data_dir: Option<&Path>, run: Duration) {
    let started: Started = start_binary(arguments, &[]).await;
    let pid = started.guard.0.as_ref().unwrap().id();
    let channel = Channel::from_shared(format!("http://{}", started.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let counts = Arc::new(Counts::default());
    let recent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        tasks.push(tokio::spawn(write_loop(
            channel.clone(),
            writer,
            Arc::clone(&counts),
            Arc::clone(&recent),
            Arc::clone(&stop),
        )));
    }
    for reader in 0..READERS {
        tasks.push(tokio::spawn(read_loop(
            channel.clone(),
            reader,
            Arc::clone(&counts),
            Arc::clone(&recent),
            Arc::clone(&stop),
        )));
    }

    let began = Instant::now();
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    while began.elapsed() <= run {
        ticks.tick().await;
        samples.push(sample(pid, began.elapsed(), data_dir));
    }
    stop.store(true, Ordering::Release);
    for task in tasks {
        task.await.unwrap();
    }

    let errors = counts.errors.lock().clone();
    let exports = counts.exports.load(Ordering::Relaxed);
    let queries = counts.queries.load(Ordering::Relaxed);
    let (rss_middle, rss_last) = third_peaks(&samples, run, |sample| sample.rss_kib);
    let (fd_middle, fd_last) = third_peaks(&samples, run, |sample| sample.fds);
    let first = samples.first().unwrap();
    eprintln!(
        "soak {name}: {run:?}, {exports} Exports ({} spans), {queries} queries, {} errors; \
         RSS start {} MiB, middle-third peak {} MiB, last-third peak {} MiB; \
         fds start {}, middle-third peak {fd_middle}, last-third peak {fd_last}",
        exports * u64::try_from(SPANS_PER_EXPORT).unwrap(),
        errors.len(),
        first.rss_kib / 1024,
        rss_middle / 1024,
        rss_last / 1024,
        first.fds,
    );
    // Every 5 s, for the record: seconds, RSS MiB / descriptors / data-directory descriptors.
    let timeline: Vec<String> = samples
        .iter()
        .step_by(10)
        .map(|sample| {
            format!(
                "{}s:{}/{}/{}",
                sample.at.as_secs(),
                sample.rss_kib / 1024,
                sample.fds,
                sample.data_fds
            )
        })
        .collect();
    eprintln!("soak {name} timeline: {}", timeline.join(" "));
    assert!(
        errors.is_empty(),
        "{} calls failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(exports > 0 && queries > 0, "the load ran");
    assert!(
        within_growth(rss_middle, rss_last, RSS_SLACK_KIB),
        "{name}: resident memory grew from {} MiB (middle third) to {} MiB (last third)",
        rss_middle / 1024,
        rss_last / 1024
    );
    assert!(
        within_growth(fd_middle, fd_last, FD_SLACK),
        "{name}: open descriptors grew from {fd_middle} (middle third) to {fd_last} (last third)"
    );
}

async fn soak_memory(run: Duration) {
    let limit = format!("--memory.max-traces={MEMORY_MAX_TRACES}");
    soak(
        "memory",
        &[
            "--backend=memory",
            &limit,
            "--grpc-addr=127.0.0.1:0",
            "--admin-addr=127.0.0.1:0",
        ],
        None,
        run,
    )
    .await;
}

async fn soak_lsm(run: Duration, data_dir: &Path) {
    let dir = format!("--lsm.data-dir={}", data_dir.display());
    soak(
        "lsm",
        &[
            "--backend=lsm",
            &dir,
            // Both small, so the store reaches its steady state (cache full, memtables
            // filling and being flushed) within the warm-up: with the default 64 MiB
            // memtables that took about 90 s at this load (RSS then saw-toothed between 250
            // and 320 MiB for the rest of a 300 s run).
            "--lsm.cache-size=16MiB",
            "--lsm.memtable-size=8MiB",
            "--grpc-addr=127.0.0.1:0",
            "--admin-addr=127.0.0.1:0",
        ],
        Some(data_dir),
        run,
    )
    .await;
}

fn lsm_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_backend_stays_flat_under_load() {
    soak_memory(soak_duration(CI_SECONDS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lsm_backend_stays_flat_under_load() {
    let dir = lsm_dir("soak-lsm");
    soak_lsm(soak_duration(CI_SECONDS), &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run: cargo test --test soak -- --ignored (SOAK_SECONDS, default 600)"]
async fn long_soak_memory() {
    soak_memory(soak_duration(LONG_SECONDS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run: cargo test --test soak -- --ignored (SOAK_SECONDS, default 600)"]
async fn long_soak_lsm() {
    let dir = lsm_dir("soak-lsm-long");
    soak_lsm(soak_duration(LONG_SECONDS), &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}
