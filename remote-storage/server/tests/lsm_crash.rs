//! Crash safety of the LSM backend through the real binary: with `--lsm.sync batch`, every
//! Export that was acknowledged before a `kill -9` is readable after a restart on the same data
//! directory, and the store opens cleanly.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{Started, start_binary};
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span};
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{GetTraceParams, GetTracesRequest};
use tokio::sync::watch;
use tonic::transport::Channel;

const WRITERS: u64 = 4;
const TRACES_PER_BATCH: u64 = 20;
const SPANS_PER_TRACE: u64 = 10;
/// Acknowledged batches before the process is killed; writers keep sending meanwhile, so the
/// kill lands in the middle of the load.
const BATCHES_BEFORE_KILL: usize = 200;

fn trace_id(number: u64) -> Vec<u8> {
    let mut id = vec![0xc0; 8];
    id.extend_from_slice(&number.to_be_bytes());
    id
}

fn batch(first_trace: u64) -> ExportTraceServiceRequest {
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let mut spans = Vec::new();
    for trace in first_trace..first_trace + TRACES_PER_BATCH {
        for span in 1..=SPANS_PER_TRACE {
            spans.push(Span {
                trace_id: trace_id(trace),
                span_id: span.to_be_bytes().to_vec(),
                parent_span_id: if span == 1 {
                    Vec::new()
                } else {
                    1u64.to_be_bytes().to_vec()
                },
                name: format!("op-{span}"),
                start_time_unix_nano: now,
                end_time_unix_nano: now + 1_000,
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("crash-test".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

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

    let mut first = start_binary(&with_dir, &[]).await;
    let writer_channel = channel(&first).await;
    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (batches_sender, mut batches_receiver) = watch::channel(0usize);
    let batches_sender = Arc::new(batches_sender);

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = TraceServiceClient::new(writer_channel.clone());
        let acknowledged = Arc::clone(&acknowledged);
        let batches_sender = Arc::clone(&batches_sender);
        writers.push(tokio::spawn(async move {
            // Each writer owns a disjoint range of trace numbers.
            let mut next_trace = 1 + writer * 1_000_000;
            loop {
                let request = batch(next_trace);
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
    let mut reader =
        TraceReaderClient::new(channel(&second).await).max_decoding_message_size(64 << 20);
    let mut spans_by_trace: HashMap<Vec<u8>, u64> = HashMap::new();
    for numbers in acknowledged.chunks(100) {
        let request = GetTracesRequest {
            query: numbers
                .iter()
                .map(|number| GetTraceParams {
                    trace_id: trace_id(*number),
                    ..Default::default()
                })
                .collect(),
        };
        let mut stream = reader.get_traces(request).await.unwrap().into_inner();
        while let Some(chunk) = stream.message().await.unwrap() {
            for span in chunk
                .resource_spans
                .iter()
                .flat_map(|group| &group.scope_spans)
                .flat_map(|scope| &scope.spans)
            {
                *spans_by_trace.entry(span.trace_id.clone()).or_default() += 1;
            }
        }
    }
    let missing: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|number| spans_by_trace.get(&trace_id(*number)) != Some(&SPANS_PER_TRACE))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces are missing or incomplete after kill -9, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&data_dir);
}
