//! The request bodies: index templates, searches, trace reads, services and operations. Pure
//! functions of their inputs, so every body has a golden snapshot (`tests/golden/`).

use remote_storage_core::index_term::index_term;
use remote_storage_core::matcher::AttributeCondition;
use remote_storage_core::{TraceQuery, UnixNanos};
use serde_json::{Value, json};

use crate::config::ElasticsearchConfig;
use crate::document::micros;
use crate::indices::{IndexKind, IndexNames};

/// The composable index template of a kind. Every supported line (Elasticsearch 7.10 to 9,
/// OpenSearch 1 to 3) takes the same `_index_template` body: the fields used (keyword, long,
/// integer, binary) and the settings are common to all of them. The mapping is fixed
/// (`dynamic: strict`), so no data can add fields.
pub(crate) fn index_template(
    kind: IndexKind,
    names: &IndexNames,
    config: &ElasticsearchConfig,
) -> (String, Value) {
    let keyword = json!({"type": "keyword"});
    let properties = match kind {
        IndexKind::Span => json!({
            "tenant": keyword,
            "trace_id": keyword,
            "span_id": keyword,
            "service": keyword,
            "operation": keyword,
            "kind": keyword,
            "status": {"type": "integer"},
            "start": {"type": "long"},
            "start_ns": keyword,
            "duration": {"type": "long"},
            "duration_ns": keyword,
            "end_ns": keyword,
            "seq": keyword,
            "terms": keyword,
            "doc_id": keyword,
            "blob": {"type": "binary"},
        }),
        IndexKind::Service => json!({
            "tenant": keyword,
            "service": keyword,
            "operation": keyword,
            "kind": keyword,
        }),
    };
    let refresh = format!(
        "{}s",
        ElasticsearchConfig::REFRESH_INTERVAL.as_secs().max(1)
    );
    let settings = json!({
        "number_of_shards": config.shards,
        "number_of_replicas": config.replicas,
        "refresh_interval": refresh,
    });
    let body = json!({
        "index_patterns": [names.pattern(kind)],
        "priority": 200,
        "template": {
            "settings": {"index": settings},
            "mappings": {"dynamic": "strict", "properties": properties},
        },
        "_meta": {"managed_by": "jaeger-remote-storage", "schema": 1},
    });
    (format!("/_index_template/{}", names.template(kind)), body)
}

/// Search filters of a trace query, and whether they decide the query exactly (every condition
/// is one the index answers exactly), so matching documents need not be decoded and re-checked.
pub(crate) struct SpanFilters {
    /// `bool.filter` clauses.
    pub(crate) clauses: Vec<Value>,
    /// `true` when a document matching `clauses` matches the query.
    pub(crate) exact: bool,
}

/// The filters of `query` for `tenant`. Conditions the index cannot decide exactly (`error`,
/// `span.status`, `span.kind`, scope name/version, resource-only keys, hashed long values) are
/// narrowed as far as the index allows and left to the shared matcher.
pub(crate) fn span_filters(
    tenant: &str,
    query: &TraceQuery,
    conditions: &[AttributeCondition],
) -> SpanFilters {
    let mut clauses = vec![json!({"term": {"tenant": tenant}})];
    let mut exact = true;
    if let Some(service) = &query.service_name {
        clauses.push(json!({"term": {"service": service}}));
    }
    if let Some(operation) = &query.operation_name {
        clauses.push(json!({"term": {"operation": operation}}));
    }
    // Microsecond ranges hold every span of the nanosecond bounds (and a few more at the
    // edges); the exact bounds are checked on `start_ns` and `duration_ns` afterwards.
    if let Some(range) = range(
        query.start_time_min.map(|t| t.0),
        query.start_time_max.map(|t| t.0),
    ) {
        clauses.push(json!({"range": {"start": range}}));
    }
    if let Some(range) = range(query.duration_min, query.duration_max) {
        clauses.push(json!({"range": {"duration": range}}));
    }
    for condition in conditions {
        match condition {
            AttributeCondition::Anywhere { key, value } => {
                let term = index_term(key, value);
                exact &= !term.hashed;
                clauses.push(json!({"term": {"terms": term.text}}));
            }
            AttributeCondition::Resource { key, value } => {
                // The term is found on some level; the matcher checks it is the resource's.
                clauses.push(json!({"term": {"terms": index_term(key, value).text}}));
                exact = false;
            }
            AttributeCondition::Kind(kind) => {
                clauses.push(
                    json!({"term": {"kind": remote_storage_core::model::span_kind_name(*kind)}}),
                );
            }
            AttributeCondition::Status(code) => {
                clauses.push(json!({"term": {"status": *code as i32}}));
            }
            AttributeCondition::Error(_)
            | AttributeCondition::ScopeName(_)
            | AttributeCondition::ScopeVersion(_) => exact = false,
        }
    }
    SpanFilters { clauses, exact }
}

/// A range over a microsecond field that holds every value of the nanosecond bounds.
fn range(min: Option<u64>, max: Option<u64>) -> Option<Value> {
    match (min, max) {
        (None, None) => None,
        (min, max) => {
            let mut range = serde_json::Map::new();
            if let Some(min) = min {
                range.insert("gte".to_owned(), json!(micros(min)));
            }
            if let Some(max) = max {
                range.insert("lte".to_owned(), json!(micros(max)));
            }
            Some(Value::Object(range))
        }
    }
}

/// One page of matching span documents, newest start first to the nanosecond; at equal starts
/// the larger trace ID first (the contract's tie rule), then by document ID, so paging with
/// `search_after` neither skips nor repeats. With `whole_spans`
/// the stored span comes back for the matcher; otherwise only the trace ID and exact times.
pub(crate) fn span_search_page(
    clauses: &[Value],
    size: usize,
    search_after: Option<&Value>,
    whole_spans: bool,
) -> Value {
    let source: &[&str] = if whole_spans {
        &["trace_id", "start_ns", "duration_ns", "blob"]
    } else {
        &["trace_id", "start_ns", "duration_ns"]
    };
    let mut body = json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {"filter": clauses}},
        "sort": [{"start_ns": "desc"}, {"trace_id": "desc"}, {"doc_id": "asc"}],
        "_source": source,
    });
    if let Some(after) = search_after {
        body["search_after"] = after.clone();
    }
    body
}

/// One page of a trace's span documents, in write order (`seq`, then document ID).
pub(crate) fn trace_page(
    tenant: &str,
    trace_id_hex: &str,
    size: usize,
    search_after: Option<&Value>,
) -> Value {
    let mut body = json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {"filter": [
            {"term": {"tenant": tenant}},
            {"term": {"trace_id": trace_id_hex}},
        ]}},
        "sort": [{"seq": "asc"}, {"doc_id": "asc"}],
        "_source": ["blob"],
    });
    if let Some(after) = search_after {
        body["search_after"] = after.clone();
    }
    body
}

/// The earliest start and latest end of each of `trace_ids` (the time hints of a search
/// result), exact to the nanosecond.
pub(crate) fn trace_extents(tenant: &str, trace_ids: &[String]) -> Value {
    json!({
        "size": 0,
        "query": {"bool": {"filter": [
            {"term": {"tenant": tenant}},
            {"terms": {"trace_id": trace_ids}},
        ]}},
        "aggs": {"traces": {
            "terms": {"field": "trace_id", "size": trace_ids.len().max(1)},
            "aggs": {
                "first": {"top_hits": {"size": 1, "sort": [{"start_ns": "asc"}], "_source": ["start_ns"]}},
                "last": {"top_hits": {"size": 1, "sort": [{"end_ns": "desc"}], "_source": ["end_ns"]}},
            },
        }},
    })
}

/// Most buckets one terms aggregation asks for (Elasticsearch's default `search.max_buckets`).
pub(crate) const MAX_BUCKETS: usize = 65_536;

/// The distinct services of a tenant.
pub(crate) fn services(tenant: &str) -> Value {
    json!({
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"tenant": tenant}}]}},
        "aggs": {"services": {"terms": {"field": "service", "size": MAX_BUCKETS}}},
    })
}

/// The distinct (operation, kind) pairs of a service, optionally of one kind.
pub(crate) fn operations(tenant: &str, service: &str, kind: Option<&str>) -> Value {
    let mut filter = vec![
        json!({"term": {"tenant": tenant}}),
        json!({"term": {"service": service}}),
    ];
    if let Some(kind) = kind {
        filter.push(json!({"term": {"kind": kind}}));
    }
    json!({
        "size": 0,
        "query": {"bool": {"filter": filter}},
        "aggs": {"operations": {
            "terms": {"field": "operation", "size": MAX_BUCKETS},
            "aggs": {"kinds": {"terms": {"field": "kind", "size": 16}}},
        }},
    })
}

/// The span documents that start in a window (for dependencies: their traces are read whole).
pub(crate) fn window_clauses(tenant: &str, start: UnixNanos, end: UnixNanos) -> Vec<Value> {
    // Whole microseconds: a few spans just outside the window may come too; the dependency
    // counter decides on exact times.
    vec![
        json!({"term": {"tenant": tenant}}),
        json!({"range": {"start": {"gte": micros(start.0), "lte": micros(end.0)}}}),
    ]
}

/// Search parameters that make a list or pattern of indices that do not exist yet an empty
/// answer, not an error.
pub(crate) const LENIENT_INDICES: &str = "ignore_unavailable=true&allow_no_indices=true";

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use remote_storage_core::matcher::SpanMatcher;
    use remote_storage_core::query::AttributeFilter;

    use super::*;

    fn query(attributes: &[(&str, &str)]) -> TraceQuery {
        let mut query = TraceQuery::all(NonZeroUsize::new(20).unwrap());
        query.service_name = Some("svc".into());
        query.attributes = attributes
            .iter()
            .map(|(key, value)| AttributeFilter {
                key: (*key).into(),
                value: (*value).into(),
            })
            .collect();
        query
    }

    fn filters(query: &TraceQuery) -> SpanFilters {
        let matcher = SpanMatcher::new(query);
        span_filters("", query, matcher.conditions())
    }

    #[test]
    fn plain_attribute_conditions_are_exact_in_the_index() {
        let exact = filters(&query(&[("http.status_code", "500")]));
        assert!(exact.exact);
        assert!(
            exact
                .clauses
                .contains(&json!({"term": {"terms": "16:http.status_code=500"}}))
        );
        assert!(!filters(&query(&[("resource.host", "a")])).exact);
        assert!(!filters(&query(&[("error", "true")])).exact);
        assert!(!filters(&query(&[("sql", &"x".repeat(400))])).exact);
    }
}
