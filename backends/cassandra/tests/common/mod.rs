//! What the real-node test binaries share: the whole suite, in process, against one cluster.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

use backend_cassandra::CassandraConfig;
use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

static NEXT_KEYSPACE: AtomicU32 = AtomicU32::new(0);

/// The contact points of `url` (`host:port[,…]`, optionally `cassandra://`-prefixed).
pub(crate) fn servers(url: &str) -> Vec<String> {
    url.trim_start_matches("cassandra://")
        .split(',')
        .map(|server| server.trim().to_owned())
        .filter(|server| !server.is_empty())
        .collect()
}

/// A config with a keyspace no other run uses, single-node replication, and short index
/// buckets (so searches cross buckets and merge shards).
pub(crate) fn fresh_config(url: &str) -> CassandraConfig {
    let mut config = CassandraConfig::new(CassandraConfig::DEFAULT_SERVER);
    config.servers = servers(url);
    config.keyspace = format!(
        "conformance_{}_{}",
        std::process::id(),
        NEXT_KEYSPACE.fetch_add(1, Ordering::Relaxed)
    );
    config.bucket = std::time::Duration::from_secs(300);
    config.shards = 4;
    config
}

/// The suite against the cluster at `url`, its trials named `<name>/…`. Nothing is excused;
/// every answer must equal the memory backend's.
pub(crate) fn run_suite(name: &str, url: &str) -> ExitCode {
    let reference = ReferenceBackend::new("memory", || async {
        Ok(backend_memory::open(backend_memory::MemoryConfig::default()))
    });
    let url = url.to_owned();
    let declared = backend_cassandra::capabilities(&fresh_config(&url));
    run_in_process(
        name,
        move || {
            let config = fresh_config(&url);
            async move { Ok(backend_cassandra::open(config).await?) }
        },
        SuiteOptions::declared(declared).with_reference(reference),
    )
}
