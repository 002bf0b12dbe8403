//! Write batch IDs, reserved in blocks in the meta keyspace so no ID repeats across restarts.

use fjall::{Database, Keyspace};
use remote_storage_core::UnixNanos;

use super::persist_meta;
use crate::error::LsmError;
use crate::keys;

/// Write batch IDs: unique for the life of the directory. Postings name traces by batch ID
/// and position, so a repeated ID would mix two batches' trace tables.
pub(super) struct BatchIds {
    next: u64,
    /// IDs below this are reserved (persisted) for this process.
    reserved_until: u64,
}

/// Batch IDs reserved per persisted reservation.
const BATCH_ID_RESERVATION: u64 = 1 << 32;

impl BatchIds {
    /// Starts at the clock or past every ID an earlier process may have used.
    pub(super) fn reserve(db: &Database, meta: &Keyspace) -> Result<Self, LsmError> {
        let stored = meta
            .get(keys::batch_reservation_key())?
            .and_then(|value| value.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let mut ids = Self {
            next: UnixNanos::now().0.max(stored),
            reserved_until: 0,
        };
        ids.extend(db, meta)?;
        Ok(ids)
    }

    fn extend(&mut self, db: &Database, meta: &Keyspace) -> Result<(), LsmError> {
        let until = self.next.saturating_add(BATCH_ID_RESERVATION);
        meta.insert(keys::batch_reservation_key(), until.to_be_bytes())?;
        persist_meta(db)?;
        self.reserved_until = until;
        Ok(())
    }

    pub(super) fn next(&mut self, db: &Database, meta: &Keyspace) -> Result<u64, LsmError> {
        if self.next >= self.reserved_until {
            self.extend(db, meta)?;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}
