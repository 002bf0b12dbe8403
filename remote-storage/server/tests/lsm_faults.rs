//! Storage faults of the LSM backend through the real binary (issue 14, item 5): a data
//! directory that fills up, and one deleted under a running server. Either way the server
//! reports not ready (admin `/` 503, gRPC health NOT_SERVING), answers UNAVAILABLE with a
//! message naming the cause, the directory and the remedy, and still exits promptly on SIGTERM,
//! ending an open health Watch stream rather than waiting for it. After the full disk, a
//! restart with more room serves every acknowledged span.
//!
//! The full-disk test mounts a small tmpfs of its own, so it needs root (CI runs as root);
//! elsewhere it prints one `SKIPPED` line.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Started, TRACES_PER_BATCH, batch, missing_traces, start_binary, terminate};
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The server's shutdown limit (`DRAIN_TIMEOUT` in `serve.rs`): draining and closing together.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);
/// A failed store closes at once, so the whole shutdown takes well under this; a health Watch
/// stream held open by the server would keep it for the drain timeout (20 s) alone.
const PROMPT_EXIT: Duration = Duration::from_secs(10);
/// Readiness is re-checked every 5 s; this leaves room for a slow machine.
const READINESS_DEADLINE: Duration = Duration::from_secs(20);
/// How long filling the small disk may take before the test gives up.
const FILL_DEADLINE: Duration = Duration::from_secs(120);
/// The small disk, and the size it is grown to before the restart.
const SMALL_DISK_MIB: u32 = 16;
const GROWN_DISK_MIB: u32 = 128;

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A tmpfs of a few MiB mounted for one test, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts the disk, or prints why not (not root, no tmpfs) and returns `None`.
    fn mount(test: &str, size_mib: u32) -> Option<Self> {
        let path = std::env::temp_dir().join(format!("lsm-small-disk-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&path)
            .output();
        let reason = match mounted {
            Ok(output) if output.status.success() => return Some(Self { path }),
            Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            Err(error) => error.to_string(),
        };
        let _ = std::fs::remove_dir(&path);
        eprintln!("SKIPPED {test}: cannot mount a {size_mib} MiB tmpfs (needs root): {reason}");
        None
    }

    /// Gives the file system more room, keeping its contents.
    fn grow(&self, size_mib: u32) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size_mib}m")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remounting {}", self.path.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy, so a process still holding files there cannot keep the mount.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Arguments for a server on the LSM backend in `dir`, fsyncing before each acknowledgement.
fn lsm_arguments(dir: &Path) -> Vec<String> {
    vec![
        "--backend=lsm".into(),
        "--lsm.sync=batch".into(),
        format!("--lsm.data-dir={}", dir.display()),
        "--grpc-addr=127.0.0.1:0".into(),
        "--admin-addr=127.0.0.1:0".into(),
    ]
}

async fn start(dir: &Path) -> Started {
    let arguments = lsm_arguments(dir);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    start_binary(&arguments, &[]).await
}

/// UNAVAILABLE, naming the cause, the data directory and what to do.
fn assert_store_failure(status: &Status, dir: &Path, cause: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let message = status.message();
    assert!(message.contains(cause), "{cause:?} not in {message:?}");
    assert!(
        message.contains(&dir.display().to_string()),
        "data directory not in {message:?}"
    );
    assert!(message.contains("restart"), "no remedy in {message:?}");
}

async fn admin_status(admin: SocketAddr) -> Option<u16> {
    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("http://{admin}/"))
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

async fn health(channel: Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Everything a failed store must show, then SIGTERM: the process exits promptly and an open
/// health Watch stream ends cleanly instead of being cut.
async fn assert_failed_then_stops(started: &mut Started, dir: &Path, cause: &str) {
    let admin = started.admin_addr.expect("the admin listener is on");
    let deadline = Instant::now() + READINESS_DEADLINE;
    loop {
        match admin_status(admin).await {
            Some(503) => break,
            Some(200) if Instant::now() < deadline => {}
            other => panic!("admin / answered {other:?}, not 503 within {READINESS_DEADLINE:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let channel = connect(started.grpc_addr).await;
    for service in ["", "opentelemetry.proto.collector.trace.v1.TraceService"] {
        assert_eq!(
            health(channel.clone(), service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    let export = TraceServiceClient::new(channel.clone())
        .export(batch(900_000_000, "after-failure"))
        .await
        .unwrap_err();
    assert_store_failure(&export, dir, cause);
    let read = TraceReaderClient::new(channel.clone())
        .get_services(GetServicesRequest {})
        .await
        .unwrap_err();
    assert_store_failure(&read, dir, cause);

    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().expect("a first status");
    assert_eq!(first.status(), ServingStatus::NotServing);

    let Some((status, took)) = terminate(&mut started.guard, SHUTDOWN_LIMIT).await else {
        panic!("the server did not exit within {SHUTDOWN_LIMIT:?} of SIGTERM");
    };
    eprintln!("exited {took:?} after SIGTERM with {status} ({cause})");
    assert!(
        took < PROMPT_EXIT,
        "exit took {took:?}: something held the shutdown"
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(5), watch.message()).await {
            Ok(Ok(Some(update))) => assert_eq!(update.status(), ServingStatus::NotServing),
            Ok(Ok(None)) => break,
            Ok(Err(cut)) => panic!("the Watch stream was cut, not ended: {cut:?}"),
            Err(_) => panic!("the Watch stream is still open after the server exited"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_unavailable_and_the_server_still_stops() {
    let test = "a_full_disk_fails_unavailable_and_the_server_still_stops";
    let Some(disk) = SmallDisk::mount(test, SMALL_DISK_MIB) else {
        return;
    };
    let dir = disk.path.join("data");
    let mut first = start(&dir).await;

    // Writers send until the disk is full; each owns a range of trace numbers.
    let channel = connect(first.grpc_addr).await;
    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failures: Arc<Mutex<Vec<Status>>> = Arc::default();
    let full = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4u64 {
        let mut client = TraceServiceClient::new(channel.clone());
        let (acknowledged, failures, full) = (
            Arc::clone(&acknowledged),
            Arc::clone(&failures),
            Arc::clone(&full),
        );
        writers.push(tokio::spawn(async move {
            let mut next_trace = 1 + writer * 1_000_000;
            while !full.load(Ordering::Acquire) {
                match client.export(batch(next_trace, "disk-full")).await {
                    Ok(_) => acknowledged
                        .lock()
                        .unwrap()
                        .extend(next_trace..next_trace + TRACES_PER_BATCH),
                    Err(failure) => {
                        failures.lock().unwrap().push(failure);
                        full.store(true, Ordering::Release);
                    }
                }
                next_trace += TRACES_PER_BATCH;
            }
        }));
    }
    tokio::time::timeout(FILL_DEADLINE, futures::future::join_all(writers))
        .await
        .expect("the small disk filled up");
    drop(channel);
    let acknowledged = acknowledged.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "nothing was written before the disk filled"
    );
    // The first failing Export included: a full disk is not the client's fault.
    for failure in &failures {
        assert_store_failure(failure, &dir, "full");
    }
    eprintln!(
        "disk full after {} acknowledged traces: {}",
        acknowledged.len(),
        failures[0].message()
    );

    assert_failed_then_stops(&mut first, &dir, "full").await;
    let lines = first.log_lines.await.unwrap();
    assert!(
        lines.iter().any(|line| line.contains("lsm store failed")),
        "the fault is logged"
    );

    disk.grow(GROWN_DISK_MIB);
    let second = start(&dir).await;
    let missing = missing_traces(connect(second.grpc_addr).await, &acknowledged).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces are missing or incomplete after the restart, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    // The server must be gone before the disk is unmounted.
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_data_directory_fails_unavailable_and_the_server_still_stops() {
    let parent = std::env::temp_dir().join(format!("lsm-deleted-dir-{}", std::process::id()));
    let dir = parent.join("data");
    let _ = std::fs::remove_dir_all(&parent);
    let mut started = start(&dir).await;

    let channel = connect(started.grpc_addr).await;
    let mut client = TraceServiceClient::new(channel.clone());
    for number in 0..5 {
        client
            .export(batch(1 + number * TRACES_PER_BATCH, "deleted-dir"))
            .await
            .unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // fjall alone would take this into its open, deleted journal and acknowledge it.
    let failure = client
        .export(batch(1_000_000, "deleted-dir"))
        .await
        .unwrap_err();
    assert_store_failure(&failure, &dir, "deleted");
    drop((client, channel));

    assert_failed_then_stops(&mut started, &dir, "deleted").await;
    let _ = std::fs::remove_dir_all(&parent);
}
