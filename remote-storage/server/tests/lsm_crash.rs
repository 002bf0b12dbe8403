//! Crash safety of the LSM backend through the real binary: with `--lsm.sync batch`, every
//! Export that was acknowledged before a `kill -9` is readable after a restart on the same data
//! directory, the store opens cleanly, and the dependency rollups count exactly the calls of
//! the spans that survived (they are written in the same batch).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{
    SPANS_PER_TRACE, Started, TRACES_PER_BATCH, batch, missing_traces, span_counts, start_binary,
};
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::storage::v2::GetDependenciesRequest;
use jaeger_remote_proto::storage::v2::dependency_reader_client::DependencyReaderClient;
use tokio::sync::watch;
use tonic::transport::Channel;

const WRITERS: u64 = 4;
/// Acknowledged batches before the process is killed; writers keep sending meanwhile, so the
/// kill lands in the middle of the load.
const BATCHES_BEFORE_KILL: usize = 200;

async fn channel(started: &Started) -> Channel {
    Channel::from_shared(format!("http://{}", started.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let data_dir = std::env::temp_dir().join(format!("lsm-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let data_dir_text = data_dir.to_str().unwrap().to_owned();
    let arguments = [
        "--backend=lsm",
        "--lsm.sync=batch",
        "--grpc-addr=127.0.0.1:0",
        "--admin-addr=127.0.0.1:0",
    ];
    let mut with_dir: Vec<&str> = arguments.to_vec();
    let dir_flag = format!("--lsm.data-dir={data_dir_text}");
    with_dir.push(&dir_flag);

    let test_start = std::time::SystemTime::now();
    let mut first = start_binary(&with_dir, &[]).await;
    let writer_channel = channel(&first).await;
    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::default();
    // Every trace sent, acknowledged or not: an Export in flight at the kill may be stored.
    let sent: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (batches_sender, mut batches_receiver) = watch::channel(0usize);
    let batches_sender = Arc::new(batches_sender);

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = TraceServiceClient::new(writer_channel.clone());
        let acknowledged = Arc::clone(&acknowledged);
        let sent = Arc::clone(&sent);
        let batches_sender = Arc::clone(&batches_sender);
        writers.push(tokio::spawn(async move {
            // Each writer owns a disjoint range of trace numbers.
            let mut next_trace = 1 + writer * 1_000_000;
            loop {
                let request = batch(next_trace, "crash-test");
                sent.lock()
                    .unwrap()
                    .extend(next_trace..next_trace + TRACES_PER_BATCH);
                if client.export(request).await.is_err() {
                    return;
                }
                acknowledged
                    .lock()
                    .unwrap()
                    .extend(next_trace..next_trace + TRACES_PER_BATCH);
                next_trace += TRACES_PER_BATCH;
                batches_sender.send_modify(|count| *count += 1);
            }
        }));
    }

    batches_receiver
        .wait_for(|count| *count >= BATCHES_BEFORE_KILL)
        .await
        .unwrap();
    let mut child = first.guard.0.take().unwrap();
    child.kill().unwrap(); // SIGKILL: no shutdown hook runs.
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    drop(writer_channel);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= BATCHES_BEFORE_KILL * usize::try_from(TRACES_PER_BATCH).unwrap());

    let reopen_started = Instant::now();
    let second = start_binary(&with_dir, &[]).await;
    eprintln!(
        "reopened after kill -9 in {:?} with {} acknowledged traces",
        reopen_started.elapsed(),
        acknowledged.len()
    );
    let missing = missing_traces(channel(&second).await, &acknowledged).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces are missing or incomplete after kill -9, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );

    // Each stored trace is a root and nine children of it: nine calls. Whole minutes of the
    // window are answered from the rollups, its edges (before and after the load) from spans.
    let sent = sent.lock().unwrap().clone();
    let stored = span_counts(channel(&second).await, &sent).await;
    assert!(stored.values().all(|spans| *spans == SPANS_PER_TRACE));
    let stored_calls = u64::try_from(stored.len()).unwrap() * (SPANS_PER_TRACE - 1);
    let timestamp = |time: std::time::SystemTime| {
        let since = time.duration_since(std::time::UNIX_EPOCH).unwrap();
        prost_types::Timestamp {
            seconds: i64::try_from(since.as_secs()).unwrap(),
            nanos: i32::try_from(since.subsec_nanos()).unwrap(),
        }
    };
    let margin = std::time::Duration::from_secs(600);
    let links = DependencyReaderClient::new(channel(&second).await)
        .get_dependencies(GetDependenciesRequest {
            start_time: Some(timestamp(test_start - margin)),
            end_time: Some(timestamp(std::time::SystemTime::now() + margin)),
        })
        .await
        .unwrap()
        .into_inner()
        .dependencies;
    let counted: Vec<(String, String, u64)> = links
        .into_iter()
        .map(|link| (link.parent, link.child, link.call_count))
        .collect();
    assert_eq!(
        counted,
        [(
            "crash-test".to_owned(),
            "crash-test".to_owned(),
            stored_calls
        )],
        "calls after kill -9 differ from the {} stored traces'",
        stored.len()
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&data_dir);
}
