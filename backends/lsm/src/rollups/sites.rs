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

/// Every stored span of one trace, in read order; a re-sent span (same order key) once. With
/// them, what lets a write count the calls it changes from its own spans only: the first span
/// of each ID (the parent its children's calls name) and the spans naming each parent ID.
/// Recounting the whole trace on every write made a 10,000-span trace sent 5 spans at a time
/// (as Jaeger's collector may send it) quadratic, under the lock every write takes.
#[derive(Debug, Default)]
pub(crate) struct TraceSites {
    sites: BTreeMap<Order, Site>,
    first: HashMap<[u8; 8], Order>,
    children: HashMap<[u8; 8], Vec<Order>>,
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
        self.insert(order, site, None);
    }

    /// Adds the spans a write stores and records the calls this changes, so that the deltas
    /// of all writes sum to the calls of the trace: a parent arriving after its children, and
    /// a span sorting before an earlier one with its ID, are both counted exactly.
    pub(crate) fn add(&mut self, spans: Vec<(Order, Site)>, deltas: &mut CallDeltas) {
        for (order, site) in spans {
            self.insert(order, site, Some(deltas));
        }
    }

    /// Adds one span, recording in `deltas` the calls it changes: the calls of its ID's
    /// children move to it when it sorts first among the spans of its ID, and its own call
    /// counts when its parent is held.
    fn insert(&mut self, order: Order, site: Site, mut deltas: Option<&mut CallDeltas>) {
        if self.sites.contains_key(&order) {
            return;
        }
        let span_id = site.span_id;
        let parent = site.parent;
        self.sites.insert(order, site);
        if self.first.get(&span_id).is_none_or(|first| order < *first) {
            let displaced = self.first.insert(span_id, order);
            if let Some(deltas) = deltas.as_deref_mut() {
                for &child in self.children.get(&span_id).into_iter().flatten() {
                    if let Some(displaced) = displaced {
                        deltas.add(self.call(child, displaced), -1);
                    }
                    deltas.add(self.call(child, order), 1);
                }
            }
        }
        if let Some(parent) = parent {
            self.children.entry(parent).or_default().push(order);
            if let (Some(deltas), Some(&first)) = (deltas, self.first.get(&parent)) {
                deltas.add(self.call(order, first), 1);
            }
        }
    }

    /// The call from the held span at `parent` to the held span at `child`: (record
    /// partition, callee start, parent service, child service). The record lives in the older
    /// partition of the two spans.
    fn call(&self, child: Order, parent: Order) -> super::CallKey {
        let child_site = &self.sites[&child];
        (
            child.0.min(parent.0),
            child_site.start,
            Arc::clone(&self.sites[&parent].service),
            Arc::clone(&child_site.service),
        )
    }
}
