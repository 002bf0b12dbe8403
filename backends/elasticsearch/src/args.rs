//! The Elasticsearch/OpenSearch backend's command-line flags (`--es.*`, feature `cli`).

use std::path::PathBuf;

use remote_storage_core::StoreError;
use remote_storage_core::secret_file::read_secret_file;
use remote_storage_core::units::HumanDuration;

use crate::config::{Credentials, ElasticsearchConfig, IndexRotation, RefreshPolicy, TlsConfig};

/// Flags of the Elasticsearch/OpenSearch backend. Every flag also reads
/// `JAEGER_REMOTE_STORAGE_ES_<NAME>`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Elasticsearch/OpenSearch backend (--backend elasticsearch)")]
pub struct ElasticsearchArgs {
    /// Node URLs, comma-separated; requests are spread over them and fail over.
    #[arg(
        id = "es.server-urls", long = "es.server-urls",
        env = "JAEGER_REMOTE_STORAGE_ES_SERVER_URLS",
        value_delimiter = ',',
        default_value = ElasticsearchConfig::DEFAULT_SERVER_URL
    )]
    pub server_urls: Vec<String>,

    /// Prefix of every index and template name.
    #[arg(
        id = "es.index-prefix", long = "es.index-prefix",
        env = "JAEGER_REMOTE_STORAGE_ES_INDEX_PREFIX",
        default_value = ElasticsearchConfig::DEFAULT_INDEX_PREFIX
    )]
    pub index_prefix: String,

    /// User name for HTTP basic authentication (with `--es.password-file`).
    #[arg(
        id = "es.username",
        long = "es.username",
        env = "JAEGER_REMOTE_STORAGE_ES_USERNAME"
    )]
    pub username: Option<String>,

    /// File holding the password of `--es.username`.
    #[arg(
        id = "es.password-file",
        long = "es.password-file",
        env = "JAEGER_REMOTE_STORAGE_ES_PASSWORD_FILE"
    )]
    pub password_file: Option<PathBuf>,

    /// File holding an API key (`Authorization: ApiKey …`).
    #[arg(
        id = "es.api-key-file",
        long = "es.api-key-file",
        env = "JAEGER_REMOTE_STORAGE_ES_API_KEY_FILE"
    )]
    pub api_key_file: Option<PathBuf>,

    /// File holding a bearer token (`Authorization: Bearer …`).
    #[arg(
        id = "es.bearer-token-file",
        long = "es.bearer-token-file",
        env = "JAEGER_REMOTE_STORAGE_ES_BEARER_TOKEN_FILE"
    )]
    pub bearer_token_file: Option<PathBuf>,

    /// PEM bundle of CAs to trust for https:// nodes.
    #[arg(
        id = "es.tls.ca",
        long = "es.tls.ca",
        env = "JAEGER_REMOTE_STORAGE_ES_TLS_CA"
    )]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate for mutual TLS (with `--es.tls.key`).
    #[arg(
        id = "es.tls.cert",
        long = "es.tls.cert",
        env = "JAEGER_REMOTE_STORAGE_ES_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--es.tls.cert`.
    #[arg(
        id = "es.tls.key",
        long = "es.tls.key",
        env = "JAEGER_REMOTE_STORAGE_ES_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Do not verify server certificates. INSECURE: only for tests.
    #[arg(
        id = "es.tls.insecure-skip-verify",
        long = "es.tls.insecure-skip-verify",
        env = "JAEGER_REMOTE_STORAGE_ES_TLS_INSECURE_SKIP_VERIFY"
    )]
    pub tls_insecure_skip_verify: bool,

    /// How long spans are kept; whole indices are deleted once expired.
    #[arg(
        id = "es.retention", long = "es.retention",
        value_name = "DURATION",
        env = "JAEGER_REMOTE_STORAGE_ES_RETENTION",
        default_value_t = HumanDuration(ElasticsearchConfig::DEFAULT_RETENTION)
    )]
    pub retention: HumanDuration,

    /// Index width: `day` or `hour`.
    #[arg(
        id = "es.index-rotation", long = "es.index-rotation",
        env = "JAEGER_REMOTE_STORAGE_ES_INDEX_ROTATION",
        default_value_t = IndexRotation::default()
    )]
    pub index_rotation: IndexRotation,

    /// Primary shards of new indices.
    #[arg(
        id = "es.shards", long = "es.shards",
        env = "JAEGER_REMOTE_STORAGE_ES_SHARDS",
        default_value_t = ElasticsearchConfig::DEFAULT_SHARDS
    )]
    pub shards: u32,

    /// Replicas of new indices.
    #[arg(
        id = "es.replicas", long = "es.replicas",
        env = "JAEGER_REMOTE_STORAGE_ES_REPLICAS",
        default_value_t = ElasticsearchConfig::DEFAULT_REPLICAS
    )]
    pub replicas: u32,

    /// Install the index templates at start-up (`false`: use templates managed elsewhere).
    #[arg(
        id = "es.create-templates", long = "es.create-templates",
        env = "JAEGER_REMOTE_STORAGE_ES_CREATE_TEMPLATES",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub create_templates: bool,

    /// Gzip `_bulk` request bodies (about 5x fewer bytes on the wire, for about a third of
    /// this server's ingest CPU; `false` suits an engine on the same host or network).
    #[arg(
        id = "es.http-compression", long = "es.http-compression",
        env = "JAEGER_REMOTE_STORAGE_ES_HTTP_COMPRESSION",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub http_compression: bool,

    /// `wait_for`: an acknowledged Export is searchable at once; `none`: searchable after the
    /// next refresh (cheaper writes).
    #[arg(
        id = "es.refresh", long = "es.refresh",
        env = "JAEGER_REMOTE_STORAGE_ES_REFRESH",
        default_value_t = RefreshPolicy::default()
    )]
    pub refresh: RefreshPolicy,

    /// Bound on one HTTP request.
    #[arg(
        id = "es.request-timeout", long = "es.request-timeout",
        env = "JAEGER_REMOTE_STORAGE_ES_REQUEST_TIMEOUT",
        default_value_t = HumanDuration(ElasticsearchConfig::DEFAULT_REQUEST_TIMEOUT)
    )]
    pub request_timeout: HumanDuration,

    /// Bound on establishing one connection.
    #[arg(
        id = "es.connect-timeout", long = "es.connect-timeout",
        env = "JAEGER_REMOTE_STORAGE_ES_CONNECT_TIMEOUT",
        default_value_t = HumanDuration(ElasticsearchConfig::DEFAULT_CONNECT_TIMEOUT)
    )]
    pub connect_timeout: HumanDuration,

    /// How often expired indices are deleted.
    #[arg(
        id = "es.maintenance-interval", long = "es.maintenance-interval",
        env = "JAEGER_REMOTE_STORAGE_ES_MAINTENANCE_INTERVAL",
        default_value_t = HumanDuration(ElasticsearchConfig::DEFAULT_MAINTENANCE_INTERVAL)
    )]
    pub maintenance_interval: HumanDuration,
}

impl TryFrom<&ElasticsearchArgs> for ElasticsearchConfig {
    type Error = StoreError;

    /// The settings the flags describe, with secrets read from their files, validated; errors
    /// name the flag.
    fn try_from(args: &ElasticsearchArgs) -> Result<Self, Self::Error> {
        let given = [
            args.username.is_some() || args.password_file.is_some(),
            args.api_key_file.is_some(),
            args.bearer_token_file.is_some(),
        ];
        if given.iter().filter(|given| **given).count() > 1 {
            return Err(StoreError::invalid_argument(
                "give one of --es.username/--es.password-file, --es.api-key-file and \
                 --es.bearer-token-file",
            ));
        }
        let credentials = match (
            &args.username,
            &args.password_file,
            &args.api_key_file,
            &args.bearer_token_file,
        ) {
            (Some(username), Some(password), _, _) => Credentials::Basic {
                username: username.clone(),
                password: read_secret_file(password, "--es.password-file")?,
            },
            (Some(_), None, _, _) | (None, Some(_), _, _) => {
                return Err(StoreError::invalid_argument(
                    "--es.username and --es.password-file must be given together",
                ));
            }
            (None, None, Some(key), _) => {
                Credentials::ApiKey(read_secret_file(key, "--es.api-key-file")?)
            }
            (None, None, None, Some(token)) => {
                Credentials::Bearer(read_secret_file(token, "--es.bearer-token-file")?)
            }
            (None, None, None, None) => Credentials::None,
        };
        let config = Self {
            server_urls: args
                .server_urls
                .iter()
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty())
                .collect(),
            index_prefix: args.index_prefix.clone(),
            credentials,
            tls: TlsConfig {
                ca: args.tls_ca.clone(),
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                insecure_skip_verify: args.tls_insecure_skip_verify,
            },
            retention: args.retention.get(),
            rotation: args.index_rotation,
            shards: args.shards,
            replicas: args.replicas,
            create_templates: args.create_templates,
            refresh: args.refresh,
            http_compression: args.http_compression,
            request_timeout: args.request_timeout.get(),
            connect_timeout: args.connect_timeout.get(),
            maintenance_interval: args.maintenance_interval.get(),
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        es: ElasticsearchArgs,
    }

    fn config(arguments: &[&str]) -> Result<ElasticsearchConfig, String> {
        let all = std::iter::once("test").chain(arguments.iter().copied());
        let command = Command::try_parse_from(all).map_err(|error| error.to_string())?;
        ElasticsearchConfig::try_from(&command.es).map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_are_the_config_defaults() {
        let defaults = config(&[]).unwrap();
        assert_eq!(
            defaults,
            ElasticsearchConfig::new(ElasticsearchConfig::DEFAULT_SERVER_URL)
        );
    }

    #[test]
    fn flags_build_the_config() {
        let es = config(&[
            "--es.server-urls=http://a:9200, https://b:9200",
            "--es.index-prefix=traces",
            "--es.retention=48h",
            "--es.index-rotation=hour",
            "--es.shards=3",
            "--es.replicas=0",
            "--es.create-templates=false",
            "--es.refresh=none",
            "--es.http-compression=false",
        ])
        .unwrap();
        assert_eq!(es.server_urls, ["http://a:9200", "https://b:9200"]);
        assert_eq!(es.index_prefix, "traces");
        assert_eq!(es.retention, std::time::Duration::from_secs(48 * 3600));
        assert_eq!(es.rotation, IndexRotation::Hour);
        assert_eq!((es.shards, es.replicas), (3, 0));
        assert!(!es.create_templates);
        assert_eq!(es.refresh, RefreshPolicy::None);
        assert!(!es.http_compression);
    }

    #[test]
    fn secrets_come_from_files_and_one_kind_at_a_time() {
        let dir = std::env::temp_dir().join(format!("es-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = dir.join("password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let path = password.to_str().unwrap();
        let es = config(&[
            "--es.username=elastic",
            &format!("--es.password-file={path}"),
        ])
        .unwrap();
        assert_eq!(
            es.credentials,
            Credentials::Basic {
                username: "elastic".into(),
                password: "s3cret".into()
            }
        );
        let both = config(&[
            &format!("--es.api-key-file={path}"),
            &format!("--es.bearer-token-file={path}"),
        ]);
        assert!(both.unwrap_err().contains("give one of"));
        assert!(
            config(&["--es.username=elastic"])
                .unwrap_err()
                .contains("together")
        );
        assert!(
            config(&["--es.api-key-file=/nonexistent/key"])
                .unwrap_err()
                .contains("--es.api-key-file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
