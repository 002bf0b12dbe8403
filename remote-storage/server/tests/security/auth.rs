//! Bearer-token authentication on the gRPC services and the purger.

use std::net::SocketAddr;
use std::path::Path;

use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::storage::v1::GetServicesRequest as V1GetServicesRequest;
use jaeger_remote_proto::storage::v1::span_reader_plugin_client::SpanReaderPluginClient;
use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use remote_storage::{RunningServer, ServerConfig, TenancyConfig};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;

use super::support::{CapturedLogs, health, plaintext_channel, replace_file, start};

const OPS_TOKEN: &str = "ops-4f1c2a9e7b3d";
const ACME_TOKEN: &str = "acme-9d8e7f6a5b4c";
const WRONG_TOKEN: &str = "not-a-known-token";

/// A server requiring one of the tokens in `tokens_file_text`.
async fn start_with_tokens(
    directory: &Path,
    tokens_file_text: &str,
    tenancy: TenancyConfig,
) -> RunningServer {
    let tokens_file = directory.join("tokens");
    replace_file(&tokens_file, tokens_file_text);
    let mut config = ServerConfig::for_tests();
    config.security.bearer_tokens_file = Some(tokens_file);
    config.tenancy = tenancy;
    start(config).await
}

fn tenancy_on() -> TenancyConfig {
    TenancyConfig {
        enabled: true,
        ..TenancyConfig::default()
    }
}

/// A request with optional Jaeger-style `bearer.token` and tenant metadata.
fn request<T>(message: T, token: Option<&str>, tenant: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("bearer.token", MetadataValue::try_from(token).unwrap());
    }
    if let Some(tenant) = tenant {
        request
            .metadata_mut()
            .insert("x-tenant", MetadataValue::try_from(tenant).unwrap());
    }
    request
}

async fn channel(addr: SocketAddr) -> Channel {
    plaintext_channel(addr).await.unwrap()
}

/// The status code of GetServices with these credentials (`Ok` as `Code::Ok`).
async fn get_services_code(addr: SocketAddr, token: Option<&str>, tenant: Option<&str>) -> Code {
    let mut reader = TraceReaderClient::new(channel(addr).await);
    match reader
        .get_services(request(GetServicesRequest {}, token, tenant))
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn export_code(addr: SocketAddr, token: Option<&str>) -> Code {
    let mut writer = TraceServiceClient::new(channel(addr).await);
    match writer
        .export(request(ExportTraceServiceRequest::default(), token, None))
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn without_a_valid_token_every_storage_service_is_unauthenticated() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_with_tokens(
        directory.path(),
        &format!("# operators\n{OPS_TOKEN}\n"),
        TenancyConfig::default(),
    )
    .await;
    let writer_addr = server.writer_addr.unwrap();

    for token in [None, Some(WRONG_TOKEN), Some("")] {
        assert_eq!(
            get_services_code(server.grpc_addr, token, None).await,
            Code::Unauthenticated,
            "{token:?}"
        );
        assert_eq!(
            export_code(server.grpc_addr, token).await,
            Code::Unauthenticated
        );
        assert_eq!(export_code(writer_addr, token).await, Code::Unauthenticated);
    }
    let mut v1_reader = SpanReaderPluginClient::new(channel(server.grpc_addr).await);
    let refused = v1_reader
        .get_services(V1GetServicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    assert_eq!(
        get_services_code(server.grpc_addr, Some(OPS_TOKEN), None).await,
        Code::Ok
    );
    assert_eq!(
        export_code(server.grpc_addr, Some(OPS_TOKEN)).await,
        Code::Ok
    );
    assert_eq!(export_code(writer_addr, Some(OPS_TOKEN)).await, Code::Ok);
    // The standard header works too (grpcurl, most gRPC clients).
    let mut reader = TraceReaderClient::new(channel(server.grpc_addr).await);
    let mut standard = Request::new(GetServicesRequest {});
    standard.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {OPS_TOKEN}")).unwrap(),
    );
    reader.get_services(standard).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_stay_open_without_a_token() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let directory = tempfile::tempdir().unwrap();
    let server = start_with_tokens(directory.path(), &format!("{OPS_TOKEN}\n"), tenancy_on()).await;
    for addr in [server.grpc_addr, server.writer_addr.unwrap()] {
        assert_eq!(
            health(plaintext_channel(addr).await).await,
            Ok(ServingStatus::Serving)
        );
    }
    let mut reflection = ServerReflectionClient::new(channel(server.grpc_addr).await);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(list))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());
    drop(answers);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tenant_bound_tokens_act_only_for_their_tenants() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_with_tokens(
        directory.path(),
        &format!("{OPS_TOKEN}\n{ACME_TOKEN} acme\n"),
        tenancy_on(),
    )
    .await;
    let addr = server.grpc_addr;
    assert_eq!(
        get_services_code(addr, Some(ACME_TOKEN), Some("acme")).await,
        Code::Ok
    );
    assert_eq!(
        get_services_code(addr, Some(ACME_TOKEN), Some("globex")).await,
        Code::PermissionDenied
    );
    // The unbound token may act for any tenant.
    assert_eq!(
        get_services_code(addr, Some(OPS_TOKEN), Some("globex")).await,
        Code::Ok
    );
    // Authentication comes first: no token is UNAUTHENTICATED whatever the tenant.
    assert_eq!(
        get_services_code(addr, None, Some("acme")).await,
        Code::Unauthenticated
    );
    // A bound token without a tenant header gets the tenancy guard's answer (the same code as
    // a failed token, so the message tells them apart).
    let status = TraceReaderClient::new(channel(addr).await)
        .get_services(request(GetServicesRequest {}, Some(ACME_TOKEN), None))
        .await
        .expect_err("no tenant header");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "missing tenant header");
    server.stop().await.unwrap();
}

async fn purge_status(addr: SocketAddr, authorization: Option<String>) -> u16 {
    // reqwest needs a TLS crypto provider installed (see the root Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut request = reqwest::Client::new().post(format!("http://{addr}/purge"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_purger_requires_a_token_not_bound_to_tenants() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_with_tokens(
        directory.path(),
        &format!("{OPS_TOKEN}\n{ACME_TOKEN} acme\n"),
        tenancy_on(),
    )
    .await;
    let purger = server.purger_addr.unwrap();
    assert_eq!(purge_status(purger, None).await, 401);
    assert_eq!(
        purge_status(purger, Some(format!("Bearer {WRONG_TOKEN}"))).await,
        401
    );
    assert_eq!(
        purge_status(purger, Some(format!("Basic {OPS_TOKEN}"))).await,
        401
    );
    assert_eq!(
        purge_status(purger, Some(format!("Bearer {ACME_TOKEN}"))).await,
        403
    );
    assert_eq!(
        purge_status(purger, Some(format!("Bearer {OPS_TOKEN}"))).await,
        200
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_changed_tokens_file_takes_effect_without_restart() {
    let directory = tempfile::tempdir().unwrap();
    let tokens_file = directory.path().join("tokens");
    replace_file(&tokens_file, &format!("{OPS_TOKEN}\n"));
    let mut config = ServerConfig::for_tests();
    config.security.bearer_tokens_file = Some(tokens_file.clone());
    config.security.reload_interval = std::time::Duration::from_millis(50);
    let server = start(config).await;
    assert_eq!(
        get_services_code(server.grpc_addr, Some(OPS_TOKEN), None).await,
        Code::Ok
    );

    // Rotation: the new token replaces the old one.
    replace_file(&tokens_file, &format!("{ACME_TOKEN}\n"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get_services_code(server.grpc_addr, Some(ACME_TOKEN), None).await != Code::Ok {
        assert!(
            std::time::Instant::now() < deadline,
            "new token not accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        get_services_code(server.grpc_addr, Some(OPS_TOKEN), None).await,
        Code::Unauthenticated
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unusable_token_files_fail_the_start_naming_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let cases = [
        ("empty", String::new(), "no token"),
        ("comments", "# nobody yet\n".to_owned(), "no token"),
        (
            "bound-without-tenancy",
            format!("{ACME_TOKEN} acme\n"),
            "--multi-tenancy.enabled",
        ),
        ("duplicate", format!("{OPS_TOKEN}\n{OPS_TOKEN}\n"), "line 2"),
    ];
    for (name, text, expected) in cases {
        let path = directory.path().join(name);
        replace_file(&path, &text);
        let mut config = ServerConfig::for_tests();
        config.security.bearer_tokens_file = Some(path.clone());
        let backend = backend_memory::open(backend_memory::MemoryConfig::default());
        let error = RunningServer::start(config, backend).await.unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("--auth.bearer-tokens-file"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            !message.contains(OPS_TOKEN) && !message.contains(ACME_TOKEN),
            "{message}"
        );
    }
    let missing = directory.path().join("missing");
    let mut config = ServerConfig::for_tests();
    config.security.bearer_tokens_file = Some(missing.clone());
    let backend = backend_memory::open(backend_memory::MemoryConfig::default());
    let message = format!(
        "{:#}",
        RunningServer::start(config, backend).await.unwrap_err()
    );
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
}

/// Every log line at every level, from the server and the libraries under it, while tokens
/// are accepted, refused and reloaded (here and in the tests running meanwhile): none
/// contains a token.
#[tokio::test]
async fn tokens_never_appear_in_logs() {
    let logs = CapturedLogs::default();
    logs.install();
    let directory = tempfile::tempdir().unwrap();
    let tokens_file = directory.path().join("tokens");
    replace_file(&tokens_file, &format!("{OPS_TOKEN}\n{ACME_TOKEN} acme\n"));
    let mut config = ServerConfig::for_tests();
    config.security.bearer_tokens_file = Some(tokens_file.clone());
    config.security.reload_interval = std::time::Duration::from_millis(20);
    config.tenancy = tenancy_on();
    let server = start(config).await;
    let addr = server.grpc_addr;

    assert_eq!(
        get_services_code(addr, Some(OPS_TOKEN), Some("acme")).await,
        Code::Ok
    );
    assert_eq!(
        get_services_code(addr, Some(WRONG_TOKEN), Some("acme")).await,
        Code::Unauthenticated
    );
    assert_eq!(
        get_services_code(addr, Some(ACME_TOKEN), Some("globex")).await,
        Code::PermissionDenied
    );
    let purger = server.purger_addr.unwrap();
    assert_eq!(
        purge_status(purger, Some(format!("Bearer {WRONG_TOKEN}"))).await,
        401
    );
    assert_eq!(
        purge_status(purger, Some(format!("Bearer {OPS_TOKEN}"))).await,
        200
    );
    // A reload that fails (a duplicated token) is logged: without the token.
    replace_file(&tokens_file, &format!("{OPS_TOKEN}\n{OPS_TOKEN}\n"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !logs.text().contains("could not be reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "failed reload not logged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await.unwrap();

    let text = logs.text();
    assert!(
        text.contains("jaeger-remote-storage started"),
        "nothing captured"
    );
    for token in [OPS_TOKEN, ACME_TOKEN, WRONG_TOKEN] {
        assert!(!text.contains(token), "{token} logged:\n{text}");
    }
}
