//! FindTraces in SQL: every condition of [`SpanMatcher`](remote_storage_core::matcher::SpanMatcher)
//! is pushed down, so results equal the memory backend's.
//!
//! Conditions on the resource or scope are first resolved to the content hashes of the
//! matching resources/scopes (small tables), then tested on the span row. Traces are ranked by
//! their newest matching span (ties: larger trace ID first), by walking matching spans newest
//! first in pages (keyset on `(start_ns, trace_id)`) and keeping each trace the first time it
//! is seen, until `search_depth` traces are found.

use remote_storage_core::matcher::AttributeCondition;
use remote_storage_core::proto::otlp::trace::status::StatusCode;
use remote_storage_core::{StoreResult, TraceId, TraceQuery};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, QueryBuilder};

use crate::error::store_error;
use crate::rows::{pg_text, term};
use crate::schema::{bucket_of, to_db_nanos};

/// One SQL condition on a span row.
#[derive(Debug, Clone)]
enum Condition {
    StatusEq(i16),
    StatusNe(i16),
    KindEq(i16),
    /// The span's scope is one of these.
    ScopeIn(Vec<Vec<u8>>),
    /// The span's resource is one of these.
    ResourceIn(Vec<Vec<u8>>),
    /// The term is on the span (its own, event or link attributes), or the span's resource or
    /// scope is one of those holding it.
    Anywhere {
        term: String,
        resources: Vec<Vec<u8>>,
        scopes: Vec<Vec<u8>>,
    },
}

/// A query ready to run, after resource and scope conditions were resolved.
#[derive(Debug, Clone)]
pub(crate) struct SearchPlan {
    tenant: String,
    service: Option<String>,
    operation: Option<String>,
    start_min: Option<i64>,
    start_max: Option<i64>,
    duration_min: Option<i64>,
    duration_max: Option<i64>,
    /// Terms that can only be on the span row: one GIN containment test.
    span_terms: Vec<String>,
    conditions: Vec<Condition>,
    depth: usize,
    walk_rows: usize,
}

/// Outcome of planning: a plan, or the certainty that nothing matches.
pub(crate) enum Planned {
    Search(Box<SearchPlan>),
    NothingMatches,
}

impl SearchPlan {
    /// Translates a query, looking up resources and scopes for the conditions on them.
    pub(crate) async fn plan(
        pool: &PgPool,
        tenant: &str,
        query: &TraceQuery,
        width: i64,
        walk_rows: usize,
    ) -> StoreResult<Planned> {
        let start_min = query.start_time_min.map(|time| to_db_nanos(time.0));
        let start_max = query.start_time_max.map(|time| to_db_nanos(time.0));
        let buckets = (
            start_min.map(|min| bucket_of(min, width)),
            start_max.map(|max| bucket_of(max, width)),
        );
        let mut plan = SearchPlan {
            tenant: tenant.to_owned(),
            service: query
                .service_name
                .as_deref()
                .map(|s| pg_text(s).into_owned()),
            operation: query
                .operation_name
                .as_deref()
                .map(|s| pg_text(s).into_owned()),
            start_min,
            start_max,
            duration_min: query.duration_min.map(saturating_i64),
            duration_max: query.duration_max.map(saturating_i64),
            span_terms: Vec::new(),
            conditions: Vec::new(),
            depth: query.search_depth.get(),
            walk_rows: walk_rows.max(1),
        };
        for filter in &query.attributes {
            let condition = match AttributeCondition::parse(filter) {
                AttributeCondition::Error(None) => return Ok(Planned::NothingMatches),
                AttributeCondition::Error(Some(true)) => {
                    Condition::StatusEq(StatusCode::Error as i16)
                }
                AttributeCondition::Error(Some(false)) => {
                    Condition::StatusNe(StatusCode::Error as i16)
                }
                AttributeCondition::Status(code) => Condition::StatusEq(code as i16),
                AttributeCondition::Kind(kind) => Condition::KindEq(kind as i16),
                AttributeCondition::ScopeName(name) => {
                    let hashes = scope_hashes(pool, tenant, buckets, "name = ", &name).await?;
                    if hashes.is_empty() {
                        return Ok(Planned::NothingMatches);
                    }
                    Condition::ScopeIn(hashes)
                }
                AttributeCondition::ScopeVersion(version) => {
                    let hashes =
                        scope_hashes(pool, tenant, buckets, "version = ", &version).await?;
                    if hashes.is_empty() {
                        return Ok(Planned::NothingMatches);
                    }
                    Condition::ScopeIn(hashes)
                }
                AttributeCondition::Resource { key, value } => {
                    let hashes =
                        term_hashes(pool, "resources", tenant, buckets, &term(&key, &value))
                            .await?;
                    if hashes.is_empty() {
                        return Ok(Planned::NothingMatches);
                    }
                    Condition::ResourceIn(hashes)
                }
                AttributeCondition::Anywhere { key, value } => {
                    let wanted = term(&key, &value);
                    let resources =
                        term_hashes(pool, "resources", tenant, buckets, &wanted).await?;
                    let scopes = term_hashes(pool, "scopes", tenant, buckets, &wanted).await?;
                    if resources.is_empty() && scopes.is_empty() {
                        plan.span_terms.push(wanted);
                        continue;
                    }
                    Condition::Anywhere {
                        term: wanted,
                        resources,
                        scopes,
                    }
                }
            };
            plan.conditions.push(condition);
        }
        Ok(Planned::Search(Box::new(plan)))
    }

    /// The IDs of the matching traces, newest matching span first, at most `depth`.
    ///
    /// Two phases keep both common and rare conditions cheap:
    /// 1. walk the newest spans of the service/time range in index order (one chunk of
    ///    `search_walk_rows` rows, reading each row's "matches" flag), which answers at once when
    ///    matches are frequent;
    /// 2. if that chunk did not yield `depth` traces, continue from where it stopped with the
    ///    conditions in the `WHERE` clause and an ordering the planner cannot take from the
    ///    time index, so it drives the search from the most selective index (GIN on terms,
    ///    service) and sorts the few matches.
    ///
    /// Both phases page by a keyset `(start_ns, trace_id) <= cursor` that excludes the traces
    /// already found, so a trace whose spans share a start time is never skipped.
    pub(crate) async fn trace_ids(&self, pool: &PgPool) -> StoreResult<Vec<TraceId>> {
        let mut search = Progress {
            depth: self.depth,
            found: Vec::new(),
            seen: Vec::new(),
            cursor: None,
        };
        let has_filters = self.has_filters();
        // Without filters every row matches: small pages suffice.
        let page_rows = if has_filters {
            self.walk_rows
        } else {
            self.depth
                .saturating_mul(4)
                .clamp(64, 4_096)
                .min(self.walk_rows.max(64))
        };
        // Phase 1: ordered walk (every page when nothing but service and time is asked).
        loop {
            let mut builder = self.walk(&search, page_rows);
            let rows: Vec<(Vec<u8>, i64, bool)> = builder
                .build_query_as()
                .fetch_all(pool)
                .await
                .map_err(|error| store_error("searching traces", error))?;
            let exhausted = rows.len() < page_rows;
            for (trace_id, start_ns, hit) in rows {
                search.advance(start_ns, &trace_id);
                if hit && search.add(trace_id) {
                    return Ok(search.found);
                }
            }
            if exhausted {
                return Ok(search.found);
            }
            if has_filters {
                break;
            }
        }
        // Phase 2: selective search from the cursor on.
        let page = i64::try_from(self.depth.saturating_mul(4).clamp(64, 4_096)).unwrap_or(4_096);
        loop {
            let mut builder = self.selective(&search, page);
            let rows: Vec<(Vec<u8>, i64)> = builder
                .build_query_as()
                .fetch_all(pool)
                .await
                .map_err(|error| store_error("searching traces", error))?;
            let exhausted = i64::try_from(rows.len()).unwrap_or(i64::MAX) < page;
            for (trace_id, start_ns) in rows {
                search.advance(start_ns, &trace_id);
                if search.add(trace_id) {
                    return Ok(search.found);
                }
            }
            if exhausted {
                return Ok(search.found);
            }
        }
    }

    /// Whether anything beyond the indexed range (tenant, service, operation with a service,
    /// time window) is asked.
    fn has_filters(&self) -> bool {
        (self.operation.is_some() && self.service.is_none())
            || self.duration_min.is_some()
            || self.duration_max.is_some()
            || !self.span_terms.is_empty()
            || !self.conditions.is_empty()
    }

    /// Phase 1: the next `walk_rows` spans of the service/time range, newest first, each with
    /// whether it satisfies the other conditions.
    fn walk(&self, search: &Progress, rows: usize) -> QueryBuilder<Postgres> {
        let mut builder = QueryBuilder::<Postgres>::new("SELECT trace_id, start_ns, ");
        self.push_filters(&mut builder);
        builder.push(" FROM spans WHERE ");
        self.push_range(&mut builder);
        search.push_keyset(&mut builder);
        builder
            .push(" ORDER BY start_ns DESC, trace_id DESC LIMIT ")
            .push_bind(i64::try_from(rows).unwrap_or(i64::MAX));
        builder
    }

    /// Phase 2: the next matching spans. `start_ns + 0` hides the time index's order from the
    /// planner, so it filters with the selective indexes first and sorts what matched.
    fn selective(&self, search: &Progress, page: i64) -> QueryBuilder<Postgres> {
        let mut builder =
            QueryBuilder::<Postgres>::new("SELECT trace_id, start_ns FROM spans WHERE ");
        self.push_range(&mut builder);
        builder.push(" AND ");
        self.push_filters(&mut builder);
        search.push_keyset(&mut builder);
        builder
            .push(" ORDER BY start_ns + 0 DESC, trace_id DESC LIMIT ")
            .push_bind(page);
        builder
    }

    /// Tenant, service (and operation) and time window: what the btree indexes answer in order.
    fn push_range(&self, builder: &mut QueryBuilder<Postgres>) {
        builder.push("tenant = ").push_bind(self.tenant.clone());
        if let Some(service) = &self.service {
            builder.push(" AND service = ").push_bind(service.clone());
            // With a service, the operation is part of the range: the (service, operation,
            // time) index answers it in order.
            if let Some(operation) = &self.operation {
                builder
                    .push(" AND operation = ")
                    .push_bind(operation.clone());
            }
        }
        if let Some(min) = self.start_min {
            builder.push(" AND start_ns >= ").push_bind(min);
        }
        if let Some(max) = self.start_max {
            builder.push(" AND start_ns <= ").push_bind(max);
        }
    }

    /// Every other condition, as one boolean expression (`TRUE` when there is none).
    fn push_filters(&self, builder: &mut QueryBuilder<Postgres>) {
        builder.push("(TRUE");
        if let Some(operation) = self.operation.as_ref().filter(|_| self.service.is_none()) {
            builder
                .push(" AND operation = ")
                .push_bind(operation.clone());
        }
        if let Some(min) = self.duration_min {
            builder.push(" AND end_ns - start_ns >= ").push_bind(min);
        }
        if let Some(max) = self.duration_max {
            builder.push(" AND end_ns - start_ns <= ").push_bind(max);
        }
        if !self.span_terms.is_empty() {
            builder
                .push(" AND terms @> ")
                .push_bind(self.span_terms.clone())
                .push("::text[]");
        }
        for condition in &self.conditions {
            match condition {
                Condition::StatusEq(code) => {
                    builder.push(" AND status = ").push_bind(*code);
                }
                Condition::StatusNe(code) => {
                    builder.push(" AND status <> ").push_bind(*code);
                }
                Condition::KindEq(kind) => {
                    builder.push(" AND kind = ").push_bind(*kind);
                }
                Condition::ScopeIn(hashes) => {
                    builder
                        .push(" AND scope_hash = ANY(")
                        .push_bind(hashes.clone())
                        .push(")");
                }
                Condition::ResourceIn(hashes) => {
                    builder
                        .push(" AND resource_hash = ANY(")
                        .push_bind(hashes.clone())
                        .push(")");
                }
                Condition::Anywhere {
                    term,
                    resources,
                    scopes,
                } => {
                    builder
                        .push(" AND (terms @> ARRAY[")
                        .push_bind(term.clone())
                        .push("]::text[]");
                    if !resources.is_empty() {
                        builder
                            .push(" OR resource_hash = ANY(")
                            .push_bind(resources.clone())
                            .push(")");
                    }
                    if !scopes.is_empty() {
                        builder
                            .push(" OR scope_hash = ANY(")
                            .push_bind(scopes.clone())
                            .push(")");
                    }
                    builder.push(")");
                }
            }
        }
        builder.push(")");
    }
}

/// Where a search stands.
struct Progress {
    depth: usize,
    found: Vec<TraceId>,
    seen: Vec<Vec<u8>>,
    cursor: Option<(i64, Vec<u8>)>,
}

impl Progress {
    fn advance(&mut self, start_ns: i64, trace_id: &[u8]) {
        self.cursor = Some((start_ns, trace_id.to_vec()));
    }

    /// Records a matching trace; `true` once `depth` traces are found.
    fn add(&mut self, trace_id: Vec<u8>) -> bool {
        if self.seen.contains(&trace_id) {
            return false;
        }
        if let Ok(bytes) = <[u8; 16]>::try_from(trace_id.as_slice()) {
            self.found.push(TraceId(bytes));
        }
        self.seen.push(trace_id);
        self.found.len() >= self.depth
    }

    /// Rows at or after the cursor in `(start_ns DESC, trace_id DESC)` order, except those of
    /// traces already found. Inclusive, so the rest of a `(start_ns, trace_id)` group cut by a
    /// page boundary is read again rather than skipped.
    fn push_keyset(&self, builder: &mut QueryBuilder<Postgres>) {
        if let Some((start_ns, trace_id)) = &self.cursor {
            // The plain bound keeps the index range tight; the row comparison is the keyset.
            builder
                .push(" AND start_ns <= ")
                .push_bind(*start_ns)
                .push(" AND (start_ns, trace_id) <= (")
                .push_bind(*start_ns)
                .push(", ")
                .push_bind(trace_id.clone())
                .push(")");
        }
        if !self.seen.is_empty() {
            builder
                .push(" AND NOT (trace_id = ANY(")
                .push_bind(self.seen.clone())
                .push("))");
        }
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn push_bucket_bounds(builder: &mut QueryBuilder<Postgres>, buckets: (Option<i64>, Option<i64>)) {
    if let Some(min) = buckets.0 {
        builder.push(" AND bucket >= ").push_bind(min);
    }
    if let Some(max) = buckets.1 {
        builder.push(" AND bucket <= ").push_bind(max);
    }
}

/// Hashes of the scopes whose `column` equals `value`, within the query's buckets.
async fn scope_hashes(
    pool: &PgPool,
    tenant: &str,
    buckets: (Option<i64>, Option<i64>),
    column_equals: &'static str,
    value: &str,
) -> StoreResult<Vec<Vec<u8>>> {
    let mut builder =
        QueryBuilder::<Postgres>::new("SELECT DISTINCT hash FROM scopes WHERE tenant = ");
    builder.push_bind(tenant.to_owned());
    builder
        .push(" AND ")
        .push(column_equals)
        .push_bind(pg_text(value).into_owned());
    push_bucket_bounds(&mut builder, buckets);
    builder
        .build_query_scalar()
        .fetch_all(pool)
        .await
        .map_err(|error| store_error("resolving scope conditions", error))
}

/// Hashes of the resources or scopes holding `wanted` among their attributes.
async fn term_hashes(
    pool: &PgPool,
    table: &'static str,
    tenant: &str,
    buckets: (Option<i64>, Option<i64>),
    wanted: &str,
) -> StoreResult<Vec<Vec<u8>>> {
    let mut builder = QueryBuilder::<Postgres>::new("SELECT DISTINCT hash FROM ");
    builder.push(table).push(" WHERE tenant = ");
    builder.push_bind(tenant.to_owned());
    builder
        .push(" AND terms @> ARRAY[")
        .push_bind(wanted.to_owned())
        .push("]::text[]");
    push_bucket_bounds(&mut builder, buckets);
    builder
        .build_query_scalar()
        .fetch_all(pool)
        .await
        .map_err(|error| store_error("resolving attribute conditions", error))
}
