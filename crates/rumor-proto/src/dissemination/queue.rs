//! The transmit-limited broadcast queue.
//!
//! Each queued item is retransmitted (piggybacked on outgoing packets) until
//! it has gone out `limit` times, where the limit is
//! `retransmit_mult × ceil(log10(N + 1))`. Items with the fewest
//! transmissions go first; among equals, the one queued or sent most
//! recently goes first. Queueing an item under a key that is already queued
//! replaces the older one and restarts its count, so the queue holds at most
//! one item per key and never grows beyond the number of keys (for
//! membership: the number of members).
//!
//! Items sit in one stack per transmission count. A superseded item is left
//! where it is and skipped when reached; the stacks are compacted once such
//! stale items outnumber the live ones, and once a burst has gone out and
//! left them far more room than items, so memory stays proportional to the
//! number of keys queued now, not at the peak.

use std::hash::Hash;

use crate::fast_map::FastMap;

/// What the caller did with an item offered by [`TransmitQueue::fill`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Offer {
    /// It went into the packet: count one transmission.
    Taken,
    /// It did not fit: keep it for the next packet.
    Skipped,
    /// It no longer applies: drop it from the queue.
    Stale,
    /// The packet is full: stop offering.
    Full,
}

/// Stop looking for a smaller item after this many in a row did not fit.
const MAX_CONSECUTIVE_SKIPS: usize = 16;

/// A queue of keys to retransmit a bounded number of times.
#[derive(Debug)]
pub struct TransmitQueue<K> {
    /// Current item of each key: (transmissions so far, generation).
    entries: FastMap<K, (u8, u32)>,
    /// `stacks[t]`: items sent `t` times, most recent last; may hold stale items.
    stacks: Vec<Vec<(u32, K)>>,
    stale: usize,
    next: u32,
    skipped: Vec<(u32, K)>,
}

impl<K> Default for TransmitQueue<K> {
    fn default() -> Self {
        TransmitQueue {
            entries: FastMap::default(),
            stacks: Vec::new(),
            stale: 0,
            next: 0,
            skipped: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> TransmitQueue<K> {
    /// Queue `key` with zero transmissions, replacing any older item for it.
    pub fn push(&mut self, key: K) {
        if self.next == u32::MAX {
            // Generations must not repeat while a stale item could match.
            self.compact();
            self.next = 0;
        }
        self.next += 1;
        if self.entries.insert(key, (0, self.next)).is_some() {
            self.stale += 1;
        }
        let generation = self.next;
        self.stack(0).push((generation, key));
        self.maybe_compact();
    }

    /// Drop `key` from the queue.
    pub fn remove(&mut self, key: K) {
        if self.entries.remove(&key).is_some() {
            self.stale += 1;
            self.maybe_compact();
        }
    }

    /// Whether `key` is queued.
    pub fn contains(&self, key: K) -> bool {
        self.entries.contains_key(&key)
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of times `key` has been sent since it was queued.
    pub fn transmits(&self, key: K) -> Option<u32> {
        self.entries.get(&key).map(|&(tx, _)| u32::from(tx))
    }

    fn stack(&mut self, t: usize) -> &mut Vec<(u32, K)> {
        if self.stacks.len() <= t {
            self.stacks.resize_with(t + 1, Vec::new);
        }
        &mut self.stacks[t]
    }

    /// Offer queued items to `offer`, fewest transmissions first, until it
    /// answers [`Offer::Full`] or the queue is exhausted. Items taken count a
    /// transmission and leave the queue once they reach `limit` (1 to 255).
    pub fn fill(&mut self, limit: u32, mut offer: impl FnMut(K) -> Offer) {
        let limit = limit.clamp(1, u32::from(u8::MAX)) as u8;
        let mut moved = Vec::new();
        let mut skips = 0;
        let mut skipped = core::mem::take(&mut self.skipped);
        'stacks: for t in 0..self.stacks.len() {
            let mut stop = false;
            while let Some((generation, key)) = self.stacks[t].pop() {
                if self.entries.get(&key) != Some(&(t as u8, generation)) {
                    self.stale = self.stale.saturating_sub(1);
                    continue;
                }
                match offer(key) {
                    Offer::Taken => {
                        moved.push((t as u8 + 1, generation, key));
                        skips = 0;
                    }
                    Offer::Skipped => {
                        skipped.push((generation, key));
                        skips += 1;
                        if skips >= MAX_CONSECUTIVE_SKIPS {
                            stop = true;
                            break;
                        }
                    }
                    Offer::Stale => {
                        self.entries.remove(&key);
                    }
                    Offer::Full => {
                        self.stacks[t].push((generation, key));
                        stop = true;
                        break;
                    }
                }
            }
            // Put the skipped items back in their order.
            while let Some(item) = skipped.pop() {
                self.stacks[t].push(item);
            }
            if stop {
                break 'stacks;
            }
        }
        self.skipped = skipped;
        for (t, generation, key) in moved {
            if t >= limit {
                self.entries.remove(&key);
            } else {
                self.entries.insert(key, (t, generation));
                self.stack(t as usize).push((generation, key));
            }
        }
        self.shrink_after_burst();
    }

    fn maybe_compact(&mut self) {
        if self.stale > self.entries.len() + 64 {
            self.compact();
        }
    }

    /// Items that reach their limit leave without going stale, so a burst
    /// (every member of a cluster joining at once) that has been sent out
    /// would otherwise leave its peak capacity behind, in the map and in
    /// every stack it passed through: on each of thousands of nodes.
    fn shrink_after_burst(&mut self) {
        let live = self.entries.len();
        let held: usize = self.stacks.iter().map(Vec::capacity).sum();
        if self.entries.capacity() > 4 * live + 64 || held > 4 * live + 16 * self.stacks.len() {
            self.compact();
        }
    }

    /// Drop stale items and give memory back after a burst.
    fn compact(&mut self) {
        let entries = &self.entries;
        for (t, stack) in self.stacks.iter_mut().enumerate() {
            stack.retain(|(g, k)| entries.get(k) == Some(&(t as u8, *g)));
            if stack.capacity() > 4 * stack.len() + 16 {
                stack.shrink_to_fit();
            }
        }
        if self.entries.capacity() > 4 * self.entries.len() + 64 {
            self.entries.shrink_to_fit();
        }
        if self.entries.is_empty() {
            self.stacks = Vec::new();
        }
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut TransmitQueue<u32>, limit: u32, per_packet: usize) -> Vec<u32> {
        let mut out = Vec::new();
        q.fill(limit, |k| {
            if out.len() == per_packet {
                Offer::Full
            } else {
                out.push(k);
                Offer::Taken
            }
        });
        out
    }

    #[test]
    fn fewest_transmissions_first_then_newest() {
        let mut q = TransmitQueue::default();
        q.push(1);
        q.push(2);
        assert_eq!(drain(&mut q, 3, 1), vec![2]);
        assert_eq!(drain(&mut q, 3, 1), vec![1]);
        q.push(3);
        assert_eq!(drain(&mut q, 3, 3), vec![3, 1, 2]);
    }

    #[test]
    fn limit_removes_and_supersession_resets() {
        let mut q = TransmitQueue::default();
        q.push(7);
        for _ in 0..2 {
            assert_eq!(drain(&mut q, 3, 5), vec![7]);
        }
        assert_eq!(q.transmits(7), Some(2));
        q.push(7);
        assert_eq!(q.transmits(7), Some(0));
        assert_eq!(q.len(), 1);
        assert_eq!(
            drain(&mut q, 3, 5),
            vec![7],
            "the superseded copy is never offered"
        );
        for _ in 0..2 {
            drain(&mut q, 3, 5);
        }
        assert!(q.is_empty());
        assert!(drain(&mut q, 3, 5).is_empty());
    }

    #[test]
    fn skipped_items_keep_their_place() {
        let mut q = TransmitQueue::default();
        for k in 1..=4 {
            q.push(k);
        }
        let mut seen = Vec::new();
        q.fill(9, |k| {
            seen.push(k);
            if k % 2 == 0 {
                Offer::Skipped
            } else {
                Offer::Taken
            }
        });
        assert_eq!(seen, vec![4, 3, 2, 1]);
        assert_eq!(
            drain(&mut q, 9, 2),
            vec![4, 2],
            "untaken items stay first, in order"
        );
    }

    #[test]
    fn generation_wrap_keeps_items() {
        let mut q = TransmitQueue::default();
        q.push(1);
        q.push(2);
        q.next = u32::MAX;
        q.push(3);
        assert_eq!(drain(&mut q, 9, 3), vec![3, 2, 1]);
    }

    #[test]
    fn memory_stays_proportional_to_keys() {
        let mut q = TransmitQueue::default();
        for round in 0..1000 {
            for k in 0..10u32 {
                q.push(k + round % 2);
            }
        }
        assert_eq!(q.len(), 11);
        let held: usize = q.stacks.iter().map(Vec::len).sum();
        assert!(held <= 2 * 11 + 64 + 1, "{held} items held for 11 keys");
        q.fill(5, |k| {
            if k % 2 == 0 {
                Offer::Stale
            } else {
                Offer::Skipped
            }
        });
        assert!(q.len() < 11);
    }

    #[test]
    fn a_burst_sent_out_gives_its_memory_back() {
        let mut q = TransmitQueue::default();
        for k in 0..10_000u32 {
            q.push(k);
        }
        // Every item goes out its 20 times, 100 to a packet.
        while !q.is_empty() {
            drain(&mut q, 20, 100);
        }
        let held: usize = q.stacks.iter().map(Vec::capacity).sum();
        assert_eq!(held, 0, "stacks keep room for {held} items");
        assert!(q.entries.capacity() <= 64, "{}", q.entries.capacity());
        // Half-drained, it holds room in proportion to what is left.
        for k in 0..10_000u32 {
            q.push(k);
        }
        for _ in 0..150 {
            drain(&mut q, 2, 100);
        }
        let live = q.len();
        assert!(live > 0 && live < 10_000, "{live}");
        let held: usize = q.stacks.iter().map(Vec::capacity).sum();
        assert!(held <= 4 * live + 16 * q.stacks.len(), "{held} for {live}");
        assert!(q.entries.capacity() <= 4 * live + 64);
    }
}
