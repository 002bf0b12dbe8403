//! TLS on the listeners, with certificates that can be replaced while the server runs.
//!
//! tonic's built-in TLS fixes the certificate at start-up, so the server terminates TLS
//! itself: [`ReloadingTls`] holds the current rustls configuration (certificate, key and, for
//! mutual TLS, the client CA) and swaps in a new one when the files change or on SIGHUP
//! (see [`crate::reload`]); [`listener`] accepts TCP connections and completes each handshake
//! in its own task with whatever configuration is current at that moment. Connections already
//! open keep the certificate they were set up with.

pub(crate) mod listener;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::{Context as _, ensure};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tracing::{info, warn};

use crate::config::TlsFiles;
use crate::reload::{FileStamp, Reloadable};

/// ALPN for gRPC listeners: gRPC is HTTP/2 only.
pub(crate) const GRPC_ALPN: &[&[u8]] = &[b"h2"];
/// ALPN for the HTTP listeners (admin, purger): HTTP/2 or HTTP/1.1, as the client prefers.
pub(crate) const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The TLS configuration of one listener (or of listeners sharing the same files), reloadable.
#[derive(Debug)]
pub(crate) struct ReloadingTls {
    files: TlsFiles,
    /// Flag prefix the files came from (`--grpc.tls`), so messages name the flag to fix.
    flag_prefix: &'static str,
    alpn: &'static [&'static [u8]],
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// Size and modification time of each file when last loaded (or tried), so a file that
    /// fails to load is reported once per change rather than at every check.
    last_seen: Mutex<Vec<Option<FileStamp>>>,
}

impl ReloadingTls {
    /// Loads the files once; any problem fails the start with the file and flag named.
    pub(crate) fn load(
        files: &TlsFiles,
        flag_prefix: &'static str,
        alpn: &'static [&'static [u8]],
    ) -> anyhow::Result<Arc<Self>> {
        let last_seen = file_stamps(files);
        let config = build_server_config(files, flag_prefix, alpn)?;
        Ok(Arc::new(Self {
            files: files.clone(),
            flag_prefix,
            alpn,
            current: RwLock::new(Arc::new(config)),
            last_seen: Mutex::new(last_seen),
        }))
    }

    /// The configuration new connections are set up with.
    pub(crate) fn current(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether clients must present a certificate.
    pub(crate) fn is_mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }
}

impl Reloadable for ReloadingTls {
    fn reload(&self, force: bool) {
        let stamps = file_stamps(&self.files);
        {
            let mut last_seen = self
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !force && *last_seen == stamps {
                return;
            }
            *last_seen = stamps;
        }
        match build_server_config(&self.files, self.flag_prefix, self.alpn) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
                info!(
                    flags = self.flag_prefix,
                    cert = %self.files.cert.display(),
                    "TLS certificate (re)loaded; new connections use it"
                );
            }
            Err(load_error) => warn!(
                flags = self.flag_prefix,
                error = format!("{load_error:#}"),
                "TLS files could not be reloaded; keeping the previous certificate"
            ),
        }
    }
}

fn file_stamps(files: &TlsFiles) -> Vec<Option<FileStamp>> {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| FileStamp::of(path))
    .collect()
}

/// Reads and checks every file and builds the rustls configuration, on the ring provider.
fn build_server_config(
    files: &TlsFiles,
    flag_prefix: &str,
    alpn: &[&[u8]],
) -> anyhow::Result<rustls::ServerConfig> {
    let cert_flag = format!("{flag_prefix}.cert");
    let key_flag = format!("{flag_prefix}.key");
    let chain = read_certificates(&files.cert, &cert_flag)?;
    let key = read_private_key(&files.key, &key_flag)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("selecting TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(client_ca) => {
            let ca_flag = format!("{flag_prefix}.client-ca");
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(client_ca, &ca_flag)? {
                roots.add(certificate).with_context(|| {
                    format!("{ca_flag} {}: unusable CA certificate", client_ca.display())
                })?;
            }
            // Requires a client certificate: anonymous clients fail the handshake.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("{ca_flag} {}", client_ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "{cert_flag} {} with {key_flag} {}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}

fn read_file(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read the file", path.display()))
}

fn read_certificates(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(path, flag)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{flag} {}: not a PEM certificate file", path.display()))?;
    ensure!(
        !certificates.is_empty(),
        "{flag} {}: no PEM certificate in the file",
        path.display()
    );
    Ok(certificates)
}

fn read_private_key(path: &Path, flag: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = read_file(path, flag)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .with_context(|| format!("{flag} {}: no PEM private key in the file", path.display()))
}
