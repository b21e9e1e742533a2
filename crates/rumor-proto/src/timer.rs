//! The node's deadlines, kept as data: one enum, one heap.
//!
//! Entries are never removed early; a timer that no longer applies is simply
//! ignored when it fires (each handler checks that its state still matches).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::membership::table::MemberId;
use crate::time::Instant;

/// Every kind of deadline the core sets.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Start the next probe.
    Probe,
    /// The direct ack for probe `seq` is late: probe indirectly.
    ProbeTimeout(u32),
    /// Probe `seq` is still unanswered after the indirect probes had time
    /// to answer: try the stream channel.
    StreamProbe(u32),
    /// Probe `seq` has run its full period: suspect the target if unanswered.
    ProbeDeadline(u32),
    /// An indirect probe relayed for someone else (`seq` local) is late: nack.
    RelayTimeout(u32),
    /// The suspicion of a member may have expired.
    Suspicion(MemberId),
    /// Next gossip round.
    Gossip,
    /// Next periodic push-pull exchange.
    PushPull,
    /// The one push-pull a node makes shortly after joining, to learn of
    /// the members that joined after its seed answered.
    JoinSync,
    /// A join no seed has answered yet: send it again.
    JoinRetry,
    /// Next reaping pass.
    Reap,
    /// Next reconnect attempt.
    Reconnect,
    /// Next round of user-event dissemination.
    Rumor,
    /// Push the rumors new to this node (`eager_push`).
    RumorEager,
    /// Announce this node's store summary if it changed; collect tombstones.
    StateSummary,
    /// Next anti-entropy exchange of the key-value store.
    AntiEntropy,
}

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    next: u64,
}

impl Timers {
    /// Set `timer` to fire at `at` (in insertion order among equal deadlines).
    pub fn set(&mut self, at: Instant, timer: Timer) {
        self.next += 1;
        self.heap.push(Reverse((at, self.next, timer)));
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Remove and return a timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse((_, _, t))| t),
            _ => None,
        }
    }

    /// Number of pending entries (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no deadline is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
