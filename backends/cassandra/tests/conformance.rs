//! The conformance suite against a real Cassandra or ScyllaDB node named by
//! `CONFORMANCE_CASSANDRA_URL` (`host:port[,host:port…]`, optionally `cassandra://`-prefixed),
//! in process, followed by the backend checks (`cassandra/Backend/<Check>`). Each fixture set
//! and each check gets its own keyspace (single-node replication). Without the variable it
//! prints one line saying what was skipped; `tests/containers.rs` runs the same suite on
//! Cassandra 4.1 and 5.0 and ScyllaDB in throwaway containers where Docker is reachable.

mod common;

use std::process::ExitCode;

use storage_conformance::environment::external_url;

fn main() -> ExitCode {
    let Some(url) = external_url(
        "CONFORMANCE_CASSANDRA_URL",
        "the Cassandra conformance suite",
        "export CONFORMANCE_CASSANDRA_URL=HOST:9042 (a Cassandra 4/5 or ScyllaDB node the suite \
         may create `conformance_*` keyspaces in), or run `cargo test -p backend-cassandra \
         --features containers --test containers` where Docker is reachable",
    ) else {
        return ExitCode::SUCCESS;
    };
    common::run_suite(backend_cassandra::NAME, &url)
}
