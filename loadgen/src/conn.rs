//! Connections and per-call metadata shared by the load, verify and query phases.

use std::time::Duration;

use anyhow::{Context as _, Result};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};

/// Largest message the tool sends or accepts (GetTraces chunks can be large).
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Opens one HTTP/2 connection to `endpoint` (`HOST:PORT` or a full `http://` URI).
pub(crate) async fn connect(endpoint: &str) -> Result<Channel> {
    let uri = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    };
    Endpoint::from_shared(uri.clone())
        .with_context(|| format!("invalid endpoint {endpoint:?}"))?
        .tcp_nodelay(true)
        .http2_adaptive_window(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {uri}"))
}

/// The tenant header added to every call, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tenant(Option<(AsciiMetadataKey, AsciiMetadataValue)>);

impl Tenant {
    /// `header: tenant` when a tenant is given; no metadata otherwise.
    pub(crate) fn new(header: &str, tenant: Option<&str>) -> Result<Self> {
        let Some(tenant) = tenant else {
            return Ok(Self(None));
        };
        let key = AsciiMetadataKey::from_bytes(header.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("invalid tenant header name {header:?}"))?;
        let value = AsciiMetadataValue::try_from(tenant)
            .with_context(|| format!("invalid tenant value {tenant:?}"))?;
        Ok(Self(Some((key, value))))
    }

    /// Wraps `msg` in a request carrying the tenant header.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some((k, v)) = &self.0 {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_header_is_added() {
        let t = Tenant::new("X-Tenant", Some("acme")).unwrap();
        let req = t.request(());
        assert_eq!(req.metadata().get("x-tenant").unwrap(), "acme");
        let none = Tenant::new("x-tenant", None).unwrap();
        assert!(none.request(()).metadata().is_empty());
        assert!(Tenant::new("bad header", Some("x")).is_err());
    }
}
