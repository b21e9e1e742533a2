//! What every subsystem needs while handling an input: the current time, the
//! node's RNG, its timers, and the queues of outputs (events, messages).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use crate::dissemination::bandwidth::TokenBucket;
use crate::event::Event;
use crate::stats::Stats;
use crate::time::Instant;
use crate::timer::{Timer, Timers};
use crate::transmit::Channel;
use crate::wire::Message;

/// A message (or several, in one packet) waiting to be encoded.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub to: SocketAddr,
    pub channel: Channel,
    pub msgs: Vec<Message>,
    /// Messages already encoded, sent after `msgs` (held rumors keep their
    /// encoding, so each copy sent costs no re-encoding).
    pub encoded: Vec<Arc<[u8]>>,
    /// Fill the rest of the datagram with queued broadcasts.
    pub piggyback: bool,
    /// Already charged to the bandwidth budget.
    pub charged: bool,
}

/// Shared per-node machinery handed to subsystem handlers.
#[derive(Debug)]
pub(crate) struct Context {
    pub now: Instant,
    pub rng: ChaCha8Rng,
    pub timers: Timers,
    pub events: VecDeque<Event>,
    pub outbox: Vec<Outgoing>,
    pub stats: Stats,
    /// The outgoing bandwidth budget, if one is configured.
    pub budget: Option<TokenBucket>,
}

impl Context {
    /// Queue messages for `to`.
    pub fn send(&mut self, to: SocketAddr, channel: Channel, msgs: Vec<Message>, piggyback: bool) {
        self.outbox.push(Outgoing {
            to,
            channel,
            msgs,
            encoded: Vec::new(),
            piggyback,
            charged: false,
        });
    }

    /// Queue messages (some already encoded) charged to the bandwidth
    /// budget already.
    pub fn send_charged(
        &mut self,
        to: SocketAddr,
        channel: Channel,
        msgs: Vec<Message>,
        encoded: Vec<Arc<[u8]>>,
    ) {
        self.outbox.push(Outgoing {
            to,
            channel,
            msgs,
            encoded,
            piggyback: false,
            charged: true,
        });
    }

    /// Whether `bytes` more fit in the bandwidth budget now.
    pub fn budget_allows(&mut self, bytes: usize) -> bool {
        let now = self.now;
        self.budget.as_mut().is_none_or(|b| b.allows(now, bytes))
    }

    /// Charge `bytes` to the bandwidth budget.
    pub fn charge(&mut self, bytes: usize) {
        let now = self.now;
        if let Some(b) = self.budget.as_mut() {
            b.charge(now, bytes);
        }
    }

    /// Set a timer `after` from now.
    pub fn set_timer(&mut self, after: core::time::Duration, timer: Timer) {
        self.timers.set(self.now + after, timer);
    }

    /// Queue an event for the application.
    pub fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }
}
