//! The TLS and authentication flags (`--grpc.tls.*`, `--writer.tls.*`, `--admin.tls.*`,
//! `--auth.*`), flattened into [`crate::cli::Cli`]. Plaintext and no authentication unless
//! given.

use std::path::PathBuf;

use clap::Args;

use crate::config::{DEFAULT_RELOAD_INTERVAL, SecurityConfig, TlsFiles};

/// TLS per listener and bearer-token authentication.
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// PEM certificate chain of the gRPC listener; with --grpc.tls.key, the listener speaks
    /// TLS only. Re-read when the file changes or on SIGHUP.
    #[arg(
        long = "grpc.tls.cert",
        env = "JAEGER_REMOTE_STORAGE_GRPC_TLS_CERT",
        requires = "grpc_tls_key"
    )]
    pub grpc_tls_cert: Option<PathBuf>,

    /// PEM private key of the gRPC listener's certificate.
    #[arg(
        long = "grpc.tls.key",
        env = "JAEGER_REMOTE_STORAGE_GRPC_TLS_KEY",
        requires = "grpc_tls_cert"
    )]
    pub grpc_tls_key: Option<PathBuf>,

    /// PEM CA certificates for client certificates: when given, gRPC clients must present a
    /// certificate signed by one of them (mutual TLS).
    #[arg(
        long = "grpc.tls.client-ca",
        env = "JAEGER_REMOTE_STORAGE_GRPC_TLS_CLIENT_CA",
        requires = "grpc_tls_cert"
    )]
    pub grpc_tls_client_ca: Option<PathBuf>,

    /// PEM certificate chain of the writer listener; without --writer.tls.*, the writer uses
    /// the --grpc.tls.* files.
    #[arg(
        long = "writer.tls.cert",
        env = "JAEGER_REMOTE_STORAGE_WRITER_TLS_CERT",
        requires_all = ["writer_tls_key", "writer_addr"]
    )]
    pub writer_tls_cert: Option<PathBuf>,

    /// PEM private key of the writer listener's certificate.
    #[arg(
        long = "writer.tls.key",
        env = "JAEGER_REMOTE_STORAGE_WRITER_TLS_KEY",
        requires = "writer_tls_cert"
    )]
    pub writer_tls_key: Option<PathBuf>,

    /// PEM CA certificates for the writer listener's client certificates (mutual TLS).
    #[arg(
        long = "writer.tls.client-ca",
        env = "JAEGER_REMOTE_STORAGE_WRITER_TLS_CLIENT_CA",
        requires = "writer_tls_cert"
    )]
    pub writer_tls_client_ca: Option<PathBuf>,

    /// PEM certificate chain of the admin and purger HTTP listeners.
    #[arg(
        long = "admin.tls.cert",
        env = "JAEGER_REMOTE_STORAGE_ADMIN_TLS_CERT",
        requires = "admin_tls_key"
    )]
    pub admin_tls_cert: Option<PathBuf>,

    /// PEM private key of the admin and purger listeners' certificate.
    #[arg(
        long = "admin.tls.key",
        env = "JAEGER_REMOTE_STORAGE_ADMIN_TLS_KEY",
        requires = "admin_tls_cert"
    )]
    pub admin_tls_key: Option<PathBuf>,

    /// PEM CA certificates for the admin and purger listeners' client certificates (mutual
    /// TLS; probes then need a certificate too).
    #[arg(
        long = "admin.tls.client-ca",
        env = "JAEGER_REMOTE_STORAGE_ADMIN_TLS_CLIENT_CA",
        requires = "admin_tls_cert"
    )]
    pub admin_tls_client_ca: Option<PathBuf>,

    /// Accepted bearer tokens, one per line, optionally `token tenant[,tenant]` to bind a token
    /// to tenants (needs --multi-tenancy.enabled). Every gRPC service except health and
    /// reflection, and the purger, then require a token. Re-read when the file changes or on
    /// SIGHUP.
    #[arg(
        long = "auth.bearer-tokens-file",
        env = "JAEGER_REMOTE_STORAGE_AUTH_BEARER_TOKENS_FILE"
    )]
    pub auth_bearer_tokens_file: Option<PathBuf>,
}

impl SecurityArgs {
    /// The settings these flags describe (clap has already paired each cert with its key).
    pub(crate) fn config(&self) -> SecurityConfig {
        SecurityConfig {
            grpc_tls: tls_files(
                self.grpc_tls_cert.as_ref(),
                self.grpc_tls_key.as_ref(),
                self.grpc_tls_client_ca.as_ref(),
            ),
            writer_tls: tls_files(
                self.writer_tls_cert.as_ref(),
                self.writer_tls_key.as_ref(),
                self.writer_tls_client_ca.as_ref(),
            ),
            admin_tls: tls_files(
                self.admin_tls_cert.as_ref(),
                self.admin_tls_key.as_ref(),
                self.admin_tls_client_ca.as_ref(),
            ),
            bearer_tokens_file: self.auth_bearer_tokens_file.clone(),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }
}

fn tls_files(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
    client_ca: Option<&PathBuf>,
) -> Option<TlsFiles> {
    Some(TlsFiles {
        cert: cert?.clone(),
        key: key?.clone(),
        client_ca: client_ca.cloned(),
    })
}
