//! Golden snapshots of every request body the backend sends (`tests/golden/*.json`), so a
//! change on the wire shows up in review. One dialect serves every supported version line
//! (Elasticsearch 7.10–9, OpenSearch 1–3), so there is one snapshot per request.
//! `UPDATE_GOLDEN=1 cargo test -p backend-elasticsearch golden` rewrites them.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::testing::span;
use remote_storage_core::{Tenant, TraceQuery, UnixNanos};
use serde_json::{Value, json};

use crate::bulk::encode_write;
use crate::config::{ElasticsearchConfig, IndexRotation};
use crate::indices::{IndexKind, IndexNames};
use crate::requests::{
    index_template, operations, services, span_filters, span_search_page, trace_extents,
    trace_page, window_clauses,
};

fn check(name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert!(
        &expected == actual,
        "{name}: the request body changed (review, then UPDATE_GOLDEN=1):\n{pretty}"
    );
}

fn names() -> IndexNames {
    IndexNames::new("jaeger-rs", IndexRotation::Day)
}

#[test]
fn golden_index_templates() {
    let config = ElasticsearchConfig::new("http://127.0.0.1:9200");
    for (kind, name) in [
        (IndexKind::Span, "template-span"),
        (IndexKind::Service, "template-service"),
    ] {
        let (path, body) = index_template(kind, &names(), &config);
        check(name, &json!({"path": path, "body": body}));
    }
}

#[test]
fn golden_searches() {
    let mut query = TraceQuery::all(NonZeroUsize::new(20).unwrap());
    query.service_name = Some("checkout".into());
    query.operation_name = Some("GET /cart".into());
    query.start_time_min = Some(UnixNanos(1_796_651_100_123_456_789));
    query.start_time_max = Some(UnixNanos(1_796_654_700_000_000_000));
    query.duration_min = Some(1_500);
    query.attributes = vec![
        AttributeFilter {
            key: "http.status_code".into(),
            value: "500".into(),
        },
        AttributeFilter {
            key: "error".into(),
            value: "true".into(),
        },
    ];
    let matcher = SpanMatcher::new(&query);
    let filters = span_filters("acme", &query, matcher.conditions());
    let after = json!([
        "01796651200000000000",
        "0af7651916cd43dd8448eb211c80319c",
        "00aa"
    ]);
    let trace_after = json!(["017966511000000000000000000001", "00aa"]);
    check(
        "search-spans-first-page",
        &span_search_page(&filters.clauses, 500, None, !filters.exact),
    );
    check(
        "search-spans-next-page",
        &span_search_page(&filters.clauses, 500, Some(&after), !filters.exact),
    );
    check(
        "read-trace-page",
        &trace_page(
            "acme",
            "0af7651916cd43dd8448eb211c80319c",
            5_000,
            Some(&trace_after),
        ),
    );
    check(
        "trace-extents",
        &trace_extents("acme", &["0af7651916cd43dd8448eb211c80319c".to_owned()]),
    );
    check("services", &services("acme"));
    check(
        "operations",
        &operations("acme", "checkout", Some("server")),
    );
    check(
        "dependency-window",
        &span_search_page(
            &window_clauses(
                "acme",
                UnixNanos(1_796_600_000_000_000_000),
                UnixNanos(1_796_686_400_000_000_000),
            ),
            2_000,
            None,
            false,
        ),
    );
}

#[test]
fn golden_bulk_body() {
    let tenant = Tenant::new("acme");
    let spans = vec![
        span(
            1,
            1,
            None,
            "checkout",
            "GET /cart",
            1_796_651_100_000_000_000,
            1_796_651_100_250_000_000,
            false,
        ),
        span(
            1,
            2,
            Some(1),
            "cart",
            "SELECT",
            1_796_651_100_010_000_000,
            1_796_651_100_020_000_000,
            true,
        ),
    ];
    let chunks = encode_write(
        &tenant,
        &spans,
        &names(),
        1_796_651_100_300_000_000,
        usize::MAX,
        Vec::new,
    );
    let [chunk] = <[_; 1]>::try_from(chunks).ok().unwrap();
    let body = chunk.body;
    let lines: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    check("bulk", &Value::Array(lines));
}
