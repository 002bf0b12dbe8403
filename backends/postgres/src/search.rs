//! FindTraces over trace chunks: SQL narrows the rows, the shared
//! [`SpanMatcher`](remote_storage_core::matcher::SpanMatcher) decides.
//!
//! Every condition that can be tested on a row is, in the `WHERE` clause of an index scan in
//! time order (service, time window, duration range, and the row's Bloom filter for the
//! [search keys](crate::rows::search_key) of the operation, kind, status, scope and
//! attributes). Candidate rows are decoded and each span runs through the matcher, so results
//! equal the memory backend's. A trace's rank is the start of its newest matching span (ties:
//! larger trace ID first).
//!
//! A structured filter narrows through its plan ([`FilterPlan`]): the one service, span name,
//! kind or status it pins, its single-text attribute terms (Bloom keys and payload needles
//! like a legacy attribute's) and its duration and start ranges. Its rows are always decoded
//! and every span decided by the filter itself, so the plan only makes a search faster.
//!
//! Rows are read newest `max_start` first, in pages that grow. After each page, every row not
//! read yet has `max_start` at most the page's last one (its bound), so its matches start no
//! later: a trace whose best match so far is newer than the bound has its final rank, and once
//! `search_depth` traces are final the search is over.

use std::collections::{BTreeSet, HashMap};

use remote_storage_core::filter::{AttributeLevel, FilterPlan, Level};
use remote_storage_core::matcher::{AttributeCondition, SpanMatcher};
use remote_storage_core::proto::otlp::trace::status::StatusCode;
use remote_storage_core::{StoreError, StoreResult, TraceId, TraceQuery};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, QueryBuilder};

use crate::error::store_error;
use crate::rows::{
    BLOOM_PROBES, KeyKind, SLOT_NS, bloom_probe_base, decode_raw, decompress, pg_text, search_key,
};
use crate::schema::to_db_nanos;

/// A query ready to run.
#[derive(Debug, Clone)]
pub(crate) struct SearchPlan {
    tenant: String,
    service: Option<String>,
    start_min: Option<i64>,
    start_max: Option<i64>,
    duration_min: Option<i64>,
    duration_max: Option<i64>,
    /// Every row holding a matching span holds all these keys (in its Bloom filter).
    keys: Vec<u64>,
    /// Byte strings every matching row's uncompressed payload contains verbatim (string
    /// fields of the protobuf encoding): rows without one are skipped before decoding.
    needles: Vec<Vec<u8>>,
    /// Whether spans must be checked one by one (anything beyond service and time window).
    span_conditions: bool,
    matcher: SpanMatcher,
    depth: usize,
    /// Largest page.
    page_rows: usize,
}

/// Outcome of planning: a plan, or the certainty that nothing matches.
pub(crate) enum Planned {
    Search(Box<SearchPlan>),
    NothingMatches,
}

/// One row read by a search: trace ID, `min_start`, `max_start`, chunk hash, whether it is
/// still a candidate, payload unless the whole row matches.
type Row = (Vec<u8>, i64, i64, i64, bool, Option<Vec<u8>>);

impl SearchPlan {
    /// Translates a query.
    pub(crate) fn plan(tenant: &str, query: &TraceQuery, page_rows: usize) -> Planned {
        let matcher = SpanMatcher::new(query);
        let filter = query
            .filter
            .as_ref()
            .map(|filter| filter.plan())
            .unwrap_or_default();
        let (Some(filter_start), Some(filter_duration)) =
            (filter.start.unsigned(), filter.duration.unsigned())
        else {
            return Planned::NothingMatches;
        };
        if filter.is_unsatisfiable() {
            return Planned::NothingMatches;
        }
        let mut keys = Vec::new();
        let mut needles: Vec<Vec<u8>> = Vec::new();
        let operation = query
            .operation_name
            .as_deref()
            .or_else(|| single(filter.span_names.as_ref()));
        if let Some(operation) = operation {
            keys.push(search_key(KeyKind::Operation, &[operation]));
            needles.push(operation.as_bytes().to_vec());
        }
        for condition in matcher.conditions() {
            let key = match condition {
                AttributeCondition::Error(None) => return Planned::NothingMatches,
                AttributeCondition::Error(Some(true)) => Some(search_key(
                    KeyKind::Status,
                    &[&(StatusCode::Error as i32).to_string()],
                )),
                AttributeCondition::Error(Some(false)) => None,
                AttributeCondition::Status(code) => {
                    Some(search_key(KeyKind::Status, &[&(*code as i32).to_string()]))
                }
                AttributeCondition::Kind(kind) => {
                    Some(search_key(KeyKind::Kind, &[&(*kind as i32).to_string()]))
                }
                AttributeCondition::ScopeName(name) => {
                    needles.push(name.as_bytes().to_vec());
                    Some(search_key(KeyKind::ScopeName, &[name]))
                }
                AttributeCondition::ScopeVersion(version) => {
                    needles.push(version.as_bytes().to_vec());
                    Some(search_key(KeyKind::ScopeVersion, &[version]))
                }
                AttributeCondition::Resource { key, value } => {
                    push_attribute_needles(&mut needles, key, value);
                    Some(search_key(KeyKind::Resource, &[key, value]))
                }
                AttributeCondition::Anywhere { key, value } => {
                    push_attribute_needles(&mut needles, key, value);
                    Some(search_key(KeyKind::Anywhere, &[key, value]))
                }
            };
            keys.extend(key);
        }
        push_filter_keys(&filter, &mut keys, &mut needles);
        keys.sort_unstable();
        keys.dedup();
        let span_conditions = query.operation_name.is_some()
            || query.duration_min.is_some()
            || query.duration_max.is_some()
            || !query.attributes.is_empty()
            || query.filter.is_some();
        let service = query
            .service_name
            .as_deref()
            .or_else(|| single(filter.services.as_ref()));
        // The window and the filter's `span.startTime` range both bound the matching span.
        let start_min = query
            .start_time_min
            .map_or(filter_start.0, |time| time.0.max(filter_start.0));
        let start_max = query
            .start_time_max
            .map_or(filter_start.1, |time| time.0.min(filter_start.1));
        if start_min > start_max {
            return Planned::NothingMatches;
        }
        let duration_min = query.duration_min.unwrap_or(0).max(filter_duration.0);
        let duration_max = query
            .duration_max
            .unwrap_or(u64::MAX)
            .min(filter_duration.1);
        if duration_min > duration_max {
            return Planned::NothingMatches;
        }
        Planned::Search(Box::new(SearchPlan {
            tenant: tenant.to_owned(),
            service: service.map(|service| pg_text(service).into_owned()),
            start_min: (start_min > 0).then(|| to_db_nanos(start_min)),
            start_max: (start_max < u64::MAX).then(|| to_db_nanos(start_max)),
            duration_min: (duration_min > 0).then(|| saturating_i64(duration_min)),
            duration_max: (duration_max < u64::MAX).then(|| saturating_i64(duration_max)),
            keys,
            needles,
            span_conditions,
            matcher,
            depth: query.search_depth.get(),
            page_rows: page_rows.max(1),
        }))
    }

    /// The IDs of the matching traces, newest matching span first, at most `depth`.
    ///
    /// The first page is a quarter more rows than the depth: enough when every row holds a
    /// match of its own trace (the last row's trace is not final yet), and little overshoot
    /// when the rows the prefilter passes are mostly matches, where each such row of a rare
    /// term stands for many index entries walked (a page of 40 walked 3,800 index pages of a
    /// 10 M-span store). The next page is sized from the rows read per final trace so far (see
    /// [`next_page_rows`]), up to `search_walk_rows`.
    pub(crate) async fn trace_ids(&self, pool: &PgPool) -> StoreResult<Vec<TraceId>> {
        let mut search = Progress::default();
        let mut page_rows = (self.depth + self.depth / 4 + 1)
            .clamp(16, 4_096)
            .min(self.page_rows);
        let mut rows_read = 0usize;
        loop {
            let rows = self.fetch(pool, &search, page_rows).await?;
            let exhausted = rows.len() < page_rows;
            rows_read += rows.len();
            match self.advance(&mut search, rows, exhausted).await? {
                Advanced::Found(found) => return Ok(found),
                Advanced::Final(finals) => {
                    page_rows = next_page_rows(page_rows, rows_read, finals, self.depth)
                        .min(self.page_rows);
                }
            }
        }
    }

    /// Scores one page and answers when `depth` traces are final (or nothing is left).
    async fn advance(
        &self,
        search: &mut Progress,
        rows: Vec<Row>,
        exhausted: bool,
    ) -> StoreResult<Advanced> {
        if let Some(last) = rows.last() {
            search.cursor = Some((last.2, last.0.clone(), last.3));
        }
        let matcher = self.matcher.clone();
        let needles = self.needles.clone();
        let scored = tokio::task::spawn_blocking(move || score_rows(&matcher, &needles, rows))
            .await
            .map_err(|error| StoreError::internal("postgres: search task failed", error))??;
        for (trace_id, score) in scored {
            let best = search.scores.entry(trace_id).or_insert(score);
            *best = (*best).max(score);
        }
        // Rows not read yet start no later than the cursor, nor than the window's end.
        let bound = if exhausted {
            None
        } else {
            let cursor = search.cursor.as_ref().map_or(i64::MIN, |cursor| cursor.0);
            Some(self.start_max.map_or(cursor, |max| max.min(cursor)))
        };
        let mut finals: Vec<(i64, [u8; 16])> = search
            .scores
            .iter()
            .filter(|(_, score)| bound.is_none_or(|bound| **score > bound))
            .map(|(trace_id, score)| (*score, *trace_id))
            .collect();
        if finals.len() < self.depth && !exhausted {
            return Ok(Advanced::Final(finals.len()));
        }
        finals.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Advanced::Found(
            finals
                .into_iter()
                .take(self.depth)
                .map(|(_, trace_id)| TraceId(trace_id))
                .collect(),
        ))
    }

    /// The next page of candidate rows after the cursor, newest `max_start` first, with the
    /// payload of those that must be decoded.
    ///
    /// Two statements in one transaction: the candidates come from an index-only scan of a
    /// time index (its entries include the Bloom filter and the other prefilter columns), then
    /// the payloads of the candidates to decode by primary key. Sequential and bitmap scans,
    /// sorts and parallel plans are switched off for the transaction: the planner cannot
    /// estimate the Bloom filter's selectivity and would otherwise read and sort the whole
    /// range to return one page, instead of walking the index in order and stopping early.
    async fn fetch(&self, pool: &PgPool, search: &Progress, rows: usize) -> StoreResult<Vec<Row>> {
        let mut builder =
            QueryBuilder::<Postgres>::new("SELECT trace_id, min_start, max_start, chunk_hash, ");
        self.push_whole_row_matches(&mut builder);
        builder.push(" FROM chunks WHERE ");
        self.push_range(&mut builder);
        builder.push(" AND ");
        self.push_prefilter(&mut builder);
        if let Some((max_start, trace_id, chunk_hash)) = &search.cursor {
            // The plain bound keeps the index range tight; the row comparison is the keyset.
            builder
                .push(" AND max_start <= ")
                .push_bind(*max_start)
                .push(" AND (max_start, trace_id, chunk_hash) < (")
                .push_bind(*max_start)
                .push(", ")
                .push_bind(trace_id.clone())
                .push(", ")
                .push_bind(*chunk_hash)
                .push(")");
        }
        builder.push(" ORDER BY max_start DESC, trace_id DESC, chunk_hash DESC LIMIT ");
        builder.push_bind(i64::try_from(rows).unwrap_or(i64::MAX));

        let failed = |error| store_error("searching traces", error);
        // The settings travel with BEGIN: one round trip.
        let mut transaction = pool
            .begin_with(
                "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
                 SET LOCAL enable_sort = off; SET LOCAL max_parallel_workers_per_gather = 0",
            )
            .await
            .map_err(failed)?;
        let candidates: Vec<(Vec<u8>, i64, i64, i64, bool)> = builder
            .build_query_as()
            .fetch_all(&mut *transaction)
            .await
            .map_err(failed)?;
        let mut wanted: (Vec<Vec<u8>>, Vec<i64>, Vec<i64>) = Default::default();
        for (trace_id, min_start, _, chunk_hash, whole_row_matches) in &candidates {
            if !whole_row_matches {
                wanted.0.push(trace_id.clone());
                wanted.1.push(*chunk_hash);
                wanted.2.push(*min_start);
            }
        }
        let mut payloads: HashMap<(Vec<u8>, i64, i64), Vec<u8>> = HashMap::new();
        if !wanted.0.is_empty() {
            let found: Vec<(Vec<u8>, i64, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT c.trace_id, c.chunk_hash, c.min_start, c.payload FROM chunks c \
                 JOIN unnest($2::bytea[], $3::bigint[], $4::bigint[]) AS u(trace_id, chunk_hash, min_start) \
                   ON c.trace_id = u.trace_id AND c.chunk_hash = u.chunk_hash \
                  AND c.min_start = u.min_start \
                 WHERE c.tenant = $1",
            )
            .bind(&self.tenant)
            .bind(&wanted.0)
            .bind(&wanted.1)
            .bind(&wanted.2)
            .fetch_all(&mut *transaction)
            .await
            .map_err(failed)?;
            for (trace_id, chunk_hash, min_start, payload) in found {
                payloads.insert((trace_id, chunk_hash, min_start), payload);
            }
        }
        transaction.commit().await.map_err(failed)?;
        Ok(candidates
            .into_iter()
            .map(
                |(trace_id, min_start, max_start, chunk_hash, whole_row_matches)| {
                    let payload = if whole_row_matches {
                        None
                    } else {
                        payloads.remove(&(trace_id.clone(), chunk_hash, min_start))
                    };
                    // A candidate whose row vanished meanwhile (partition dropped) has no payload
                    // and is skipped when scored.
                    let candidate = whole_row_matches || payload.is_some();
                    (
                        trace_id, min_start, max_start, chunk_hash, candidate, payload,
                    )
                },
            )
            .collect())
    }

    /// Tenant, service and time window: what the btree indexes answer in order. A row's spans
    /// start within [`SLOT_NS`] of each other, which bounds `max_start` from both sides.
    fn push_range(&self, builder: &mut QueryBuilder<Postgres>) {
        builder.push("tenant = ").push_bind(self.tenant.clone());
        if let Some(service) = &self.service {
            builder.push(" AND service = ").push_bind(service.clone());
        }
        if let Some(min) = self.start_min {
            builder
                .push(" AND max_start >= ")
                .push_bind(min)
                .push(" AND min_start > ")
                .push_bind(min.saturating_sub(SLOT_NS));
        }
        if let Some(max) = self.start_max {
            builder
                .push(" AND min_start <= ")
                .push_bind(max)
                .push(" AND max_start < ")
                .push_bind(max.saturating_add(SLOT_NS));
        }
    }

    /// The row-level necessary conditions, as one boolean expression: duration ranges, and
    /// every key's probes set in the row's Bloom filter.
    fn push_prefilter(&self, builder: &mut QueryBuilder<Postgres>) {
        builder.push("(TRUE");
        if let Some(min) = self.duration_min {
            builder.push(" AND max_duration >= ").push_bind(min);
        }
        if let Some(max) = self.duration_max {
            builder.push(" AND min_duration <= ").push_bind(max);
        }
        for key in &self.keys {
            let (low, high) = bloom_probe_base(*key);
            for probe in 0..BLOOM_PROBES {
                let offset = low + i64::try_from(probe).unwrap_or(0) * high;
                builder
                    .push(" AND get_bit(bloom, (")
                    .push_bind(offset)
                    .push("::bigint % (octet_length(bloom) * 8))::int) = 1");
            }
        }
        builder.push(")");
    }

    /// Whether every span of the row matches without decoding: no per-span condition, and all
    /// its starts inside the window (the service is the row's).
    fn push_whole_row_matches(&self, builder: &mut QueryBuilder<Postgres>) {
        if self.span_conditions {
            builder.push("FALSE");
            return;
        }
        builder.push("(TRUE");
        if let Some(min) = self.start_min {
            builder.push(" AND min_start >= ").push_bind(min);
        }
        if let Some(max) = self.start_max {
            builder.push(" AND max_start <= ").push_bind(max);
        }
        builder.push(")");
    }
}

/// Rank contributions of one page: per candidate row, the start of its newest matching span
/// (the row's `max_start` when the whole row matches).
fn score_rows(
    matcher: &SpanMatcher,
    needles: &[Vec<u8>],
    rows: Vec<Row>,
) -> StoreResult<Vec<([u8; 16], i64)>> {
    let mut scores = Vec::new();
    for (trace_id, _min_start, max_start, _hash, candidate, payload) in rows {
        if !candidate {
            continue;
        }
        let Ok(trace_id) = <[u8; 16]>::try_from(trace_id.as_slice()) else {
            continue;
        };
        let Some(payload) = payload else {
            scores.push((trace_id, max_start));
            continue;
        };
        let raw = decompress(&payload)?;
        // Bloom false positives mostly lack the wanted strings: skip them before decoding.
        if !needles
            .iter()
            .all(|needle| memchr::memmem::find(&raw, needle).is_some())
        {
            continue;
        }
        let newest = decode_raw(TraceId(trace_id), &raw)?
            .iter()
            .filter(|stored| matcher.matches(&stored.span))
            .map(|stored| to_db_nanos(stored.span.start().0))
            .max();
        if let Some(newest) = newest {
            scores.push((trace_id, newest));
        }
    }
    Ok(scores)
}

/// The Bloom keys and payload needles of a filter plan's single-valued parts: the span kind
/// and status it pins, and each attribute term with one text (the `Anywhere` keys cover the
/// attributes of every level, the `Resource` keys the resource's).
fn push_filter_keys(filter: &FilterPlan, keys: &mut Vec<u64>, needles: &mut Vec<Vec<u8>>) {
    let single_code = |codes: Option<&BTreeSet<i32>>| match codes {
        Some(codes) if codes.len() == 1 => codes.first().copied(),
        _ => None,
    };
    if let Some(kind) = single_code(filter.kinds.as_ref()) {
        keys.push(search_key(KeyKind::Kind, &[&kind.to_string()]));
    }
    if let Some(code) = single_code(filter.statuses.as_ref()) {
        keys.push(search_key(KeyKind::Status, &[&code.to_string()]));
    }
    for terms in &filter.attributes {
        let Some(text) = single(Some(&terms.texts)) else {
            continue;
        };
        let kind = match terms.level {
            AttributeLevel::Level(Level::Resource) => KeyKind::Resource,
            _ => KeyKind::Anywhere,
        };
        push_attribute_needles(needles, &terms.key, text);
        keys.push(search_key(kind, &[&terms.key, text]));
    }
}

/// The only element of a set of one.
fn single(set: Option<&BTreeSet<String>>) -> Option<&str> {
    match set {
        Some(set) if set.len() == 1 => set.first().map(String::as_str),
        _ => None,
    }
}

/// An attribute `key = value` condition can only hold on a row whose payload holds the key
/// verbatim (keys are protobuf strings) and, when the value text can only be the rendering
/// of a string value, the value too. Texts that a number, a bool, base64 bytes or a JSON
/// array/map could render to add no value needle.
fn push_attribute_needles(needles: &mut Vec<Vec<u8>>, key: &str, value: &str) {
    if !key.is_empty() {
        needles.push(key.as_bytes().to_vec());
    }
    if only_a_string_renders_as(value) {
        needles.push(value.as_bytes().to_vec());
    }
}

fn only_a_string_renders_as(value: &str) -> bool {
    let base64_alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    !value.is_empty()
        && !value.starts_with(['[', '{'])
        && !value.chars().all(base64_alphabet)
        && value.parse::<f64>().is_err()
}

/// What a page of a search gave.
enum Advanced {
    /// The answer.
    Found(Vec<TraceId>),
    /// Not yet: this many traces are final.
    Final(usize),
}

/// The size of a search's next page (rows its prefilter passes), from what the pages so far
/// gave. The rows read per final trace so far, times the traces still missing, with half
/// again as margin: a page that falls short costs a round trip, but one that overshoots walks
/// index entries for nothing, and with a rare term each row a page returns stands for many
/// entries walked. With no final trace yet, four times the last.
fn next_page_rows(last: usize, rows_read: usize, finals: usize, depth: usize) -> usize {
    if finals == 0 {
        return last.saturating_mul(4);
    }
    let missing = depth.saturating_sub(finals).max(1);
    rows_read
        .div_ceil(finals)
        .saturating_mul(missing)
        .saturating_mul(3)
        .div_ceil(2)
        .max(16)
}

/// Where a search stands.
#[derive(Default)]
struct Progress {
    /// Best match start per trace so far.
    scores: HashMap<[u8; 16], i64>,
    /// The last row read: `(max_start, trace_id, chunk_hash)`.
    cursor: Option<(i64, Vec<u8>, i64)>,
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_sized_for_the_traces_still_missing() {
        // 40 rows gave 12 final traces of 20: 4 rows a trace (rounded up), 8 missing, half
        // again.
        assert_eq!(next_page_rows(40, 40, 12, 20), 48);
        // Nothing final yet: four times the last page.
        assert_eq!(next_page_rows(40, 40, 0, 20), 160);
        // Almost there: never below 16 rows.
        assert_eq!(next_page_rows(40, 40, 19, 20), 16);
        assert_eq!(next_page_rows(2_000, 6_000, 1, 20), 171_000);
    }

    #[test]
    fn value_needles_only_for_texts_no_other_type_renders_as() {
        assert!(only_a_string_renders_as("value-724"));
        assert!(only_a_string_renders_as("GET /cart"));
        for typed in [
            "",
            "500",
            "-5",
            "72.5",
            "1e+21",
            "NaN",
            "-Infinity",
            "true",
            "AAEC",
            "[1]",
            "{}",
        ] {
            assert!(!only_a_string_renders_as(typed), "{typed}");
        }
    }
}
