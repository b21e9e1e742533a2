//! The node's deadlines, kept as data: one enum, one heap.
//!
//! Entries are not removed when they stop applying; each handler checks
//! that its state still matches, and a timer that no longer applies is
//! ignored when it fires. The node drops such entries as they reach the
//! head of the heap (an answered probe's timeouts), so that the runtime
//! does not wake for them.

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
    /// A gossip round ahead of the grid for urgent news (`eager_gossip`).
    GossipEager,
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

    /// The timer of the earliest deadline.
    pub fn peek(&self) -> Option<Timer> {
        self.heap.peek().map(|Reverse((_, _, t))| *t)
    }

    /// Remove the earliest deadline.
    pub fn pop(&mut self) {
        self.heap.pop();
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

/// A periodic timer that is set only while its round has work, so an idle
/// node does not wake for nothing. Set again, it keeps its grid of ticks
/// (the last tick plus whole intervals): rounds happen exactly when a timer
/// that always ran would have made them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LazyTimer {
    /// Whether an entry for it is pending.
    pub(crate) armed: bool,
    /// The last tick (or the first one, while it is pending).
    pub(crate) tick: Instant,
}

impl LazyTimer {
    /// A timer whose first tick, already set, is at `first`.
    pub(crate) fn first_at(first: Instant) -> Self {
        LazyTimer {
            armed: true,
            tick: first,
        }
    }

    /// It fired at `now`: that is its last tick, and no entry is pending.
    pub(crate) fn fired(&mut self, now: Instant) {
        self.tick = now;
        self.armed = false;
    }

    /// Set `timer` at the first tick of the grid after `now`, unless an
    /// entry is already pending (just after it fired: `now + interval`).
    pub(crate) fn arm(
        &mut self,
        timers: &mut Timers,
        now: Instant,
        interval: core::time::Duration,
        timer: Timer,
    ) {
        if self.armed {
            return;
        }
        timers.set(self.next_tick(now, interval), timer);
        self.armed = true;
    }

    /// The first tick of the grid after `now`.
    fn next_tick(&self, now: Instant, interval: core::time::Duration) -> Instant {
        let interval = interval.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(self.tick).as_nanos();
        let ticks = u64::try_from(elapsed / interval + 1).unwrap_or(u64::MAX);
        self.tick
            + core::time::Duration::from_nanos(
                u64::try_from(interval)
                    .unwrap_or(u64::MAX)
                    .saturating_mul(ticks),
            )
    }
}
