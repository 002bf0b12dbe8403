//! TLS on every listener, mutual TLS, and certificate rotation without restart.

use std::time::{Duration, Instant};

use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span};
use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use remote_storage::ServerConfig;
use remote_storage_core::testing::otlp_resource;
use tonic_health::pb::health_check_response::ServingStatus;

use super::support::{
    Authority, GRPC_ALPN, HTTP1_ALPN, client_config, handshake, health, https_request,
    plaintext_channel, replace_file, served_certificate, start, tls_channel, write_tls_files,
};

/// How long a reload may take to show before a test gives up.
const RELOAD_DEADLINE: Duration = Duration::from_secs(20);

fn one_span_export(service: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(otlp_resource(service)),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![1; 8],
                    name: "op".into(),
                    start_time_unix_nano: 1_000_000_000_000,
                    end_time_unix_nano: 1_000_000_001_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

#[tokio::test]
async fn tls_listeners_serve_tls_clients_and_refuse_plaintext() {
    let directory = tempfile::tempdir().unwrap();
    let ca = Authority::new("test CA");
    let files = write_tls_files(directory.path(), "grpc", &ca.server("server"), None);
    let mut config = ServerConfig::for_tests();
    config.security.grpc_tls = Some(files);
    let server = start(config).await;
    let writer_addr = server.writer_addr.unwrap();
    let client = client_config(&ca, None, GRPC_ALPN);

    // Writes on the writer listener (which inherits the gRPC listener's TLS), reads on the
    // main one, both over TLS.
    let mut writer =
        TraceServiceClient::new(tls_channel(writer_addr, client.clone()).await.unwrap());
    writer.export(one_span_export("over-tls")).await.unwrap();
    let mut reader =
        TraceReaderClient::new(tls_channel(server.grpc_addr, client.clone()).await.unwrap());
    let services = reader
        .get_services(GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services, ["over-tls"]);

    // gRPC listeners negotiate HTTP/2 only.
    let both = client_config(&ca, None, &[b"http/1.1", b"h2"]);
    let stream = handshake(server.grpc_addr, both).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // A connection that never speaks HTTP/2 would hold up the graceful stop.
    drop(stream);

    // A client that connects and never starts its handshake delays nobody else (handshakes
    // run in their own tasks; this one would only end at the 10 s handshake timeout).
    let silent = tokio::net::TcpStream::connect(server.grpc_addr)
        .await
        .unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        health(tls_channel(server.grpc_addr, client.clone()).await).await
    })
    .await;
    assert_eq!(served, Ok(Ok(ServingStatus::Serving)));
    drop(silent);

    for addr in [server.grpc_addr, writer_addr] {
        let refused = health(plaintext_channel(addr).await).await;
        assert!(
            refused.is_err(),
            "plaintext client served on {addr}: {refused:?}"
        );
        assert_eq!(
            health(tls_channel(addr, client.clone()).await).await,
            Ok(ServingStatus::Serving)
        );
    }
    let grpc_addr = server.grpc_addr;
    server.stop().await.unwrap();
    // Stopping closes the TLS listeners' sockets too.
    assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err());
    assert!(tokio::net::TcpStream::connect(writer_addr).await.is_err());
}

#[tokio::test]
async fn mutual_tls_accepts_only_certificates_from_the_client_ca() {
    let directory = tempfile::tempdir().unwrap();
    let server_ca = Authority::new("server CA");
    let client_ca = Authority::new("client CA");
    let stranger_ca = Authority::new("another CA");
    let files = write_tls_files(
        directory.path(),
        "grpc",
        &server_ca.server("server"),
        Some(&client_ca),
    );
    let mut config = ServerConfig::for_tests();
    config.security.grpc_tls = Some(files);
    let server = start(config).await;
    let addr = server.grpc_addr;

    let trusted = client_ca.client("jaeger-query");
    let accepted = client_config(&server_ca, Some(&trusted), GRPC_ALPN);
    assert_eq!(
        health(tls_channel(addr, accepted).await).await,
        Ok(ServingStatus::Serving)
    );

    let anonymous = client_config(&server_ca, None, GRPC_ALPN);
    let refused = health(tls_channel(addr, anonymous).await).await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");

    let stranger = stranger_ca.client("jaeger-query");
    let foreign = client_config(&server_ca, Some(&stranger), GRPC_ALPN);
    let refused = health(tls_channel(addr, foreign).await).await;
    assert!(refused.is_err(), "certificate from another CA: {refused:?}");

    server.stop().await.unwrap();
}

/// Polls until new connections to `addr` get `expected`, or fails at the deadline.
async fn wait_for_served_certificate(
    addr: std::net::SocketAddr,
    client: std::sync::Arc<rustls::ClientConfig>,
    expected: &rustls::pki_types::CertificateDer<'static>,
) {
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        let served = served_certificate(addr, client.clone()).await.unwrap();
        if &served == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within {RELOAD_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_replaced_certificate_is_served_to_new_connections_without_restart() {
    let directory = tempfile::tempdir().unwrap();
    let ca = Authority::new("test CA");
    let first = ca.server("first");
    let files = write_tls_files(directory.path(), "grpc", &first, None);
    let mut config = ServerConfig::for_tests();
    config.security.grpc_tls = Some(files.clone());
    config.security.reload_interval = Duration::from_millis(50);
    let server = start(config).await;
    let client = client_config(&ca, None, GRPC_ALPN);
    assert_eq!(
        served_certificate(server.grpc_addr, client.clone())
            .await
            .unwrap(),
        first.cert_der
    );
    let open_channel = tls_channel(server.grpc_addr, client.clone()).await.unwrap();

    let second = ca.server("second");
    replace_file(&files.key, &second.key_pem);
    replace_file(&files.cert, &second.cert_pem);
    wait_for_served_certificate(server.grpc_addr, client.clone(), &second.cert_der).await;

    // Connections opened before the rotation keep working.
    assert_eq!(health(Ok(open_channel)).await, Ok(ServingStatus::Serving));
    // A broken file is not taken: the next good one is.
    replace_file(&files.cert, "not a certificate");
    let third = ca.server("third");
    replace_file(&files.key, &third.key_pem);
    replace_file(&files.cert, &third.cert_pem);
    wait_for_served_certificate(server.grpc_addr, client.clone(), &third.cert_der).await;
    server.stop().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_certificates_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let ca = Authority::new("test CA");
    let files = write_tls_files(directory.path(), "grpc", &ca.server("first"), None);
    let mut config = ServerConfig::for_tests();
    config.security.grpc_tls = Some(files.clone());
    // Far longer than the test: only SIGHUP can trigger the reload.
    config.security.reload_interval = Duration::from_secs(3600);
    let server = start(config).await;
    let client = client_config(&ca, None, GRPC_ALPN);

    let second = ca.server("second");
    replace_file(&files.key, &second.key_pem);
    replace_file(&files.cert, &second.cert_pem);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_served_certificate(server.grpc_addr, client, &second.cert_der).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn admin_and_purger_listeners_serve_https() {
    let directory = tempfile::tempdir().unwrap();
    let ca = Authority::new("test CA");
    let files = write_tls_files(directory.path(), "admin", &ca.server("admin"), None);
    let mut config = ServerConfig::for_tests();
    config.security.admin_tls = Some(files);
    let server = start(config).await;
    let admin_addr = server.admin_addr.unwrap();
    let purger_addr = server.purger_addr.unwrap();
    let http1 = client_config(&ca, None, HTTP1_ALPN);

    let (status, body) = https_request(admin_addr, http1.clone(), "GET", "/", None)
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "ready"));
    let (status, body) = https_request(purger_addr, http1.clone(), "POST", "/purge", None)
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "purged"));

    // HTTP listeners offer HTTP/2 as well.
    let h2_first = client_config(&ca, None, &[b"h2", b"http/1.1"]);
    let stream = handshake(admin_addr, h2_first).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    // Plain HTTP gets no answer.
    let _ = rustls::crypto::ring::default_provider().install_default();
    for addr in [admin_addr, purger_addr] {
        let plain = reqwest::Client::new()
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        assert!(plain.is_err(), "plain HTTP served on {addr}: {plain:?}");
    }
    // The gRPC listener stays plaintext: each listener has its own flags.
    assert_eq!(
        health(plaintext_channel(server.grpc_addr).await).await,
        Ok(ServingStatus::Serving)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unusable_tls_files_fail_the_start_naming_the_file_and_flag() {
    let directory = tempfile::tempdir().unwrap();
    let ca = Authority::new("test CA");
    let good = write_tls_files(directory.path(), "good", &ca.server("good"), Some(&ca));
    let other = write_tls_files(directory.path(), "other", &ca.server("other"), None);
    let garbage = directory.path().join("garbage.pem");
    replace_file(&garbage, "this is not PEM\n");
    let missing = directory.path().join("missing.pem");

    let mut cases = Vec::new();
    let mut files = good.clone();
    files.cert = missing.clone();
    cases.push((files, "--grpc.tls.cert", missing.clone()));
    let mut files = good.clone();
    files.cert = garbage.clone();
    cases.push((files, "--grpc.tls.cert", garbage.clone()));
    let mut files = good.clone();
    files.key = garbage.clone();
    cases.push((files, "--grpc.tls.key", garbage.clone()));
    let mut files = good.clone();
    files.key = other.key.clone();
    cases.push((files, "--grpc.tls.key", other.key.clone()));
    let mut files = good.clone();
    files.client_ca = Some(garbage.clone());
    cases.push((files, "--grpc.tls.client-ca", garbage.clone()));

    for (files, flag, path) in cases {
        let mut config = ServerConfig::for_tests();
        config.security.grpc_tls = Some(files);
        let backend = backend_memory::open(backend_memory::MemoryConfig::default());
        let error = remote_storage::RunningServer::start(config, backend)
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains(flag), "{flag}: {message}");
        assert!(
            message.contains(&path.display().to_string()),
            "{}: {message}",
            path.display()
        );
    }
}
