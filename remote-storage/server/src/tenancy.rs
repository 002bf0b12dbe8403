//! The tenancy guard: resolves the tenant of every gRPC request (except health and
//! reflection) from its metadata, with the status codes of Jaeger's reference server.
//!
//! The guard runs as a tonic interceptor and stores the [`Tenant`] in the request extensions;
//! handlers read it back with [`tenant_of`]. With tenancy off it stores the empty tenant, so
//! handlers never guess.
//!
//! With `--auth.bearer-tokens-file`, the guard first authenticates the request's bearer token
//! ([`crate::auth`]: `UNAUTHENTICATED` when missing or wrong), then resolves the tenant, then
//! checks that the token may act for that tenant (`PERMISSION_DENIED` otherwise). Without it,
//! `bearer.token` metadata, which Jaeger's client always forwards, is accepted and ignored.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use remote_storage_core::Tenant;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::BearerTokens;
use crate::config::TenancyConfig;

const MISSING_TENANT: &str = "missing tenant header";
const EXTRA_TENANT: &str = "extra tenant header";
const UNKNOWN_TENANT: &str = "unknown tenant";

/// Resolves and checks the tenant of each request. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct TenancyGuard {
    /// `None` when tenancy is off.
    rules: Option<Arc<TenancyRules>>,
    /// `None` when authentication is off.
    auth: Option<Arc<BearerTokens>>,
}

#[derive(Debug)]
struct TenancyRules {
    /// Lower-case metadata key.
    header: String,
    /// Allowed tenants; empty allows any.
    allowed: HashSet<String>,
}

impl TenancyGuard {
    /// Validates the configuration; an unusable header name is refused at startup.
    pub(crate) fn new(config: &TenancyConfig) -> anyhow::Result<Self> {
        if !config.enabled {
            return Ok(Self {
                rules: None,
                auth: None,
            });
        }
        let header = config.header.trim().to_ascii_lowercase();
        if header.is_empty() {
            bail!("multi-tenancy header must not be empty");
        }
        http::HeaderName::from_bytes(header.as_bytes())
            .with_context(|| format!("multi-tenancy header {header:?} is not a valid header"))?;
        if header.ends_with("-bin") {
            bail!("multi-tenancy header {header:?} must not be a binary (-bin) header");
        }
        let allowed = config
            .tenants
            .iter()
            .map(|tenant| tenant.trim().to_owned())
            .filter(|tenant| !tenant.is_empty())
            .collect();
        Ok(Self {
            rules: Some(Arc::new(TenancyRules { header, allowed })),
            auth: None,
        })
    }

    /// The same guard, also requiring one of `tokens` on every request.
    pub(crate) fn with_auth(self, tokens: Option<Arc<BearerTokens>>) -> Self {
        Self {
            auth: tokens,
            ..self
        }
    }

    /// The tenant a request with this metadata acts for, or the refusal Jaeger's reference
    /// server gives.
    pub(crate) fn resolve(&self, metadata: &MetadataMap) -> Result<Tenant, Status> {
        let Some(rules) = &self.rules else {
            return Ok(Tenant::default());
        };
        // Jaeger distinguishes "no metadata at all" from "metadata without the header".
        if metadata.is_empty() {
            return Err(Status::permission_denied(MISSING_TENANT));
        }
        let mut values = metadata.get_all(rules.header.as_str()).iter();
        let Some(value) = values.next() else {
            return Err(Status::unauthenticated(MISSING_TENANT));
        };
        if values.next().is_some() {
            return Err(Status::permission_denied(EXTRA_TENANT));
        }
        // A non-text value cannot name any tenant.
        let Ok(name) = value.to_str() else {
            return Err(Status::permission_denied(UNKNOWN_TENANT));
        };
        // An empty value would fall into the tenancy-off tenant's data.
        if name.is_empty() {
            return Err(Status::unauthenticated(MISSING_TENANT));
        }
        if !rules.allowed.is_empty() && !rules.allowed.contains(name) {
            return Err(Status::permission_denied(UNKNOWN_TENANT));
        }
        Ok(Tenant::new(name))
    }
}

impl Interceptor for TenancyGuard {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        // Authenticate before looking at the tenant, so an unauthenticated caller learns
        // nothing about which tenants exist.
        let grant = match &self.auth {
            Some(tokens) => Some(tokens.authenticate(request.metadata())?),
            None => None,
        };
        let tenant = self.resolve(request.metadata())?;
        if let Some(grant) = grant {
            grant.permits(&tenant)?;
        }
        request.extensions_mut().insert(tenant);
        Ok(request)
    }
}

/// The tenant the guard attached to a request, also recorded as the `tenant` field of the
/// current tracing span (the handlers declare it).
pub(crate) fn recorded_tenant_of<T>(request: &Request<T>) -> Result<Tenant, Status> {
    let tenant = tenant_of(request)?;
    tracing::Span::current().record("tenant", tenant.name());
    Ok(tenant)
}

/// The tenant the guard attached to a request.
pub(crate) fn tenant_of<T>(request: &Request<T>) -> Result<Tenant, Status> {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        // Only reachable if a service was registered without the guard: refuse rather than
        // read or write the wrong tenant's data.
        .ok_or_else(|| Status::internal("tenant was not resolved for this request"))
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic::metadata::MetadataValue;

    use super::*;

    fn guard(tenants: &[&str]) -> TenancyGuard {
        TenancyGuard::new(&TenancyConfig {
            enabled: true,
            header: "X-Tenant".into(),
            tenants: tenants.iter().map(|tenant| (*tenant).to_owned()).collect(),
        })
        .unwrap()
    }

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (key, value) in pairs {
            map.append(*key, MetadataValue::from_static(value));
        }
        map
    }

    fn refusal(guard: &TenancyGuard, map: &MetadataMap) -> (Code, String) {
        let status = guard.resolve(map).unwrap_err();
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn tenancy_off_uses_the_empty_tenant_and_ignores_headers() {
        let off = TenancyGuard::new(&TenancyConfig::default()).unwrap();
        assert_eq!(off.resolve(&MetadataMap::new()).unwrap(), Tenant::default());
        let with_header = metadata(&[("x-tenant", "acme")]);
        assert_eq!(off.resolve(&with_header).unwrap(), Tenant::default());
    }

    #[test]
    fn a_single_allowed_tenant_is_accepted() {
        let map = metadata(&[("x-tenant", "acme"), ("bearer.token", "secret")]);
        assert_eq!(guard(&["acme"]).resolve(&map).unwrap(), Tenant::new("acme"));
        assert_eq!(guard(&[]).resolve(&map).unwrap(), Tenant::new("acme"));
    }

    #[test]
    fn no_metadata_at_all_is_permission_denied() {
        assert_eq!(
            refusal(&guard(&[]), &MetadataMap::new()),
            (Code::PermissionDenied, MISSING_TENANT.to_owned())
        );
    }

    #[test]
    fn a_missing_header_is_unauthenticated() {
        let map = metadata(&[("user-agent", "test")]);
        assert_eq!(
            refusal(&guard(&[]), &map),
            (Code::Unauthenticated, MISSING_TENANT.to_owned())
        );
        let empty = metadata(&[("x-tenant", "")]);
        assert_eq!(refusal(&guard(&[]), &empty).0, Code::Unauthenticated);
    }

    #[test]
    fn two_values_are_permission_denied() {
        let map = metadata(&[("x-tenant", "acme"), ("x-tenant", "other")]);
        assert_eq!(
            refusal(&guard(&[]), &map),
            (Code::PermissionDenied, EXTRA_TENANT.to_owned())
        );
    }

    #[test]
    fn a_tenant_outside_the_list_is_permission_denied() {
        let map = metadata(&[("x-tenant", "mallory")]);
        assert_eq!(
            refusal(&guard(&["acme", "globex"]), &map),
            (Code::PermissionDenied, UNKNOWN_TENANT.to_owned())
        );
    }

    #[test]
    fn bad_header_names_are_refused_at_startup() {
        for header in ["", "bad header", "x-tenant-bin"] {
            let config = TenancyConfig {
                enabled: true,
                header: header.into(),
                tenants: Vec::new(),
            };
            assert!(TenancyGuard::new(&config).is_err(), "{header:?}");
        }
    }

    #[test]
    fn the_interceptor_attaches_the_tenant() {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("x-tenant", MetadataValue::from_static("acme"));
        let request = guard(&[]).call(request).unwrap();
        assert_eq!(tenant_of(&request).unwrap(), Tenant::new("acme"));
        assert_eq!(
            tenant_of(&Request::new(())).unwrap_err().code(),
            Code::Internal
        );
    }
}
