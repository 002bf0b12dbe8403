//! GetDependencies from the call records alone: the window's whole minutes from the block
//! records (folded, about one per 4 hours and partition), its partial minutes at either edge from
//! the minute records (one per write batch that touched the minute, holding each call's exact
//! start). Cost grows with the 4-hour blocks in the window, not with its spans.

use std::collections::HashMap;
#[cfg(test)]
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use remote_storage_core::dependencies::{DependencyCounter, split_at_minutes};
use remote_storage_core::{DependencyLink, DependencyQuery, Tenant};

use crate::engine::{Engine, Partition};
use crate::error::LsmError;
use crate::keys;
#[cfg(test)]
use crate::read::{PostingFilter, PostingWalk, Skeletons};
use crate::rollups::{self, MINUTE_NANOS};

/// Calls summed from deltas: parent service → child service → calls.
#[derive(Default)]
struct CallSums(HashMap<String, HashMap<String, i64>>);

impl CallSums {
    fn add(&mut self, parent: &str, child: &str, delta: i64) {
        let children = match self.0.get_mut(parent) {
            Some(children) => children,
            None => self.0.entry(parent.to_owned()).or_default(),
        };
        match children.get_mut(child) {
            Some(count) => *count += delta,
            None => {
                children.insert(child.to_owned(), delta);
            }
        }
    }
}

impl Engine {
    /// Links of the calls whose callee starts inside the window.
    pub(crate) fn dependencies(
        &self,
        tenant: &Tenant,
        window: &DependencyQuery,
    ) -> Result<Vec<DependencyLink>, LsmError> {
        let partitions = self.snapshot();
        let mut sums = CallSums::default();
        let split = split_at_minutes(window);
        for edge in &split.edges {
            self.sum_call_starts(tenant, edge.start.0, edge.end.0, &partitions, &mut sums)?;
        }
        if let Some(whole) = split.whole {
            self.sum_call_minutes(tenant, whole, &partitions, &mut sums)?;
        }
        let mut counter = DependencyCounter::default();
        for (parent, children) in sums.0 {
            for (child, count) in children {
                // Deltas sum to the calls, never below zero, except after the one inexact case
                // (see the README: retention dropping the first of two spans sharing an ID).
                counter.add_calls(&parent, &child, u64::try_from(count).unwrap_or(0));
            }
        }
        Ok(counter.finish())
    }

    /// Links counted from the spans alone (what the records must always equal).
    #[cfg(test)]
    pub(crate) fn dependencies_from_spans(
        &self,
        tenant: &Tenant,
        window: &DependencyQuery,
    ) -> Result<Vec<DependencyLink>, LsmError> {
        let mut counter = DependencyCounter::default();
        self.count_from_spans(tenant, window, &self.snapshot(), &mut counter)?;
        Ok(counter.finish())
    }

    /// Adds the calls whose callee starts in `low..=high` (at most two minutes, the partial
    /// ones at a window's edges) from the minute records. A record lives in the older
    /// partition of a call's two spans, so partitions starting after `high` hold none.
    fn sum_call_starts(
        &self,
        tenant: &Tenant,
        low: u64,
        high: u64,
        partitions: &[Arc<Partition>],
        sums: &mut CallSums,
    ) -> Result<(), LsmError> {
        for minute in rollups::minute_of(low)..=rollups::minute_of(high) {
            let prefix = keys::call_starts_prefix(tenant, minute);
            let base = u64::from(minute) * MINUTE_NANOS;
            for partition in partitions {
                if partition.id.start_nanos() > high {
                    continue;
                }
                for guard in partition.index.prefix(&prefix) {
                    let (_, value) = guard.into_inner()?;
                    rollups::decode_calls(base, &value, |start, parent, child, delta| {
                        if (low..=high).contains(&start) {
                            sums.add(parent, child, delta);
                        }
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Counts, with [`DependencyCounter`] over skeleton spans built from the summary
    /// fragments, the calls of the traces with a span starting in the window.
    #[cfg(test)]
    fn count_from_spans(
        &self,
        tenant: &Tenant,
        window: &DependencyQuery,
        partitions: &[Arc<Partition>],
        counter: &mut DependencyCounter,
    ) -> Result<(), LsmError> {
        let filter = PostingFilter {
            term: None,
            min_start: window.start.0,
            max_start: window.end.0,
            min_duration: 0,
            max_duration: u64::MAX,
        };
        let mut traces = Vec::new();
        let mut seen = HashSet::new();
        for candidate in PostingWalk::new(partitions, keys::global_term(tenant), filter) {
            let (_, reference) = candidate?;
            if seen.insert(reference.trace_id) {
                traces.push(reference.trace_id);
            }
        }
        let mut skeletons = Skeletons::default();
        for trace_id in traces {
            let entries = self.fragment_entries(tenant, &trace_id, partitions)?;
            let spans = skeletons.spans(trace_id, &entries)?;
            counter.add_spans(&spans, window);
        }
        Ok(())
    }

    /// Adds the calls the block records count in `minutes` (see [`Self::sum_call_starts`] for
    /// the partitions read).
    fn sum_call_minutes(
        &self,
        tenant: &Tenant,
        minutes: Range<u64>,
        partitions: &[Arc<Partition>],
        sums: &mut CallSums,
    ) -> Result<(), LsmError> {
        let Some(last_minute) = minutes.end.checked_sub(1) else {
            return Ok(());
        };
        let first_block = rollups::block_of(minutes.start);
        let last_block = rollups::block_of(last_minute);
        let low = keys::calls_block_prefix(tenant, first_block);
        let prefix_len = low.len();
        let last_nanos = last_minute.saturating_mul(MINUTE_NANOS);
        for partition in partitions {
            if partition.id.start_nanos() > last_nanos.saturating_add(MINUTE_NANOS - 1) {
                continue;
            }
            for guard in partition.index.range(low.as_slice()..) {
                let (key, value) = guard.into_inner()?;
                let Some(block) = key
                    .get(prefix_len - 4..prefix_len)
                    .filter(|_| key.starts_with(&low[..prefix_len - 4]))
                    .and_then(|bytes| bytes.try_into().ok())
                    .map(u32::from_be_bytes)
                else {
                    break;
                };
                if block > last_block {
                    break;
                }
                let base = u64::from(block) * rollups::MINUTES_PER_RECORD;
                rollups::decode_calls(base, &value, |minute, parent, child, delta| {
                    if minutes.contains(&minute) {
                        sums.add(parent, child, delta);
                    }
                })?;
            }
        }
        Ok(())
    }
}
