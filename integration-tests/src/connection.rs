//! The connections a gRPC target uses: reader and writer channels, the tenant metadata sent
//! with every call, and the purger's HTTP client. Shared by the v2 ([`crate::GrpcTarget`]) and
//! v1 ([`crate::V1GrpcTarget`]) targets.

use std::time::Duration;

use anyhow::Context as _;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::grpc::GrpcTargetConfig;

/// Open (lazy) connections to one server.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    /// The reader endpoint.
    pub(crate) reader: Channel,
    /// The writer endpoint (the reader's channel when there is no separate one).
    pub(crate) writer: Channel,
    tenant: Option<(AsciiMetadataKey, AsciiMetadataValue)>,
    purger_url: Option<String>,
    http: reqwest::Client,
}

impl Connections {
    /// Builds the channels (connected on first use, as Jaeger's client does) and the purger
    /// client. Must be called inside a Tokio runtime.
    pub(crate) fn open(config: &GrpcTargetConfig) -> anyhow::Result<Self> {
        let reader = channel(&config.endpoint, config)?;
        let writer = match &config.writer_endpoint {
            Some(writer_endpoint) => channel(writer_endpoint, config)?,
            None => reader.clone(),
        };
        let tenant = match &config.tenant {
            Some((header, value)) => Some((
                header
                    .to_ascii_lowercase()
                    .parse::<AsciiMetadataKey>()
                    .with_context(|| format!("invalid tenant header name {header:?}"))?,
                value
                    .parse::<AsciiMetadataValue>()
                    .with_context(|| format!("invalid tenant {value:?}"))?,
            )),
            None => None,
        };
        // reqwest's rustls has no crypto provider of its own in this workspace (see the root
        // Cargo.toml); installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.call_timeout)
            .build()
            .context("building the purger HTTP client")?;
        Ok(Self {
            reader,
            writer,
            tenant,
            purger_url: config.purger_url.clone(),
            http,
        })
    }

    /// A request carrying the tenant metadata, when one is configured.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some((key, value)) = &self.tenant {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        request
    }

    /// `POST`s the purger URL and requires exactly 200.
    pub(crate) async fn purge(&self) -> anyhow::Result<()> {
        let Some(url) = &self.purger_url else {
            anyhow::bail!("no purger URL configured: cannot clean up between tests");
        };
        let response = self
            .http
            .post(url)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("POST {url} answered {status} (expected exactly 200): {body}");
        }
        Ok(())
    }
}

/// A failed call, with its code and message; typed so that a test can ask for the code
/// ([`crate::target::is_invalid_argument`]).
pub(crate) fn status_error(call: &str, status: Status) -> anyhow::Error {
    anyhow::Error::new(RpcFailure {
        call: call.to_owned(),
        code: status.code(),
        message: status.message().to_owned(),
    })
}

/// A gRPC call answered with an error status.
#[derive(Debug)]
pub(crate) struct RpcFailure {
    call: String,
    pub(crate) code: tonic::Code,
    message: String,
}

impl std::fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {:?}: {}", self.call, self.code, self.message)
    }
}

impl std::error::Error for RpcFailure {}

fn endpoint_uri(endpoint: &str, tls: bool) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

fn channel(endpoint: &str, config: &GrpcTargetConfig) -> anyhow::Result<Channel> {
    let uri = endpoint_uri(endpoint, config.tls.is_some());
    let mut builder = Endpoint::from_shared(uri.clone())
        .with_context(|| format!("invalid endpoint {endpoint:?}"))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(config.call_timeout);
    if let Some(tls) = &config.tls {
        let mut tls_config = ClientTlsConfig::new();
        tls_config = match &tls.ca_pem {
            Some(pem) => tls_config.ca_certificate(Certificate::from_pem(pem)),
            None => tls_config.with_webpki_roots(),
        };
        if let Some(domain) = &tls.domain {
            tls_config = tls_config.domain_name(domain.clone());
        }
        builder = builder
            .tls_config(tls_config)
            .with_context(|| format!("TLS configuration for {uri}"))?;
    }
    // Lazy, so a target can be built before the server is up (as Jaeger's client is).
    Ok(builder.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_without_scheme_get_one() {
        assert_eq!(
            endpoint_uri("localhost:17271", false),
            "http://localhost:17271"
        );
        assert_eq!(
            endpoint_uri("localhost:17271", true),
            "https://localhost:17271"
        );
        assert_eq!(endpoint_uri("http://x:1", true), "http://x:1");
    }
}
