//! The SWIM probe cycle with Lifeguard's nacks and buddy system.
//!
//! Every probe interval (stretched by local health) the next member in a
//! shuffled round-robin order is pinged. No ack within the probe timeout:
//! `indirect_checks` other members are asked to ping it for us (answering
//! with a nack if they cannot reach it either), and one ping goes over the
//! stream channel in case datagrams are blocked. No ack by the end of the
//! probe interval: the member is suspected. A member already suspected is
//! told so first, in the same packet as the ping (buddy system), so it can
//! refute at once.

use std::net::SocketAddr;

use rand::RngExt;
use rand::seq::SliceRandom;

use super::Membership;
use super::member::{MemberState, NodeName};
use super::table::{MemberId, MemberTable};
use crate::context::Context;
use crate::event::Event;
use crate::timer::Timer;
use crate::transmit::Channel;
use crate::wire::{Ack, IndirectPing, Message, Nack, Ping};

/// Indirect probes this node will relay at once for others; more are refused.
pub const MAX_RELAYS: usize = 1024;

/// An ack this node is waiting for.
#[derive(Clone, Debug)]
pub enum Pending {
    /// Our own probe of `target`.
    Probe {
        /// The probed member.
        target: MemberId,
        /// Its name, to notice a reused slot.
        name: NodeName,
        /// Indirect probers asked who promised a nack.
        nacks_expected: u32,
        /// Nacks received.
        nacks: u32,
    },
    /// An indirect probe relayed for `requester`.
    Relay {
        /// Who asked.
        requester: SocketAddr,
        /// Their sequence number.
        seq: u32,
        /// Whether they want a nack on failure.
        want_nack: bool,
    },
}

/// Shuffled round-robin order of probe targets.
///
/// New members are inserted at a random position among those not yet probed
/// this round; at the end of a round the order is rebuilt from the table and
/// shuffled, which also drops ids of reaped members.
#[derive(Debug, Default)]
pub struct ProbeOrder {
    ids: Vec<MemberId>,
    next: usize,
}

impl ProbeOrder {
    /// Make room for `additional` more members.
    pub fn reserve(&mut self, additional: usize) {
        self.ids.reserve_exact(additional);
    }

    /// Add a new member to the current round at a random place.
    pub fn add(&mut self, id: MemberId, rng: &mut impl rand::Rng) {
        self.ids.push(id);
        let last = self.ids.len() - 1;
        if last > self.next {
            let j = rng.random_range(self.next..=last);
            self.ids.swap(j, last);
        }
    }

    /// The next member to probe: active and not `local`.
    pub fn next_target(
        &mut self,
        table: &MemberTable,
        local: MemberId,
        rng: &mut impl rand::Rng,
    ) -> Option<MemberId> {
        for pass in 0..2 {
            while self.next < self.ids.len() {
                let id = self.ids[self.next];
                self.next += 1;
                if id != local && table.get(id).is_some_and(|m| m.state.is_active()) {
                    return Some(id);
                }
            }
            if pass == 0 {
                self.ids = table.ids();
                self.ids.shuffle(rng);
                self.next = 0;
            }
        }
        None
    }
}

impl Membership {
    /// Probe timer: start the next probe.
    pub(crate) fn on_probe_timer(&mut self, cx: &mut Context) {
        if self.leaving {
            return;
        }
        let interval = self.scaled(self.config.probe_interval);
        self.start_probe(cx, interval);
        // Set after the probe's own deadline, so that at the same instant the
        // deadline is handled (and local health updated) before the next probe.
        cx.set_timer(interval, Timer::Probe);
    }

    fn start_probe(&mut self, cx: &mut Context, interval: core::time::Duration) {
        let Some(target) = self
            .probe_order
            .next_target(&self.table, self.local, &mut cx.rng)
        else {
            return;
        };
        let seq = self.next_seq();
        let Some(m) = self.table.get(target) else {
            return;
        };
        // The ping goes first so that it is never the message left out.
        let mut msgs = vec![Message::Ping(Ping {
            seq,
            target: m.name.clone(),
        })];
        if self.config.lifeguard && m.state == MemberState::Suspect {
            // Buddy system: the suspect hears of its suspicion in the probe
            // itself and refutes at once (its ack carries the refutation).
            if let Some(announcement) = self.announcement(target) {
                msgs.push(announcement);
            }
        }
        let (addr, name) = (m.socket_addr(), m.name.clone());
        cx.send(addr, Channel::Datagram, msgs, true);
        self.pending.insert(
            seq,
            Pending::Probe {
                target,
                name,
                nacks_expected: 0,
                nacks: 0,
            },
        );
        cx.set_timer(
            self.scaled(self.config.probe_timeout),
            Timer::ProbeTimeout(seq),
        );
        cx.set_timer(interval, Timer::ProbeDeadline(seq));
        cx.stats.probes += 1;
    }

    /// The direct ack is late: ask others to probe, and try the stream channel.
    pub(crate) fn on_probe_timeout(&mut self, cx: &mut Context, seq: u32) {
        let Some((target, name, addr)) = self.probe_target(seq) else {
            // A probe whose slot now holds another member is dropped.
            if matches!(self.pending.get(&seq), Some(Pending::Probe { .. })) {
                self.pending.remove(&seq);
            }
            return;
        };
        let local = self.local;
        let peers = self
            .table
            .sample(&mut cx.rng, self.config.indirect_checks, |id, m| {
                id != local && id != target && m.state == MemberState::Alive
            });
        let want_nack = self.config.lifeguard;
        for &peer in &peers {
            if let Some(p) = self.table.get(peer) {
                let req = IndirectPing {
                    seq,
                    target: name.clone(),
                    addr,
                    want_nack,
                };
                cx.send(
                    p.socket_addr(),
                    Channel::Datagram,
                    vec![Message::IndirectPing(req)],
                    true,
                );
            }
        }
        if let Some(Pending::Probe { nacks_expected, .. }) = self.pending.get_mut(&seq)
            && want_nack
        {
            *nacks_expected = peers.len() as u32;
        }
        if self.config.stream_fallback_probe {
            // Halfway between the timeout and the deadline: on a network
            // that loses some datagrams, the indirect probes answer first
            // nearly every time, and a stream connection (a handful of
            // packets with its handshake) is opened only when they did not.
            let interval = self.scaled(self.config.probe_interval);
            let timeout = self.scaled(self.config.probe_timeout);
            cx.set_timer(
                interval.saturating_sub(timeout) / 2,
                Timer::StreamProbe(seq),
            );
        }
        cx.stats.indirect_probes += 1;
    }

    /// Neither the direct nor an indirect ack has come: try the stream
    /// channel, which still reaches a member whose datagrams are dropped.
    pub(crate) fn on_stream_probe(&mut self, cx: &mut Context, seq: u32) {
        let Some((_, name, addr)) = self.probe_target(seq) else {
            return;
        };
        cx.send(
            addr,
            Channel::Stream,
            vec![Message::Ping(Ping { seq, target: name })],
            false,
        );
    }

    /// The target of own probe `seq`, if it is still pending and its slot
    /// still holds the member it was sent to: id, name and address.
    fn probe_target(&self, seq: u32) -> Option<(MemberId, NodeName, SocketAddr)> {
        let Some(Pending::Probe { target, name, .. }) = self.pending.get(&seq) else {
            return None;
        };
        let m = self.table.get(*target).filter(|m| &m.name == name)?;
        Some((*target, name.clone(), m.socket_addr()))
    }

    /// Whether `timer` belongs to a probe or relay that is no longer
    /// pending (answered, or given up): firing it would do nothing.
    pub(crate) fn is_stale(&self, timer: Timer) -> bool {
        match timer {
            Timer::ProbeTimeout(seq) | Timer::StreamProbe(seq) | Timer::ProbeDeadline(seq) => {
                !matches!(self.pending.get(&seq), Some(Pending::Probe { .. }))
            }
            Timer::RelayTimeout(seq) => {
                !matches!(self.pending.get(&seq), Some(Pending::Relay { .. }))
            }
            _ => false,
        }
    }

    /// The probe period ended without an ack: adjust local health and suspect.
    pub(crate) fn on_probe_deadline(&mut self, cx: &mut Context, seq: u32) {
        let Some(Pending::Probe {
            target,
            name,
            nacks_expected,
            nacks,
        }) = self.pending.remove(&seq)
        else {
            return;
        };
        if self.config.lifeguard {
            let delta = if nacks_expected > 0 {
                nacks_expected.saturating_sub(nacks)
            } else {
                1
            };
            self.awareness.apply(delta as i32);
        }
        let Some(m) = self
            .table
            .get(target)
            .filter(|m| m.name == name && m.state.is_active())
        else {
            return;
        };
        let incarnation = m.incarnation;
        let me = self.local_name().clone();
        cx.stats.failed_probes += 1;
        self.apply_suspect(cx, incarnation, &name, &me, true);
    }

    /// A ping: answer if it is meant for us.
    pub(crate) fn handle_ping(
        &mut self,
        cx: &mut Context,
        from: SocketAddr,
        channel: Channel,
        ping: Ping,
    ) {
        if &ping.target != self.local_name() {
            cx.stats.dropped.misdirected += 1;
            return;
        }
        let piggyback = channel == Channel::Datagram;
        cx.send(
            from,
            channel,
            vec![Message::Ack(Ack {
                seq: ping.seq,
                digest: self.table.digest(),
            })],
            piggyback,
        );
    }

    /// A request to probe someone on another member's behalf.
    pub(crate) fn handle_indirect_ping(
        &mut self,
        cx: &mut Context,
        from: SocketAddr,
        req: IndirectPing,
    ) {
        if self.pending.len() >= MAX_RELAYS {
            cx.stats.dropped.overload += 1;
            return;
        }
        let seq = self.next_seq();
        self.pending.insert(
            seq,
            Pending::Relay {
                requester: from,
                seq: req.seq,
                want_nack: req.want_nack,
            },
        );
        cx.send(
            req.addr,
            Channel::Datagram,
            vec![Message::Ping(Ping {
                seq,
                target: req.target,
            })],
            true,
        );
        cx.set_timer(self.relay_timeout(), Timer::RelayTimeout(seq));
    }

    /// How long a relay waits for the target before it nacks.
    ///
    /// The requester sent its indirect ping one probe timeout into its probe
    /// and gives up at the probe interval, so a nack sent after a full probe
    /// timeout (as memberlist does) arrives too late to count, and every
    /// failed probe of a dead node would look like missing nacks. The relay
    /// nacks after 80% of the requester's remaining window instead (at most
    /// one probe timeout).
    pub(crate) fn relay_timeout(&self) -> core::time::Duration {
        let window = self
            .config
            .probe_interval
            .saturating_sub(self.config.probe_timeout);
        self.config.probe_timeout.min(window.mul_f64(0.8))
    }

    /// A relayed probe got no ack in time: nack if asked to.
    pub(crate) fn on_relay_timeout(&mut self, cx: &mut Context, seq: u32) {
        if let Some(Pending::Relay {
            requester,
            seq,
            want_nack,
        }) = self.pending.remove(&seq)
            && want_nack
        {
            cx.send(
                requester,
                Channel::Datagram,
                vec![Message::Nack(Nack { seq })],
                true,
            );
        }
    }

    /// An ack: our probe succeeded, or a relayed one did.
    pub(crate) fn handle_ack(&mut self, cx: &mut Context, channel: Channel, ack: Ack) {
        match self.pending.remove(&ack.seq) {
            Some(Pending::Probe { target, name, .. }) => {
                if self.config.lifeguard {
                    self.awareness.apply(-1);
                }
                if channel == Channel::Stream
                    && let Some(m) = self.table.get(target)
                {
                    // Only the fallback probe went out on the stream channel:
                    // the member is up, but its datagrams did not get through.
                    cx.stats.stream_only_acks += 1;
                    cx.emit(Event::DatagramsFailing {
                        name: name.clone(),
                        addr: m.socket_addr(),
                    });
                }
                self.compare_digest(cx, target, &name, ack.digest);
            }
            Some(Pending::Relay { requester, seq, .. }) => {
                let ack = Ack {
                    seq,
                    digest: ack.digest,
                };
                cx.send(requester, Channel::Datagram, vec![Message::Ack(ack)], true);
            }
            None => {}
        }
    }

    /// A nack from an indirect prober.
    pub(crate) fn handle_nack(&mut self, nack: Nack) {
        if let Some(Pending::Probe { nacks, .. }) = self.pending.get_mut(&nack.seq) {
            *nacks += 1;
        }
    }
}
