//! Request body buffers kept between writes.

use parking_lot::Mutex;

/// A few `_bulk` body buffers (the encoded documents, and their gzip) kept between writes: a
/// body of a thousand spans is over a megabyte, and growing fresh ones for every write spent
/// about a fifth of the server's ingest CPU in the allocator and in page faults.
#[derive(Debug, Default)]
pub(crate) struct BodyPool(Mutex<Vec<Vec<u8>>>);

impl BodyPool {
    /// Buffers kept: two (documents and gzip) per write in flight, for a few writes.
    const KEPT: usize = 8;
    /// Buffers grown past this (by an unusually large write) are let go, not kept.
    const MAX_KEPT_BYTES: usize = 16 << 20;

    /// An empty buffer, with the capacity of an earlier body when one is kept.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    /// Keeps `body`'s allocation for a later write.
    pub(crate) fn give_back(&self, mut body: Vec<u8>) {
        if body.capacity() > Self::MAX_KEPT_BYTES || body.capacity() == 0 {
            return;
        }
        body.clear();
        let mut kept = self.0.lock();
        if kept.len() < Self::KEPT {
            kept.push(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_capacity_and_huge_ones_are_dropped() {
        let pool = BodyPool::default();
        assert_eq!(pool.take().capacity(), 0);
        pool.give_back(Vec::with_capacity(1 << 20));
        pool.give_back(vec![1; 100]);
        let reused = pool.take();
        assert!(reused.is_empty());
        assert!(reused.capacity() >= 100);
        assert!(pool.take().capacity() >= 1 << 20);
        pool.give_back(Vec::with_capacity(BodyPool::MAX_KEPT_BYTES + 1));
        assert_eq!(pool.take().capacity(), 0, "a huge buffer is not kept");
    }
}
