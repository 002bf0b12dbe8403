//! FindTraces over one tenant: a walk of a time index, or a look at the spans of the blocks
//! whose filters may hold the query's attribute terms, whichever is expected to look at fewer
//! spans.
//!
//! Both plans give the same answer: the traces ranked by their newest matching span (start,
//! then slot, descending), at most `search_depth` of them. Every candidate is first tested on
//! its index record (service, operation, kind, start and duration) and its term
//! fingerprints, and decoded for the shared [`SpanMatcher`] when the query has attribute
//! conditions or a structured filter.
//!
//! A structured filter narrows through its plan ([`FilterPlan`]): the services, span names,
//! kinds, duration and start ranges it pins are record checks, and the attribute terms it
//! requires (one text) are index terms like a legacy attribute's (several texts: one of
//! their fingerprints must be present). The filter itself decides every candidate that
//! passes, so the plan only makes a search faster.

use std::collections::{BTreeSet, HashSet};

use hashbrown::HashMap;
use jaeger_remote_proto::otlp::trace::span::SpanKind;
use remote_storage_core::filter::FilterPlan;
use remote_storage_core::matcher::{AttributeCondition, SpanMatcher};
use remote_storage_core::{FoundTraceId, StoreResult, TraceQuery, UnixNanos};

use super::TenantStore;
use crate::codec;
use crate::records::{SpanKey, SpanSlot, StoredSpan, StoredTrace};
use crate::time_index;

/// Most candidate spans (those the block and span filters pass) looked at before walking
/// instead: a term on more spans than this is frequent enough for a walk to meet
/// `search_depth` matches early.
const MAX_CANDIDATE_SPANS: usize = 32_768;

/// What a span's index record and fingerprints can decide about a query.
struct RecordFilter {
    /// The services a matching span can have; `None` when the query does not narrow them.
    services: Option<Vec<u32>>,
    /// The span names a matching span can have.
    operations: Option<Vec<String>>,
    /// The span kinds (OTLP numbers) a matching span can have.
    kinds: Option<Vec<i32>>,
    start_min: u64,
    start_max: u64,
    duration_min: u64,
    duration_max: u64,
    /// Fingerprints of the attribute terms every matching span holds.
    fingerprints: Vec<u8>,
    /// Groups of fingerprints of which a matching span holds at least one each (a filter's
    /// `in` over an attribute).
    any_fingerprints: Vec<Vec<u8>>,
    /// Whether spans must be decoded and tested whole (attribute conditions, a filter).
    decode: bool,
}

/// The query's attribute terms that the attribute index covers: every matching span holds
/// each of `all`, and one of each group of `any`.
#[derive(Debug, Default)]
pub(super) struct QueryTerms {
    all: Vec<u64>,
    any: Vec<Vec<u64>>,
}

impl RecordFilter {
    /// `None` when nothing can match: an unknown service, an empty time or duration range, a
    /// filter whose plan is unsatisfiable.
    fn new(
        store: &TenantStore,
        query: &TraceQuery,
        plan: &FilterPlan,
        terms: &QueryTerms,
    ) -> Option<Self> {
        let services = match (&query.service_name, &plan.services) {
            (Some(name), _) => Some(vec![store.services.id(name)?]),
            (None, Some(names)) => {
                let ids: Vec<u32> = names
                    .iter()
                    .filter_map(|name| store.services.id(name))
                    .collect();
                if ids.is_empty() {
                    return None;
                }
                Some(ids)
            }
            (None, None) => None,
        };
        let operations = match (&query.operation_name, &plan.span_names) {
            (Some(name), _) => Some(vec![name.clone()]),
            (None, Some(names)) => Some(names.iter().cloned().collect()),
            (None, None) => None,
        };
        let (plan_start_min, plan_start_max) = plan.start.unsigned()?;
        let (plan_duration_min, plan_duration_max) = plan.duration.unsigned()?;
        let fingerprint = |hashes: &[u64]| -> Vec<u8> {
            hashes
                .iter()
                .map(|&hash| codec::fingerprint(hash))
                .collect()
        };
        let filter = Self {
            services,
            operations,
            kinds: plan
                .kinds
                .as_ref()
                .map(|kinds| kinds.iter().copied().collect()),
            start_min: query
                .start_time_min
                .unwrap_or_default()
                .0
                .max(plan_start_min),
            start_max: query
                .start_time_max
                .unwrap_or(UnixNanos(u64::MAX))
                .0
                .min(plan_start_max),
            duration_min: query.duration_min.unwrap_or(0).max(plan_duration_min),
            duration_max: query
                .duration_max
                .unwrap_or(u64::MAX)
                .min(plan_duration_max),
            fingerprints: fingerprint(&terms.all),
            any_fingerprints: terms.any.iter().map(|group| fingerprint(group)).collect(),
            decode: !query.attributes.is_empty() || query.filter.is_some(),
        };
        let satisfiable = filter.start_min <= filter.start_max
            && filter.duration_min <= filter.duration_max
            && !plan.is_unsatisfiable();
        satisfiable.then_some(filter)
    }

    fn accepts(&self, store: &TenantStore, span: &StoredSpan) -> bool {
        if !(self
            .services
            .as_ref()
            .is_none_or(|services| services.contains(&span.service))
            && (self.start_min..=self.start_max).contains(&span.start)
            && (self.duration_min..=self.duration_max).contains(&span.duration()))
        {
            return false;
        }
        if self.operations.is_some() || self.kinds.is_some() {
            let (name, kind) = store
                .operations
                .get(span.operation)
                .map_or(("", 0), |operation| (&*operation.name, operation.kind));
            if self
                .operations
                .as_ref()
                .is_some_and(|names| !names.iter().any(|wanted| wanted == name))
            {
                return false;
            }
            // The filter's words name OTLP's kinds; an unknown number reads as unspecified.
            let kind = SpanKind::try_from(kind).unwrap_or(SpanKind::Unspecified) as i32;
            if self
                .kinds
                .as_ref()
                .is_some_and(|kinds| !kinds.contains(&kind))
            {
                return false;
            }
        }
        if self.fingerprints.is_empty() && self.any_fingerprints.is_empty() {
            return true;
        }
        let own = codec::fingerprints(&span.body);
        self.fingerprints.iter().all(|wanted| own.contains(wanted))
            && self
                .any_fingerprints
                .iter()
                .all(|group| group.iter().any(|wanted| own.contains(wanted)))
    }
}

impl TenantStore {
    /// See the module documentation.
    pub(crate) fn find_trace_ids(&self, query: &TraceQuery) -> StoreResult<Vec<FoundTraceId>> {
        let matcher = SpanMatcher::new(query);
        let plan = query
            .filter
            .as_ref()
            .map(|filter| filter.plan())
            .unwrap_or_default();
        let terms = self.query_terms(&matcher, &plan);
        let Some(filter) = RecordFilter::new(self, query, &plan, &terms) else {
            return Ok(Vec::new());
        };
        let depth = query.search_depth.get();
        match self.candidate_slots(&terms.all) {
            Some(slots) => self.find_in_blocks(&slots, &filter, &matcher, depth),
            None => self.walk(&filter, &matcher, depth),
        }
    }

    /// Hashes of the query's attribute terms that the attribute index covers: the legacy
    /// conditions' and the filter plan's (the index holds the attributes of every level
    /// under one hash of key and canonical text, so any level's term is a lookup).
    pub(super) fn query_terms(&self, matcher: &SpanMatcher, plan: &FilterPlan) -> QueryTerms {
        let mut all: Vec<u64> = matcher
            .conditions()
            .iter()
            .filter_map(|condition| match condition {
                AttributeCondition::Anywhere { key, value }
                | AttributeCondition::Resource { key, value } => Some(self.terms.hash(key, value)),
                _ => None,
            })
            .collect();
        let mut any = Vec::new();
        for attribute in &plan.attributes {
            let hashes: Vec<u64> = attribute
                .texts
                .iter()
                .map(|text| self.terms.hash(&attribute.key, text))
                .collect();
            match hashes.as_slice() {
                [hash] => all.push(*hash),
                // No text: the plan is unsatisfiable and nothing is searched.
                [] => {}
                _ => any.push(hashes),
            }
        }
        all.sort_unstable();
        all.dedup();
        QueryTerms { all, any }
    }

    /// The slots of the spans the attribute index says may hold every term, or `None` when
    /// the query has no term or there are too many of them to beat a walk.
    fn candidate_slots(&self, hashes: &[u64]) -> Option<Vec<SpanSlot>> {
        if hashes.is_empty() {
            return None;
        }
        let mut slots = Vec::new();
        for slot in self.blocks.candidates(hashes) {
            if slots.len() >= MAX_CANDIDATE_SPANS {
                return None;
            }
            slots.push(slot);
        }
        Some(slots)
    }

    /// Whether the span satisfies the whole query.
    fn span_matches(
        &self,
        trace: &StoredTrace,
        span: &StoredSpan,
        filter: &RecordFilter,
        matcher: &SpanMatcher,
    ) -> StoreResult<bool> {
        if !filter.accepts(self, span) {
            return Ok(false);
        }
        if !filter.decode {
            return Ok(true);
        }
        Ok(matcher.matches(&self.decode(trace, span)?))
    }

    /// Walks the spans of the query's services (or of every service) newest first, keeping a
    /// trace the first time one of its spans matches.
    fn walk(
        &self,
        filter: &RecordFilter,
        matcher: &SpanMatcher,
        depth: usize,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let indexes: Vec<&BTreeSet<SpanKey>> = match &filter.services {
            Some(ids) => {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                ids.iter()
                    .filter_map(|&id| self.services.get(id))
                    .map(|entry| &entry.spans)
                    .collect()
            }
            None => self.services.indexes().collect(),
        };
        let lower = SpanKey::lowest(UnixNanos(filter.start_min));
        let upper = SpanKey::highest(UnixNanos(filter.start_max));
        let mut seen: HashSet<u64> = HashSet::new();
        let mut found = Vec::new();
        for key in time_index::newest_first(indexes, lower, upper) {
            let sequence = key.slot.sequence();
            if seen.contains(&sequence) {
                continue;
            }
            let Some(trace) = self.trace_at(sequence) else {
                continue;
            };
            let Some(span) = trace.spans.get(key.slot.index()) else {
                continue;
            };
            if !self.span_matches(trace, span, filter, matcher)? {
                continue;
            }
            seen.insert(sequence);
            found.push(found_trace(trace));
            if found.len() >= depth {
                break;
            }
        }
        Ok(found)
    }

    /// Tests the candidate spans, keeps each trace's newest matching span, and ranks traces
    /// by it.
    fn find_in_blocks(
        &self,
        slots: &[SpanSlot],
        filter: &RecordFilter,
        matcher: &SpanMatcher,
        depth: usize,
    ) -> StoreResult<Vec<FoundTraceId>> {
        let oldest_live = self.oldest_live();
        let mut newest: HashMap<u64, SpanKey> = HashMap::new();
        for &slot in slots {
            if slot < oldest_live {
                continue;
            }
            let sequence = slot.sequence();
            let Some(trace) = self.trace_at(sequence) else {
                continue;
            };
            let Some(span) = trace.spans.get(slot.index()) else {
                continue;
            };
            let key = SpanKey {
                start: UnixNanos(span.start),
                slot,
            };
            if newest.get(&sequence).is_some_and(|best| *best >= key) {
                continue;
            }
            if self.span_matches(trace, span, filter, matcher)? {
                newest.insert(sequence, key);
            }
        }
        let mut ranked: Vec<SpanKey> = newest.into_values().collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ranked
            .into_iter()
            .take(depth)
            .filter_map(|key| self.trace_at(key.slot.sequence()))
            .map(found_trace)
            .collect())
    }
}

fn found_trace(trace: &StoredTrace) -> FoundTraceId {
    FoundTraceId {
        trace_id: trace.trace_id,
        start: Some(trace.start),
        end: Some(trace.end),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use remote_storage_core::proto::otlp::common::InstrumentationScope;
    use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
    use remote_storage_core::proto::otlp::trace::Span as OtlpSpan;
    use remote_storage_core::query::AttributeFilter;
    use remote_storage_core::testing::otlp_resource;
    use remote_storage_core::{Resource, Scope, Span};

    use super::*;

    fn text(key: &str, value: impl Into<String>) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            key_strindex: 0,
        }
    }

    /// 3,000 traces of 4 spans over 3 services (2,000 kept, so eviction leaves stale index
    /// entries), a term on every span, terms on a seventh, a fifth (resource) and a few spans.
    fn store() -> TenantStore {
        store_of(3_000, 2_000)
    }

    fn store_of(traces: u32, kept: usize) -> TenantStore {
        let mut store = TenantStore::new(NonZeroUsize::new(kept).unwrap_or(NonZeroUsize::MIN));
        let scope = Arc::new(Scope::new(InstrumentationScope::default(), String::new()));
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for trace in 0..traces {
            let mut resource = otlp_resource(&format!("svc-{}", trace % 3));
            resource
                .attributes
                .push(text("host", format!("h{}", trace % 5)));
            let resource = Arc::new(Resource::new(resource, String::new()));
            let spans: Vec<Span> = (0..4_u32)
                .map(|index| {
                    let start = 1_000_000 + next() % 1_000_000;
                    let mut attributes = vec![
                        text("common", "yes"),
                        text("mod7", ((trace + index) % 7).to_string()),
                    ];
                    if next() % 97 == 0 {
                        attributes.push(text("rare", "x"));
                    }
                    let mut trace_id = [7; 16];
                    trace_id[..4].copy_from_slice(&trace.to_be_bytes());
                    let otlp = OtlpSpan {
                        trace_id: trace_id.to_vec(),
                        span_id: vec![u8::try_from(index + 1).unwrap_or(1); 8],
                        name: format!("op-{}", index % 2),
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + next() % 1_000,
                        attributes,
                        ..OtlpSpan::default()
                    };
                    Span::new(Arc::clone(&resource), Arc::clone(&scope), otlp).expect("valid span")
                })
                .collect();
            store.write(&spans).expect("stored");
        }
        store
    }

    fn query(service: Option<&str>, operation: Option<&str>, tags: &[(&str, &str)]) -> TraceQuery {
        let mut query = TraceQuery::all(NonZeroUsize::new(15).unwrap_or(NonZeroUsize::MIN));
        query.service_name = service.map(str::to_owned);
        query.operation_name = operation.map(str::to_owned);
        query.attributes = tags
            .iter()
            .map(|(key, value)| AttributeFilter {
                key: (*key).to_owned(),
                value: (*value).to_owned(),
            })
            .collect();
        query
    }

    #[test]
    fn the_term_list_and_the_walk_find_the_same_traces() {
        let store = store();
        let mut windowed = query(Some("svc-1"), None, &[("mod7", "3")]);
        windowed.start_time_min = Some(UnixNanos(1_200_000));
        windowed.start_time_max = Some(UnixNanos(1_700_000));
        windowed.duration_max = Some(500);
        let queries = [
            query(None, None, &[("common", "yes")]),
            query(Some("svc-2"), None, &[("mod7", "1")]),
            query(None, Some("op-1"), &[("mod7", "4"), ("common", "yes")]),
            query(None, None, &[("rare", "x")]),
            query(Some("svc-0"), None, &[("host", "h3")]),
            query(None, None, &[("resource.host", "h2"), ("mod7", "6")]),
            query(None, None, &[("host", "h1"), ("rare", "x")]),
            windowed,
        ];
        for query in &queries {
            let matcher = SpanMatcher::new(query);
            let plan = FilterPlan::default();
            let terms = store.query_terms(&matcher, &plan);
            let filter =
                RecordFilter::new(&store, query, &plan, &terms).expect("a satisfiable query");
            let all_blocks: Vec<SpanSlot> = store.blocks.candidates(&[]).collect();
            let some_blocks: Vec<SpanSlot> = store.blocks.candidates(&terms.all).collect();
            let depth = query.search_depth.get();
            let walked = store.walk(&filter, &matcher, depth).expect("walk");
            let listed = store
                .find_in_blocks(&some_blocks, &filter, &matcher, depth)
                .expect("blocks");
            let scanned = store
                .find_in_blocks(&all_blocks, &filter, &matcher, depth)
                .expect("all blocks");
            assert_eq!(listed, scanned, "{query:?}");
            assert!(!walked.is_empty(), "{query:?} finds traces");
            assert_eq!(walked, listed, "{query:?}");
            assert_eq!(store.find_trace_ids(query).expect("find"), walked);
        }
    }

    #[test]
    fn rare_terms_use_the_blocks_and_frequent_ones_walk() {
        let store = store_of(10_000, 10_000);
        let hashes = |tags: &[(&str, &str)]| {
            store
                .query_terms(
                    &SpanMatcher::new(&query(None, None, tags)),
                    &FilterPlan::default(),
                )
                .all
        };
        assert!(store.candidate_slots(&hashes(&[("rare", "x")])).is_some());
        assert_eq!(
            store
                .candidate_slots(&hashes(&[("rare", "never")]))
                .map(|blocks| blocks.len()),
            Some(0)
        );
        assert!(
            store
                .candidate_slots(&hashes(&[("common", "yes")]))
                .is_none()
        );
        assert!(
            store
                .candidate_slots(&hashes(&[("error", "true")]))
                .is_none()
        );
    }
}
