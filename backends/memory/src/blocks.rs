//! The attribute index: spans in blocks of up to 64, in write order, each block with a Bloom
//! filter over the term hashes of its spans (span, event, link, scope and resource
//! attributes).
//!
//! A search for attribute terms tests every block's filter (one cache line per block and term)
//! and looks only at the spans of blocks that may hold all of them, first through the spans'
//! own term fingerprints, then through the span matcher. Writing touches only the newest
//! block, which stays in cache: an inverted index with a list per term cost one cache miss per
//! attribute and 8 bytes per attribute, this costs ~24 bytes per span.
//!
//! Eviction does not touch blocks: a slot below the oldest live trace's is stale and skipped,
//! and a block whose newest slot is stale is dropped from the front (traces are evicted in
//! creation order, so such blocks are the oldest).

use std::collections::VecDeque;

use crate::records::SpanSlot;

/// Most spans per block.
pub(crate) const BLOCK_SPANS: usize = 64;
/// Filter size: 16 lines of 512 bits (1 KiB).
const LINES: usize = 16;
const WORDS_PER_LINE: usize = 8;
/// Most term insertions per block (8 filter bits each, a few percent false positives); a block
/// of spans with many attributes closes before it has 64 spans.
const MAX_INSERTIONS: usize = LINES * WORDS_PER_LINE * 64 / 8;
/// Bits set per term, all in the line the hash selects.
const PROBES: u32 = 4;

#[derive(Debug)]
struct Block {
    slots: Vec<SpanSlot>,
    filter: Box<[[u64; WORDS_PER_LINE]; LINES]>,
    insertions: usize,
    newest: SpanSlot,
}

/// The filter line and bit positions of a hash: the low 4 bits pick the line, then four 9-bit
/// fields the bits (bits 4 to 40; fingerprints use the top byte).
fn probes(hash: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
    // Both values are masked far below `usize::MAX`.
    let line = usize::try_from(hash % LINES as u64).unwrap_or(0);
    let bits = (0..PROBES).map(move |probe| {
        let bit = (hash >> (4 + 9 * probe)) & 511;
        (usize::try_from(bit / 64).unwrap_or(0), 1_u64 << (bit % 64))
    });
    (line, bits)
}

impl Block {
    fn new() -> Self {
        Self {
            slots: Vec::with_capacity(BLOCK_SPANS),
            filter: Box::new([[0; WORDS_PER_LINE]; LINES]),
            insertions: 0,
            newest: SpanSlot::first_of(0),
        }
    }

    fn insert(&mut self, hash: u64) {
        let (line, bits) = probes(hash);
        if let Some(line) = self.filter.get_mut(line) {
            for (word, mask) in bits {
                if let Some(word) = line.get_mut(word) {
                    *word |= mask;
                }
            }
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        let (line, mut bits) = probes(hash);
        self.filter.get(line).is_some_and(|line| {
            bits.all(|(word, mask)| line.get(word).is_some_and(|word| word & mask == mask))
        })
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct SpanBlocks {
    blocks: VecDeque<Block>,
}

impl SpanBlocks {
    /// Adds a span with the (deduplicated) hashes of its terms.
    pub(crate) fn add(&mut self, slot: SpanSlot, hashes: &[u64]) {
        let full = self.blocks.back().is_none_or(|block| {
            block.slots.len() >= BLOCK_SPANS
                || (!block.slots.is_empty() && block.insertions + hashes.len() > MAX_INSERTIONS)
        });
        if full {
            self.blocks.push_back(Block::new());
        }
        let Some(block) = self.blocks.back_mut() else {
            return;
        };
        for &hash in hashes {
            block.insert(hash);
        }
        block.insertions += hashes.len();
        block.slots.push(slot);
        block.newest = block.newest.max(slot);
    }

    /// Drops the oldest blocks once every span in them was evicted.
    pub(crate) fn drop_evicted(&mut self, oldest_live: SpanSlot) {
        while self
            .blocks
            .front()
            .is_some_and(|block| block.newest < oldest_live)
        {
            self.blocks.pop_front();
        }
    }

    /// The slots of the blocks whose filter holds every one of `hashes` (stale slots
    /// included), newest block first.
    pub(crate) fn candidates<'s, 'h>(
        &'s self,
        hashes: &'h [u64],
    ) -> impl Iterator<Item = &'s [SpanSlot]> + use<'s, 'h> {
        self.blocks
            .iter()
            .rev()
            .filter(|block| hashes.iter().all(|&hash| block.may_contain(hash)))
            .map(|block| block.slots.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-mixed stand-in for term hashes.
    fn hash(n: u64) -> u64 {
        let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    #[test]
    fn a_span_is_found_through_its_block_and_rarely_elsewhere() {
        let mut blocks = SpanBlocks::default();
        for span in 0..6_400_u64 {
            let hashes: Vec<u64> = (0..11).map(|term| hash(span * 100 + term)).collect();
            blocks.add(SpanSlot::new(span, 0), &hashes);
        }
        assert_eq!(blocks.blocks.len(), 100);
        let wanted = [hash(4_321 * 100 + 3)];
        let found: Vec<SpanSlot> = blocks.candidates(&wanted).flatten().copied().collect();
        assert!(found.contains(&SpanSlot::new(4_321, 0)));
        assert!(
            found.len() <= 10 * BLOCK_SPANS,
            "{} candidates",
            found.len()
        );
        // Two terms of different spans of one block: the block is a candidate for both.
        let pair = [hash(4_321 * 100 + 3), hash(4_300 * 100 + 7)];
        assert!(blocks.candidates(&pair).count() >= 1);
    }

    #[test]
    fn blocks_close_early_when_their_filter_is_full() {
        let mut blocks = SpanBlocks::default();
        let many: Vec<u64> = (0..600).map(hash).collect();
        for span in 0..4 {
            blocks.add(SpanSlot::new(span, 0), &many);
        }
        assert_eq!(blocks.blocks.len(), 4);
    }

    #[test]
    fn evicted_blocks_are_dropped_from_the_front() {
        let mut blocks = SpanBlocks::default();
        for span in 0..130 {
            blocks.add(SpanSlot::new(span, 0), &[hash(span)]);
        }
        blocks.drop_evicted(SpanSlot::first_of(64));
        assert_eq!(blocks.blocks.len(), 2);
        blocks.drop_evicted(SpanSlot::first_of(200));
        assert!(blocks.blocks.is_empty());
    }
}
