//! A trace's call sites (what a call needs of each stored span) and the call deltas a write
//! makes to them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::engine::PartitionId;
use crate::keys::Discriminator;
use crate::rollups::CallDeltas;

/// A stored span's place in its trace's read order: partition, then discriminator (the order
/// `fragment_entries` and GetTraces read a trace in).
pub(crate) type Order = (PartitionId, Discriminator);

/// What a call needs of one stored span.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub(crate) span_id: [u8; 8],
    pub(crate) parent: Option<[u8; 8]>,
    pub(crate) service: Arc<str>,
    pub(crate) start: u64,
}

/// Every stored span of one trace, in read order; a re-sent span (same order key) once.
#[derive(Debug, Default)]
pub(crate) struct TraceSites {
    sites: BTreeMap<Order, Site>,
}

impl TraceSites {
    /// Spans held.
    pub(crate) fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether a span of this trace is stored in `partition`.
    pub(crate) fn holds(&self, partition: PartitionId) -> bool {
        self.sites
            .range((partition, [0; 16])..=(partition, [u8::MAX; 16]))
            .next()
            .is_some()
    }

    /// Adds a span read back from the store (a repeat of a known one is ignored).
    pub(crate) fn insert_stored(&mut self, order: Order, site: Site) {
        self.sites.entry(order).or_insert(site);
    }

    /// Adds the spans a write stores and records the calls this changes: the calls of the
    /// trace afterwards minus those before, so a parent arriving after its children, and a
    /// span sorting before an earlier one with its ID, are both counted exactly. Costs a pass
    /// over the trace before and after (only after, for a new trace), as the memory backend.
    pub(crate) fn add(&mut self, spans: Vec<(Order, Site)>, deltas: &mut CallDeltas) {
        if spans
            .iter()
            .all(|(order, _)| self.sites.contains_key(order))
        {
            return;
        }
        if !self.sites.is_empty() {
            self.each_call(|key| deltas.add(key, -1));
        }
        for (order, site) in spans {
            self.sites.entry(order).or_insert(site);
        }
        self.each_call(|key| deltas.add(key, 1));
    }

    /// Every call of the trace: (record partition, callee start, parent service, child
    /// service). The parent of a span is the first span in read order with its parent ID; the
    /// record lives in the older partition of the two spans.
    fn each_call(&self, mut each: impl FnMut(super::CallKey)) {
        let mut first: HashMap<[u8; 8], (PartitionId, &Arc<str>)> =
            HashMap::with_capacity(self.sites.len());
        for ((partition, _), site) in &self.sites {
            first
                .entry(site.span_id)
                .or_insert((*partition, &site.service));
        }
        for ((partition, _), site) in &self.sites {
            let Some(&(parent_partition, parent_service)) =
                site.parent.and_then(|parent| first.get(&parent))
            else {
                continue;
            };
            each((
                (*partition).min(parent_partition),
                site.start,
                Arc::clone(parent_service),
                Arc::clone(&site.service),
            ));
        }
    }
}
