//! Which engine and version line a cluster runs, from `GET /`, and whether it is supported.

use std::fmt;

use serde_json::Value;

use crate::error::EsError;

/// The engine behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Elastic's Elasticsearch.
    Elasticsearch,
    /// OpenSearch (answers `version.distribution: "opensearch"`).
    OpenSearch,
}

/// An engine and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// Elasticsearch or OpenSearch.
    pub distribution: Distribution,
    /// `version.number` as answered.
    pub number: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

/// The request and template dialect a version line needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionLine {
    /// Elasticsearch 7.10 – 7.17.
    Elasticsearch7,
    /// Elasticsearch 8 and 9.
    Elasticsearch8,
    /// OpenSearch 1, 2 and 3.
    OpenSearch,
}

impl EngineVersion {
    /// Reads the answer of `GET /`.
    pub fn from_root(root: &Value) -> Result<Self, EsError> {
        let version = root.get("version").ok_or_else(|| EsError::Answer {
            what: "GET /".to_owned(),
            detail: "no `version` object: is this Elasticsearch or OpenSearch?".to_owned(),
        })?;
        let number = version
            .get("number")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let distribution = match version.get("distribution").and_then(Value::as_str) {
            Some("opensearch") => Distribution::OpenSearch,
            _ => Distribution::Elasticsearch,
        };
        let mut parts = number.split(['.', '-']).map(str::parse::<u32>);
        let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
            return Err(EsError::Answer {
                what: "GET /".to_owned(),
                detail: format!("version.number {number:?} is not MAJOR.MINOR…"),
            });
        };
        Ok(Self {
            distribution,
            number,
            major,
            minor,
        })
    }

    /// The dialect for this version, or an error naming the version when it is not supported:
    /// Elasticsearch 7.10 up to 9, OpenSearch 1 up to 3.
    pub fn line(&self) -> Result<VersionLine, EsError> {
        let line = match (self.distribution, self.major, self.minor) {
            (Distribution::Elasticsearch, 7, minor) if minor >= 10 => VersionLine::Elasticsearch7,
            (Distribution::Elasticsearch, 8 | 9, _) => VersionLine::Elasticsearch8,
            (Distribution::OpenSearch, 1..=3, _) => VersionLine::OpenSearch,
            _ => {
                return Err(EsError::Unsupported(format!(
                    "{self} is not supported: this backend needs Elasticsearch 7.10 to 9.x or \
                     OpenSearch 1.x to 3.x"
                )));
            }
        };
        Ok(line)
    }
}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.distribution {
            Distribution::Elasticsearch => "Elasticsearch",
            Distribution::OpenSearch => "OpenSearch",
        };
        write!(f, "{name} {}", self.number)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn version(root: Value) -> Result<VersionLine, String> {
        EngineVersion::from_root(&root)
            .and_then(|version| version.line())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn supported_lines_are_recognised() {
        let es = |number: &str| json!({"version": {"number": number}});
        let os =
            |number: &str| json!({"version": {"number": number, "distribution": "opensearch"}});
        assert_eq!(version(es("7.17.25")), Ok(VersionLine::Elasticsearch7));
        assert_eq!(version(es("8.19.2")), Ok(VersionLine::Elasticsearch8));
        assert_eq!(version(es("9.4.0")), Ok(VersionLine::Elasticsearch8));
        assert_eq!(version(os("1.3.20")), Ok(VersionLine::OpenSearch));
        assert_eq!(version(os("3.8.0")), Ok(VersionLine::OpenSearch));
    }

    #[test]
    fn unsupported_versions_are_named() {
        let error = version(json!({"version": {"number": "6.8.23"}})).unwrap_err();
        assert!(
            error.contains("Elasticsearch 6.8.23 is not supported"),
            "{error}"
        );
        let error = version(json!({"version": {"number": "4.0.0", "distribution": "opensearch"}}))
            .unwrap_err();
        assert!(error.contains("OpenSearch 4.0.0"), "{error}");
        assert!(version(json!({"name": "not a search engine"})).is_err());
    }
}
