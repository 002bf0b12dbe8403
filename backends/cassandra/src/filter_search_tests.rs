//! Structured-filter searches over the in-memory tables ([`ModelTables`]): the shared edge
//! checks (`storage_conformance::filter_edges`) and the plans `filter_narrowing` makes. This
//! is the search logic over a model of the tables, not Cassandra: no node runs here.

use std::sync::Arc;
use std::time::Duration;

use remote_storage_core::proto::expression::v1::Call;
use remote_storage_core::{Tenant, UnixNanos};
use storage_conformance::filter_edges::{
    SECOND, and, attr, call, check_filter_edges, field, list, query, rfc3339, scalar,
};

use crate::buckets::Buckets;
use crate::model::ModelTables;
use crate::planner::{DrivingIndex, SearchPlan};
use crate::store::CassandraStore;

#[tokio::test]
async fn filter_searches_equal_the_matcher_over_every_span() {
    // Pages of two rows and three shards, so walks page and merge.
    let store = CassandraStore::new(
        Arc::new(ModelTables::with_page_rows(2)),
        Buckets::new(60, 3),
        Duration::from_secs(7 * 86_400),
    );
    check_filter_edges(&store, &Tenant::default())
        .await
        .unwrap();
}

#[test]
fn filter_plans_narrow_by_index_row_and_window() {
    let now = 1_000_000 * SECOND;
    let plan = |filter: &Call| {
        let query = query(filter, 20, Some((now - 3_600 * SECOND, now)));
        SearchPlan::new(
            &query,
            &[],
            &Buckets::new(900, 4),
            UnixNanos(now),
            7 * 86_400 * SECOND,
        )
    };
    let service = call("eq", vec![field("resource", "service"), scalar("cart")]);
    let tagged = plan(&and(vec![
        service.clone(),
        call("eq", vec![attr("", "http.method"), scalar("GET")]),
        call("eq", vec![field("span", "kind"), scalar("server")]),
        call("gt", vec![field("span", "duration"), scalar("1ms")]),
    ]));
    assert_eq!(tagged.index, DrivingIndex::Tag("11:http.method=GET".into()));
    assert_eq!(tagged.filter.service.as_deref(), Some("cart"));
    assert_eq!(tagged.filter.kind, Some(2));
    assert_eq!(tagged.filter.duration, (Some(1_000_001), None));
    assert!(tagged.needs_span, "the filter decides every row");

    assert_eq!(plan(&service).index, DrivingIndex::Service("cart".into()));
    // Several values, `unspecified`, `unset` and hashed values narrow nothing on the row.
    let loose = plan(&and(vec![
        call("in", vec![field("span", "name"), list(&["a", "b"], "")]),
        call("eq", vec![field("span", "kind"), scalar("unspecified")]),
        call("eq", vec![field("span", "status"), scalar("unset")]),
        call("eq", vec![attr("", "sql"), scalar(&"x".repeat(600))]),
    ]));
    assert_eq!(loose.index, DrivingIndex::All);
    assert_eq!((loose.filter.kind, loose.filter.status), (None, None));
    assert_eq!(loose.filter.operation, None);

    // The filter's own start range narrows the window (and so the buckets read).
    let recent = plan(&call(
        "gte",
        vec![
            field("span", "startTime"),
            scalar(&rfc3339(now - 600 * SECOND)),
        ],
    ));
    assert_eq!(recent.window.0, UnixNanos(now - 600 * SECOND));
    assert_eq!(recent.buckets.len(), 2);
    let never = plan(&and(vec![
        call("eq", vec![field("span", "name"), scalar("a")]),
        call("eq", vec![field("span", "name"), scalar("b")]),
    ]));
    assert!(never.buckets.is_empty() && never.window.0 > never.window.1);
}
