//! The store's logic (rows, planner, search walk, trace reads) through the whole conformance
//! suite in process, over `ModelTables`: an in-memory model of the tables with their
//! partition and clustering semantics. This proves the logic, not Cassandra: the trials are
//! named `cassandra-logic/…`, and the suite against a real node is a separate run.

use std::process::ExitCode;
use std::sync::Arc;

use backend_cassandra::model::ModelTables;
use backend_cassandra::{Buckets, CAPABILITIES, CassandraConfig, CassandraStore};
use remote_storage_core::Backend;
use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

fn main() -> ExitCode {
    let reference = ReferenceBackend::new("memory", || async {
        Ok(backend_memory::open(backend_memory::MemoryConfig::default()))
    });
    run_in_process(
        "cassandra-logic",
        || async {
            // Small buckets and several shards, so searches cross buckets and merge shards.
            let store = CassandraStore::new(
                Arc::new(ModelTables::default()),
                Buckets::new(60, 4),
                CassandraConfig::DEFAULT_RETENTION,
            );
            Ok(Backend::from_store(
                backend_cassandra::NAME,
                CAPABILITIES,
                Arc::new(store),
            ))
        },
        SuiteOptions::declared(CAPABILITIES).with_reference(reference),
    )
}
