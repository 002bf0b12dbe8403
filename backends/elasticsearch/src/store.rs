//! The store: the trait implementations over the engine's HTTP API.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use futures::StreamExt as _;
use parking_lot::Mutex;
use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::{
    DependencyLink, DependencyQuery, DependencyStore, FoundTraceId, Operation, OperationQuery,
    Purger, Span, StoreError, StoreLifecycle, StoreResult, Tenant, Trace, TraceId, TraceLookup,
    TraceQuery, TraceStore, TraceStream, UnixNanos, WriteClock,
};
use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::bulk::encode_write;
use crate::client::{Body, Client, parse, status_error};
use crate::config::{ElasticsearchConfig, RefreshPolicy};
use crate::document::{SpanDecoder, decode_blob};
use crate::error::EsError;
use crate::filter_clauses::filter_clauses;
use crate::indices::{IndexKind, IndexNames};
use crate::requests::{
    LENIENT_INDICES, index_template, operations, services, span_filters, span_search_page,
    trace_extents, trace_page, window_clauses,
};
use crate::version::EngineVersion;

/// Documents per page of a trace read (under the engines' default `max_result_window` of
/// 10,000, which is never raised: pages follow each other with `search_after`).
const TRACE_PAGE: usize = 5_000;
/// Documents per page of a search that only needs trace IDs.
const ID_PAGE: usize = 2_000;
/// Documents per page of a search whose spans the matcher decides.
const SPAN_PAGE: usize = 500;
/// Largest `_bulk` body sent at once; bigger writes are split.
const MAX_BULK_BYTES: usize = 8 << 20;
/// Index names per DELETE request.
const DELETE_BATCH: usize = 50;

/// What every call shares.
#[derive(Debug)]
struct Shared {
    client: Client,
    names: IndexNames,
    config: ElasticsearchConfig,
    version: EngineVersion,
    /// Numbers writes, so a trace's spans read back in write order.
    writes: WriteClock,
}

/// The Elasticsearch/OpenSearch store.
#[derive(Debug)]
pub struct ElasticsearchStore {
    shared: Arc<Shared>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
}

impl ElasticsearchStore {
    /// Connects, checks the engine's version, installs the index templates (unless told not
    /// to), deletes expired indices and starts the retention task.
    pub async fn open(config: ElasticsearchConfig) -> StoreResult<Arc<Self>> {
        config.validate()?;
        let client = Client::new(&config)?;
        let root = client.json(Method::GET, "/", None, "GET /").await?;
        let version = EngineVersion::from_root(&root)?;
        version.line()?;
        tracing::info!(engine = %version, "connected to the search engine");
        let names = IndexNames::new(&config.index_prefix, config.rotation);
        let shared = Arc::new(Shared {
            client,
            names,
            config,
            version,
            writes: WriteClock::default(),
        });
        if shared.config.create_templates {
            for kind in [IndexKind::Span, IndexKind::Service] {
                let (path, body) = index_template(kind, &shared.names, &shared.config);
                shared
                    .client
                    .json(
                        Method::PUT,
                        &path,
                        Some(Body::Json(&body)),
                        "installing an index template",
                    )
                    .await?;
            }
        }
        shared.expire(UnixNanos::now()).await?;
        let store = Arc::new(Self {
            shared,
            maintenance: Mutex::new(None),
        });
        let task = tokio::spawn(maintain(Arc::downgrade(&store.shared)));
        *store.maintenance.lock() = Some(task);
        Ok(store)
    }

    /// The engine and version found at start-up.
    pub fn engine(&self) -> &EngineVersion {
        &self.shared.version
    }

    /// Deletes the indices that hold only spans older than the retention (what the background
    /// task does every maintenance interval). Returns how many were deleted.
    pub async fn expire(&self, now: UnixNanos) -> StoreResult<usize> {
        Ok(self.shared.expire(now).await?)
    }
}

async fn maintain(shared: Weak<Shared>) {
    let Some(interval) = shared
        .upgrade()
        .map(|shared| shared.config.maintenance_interval)
    else {
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(error) = shared.expire(UnixNanos::now()).await {
            tracing::warn!(error = %error, "deleting expired indices failed; retrying later");
        }
    }
}

impl Shared {
    async fn search(&self, indices: &str, body: &Value, what: &str) -> Result<Value, EsError> {
        let path = format!("/{indices}/_search?{LENIENT_INDICES}");
        self.client
            .json(Method::POST, &path, Some(Body::Json(body)), what)
            .await
    }

    /// The names of this prefix's indices.
    async fn indices(&self) -> Result<Vec<String>, EsError> {
        let path = format!(
            "/{},{}?{LENIENT_INDICES}",
            self.names.pattern(IndexKind::Span),
            self.names.pattern(IndexKind::Service)
        );
        let listing = self
            .client
            .json(Method::GET, &path, None, "listing indices")
            .await?;
        Ok(listing
            .as_object()
            .map(|indices| indices.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_indices(&self, indices: &[String]) -> Result<(), EsError> {
        for batch in indices.chunks(DELETE_BATCH) {
            let path = format!("/{}?{LENIENT_INDICES}", batch.join(","));
            let (status, body) = self
                .client
                .send(Method::DELETE, &path, None, "deleting indices")
                .await?;
            if !status.is_success() && status.as_u16() != 404 {
                return Err(status_error("deleting indices", status, &body));
            }
        }
        Ok(())
    }

    async fn expire(&self, now: UnixNanos) -> Result<usize, EsError> {
        let cutoff = (now.0 / 1_000_000_000).saturating_sub(self.config.retention.as_secs());
        let expired: Vec<String> = self
            .indices()
            .await?
            .into_iter()
            .filter(|index| self.names.expired(index, cutoff))
            .collect();
        if !expired.is_empty() {
            tracing::info!(indices = ?expired, "deleting expired indices");
            self.delete_indices(&expired).await?;
        }
        Ok(expired.len())
    }

    /// Sends one `_bulk` body. Returns the span documents the engine refused (and why the
    /// first was); any other failure is the error of the whole write.
    async fn bulk(&self, body: Vec<u8>, documents: usize) -> StoreResult<(u64, Option<String>)> {
        let refresh = match self.config.refresh {
            RefreshPolicy::WaitFor => "?refresh=wait_for",
            RefreshPolicy::None => "",
        };
        let path = format!("/_bulk{refresh}");
        let (status, answer) = self
            .client
            .send(Method::POST, &path, Some(Body::Ndjson(body)), "bulk")
            .await?;
        if !status.is_success() {
            return Err(status_error("bulk", status, &answer).into());
        }
        // Most answers report no error: read just that flag, skipping the per-item results
        // without building them, and parse the whole answer only when some item failed.
        #[derive(serde::Deserialize)]
        struct Outcome {
            errors: bool,
        }
        let outcome: Outcome =
            serde_json::from_slice(&answer).map_err(|error| EsError::Answer {
                what: "bulk".to_owned(),
                detail: format!("no errors flag: {error}"),
            })?;
        if !outcome.errors {
            return Ok((0, None));
        }
        bulk_item_failures(&parse("bulk", &answer)?, documents, &self.names)
    }

    async fn write(&self, tenant: &Tenant, spans: &[Span]) -> StoreResult<()> {
        let chunks = encode_write(
            tenant,
            spans,
            &self.names,
            self.writes.next(),
            MAX_BULK_BYTES,
            || self.client.body_buffer(),
        );
        let mut refused = 0;
        let mut first_reason = None;
        for chunk in chunks {
            let (count, reason) = self.bulk(chunk.body, chunk.documents).await?;
            refused += count;
            if first_reason.is_none() {
                first_reason = reason;
            }
        }
        match refused {
            0 => Ok(()),
            refused => Err(StoreError::rejected(
                refused,
                first_reason.unwrap_or_default(),
            )),
        }
    }

    /// Every span of one trace, or `None` when none is stored. With time hints (the trace's
    /// earliest start and latest end, as searches answer them) only the indices of that window
    /// are read; without, every span index.
    async fn read_trace(
        &self,
        tenant: &Tenant,
        lookup: &TraceLookup,
    ) -> StoreResult<Option<Trace>> {
        let trace_id = lookup.trace_id;
        let trace_hex = hex::encode(trace_id.as_bytes());
        let indices = self
            .names
            .covering(IndexKind::Span, lookup.start, lookup.end);
        let mut spans = Vec::new();
        let mut decoder = SpanDecoder::default();
        let mut after: Option<Value> = None;
        loop {
            let body = trace_page(tenant.name(), &trace_hex, TRACE_PAGE, after.as_ref());
            let answer = self.search(&indices, &body, "reading a trace").await?;
            let hits = hits(&answer, "reading a trace")?;
            for hit in hits {
                spans.push(decoder.decode(source_str(hit, "blob")?)?);
            }
            if hits.len() < TRACE_PAGE {
                break;
            }
            after = hits.last().and_then(|hit| hit.get("sort")).cloned();
        }
        Ok((!spans.is_empty()).then_some(Trace { trace_id, spans }))
    }

    async fn find_ids(
        &self,
        tenant: &Tenant,
        query: &TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let matcher = SpanMatcher::new(query);
        let mut filters = span_filters(tenant.name(), query, matcher.conditions());
        if let Some(filter) = &query.filter {
            // The plan's clauses only narrow: the matcher runs the filter on every candidate.
            let Some(clauses) = filter_clauses(&filter.plan()) else {
                return Ok(Vec::new());
            };
            filters.clauses.extend(clauses);
            filters.exact = false;
        }
        let indices =
            self.names
                .covering(IndexKind::Span, query.start_time_min, query.start_time_max);
        let page = if filters.exact { ID_PAGE } else { SPAN_PAGE };
        let depth = query.search_depth.get();
        let mut found: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut after: Option<Value> = None;
        loop {
            let body = span_search_page(&filters.clauses, page, after.as_ref(), !filters.exact);
            let answer = self.search(&indices, &body, "searching spans").await?;
            let hits = hits(&answer, "searching spans")?;
            for hit in hits {
                let trace_hex = source_str(hit, "trace_id")?;
                if seen.contains(trace_hex) {
                    continue;
                }
                let matches = if filters.exact {
                    within_bounds(query, hit)?
                } else {
                    matcher.matches(&decode_blob(source_str(hit, "blob")?)?)
                };
                if !matches {
                    continue;
                }
                seen.insert(trace_hex.to_owned());
                found.push(trace_hex.to_owned());
                if found.len() == depth {
                    break;
                }
            }
            if found.len() == depth || hits.len() < page {
                return self.with_extents(tenant, found).await;
            }
            after = hits.last().and_then(|hit| hit.get("sort")).cloned();
        }
    }

    /// The found traces with their time hints: earliest span start, latest span end.
    async fn with_extents(
        &self,
        tenant: &Tenant,
        trace_ids: Vec<String>,
    ) -> StoreResult<Vec<FoundTraceId>> {
        if trace_ids.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self
            .search(
                &self.names.pattern(IndexKind::Span),
                &trace_extents(tenant.name(), &trace_ids),
                "reading trace extents",
            )
            .await?;
        let aggregation = answer.get("aggregations").and_then(|a| a.get("traces"));
        let mut extents = HashMap::new();
        for (trace_hex, bucket) in bucket_keys(aggregation) {
            let first = top_hit_nanos(bucket, "first", "start_ns");
            let last = top_hit_nanos(bucket, "last", "end_ns");
            extents.insert(trace_hex.to_owned(), (first, last));
        }
        trace_ids
            .iter()
            .map(|trace_hex| {
                let (start, end) = extents.get(trace_hex).copied().unwrap_or((None, None));
                Ok(FoundTraceId {
                    trace_id: trace_id_from_hex(trace_hex)?,
                    start: start.map(UnixNanos),
                    end: end.map(UnixNanos),
                })
            })
            .collect()
    }

    /// The distinct traces with a span starting in the window.
    async fn traces_in_window(
        &self,
        tenant: &Tenant,
        query: &DependencyQuery,
    ) -> StoreResult<Vec<TraceId>> {
        let clauses = window_clauses(tenant.name(), query.start, query.end);
        let indices = self
            .names
            .covering(IndexKind::Span, Some(query.start), Some(query.end));
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let body = span_search_page(&clauses, ID_PAGE, after.as_ref(), false);
            let answer = self.search(&indices, &body, "finding dependencies").await?;
            let hits = hits(&answer, "finding dependencies")?;
            for hit in hits {
                let trace_hex = source_str(hit, "trace_id")?;
                if seen.insert(trace_hex.to_owned()) {
                    ids.push(trace_id_from_hex(trace_hex)?);
                }
            }
            if hits.len() < ID_PAGE {
                return Ok(ids);
            }
            after = hits.last().and_then(|hit| hit.get("sort")).cloned();
        }
    }
}

/// Reads a bulk answer with `errors: true`. A document refused because the engine is
/// overloaded makes the whole write retryable (`UNAVAILABLE`; IDs are deterministic, so the
/// retry does not duplicate what did get in), and so does a refused service document (the
/// services index must not miss what is stored). Span documents refused for a reason of
/// their own are counted, with the first reason, for the client's `partial_success`.
fn bulk_item_failures(
    answer: &Value,
    documents: usize,
    names: &IndexNames,
) -> StoreResult<(u64, Option<String>)> {
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut refused_spans = 0;
    let mut refused_other = 0;
    let mut retryable = false;
    let mut first_reason = None;
    for item in items {
        let Some(result) = item.as_object().and_then(|item| item.values().next()) else {
            continue;
        };
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
        if (200..300).contains(&status) {
            continue;
        }
        retryable |= u16::try_from(status).is_ok_and(EsError::retryable_status);
        let index = result
            .get("_index")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if names.is_kind(index, IndexKind::Span) {
            refused_spans += 1;
        } else {
            refused_other += 1;
        }
        if first_reason.is_none() {
            let error = result.get("error");
            let kind = error
                .and_then(|error| error.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let reason = error
                .and_then(|error| error.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            first_reason = Some(format!("HTTP {status} {kind}: {reason}"));
        }
    }
    let reason = first_reason.unwrap_or_else(|| "no item reported its failure".to_owned());
    let failed = refused_spans + refused_other;
    let message = format!("bulk write: {failed} of {documents} documents refused; first: {reason}");
    if retryable {
        Err(StoreError::unavailable(
            message,
            "the engine refused documents under load",
        ))
    } else if refused_other > 0 {
        Err(StoreError::internal(message, "service documents refused"))
    } else {
        Ok((refused_spans, Some(reason)))
    }
}

fn hits<'a>(answer: &'a Value, what: &str) -> Result<&'a [Value], EsError> {
    answer
        .get("hits")
        .and_then(|hits| hits.get("hits"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| EsError::Answer {
            what: what.to_owned(),
            detail: "no hits.hits array".to_owned(),
        })
}

fn source_str<'a>(hit: &'a Value, field: &str) -> Result<&'a str, EsError> {
    hit.get("_source")
        .and_then(|source| source.get(field))
        .and_then(Value::as_str)
        .ok_or_else(|| EsError::Corrupt(format!("a document has no `{field}` text")))
}

/// The exact nanosecond start and duration bounds of `query`, checked on a document's
/// `start_ns` and `duration_ns` (the index filtered on whole microseconds).
fn within_bounds(query: &TraceQuery, hit: &Value) -> Result<bool, EsError> {
    let number = |field: &str| -> Result<u64, EsError> {
        let text = source_str(hit, field)?;
        text.parse()
            .map_err(|_| EsError::Corrupt(format!("{field} {text:?} is not a number")))
    };
    let (start, duration) = (number("start_ns")?, number("duration_ns")?);
    Ok(query.start_time_min.is_none_or(|min| start >= min.0)
        && query.start_time_max.is_none_or(|max| start <= max.0)
        && query.duration_min.is_none_or(|min| duration >= min)
        && query.duration_max.is_none_or(|max| duration <= max))
}

/// The nanosecond text `field` of the one hit of top-hits aggregation `name` in `bucket`.
fn top_hit_nanos(bucket: &Value, name: &str, field: &str) -> Option<u64> {
    bucket
        .get(name)?
        .get("hits")?
        .get("hits")?
        .as_array()?
        .first()?
        .get("_source")?
        .get(field)?
        .as_str()?
        .parse()
        .ok()
}

fn trace_id_from_hex(text: &str) -> Result<TraceId, EsError> {
    let bytes = hex::decode(text)
        .map_err(|error| EsError::Corrupt(format!("trace_id {text:?}: {error}")))?;
    TraceId::from_bytes(&bytes, "trace_id").map_err(|error| EsError::Corrupt(error.to_string()))
}

fn bucket_keys(aggregation: Option<&Value>) -> impl Iterator<Item = (&str, &Value)> {
    aggregation
        .and_then(|aggregation| aggregation.get("buckets"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|bucket| Some((bucket.get("key")?.as_str()?, bucket)))
}

#[async_trait]
impl TraceStore for ElasticsearchStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        if spans.is_empty() {
            return Ok(());
        }
        self.shared.write(tenant, &spans).await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        let shared = Arc::clone(&self.shared);
        let tenant = tenant.clone();
        let stream = futures::stream::iter(lookups)
            .then(move |lookup| {
                let shared = Arc::clone(&shared);
                let tenant = tenant.clone();
                async move { shared.read_trace(&tenant, &lookup).await }
            })
            .filter_map(|read| async move { read.transpose() });
        Ok(stream.boxed())
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        let answer = self
            .shared
            .search(
                &self.shared.names.pattern(IndexKind::Service),
                &services(tenant.name()),
                "listing services",
            )
            .await?;
        let aggregation = answer.get("aggregations").and_then(|a| a.get("services"));
        Ok(bucket_keys(aggregation)
            .map(|(service, _)| service.to_owned())
            .filter(|service| !service.is_empty())
            .collect())
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        let kind = query
            .span_kind
            .map(remote_storage_core::model::span_kind_name);
        let answer = self
            .shared
            .search(
                &self.shared.names.pattern(IndexKind::Service),
                &operations(tenant.name(), &query.service, kind),
                "listing operations",
            )
            .await?;
        let aggregation = answer.get("aggregations").and_then(|a| a.get("operations"));
        let mut found = Vec::new();
        for (name, bucket) in bucket_keys(aggregation) {
            for (span_kind, _) in bucket_keys(bucket.get("kinds")) {
                found.push(Operation {
                    name: name.to_owned(),
                    span_kind: span_kind.to_owned(),
                });
            }
        }
        Ok(found)
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        self.shared.find_ids(tenant, &query).await
    }
}

#[async_trait]
impl DependencyStore for ElasticsearchStore {
    async fn get_dependencies(
        &self,
        tenant: &Tenant,
        query: DependencyQuery,
    ) -> StoreResult<Vec<DependencyLink>> {
        let mut counter = DependencyCounter::default();
        for trace_id in self.shared.traces_in_window(tenant, &query).await? {
            let lookup = TraceLookup::whole(trace_id);
            if let Some(trace) = self.shared.read_trace(tenant, &lookup).await? {
                counter.add_trace(&trace, &query);
            }
        }
        Ok(counter.finish())
    }
}

#[async_trait]
impl Purger for ElasticsearchStore {
    async fn purge(&self) -> StoreResult<()> {
        let indices = self.shared.indices().await?;
        self.shared.delete_indices(&indices).await?;
        Ok(())
    }
}

#[async_trait]
impl StoreLifecycle for ElasticsearchStore {
    async fn ready(&self) -> StoreResult<()> {
        self.shared
            .client
            .json(Method::GET, "/", None, "GET /")
            .await?;
        Ok(())
    }

    async fn close(&self) -> StoreResult<()> {
        if let Some(task) = self.maintenance.lock().take() {
            task.abort();
        }
        Ok(())
    }
}

impl Drop for ElasticsearchStore {
    fn drop(&mut self) {
        if let Some(task) = self.maintenance.lock().take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use remote_storage_core::ErrorKind;
    use serde_json::json;

    use super::*;

    #[test]
    fn bulk_item_failures_are_counted_and_classified() {
        let names = IndexNames::new("jr", crate::config::IndexRotation::Day);
        let refused = |status: u64, index: &str| {
            json!({"index": {"_index": index, "status": status,
                "error": {"type": "document_parsing_exception", "reason": "bad"}}})
        };
        let ok = json!({"index": {"_index": "jr-span-2026-12-07", "status": 201}});
        let answer = json!({"errors": true, "items": [
            ok,
            refused(400, "jr-span-2026-12-07"),
            refused(400, "jr-span-2026-12-07"),
        ]});
        let (count, reason) = bulk_item_failures(&answer, 3, &names).unwrap();
        assert_eq!(count, 2);
        assert!(reason.unwrap().contains("document_parsing_exception: bad"));
        let overloaded = json!({"errors": true, "items": [ok, refused(429, "jr-span-2026-12-07")]});
        assert_eq!(
            bulk_item_failures(&overloaded, 2, &names)
                .unwrap_err()
                .kind(),
            ErrorKind::Unavailable
        );
        let service = json!({"errors": true, "items": [refused(400, "jr-service-2026-12-07")]});
        assert_eq!(
            bulk_item_failures(&service, 1, &names).unwrap_err().kind(),
            ErrorKind::Internal
        );
    }
}
