//! The conformance suite against Cassandra 4.1, Cassandra 5.0 and ScyllaDB, each in a
//! throwaway single-node container (`storage_conformance::containers`), one after another.
//! Without a reachable Docker engine (as on this project's CI machine) one line per engine
//! says it was skipped. `CONFORMANCE_CONTAINER_ENGINES=cassandra-5,scylladb` picks some.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use storage_conformance::containers::{ContainerEngine, run_each};

/// What Cassandra logs once it accepts CQL clients.
const CASSANDRA_READY: &str = "Starting listening for CQL clients";
/// A small heap, so a laptop runs it.
const CASSANDRA_ENV: &[(&str, &str)] = &[("MAX_HEAP_SIZE", "768M"), ("HEAP_NEWSIZE", "128M")];

const ENGINES: &[ContainerEngine] = &[
    ContainerEngine {
        label: "cassandra-4",
        image: "cassandra",
        tag: "4.1",
        port: 9042,
        ready_log: CASSANDRA_READY,
        env: CASSANDRA_ENV,
        cmd: &[],
    },
    ContainerEngine {
        label: "cassandra-5",
        image: "cassandra",
        tag: "5.0",
        port: 9042,
        ready_log: CASSANDRA_READY,
        env: CASSANDRA_ENV,
        cmd: &[],
    },
    ContainerEngine {
        label: "scylladb",
        image: "scylladb/scylla",
        tag: "2025.1",
        port: 9042,
        ready_log: "init - serving",
        env: &[],
        cmd: &["--smp", "1", "--memory", "750M", "--overprovisioned", "1"],
    },
];

fn main() -> ExitCode {
    run_each(
        "the Cassandra conformance suite",
        "set CONFORMANCE_CASSANDRA_URL to a node and run `cargo test -p backend-cassandra --test \
         conformance`",
        ENGINES,
        Duration::from_secs(300),
        |engine, address| {
            let name = format!("{}@{}", backend_cassandra::NAME, engine.label);
            common::run_suite(&name, address)
        },
    )
}
