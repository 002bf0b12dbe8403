//! A bounded memory of recently written traces' call sites, so a trace sent in several
//! Exports is read from the store only when it has been forgotten.

use std::collections::{HashMap, VecDeque};

use remote_storage_core::{Tenant, TraceId};

use super::sites::TraceSites;

/// Call sites remembered across all traces: about 200 bytes each (the site, its place among
/// the first spans of an ID and among its parent's children), so about 20 MB. A trace
/// forgotten before its last Export costs that Export a read of its fragments.
pub(crate) const CACHED_SITES_LIMIT: usize = 100_000;

type Key = (Tenant, TraceId);

/// Call sites by trace, forgotten oldest first (by when they were last written).
#[derive(Debug)]
pub(crate) struct SiteCache {
    traces: HashMap<Key, (u64, TraceSites)>,
    /// (generation, trace) in insertion order; an entry whose generation no longer matches
    /// the trace's is stale.
    order: VecDeque<(u64, Key)>,
    generation: u64,
    sites: usize,
    limit: usize,
}

impl Default for SiteCache {
    fn default() -> Self {
        Self::with_limit(CACHED_SITES_LIMIT)
    }
}

impl SiteCache {
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            traces: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
            sites: 0,
            limit,
        }
    }

    /// Takes a trace's sites out (a write puts them back once committed).
    pub(crate) fn take(&mut self, tenant: &Tenant, trace_id: TraceId) -> Option<TraceSites> {
        let (_, sites) = self.traces.remove(&(tenant.clone(), trace_id))?;
        self.sites -= sites.len();
        Some(sites)
    }

    /// Remembers a trace's sites, forgetting the oldest traces beyond the limit.
    pub(crate) fn put(&mut self, tenant: &Tenant, trace_id: TraceId, sites: TraceSites) {
        if sites.len() > self.limit {
            return;
        }
        self.generation += 1;
        let key = (tenant.clone(), trace_id);
        self.sites += sites.len();
        if let Some((_, old)) = self.traces.insert(key.clone(), (self.generation, sites)) {
            self.sites -= old.len();
        }
        self.order.push_back((self.generation, key));
        while self.sites > self.limit {
            let Some((generation, key)) = self.order.pop_front() else {
                break;
            };
            if self
                .traces
                .get(&key)
                .is_some_and(|(live, _)| *live == generation)
                && let Some((_, sites)) = self.traces.remove(&key)
            {
                self.sites -= sites.len();
            }
        }
        // Taken-and-put traces leave stale entries behind: drop them before they pile up.
        if self.order.len() > 2 * self.traces.len() + 1_024 {
            let traces = &self.traces;
            self.order.retain(|(generation, key)| {
                traces.get(key).is_some_and(|(live, _)| live == generation)
            });
        }
    }

    /// Forgets everything (partitions were dropped: remembered sites may be gone).
    pub(crate) fn clear(&mut self) {
        self.traces.clear();
        self.order.clear();
        self.sites = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PartitionId;
    use crate::rollups::sites::Site;
    use std::sync::Arc;

    fn sites(count: u8) -> TraceSites {
        let mut sites = TraceSites::default();
        for index in 0..count {
            sites.insert_stored(
                (PartitionId::for_time(0, 3_600), [index; 16]),
                Site {
                    span_id: [index; 8],
                    parent: None,
                    service: Arc::from("svc"),
                    start: 0,
                },
            );
        }
        sites
    }

    #[test]
    fn oldest_traces_are_forgotten_beyond_the_limit() {
        let tenant = Tenant::default();
        let mut cache = SiteCache::with_limit(5);
        cache.put(&tenant, TraceId([1; 16]), sites(2));
        cache.put(&tenant, TraceId([2; 16]), sites(2));
        // Re-written: now the newest.
        let first = cache.take(&tenant, TraceId([1; 16])).unwrap();
        cache.put(&tenant, TraceId([1; 16]), first);
        cache.put(&tenant, TraceId([3; 16]), sites(2));
        assert!(cache.take(&tenant, TraceId([2; 16])).is_none());
        assert!(cache.take(&tenant, TraceId([1; 16])).is_some());
        assert!(cache.take(&tenant, TraceId([3; 16])).is_some());
        assert!(
            cache
                .take(&Tenant::new("other"), TraceId([3; 16]))
                .is_none()
        );
        cache.put(&tenant, TraceId([4; 16]), sites(6));
        assert!(cache.take(&tenant, TraceId([4; 16])).is_none());
    }
}
