//! The virtual-time event queue: a min-heap ordered by (time, insertion
//! sequence), so that events due at the same instant come out in the order
//! they were scheduled and every run is reproducible.
//!
//! Some items are barriers: items that act on more than one node or on the
//! simulation itself (a node starting, a fault). The queue knows when the
//! earliest barrier is due, so the engine can run the nodes side by side up
//! to it (see `sim::window`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use rumor_proto::Instant;

/// One scheduled item.
#[derive(Debug)]
struct Entry<T> {
    at: Instant,
    seq: u64,
    barrier: bool,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so that the max-heap yields the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Items scheduled at virtual instants, popped earliest first and, among
/// items due at the same instant, first scheduled first.
#[derive(Debug)]
pub struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
    /// Barriers queued, by due time.
    barriers: BTreeMap<Instant, u32>,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
            barriers: BTreeMap::new(),
        }
    }
}

impl<T> EventQueue<T> {
    /// Schedule `item` at `at`.
    pub fn push(&mut self, at: Instant, item: T) {
        self.push_entry(at, item, false);
    }

    /// Schedule `item` at `at` as a barrier.
    pub fn push_barrier(&mut self, at: Instant, item: T) {
        *self.barriers.entry(at).or_default() += 1;
        self.push_entry(at, item, true);
    }

    fn push_entry(&mut self, at: Instant, item: T, barrier: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            at,
            seq,
            barrier,
            item,
        });
    }

    /// When the earliest item is due.
    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// When the earliest item is due, and its sequence number: items come
    /// out in the order of these pairs.
    pub fn peek_key(&self) -> Option<(Instant, u64)> {
        self.heap.peek().map(|e| (e.at, e.seq))
    }

    /// When the earliest barrier is due.
    pub fn first_barrier(&self) -> Option<Instant> {
        self.barriers.keys().next().copied()
    }

    /// Remove and return the earliest item with its time.
    pub fn pop(&mut self) -> Option<(Instant, T)> {
        self.pop_keyed().map(|(at, _, item)| (at, item))
    }

    /// Remove and return the earliest item with its time and sequence
    /// number.
    pub fn pop_keyed(&mut self) -> Option<(Instant, u64, T)> {
        let e = self.heap.pop()?;
        if e.barrier
            && let Some(count) = self.barriers.get_mut(&e.at)
        {
            *count -= 1;
            if *count == 0 {
                self.barriers.remove(&e.at);
            }
        }
        Some((e.at, e.seq, e.item))
    }

    /// Number of scheduled items.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(Instant::from_millis(5), "late");
        q.push(Instant::from_millis(1), "first");
        q.push(Instant::from_millis(1), "second");
        q.push(Instant::from_millis(3), "middle");
        assert_eq!(q.len(), 4);
        assert_eq!(q.peek_time(), Some(Instant::from_millis(1)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, s)| s)).collect();
        assert_eq!(order, ["first", "second", "middle", "late"]);
        assert!(q.is_empty());
    }

    #[test]
    fn the_first_barrier_is_known_until_it_is_popped() {
        let mut q = EventQueue::default();
        q.push(Instant::from_millis(1), "a");
        q.push_barrier(Instant::from_millis(4), "b1");
        q.push_barrier(Instant::from_millis(4), "b2");
        q.push_barrier(Instant::from_millis(9), "c");
        assert_eq!(q.first_barrier(), Some(Instant::from_millis(4)));
        assert_eq!(q.pop_keyed(), Some((Instant::from_millis(1), 0, "a")));
        assert_eq!(q.pop_keyed(), Some((Instant::from_millis(4), 1, "b1")));
        assert_eq!(q.first_barrier(), Some(Instant::from_millis(4)));
        assert_eq!(q.peek_key(), Some((Instant::from_millis(4), 2)));
        q.pop();
        assert_eq!(q.first_barrier(), Some(Instant::from_millis(9)));
        q.pop();
        assert_eq!(q.first_barrier(), None);
    }
}
