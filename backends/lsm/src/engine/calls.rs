//! The dependency rollups' side of a write: the call sites of traces the cache forgot, read
//! back from their fragments, and a batch's call records and trace markers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use remote_storage_core::{Tenant, TraceId};

use super::PartitionMap;
use crate::error::LsmError;
use crate::keys;
use crate::records;
use crate::rollups::sites::{Site, TraceSites};
use crate::rollups::{self, CallDeltas};

/// Every stored span of a trace, as call sites, from the fragments of the partitions whose
/// marker says they hold some (one bloom-filtered point read per partition for a new trace).
pub(super) fn stored_sites(
    partitions: &PartitionMap,
    tenant: &Tenant,
    trace_id: &TraceId,
) -> Result<TraceSites, LsmError> {
    let marker = keys::trace_marker_key(tenant, trace_id);
    let mut prefix = None;
    let mut sites = TraceSites::default();
    let mut services: HashMap<String, Arc<str>> = HashMap::new();
    for (id, partition) in partitions {
        if !partition.index.contains_key(&marker)? {
            continue;
        }
        let prefix = prefix.get_or_insert_with(|| keys::fragment_prefix(tenant, trace_id));
        for guard in partition.index.prefix(&*prefix) {
            let (_, value) = guard.into_inner()?;
            for entry in records::decode_fragment(&value)? {
                let service = match services.get(&entry.service) {
                    Some(service) => Arc::clone(service),
                    None => {
                        let service: Arc<str> = Arc::from(entry.service.as_str());
                        services.insert(entry.service, Arc::clone(&service));
                        service
                    }
                };
                sites.insert_stored(
                    (*id, entry.disc),
                    Site {
                        span_id: entry.span_id,
                        parent: entry.parent,
                        service,
                        start: entry.start,
                    },
                );
            }
        }
    }
    Ok(sites)
}

/// Adds one call record per (partition, block) and one per (partition, minute) the batch
/// changes calls in.
pub(super) fn put_call_records(
    batch: &mut fjall::OwnedWriteBatch,
    partitions: &PartitionMap,
    tenant: &Tenant,
    batch_id: u64,
    deltas: CallDeltas,
) -> Result<(), LsmError> {
    let records = deltas.records();
    // A call's record partition holds one of its spans, so it is in the map.
    let partition_of = |id| {
        partitions
            .get(id)
            .ok_or_else(|| LsmError::corrupt("a call's partition vanished during a write"))
    };
    for ((id, block), entries) in &records.blocks {
        let partition = partition_of(id)?;
        let value = rollups::encode_calls(
            u64::from(*block) * rollups::MINUTES_PER_RECORD,
            entries
                .iter()
                .map(|(minute, parent, child, delta)| (*minute, &**parent, &**child, *delta)),
        );
        batch.insert(
            &partition.index,
            keys::calls_key(tenant, *block, batch_id),
            value,
        );
        // Set before the commit: a fold that misses these records runs again.
        partition.unfolded_calls.store(true, Ordering::Release);
    }
    for ((id, minute), entries) in &records.minutes {
        let value = rollups::encode_calls(
            u64::from(*minute) * rollups::MINUTE_NANOS,
            entries
                .iter()
                .map(|(start, parent, child, delta)| (*start, &**parent, &**child, *delta)),
        );
        batch.insert(
            &partition_of(id)?.index,
            keys::call_starts_key(tenant, *minute, batch_id),
            value,
        );
    }
    Ok(())
}
