//! TLS towards the cluster (rustls with ring, as the rest of the server).

use std::sync::Arc;

use remote_storage_core::StoreError;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scylla::client::session::TlsContext;

use crate::config::TlsFiles;

fn setting(flag: &str, path: &std::path::Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::invalid_argument(format!("--cassandra.{flag} {}: {error}", path.display()))
}

/// The driver's TLS context for `files`: the CA to trust, and the client certificate.
pub(crate) fn context(files: &TlsFiles) -> Result<TlsContext, StoreError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(&files.ca)
        .map_err(|error| setting("tls.ca", &files.ca, error))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|error| setting("tls.ca", &files.ca, error))?;
        roots
            .add(certificate)
            .map_err(|error| setting("tls.ca", &files.ca, error))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|error| setting("tls.cert", cert, error))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| setting("tls.cert", cert, error))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|error| setting("tls.key", key, error))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|error| setting("tls.cert", cert, error))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config).into())
}
