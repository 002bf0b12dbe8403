//! Folding call records: each write batch adds one block record per (partition, tenant, block)
//! it counts calls in, so a day of small Exports leaves tens of thousands of them. The
//! background thread replaces each block's records by their sum, so a GetDependencies over a
//! day reads about one record per 4 hours and partition.
//!
//! A fold deletes exactly the records it read and writes their sum under the newest one's
//! key, in one atomic batch: readers see the records or their sum, never both. Writes never
//! touch an existing record (every batch has its own ID), so no lock is taken against them.
//! Minute records (per callee start) are not folded: a read takes at most two minutes of them,
//! the window's partial edges.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use fjall::UserKey;

use super::{Engine, Partition};
use crate::error::LsmError;
use crate::keys::tag;
use crate::rollups;

/// Folding starts once a block has this many records.
const FOLD_MIN_RECORDS: usize = 2;

impl Engine {
    /// Folds the call records of every partition written since its last fold. Returns how
    /// many records were replaced.
    pub(crate) fn fold_calls(&self) -> Result<usize, LsmError> {
        let _folding = self.folding.lock();
        let mut folded = 0;
        for id in self.partitions.read().keys().copied().collect::<Vec<_>>() {
            // Held per partition, so retention and purge wait for at most one partition's fold
            // and never delete the keyspace being folded.
            let guard = self.partitions.read();
            let Some(partition) = guard.get(&id) else {
                continue;
            };
            if partition.unfolded_calls.swap(false, Ordering::AcqRel) {
                folded += fold_partition(self, partition)?;
            }
        }
        Ok(folded)
    }

    /// Makes the next fold scan every partition.
    #[cfg(test)]
    pub(crate) fn mark_calls_unfolded(&self) {
        for partition in self.partitions.read().values() {
            partition.unfolded_calls.store(true, Ordering::Release);
        }
    }
}

/// One block's records of one tenant, as read.
#[derive(Default)]
struct Group {
    keys: Vec<UserKey>,
    values: Vec<fjall::UserValue>,
}

fn fold_partition(engine: &Engine, partition: &Partition) -> Result<usize, LsmError> {
    let mut folded = 0;
    let mut group = Group::default();
    // Key without the batch ID: `d ‖ tenant ‖ block`.
    let mut group_prefix: Vec<u8> = Vec::new();
    for guard in partition.index.prefix([tag::CALLS]) {
        let (key, value) = guard.into_inner()?;
        let prefix = key
            .get(..key.len().saturating_sub(8))
            .ok_or_else(|| LsmError::corrupt("call record key is too short"))?;
        if prefix != group_prefix.as_slice() {
            folded += fold_group(engine, partition, &group_prefix, std::mem::take(&mut group))?;
            group_prefix = prefix.to_vec();
        }
        group.keys.push(key);
        group.values.push(value);
    }
    folded += fold_group(engine, partition, &group_prefix, group)?;
    Ok(folded)
}

fn fold_group(
    engine: &Engine,
    partition: &Partition,
    prefix: &[u8],
    group: Group,
) -> Result<usize, LsmError> {
    if group.keys.len() < FOLD_MIN_RECORDS {
        return Ok(0);
    }
    let block = prefix
        .get(prefix.len().saturating_sub(4)..)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| LsmError::corrupt("call record key is too short"))?;
    let first_minute = u64::from(block) * rollups::MINUTES_PER_RECORD;
    let mut sums: HashMap<(u64, &str, &str), i64> = HashMap::new();
    for value in &group.values {
        rollups::decode_calls(first_minute, value, |minute, parent, child, delta| {
            *sums.entry((minute, parent, child)).or_default() += delta;
        })?;
    }
    let mut entries: Vec<(u64, &str, &str, i64)> = sums
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .map(|((minute, parent, child), delta)| (minute, parent, child, delta))
        .collect();
    // Deterministic bytes, so equal sums encode equally.
    entries.sort_unstable();
    let mut batch = engine.db.batch();
    let (newest, older) = group
        .keys
        .split_last()
        .ok_or_else(|| LsmError::corrupt("empty call record group"))?;
    for key in older {
        batch.remove(&partition.index, key.clone());
    }
    if entries.is_empty() {
        batch.remove(&partition.index, newest.clone());
    } else {
        batch.insert(
            &partition.index,
            newest.clone(),
            rollups::encode_calls(first_minute, entries),
        );
    }
    batch.commit()?;
    Ok(group.keys.len())
}

#[cfg(test)]
mod tests {
    use remote_storage_core::Tenant;

    use crate::keys;

    #[test]
    fn a_call_record_key_ends_with_the_batch_after_its_block() {
        let key = keys::calls_key(&Tenant::new("t"), 7, 42);
        assert_eq!(
            key[..key.len() - 8],
            keys::calls_block_prefix(&Tenant::new("t"), 7)
        );
    }
}
