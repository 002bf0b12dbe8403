//! The conformance suite against Cassandra 4.1, Cassandra 5.0 and ScyllaDB, each in a
//! throwaway single-node container (testcontainers), one after another. Where no Docker engine
//! is reachable (as on this project's CI machine), one line per engine says it was skipped and
//! how to run it; a container that fails to start, or a trial that fails, fails the test.
//!
//! `CONFORMANCE_CONTAINER_ENGINES=cassandra-5,scylladb` runs only the engines named.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::SyncRunner as _;
use testcontainers::{Container, GenericImage, ImageExt as _, TestcontainersError};

/// One engine to test.
struct Engine {
    label: &'static str,
    image: &'static str,
    tag: &'static str,
    /// What the node logs once it accepts CQL clients.
    ready: &'static str,
    env: &'static [(&'static str, &'static str)],
    cmd: &'static [&'static str],
}

const ENGINES: &[Engine] = &[
    Engine {
        label: "cassandra-4",
        image: "cassandra",
        tag: "4.1",
        ready: "Starting listening for CQL clients",
        env: &[("MAX_HEAP_SIZE", "768M"), ("HEAP_NEWSIZE", "128M")],
        cmd: &[],
    },
    Engine {
        label: "cassandra-5",
        image: "cassandra",
        tag: "5.0",
        ready: "Starting listening for CQL clients",
        env: &[("MAX_HEAP_SIZE", "768M"), ("HEAP_NEWSIZE", "128M")],
        cmd: &[],
    },
    Engine {
        label: "scylladb",
        image: "scylladb/scylla",
        tag: "2025.1",
        ready: "init - serving",
        env: &[],
        cmd: &["--smp", "1", "--memory", "750M", "--overprovisioned", "1"],
    },
];

/// How long a node may take to start.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(300);

impl Engine {
    fn start(&self) -> Result<Container<GenericImage>, TestcontainersError> {
        let image = GenericImage::new(self.image, self.tag)
            .with_exposed_port(9042.tcp())
            .with_wait_for(WaitFor::message_on_either_std(self.ready));
        let mut request = image
            .with_startup_timeout(STARTUP_TIMEOUT)
            .with_cmd(self.cmd.iter().copied());
        for (name, value) in self.env {
            request = request.with_env_var(*name, *value);
        }
        request.start()
    }

    fn skip(&self, reason: &str) {
        eprintln!(
            "SKIPPED the Cassandra conformance suite on {}:{} (testcontainers): {reason}; to \
             run it: start a Docker engine that can pull the image and run `cargo test -p \
             backend-cassandra --test containers` (or set CONFORMANCE_CASSANDRA_URL to a node)",
            self.image, self.tag
        );
    }
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
        let address = match (container.get_host(), container.get_host_port_ipv4(9042)) {
            (Ok(host), Ok(port)) => format!("{host}:{port}"),
            (host, port) => {
                eprintln!(
                    "{}:{}: no address for port 9042 ({:?}, {:?})",
                    engine.image,
                    engine.tag,
                    host.err(),
                    port.err()
                );
                result = ExitCode::FAILURE;
                continue;
            }
        };
        let name = format!("{}@{}", backend_cassandra::NAME, engine.label);
        if common::run_suite(&name, &address) != ExitCode::SUCCESS {
            result = ExitCode::FAILURE;
        }
    }
    result
}
