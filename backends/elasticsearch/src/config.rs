//! Settings of the Elasticsearch/OpenSearch backend, with their defaults written once.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use remote_storage_core::StoreError;

/// How spans are split into time-rotated indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexRotation {
    /// One span index per UTC day: `<prefix>-span-YYYY-MM-DD`.
    #[default]
    Day,
    /// One span index per UTC hour: `<prefix>-span-YYYY-MM-DD-HH` (high volume, short retention).
    Hour,
}

impl IndexRotation {
    /// The width of one index in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Self::Day => 86_400,
            Self::Hour => 3_600,
        }
    }
}

impl fmt::Display for IndexRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Day => "day",
            Self::Hour => "hour",
        })
    }
}

impl FromStr for IndexRotation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "day" => Ok(Self::Day),
            "hour" => Ok(Self::Hour),
            _ => Err(format!("index rotation {text:?} is not `day` or `hour`")),
        }
    }
}

/// When an acknowledged bulk write becomes searchable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshPolicy {
    /// `refresh=wait_for`: the bulk request returns once its documents are searchable, so an
    /// acknowledged Export is readable at once (declared `Visibility::OnReturn`).
    #[default]
    WaitFor,
    /// No refresh: documents become searchable at the engine's next periodic refresh (the
    /// index templates set `refresh_interval` to [`ElasticsearchConfig::REFRESH_INTERVAL`]);
    /// cheaper writes, declared `Visibility::WithinRefresh`.
    None,
}

impl fmt::Display for RefreshPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WaitFor => "wait_for",
            Self::None => "none",
        })
    }
}

impl FromStr for RefreshPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "wait_for" => Ok(Self::WaitFor),
            "none" | "false" => Ok(Self::None),
            _ => Err(format!(
                "refresh policy {text:?} is not `wait_for` or `none`"
            )),
        }
    }
}

/// How requests authenticate. Secrets come from files so configurations can be committed.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password (secret).
        password: String,
    },
    /// `Authorization: ApiKey <key>` (Elasticsearch API keys, base64 `id:key`).
    ApiKey(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, .. }}"),
            Self::ApiKey(_) => f.write_str("ApiKey(..)"),
            Self::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}

/// TLS settings for `https://` nodes (rustls with the ring provider).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM bundle of CAs to trust, besides the platform's.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (with `key`) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Accept any server certificate. Only for tests: anyone on the path can read and change
    /// the traffic.
    pub insecure_skip_verify: bool,
}

/// Settings of the Elasticsearch/OpenSearch backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticsearchConfig {
    /// Node URLs; requests are spread over them and fail over to the next on connection errors.
    pub server_urls: Vec<String>,
    /// Prefix of every index and template name (lower case; `-` separates it from the rest).
    pub index_prefix: String,
    /// Authentication.
    pub credentials: Credentials,
    /// TLS for `https://` nodes.
    pub tls: TlsConfig,
    /// How long spans are kept: whole indices are deleted once every span they can hold is
    /// older than this.
    pub retention: Duration,
    /// Index width.
    pub rotation: IndexRotation,
    /// Primary shards of new indices.
    pub shards: u32,
    /// Replicas of new indices.
    pub replicas: u32,
    /// Install the index templates at start-up (off: use templates managed elsewhere, e.g.
    /// with ILM/ISM policies).
    pub create_templates: bool,
    /// When writes become searchable.
    pub refresh: RefreshPolicy,
    /// Gzip `_bulk` bodies (about a fifth of the bytes; costs our side about a third of its
    /// ingest CPU, so a store next to the engine may turn it off).
    pub http_compression: bool,
    /// Bound on one HTTP request (connect, send, answer).
    pub request_timeout: Duration,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// How often expired indices are looked for and deleted.
    pub maintenance_interval: Duration,
}

impl ElasticsearchConfig {
    /// The node used when none is given.
    pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:9200";
    /// Index prefix by default.
    pub const DEFAULT_INDEX_PREFIX: &str = "jaeger-rs";
    /// How long spans are kept by default.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
    /// Primary shards by default: one shard holds tens of gigabytes; raise it for more.
    pub const DEFAULT_SHARDS: u32 = 1;
    /// Replicas by default.
    pub const DEFAULT_REPLICAS: u32 = 1;
    /// Request timeout by default.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// Connect timeout by default.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Maintenance interval by default.
    pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(300);
    /// The `refresh_interval` the templates set: the visibility bound with `refresh=none`.
    pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

    /// Defaults, against `server_url`.
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            server_urls: vec![server_url.into()],
            index_prefix: Self::DEFAULT_INDEX_PREFIX.to_owned(),
            credentials: Credentials::None,
            tls: TlsConfig::default(),
            retention: Self::DEFAULT_RETENTION,
            rotation: IndexRotation::Day,
            shards: Self::DEFAULT_SHARDS,
            replicas: Self::DEFAULT_REPLICAS,
            create_templates: true,
            refresh: RefreshPolicy::WaitFor,
            http_compression: true,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            maintenance_interval: Self::DEFAULT_MAINTENANCE_INTERVAL,
        }
    }

    /// Fails fast, naming the bad setting.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.server_urls.is_empty() {
            return Err(StoreError::invalid_argument(
                "es.server-urls: at least one node URL is required",
            ));
        }
        for url in &self.server_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(StoreError::invalid_argument(format!(
                    "es.server-urls: {url:?} must start with http:// or https://"
                )));
            }
        }
        let prefix = &self.index_prefix;
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 100
            && !prefix.starts_with(['-', '_', '+'])
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_prefix {
            return Err(StoreError::invalid_argument(format!(
                "es.index-prefix {prefix:?} must be 1-100 lower-case letters, digits, `-` or `_`, \
                 not starting with `-` or `_`"
            )));
        }
        if self.shards == 0 {
            return Err(StoreError::invalid_argument("es.shards must be at least 1"));
        }
        for (name, value) in [
            ("es.retention", self.retention),
            ("es.request-timeout", self.request_timeout),
            ("es.connect-timeout", self.connect_timeout),
            ("es.maintenance-interval", self.maintenance_interval),
        ] {
            if value.is_zero() {
                return Err(StoreError::invalid_argument(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(StoreError::invalid_argument(
                "es.tls.cert and es.tls.key must be given together",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_setting() {
        let config = ElasticsearchConfig::new("http://127.0.0.1:9200");
        assert!(config.validate().is_ok());
        let error = |change: fn(&mut ElasticsearchConfig)| {
            let mut config = ElasticsearchConfig::new("http://127.0.0.1:9200");
            change(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert!(
            error(|c| c.server_urls = vec!["127.0.0.1:9200".into()]).contains("es.server-urls")
        );
        assert!(error(|c| c.index_prefix = "Bad".into()).contains("es.index-prefix"));
        assert!(error(|c| c.shards = 0).contains("es.shards"));
        assert!(error(|c| c.retention = Duration::ZERO).contains("es.retention"));
        assert!(error(|c| c.tls.cert = Some("c.pem".into())).contains("es.tls.key"));
    }

    #[test]
    fn enums_parse_what_they_display() {
        for rotation in [IndexRotation::Day, IndexRotation::Hour] {
            assert_eq!(rotation.to_string().parse::<IndexRotation>(), Ok(rotation));
        }
        for refresh in [RefreshPolicy::WaitFor, RefreshPolicy::None] {
            assert_eq!(refresh.to_string().parse::<RefreshPolicy>(), Ok(refresh));
        }
        assert!("weekly".parse::<IndexRotation>().is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let basic = Credentials::Basic {
            username: "elastic".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{basic:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::ApiKey("k3y".into())).contains("k3y"));
    }
}
