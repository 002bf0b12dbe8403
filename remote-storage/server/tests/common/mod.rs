//! Starting the real `jaeger-remote-storage` binary from tests.
// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
                let _ = sender.send(grpc_addr);
            }
            lines.push(line);
        }
        lines
    });
    let grpc_addr = tokio::time::timeout(Duration::from_secs(60), addr_receiver)
        .await
        .expect("server started within 60 s")
        .expect("started line logged");
    Started {
        guard,
        grpc_addr,
        log_lines,
    }
}
