//! Starting the real `jaeger-remote-storage` binary from tests.
// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span};
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use jaeger_remote_proto::storage::v2::{GetTraceParams, GetTracesRequest};
use remote_storage_core::testing::otlp_resource;
use tonic::transport::Channel;

/// Traces in one [`batch`].
pub(crate) const TRACES_PER_BATCH: u64 = 20;
/// Spans of each trace in a [`batch`].
pub(crate) const SPANS_PER_TRACE: u64 = 10;

/// The binary under test.
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_jaeger-remote-storage");

/// Kills the child if the test fails before it exits by itself.
pub(crate) struct ChildGuard(pub(crate) Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends SIGTERM and waits up to `limit` for the process to exit; returns its status and how
/// long it took, or `None` (after killing it) when it did not exit in time.
pub(crate) async fn terminate(
    guard: &mut ChildGuard,
    limit: Duration,
) -> Option<(ExitStatus, Duration)> {
    let mut child = guard.0.take().expect("the process is running");
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "kill -TERM {pid}");
    let started = Instant::now();
    // Waiting blocks; off the runtime, so clients the test still holds keep working.
    tokio::task::spawn_blocking(move || {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap()
}

/// Pulls `"key":"value"` out of a JSON log line.
pub(crate) fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let marker = format!("\"{key}\":\"");
    let start = line.find(&marker)? + marker.len();
    let length = line[start..].find('"')?;
    Some(&line[start..start + length])
}

/// A started server process, its gRPC address and a task collecting everything it logs.
pub(crate) struct Started {
    /// The process.
    pub(crate) guard: ChildGuard,
    /// Where its gRPC listener is bound.
    pub(crate) grpc_addr: SocketAddr,
    /// Where its admin HTTP listener is bound, when it has one.
    pub(crate) admin_addr: Option<SocketAddr>,
    /// Every stdout line, returned when the process exits.
    pub(crate) log_lines: tokio::task::JoinHandle<Vec<String>>,
}

/// Spawns the binary with JSON logs on stdout and waits for its "started" line, which carries
/// the bound addresses (listeners on port 0 are allowed).
pub(crate) async fn start_binary(arguments: &[&str], environment: &[(&str, &str)]) -> Started {
    let mut child = Command::new(BINARY)
        .args(arguments)
        .envs(environment.iter().copied())
        .env("JAEGER_REMOTE_STORAGE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(Some(child));

    // Keep reading after the "started" line so the child never blocks on a full pipe.
    let (addr_sender, addr_receiver) = tokio::sync::oneshot::channel();
    let log_lines = tokio::task::spawn_blocking(move || {
        let mut addr_sender = Some(addr_sender);
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("jaeger-remote-storage started")
                && let Some(sender) = addr_sender.take()
            {
                let grpc_addr: SocketAddr =
                    json_field(&line, "grpc_addr").unwrap().parse().unwrap();
                // `off` when there is no admin listener.
                let admin_addr = json_field(&line, "admin_addr").and_then(|addr| addr.parse().ok());
                let _ = sender.send((grpc_addr, admin_addr));
            }
            lines.push(line);
        }
        lines
    });
    let (grpc_addr, admin_addr) = tokio::time::timeout(Duration::from_secs(60), addr_receiver)
        .await
        .expect("server started within 60 s")
        .expect("started line logged");
    Started {
        guard,
        grpc_addr,
        admin_addr,
        log_lines,
    }
}

/// The trace ID of test trace `number`.
pub(crate) fn trace_id(number: u64) -> Vec<u8> {
    let mut id = vec![0xc0; 8];
    id.extend_from_slice(&number.to_be_bytes());
    id
}

/// An Export of `TRACES_PER_BATCH` traces of `SPANS_PER_TRACE` spans each, numbered from
/// `first_trace`, all of service `service`.
pub(crate) fn batch(first_trace: u64, service: &str) -> ExportTraceServiceRequest {
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
            resource: Some(otlp_resource(service)),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

/// Reads the given test traces back and counts the spans of each.
pub(crate) async fn span_counts(channel: Channel, numbers: &[u64]) -> HashMap<Vec<u8>, u64> {
    let mut reader = TraceReaderClient::new(channel).max_decoding_message_size(64 << 20);
    let mut spans_by_trace: HashMap<Vec<u8>, u64> = HashMap::new();
    for group in numbers.chunks(100) {
        let request = GetTracesRequest {
            query: group
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
    spans_by_trace
}

/// The acknowledged traces that are not readable with all their spans.
pub(crate) async fn missing_traces(channel: Channel, acknowledged: &[u64]) -> Vec<u64> {
    let counts = span_counts(channel, acknowledged).await;
    acknowledged
        .iter()
        .copied()
        .filter(|number| counts.get(&trace_id(*number)) != Some(&SPANS_PER_TRACE))
        .collect()
}
