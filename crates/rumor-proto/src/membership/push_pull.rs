//! Join, the periodic full-state push-pull exchange, and the installation
//! of a formed cluster's members without either.
//!
//! A push-pull sends this node's whole member table over the stream channel;
//! the receiver merges it and answers with its own. A joining node does this
//! with its seeds. Every node also does it with one random member every
//! `push_pull_interval` (scaled up with cluster size), which repairs anything
//! gossip missed.
//!
//! Merging follows the update rules, except that a member the sender lists as
//! dead or suspect is only *suspected* here: it gets the chance to refute.
//! What a joiner learns from its seed's reply is not re-gossiped (the cluster
//! already knows it); everything else learned by push-pull is.

use std::net::SocketAddr;

use super::Membership;
use super::member::{Member, MemberState, NodeName};
use super::table::{MemberId, MembershipDigest};
use crate::context::Context;
use crate::timer::Timer;
use crate::transmit::Channel;
use crate::wire::{MemberEntry, Message, PushPull};

/// Most push-pulls a node makes after one join to learn the members that
/// joined with it (see [`Membership::schedule_join_sync`]).
pub(crate) const MAX_JOIN_SYNCS: u8 = 4;

/// Seeds remembered for reconnection.
pub const MAX_SEEDS: usize = 64;

impl Membership {
    /// This node's full state, as sent in a push-pull.
    pub(crate) fn push_pull_message(&self, join: bool, reply: bool) -> Message {
        let members = self
            .table
            .iter()
            .map(|(_, m)| MemberEntry {
                node: m.name.clone(),
                addr: m.socket_addr(),
                incarnation: m.incarnation,
                state: m.state,
                tags: m.tags().clone(),
            })
            .collect();
        Message::PushPull(PushPull {
            join,
            reply,
            from: self.local_name().clone(),
            members,
        })
    }

    /// Start a push-pull with `addr`.
    pub(crate) fn send_push_pull(&mut self, cx: &mut Context, addr: SocketAddr, join: bool) {
        let msg = self.push_pull_message(join, false);
        cx.send(addr, Channel::Stream, vec![msg], false);
    }

    /// Join through `seeds`: remember them and push-pull with each; until
    /// one answers, send the join again (see [`Self::on_join_retry_timer`]).
    pub(crate) fn join(&mut self, cx: &mut Context, seeds: Vec<SocketAddr>) {
        let own = self.local().socket_addr();
        let mut sent = false;
        for seed in seeds {
            if seed != own && !self.seeds.contains(&seed) && self.seeds.len() < MAX_SEEDS {
                self.seeds.push(seed);
            }
            if seed != own {
                self.send_push_pull(cx, seed, true);
                sent = true;
            }
        }
        if sent {
            // The first retry is not jittered: joins are spread by whoever
            // starts them, and a join answered in time draws nothing from
            // the random stream.
            let first = self
                .config
                .probe_timeout
                .min(self.config.reconnect_interval);
            self.join_retry = Some(first);
            if !self.join_retry_armed {
                cx.set_timer(first, Timer::JoinRetry);
                self.join_retry_armed = true;
            }
        }
    }

    /// Join-retry timer: no seed has answered the join yet. A request or
    /// its reply can be lost (a seed busy with a burst of joins refuses
    /// connections), and without this the joiner would wait for the
    /// reconnect timer, up to `reconnect_interval`. The join goes to every
    /// remembered seed again, and the delay doubles up to
    /// `reconnect_interval`.
    pub(crate) fn on_join_retry_timer(&mut self, cx: &mut Context) {
        self.join_retry_armed = false;
        let Some(delay) = self.join_retry else {
            return;
        };
        if self.leaving {
            self.join_retry = None;
            return;
        }
        for seed in self.seeds.clone() {
            self.send_push_pull(cx, seed, true);
        }
        let next = (delay * 2).min(self.config.reconnect_interval);
        self.join_retry = Some(next);
        use rand::RngExt;
        let jittered = next.mul_f64(cx.rng.random_range(1.0..1.5));
        cx.set_timer(jittered, Timer::JoinRetry);
        self.join_retry_armed = true;
    }

    /// Add `members` not yet known as they are, without gossip or events
    /// (see `Node::install_members`). Returns how many were added.
    pub(crate) fn install(
        &mut self,
        cx: &mut Context,
        members: impl Iterator<Item = Member>,
    ) -> usize {
        let (least, most) = members.size_hint();
        let expected = most.unwrap_or(least);
        self.table.reserve(expected);
        self.probe_order.reserve(expected);
        let mut added = 0;
        for member in members {
            if !self.former.is_empty() {
                self.former.retain(|f| f.name != member.name);
            }
            let Some(id) = self.table.insert_if_absent(member) else {
                continue;
            };
            self.probe_order.add(id, &mut cx.rng);
            added += 1;
        }
        added
    }

    /// After a join, push-pull again with a random member once gossip
    /// about the concurrent joins has begun to spread (a random time in
    /// `[T/10, T/6)`, with `T` = [`Self::settle_time`]), and again after as
    /// long while each such sync still brings members this node did not
    /// know, at most [`MAX_JOIN_SYNCS`] times.
    ///
    /// Members that joined after the seed answered are otherwise known here
    /// only if their rumor reached this node; but in a burst of joins those
    /// rumors spread while this node was itself too new to be anyone's
    /// gossip target, and a few pairs of joiners stay unknown to each other
    /// (about 1% of pairs when a cluster starts all at once). An early sync
    /// repairs most of that; one that still brings news says the burst is
    /// not over, so the node looks again. A join into a settled cluster
    /// costs one sync that brings nothing.
    fn schedule_join_sync(&mut self, cx: &mut Context) {
        use rand::RngExt;
        let delay = self
            .settle_time()
            .mul_f64(cx.rng.random_range(0.1..1.0 / 6.0));
        cx.set_timer(delay, Timer::JoinSync);
        self.join_sync_pending = true;
    }

    /// How long a rumor takes to run its course: retransmit limit × gossip
    /// interval. Views that still differ after this will not converge by
    /// gossip alone.
    pub(crate) fn settle_time(&self) -> core::time::Duration {
        self.config.gossip_interval * self.retransmit_limit()
    }

    /// Compare a probed member's membership digest (from its ack) with ours.
    ///
    /// Rumor mongering leaves a small residue: members some node never
    /// heard of. When the digests have differed for longer than
    /// [`Self::settle_time`], this node push-pulls with the member it just
    /// probed, at most once per four settle times. In a steady cluster the
    /// digests agree and this costs nothing but the eight bytes in each ack.
    pub(crate) fn compare_digest(
        &mut self,
        cx: &mut Context,
        peer: MemberId,
        name: &NodeName,
        theirs: MembershipDigest,
    ) {
        if theirs == self.table.digest() {
            self.digest_mismatch_since = None;
            self.digest_matched = true;
            return;
        }
        let now = cx.now;
        let settle = self.settle_time();
        let since = *self.digest_mismatch_since.get_or_insert(now);
        let recently = self.last_digest_sync.is_some_and(|t| now - t < settle * 4);
        if now - since < settle || recently {
            return;
        }
        let Some(addr) = self
            .table
            .get(peer)
            .filter(|m| &m.name == name)
            .map(|m| m.socket_addr())
        else {
            return;
        };
        self.digest_mismatch_since = None;
        self.last_digest_sync = Some(now);
        self.send_push_pull(cx, addr, false);
    }

    /// Join-sync timer: one push-pull with a random alive member.
    pub(crate) fn on_join_sync_timer(&mut self, cx: &mut Context) {
        self.join_sync_pending = false;
        self.join_syncs_left = self.join_syncs_left.saturating_sub(1);
        self.join_sync_peer = self.push_pull_random_peer(cx);
    }

    /// Push-pull as a joiner with `addrs` without remembering them as seeds
    /// (members remembered from before a restart).
    pub(crate) fn rejoin(&mut self, cx: &mut Context, addrs: &[SocketAddr]) {
        let own = self.local().socket_addr();
        for &addr in addrs.iter().filter(|&&a| a != own) {
            self.send_push_pull(cx, addr, true);
        }
    }

    /// Periodic push-pull with one random alive member.
    pub(crate) fn on_push_pull_timer(&mut self, cx: &mut Context) {
        let interval = self
            .config
            .push_pull_interval_for(self.table.active_count());
        if interval.is_zero() {
            return;
        }
        cx.set_timer(interval, Timer::PushPull);
        // An ack since the last one carried a digest equal to ours (the
        // same active members at the same incarnations), and none differs
        // now: the two views agree, and a full exchange would bring
        // nothing. A difference still leads to a push-pull, within a
        // settle time, through `compare_digest`.
        if std::mem::take(&mut self.digest_matched) && self.digest_mismatch_since.is_none() {
            cx.stats.push_pulls_skipped += 1;
            return;
        }
        let _ = self.push_pull_random_peer(cx);
    }

    /// Push-pull with one random alive member (unless leaving).
    fn push_pull_random_peer(&mut self, cx: &mut Context) -> Option<SocketAddr> {
        if self.leaving {
            return None;
        }
        let local = self.local;
        let peer = self.table.sample(&mut cx.rng, 1, |id, m| {
            id != local && m.state == MemberState::Alive
        });
        if let Some(addr) = peer
            .first()
            .and_then(|&id| self.table.get(id))
            .map(|m| m.socket_addr())
        {
            self.send_push_pull(cx, addr, false);
            return Some(addr);
        }
        None
    }

    /// A push-pull request or reply arrived.
    ///
    /// The state is merged before a request is answered, so the reply
    /// already carries any refutation the request provoked (the sender
    /// listed this node as dead): a partition heals in fewer exchanges.
    pub(crate) fn handle_push_pull(&mut self, cx: &mut Context, from: SocketAddr, pp: PushPull) {
        let PushPull {
            join,
            reply,
            from: sender,
            members,
        } = pp;
        // A joiner does not re-gossip the cluster's state back to it.
        let gossip = !(reply && join);
        let known_before = self.table.len();
        let answers_join_sync = reply && !join && self.join_sync_peer == Some(from);
        for e in members {
            match e.state {
                MemberState::Alive => {
                    self.apply_alive(cx, e.incarnation, &e.node, e.addr, &e.tags, gossip)
                }
                MemberState::Left => self.apply_left(cx, e.incarnation, &e.node, gossip),
                MemberState::Dead | MemberState::Suspect => {
                    self.apply_suspect(cx, e.incarnation, &e.node, &sender, gossip)
                }
            }
        }
        if reply && join {
            self.join_retry = None;
        }
        // Scheduled after the merge, so that the settle time reflects the
        // cluster just joined rather than a table of one.
        if reply && join && !self.join_sync_pending {
            self.join_syncs_left = MAX_JOIN_SYNCS;
            self.schedule_join_sync(cx);
        }
        if answers_join_sync {
            self.join_sync_peer = None;
            let news = self.table.len() > known_before;
            if news && self.join_syncs_left > 0 && !self.join_sync_pending {
                self.schedule_join_sync(cx);
            }
        }
        if !reply {
            let answer = self.push_pull_message(join, true);
            cx.send(from, Channel::Stream, vec![answer], false);
        }
    }
}
