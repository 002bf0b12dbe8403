//! The conformance suite against every supported engine line in a throwaway container
//! (testcontainers): Elasticsearch 7.17, 8 and 9, OpenSearch 1.3, 2 and 3, one after another,
//! each single-node with security off, each followed by the backend checks. Where no Docker
//! engine is reachable (as on this project's CI machine, which has no Docker), one line per
//! engine says it was skipped and how to run it; a container that fails to start, or a
//! trial that fails, fails the test.
//!
//! `CONFORMANCE_CONTAINER_ENGINES=es-8,os-3` runs only the engines named (labels below).
//! The images come from Docker Hub and docker.elastic.co, so the first run pulls about 4 GB.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::SyncRunner as _;
use testcontainers::{Container, GenericImage, ImageExt as _, TestcontainersError};

/// One engine version to test.
struct Engine {
    /// Short label, also the suite's trial prefix (`elasticsearch@<label>/…`).
    label: &'static str,
    image: &'static str,
    tag: &'static str,
    /// Settings for a single node without security.
    env: &'static [(&'static str, &'static str)],
}

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

const ENGINES: &[Engine] = &[
    Engine {
        label: "es-7",
        image: "docker.elastic.co/elasticsearch/elasticsearch",
        tag: "7.17.28",
        env: ELASTICSEARCH,
    },
    Engine {
        label: "es-8",
        image: "docker.elastic.co/elasticsearch/elasticsearch",
        tag: "8.19.2",
        env: ELASTICSEARCH,
    },
    Engine {
        label: "es-9",
        image: "docker.elastic.co/elasticsearch/elasticsearch",
        tag: "9.1.2",
        env: ELASTICSEARCH,
    },
    Engine {
        label: "os-1",
        image: "opensearchproject/opensearch",
        tag: "1.3.20",
        env: OPENSEARCH,
    },
    Engine {
        label: "os-2",
        image: "opensearchproject/opensearch",
        tag: "2.19.3",
        env: OPENSEARCH,
    },
    Engine {
        label: "os-3",
        image: "opensearchproject/opensearch",
        tag: "3.2.0",
        env: OPENSEARCH,
    },
];

/// How long an engine may take to start (JVM start, first-time setup).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(240);

impl Engine {
    fn start(&self) -> Result<Container<GenericImage>, TestcontainersError> {
        // Both engines log "started" once the node is up; `wait_until_healthy` then waits for
        // the cluster itself.
        let image = GenericImage::new(self.image, self.tag)
            .with_exposed_port(9200.tcp())
            .with_wait_for(WaitFor::message_on_stdout("started"));
        let mut request = image.with_startup_timeout(STARTUP_TIMEOUT);
        for (name, value) in self.env {
            request = request.with_env_var(*name, *value);
        }
        request.start()
    }

    fn skip(&self, reason: &str) {
        eprintln!(
            "SKIPPED the Elasticsearch/OpenSearch conformance suite on {}:{} (testcontainers): \
             {reason}; to run it: start a Docker engine that can pull the image and run \
             `cargo test -p backend-elasticsearch --test containers` (or point \
             CONFORMANCE_ELASTICSEARCH_URL / CONFORMANCE_OPENSEARCH_URL at a cluster)",
            self.image, self.tag
        );
    }
}

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
    let selected: Option<Vec<String>> =
        std::env::var("CONFORMANCE_CONTAINER_ENGINES")
            .ok()
            .map(|labels| {
                labels
                    .split(',')
                    .map(|label| label.trim().to_owned())
                    .collect()
            });
    let engines = ENGINES.iter().filter(|engine| {
        selected
            .as_ref()
            .is_none_or(|labels| labels.iter().any(|label| label == engine.label))
    });
    let mut result = ExitCode::SUCCESS;
    let mut no_docker: Option<String> = None;
    for engine in engines {
        if let Some(reason) = &no_docker {
            engine.skip(reason);
            continue;
        }
        let container = match engine.start() {
            Ok(container) => container,
            Err(TestcontainersError::Client(error)) => {
                let reason = format!("no Docker engine reachable ({error})");
                engine.skip(&reason);
                no_docker = Some(reason);
                continue;
            }
            Err(error) => {
                eprintln!("{}:{} did not start: {error}", engine.image, engine.tag);
                result = ExitCode::FAILURE;
                continue;
            }
        };
        let url = match (container.get_host(), container.get_host_port_ipv4(9200)) {
            (Ok(host), Ok(port)) => format!("http://{host}:{port}"),
            (host, port) => {
                eprintln!(
                    "{}:{}: no address for port 9200 ({:?}, {:?})",
                    engine.image,
                    engine.tag,
                    host.err(),
                    port.err()
                );
                result = ExitCode::FAILURE;
                continue;
            }
        };
        if let Err(error) = wait_until_healthy(&url) {
            eprintln!(
                "{}:{} never became healthy: {error}",
                engine.image, engine.tag
            );
            result = ExitCode::FAILURE;
            continue;
        }
        let name = format!("{}@{}", backend_elasticsearch::NAME, engine.label);
        if common::run_suite(&name, url) != ExitCode::SUCCESS {
            result = ExitCode::FAILURE;
        }
    }
    result
}
