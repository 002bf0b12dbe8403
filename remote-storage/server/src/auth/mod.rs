//! Bearer-token authentication.
//!
//! Tokens come from `--auth.bearer-tokens-file`: one per line, optionally followed by the
//! tenants it may act for (`token acme,globex`); blank lines and `#` comments are skipped.
//! Only SHA-256 digests of the tokens are kept, and a presented token's digest is compared
//! with every stored one in constant time, so neither timing nor a memory dump reveals a
//! token. No log line or error message contains a token: problems in the file are reported by
//! line number.
//!
//! gRPC callers send the token as `authorization: Bearer <token>` (Jaeger v2's `headers:`
//! setting, grpcurl, most clients) or the way Jaeger's storage client forwards its caller's
//! token, as `bearer.token` metadata; when both are present, `authorization` is checked. The check
//! runs in the tenancy guard ([`crate::tenancy::TenancyGuard`]), before the tenant is
//! resolved, on every service except health and reflection. HTTP callers of the purger send
//! `Authorization: Bearer <token>` ([`purge`]).

pub(crate) mod purge;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::{Context as _, bail, ensure};
use remote_storage_core::Tenant;
use subtle::ConstantTimeEq as _;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tracing::{info, warn};

use crate::reload::{FileStamp, Reloadable};

/// The flag naming the tokens file, for messages.
const TOKENS_FLAG: &str = "--auth.bearer-tokens-file";
/// gRPC metadata key Jaeger's storage client forwards the caller's token under.
const JAEGER_TOKEN_KEY: &str = "bearer.token";

const MISSING_TOKEN: &str = "missing bearer token";
const INVALID_TOKEN: &str = "invalid bearer token";
const MULTIPLE_TOKENS: &str = "malformed token: multiple tokens found";
const TENANT_NOT_ALLOWED: &str = "the bearer token is not allowed for this tenant";

/// What a valid token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Any tenant (or the single tenant when multi-tenancy is off).
    AnyTenant,
    /// Only these tenants.
    Tenants(Arc<[String]>),
}

impl Grant {
    /// Refuses a request for a tenant the token is not bound to.
    pub(crate) fn permits(&self, tenant: &Tenant) -> Result<(), Status> {
        match self {
            Self::AnyTenant => Ok(()),
            Self::Tenants(tenants) if tenants.iter().any(|name| name == tenant.name()) => Ok(()),
            Self::Tenants(_) => Err(Status::permission_denied(TENANT_NOT_ALLOWED)),
        }
    }
}

/// The accepted tokens, reloadable.
#[derive(Debug)]
pub(crate) struct BearerTokens {
    path: PathBuf,
    /// Tenant bindings need multi-tenancy: without it, every request uses the one empty
    /// tenant and a binding would silently allow everything.
    tenancy_enabled: bool,
    current: RwLock<Arc<TokenSet>>,
    last_seen: Mutex<Option<FileStamp>>,
}

/// One loaded tokens file.
#[derive(Debug)]
struct TokenSet {
    entries: Vec<TokenEntry>,
}

struct TokenEntry {
    digest: [u8; 32],
    grant: Grant,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not even the digest: it would let anyone with logs test guesses offline.
        formatter
            .debug_struct("TokenEntry")
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

impl BearerTokens {
    /// Reads the tokens file; an unreadable, empty or malformed file fails the start.
    pub(crate) fn load(path: &Path, tenancy_enabled: bool) -> anyhow::Result<Arc<Self>> {
        let last_seen = FileStamp::of(path);
        let tokens = read_tokens_file(path, tenancy_enabled)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            tenancy_enabled,
            current: RwLock::new(Arc::new(tokens)),
            last_seen: Mutex::new(last_seen),
        }))
    }

    /// The grant of the token a gRPC request carries, or `UNAUTHENTICATED`.
    pub(crate) fn authenticate(&self, metadata: &MetadataMap) -> Result<Grant, Status> {
        let token = presented_grpc_token(metadata)?;
        self.grant_of(token)
            .ok_or_else(|| Status::unauthenticated(INVALID_TOKEN))
    }

    /// The grant of `token`, if it is one of the accepted tokens.
    pub(crate) fn grant_of(&self, token: &[u8]) -> Option<Grant> {
        let presented = sha256(token);
        let tokens = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        let mut grant = None;
        // Every entry is compared, matching or not, in constant time.
        for entry in &tokens.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                grant = Some(entry.grant.clone());
            }
        }
        grant
    }
}

impl Reloadable for BearerTokens {
    fn reload(&self, force: bool) {
        let stamp = FileStamp::of(&self.path);
        {
            let mut last_seen = self
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !force && *last_seen == stamp {
                return;
            }
            *last_seen = stamp;
        }
        match read_tokens_file(&self.path, self.tenancy_enabled) {
            Ok(tokens) => {
                let count = tokens.entries.len();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
                info!(tokens = count, file = %self.path.display(), "bearer tokens reloaded");
            }
            Err(load_error) => warn!(
                error = format!("{load_error:#}"),
                "bearer tokens could not be reloaded; keeping the previous tokens"
            ),
        }
    }
}

/// The presented token, refusing ambiguous requests. A Bearer `authorization` value comes
/// first: it is what a client configures for this connection (Jaeger v2's `headers:`), while
/// `bearer.token` is whatever Jaeger's query service propagated from its own caller.
fn presented_grpc_token(metadata: &MetadataMap) -> Result<&[u8], Status> {
    if let Some(authorization) = single_value(metadata, "authorization")?
        && let Some(token) = bearer_credentials(authorization)
    {
        return Ok(token);
    }
    single_value(metadata, JAEGER_TOKEN_KEY)?.ok_or_else(|| Status::unauthenticated(MISSING_TOKEN))
}

/// The value of `key`, if present once; several values are refused rather than picked from.
fn single_value<'a>(metadata: &'a MetadataMap, key: &str) -> Result<Option<&'a [u8]>, Status> {
    let mut values = metadata.get_all(key).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Status::unauthenticated(MULTIPLE_TOKENS));
    }
    Ok(Some(value.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub(crate) fn bearer_credentials(authorization: &[u8]) -> Option<&[u8]> {
    let scheme = authorization.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = authorization.get(7..)?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut output = [0; 32];
    output.copy_from_slice(digest.as_ref());
    output
}

fn read_tokens_file(path: &Path, tenancy_enabled: bool) -> anyhow::Result<TokenSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{TOKENS_FLAG} {}: cannot read the file", path.display()))?;
    parse_tokens(&text, tenancy_enabled)
        .with_context(|| format!("{TOKENS_FLAG} {}", path.display()))
}

/// Parses the file's text. Messages name lines, never tokens.
fn parse_tokens(text: &str, tenancy_enabled: bool) -> anyhow::Result<TokenSet> {
    let mut entries = Vec::new();
    let mut line_of_digest: HashMap<[u8; 32], usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The token, then optionally the rest of the line: the tenant list.
        let (token, tenants) = match line.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((token, tenants)) => (token, Some(tenants)),
            None => (line, None),
        };
        // gRPC metadata values are visible ASCII; anything else could never be presented.
        ensure!(
            token.bytes().all(|byte| byte.is_ascii_graphic()),
            "line {line_number}: a token must be visible ASCII characters"
        );
        let grant = match tenants {
            None => Grant::AnyTenant,
            Some(list) => {
                ensure!(
                    tenancy_enabled,
                    "line {line_number}: binds a token to tenants, which needs --multi-tenancy.enabled"
                );
                let tenants: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|tenant| !tenant.is_empty())
                    .map(str::to_owned)
                    .collect();
                ensure!(!tenants.is_empty(), "line {line_number}: empty tenant list");
                ensure!(
                    !tenants
                        .iter()
                        .any(|tenant| tenant.contains(|c: char| c.is_ascii_whitespace())),
                    "line {line_number}: expected `token` or `token tenant[,tenant]` (tenants separated by commas)"
                );
                Grant::Tenants(tenants.into())
            }
        };
        let digest = sha256(token.as_bytes());
        if let Some(first_line) = line_of_digest.insert(digest, line_number) {
            bail!("line {line_number}: the same token as line {first_line}");
        }
        entries.push(TokenEntry { digest, grant });
    }
    ensure!(!entries.is_empty(), "no token in the file");
    Ok(TokenSet { entries })
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic::metadata::MetadataValue;

    use super::*;

    fn tokens(text: &str, tenancy_enabled: bool) -> BearerTokens {
        BearerTokens {
            path: PathBuf::from("tokens"),
            tenancy_enabled,
            current: RwLock::new(Arc::new(parse_tokens(text, tenancy_enabled).unwrap())),
            last_seen: Mutex::new(None),
        }
    }

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (key, value) in pairs {
            map.append(*key, MetadataValue::from_static(value));
        }
        map
    }

    #[test]
    fn tokens_grant_any_tenant_or_their_tenants() {
        let set = tokens("# ops\nalpha\n\n  beta acme, globex \n", true);
        assert_eq!(set.grant_of(b"alpha"), Some(Grant::AnyTenant));
        let Some(Grant::Tenants(tenants)) = set.grant_of(b"beta") else {
            panic!("beta is bound");
        };
        assert_eq!(&*tenants, ["acme".to_owned(), "globex".to_owned()]);
        assert_eq!(set.grant_of(b"gamma"), None);
        assert_eq!(set.grant_of(b"alph"), None);
        assert_eq!(set.grant_of(b""), None);
    }

    #[test]
    fn a_bound_grant_permits_only_its_tenants() {
        let grant = Grant::Tenants(vec!["acme".to_owned()].into());
        assert!(grant.permits(&Tenant::new("acme")).is_ok());
        let refused = grant.permits(&Tenant::new("globex")).unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(Grant::AnyTenant.permits(&Tenant::new("globex")).is_ok());
    }

    #[test]
    fn grpc_requests_present_the_token_as_jaeger_or_as_authorization() {
        let set = tokens("alpha\n", false);
        let jaeger = metadata(&[("bearer.token", "alpha")]);
        assert_eq!(set.authenticate(&jaeger).unwrap(), Grant::AnyTenant);
        let standard = metadata(&[("authorization", "Bearer alpha")]);
        assert_eq!(set.authenticate(&standard).unwrap(), Grant::AnyTenant);
        let both = metadata(&[("authorization", "Bearer alpha"), ("bearer.token", "user")]);
        assert_eq!(set.authenticate(&both).unwrap(), Grant::AnyTenant);
        let basic_then_jaeger =
            metadata(&[("authorization", "Basic eA=="), ("bearer.token", "alpha")]);
        assert_eq!(
            set.authenticate(&basic_then_jaeger).unwrap(),
            Grant::AnyTenant
        );
        let refusals = [
            (metadata(&[]), MISSING_TOKEN),
            (
                metadata(&[("authorization", "Basic YWxwaGE=")]),
                MISSING_TOKEN,
            ),
            (metadata(&[("bearer.token", "wrong")]), INVALID_TOKEN),
            (
                metadata(&[("authorization", "Bearer wrong")]),
                INVALID_TOKEN,
            ),
            (
                metadata(&[("bearer.token", "alpha"), ("bearer.token", "alpha")]),
                MULTIPLE_TOKENS,
            ),
            (
                metadata(&[
                    ("authorization", "Bearer alpha"),
                    ("authorization", "Bearer x"),
                ]),
                MULTIPLE_TOKENS,
            ),
            // The connection's own credentials win over a propagated token.
            (
                metadata(&[("authorization", "Bearer wrong"), ("bearer.token", "alpha")]),
                INVALID_TOKEN,
            ),
        ];
        for (map, message) in refusals {
            let status = set.authenticate(&map).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{map:?}");
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn bad_files_are_refused_by_line_without_quoting_tokens() {
        let cases = [
            ("", "no token"),
            ("# only a comment\n", "no token"),
            ("alpha acme extra\n", "line 1"),
            ("alpha\nalpha\n", "line 2: the same token as line 1"),
            ("alpha ,\n", "line 1: empty tenant list"),
            ("s\u{e9}cret\n", "line 1"),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", parse_tokens(text, true).unwrap_err());
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(!message.contains("alpha"), "{message}");
        }
        let unbound = format!("{:#}", parse_tokens("alpha acme\n", false).unwrap_err());
        assert!(unbound.contains("--multi-tenancy.enabled"), "{unbound}");
        assert!(!unbound.contains("alpha"), "{unbound}");
    }

    #[test]
    fn debug_output_shows_no_token_material() {
        let set = tokens("alpha\n", false);
        let shown = format!("{set:?}");
        assert!(!shown.contains("alpha"), "{shown}");
        let digest = sha256(b"alpha");
        assert!(!shown.contains(&format!("{}", digest[0])), "{shown}");
    }

    #[test]
    fn bearer_credentials_need_the_bearer_scheme() {
        assert_eq!(bearer_credentials(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_credentials(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_credentials(b"Bearer "), None);
        assert_eq!(bearer_credentials(b"Basic abc"), None);
        assert_eq!(bearer_credentials(b"Bear"), None);
    }
}
