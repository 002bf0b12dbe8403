//! Settings of the PostgreSQL backend.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use remote_storage_core::StoreError;

/// Width of one time partition. Fixed when a schema is created: a store opened later with a
/// different span keeps the stored one (and logs a warning), since partitions must not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionSpan {
    /// One partition per UTC day (the default; fits retentions of days to weeks).
    #[default]
    Day,
    /// One partition per UTC hour (for high volume or retentions of hours).
    Hour,
}

impl PartitionSpan {
    /// The width in nanoseconds.
    pub fn nanos(self) -> i64 {
        match self {
            Self::Day => 86_400 * 1_000_000_000,
            Self::Hour => 3_600 * 1_000_000_000,
        }
    }

    /// The name stored in the schema's `settings` table and accepted by [`PartitionSpan::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Hour => "hour",
        }
    }

    /// Parses `day` or `hour` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "day" => Some(Self::Day),
            "hour" => Some(Self::Hour),
            _ => None,
        }
    }
}

impl fmt::Display for PartitionSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PartitionSpan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| format!("partition span {text:?} is not `day` or `hour`"))
    }
}

/// Settings of the PostgreSQL backend.
///
/// TLS is chosen by the URL's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
/// `verify-full`, plus `sslrootcert`), with rustls and the ring provider.
#[derive(Clone)]
pub struct PostgresConfig {
    /// Connection URL, e.g. `postgres://user:secret@db:5432/jaeger?sslmode=require`.
    /// Secret: never printed by `Debug`.
    pub url: String,
    /// Schema holding every table (created when missing). Lower-case letters, digits and `_`,
    /// starting with a letter or `_`, at most 63 bytes.
    pub schema: String,
    /// Pool size.
    pub max_connections: NonZeroU32,
    /// Bound on establishing one connection (TCP, TLS and authentication).
    pub connect_timeout: Duration,
    /// Bound on waiting for a pooled connection; past it a call fails as unavailable.
    pub acquire_timeout: Duration,
    /// Bound on one store call's database work; past it the call fails as unavailable.
    pub query_timeout: Duration,
    /// How long spans are kept. Whole partitions are dropped once every span they can hold
    /// is older than this.
    pub retention: Duration,
    /// Partition width for new schemas.
    pub partition_span: PartitionSpan,
    /// How often the background task creates upcoming partitions and drops expired ones.
    pub maintenance_interval: Duration,
    /// Do not run the embedded migrations at start-up (the schema is managed elsewhere).
    pub skip_migrations: bool,
    /// Largest page of candidate rows (trace chunks) one search statement returns. Searches
    /// walk newest first in pages that grow from twice the search depth up to this; results
    /// are the same for any value.
    pub search_walk_rows: NonZeroU32,
}

impl PostgresConfig {
    /// Schema used by default.
    pub const DEFAULT_SCHEMA: &str = "jaeger";
    /// Pool size by default.
    pub const DEFAULT_MAX_CONNECTIONS: NonZeroU32 = NonZeroU32::new(10).unwrap();
    /// Bound on establishing one connection by default.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Bound on waiting for a pooled connection by default.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Bound on one store call's database work by default.
    pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(60);
    /// How long spans are kept by default.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
    /// How often partitions are maintained by default.
    pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(300);

    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: Self::DEFAULT_SCHEMA.to_owned(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            query_timeout: Self::DEFAULT_QUERY_TIMEOUT,
            retention: Self::DEFAULT_RETENTION,
            partition_span: PartitionSpan::Day,
            maintenance_interval: Self::DEFAULT_MAINTENANCE_INTERVAL,
            skip_migrations: false,
            search_walk_rows: NonZeroU32::new(2_000).unwrap_or(NonZeroU32::MIN),
        }
    }

    /// Fails fast, naming the bad setting.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.url.is_empty() {
            return Err(StoreError::invalid_argument("postgres.url is required"));
        }
        validate_schema_name(&self.schema)?;
        for (name, value) in [
            ("postgres.connect-timeout", self.connect_timeout),
            ("postgres.acquire-timeout", self.acquire_timeout),
            ("postgres.query-timeout", self.query_timeout),
            ("postgres.retention", self.retention),
            ("postgres.maintenance-interval", self.maintenance_interval),
        ] {
            if value.is_zero() {
                return Err(StoreError::invalid_argument(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        Ok(())
    }
}

/// Schema names are interpolated into DDL, so only plain identifiers are accepted.
pub(crate) fn validate_schema_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let valid_start = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_');
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_start || !valid_rest || schema.len() > 63 || schema.starts_with("pg_") {
        return Err(StoreError::invalid_argument(format!(
            "postgres.schema {schema:?} must be 1-63 lower-case letters, digits or `_`, \
             start with a letter or `_`, and not start with `pg_`"
        )));
    }
    Ok(())
}

/// The URL with any password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let mut redacted = url.to_owned();
    if let Some(scheme_end) = redacted.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = redacted[authority_start..]
            .find(['/', '?'])
            .map_or(redacted.len(), |offset| authority_start + offset);
        if let Some(at) = redacted[authority_start..authority_end].rfind('@') {
            let userinfo_end = authority_start + at;
            if let Some(colon) = redacted[authority_start..userinfo_end].find(':') {
                redacted.replace_range(authority_start + colon + 1..userinfo_end, "***");
            }
        }
    }
    if let Some(query_start) = redacted.find('?') {
        let (base, query) = redacted.split_at(query_start + 1);
        let cleaned: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        redacted = format!("{base}{}", cleaned.join("&"));
    }
    redacted
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("retention", &self.retention)
            .field("partition_span", &self.partition_span)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("skip_migrations", &self.skip_migrations)
            .field("search_walk_rows", &self.search_walk_rows)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let config = PostgresConfig::new(
            "postgres://jaeger:s3cret@db:5432/traces?password=x&sslmode=require",
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(!printed.contains("password=x"), "{printed}");
        assert!(
            printed.contains("postgres://jaeger:***@db:5432/traces"),
            "{printed}"
        );
        assert!(printed.contains("sslmode=require"), "{printed}");
    }

    #[test]
    fn schema_names_must_be_plain_identifiers() {
        assert!(validate_schema_name("jaeger").is_ok());
        assert!(validate_schema_name("_t1_x").is_ok());
        for bad in ["", "Jaeger", "1abc", "a-b", "a\"b", "pg_x", &"a".repeat(64)] {
            assert!(validate_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_setting() {
        let mut config = PostgresConfig::new("postgres://localhost/db");
        assert!(config.validate().is_ok());
        config.retention = Duration::ZERO;
        let error = config.validate().unwrap_err();
        assert!(error.to_string().contains("postgres.retention"));
    }
}
