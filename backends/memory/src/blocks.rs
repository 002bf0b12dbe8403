//! The attribute index: spans in blocks of up to 64, in write order, each block with a Bloom
//! filter over the term hashes of its spans (span, event, link, scope and resource
//! attributes), and every [`GROUP_BLOCKS`] consecutive blocks with one more filter over all
//! their terms.
//!
//! A search for attribute terms tests every group's filter (one cache line per group and
//! term), then the filters of the blocks of the groups that may hold all of them, then the
//! 128-bit filter each block keeps per span, side by side, and names only the spans that pass
//! all three; the search then checks each span's own term fingerprints and the span matcher.
//! Without the group filters a search read one line per block (156k cache misses at 10M
//! spans), and without the span filters it read every span of a candidate block from wherever
//! its trace lives (64 misses or more per block), so at 10M spans a rare term's search walked
//! the time index instead. Writing touches only the newest block and group, which stay in
//! cache: an inverted index with a list per term cost one cache miss per attribute and 8
//! bytes per attribute, this costs ~48 bytes per span (16 for the block filter, 8 for the
//! group's, 16 for the span's, 8 for the slot).
//!
//! Eviction does not touch blocks: a slot below the oldest live trace's is stale and skipped,
//! and a block whose newest slot is stale is dropped from the front (traces are evicted in
//! creation order, so such blocks are the oldest), and a group with it once all its blocks are.

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

/// Blocks per group filter.
const GROUP_BLOCKS: usize = 16;
/// A group filter has half the bits of its blocks' together: a group repeats many of its
/// terms (resource attributes, common values), and a false positive only costs reading the
/// group's block filters.
const GROUP_LINES: usize = LINES * GROUP_BLOCKS / 2;

/// A blocked Bloom filter of `N` cache lines: each term sets [`PROBES`] bits in one line.
#[derive(Debug)]
struct Filter<const N: usize> {
    lines: Box<[[u64; WORDS_PER_LINE]; N]>,
}

/// The filter line and bit positions of a hash among `lines` lines (a power of two): the low
/// bits pick the line, then four 9-bit fields the bits (bits 4 to 40 with 16 lines;
/// fingerprints use the top byte).
fn probes(hash: u64, lines: usize) -> (usize, impl Iterator<Item = (usize, u64)>) {
    let line_bits = lines.trailing_zeros();
    // Masked below `lines`.
    let line = usize::try_from(hash & (lines as u64 - 1)).unwrap_or(0);
    let bits = (0..PROBES).map(move |probe| {
        let bit = (hash >> (line_bits + 9 * probe)) & 511;
        (usize::try_from(bit / 64).unwrap_or(0), 1_u64 << (bit % 64))
    });
    (line, bits)
}

/// The hash a group filter uses: the term hash remixed, so that which group line and bits a
/// term sets does not follow from which block line and bits it sets.
fn group_hash(hash: u64) -> u64 {
    hash.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32)
}

impl<const N: usize> Filter<N> {
    fn new() -> Self {
        Self {
            lines: Box::new([[0; WORDS_PER_LINE]; N]),
        }
    }

    fn insert(&mut self, hash: u64) {
        let (line, bits) = probes(hash, N);
        if let Some(line) = self.lines.get_mut(line) {
            for (word, mask) in bits {
                if let Some(word) = line.get_mut(word) {
                    *word |= mask;
                }
            }
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        let (line, mut bits) = probes(hash, N);
        self.lines.get(line).is_some_and(|line| {
            bits.all(|(word, mask)| line.get(word).is_some_and(|word| word & mask == mask))
        })
    }
}

/// A span's own filter: two bits per term, from hash bits the block and group filters leave
/// alone (40 to 54); one term of a span with 15 passes by chance ~5 % of the time.
type SpanFilter = [u64; 2];

fn set_span_bits(filter: &mut SpanFilter, hash: u64) {
    for bit in [(hash >> 40) & 127, (hash >> 47) & 127] {
        if let Some(word) = filter.get_mut(usize::try_from(bit / 64).unwrap_or(0)) {
            *word |= 1 << (bit % 64);
        }
    }
}

/// The span filter bits every one of `hashes` sets.
fn span_mask(hashes: &[u64]) -> SpanFilter {
    let mut mask = [0; 2];
    for &hash in hashes {
        set_span_bits(&mut mask, hash);
    }
    mask
}

#[derive(Debug)]
struct Block {
    slots: Vec<SpanSlot>,
    /// Each slot's span filter, at the same position.
    span_filters: Vec<SpanFilter>,
    filter: Filter<LINES>,
    insertions: usize,
    newest: SpanSlot,
}

impl Block {
    fn new() -> Self {
        Self {
            slots: Vec::with_capacity(BLOCK_SPANS),
            span_filters: Vec::with_capacity(BLOCK_SPANS),
            filter: Filter::new(),
            insertions: 0,
            newest: SpanSlot::first_of(0),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct SpanBlocks {
    blocks: VecDeque<Block>,
    /// Group `g` filters blocks `g * GROUP_BLOCKS ..` in the numbering of every block ever
    /// added; the front one is group `dropped / GROUP_BLOCKS`.
    groups: VecDeque<Filter<GROUP_LINES>>,
    /// Blocks dropped from the front so far: the front block is number `dropped`.
    dropped: usize,
}

impl SpanBlocks {
    /// Adds a span with the (deduplicated) hashes of its terms.
    pub(crate) fn add(&mut self, slot: SpanSlot, hashes: &[u64]) {
        let full = self.blocks.back().is_none_or(|block| {
            block.slots.len() >= BLOCK_SPANS
                || (!block.slots.is_empty() && block.insertions + hashes.len() > MAX_INSERTIONS)
        });
        if full {
            if (self.dropped + self.blocks.len()).is_multiple_of(GROUP_BLOCKS) {
                self.groups.push_back(Filter::new());
            }
            self.blocks.push_back(Block::new());
        }
        let (Some(block), Some(group)) = (self.blocks.back_mut(), self.groups.back_mut()) else {
            return;
        };
        for &hash in hashes {
            block.filter.insert(hash);
            group.insert(group_hash(hash));
        }
        block.insertions += hashes.len();
        block.slots.push(slot);
        block.span_filters.push(span_mask(hashes));
        block.newest = block.newest.max(slot);
    }

    /// Drops the oldest blocks once every span in them was evicted, and the groups all of
    /// whose blocks are dropped.
    pub(crate) fn drop_evicted(&mut self, oldest_live: SpanSlot) {
        while self
            .blocks
            .front()
            .is_some_and(|block| block.newest < oldest_live)
        {
            self.blocks.pop_front();
            self.dropped += 1;
            if self.dropped.is_multiple_of(GROUP_BLOCKS) {
                self.groups.pop_front();
            }
        }
    }

    /// The slots of the spans whose group, block and span filters hold every one of
    /// `hashes` (stale slots included), newest block first.
    pub(crate) fn candidates<'s, 'h>(
        &'s self,
        hashes: &'h [u64],
    ) -> impl Iterator<Item = SpanSlot> + use<'s, 'h> {
        let first_group = self.dropped / GROUP_BLOCKS;
        let mask = span_mask(hashes);
        self.groups
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, group)| {
                hashes
                    .iter()
                    .all(|&hash| group.may_contain(group_hash(hash)))
            })
            .flat_map(move |(position, _)| {
                // The group's blocks, as positions in `blocks` (the front group may have
                // lost some).
                let first = ((first_group + position) * GROUP_BLOCKS).saturating_sub(self.dropped);
                let end = ((first_group + position + 1) * GROUP_BLOCKS - self.dropped)
                    .min(self.blocks.len());
                self.blocks.range(first.min(end)..end).rev()
            })
            .filter(|block| hashes.iter().all(|&hash| block.filter.may_contain(hash)))
            .flat_map(move |block| {
                block
                    .slots
                    .iter()
                    .zip(&block.span_filters)
                    .filter(move |(_, filter)| {
                        filter
                            .iter()
                            .zip(&mask)
                            .all(|(bits, wanted)| bits & wanted == *wanted)
                    })
                    .map(|(slot, _)| *slot)
            })
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
        let found: Vec<SpanSlot> = blocks.candidates(&wanted).collect();
        assert!(found.contains(&SpanSlot::new(4_321, 0)));
        assert!(
            found.len() <= 10 * BLOCK_SPANS,
            "{} candidates",
            found.len()
        );
        // Two terms of one span name it; two terms of different spans of one block pass the
        // block filter, and each span's own filter then rules the block's spans out (bar
        // chance).
        let same = [hash(4_321 * 100 + 3), hash(4_321 * 100 + 7)];
        assert!(
            blocks
                .candidates(&same)
                .any(|slot| slot == SpanSlot::new(4_321, 0))
        );
        let pair = [hash(4_321 * 100 + 3), hash(4_300 * 100 + 7)];
        assert!(blocks.candidates(&pair).count() <= 2);
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
    fn group_filters_lose_no_block_and_follow_eviction() {
        let mut blocks = SpanBlocks::default();
        // 70 blocks: four full groups and a partial fifth.
        for span in 0..70 * BLOCK_SPANS as u64 {
            let hashes: Vec<u64> = (0..3).map(|term| hash(span * 10 + term)).collect();
            blocks.add(SpanSlot::new(span, 0), &hashes);
        }
        assert_eq!(blocks.groups.len(), 5);
        // Evict into the middle of the second group.
        let oldest_live = 20 * BLOCK_SPANS as u64 + 5;
        blocks.drop_evicted(SpanSlot::first_of(oldest_live));
        assert_eq!((blocks.dropped, blocks.blocks.len()), (20, 50));
        assert_eq!(blocks.groups.len(), 4);
        let (mut queries, mut groups_passed) = (0, 0);
        for span in (oldest_live - 5..70 * BLOCK_SPANS as u64).step_by(7) {
            let wanted = [hash(span * 10 + 1)];
            let found: Vec<SpanSlot> = blocks.candidates(&wanted).collect();
            assert!(found.contains(&SpanSlot::new(span, 0)), "span {span}");
            queries += 1;
            groups_passed += blocks
                .groups
                .iter()
                .filter(|group| group.may_contain(group_hash(wanted[0])))
                .count();
        }
        // Every block is reachable, newest first, when nothing narrows.
        let all: Vec<SpanSlot> = blocks.candidates(&[]).collect();
        assert_eq!(all.len(), 50 * BLOCK_SPANS);
        assert!(all.windows(BLOCK_SPANS + 1).all(|w| w[0] > w[BLOCK_SPANS]));
        // A term's group filter passes its own group and rarely another of the four.
        assert!(
            groups_passed * 10 < queries * 11,
            "{groups_passed} groups passed for {queries} terms"
        );
        // Evicting everything keeps only the group the next block joins (block 70 is in
        // group 4).
        blocks.drop_evicted(SpanSlot::first_of(u64::MAX >> 30));
        assert!(blocks.blocks.is_empty());
        assert_eq!(blocks.groups.len(), 1);
        blocks.add(SpanSlot::new(1 << 30, 0), &[hash(7)]);
        assert_eq!(blocks.groups.len(), 1);
        let found: Vec<SpanSlot> = blocks.candidates(&[hash(7)]).collect();
        assert_eq!(found, [SpanSlot::new(1 << 30, 0)]);
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
