//! [`Node`]: one cluster member's protocol state machine, and the only door
//! in and out of the core.
//!
//! ```text
//! handle_packet(now, from, channel, bytes)   a datagram or stream frame arrived
//! handle_timeout(now)                        the deadline from poll_timeout passed
//! handle_command(now, Command)               the application asks for something
//! poll_transmit() -> Option<Transmit>        bytes to send
//! poll_event()    -> Option<Event>           something happened
//! poll_timeout()  -> Option<Instant>         when to call handle_timeout next
//! ```
//!
//! Nothing here reads a clock, opens a socket or draws OS randomness: the
//! same inputs (and seed) always give the same outputs.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, ConfigError, MAX_DATAGRAM};
use crate::context::{Context, Outgoing};
use crate::dissemination::bandwidth::TokenBucket;
use crate::dissemination::exchange::Dissemination;
use crate::dissemination::rumor::{Priority, RumorBody, RumorId};
use crate::event::{Command, Event};
use crate::membership::Membership;
use crate::membership::member::{Incarnation, Member, MemberState, NodeName, Tags, boxed_tags};
use crate::membership::table::MemberTable;
use crate::state::{
    Entry, KvError, KvStore, Merged, Op, ReplicaId, StoreSnapshot, Timestamp, Written,
};
use crate::stats::Stats;
use crate::sync::anti_entropy::{AntiEntropy, entries_frames};
use crate::sync::{Convergence, StateSummary, descent};
use crate::time::Instant;
use crate::timer::{LazyTimer, Timer, Timers};
use crate::transmit::{Channel, Transmit};
use crate::wire::frame::{
    AlreadyHeld, FLAG_SEALED, decode_datagram_body_into, decode_message, encode_stream_frame,
    encode_stream_frame_encoded, split_frame,
};
use crate::wire::{self, DecodeError, Decoded, Message, PacketBuilder};

/// What a node holds, for decoding only what it lacks.
struct Held<'a> {
    dissemination: &'a Dissemination,
    summaries: &'a crate::sync::convergence::Summaries,
}

impl AlreadyHeld for Held<'_> {
    fn rumor(&self, id: &RumorId) -> bool {
        self.dissemination.holds(id)
    }
    fn summary(&self, node: &str, issued: Timestamp) -> bool {
        !self.summaries.is_newer_than(node, issued)
    }
}

/// Who a node is.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// Its unique name.
    pub name: NodeName,
    /// The address others reach it at.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: Tags,
    /// Incarnation to start from (the last one it used, after a restart).
    pub incarnation: Incarnation,
}

impl Identity {
    /// A fresh identity with no tags, at incarnation 0.
    pub fn new(name: NodeName, addr: SocketAddr) -> Self {
        Identity {
            name,
            addr,
            tags: Tags::new(),
            incarnation: 0,
        }
    }

    /// The member table entry of this identity, alive since `now`.
    fn alive_member(&self, now: Instant) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.addr.into(),
            incarnation: self.incarnation,
            state: MemberState::Alive,
            since: now,
            tags: boxed_tags(self.tags.clone()),
        }
    }
}

/// What a node must keep across a restart to rejoin by itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The node's identity with the last incarnation it used.
    pub identity: Identity,
    /// Addresses of the members it knew as alive or suspect.
    pub members: Vec<SocketAddr>,
    /// The seeds it was given.
    pub seeds: Vec<SocketAddr>,
    /// Its key-value store.
    pub store: StoreSnapshot,
}

/// Times each node relays a store summary: ceil(log10(N + 1)), a quarter
/// of the membership retransmit limit. Summaries are refreshed every
/// interval, so one that misses a node is soon replaced.
fn summary_transmits(members: usize) -> u32 {
    ((members as f64) + 1.0).log10().ceil().max(1.0) as u32
}

/// Tree-node groups per anti-entropy frame (about 90 bytes each).
const SYNC_GROUPS_PER_FRAME: usize = 4096;
/// Keys listed per anti-entropy frame (about 14 bytes each).
const SYNC_KEYS_PER_FRAME: usize = 16_384;

/// Rejoin through at most this many remembered members after a restart.
const REJOIN_FANOUT: usize = 3;

/// A node could not be created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A user event's name is too long.
    #[error("event name of {len} bytes is longer than {max}; shorten it")]
    EventName {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A user event's payload is too large.
    #[error(
        "event payload of {size} bytes exceeds dissemination.max_payload ({max}); send less, or raise the limit on every node"
    )]
    EventPayload {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A key-value write was refused.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The node's own tags exceed `max_tags_bytes`.
    #[error(
        "tags take {size} bytes, more than max_tags_bytes ({max}); remove some or shorten them"
    )]
    TagsTooLarge {
        /// Their encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// One cluster member's protocol state machine.
#[derive(Debug)]
pub struct Node {
    config: Config,
    cx: Context,
    membership: Membership,
    dissemination: Dissemination,
    kv: KvStore,
    anti_entropy: AntiEntropy,
    /// Wall-clock milliseconds at `Instant::ZERO`.
    wall_offset_ms: u64,
    transmits: VecDeque<Transmit>,
    /// The gossip timer, set only while something waits to be gossiped.
    gossip_timer: LazyTimer,
    /// The dissemination round's timer, set only while a round has work
    /// (see [`Dissemination::needs_rounds`]).
    rumor_timer: LazyTimer,
    /// Whether a [`Timer::GossipEager`] is set.
    eager_gossip_armed: bool,
    /// When the last eager gossip round ran.
    last_eager_gossip: Option<Instant>,
    /// The last packet's messages: buffers kept for the next one.
    decoded: Decoded,
}

impl Node {
    /// A new node at `now`, alone until it joins. `seed` seeds every random
    /// choice it makes; the runtime should draw it from OS randomness, the
    /// simulator from its own seed.
    pub fn new(
        config: Config,
        identity: Identity,
        seed: u64,
        now: Instant,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let size = wire::tags_size(&identity.tags);
        if size > config.max_tags_bytes {
            return Err(NodeError::TagsTooLarge {
                size,
                max: config.max_tags_bytes,
            });
        }
        let local = identity.alive_member(now);
        let mut cx = Context {
            now,
            rng: ChaCha8Rng::seed_from_u64(seed),
            timers: Timers::default(),
            events: VecDeque::new(),
            outbox: Vec::new(),
            stats: Stats::default(),
            budget: config
                .dissemination
                .bandwidth
                .map(|rate| TokenBucket::new(rate, now)),
        };
        // Stagger the periodic timers so that nodes started together do not
        // act in lockstep.
        let jitter =
            |cx: &mut Context, d: core::time::Duration| d.mul_f64(cx.rng.random_range(0.0..1.0));
        let (mut gossip_timer, mut rumor_timer) =
            (LazyTimer::first_at(now), LazyTimer::first_at(now));
        for (period, timer) in [
            (config.probe_interval, Timer::Probe),
            (config.gossip_interval, Timer::Gossip),
            (config.reap_interval, Timer::Reap),
            (config.reconnect_interval, Timer::Reconnect),
            (config.dissemination.interval, Timer::Rumor),
        ] {
            let at = jitter(&mut cx, period);
            match timer {
                Timer::Gossip => gossip_timer = LazyTimer::first_at(now + at),
                Timer::Rumor => rumor_timer = LazyTimer::first_at(now + at),
                _ => {}
            }
            cx.set_timer(at, timer);
        }
        for (period, timer) in [
            (config.state.summary_interval, Timer::StateSummary),
            (config.state.anti_entropy_interval, Timer::AntiEntropy),
        ] {
            let at = jitter(&mut cx, period);
            cx.set_timer(at, timer);
        }
        // A store that starts empty is a new replica: it must never reuse a
        // dot an earlier life of this node made.
        let replica = ReplicaId(local.name.stable_hash() ^ cx.rng.random::<u64>());
        let kv = KvStore::new(replica, config.state.clone());
        if !config.push_pull_interval.is_zero() {
            let at = config.push_pull_interval + jitter(&mut cx, config.push_pull_interval);
            cx.set_timer(at, Timer::PushPull);
        }
        let dissemination = Dissemination::new(
            config.dissemination.clone(),
            local.name.clone(),
            &config.cluster,
            config.datagram_room(),
        );
        let membership = Membership::new(config.clone(), local);
        Ok(Node {
            config,
            cx,
            membership,
            dissemination,
            kv,
            anti_entropy: AntiEntropy::default(),
            wall_offset_ms: 0,
            transmits: VecDeque::new(),
            gossip_timer,
            rumor_timer,
            eager_gossip_armed: false,
            last_eager_gossip: None,
            decoded: Decoded::default(),
        })
    }

    /// A node restarted from a [`Snapshot`]: it comes back at a higher
    /// incarnation and rejoins through a few of the members it knew and its
    /// seeds.
    pub fn restore(
        config: Config,
        snapshot: Snapshot,
        seed: u64,
        now: Instant,
    ) -> Result<Self, NodeError> {
        let mut identity = snapshot.identity;
        identity.incarnation = identity.incarnation.saturating_add(1);
        let mut node = Node::new(config, identity, seed, now)?;
        if let Some(replica) = snapshot.store.replica {
            let state = node.config.state.clone();
            node.kv = KvStore::import(replica, state, snapshot.store);
        }
        let mut known = snapshot.members;
        known
            .retain(|a| *a != node.membership.local().socket_addr() && !snapshot.seeds.contains(a));
        rand::seq::SliceRandom::shuffle(known.as_mut_slice(), &mut node.cx.rng);
        known.truncate(REJOIN_FANOUT);
        node.cx.now = now;
        node.membership.join(&mut node.cx, snapshot.seeds);
        node.membership.rejoin(&mut node.cx, &known);
        node.flush();
        Ok(node)
    }

    /// Add `members` to this node's table as alive, as if it had joined a
    /// cluster of them and heard every join: a simulation or test can start
    /// from a formed cluster without running the joins and the full-state
    /// exchanges that follow them. The protocol then runs as usual.
    ///
    /// Each member is added at its identity's incarnation, address and tags.
    /// Members this node already knows (itself included) are left as they
    /// are, and members whose tags exceed `max_tags_bytes` are skipped (no
    /// peer would accept them). Nothing is queued for gossip, since every
    /// member is taken to know the others already, and no events are
    /// emitted: the caller knows what it installed. Returns how many members
    /// were added.
    ///
    /// ```
    /// use rumor_proto::{Config, Identity, Instant, MemberState, Node};
    ///
    /// let ids: Vec<Identity> = (1..=3)
    ///     .map(|i| Identity::new(format!("n{i}").parse().unwrap(), ([127, 0, 0, i], 7946).into()))
    ///     .collect();
    /// let mut node = Node::new(Config::local(), ids[0].clone(), 1, Instant::ZERO).unwrap();
    /// assert_eq!(node.install_members(Instant::ZERO, &ids), 2);
    /// assert!(node.members().all(|m| m.state == MemberState::Alive));
    /// assert_eq!(node.member_table().active_count(), 3);
    /// assert!(node.poll_event().is_none());
    /// ```
    pub fn install_members(&mut self, now: Instant, members: &[Identity]) -> usize {
        self.cx.now = now;
        let max = self.config.max_tags_bytes;
        let members = members
            .iter()
            .filter(|m| m.tags.is_empty() || wire::tags_size(&m.tags) <= max)
            .map(|m| m.alive_member(now));
        self.membership.install(&mut self.cx, members)
    }

    /// What this node must keep to rejoin after a restart.
    pub fn snapshot(&self) -> Snapshot {
        let local = self.membership.local();
        Snapshot {
            identity: Identity {
                name: local.name.clone(),
                addr: local.socket_addr(),
                tags: local.tags().clone(),
                incarnation: local.incarnation,
            },
            members: self.known_members().map(|(_, addr)| addr).collect(),
            seeds: self.seeds().to_vec(),
            store: self.kv.export(),
        }
    }

    /// A datagram or stream frame arrived from `from`. Anything that does
    /// not decode is dropped, counted in [`Stats::dropped`], and changes
    /// nothing.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        channel: Channel,
        bytes: &[u8],
    ) {
        self.cx.now = now;
        self.cx.stats.packets_received += 1;
        self.cx.stats.bytes_received += bytes.len() as u64;
        let mut decoded = core::mem::take(&mut self.decoded);
        match self.decode(channel, bytes, &mut decoded) {
            Ok(()) => {
                let mut known = decoded.known_rumors.drain(..).peekable();
                for (i, msg) in decoded.messages.drain(..).enumerate() {
                    while let Some((_, id)) = known.next_if(|&(before, _)| before <= i) {
                        self.dissemination.handle_known_rumor(&mut self.cx, id);
                    }
                    self.dispatch(from, channel, msg);
                }
                for (_, id) in known {
                    self.dissemination.handle_known_rumor(&mut self.cx, id);
                }
                self.dissemination.finish_packet(&mut self.cx, from);
            }
            Err(e) => self.cx.stats.dropped.record(&e),
        }
        decoded.clear();
        self.decoded = decoded;
        self.flush();
    }

    /// Decode the packet's messages into `decoded`, with the ids of rumors
    /// it carried that this node already holds (not decoded further).
    fn decode(
        &mut self,
        channel: Channel,
        bytes: &[u8],
        decoded: &mut Decoded,
    ) -> Result<(), DecodeError> {
        let max = match channel {
            Channel::Datagram => MAX_DATAGRAM,
            Channel::Stream => self.config.max_stream_frame,
        };
        let frame = split_frame(bytes, &self.config.cluster, max)?;
        if frame.flags & FLAG_SEALED != 0 {
            return Err(DecodeError::Malformed(
                "sealed frame reached the core unopened",
            ));
        }
        match channel {
            Channel::Datagram => {
                let held = Held {
                    dissemination: &self.dissemination,
                    summaries: &self.anti_entropy.summaries,
                };
                decode_datagram_body_into(frame.body, &held, decoded)?;
            }
            Channel::Stream => {
                decoded.clear();
                decoded.messages.push(decode_message(frame.body)?);
            }
        }
        for m in &decoded.messages {
            wire::validate(m, &self.config)?;
        }
        self.cx.stats.dropped.unknown_message += decoded.unknown as u64;
        Ok(())
    }

    fn dispatch(&mut self, from: SocketAddr, channel: Channel, msg: Message) {
        let (m, cx) = (&mut self.membership, &mut self.cx);
        match msg {
            Message::Ping(p) => m.handle_ping(cx, from, channel, p),
            Message::IndirectPing(p) => m.handle_indirect_ping(cx, from, p),
            Message::Ack(a) => m.handle_ack(cx, channel, a),
            Message::Nack(n) => m.handle_nack(n),
            Message::Alive(a) => m.apply_alive(cx, a.incarnation, &a.node, a.addr, &a.tags, true),
            Message::Suspect(s) => m.apply_suspect(cx, s.incarnation, &s.node, &s.from, true),
            Message::Dead(d) => m.apply_dead(cx, d.incarnation, &d.node, true),
            Message::Left(l) => m.apply_left(cx, l.incarnation, &l.node, true),
            Message::PushPull(p) => m.handle_push_pull(cx, from, p),
            Message::Rumor(r) => {
                if let Some((key, entry)) = self.dissemination.handle_rumor(cx, r) {
                    self.merge_entry(&key, &entry);
                }
            }
            Message::RumorDigest(d) => self.dissemination.handle_digest(cx, from, d),
            Message::RumorFeedback(f) => self.dissemination.handle_feedback(cx, f),
            Message::StateSummary(s) => {
                self.anti_entropy
                    .handle_summary(s, self.membership.table(), cx.now)
            }
            Message::SyncCompare(c) => self.handle_sync_compare(from, &c),
            Message::SyncKeys(k) => self.handle_sync_keys(from, &k),
            Message::SyncEntries(e) => self.handle_sync_entries(from, e),
        }
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.cx.now = now;
        while let Some(timer) = self.cx.timers.pop_due(now) {
            let (m, cx) = (&mut self.membership, &mut self.cx);
            match timer {
                Timer::Probe => m.on_probe_timer(cx),
                Timer::ProbeTimeout(seq) => m.on_probe_timeout(cx, seq),
                Timer::StreamProbe(seq) => m.on_stream_probe(cx, seq),
                Timer::ProbeDeadline(seq) => m.on_probe_deadline(cx, seq),
                Timer::RelayTimeout(seq) => m.on_relay_timeout(cx, seq),
                Timer::Suspicion(id) => m.on_suspicion_timer(cx, id),
                Timer::Gossip => self.on_gossip_timer(),
                Timer::GossipEager => self.on_eager_gossip_timer(),
                Timer::PushPull => m.on_push_pull_timer(cx),
                Timer::JoinSync => m.on_join_sync_timer(cx),
                Timer::JoinRetry => m.on_join_retry_timer(cx),
                Timer::Reap => m.on_reap_timer(cx),
                Timer::Reconnect => m.on_reconnect_timer(cx),
                Timer::Rumor => self.on_rumor_timer(),
                Timer::RumorEager => self.on_eager_push_timer(),
                Timer::StateSummary => self.on_summary_timer(),
                Timer::AntiEntropy => self.on_anti_entropy_timer(),
            }
        }
        self.flush();
    }

    /// Do what the application asks.
    ///
    /// Fails, changing nothing, for tags larger than `max_tags_bytes` and
    /// events whose name or payload exceed their limits.
    pub fn handle_command(&mut self, now: Instant, command: Command) -> Result<(), NodeError> {
        self.cx.now = now;
        match command {
            Command::Join { seeds } => self.membership.join(&mut self.cx, seeds),
            Command::Leave => {
                self.membership.leave(&mut self.cx);
                self.gossip_round();
            }
            Command::SetTags(tags) => {
                // Tags too large for the wire would be dropped by every peer.
                let size = wire::tags_size(&tags);
                let max = self.config.max_tags_bytes;
                if size > max {
                    return Err(NodeError::TagsTooLarge { size, max });
                }
                self.membership.set_tags(tags);
            }
            Command::Broadcast {
                name,
                payload,
                priority,
            } => {
                if name.len() > wire::MAX_EVENT_NAME {
                    return Err(NodeError::EventName {
                        len: name.len(),
                        max: wire::MAX_EVENT_NAME,
                    });
                }
                let max = self.config.dissemination.max_payload;
                if payload.len() > max {
                    return Err(NodeError::EventPayload {
                        size: payload.len(),
                        max,
                    });
                }
                self.dissemination
                    .broadcast(&mut self.cx, name, payload, priority);
            }
        }
        self.flush();
        Ok(())
    }

    /// Gossip timer: send queued updates to `gossip_fanout` random peers;
    /// set again only while something is still queued.
    fn on_gossip_timer(&mut self) {
        self.gossip_timer.fired(self.cx.now);
        self.gossip_round();
        self.arm_gossip();
    }

    /// Eager gossip timer: a round now for the urgent news queued, off the
    /// grid of the gossip timer.
    fn on_eager_gossip_timer(&mut self) {
        self.eager_gossip_armed = false;
        self.last_eager_gossip = Some(self.cx.now);
        self.cx.stats.eager_gossip_rounds += 1;
        self.gossip_round();
    }

    /// Set the eager gossip timer if urgent news was queued (a verdict
    /// that a member is down, or this node's refutation), unless one is
    /// set or ran less than a gossip interval ago.
    fn arm_eager_gossip(&mut self) {
        if !self.membership.take_urgent() {
            return;
        }
        let Some(delay) = self.config.eager_gossip else {
            return;
        };
        let now = self.cx.now;
        let recent = self
            .last_eager_gossip
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.gossip_interval);
        if self.eager_gossip_armed || recent {
            return;
        }
        self.cx.set_timer(delay, Timer::GossipEager);
        self.eager_gossip_armed = true;
    }

    /// Whether a gossip round would send anything.
    fn has_gossip_queued(&self) -> bool {
        self.membership.queued_broadcasts() > 0
            || self.dissemination.has_queued()
            || self.anti_entropy.has_queued()
    }

    /// Drop the timers at the head of the heap that would do nothing if
    /// they fired (an answered probe's timeout), so that the runtime does
    /// not wake for them.
    fn drop_stale_timers(&mut self) {
        while let Some(t) = self.cx.timers.peek() {
            if !self.membership.is_stale(t) {
                break;
            }
            self.cx.timers.pop();
        }
    }

    /// Set the gossip timer again if something was queued while it was
    /// off, at the next tick of its grid.
    fn arm_gossip(&mut self) {
        if self.has_gossip_queued() {
            let interval = self.config.gossip_interval;
            self.gossip_timer
                .arm(&mut self.cx.timers, self.cx.now, interval, Timer::Gossip);
        }
    }

    /// Set the dissemination timer again if a round has work once more (a
    /// rumor arrived or was written), at the next tick of its grid.
    fn arm_rumor(&mut self) {
        if self.dissemination.needs_rounds() {
            let interval = self.config.dissemination.interval;
            self.rumor_timer
                .arm(&mut self.cx.timers, self.cx.now, interval, Timer::Rumor);
        }
    }

    /// Rumor timer: one round of user-event dissemination.
    /// Set again only while a round has work: in push mode, while this
    /// node holds rumors.
    fn on_rumor_timer(&mut self) {
        self.rumor_timer.fired(self.cx.now);
        if self.dissemination.needs_rounds() {
            self.cx.stats.rumor_rounds += 1;
            let peers = self.rumor_peers();
            self.dissemination.on_round(&mut self.cx, &peers);
        }
        self.arm_rumor();
    }

    /// Eager-push timer: the first push of the rumors new here.
    fn on_eager_push_timer(&mut self) {
        let peers = self.rumor_peers();
        self.dissemination.on_eager_push(&mut self.cx, &peers);
    }

    /// Random active members for a round of dissemination.
    fn rumor_peers(&mut self) -> Vec<SocketAddr> {
        let local = self.membership.local;
        let table = self.membership.table();
        table
            .sample(
                &mut self.cx.rng,
                self.dissemination.peers_wanted(),
                |id, m| id != local && m.state.is_active(),
            )
            .into_iter()
            .filter_map(|id| table.get(id).map(|m| m.socket_addr()))
            .collect()
    }

    fn gossip_round(&mut self) {
        if !self.has_gossip_queued() {
            return;
        }
        let (now, local) = (self.cx.now, self.membership.local);
        let to_dead = self.config.gossip_to_dead;
        let peers =
            self.membership
                .table()
                .sample(&mut self.cx.rng, self.config.gossip_fanout, |id, m| {
                    id != local
                        && (m.state.is_active()
                            || (m.state == MemberState::Dead && now - m.since < to_dead))
                });
        for id in peers {
            if let Some(m) = self.membership.table().get(id) {
                let addr = m.socket_addr();
                self.cx.send(addr, Channel::Datagram, Vec::new(), true);
            }
        }
    }

    /// Encode everything handlers queued into transmits.
    fn flush(&mut self) {
        self.arm_eager_gossip();
        self.arm_gossip();
        self.arm_rumor();
        self.drop_stale_timers();
        for Outgoing {
            to,
            channel,
            msgs,
            encoded,
            piggyback,
            charged,
        } in std::mem::take(&mut self.cx.outbox)
        {
            match channel {
                Channel::Datagram => {
                    let Ok(mut packet) =
                        PacketBuilder::new(&self.config.cluster, self.config.datagram_room())
                    else {
                        continue;
                    };
                    for msg in &msgs {
                        // Config::validate makes the packet budget large
                        // enough for any single message but a push-pull
                        // (which only travels on streams).
                        let _ = packet.push(msg);
                    }
                    for e in &encoded {
                        packet.push_encoded(e);
                    }
                    if piggyback {
                        self.membership.fill_packet(&mut packet, to);
                        let members = self.membership.table().active_count();
                        let limit = summary_transmits(members);
                        self.anti_entropy
                            .fill_packet(&mut packet, limit, self.cx.now);
                        // User events ride along only while the budget has
                        // room for a full packet; membership always goes.
                        if self.cx.budget_allows(self.config.packet_budget) {
                            let limit = self.membership.retransmit_limit();
                            self.dissemination
                                .fill_packet(&mut self.cx, &mut packet, limit);
                        }
                    }
                    if packet.is_empty() {
                        continue;
                    }
                    self.cx.stats.messages_sent += packet.len() as u64;
                    let bytes = packet.finish();
                    if !charged {
                        self.cx.charge(bytes.len());
                    }
                    self.push_transmit(to, channel, bytes);
                }
                Channel::Stream => {
                    for msg in &msgs {
                        if let Ok(bytes) = encode_stream_frame(
                            &self.config.cluster,
                            msg,
                            self.config.stream_room(),
                        ) {
                            self.cx.stats.messages_sent += 1;
                            if matches!(
                                msg,
                                Message::SyncEntries(_)
                                    | Message::SyncCompare(_)
                                    | Message::SyncKeys(_)
                            ) {
                                self.cx.stats.anti_entropy_bytes_sent += bytes.len() as u64;
                            }
                            if !charged {
                                self.cx.charge(bytes.len());
                            }
                            self.push_transmit(to, channel, bytes);
                        }
                    }
                    for e in &encoded {
                        if let Ok(bytes) = encode_stream_frame_encoded(
                            &self.config.cluster,
                            e,
                            self.config.stream_room(),
                        ) {
                            self.cx.stats.messages_sent += 1;
                            if !charged {
                                self.cx.charge(bytes.len());
                            }
                            self.push_transmit(to, channel, bytes);
                        }
                    }
                }
            }
        }
    }

    fn push_transmit(&mut self, to: SocketAddr, channel: Channel, bytes: Vec<u8>) {
        self.cx.stats.packets_sent += 1;
        self.cx.stats.bytes_sent += bytes.len() as u64;
        self.transmits.push_back(Transmit { to, channel, bytes });
    }

    /// The next packet or frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        release_if_drained(&mut self.transmits);
        t
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.cx.events.pop_front();
        release_if_drained(&mut self.cx.events);
        e
    }

    /// When [`Node::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.cx.timers.next_deadline()
    }

    /// This node's own member entry.
    pub fn local(&self) -> &Member {
        self.membership.local()
    }

    /// Every member this node knows, itself included.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.membership.table().iter().map(|(_, m)| m)
    }

    /// The other members a restart can rejoin through (those known alive
    /// or suspect), by name: what [`Snapshot::members`] keeps.
    pub fn known_members(&self) -> impl Iterator<Item = (&NodeName, SocketAddr)> {
        let local = &self.membership.local().name;
        self.membership
            .table()
            .iter()
            .filter(move |(_, m)| m.state.is_active() && m.name != *local)
            .map(|(_, m)| (&m.name, m.socket_addr()))
    }

    /// The seeds this node was asked to join through (retried while they
    /// are not alive members): what [`Snapshot::seeds`] keeps.
    pub fn seeds(&self) -> &[SocketAddr] {
        &self.membership.seeds
    }

    /// The member table (for lookups by name and counts).
    pub fn member_table(&self) -> &MemberTable {
        self.membership.table()
    }

    /// The member called `name`.
    pub fn member(&self, name: &NodeName) -> Option<&Member> {
        self.membership.table().by_name(name)
    }

    /// Traffic and drop counters.
    pub fn stats(&self) -> &Stats {
        &self.cx.stats
    }

    /// Lifeguard's local health score (0 is healthy).
    pub fn health_score(&self) -> u32 {
        self.membership.health_score()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The user-event dissemination state.
    pub fn dissemination(&self) -> &Dissemination {
        &self.dissemination
    }

    /// Tell the node the wall-clock time (milliseconds since the Unix
    /// epoch) at `now`; the hybrid logical clock follows it. Until called,
    /// wall-clock time is `now` since the caller's epoch.
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall_offset_ms = unix_ms.saturating_sub(now.as_nanos() / 1_000_000);
    }

    fn wall_ms(&self) -> u64 {
        self.wall_offset_ms
            .saturating_add(self.cx.now.as_nanos() / 1_000_000)
    }

    /// Write to the replicated key-value store. The write is applied here
    /// at once (it is acknowledged when this returns `Ok`) and spreads to
    /// every node by rumor and anti-entropy. Fails, changing nothing, on an
    /// invalid key, a value over the limits, an operation that does not fit
    /// the key's kind, or a full store.
    pub fn write(&mut self, now: Instant, key: &str, op: Op) -> Result<Written, NodeError> {
        self.cx.now = now;
        let written = self.kv.write(key, op, self.wall_ms())?;
        self.cx.stats.kv_writes += 1;
        self.dissemination.originate(
            &mut self.cx,
            RumorBody::Write {
                key: written.key.clone(),
                entry: written.entry.clone(),
            },
            Priority::Normal,
        );
        self.cx.emit(Event::KeyChanged {
            key: written.key.clone(),
            local: true,
        });
        self.flush();
        Ok(written)
    }

    /// The state of `key` (a tombstone if deleted and not yet collected).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.kv.get(key)
    }

    /// The key-value store.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// How far the cluster is from agreement, as this node sees it.
    pub fn convergence(&self) -> Convergence {
        let local = &self.membership.local().name;
        let root = self.kv.root();
        let mut members = 1;
        let mut agreeing = 1;
        let mut differing: Vec<StateSummary> = Vec::new();
        let mut unknown = Vec::new();
        for (_, m) in self.membership.table().iter() {
            if !m.state.is_active() || m.name == *local {
                continue;
            }
            members += 1;
            match self.anti_entropy.summaries.get(&m.name) {
                Some(s) if s.root == root => agreeing += 1,
                Some(s) => differing.push(s.clone()),
                // Never announced: an empty store.
                None if root == 0 => agreeing += 1,
                None => unknown.push(m.name.clone()),
            }
        }
        differing.sort_by(|a, b| a.node.cmp(&b.node));
        unknown.sort();
        Convergence {
            root,
            keys: self.kv.len() as u64,
            members,
            agreeing,
            fraction: agreeing as f64 / members as f64,
            differing,
            unknown,
            latency: self.anti_entropy.summaries.latency.clone(),
        }
    }

    /// Start from a copy of `template`'s keys, as if each had been merged
    /// (without events): loads identical state into many nodes cheaply.
    /// Refused, changing nothing, unless this node's store is empty.
    pub fn load_store(&mut self, template: &KvStore) -> bool {
        if !self.kv.is_empty() {
            return false;
        }
        let replica = self.kv.replica();
        let config = self.kv.config().clone();
        self.kv = template.copy_for(replica, config);
        true
    }

    /// Merge a key's state from elsewhere (a persisted copy, a bulk load)
    /// into the store, as if it had arrived from a peer. It is not
    /// spread further except by anti-entropy.
    pub fn merge(&mut self, now: Instant, key: &str, entry: &Entry) -> Merged {
        self.cx.now = now;
        let m = self.merge_entry(key, entry);
        self.flush();
        m
    }

    /// Merge a key state received from another node.
    fn merge_entry(&mut self, key: &str, entry: &Entry) -> Merged {
        let wall = self.wall_ms();
        let outcome = self.kv.merge(key, entry, wall);
        match outcome {
            Merged::Changed { age_ms } => {
                self.cx.stats.kv_merged += 1;
                self.anti_entropy.summaries.latency.record(age_ms);
                self.cx.emit(Event::KeyChanged {
                    key: key.into(),
                    local: false,
                });
            }
            Merged::Unchanged => {}
            Merged::Refused(_) => self.cx.stats.kv_refused += 1,
        }
        outcome
    }

    /// Summary timer: announce this node's summary if it changed, and
    /// collect tombstones that are old enough or known to be everywhere.
    fn on_summary_timer(&mut self) {
        // Every node's summary must reach every other, so the cluster's
        // summary traffic grows as N²: above 100 members the interval grows
        // with N, keeping each node's share near 100 summaries a second.
        let members = self.membership.table().active_count();
        let interval = self
            .config
            .state
            .summary_interval
            .mul_f64((members as f64 / 100.0).max(1.0));
        self.cx.set_timer(interval, Timer::StateSummary);
        let wall = self.wall_ms();
        if let Some(t) = self.everyone_agrees_since() {
            self.anti_entropy.stable = self.anti_entropy.stable.max(t);
        }
        let safe = self.stable_everywhere();
        let collected = self.kv.collect_tombstones(wall, safe);
        if !collected.is_empty() {
            self.cx.stats.tombstones_collected += collected.len() as u64;
            self.cx.emit(Event::TombstonesCollected { keys: collected });
        }
        let issued = self.kv.tick(wall);
        let name = self.membership.local().name.clone();
        let base = self.config.state.summary_interval;
        self.anti_entropy
            .announce(&name, &self.kv, self.cx.now, issued, interval, base);
        self.anti_entropy.prune(self.membership.table());
    }

    /// When every member (dead ones included, until reaped) last announced
    /// this node's root, the earliest of those announcements: everything
    /// written before it is held everywhere.
    fn everyone_agrees_since(&self) -> Option<Timestamp> {
        let root = self.kv.root();
        let local = &self.membership.local().name;
        let mut since: Option<Timestamp> = None;
        for (_, m) in self.membership.table().iter() {
            if m.name == *local {
                continue;
            }
            let s = self.anti_entropy.summaries.get(&m.name)?;
            if s.root != root {
                return None;
            }
            since = Some(since.map_or(s.issued, |t| t.min(s.issued)));
            // (A member that never announced has an empty store, which
            // holds no tombstone: nothing can be collected early.)
        }
        since
    }

    /// The least stable time of every member, this node included: every
    /// tombstone older than it is held everywhere, and every member will
    /// collect it too (each from the same announcements), so stores agree
    /// again after collection. `None` until every member has announced one.
    fn stable_everywhere(&self) -> Option<Timestamp> {
        let local = &self.membership.local().name;
        let mut least = self.anti_entropy.stable;
        for (_, m) in self.membership.table().iter() {
            if m.name != *local {
                least = least.min(self.anti_entropy.summaries.get(&m.name)?.stable);
            }
        }
        (least > Timestamp::ZERO).then_some(least)
    }

    /// Anti-entropy timer: reconcile with one peer whose state differs.
    fn on_anti_entropy_timer(&mut self) {
        self.cx
            .set_timer(self.config.state.anti_entropy_interval, Timer::AntiEntropy);
        let local = self.membership.local().name.clone();
        let root = self.kv.root();
        let Some(peer) =
            self.anti_entropy
                .choose_peer(&mut self.cx.rng, self.membership.table(), &local, root)
        else {
            return;
        };
        self.cx.stats.anti_entropy_started += 1;
        self.start_sync(peer);
    }

    /// Start an anti-entropy exchange with the node at `peer` now, outside
    /// the periodic schedule (after a partition heals, or to measure one).
    pub fn anti_entropy_with(&mut self, now: Instant, peer: SocketAddr) {
        self.cx.now = now;
        self.cx.stats.anti_entropy_started += 1;
        self.start_sync(peer);
        self.flush();
    }

    /// Start a Merkle descent with `peer`.
    fn start_sync(&mut self, peer: SocketAddr) {
        let salt = self.cx.rng.random::<u32>();
        let msg = descent::start(self.kv.index(), salt);
        self.cx.send(
            peer,
            Channel::Stream,
            vec![Message::SyncCompare(msg)],
            false,
        );
    }

    /// Tree nodes to compare arrived: answer one level deeper, or with key
    /// lists where the nodes are small.
    fn handle_sync_compare(&mut self, from: SocketAddr, msg: &crate::sync::SyncCompare) {
        let Ok(r) = descent::respond_compare(self.kv.index(), msg, SYNC_GROUPS_PER_FRAME) else {
            self.cx.stats.dropped.invalid += 1;
            return;
        };
        for c in r.compare {
            self.cx
                .send(from, Channel::Stream, vec![Message::SyncCompare(c)], false);
        }
        let mut batch: Vec<crate::sync::SyncKeys> = Vec::new();
        let mut listed = 0;
        for k in r.keys {
            if listed + k.keys.len() > SYNC_KEYS_PER_FRAME && !batch.is_empty() {
                let full = core::mem::take(&mut batch);
                self.cx
                    .send(from, Channel::Stream, vec![Message::SyncKeys(full)], false);
                listed = 0;
            }
            listed += k.keys.len();
            batch.push(k);
        }
        if !batch.is_empty() {
            self.cx
                .send(from, Channel::Stream, vec![Message::SyncKeys(batch)], false);
        }
    }

    /// Key lists arrived: send the entries the peer lacks and ask for the
    /// ones this node lacks.
    fn handle_sync_keys(&mut self, from: SocketAddr, lists: &[crate::sync::SyncKeys]) {
        let (mut send, mut want) = (Vec::new(), Vec::new());
        for l in lists {
            match descent::respond_keys(self.kv.index(), l) {
                Ok(r) => {
                    send.extend(r.send);
                    want.extend(r.want);
                }
                Err(_) => {
                    self.cx.stats.dropped.invalid += 1;
                    return;
                }
            }
        }
        for frame in entries_frames(&self.kv, &send, want) {
            self.cx.send(
                from,
                Channel::Stream,
                vec![Message::SyncEntries(frame)],
                false,
            );
        }
    }

    /// Entries arrived at the end of a descent: merge them, and answer
    /// with the entries the peer wants.
    fn handle_sync_entries(&mut self, from: SocketAddr, e: wire::SyncEntries) {
        for (key, entry) in &e.entries {
            self.merge_entry(key, entry);
        }
        if !e.want.is_empty() {
            for frame in entries_frames(&self.kv, &e.want, Vec::new()) {
                self.cx.send(
                    from,
                    Channel::Stream,
                    vec![Message::SyncEntries(frame)],
                    false,
                );
            }
        }
    }

    /// Number of membership updates waiting to be gossiped.
    pub fn queued_broadcasts(&self) -> usize {
        self.membership.queued_broadcasts()
    }
}

/// Give back the memory of an output queue once a burst (a join reply emits
/// one event per member) has been drained.
fn release_if_drained<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 64 {
        *queue = VecDeque::new();
    }
}
