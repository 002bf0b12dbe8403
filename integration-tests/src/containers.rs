//! Real engines in throwaway containers (testcontainers), one after another, each followed by
//! the caller's suite run. Where no Docker engine is reachable, one line per engine says it was
//! skipped and how to run it; a container that fails to start, or a run that fails, fails the
//! whole.
//!
//! Starting containers needs the `containers` feature (the backends that use it forward theirs
//! to it). Docker's client and its API types are a large part of a clean build, and no CI
//! machine of this project has a Docker engine, so a build without the feature only prints the
//! skip lines, saying which feature to turn on.
//!
//! `CONFORMANCE_CONTAINER_ENGINES=label,label` runs only the engines named.

use std::process::ExitCode;
use std::time::Duration;

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

#[cfg(feature = "containers")]
impl ContainerEngine {
    fn start(
        &self,
        timeout: Duration,
    ) -> Result<
        testcontainers::Container<testcontainers::GenericImage>,
        testcontainers::TestcontainersError,
    > {
        use testcontainers::core::{IntoContainerPort as _, WaitFor};
        use testcontainers::runners::SyncRunner as _;
        use testcontainers::{GenericImage, ImageExt as _};

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
    run: impl FnMut(&ContainerEngine, &str) -> ExitCode,
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
    let skip = |engine: &ContainerEngine, reason: &str, remedy: &str| {
        eprintln!(
            "SKIPPED {what} on {}:{} (testcontainers): {reason}; to run it: {remedy}, or {how}",
            engine.image, engine.tag
        );
    };
    #[cfg(not(feature = "containers"))]
    {
        let _ = (startup_timeout, run);
        for engine in engines {
            skip(
                engine,
                "this test was built without the `containers` feature",
                "add `--features containers` and start a Docker engine that can pull the image",
            );
        }
        ExitCode::SUCCESS
    }
    #[cfg(feature = "containers")]
    {
        run_started(engines, startup_timeout, run, |engine, reason| {
            skip(
                engine,
                reason,
                "start a Docker engine that can pull the image",
            );
        })
    }
}

/// Starts each engine in turn and runs the suite on it; after the first engine that finds no
/// Docker engine, the rest are skipped for the same reason.
#[cfg(feature = "containers")]
fn run_started<'a>(
    engines: impl Iterator<Item = &'a ContainerEngine>,
    startup_timeout: Duration,
    mut run: impl FnMut(&ContainerEngine, &str) -> ExitCode,
    skip: impl Fn(&ContainerEngine, &str),
) -> ExitCode {
    use testcontainers::TestcontainersError;

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
