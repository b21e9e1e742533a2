//! Running the nodes side by side, with the same outcome as one by one.
//!
//! A packet sent at `t` arrives at `t + latency` at the earliest, so between
//! `t` and `t + latency` no node can hear from another: what each node does
//! in that window depends only on its own state and on what was already
//! queued for it. The engine takes every event of such a window (up to the
//! next barrier: a start, a fault, a freeze) off the queue and runs each
//! node through its own events, the nodes split over the cores; a node's
//! wakeups that fall inside the window are run too. What reaches beyond the
//! node (routing its packets, which draws from the network's random stream;
//! the observer; the event hook; queueing its wakeups) is kept, one
//! [`Record`] per event, and then replayed alone in exactly the order the
//! one-by-one engine would have used. A seed therefore gives the same run,
//! byte for byte, whatever the number of cores.

use std::collections::BinaryHeap;
use std::iter::Peekable;
use std::net::SocketAddr;
use std::vec;

use core::cmp::Reverse;
use rumor_proto::{Channel, Instant};

use super::{Action, Inbound, Outputs, Sim, Slot};
use crate::NodeId;
use crate::network::Network;

/// Fewer events than this in a window are run one by one: splitting them
/// would cost more than it saves.
const MIN_PARALLEL_EVENTS: usize = 4;
/// A window is split into 2^SPLIT_EXTRA pieces per core, so that a core
/// that is done early takes work from one with a heavy event.
const SPLIT_EXTRA: u32 = 5;

/// An event of the window, handed to its node's slot.
#[derive(Debug)]
pub(super) enum WindowEvent {
    Wake,
    Deliver {
        from: NodeId,
        from_addr: SocketAddr,
        channel: Channel,
        bytes: Vec<u8>,
    },
}

/// What one event did, as far as the rest of the simulation must know.
#[derive(Debug)]
pub(super) enum Record {
    /// Nothing (a superseded wakeup, or one of a stopped or frozen node).
    Nothing,
    /// A packet for a node not running.
    Unreachable,
    /// A packet cut by a partition in flight.
    Partitioned,
    /// A packet for a frozen node, kept in its inbox.
    Held,
    /// A wakeup ran.
    Woke(Outputs),
    /// A packet was handed to the node.
    Delivered(Channel, Outputs),
}

impl Sim {
    /// Whether events run in windows at all: parallel runs are on, and
    /// packets take some time to arrive.
    pub(super) fn windows_possible(&self) -> bool {
        self.parallel && !self.network.min_delay().is_zero()
    }

    /// Whether the next events can run in a window, and where it ends
    /// (exclusive): at most one network latency past the first event, and
    /// not at or past `limit` or the first barrier.
    pub(super) fn window_end(&self, first: Instant, limit: Instant) -> Option<Instant> {
        if !self.windows_possible() {
            return None;
        }
        let mut end = (first + self.network.min_delay()).min(limit);
        if let Some(barrier) = self.queue.first_barrier() {
            end = end.min(barrier);
        }
        (end > first).then_some(end)
    }

    /// Run every event due before `end` (a window: see the module
    /// documentation).
    pub(super) fn run_window(&mut self, end: Instant) {
        let mut batch: Vec<(Instant, u64, Action)> = Vec::new();
        while let Some((at, _)) = self.queue.peek_key().filter(|&(at, _)| at < end) {
            let Some(entry) = self.queue.pop_keyed() else {
                break;
            };
            debug_assert_eq!(entry.0, at);
            batch.push(entry);
        }
        if batch.len() < MIN_PARALLEL_EVENTS || rayon::current_num_threads() < 2 {
            self.run_in_order(batch, end);
        } else {
            self.run_side_by_side(batch, end);
        }
    }

    /// The window's events one by one, wakeups queued within it included.
    fn run_in_order(&mut self, batch: Vec<(Instant, u64, Action)>, end: Instant) {
        let mut batch = batch.into_iter().peekable();
        while let Some((at, next)) = self.pop_in_window(&mut batch, end) {
            let (Next::Batch(action) | Next::Queued(action)) = next;
            self.process(at, action);
        }
    }

    /// The window's next event: the head of `batch` (what was taken off
    /// the queue when the window began) or a wakeup queued since (due
    /// before `end`), whichever the queue's order puts first.
    fn pop_in_window<T>(
        &mut self,
        batch: &mut Peekable<vec::IntoIter<(Instant, u64, T)>>,
        end: Instant,
    ) -> Option<(Instant, Next<T>)> {
        let head = batch.peek().map(|&(at, seq, _)| (at, seq));
        let queued = self.queue.peek_key().filter(|&(at, _)| at < end);
        match (head, queued) {
            (Some(h), Some(q)) if q < h => self.pop_queued(),
            (Some(_), _) => batch.next().map(|(at, _, item)| (at, Next::Batch(item))),
            (None, Some(_)) => self.pop_queued(),
            (None, None) => None,
        }
    }

    fn pop_queued<T>(&mut self) -> Option<(Instant, Next<T>)> {
        self.queue
            .pop()
            .map(|(at, action)| (at, Next::Queued(action)))
    }

    /// The window's events, each node's run on whichever core, then their
    /// records replayed in order.
    fn run_side_by_side(&mut self, batch: Vec<(Instant, u64, Action)>, end: Instant) {
        // Hand each event to its node, keeping the global order.
        let mut order: Vec<(Instant, u64, NodeId)> = Vec::with_capacity(batch.len());
        let mut touched: Vec<(NodeId, usize)> = Vec::new();
        for (at, seq, action) in batch {
            let (node, event) = match action {
                Action::Wake(i) => (i, WindowEvent::Wake),
                Action::Deliver {
                    from,
                    to,
                    channel,
                    bytes,
                } => (
                    to,
                    WindowEvent::Deliver {
                        from,
                        from_addr: self.slots[from].addr,
                        channel,
                        bytes,
                    },
                ),
                // A barrier ends the window before it: none is in it.
                other => {
                    debug_assert!(false, "a barrier inside a window: {other:?}");
                    continue;
                }
            };
            let slot = &mut self.slots[node];
            if slot.window_in.is_empty() {
                touched.push((node, 0));
            }
            slot.window_in.push((at, event));
            order.push((at, seq, node));
        }
        touched.sort_unstable_by_key(|&(i, _)| i);
        for t in &mut touched {
            t.1 = self.slots[t.0].window_in.len();
        }

        let depth = rayon::current_num_threads()
            .next_power_of_two()
            .trailing_zeros()
            + SPLIT_EXTRA;
        run_nodes(&mut self.slots, 0, &touched, end, &self.network, depth);

        // Replay, in the order the one-by-one engine would have run them.
        let mut order = order.into_iter().peekable();
        while let Some((at, next)) = self.pop_in_window(&mut order, end) {
            let node = match next {
                Next::Batch(node) | Next::Queued(Action::Wake(node)) => node,
                Next::Queued(other) => {
                    debug_assert!(false, "only wakeups are queued inside a window: {other:?}");
                    continue;
                }
            };
            self.replay(at, node);
        }
        debug_assert!(
            touched
                .iter()
                .all(|&(i, _)| self.slots[i].window_out.is_empty())
        );
    }

    /// Apply node `i`'s next record, as [`Sim::process`] would have.
    fn replay(&mut self, at: Instant, i: NodeId) {
        self.now = at;
        self.events_processed += 1;
        let Some(record) = self.slots[i].window_out.pop_front() else {
            debug_assert!(false, "node {i} ran fewer events than the window holds");
            return;
        };
        match record {
            Record::Nothing | Record::Held => {}
            Record::Unreachable => self.network.record_unreachable(),
            Record::Partitioned => self.network.record_partitioned(),
            Record::Woke(out) => self.apply(i, out),
            Record::Delivered(channel, out) => {
                self.network.record_delivered(channel);
                self.apply(i, out);
            }
        }
    }
}

/// The next event of a window, by where it comes from.
enum Next<T> {
    /// One of the events taken off the queue when the window began.
    Batch(T),
    /// A wakeup queued since.
    Queued(Action),
}

/// Run the `touched` nodes (ids from `base`, with their event counts) of
/// `slots` through their window events, halving the work `depth` times
/// over the cores.
fn run_nodes(
    slots: &mut [Slot],
    base: NodeId,
    touched: &[(NodeId, usize)],
    end: Instant,
    network: &Network,
    depth: u32,
) {
    if depth == 0 || touched.len() < 2 {
        for &(i, _) in touched {
            run_node(&mut slots[i - base], i, end, network);
        }
        return;
    }
    // Split where half of the events lie on either side.
    let total: usize = touched.iter().map(|t| t.1).sum();
    let mut seen = 0;
    let mut mid = touched.len() - 1;
    for (k, t) in touched.iter().enumerate() {
        seen += t.1;
        if seen * 2 >= total {
            mid = k + 1;
            break;
        }
    }
    let mid = mid.clamp(1, touched.len() - 1);
    let split = touched[mid].0 - base;
    let (left, right) = slots.split_at_mut(split);
    let (low, high) = touched.split_at(mid);
    rayon::join(
        || run_nodes(left, base, low, end, network, depth - 1),
        || run_nodes(right, base + split, high, end, network, depth - 1),
    );
}

/// Run node `i` through its window events in order, with the wakeups it
/// sets inside the window, recording what each did. At equal times the
/// events queued before the window come first, then the new wakeups in the
/// order they were set, as in the queue.
fn run_node(slot: &mut Slot, i: NodeId, end: Instant, network: &Network) {
    let mut events = std::mem::take(&mut slot.window_in).into_iter().peekable();
    let mut wakes: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    let mut set = 0u32;
    loop {
        let next_wake = wakes.peek().map(|w| w.0.0);
        let take_event = match (events.peek(), next_wake) {
            (Some(e), Some(w)) => e.0 <= w,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (at, event) = if take_event {
            match events.next() {
                Some(e) => e,
                None => break,
            }
        } else {
            match wakes.pop() {
                Some(Reverse((at, _))) => (at, WindowEvent::Wake),
                None => break,
            }
        };
        let record = run_event(slot, i, at, event, network);
        if let Record::Woke(out) | Record::Delivered(_, out) = &record
            && let Some(w) = out.wake.filter(|&w| w < end)
        {
            wakes.push(Reverse((w, set)));
            set += 1;
        }
        slot.window_out.push_back(record);
    }
}

/// One event of node `i`, as [`Sim::process`] runs it, up to what reaches
/// beyond the node.
fn run_event(
    slot: &mut Slot,
    i: NodeId,
    at: Instant,
    event: WindowEvent,
    network: &Network,
) -> Record {
    match event {
        WindowEvent::Wake => {
            if slot.wakeup != Some(at) {
                return Record::Nothing;
            }
            slot.wakeup = None;
            if !slot.status.is_running() || slot.frozen {
                return Record::Nothing;
            }
            slot.node.handle_timeout(at);
            Record::Woke(Outputs::take(slot, at))
        }
        WindowEvent::Deliver {
            from,
            from_addr,
            channel,
            bytes,
        } => {
            if !slot.status.is_running() {
                return Record::Unreachable;
            }
            if network.blocked(at, from, i) {
                return Record::Partitioned;
            }
            if slot.frozen {
                slot.inbox.push_back(Inbound {
                    from,
                    channel,
                    bytes,
                });
                return Record::Held;
            }
            slot.node.handle_packet(at, from_addr, channel, &bytes);
            Record::Delivered(channel, Outputs::take(slot, at))
        }
    }
}
