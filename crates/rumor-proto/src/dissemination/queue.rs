//! The transmit-limited broadcast queue.
//!
//! Each queued item is retransmitted (piggybacked on outgoing packets) until
//! it has gone out `limit` times, where the limit is
//! `retransmit_mult × ceil(log10(N + 1))`. Items with the fewest
//! transmissions go first, newest first among equals. Queueing an item under
//! a key that is already queued replaces the older one and restarts its
//! count, so the queue holds at most one item per key and never grows beyond
//! the number of keys (for membership: the number of members).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

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
    // Kept compact (a byte of transmissions, a 32-bit age): a node may queue
    // one item per member, and the simulator holds 10,000 such queues.
    entries: HashMap<K, (u8, u32)>,
    order: BTreeSet<(u8, Reverse<u32>, K)>,
    next: u32,
}

impl<K> Default for TransmitQueue<K> {
    fn default() -> Self {
        TransmitQueue {
            entries: HashMap::new(),
            order: BTreeSet::new(),
            next: 0,
        }
    }
}

impl<K: Copy + Ord + Hash> TransmitQueue<K> {
    /// Queue `key` with zero transmissions, replacing any older item for it.
    pub fn push(&mut self, key: K) {
        if self.next == u32::MAX {
            self.renumber();
        }
        self.next += 1;
        if let Some((tx, order)) = self.entries.insert(key, (0, self.next)) {
            self.order.remove(&(tx, Reverse(order), key));
        }
        self.order.insert((0, Reverse(self.next), key));
    }

    /// Give every item a fresh age, oldest first, when the counter runs out.
    fn renumber(&mut self) {
        let mut items: Vec<_> = self
            .order
            .iter()
            .map(|&(tx, Reverse(o), k)| (o, tx, k))
            .collect();
        items.sort_unstable_by_key(|&(o, _, _)| o);
        self.order.clear();
        for (i, (_, tx, k)) in items.into_iter().enumerate() {
            let o = i as u32 + 1;
            self.entries.insert(k, (tx, o));
            self.order.insert((tx, Reverse(o), k));
        }
        self.next = self.entries.len() as u32;
    }

    /// Drop `key` from the queue.
    pub fn remove(&mut self, key: K) {
        if let Some((tx, order)) = self.entries.remove(&key) {
            self.order.remove(&(tx, Reverse(order), key));
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

    /// Offer queued items to `offer`, fewest transmissions first, until it
    /// answers [`Offer::Full`] or the queue is exhausted. Items taken count a
    /// transmission and leave the queue once they reach `limit` (at most 255).
    pub fn fill(&mut self, limit: u32, mut offer: impl FnMut(K) -> Offer) {
        let mut taken = Vec::new();
        let mut stale = Vec::new();
        let mut skips = 0;
        for &(tx, Reverse(order), key) in &self.order {
            match offer(key) {
                Offer::Taken => {
                    taken.push((tx, order, key));
                    skips = 0;
                }
                Offer::Skipped => {
                    skips += 1;
                    if skips >= MAX_CONSECUTIVE_SKIPS {
                        break;
                    }
                }
                Offer::Stale => stale.push(key),
                Offer::Full => break,
            }
        }
        for key in stale {
            self.remove(key);
        }
        for (tx, order, key) in taken {
            self.order.remove(&(tx, Reverse(order), key));
            if u32::from(tx) + 1 >= limit.min(u32::from(u8::MAX)) {
                self.entries.remove(&key);
            } else {
                self.entries.insert(key, (tx + 1, order));
                self.order.insert((tx + 1, Reverse(order), key));
            }
        }
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
        assert_eq!(drain(&mut q, 3, 3), vec![3, 2, 1]);
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
        for _ in 0..3 {
            drain(&mut q, 3, 5);
        }
        assert!(q.is_empty());
    }

    #[test]
    fn renumbering_keeps_the_order() {
        let mut q = TransmitQueue::default();
        q.push(1);
        q.push(2);
        q.next = u32::MAX;
        q.push(3);
        assert_eq!(drain(&mut q, 9, 3), vec![3, 2, 1]);
    }

    #[test]
    fn stale_items_are_dropped_and_bounded_by_keys() {
        let mut q = TransmitQueue::default();
        for round in 0..100 {
            for k in 0..10u32 {
                q.push(k + round % 2);
            }
        }
        assert_eq!(q.len(), 11);
        q.fill(5, |k| {
            if k % 2 == 0 {
                Offer::Stale
            } else {
                Offer::Skipped
            }
        });
        assert!(q.len() < 11);
    }
}
