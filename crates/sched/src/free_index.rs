//! `FreeIndex`: a pool's up nodes that have free accelerators, by free count, for best-fit
//! placement of a gang that fits on one node.
//!
//! It answers what an ordered set of (free, node) answered with `range((gang, 0)..).next()`: the
//! node with the fewest free accelerators that still holds `gang`, the lowest node id among
//! equals. A pool has few free counts (0 to accelerators per node), so instead of one B-tree of
//! all nodes (two tree updates each time a node's free count changes, a million times a replay)
//! it keeps one bitset of nodes per free count, with a summary bitset of its non-zero words:
//! an update flips two bits, a query looks at a few words per free count.

/// Nodes by free count: a two-level bitset per count over the pool's nodes.
#[derive(Clone, Debug)]
pub(crate) struct FreeIndex {
    first_node: u32,
    /// Words of node bits per free count.
    words: usize,
    /// Words of summary bits per free count (bit `w` set: word `w` is not zero).
    summary_words: usize,
    /// `bits[free * words + node_offset / 64]`, bit `node_offset % 64`.
    bits: Vec<u64>,
    /// `summary[free * summary_words + w / 64]`, bit `w % 64`.
    summary: Vec<u64>,
}

impl FreeIndex {
    /// An empty index over nodes `first_node..first_node + node_count` holding up to `max_free`
    /// free accelerators each.
    pub(crate) fn new(first_node: u32, node_count: u32, max_free: u32) -> Self {
        let words = (node_count as usize).div_ceil(64).max(1);
        let summary_words = words.div_ceil(64);
        let counts = max_free as usize + 1;
        FreeIndex {
            first_node,
            words,
            summary_words,
            bits: vec![0; counts * words],
            summary: vec![0; counts * summary_words],
        }
    }

    fn word_of(&self, free: u32, node: u32) -> (usize, u64) {
        let offset = (node - self.first_node) as usize;
        (free as usize * self.words + offset / 64, 1 << (offset % 64))
    }

    /// Files `node` under `free` free accelerators.
    pub(crate) fn insert(&mut self, free: u32, node: u32) {
        let (word, bit) = self.word_of(free, node);
        self.bits[word] |= bit;
        let w = word - free as usize * self.words;
        self.summary[free as usize * self.summary_words + w / 64] |= 1 << (w % 64);
    }

    /// Takes `node` out from under `free` free accelerators.
    pub(crate) fn remove(&mut self, free: u32, node: u32) {
        let (word, bit) = self.word_of(free, node);
        self.bits[word] &= !bit;
        if self.bits[word] == 0 {
            let w = word - free as usize * self.words;
            self.summary[free as usize * self.summary_words + w / 64] &= !(1 << (w % 64));
        }
    }

    /// The lowest node filed under exactly `free`, if any.
    fn first_with(&self, free: u32) -> Option<u32> {
        let summary = &self.summary
            [free as usize * self.summary_words..(free as usize + 1) * self.summary_words];
        let (s, &word_bits) = summary.iter().enumerate().find(|(_, w)| **w != 0)?;
        let w = s * 64 + word_bits.trailing_zeros() as usize;
        let bits = self.bits[free as usize * self.words + w];
        Some(self.first_node + (w * 64) as u32 + bits.trailing_zeros())
    }

    /// The node with the fewest free accelerators, at least `at_least`, lowest id among equals.
    pub(crate) fn first_at_least(&self, at_least: u32) -> Option<u32> {
        let counts = (self.bits.len() / self.words) as u32;
        (at_least..counts).find_map(|free| self.first_with(free))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The same answers as the ordered set of (free, node) it replaces, after any updates.
        #[test]
        fn answers_as_the_ordered_set_does(
            first_node in 0u32..50,
            node_count in 1u32..300,
            updates in proptest::collection::vec((0u32..300, 0u32..9), 0..400),
        ) {
            let mut index = FreeIndex::new(first_node, node_count, 8);
            let mut set: BTreeSet<(u32, u32)> = BTreeSet::new();
            let mut free_of = vec![0u32; node_count as usize];
            for (node, free) in updates {
                let node = node % node_count;
                let old = free_of[node as usize];
                if old > 0 {
                    index.remove(old, first_node + node);
                    set.remove(&(old, first_node + node));
                }
                if free > 0 {
                    index.insert(free, first_node + node);
                    set.insert((free, first_node + node));
                }
                free_of[node as usize] = free;
                for gang in 1..=8 {
                    let expected = set.range((gang, 0)..).next().map(|&(_, n)| n);
                    prop_assert_eq!(index.first_at_least(gang), expected);
                }
            }
        }
    }
}
