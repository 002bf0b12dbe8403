//! The conformance suite against every supported engine line in a throwaway single-node
//! container with security off (`storage_conformance::containers`): Elasticsearch 7.17, 8 and
//! 9, OpenSearch 1.3, 2 and 3, one after another, each followed by the backend checks. Without
//! a reachable Docker engine (as on this project's CI machine) one line per engine says it was
//! skipped. `CONFORMANCE_CONTAINER_ENGINES=es-8,os-3` picks some. The images come from Docker
//! Hub and docker.elastic.co, so the first run pulls about 4 GB.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use storage_conformance::containers::{ContainerEngine, run_each};

const ELASTICSEARCH: &[(&str, &str)] = &[
    ("discovery.type", "single-node"),
    ("xpack.security.enabled", "false"),
    ("ES_JAVA_OPTS", "-Xms512m -Xmx512m"),
];

const OPENSEARCH: &[(&str, &str)] = &[
    ("discovery.type", "single-node"),
    ("DISABLE_SECURITY_PLUGIN", "true"),
    ("DISABLE_INSTALL_DEMO_CONFIG", "true"),
    ("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m"),
];

/// An engine line: both engines log "started" once the node is up; `wait_until_healthy` then
/// waits for the cluster itself.
const fn engine(
    label: &'static str,
    image: &'static str,
    tag: &'static str,
    env: &'static [(&'static str, &'static str)],
) -> ContainerEngine {
    ContainerEngine {
        label,
        image,
        tag,
        port: 9200,
        ready_log: "started",
        env,
        cmd: &[],
    }
}

const ELASTIC: &str = "docker.elastic.co/elasticsearch/elasticsearch";

const ENGINES: &[ContainerEngine] = &[
    engine("es-7", ELASTIC, "7.17.28", ELASTICSEARCH),
    engine("es-8", ELASTIC, "8.19.2", ELASTICSEARCH),
    engine("es-9", ELASTIC, "9.1.2", ELASTICSEARCH),
    engine("os-1", "opensearchproject/opensearch", "1.3.20", OPENSEARCH),
    engine("os-2", "opensearchproject/opensearch", "2.19.3", OPENSEARCH),
    engine("os-3", "opensearchproject/opensearch", "3.2.0", OPENSEARCH),
];

/// How long an engine may take to start (JVM start, first-time setup).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(240);

/// Waits until the cluster at `url` reports at least yellow health (its readiness check).
fn wait_until_healthy(url: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let health = format!("{url}/_cluster/health?wait_for_status=yellow&timeout=10s");
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticker.tick().await;
            match client.get(&health).send().await {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) if tokio::time::Instant::now() > deadline => {
                    return Err(format!("cluster health answers {}", answer.status()));
                }
                Err(error) if tokio::time::Instant::now() > deadline => {
                    return Err(format!("cluster unreachable: {error}"));
                }
                _ => {}
            }
        }
    })
}

fn main() -> ExitCode {
    run_each(
        "the Elasticsearch/OpenSearch conformance suite",
        "point CONFORMANCE_ELASTICSEARCH_URL / CONFORMANCE_OPENSEARCH_URL at a cluster and run \
         `cargo test -p backend-elasticsearch --test conformance`",
        ENGINES,
        STARTUP_TIMEOUT,
        |engine, address| {
            let url = format!("http://{address}");
            if let Err(error) = wait_until_healthy(&url) {
                eprintln!(
                    "{}:{} never became healthy: {error}",
                    engine.image, engine.tag
                );
                return ExitCode::FAILURE;
            }
            let name = format!("{}@{}", backend_elasticsearch::NAME, engine.label);
            common::run_suite(&name, url)
        },
    )
}
