//! Real engines in throwaway containers (testcontainers, feature `containers`), one after
//! another, each followed by the caller's suite run. Where no Docker engine is reachable, one
//! line per engine says it was skipped and how to run it; a container that fails to start, or
//! a run that fails, fails the whole.
//!
//! `CONFORMANCE_CONTAINER_ENGINES=label,label` runs only the engines named.

use std::process::ExitCode;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::SyncRunner as _;
use testcontainers::{Container, GenericImage, ImageExt as _, TestcontainersError};

/// One engine to test.
#[derive(Debug, Clone, Copy)]
pub struct ContainerEngine {
    /// Short label, used by `CONFORMANCE_CONTAINER_ENGINES` and in trial names.
    pub label: &'static str,
    /// Image name.
    pub image: &'static str,
    /// Image tag.
    pub tag: &'static str,
    /// The port the suite talks to.
    pub port: u16,
    /// What the engine logs (stdout or stderr) once it takes clients.
    pub ready_log: &'static str,
    /// Environment of the container.
    pub env: &'static [(&'static str, &'static str)],
    /// Arguments of the container's command (none: the image's own).
    pub cmd: &'static [&'static str],
}

impl ContainerEngine {
    fn start(&self, timeout: Duration) -> Result<Container<GenericImage>, TestcontainersError> {
        let image = GenericImage::new(self.image, self.tag)
            .with_exposed_port(self.port.tcp())
            .with_wait_for(WaitFor::message_on_either_std(self.ready_log));
        let mut request = image
            .with_startup_timeout(timeout)
            .with_cmd(self.cmd.iter().copied());
        for (name, value) in self.env {
            request = request.with_env_var(*name, *value);
        }
        request.start()
    }
}

/// Starts each of `engines` (that `CONFORMANCE_CONTAINER_ENGINES` selects) and calls `run`
/// with it and its `host:port`; the container stops when `run` returns. `what` names the
/// suite in skip lines, `how` says how else to run it.
pub fn run_each(
    what: &str,
    how: &str,
    engines: &[ContainerEngine],
    startup_timeout: Duration,
    mut run: impl FnMut(&ContainerEngine, &str) -> ExitCode,
) -> ExitCode {
    let selected: Option<Vec<String>> =
        std::env::var("CONFORMANCE_CONTAINER_ENGINES")
            .ok()
            .map(|labels| {
                labels
                    .split(',')
                    .map(|label| label.trim().to_owned())
                    .collect()
            });
    let engines = engines.iter().filter(|engine| {
        selected
            .as_ref()
            .is_none_or(|labels| labels.iter().any(|label| label == engine.label))
    });
    let skip = |engine: &ContainerEngine, reason: &str| {
        eprintln!(
            "SKIPPED {what} on {}:{} (testcontainers): {reason}; to run it: start a Docker \
             engine that can pull the image, or {how}",
            engine.image, engine.tag
        );
    };
    let mut result = ExitCode::SUCCESS;
    let mut no_docker: Option<String> = None;
    for engine in engines {
        if let Some(reason) = &no_docker {
            skip(engine, reason);
            continue;
        }
        let container = match engine.start(startup_timeout) {
            Ok(container) => container,
            Err(TestcontainersError::Client(error)) => {
                let reason = format!("no Docker engine reachable ({error})");
                skip(engine, &reason);
                no_docker = Some(reason);
                continue;
            }
            Err(error) => {
                eprintln!("{}:{} did not start: {error}", engine.image, engine.tag);
                result = ExitCode::FAILURE;
                continue;
            }
        };
        match (
            container.get_host(),
            container.get_host_port_ipv4(engine.port),
        ) {
            (Ok(host), Ok(port)) => {
                if run(engine, &format!("{host}:{port}")) != ExitCode::SUCCESS {
                    result = ExitCode::FAILURE;
                }
            }
            (host, port) => {
                eprintln!(
                    "{}:{}: no address for port {} ({:?}, {:?})",
                    engine.image,
                    engine.tag,
                    engine.port,
                    host.err(),
                    port.err()
                );
                result = ExitCode::FAILURE;
            }
        }
    }
    result
}
