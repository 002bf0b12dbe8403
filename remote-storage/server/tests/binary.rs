//! Tests of the `jaeger-remote-storage` binary itself: help text, environment variables, and a
//! full start → serve → SIGTERM → clean exit cycle.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod common;

use common::{BINARY, Started, start_binary};

fn run(arguments: &[&str], environment: &[(&str, &str)]) -> Output {
    Command::new(BINARY)
        .args(arguments)
        .envs(environment.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_flag_with_its_env_var() {
    let output = run(&["--help"], &[]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, env) in [
        ("--backend", "JAEGER_REMOTE_STORAGE_BACKEND"),
        ("--grpc-addr", "JAEGER_REMOTE_STORAGE_GRPC_ADDR"),
        ("--writer-addr", "JAEGER_REMOTE_STORAGE_WRITER_ADDR"),
        ("--admin-addr", "JAEGER_REMOTE_STORAGE_ADMIN_ADDR"),
        ("--purger-addr", "JAEGER_REMOTE_STORAGE_PURGER_ADDR"),
        (
            "--multi-tenancy.enabled",
            "JAEGER_REMOTE_STORAGE_MULTI_TENANCY_ENABLED",
        ),
        (
            "--multi-tenancy.header",
            "JAEGER_REMOTE_STORAGE_MULTI_TENANCY_HEADER",
        ),
        (
            "--multi-tenancy.tenants",
            "JAEGER_REMOTE_STORAGE_MULTI_TENANCY_TENANTS",
        ),
        (
            "--max-recv-msg-size",
            "JAEGER_REMOTE_STORAGE_MAX_RECV_MSG_SIZE",
        ),
        ("--max-chunk-spans", "JAEGER_REMOTE_STORAGE_MAX_CHUNK_SPANS"),
        ("--max-chunk-bytes", "JAEGER_REMOTE_STORAGE_MAX_CHUNK_BYTES"),
        (
            "--default-search-depth",
            "JAEGER_REMOTE_STORAGE_DEFAULT_SEARCH_DEPTH",
        ),
        (
            "--max-search-depth",
            "JAEGER_REMOTE_STORAGE_MAX_SEARCH_DEPTH",
        ),
        (
            "--memory.max-traces",
            "JAEGER_REMOTE_STORAGE_MEMORY_MAX_TRACES",
        ),
        ("--lsm.data-dir", "JAEGER_REMOTE_STORAGE_LSM_DATA_DIR"),
        ("--lsm.ephemeral", "JAEGER_REMOTE_STORAGE_LSM_EPHEMERAL"),
        ("--lsm.retention", "JAEGER_REMOTE_STORAGE_LSM_RETENTION"),
        ("--lsm.sync", "JAEGER_REMOTE_STORAGE_LSM_SYNC"),
        ("--postgres.url", "JAEGER_REMOTE_STORAGE_POSTGRES_URL"),
        ("--postgres.schema", "JAEGER_REMOTE_STORAGE_POSTGRES_SCHEMA"),
        (
            "--postgres.retention",
            "JAEGER_REMOTE_STORAGE_POSTGRES_RETENTION",
        ),
        (
            "--postgres.skip-migrations",
            "JAEGER_REMOTE_STORAGE_POSTGRES_SKIP_MIGRATIONS",
        ),
        ("--log-format", "JAEGER_REMOTE_STORAGE_LOG_FORMAT"),
        ("--log-level", "JAEGER_REMOTE_STORAGE_LOG_LEVEL"),
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
        assert!(help.contains(env), "{env} missing from help:\n{help}");
    }
}

#[test]
fn version_names_the_revision_and_the_compiled_in_backends() {
    let output = run(&["--version"], &[]);
    assert!(output.status.success());
    let version = String::from_utf8(output.stdout).unwrap();
    assert!(
        version.starts_with(&format!(
            "jaeger-remote-storage {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
    assert!(version.contains("(git "), "{version}");
    // This test binary is built with the default features: every backend.
    for backend in [
        "memory",
        "lsm",
        "postgres",
        "elasticsearch",
        "cassandra",
        "discard",
    ] {
        assert!(version.contains(backend), "{backend} missing: {version}");
    }
}

#[test]
fn a_config_file_configures_the_binary_with_environment_and_flags_over_it() {
    let path = std::env::temp_dir().join(format!("jrs-binary-config-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "grpc-addr: 127.0.0.1:7001\nmax-chunk-spans: 11\nmemory:\n  max-traces: 42\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let output = run(
        &["--config", config, "--max-chunk-spans=12", "--print-config"],
        &[("JAEGER_REMOTE_STORAGE_GRPC_ADDR", "127.0.0.1:7002")],
    );
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains("grpc-addr: \"127.0.0.1:7002\"  # environment"),
        "{printed}"
    );
    assert!(
        printed.contains("max-chunk-spans: \"12\"  # flag"),
        "{printed}"
    );
    assert!(printed.contains("max-traces: \"42\"  # file"), "{printed}");

    std::fs::write(&path, "grpc-adr: 127.0.0.1:7001\n").unwrap();
    let output = run(&["--config", config], &[]);
    assert!(!output.status.success());
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(error.contains(":1: unknown setting `grpc-adr`"), "{error}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn invalid_env_values_are_refused_naming_the_flag() {
    let output = run(&[], &[("JAEGER_REMOTE_STORAGE_MAX_CHUNK_SPANS", "0")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--max-chunk-spans"), "{stderr}");
}

#[cfg(feature = "backend-cassandra")]
#[test]
fn cassandra_with_nothing_listening_fails_fast_naming_the_address() {
    let started = Instant::now();
    let output = run(
        &[
            "--backend=cassandra",
            "--cassandra.servers=127.0.0.1:1",
            "--cassandra.connect-timeout=2s",
            "--grpc-addr=127.0.0.1:0",
            "--admin-addr=127.0.0.1:0",
        ],
        &[],
    );
    assert!(!output.status.success());
    // Connection refused at once; the bound is twice the connect timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        format!("{stderr}{stdout}").contains("cannot connect to 127.0.0.1:1"),
        "{stderr}{stdout}"
    );
}

#[cfg(feature = "backend-cassandra")]
#[test]
fn the_cassandra_schema_prints_without_a_cluster() {
    let output = run(
        &[
            "--backend=cassandra",
            "--cassandra.keyspace=traces",
            "--print-schema",
        ],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(
        script.starts_with("CREATE KEYSPACE IF NOT EXISTS traces"),
        "{script}"
    );
    assert!(script.contains("CREATE TABLE IF NOT EXISTS traces.tag_index"));
    let memory = run(&["--backend=memory", "--print-schema"], &[]);
    assert!(!memory.status.success(), "memory has no schema to print");
}

#[tokio::test]
async fn the_binary_serves_from_env_config_and_exits_cleanly_on_sigterm() {
    let Started {
        mut guard,
        grpc_addr,
        log_lines: log_reader,
        ..
    } = start_binary(
        &[],
        &[
            ("JAEGER_REMOTE_STORAGE_GRPC_ADDR", "127.0.0.1:0"),
            ("JAEGER_REMOTE_STORAGE_ADMIN_ADDR", "127.0.0.1:0"),
            ("JAEGER_REMOTE_STORAGE_MULTI_TENANCY_ENABLED", "true"),
            ("JAEGER_REMOTE_STORAGE_MEMORY_MAX_TRACES", "10"),
        ],
    )
    .await;

    {
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let health = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(health.status(), ServingStatus::Serving);
        // Tenancy came from the environment: no tenant header, no answer.
        let refused = TraceReaderClient::new(channel)
            .get_services(GetServicesRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        // Clients are dropped here, before the shutdown.
    }

    let mut child = guard.0.take().unwrap();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status}");
    let lines = log_reader.await.unwrap();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("jaeger-remote-storage stopped")),
        "{lines:#?}"
    );
}
