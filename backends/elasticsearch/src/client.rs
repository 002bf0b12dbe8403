//! A thin HTTP client for Elasticsearch and OpenSearch on reqwest (rustls): JSON in, JSON out,
//! requests spread over the configured nodes, failing over to the next node when one cannot be
//! reached. No SDK: none speaks both engines well, and the few endpoints used here are stable.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::buffers::BodyPool;
use crate::config::{Credentials, ElasticsearchConfig};
use crate::error::EsError;

/// How much of an error body is kept in error messages.
const ERROR_BODY_LIMIT: usize = 600;

/// Talks to one cluster through any of its nodes.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    nodes: Vec<String>,
    next: AtomicUsize,
    /// Gzip newline-delimited bodies.
    compress: bool,
    /// Buffers of earlier bodies.
    bodies: BodyPool,
}

/// A request body.
pub(crate) enum Body<'a> {
    /// A JSON document.
    Json(&'a Value),
    /// Newline-delimited JSON (`_bulk`), sent gzip-compressed unless `es.http-compression` is
    /// off: bulk bodies are repetitive JSON and base64, a fifth of the bytes once compressed
    /// at the fastest level.
    Ndjson(Vec<u8>),
}

/// Gzip at the fastest level.
pub(crate) fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    gzip_into(bytes, Vec::new())
}

/// Gzip at the fastest level, into `out` (emptied first).
fn gzip_into(bytes: &[u8], mut out: Vec<u8>) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    out.clear();
    out.reserve(bytes.len() / 4);
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

impl Client {
    /// A client for the configured nodes, with its authentication, TLS and timeouts.
    pub(crate) fn new(config: &ElasticsearchConfig) -> Result<Self, EsError> {
        // reqwest is built without a default crypto provider (no aws-lc); ring is the one the
        // rest of the server uses. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization(&config.credentials)? {
            headers.insert(AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout);
        if let Some(ca) = &config.tls.ca {
            let pem = read_file(ca, "es.tls.ca")?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|error| EsError::Setting(format!("es.tls.ca {}: {error}", ca.display())))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
            let mut pem = read_file(cert, "es.tls.cert")?;
            pem.push(b'\n');
            pem.extend(read_file(key, "es.tls.key")?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|error| EsError::Setting(format!("es.tls.cert/es.tls.key: {error}")))?;
            builder = builder.identity(identity);
        }
        if config.tls.insecure_skip_verify {
            tracing::warn!(
                "es.tls.insecure-skip-verify is on: server certificates are NOT verified; anyone \
                 on the network path can read and change trace data. Use it only in tests."
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|error| EsError::Setting(format!("building the HTTP client: {error}")))?;
        Ok(Self {
            http,
            nodes: config
                .server_urls
                .iter()
                .map(|url| url.trim_end_matches('/').to_owned())
                .collect(),
            next: AtomicUsize::new(0),
            compress: config.http_compression,
            bodies: BodyPool::default(),
        })
    }

    /// An empty buffer to encode a `_bulk` body into (one that an earlier request used, when
    /// one is kept). `send` keeps the buffers of the bodies it is given.
    pub(crate) fn body_buffer(&self) -> Vec<u8> {
        self.bodies.take()
    }

    /// Sends a request to one node after another until one answers; returns the status and
    /// the body. `what` names the request in errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
        what: &str,
    ) -> Result<(StatusCode, Bytes), EsError> {
        // Bytes, so each attempt on another node shares the one encoded body.
        let payload: Option<(&str, bool, Bytes)> = match body {
            None => None,
            Some(Body::Json(value)) => Some((
                "application/json",
                false,
                serde_json::to_vec(value)
                    .map_err(|error| EsError::Answer {
                        what: what.to_owned(),
                        detail: format!("request does not encode: {error}"),
                    })?
                    .into(),
            )),
            Some(Body::Ndjson(documents)) if self.compress => {
                let compressed = gzip_into(&documents, self.bodies.take());
                self.bodies.give_back(documents);
                let compressed = compressed.map_err(|error| EsError::Answer {
                    what: what.to_owned(),
                    detail: format!("request does not compress: {error}"),
                })?;
                Some(("application/x-ndjson", true, compressed.into()))
            }
            Some(Body::Ndjson(documents)) => {
                Some(("application/x-ndjson", false, documents.into()))
            }
        };
        let answer = self
            .send_to_any_node(method, path, payload.as_ref(), what)
            .await;
        // Every attempt's request has been dropped by now: keep the body's buffer.
        if let Some(Ok(sent)) = payload.map(|(_, _, bytes)| bytes.try_into_mut()) {
            self.bodies.give_back(sent.into());
        }
        answer
    }

    async fn send_to_any_node(
        &self,
        method: Method,
        path: &str,
        payload: Option<&(&str, bool, Bytes)>,
        what: &str,
    ) -> Result<(StatusCode, Bytes), EsError> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = None;
        for attempt in 0..self.nodes.len() {
            let node = &self.nodes[(first + attempt) % self.nodes.len()];
            let mut request = self.http.request(method.clone(), format!("{node}{path}"));
            if let Some((content_type, gzipped, bytes)) = payload {
                request = request.header(CONTENT_TYPE, *content_type);
                if *gzipped {
                    request = request.header(CONTENT_ENCODING, "gzip");
                }
                request = request.body(bytes.clone());
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let bytes = response
                        .bytes()
                        .await
                        .map_err(|source| EsError::Unreachable {
                            what: what.to_owned(),
                            source,
                        })?;
                    return Ok((status, bytes));
                }
                Err(error) => {
                    tracing::debug!(node, error = %error, "node unreachable, trying the next");
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(source) => Err(EsError::Unreachable {
                what: what.to_owned(),
                source,
            }),
            None => Err(EsError::Setting("es.server-urls is empty".to_owned())),
        }
    }

    /// A request whose answer must be a 2xx JSON document.
    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
        what: &str,
    ) -> Result<Value, EsError> {
        let (status, bytes) = self.send(method, path, body, what).await?;
        if !status.is_success() {
            return Err(status_error(what, status, &bytes));
        }
        parse(what, &bytes)
    }
}

/// The error for a non-2xx answer.
pub(crate) fn status_error(what: &str, status: StatusCode, body: &[u8]) -> EsError {
    let text = String::from_utf8_lossy(body);
    let end = text
        .char_indices()
        .nth(ERROR_BODY_LIMIT)
        .map_or(text.len(), |(index, _)| index);
    EsError::Status {
        what: what.to_owned(),
        status: status.as_u16(),
        body: text[..end].to_owned(),
    }
}

/// Parses a JSON answer.
pub(crate) fn parse(what: &str, bytes: &[u8]) -> Result<Value, EsError> {
    serde_json::from_slice(bytes).map_err(|error| EsError::Answer {
        what: what.to_owned(),
        detail: format!("not JSON: {error}"),
    })
}

fn authorization(credentials: &Credentials) -> Result<Option<HeaderValue>, EsError> {
    let text = match credentials {
        Credentials::None => return Ok(None),
        Credentials::Basic { username, password } => {
            let pair = format!("{username}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Credentials::ApiKey(key) => format!("ApiKey {key}"),
        Credentials::Bearer(token) => format!("Bearer {token}"),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        EsError::Setting("es credentials contain characters not allowed in a header".to_owned())
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

fn read_file(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, EsError> {
    std::fs::read(path)
        .map_err(|error| EsError::Setting(format!("{flag} {}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_sensitive_headers() {
        let basic = authorization(&Credentials::Basic {
            username: "elastic".into(),
            password: "changeme".into(),
        })
        .unwrap()
        .unwrap();
        assert_eq!(basic.to_str().unwrap(), "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==");
        assert!(basic.is_sensitive());
        let key = authorization(&Credentials::ApiKey("abc".into()))
            .unwrap()
            .unwrap();
        assert_eq!(key.to_str().unwrap(), "ApiKey abc");
        assert!(authorization(&Credentials::None).unwrap().is_none());
        assert!(authorization(&Credentials::Bearer("a\nb".into())).is_err());
    }

    #[test]
    fn bulk_bodies_are_gzipped_losslessly() {
        use std::io::Read as _;
        let body = b"{\"index\":{}}\n{\"a\":1}\n".repeat(100);
        let compressed = gzip(&body).unwrap();
        assert!(
            compressed.len() < body.len() / 4,
            "{} bytes",
            compressed.len()
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn error_bodies_are_cut() {
        let long = "x".repeat(5_000);
        let EsError::Status { body, status, .. } =
            status_error("search", StatusCode::BAD_REQUEST, long.as_bytes())
        else {
            panic!("a status error");
        };
        assert_eq!(status, 400);
        assert_eq!(body.len(), ERROR_BODY_LIMIT);
    }
}
