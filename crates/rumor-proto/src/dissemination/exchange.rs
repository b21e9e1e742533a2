//! Rumor mongering rounds: what a node sends each round, and what it does
//! with the rumors, digests and feedback it receives.
//!
//! - `push`: each round, the hot rumors go to `fanout` random peers;
//!   recipients answer with feedback naming those they already knew.
//! - `pull`: each round, a digest of held rumors goes to `fanout` peers;
//!   each answers with its hot rumors missing from the digest.
//! - `push-pull`: both in one packet.
//!
//! A rumor goes cold (is no longer spread) by the configured termination:
//! feedback rules count contacts that already knew it (a digest naming it, or
//! feedback on a push); blind rules count every send; a counter goes cold at
//! `k`, a coin with probability 1/k each time. `transmit-limit` instead
//! piggybacks rumors on every outgoing packet through a transmit-limited
//! queue, as membership updates travel.

use std::net::SocketAddr;

use rand::RngExt;

use super::config::{DisseminationConfig, Mode, Termination};
use super::queue::{Offer, TransmitQueue};
use super::rumor::{Priority, Rumor, RumorBody, RumorId};
use super::store::RumorStore;
use crate::context::Context;
use crate::event::Event;
use crate::fast_map::FastSet;
use crate::membership::member::NodeName;
use crate::time::Instant;
use crate::timer::Timer;
use crate::transmit::Channel;
use crate::wire::frame::{encode_message, header_len};
use crate::wire::{Message, PacketBuilder, RumorDigest, RumorFeedback};

/// Anti-entropy digests go out every this many rounds (one second at the
/// default 200 ms interval).
const ANTI_ENTROPY_ROUNDS: u64 = 5;

/// Most held rumors looked at to answer one anti-entropy digest.
const MAX_ANTI_ENTROPY_SCAN: usize = 1024;

/// Most rumors sent in answer to one digest.
const MAX_PULL_ANSWER: usize = 64;

/// Bytes a digest entry takes at most (two varints).
const DIGEST_ENTRY_MAX: usize = 15;

/// What happened at a contact, for the termination rules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Contact {
    /// The peer already had the rumor.
    AlreadyKnew,
    /// The rumor was sent to the peer.
    Sent,
}

/// The user-event dissemination state of a node.
#[derive(Debug)]
pub struct Dissemination {
    config: DisseminationConfig,
    store: RumorStore,
    clock: u64,
    next_seq: u32,
    origin: NodeName,
    queue: TransmitQueue<RumorId>,
    /// Rumors of the packet being handled that this node already knew.
    known_in_packet: Vec<RumorId>,
    /// Bytes of messages that fit one datagram after the header.
    room: usize,
    /// Bytes of a datagram header.
    header: usize,
    rounds: u64,
    /// An eager push is set to run.
    eager_armed: bool,
    /// When this node last pushed rumors (in a round or eagerly).
    last_push: Option<Instant>,
    scratch: Vec<u8>,
}

impl Dissemination {
    /// Dissemination for the node called `origin`, in `cluster`, sending
    /// datagrams of at most `packet_budget` bytes.
    pub(crate) fn new(
        config: DisseminationConfig,
        origin: NodeName,
        cluster: &str,
        packet_budget: usize,
    ) -> Self {
        let store = RumorStore::new(config.max_rumors);
        Dissemination {
            config,
            store,
            clock: 0,
            next_seq: 0,
            origin,
            queue: TransmitQueue::default(),
            known_in_packet: Vec::new(),
            room: packet_budget.saturating_sub(header_len(cluster.len())),
            header: header_len(cluster.len()),
            rounds: 0,
            eager_armed: false,
            last_push: None,
            scratch: Vec::new(),
        }
    }

    /// The node's Lamport clock for user events.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Rumors held (seen within the retention time).
    pub fn held(&self) -> usize {
        self.store.len()
    }

    /// Whether this node holds the rumor `id`.
    pub fn holds(&self, id: &RumorId) -> bool {
        self.store.contains(id)
    }

    /// Whether any rumor is waiting for a piggyback (transmit-limit only).
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether a round has work: pull and push-pull poll every round;
    /// push acts only while this node holds rumors (hot ones to push, and
    /// any for anti-entropy digests and expiry).
    pub(crate) fn needs_rounds(&self) -> bool {
        self.config.mode != Mode::Push || !self.store.is_empty()
    }

    fn transmit_limited(&self) -> bool {
        self.config.termination == Termination::TransmitLimit
    }

    /// Start spreading a new event from this node, and deliver it here.
    pub(crate) fn broadcast(
        &mut self,
        cx: &mut Context,
        name: String,
        payload: Vec<u8>,
        priority: Priority,
    ) -> RumorId {
        self.originate(cx, RumorBody::Event { name, payload }, priority)
    }

    /// Start spreading a rumor made here (an event, or a key write already
    /// applied to the local store).
    pub(crate) fn originate(
        &mut self,
        cx: &mut Context,
        body: RumorBody,
        priority: Priority,
    ) -> RumorId {
        self.clock += 1;
        self.next_seq = self.next_seq.wrapping_add(1);
        let id = RumorId {
            origin: self.origin.stable_hash(),
            seq: self.next_seq,
        };
        let rumor = Rumor {
            id,
            origin: self.origin.clone(),
            ltime: self.clock,
            priority,
            hops: 0,
            body,
        };
        self.accept(cx, rumor);
        id
    }

    /// Hold, queue and deliver a rumor new to this node; gives it back if
    /// it was new.
    fn accept(&mut self, cx: &mut Context, rumor: Rumor) -> Option<Rumor> {
        let id = rumor.id;
        self.clock = self.clock.max(rumor.ltime);
        let event = rumor.user_event();
        let rumor = self.store.insert(rumor, cx.now)?;
        if self.transmit_limited() {
            self.queue.push(id);
        } else if let Some(delay) = self.config.eager_push
            && self.config.mode != Mode::Pull
            && !self.eager_armed
            && self
                .last_push
                .is_none_or(|at| cx.now.saturating_duration_since(at) >= self.config.interval)
        {
            cx.set_timer(delay, Timer::RumorEager);
            self.eager_armed = true;
        }
        if let Some(event) = event {
            cx.emit(Event::UserEvent(event));
        }
        Some(rumor)
    }

    /// A rumor arrived in a packet from another node. Returns the key write
    /// it carries, if it is new here, for the caller to merge.
    pub(crate) fn handle_rumor(
        &mut self,
        cx: &mut Context,
        rumor: Rumor,
    ) -> Option<(crate::state::store::Key, crate::state::Entry)> {
        if self.store.contains(&rumor.id) {
            self.handle_known_rumor(cx, rumor.id);
            return None;
        }
        cx.stats.rumors_new += 1;
        match self.accept(cx, rumor)?.body {
            RumorBody::Write { key, entry } => Some((key, entry)),
            RumorBody::Event { .. } => None,
        }
    }

    /// A copy of a rumor this node already holds arrived.
    pub(crate) fn handle_known_rumor(&mut self, cx: &mut Context, id: RumorId) {
        cx.stats.rumors_duplicate += 1;
        self.known_in_packet.push(id);
    }

    /// The packet from `from` has been handled: send feedback on its
    /// rumors that were already known, if the termination rule uses it.
    pub(crate) fn finish_packet(&mut self, cx: &mut Context, from: SocketAddr) {
        if self.known_in_packet.is_empty() {
            return;
        }
        let known = core::mem::take(&mut self.known_in_packet);
        if matches!(
            self.config.termination,
            Termination::FeedbackCounter | Termination::FeedbackCoin
        ) {
            cx.send(
                from,
                Channel::Datagram,
                vec![Message::RumorFeedback(RumorFeedback { known })],
                false,
            );
        }
    }

    /// Feedback: the peer already knew these.
    pub(crate) fn handle_feedback(&mut self, cx: &mut Context, feedback: RumorFeedback) {
        for id in feedback.known.into_iter().take(self.config.max_rumors) {
            self.contact(cx, id, Contact::AlreadyKnew);
        }
    }

    /// A digest arrived: hot rumors it names were unnecessary contacts; with
    /// `pull`, answer with the hot rumors it lacks (with anti-entropy, with
    /// every held rumor it lacks).
    pub(crate) fn handle_digest(
        &mut self,
        cx: &mut Context,
        from: SocketAddr,
        digest: RumorDigest,
    ) {
        // A digest that answers ours must not be answered again (no ping-pong).
        let asked_back = digest.reply;
        let theirs: FastSet<RumorId> = digest
            .ids
            .into_iter()
            .take(self.config.max_rumors)
            .collect();
        let mut missing = Vec::new();
        for id in self.store.hot() {
            if theirs.contains(&id) {
                self.contact(cx, id, Contact::AlreadyKnew);
            } else if digest.pull {
                missing.push(id);
            }
        }
        if digest.pull && self.config.anti_entropy {
            // A digest names the sender's youngest rumors only: look as far
            // back as about twice its length (what the sender can have
            // listed), not through every rumor held, which would cost each
            // digest O(held) and answer with rumors the sender has but
            // did not list.
            let window = (2 * theirs.len() + MAX_PULL_ANSWER).min(MAX_ANTI_ENTROPY_SCAN);
            let hot: FastSet<RumorId> = missing.iter().copied().collect();
            let cold: Vec<RumorId> = self
                .store
                .ids_youngest_first()
                .take(window)
                .filter(|id| !theirs.contains(id) && !hot.contains(id))
                .take(MAX_PULL_ANSWER)
                .collect();
            missing.extend(cold);
        }
        // A small digest must not draw an unbounded answer (a spoofed
        // source would turn that into amplification): later rounds send
        // the rest.
        missing.truncate(MAX_PULL_ANSWER);
        if !missing.is_empty() {
            self.send_rumors(cx, from, None, &missing);
        }
        // The digest names rumors we lack: ask for them in return.
        if self.config.anti_entropy
            && theirs.iter().any(|id| !self.store.contains(id))
            && !asked_back
        {
            let digest = self.digest(self.room, true);
            self.send_rumors(cx, from, Some(digest), &[]);
        }
    }

    /// Count a contact of `kind` for `id` under the termination rule:
    /// feedback rules count contacts that already knew the rumor, blind
    /// rules count sends; counters go cold at `k` (`write_k` for a key
    /// write), coins with chance 1/k.
    fn contact(&mut self, cx: &mut Context, id: RumorId, kind: Contact) {
        let t = self.config.termination;
        let counts = match kind {
            Contact::AlreadyKnew => {
                matches!(t, Termination::FeedbackCounter | Termination::FeedbackCoin)
            }
            Contact::Sent => matches!(t, Termination::BlindCounter | Termination::BlindCoin),
        };
        if !counts {
            return;
        }
        let k = match self.store.get(&id) {
            Some(held) if held.is_write => self.config.write_k,
            _ => self.config.k,
        }
        .max(1);
        if matches!(t, Termination::FeedbackCoin | Termination::BlindCoin) {
            let cold = cx.rng.random_range(0..k) == 0;
            self.store.count(id, |_| cold);
        } else {
            self.store.count(id, |c| c >= k);
        }
    }

    /// One round: push, pull or both to each of `peers`.
    pub(crate) fn on_round(&mut self, cx: &mut Context, peers: &[SocketAddr]) {
        let cutoff = cx.now - self.config.retention;
        self.store.expire(cutoff);
        if peers.is_empty() {
            return;
        }
        self.rounds = self.rounds.wrapping_add(1);
        // Anti-entropy: a node holding rumors offers a digest of them to one
        // peer every ANTI_ENTROPY_ROUNDS rounds. A node with nothing to offer
        // sends nothing, so an idle cluster pays nothing for it.
        if self.config.anti_entropy
            && !self.store.is_empty()
            && self.rounds.is_multiple_of(ANTI_ENTROPY_ROUNDS)
        {
            let digest = self.digest(self.room, false);
            self.send_rumors(cx, peers[0], Some(digest), &[]);
        }
        if self.transmit_limited() {
            return;
        }
        let hot = if self.config.mode == Mode::Pull {
            Vec::new()
        } else {
            self.store.hot()
        };
        // Push acts only while it has rumors to spread. Pull polls every
        // round, and so does push-pull, to one peer when it has nothing hot:
        // an uninformed node pulling is what makes push-pull finish in
        // log3 n rounds instead of push's log2 n + ln n.
        if hot.is_empty() && self.config.mode == Mode::Push {
            return;
        }
        let peers = if hot.is_empty() && self.config.mode == Mode::PushPull {
            &peers[..1]
        } else {
            peers
        };
        let pull = self.config.mode != Mode::Push;
        // With adaptive fanout a rumor pushed for the r-th round goes to
        // 2 × fanout / 2^r peers (at least one): young rumors spread wide,
        // old ones cheaply.
        let reach: Vec<usize> = hot
            .iter()
            .map(|id| self.reach(self.store.get(id).map_or(0, |h| h.rounds)))
            .collect();
        for (j, &peer) in peers.iter().enumerate() {
            let ids: Vec<RumorId> = hot
                .iter()
                .zip(&reach)
                .filter(|(_, r)| j < **r)
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() && !pull {
                continue;
            }
            let digest = pull.then(|| self.digest(self.room / 2, false));
            self.send_rumors(cx, peer, digest, &ids);
        }
        if !hot.is_empty() {
            self.last_push = Some(cx.now);
        }
        for id in hot {
            self.store.pushed(id);
        }
    }

    /// Eager push: send the rumors this node has not pushed yet to
    /// `peers` (as many as their first round would reach), now rather than
    /// at the next round. It counts as their first round.
    pub(crate) fn on_eager_push(&mut self, cx: &mut Context, peers: &[SocketAddr]) {
        self.eager_armed = false;
        let fresh: Vec<RumorId> = self
            .store
            .hot()
            .into_iter()
            .filter(|id| self.store.get(id).is_some_and(|h| h.rounds == 0))
            .collect();
        if fresh.is_empty() || peers.is_empty() {
            return;
        }
        for &peer in peers.iter().take(self.reach(0)) {
            self.send_rumors(cx, peer, None, &fresh);
        }
        self.last_push = Some(cx.now);
        for id in fresh {
            self.store.pushed(id);
        }
    }

    /// How many peers a rumor in its `rounds`-th round of pushing goes
    /// to: `fanout`, or with adaptive fanout `2 × fanout / 2^rounds` (at
    /// least one).
    fn reach(&self, rounds: u32) -> usize {
        if self.config.adaptive_fanout {
            (2 * self.config.fanout)
                .checked_shr(rounds)
                .unwrap_or(0)
                .max(1)
        } else {
            self.config.fanout
        }
    }

    /// How many peers a round needs.
    pub(crate) fn peers_wanted(&self) -> usize {
        if self.config.adaptive_fanout {
            2 * self.config.fanout
        } else {
            self.config.fanout
        }
    }

    /// A digest of held rumors, youngest first, within `room` bytes.
    fn digest(&self, room: usize, reply: bool) -> RumorDigest {
        let n = room / DIGEST_ENTRY_MAX;
        RumorDigest {
            pull: true,
            reply,
            ids: self.store.ids_youngest_first().take(n).collect(),
        }
    }

    /// Send `ids` (and a digest first, if any) to `to`, packed into as few
    /// datagrams as fit; a rumor too large for a datagram goes on a stream.
    fn send_rumors(
        &mut self,
        cx: &mut Context,
        to: SocketAddr,
        digest: Option<RumorDigest>,
        ids: &[RumorId],
    ) {
        // Cost of a datagram besides its messages: the header.
        let overhead = self.header;
        let room = self.room;
        // The digest leads the first datagram; encoded once, it is both
        // measured and sent.
        let mut batch: Vec<std::sync::Arc<[u8]>> = Vec::new();
        let mut used = 0;
        if let Some(digest) = digest {
            self.scratch.clear();
            if encode_message(&Message::RumorDigest(digest), &mut self.scratch).is_ok() {
                used = self.scratch.len() + 3;
                batch.push(std::sync::Arc::from(self.scratch.as_slice()));
            }
        }
        if !batch.is_empty() && !cx.budget_allows(used + overhead) {
            self.defer_all(cx, ids);
            return;
        }
        for (i, &id) in ids.iter().enumerate() {
            let Some(held) = self.store.get(&id) else {
                continue;
            };
            let encoded = std::sync::Arc::clone(&held.encoded);
            let is_write = held.is_write;
            let len = encoded.len() + 3;
            let stream = len > room;
            let pending = if stream || used + len > room { 0 } else { used };
            if !cx.budget_allows(pending + len + overhead) {
                // Out of budget: this rumor and every later one (lower
                // priority or older) waits for the next round.
                self.defer_all(cx, &ids[i..]);
                break;
            }
            if is_write {
                cx.stats.write_rumor_bytes_sent += len as u64;
            }
            if stream {
                cx.charge(len + overhead);
                cx.send_charged(to, Channel::Stream, Vec::new(), vec![encoded]);
            } else {
                if used + len > room {
                    cx.charge(used + overhead);
                    let batch = core::mem::take(&mut batch);
                    cx.send_charged(to, Channel::Datagram, Vec::new(), batch);
                    used = 0;
                }
                batch.push(encoded);
                used += len;
            }
            cx.stats.rumors_sent += 1;
            if let Some(waited) = self.store.sent(id, cx.now) {
                let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                cx.stats.rumor_wait_ms_total = cx.stats.rumor_wait_ms_total.saturating_add(ms);
                cx.stats.rumor_wait_ms_max = cx.stats.rumor_wait_ms_max.max(ms);
            }
            self.contact(cx, id, Contact::Sent);
        }
        if !batch.is_empty() {
            cx.charge(used + overhead);
            cx.send_charged(to, Channel::Datagram, Vec::new(), batch);
        }
    }

    /// Note that `ids` wait for bandwidth.
    fn defer_all(&mut self, cx: &mut Context, ids: &[RumorId]) {
        for &id in ids {
            if self.store.defer(id, cx.now) {
                cx.stats.rumors_deferred += 1;
            }
        }
    }

    /// Fill the rest of `packet` with queued rumors (transmit-limit only).
    pub(crate) fn fill_packet(&mut self, cx: &mut Context, packet: &mut PacketBuilder, limit: u32) {
        let Dissemination { queue, store, .. } = self;
        let mut sent = 0;
        let mut write_bytes = 0;
        queue.fill(limit, |id| {
            let Some(held) = store.get(&id) else {
                return Offer::Stale;
            };
            let encoded = &held.encoded;
            if packet.push_encoded(encoded) {
                sent += 1;
                if held.is_write {
                    write_bytes += encoded.len() as u64;
                }
                Offer::Taken
            } else {
                Offer::Skipped
            }
        });
        cx.stats.rumors_sent += sent;
        cx.stats.write_rumor_bytes_sent += write_bytes;
    }
}
