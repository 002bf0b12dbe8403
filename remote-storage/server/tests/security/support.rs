//! Test PKI (rcgen), TLS clients for gRPC and HTTP, and captured logs.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use remote_storage::{RunningServer, ServerConfig, TlsFiles};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub(crate) const GRPC_ALPN: &[&[u8]] = &[b"h2"];
pub(crate) const HTTP1_ALPN: &[&[u8]] = &[b"http/1.1"];

pub(crate) async fn start(config: ServerConfig) -> RunningServer {
    let backend = backend_memory::open(backend_memory::MemoryConfig::default());
    RunningServer::start(config, backend).await.unwrap()
}

/// A certificate authority that signs server and client certificates.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) cert_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
}

/// A certificate and its private key.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
}

impl Authority {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            cert_pem: certificate.pem(),
            cert_der: certificate.der().clone(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub(crate) fn server(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub(crate) fn client(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            cert_der: certificate.der().clone(),
        }
    }
}

/// Writes `contents` to `path` atomically (a rename), as deployment tools replace secrets.
pub(crate) fn replace_file(path: &Path, contents: &str) {
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary).unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file.sync_all().unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Writes a server certificate and key (and optionally a client CA) into `directory`.
pub(crate) fn write_tls_files(
    directory: &Path,
    prefix: &str,
    server: &Leaf,
    client_ca: Option<&Authority>,
) -> TlsFiles {
    let cert = directory.join(format!("{prefix}.crt"));
    let key = directory.join(format!("{prefix}.key"));
    replace_file(&cert, &server.cert_pem);
    replace_file(&key, &server.key_pem);
    let client_ca = client_ca.map(|authority| {
        let path: PathBuf = directory.join(format!("{prefix}-clients.crt"));
        replace_file(&path, &authority.cert_pem);
        path
    });
    TlsFiles {
        cert,
        key,
        client_ca,
    }
}

/// A rustls client trusting `ca`, optionally presenting `identity`.
pub(crate) fn client_config(
    ca: &Authority,
    identity: Option<&Leaf>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der.clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.cert_der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

/// A TLS handshake with the server at `addr` as `localhost`.
pub(crate) async fn handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(server_name, tcp).await
}

/// The leaf certificate a new connection to `addr` is served.
pub(crate) async fn served_certificate(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<CertificateDer<'static>> {
    let stream = handshake(addr, config).await?;
    let certificates = stream.get_ref().1.peer_certificates().unwrap_or_default();
    Ok(certificates.first().unwrap().clone().into_owned())
}

/// A gRPC channel over TLS (tonic's own TLS is not compiled in; this is what any TLS client
/// does).
pub(crate) async fn tls_channel(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let config = Arc::clone(&config);
            async move { Ok::<_, std::io::Error>(TokioIo::new(handshake(addr, config).await?)) }
        }))
        .await
}

/// A plaintext gRPC channel.
pub(crate) async fn plaintext_channel(
    addr: SocketAddr,
) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
}

/// The overall health status over `channel`, or why the call failed.
pub(crate) async fn health(
    channel: Result<Channel, tonic::transport::Error>,
) -> Result<ServingStatus, String> {
    let channel = channel.map_err(|error| format!("connect: {error}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| format!("call: {status}"))?;
    Ok(response.into_inner().status())
}

/// One HTTP/1.1 request over TLS; the status code and body.
pub(crate) async fn https_request(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = handshake(addr, config).await?;
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // The server may close without close_notify after `Connection: close`: keep what came.
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Everything logged in this test process from [`CapturedLogs::install`] on, by every test
/// running meanwhile too. A global subscriber rather than a thread-scoped one: with scoped
/// subscribers, tracing's per-callsite interest cache, shared by the tests running in parallel,
/// can drop events.
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs the capture for the rest of the process; only one test may call it.
    pub(crate) fn install(&self) {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("only one test installs the global subscriber");
    }

    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
