//! Membership and failure detection: SWIM with the Lifeguard refinements.
//!
//! - [`member`]: what a member is; [`table`]: where members are kept;
//! - [`probe`]: the probe cycle (ping, indirect ping, nack, suspect);
//! - [`suspicion`]: Lifeguard's dynamic suspicion timeout;
//! - [`awareness`]: Lifeguard's local health score;
//! - [`updates`]: the rules for alive, suspect, dead and left updates, and
//!   refutation;
//! - [`push_pull`]: join and the periodic full-state exchange;
//! - [`reap`]: removal of dead and left members, and reconnection to dead
//!   members, former members and seeds.
//!
//! `docs/membership.md` describes the protocol as implemented.

pub mod awareness;
pub mod member;
pub mod probe;
pub mod push_pull;
pub mod reap;
pub mod suspicion;
pub mod table;
pub mod updates;

use std::collections::VecDeque;

use crate::fast_map::FastMap;
use std::net::SocketAddr;

use crate::config::Config;
use crate::dissemination::{Offer, TransmitQueue};
use crate::wire::frame::encode_message;
use crate::wire::{Alive, Dead, Left, Message, PacketBuilder, Suspect};
use awareness::Awareness;
use member::{Member, MemberState, NodeName};
use probe::{Pending, ProbeOrder};
use reap::Former;
use suspicion::Suspicion;
use table::{MemberId, MemberTable};

/// Smallest encoded broadcast; below this much room a packet is full.
const MIN_BROADCAST_BYTES: usize = 12;

/// A node's membership state machine.
#[derive(Debug)]
pub struct Membership {
    pub(crate) config: Config,
    pub(crate) table: MemberTable,
    pub(crate) local: MemberId,
    pub(crate) probe_order: ProbeOrder,
    pub(crate) pending: FastMap<u32, Pending>,
    pub(crate) next_seq: u32,
    pub(crate) suspicions: FastMap<MemberId, Suspicion>,
    pub(crate) awareness: Awareness,
    pub(crate) queue: TransmitQueue<MemberId>,
    pub(crate) seeds: Vec<SocketAddr>,
    pub(crate) former: VecDeque<Former>,
    pub(crate) leaving: bool,
    pub(crate) join_sync_pending: bool,
    /// Join syncs this join may still make.
    pub(crate) join_syncs_left: u8,
    /// Where the outstanding join sync went (its answer is checked for news).
    pub(crate) join_sync_peer: Option<SocketAddr>,
    /// While a join is unanswered: the delay before it is sent again.
    pub(crate) join_retry: Option<core::time::Duration>,
    /// Whether a JoinRetry timer is set.
    pub(crate) join_retry_armed: bool,
    /// Since when the digests in acks to our probes differ from ours.
    pub(crate) digest_mismatch_since: Option<crate::time::Instant>,
    /// The last push-pull a digest mismatch started.
    pub(crate) last_digest_sync: Option<crate::time::Instant>,
    /// Whether an ack's digest matched ours since the last periodic
    /// push-pull was due: if so, and none differs now, that exchange would
    /// bring nothing and is skipped.
    pub(crate) digest_matched: bool,
    /// Whether news worth an eager gossip round was queued since the node
    /// last looked (a `dead` or `left` verdict, or a refutation).
    pub(crate) urgent: bool,
    scratch: Vec<u8>,
}

impl Membership {
    /// A membership of one: this node, alive.
    pub(crate) fn new(config: Config, local: Member) -> Self {
        let mut table = MemberTable::default();
        let awareness = Awareness::new(config.awareness_max_multiplier);
        let local = table.insert(local);
        let mut m = Membership {
            config,
            table,
            local,
            probe_order: ProbeOrder::default(),
            pending: FastMap::default(),
            next_seq: 0,
            suspicions: FastMap::default(),
            awareness,
            queue: TransmitQueue::default(),
            seeds: Vec::new(),
            former: VecDeque::new(),
            leaving: false,
            join_sync_pending: false,
            join_syncs_left: 0,
            join_sync_peer: None,
            join_retry: None,
            join_retry_armed: false,
            digest_mismatch_since: None,
            last_digest_sync: None,
            digest_matched: false,
            urgent: false,
            scratch: Vec::new(),
        };
        m.queue.push(local);
        m
    }

    /// This node's own entry.
    pub fn local(&self) -> &Member {
        match self.table.get(self.local) {
            Some(m) => m,
            None => unreachable!("the local member is never removed"),
        }
    }

    /// This node's name.
    pub fn local_name(&self) -> &NodeName {
        &self.local().name
    }

    /// The member table.
    pub fn table(&self) -> &MemberTable {
        &self.table
    }

    /// The local health score (0 is healthy).
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// Whether urgent news was queued since the last call (and forget it).
    pub(crate) fn take_urgent(&mut self) -> bool {
        core::mem::take(&mut self.urgent)
    }

    /// Number of membership updates waiting to be gossiped.
    pub fn queued_broadcasts(&self) -> usize {
        self.queue.len()
    }

    /// Whether this node has left (or is leaving) the cluster.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// The local health multiplier applies only in Lifeguard mode.
    pub(crate) fn scaled(&self, d: core::time::Duration) -> core::time::Duration {
        if self.config.lifeguard {
            self.awareness.scale(d)
        } else {
            d
        }
    }

    /// Retransmit limit for the current cluster size.
    pub(crate) fn retransmit_limit(&self) -> u32 {
        self.config.retransmit_limit(self.table.active_count())
    }

    /// The gossip message that announces a member's current state.
    pub(crate) fn announcement(&self, id: MemberId) -> Option<Message> {
        announcement(&self.table, &self.suspicions, self.local, id)
    }

    /// Fill the rest of `packet`, bound for `to`, with queued membership
    /// updates. A member's own `alive` is not sent to it: that would spend a
    /// transmission on the one node that needs no telling.
    pub(crate) fn fill_packet(&mut self, packet: &mut PacketBuilder, to: SocketAddr) {
        let limit = self.retransmit_limit();
        let Membership {
            queue,
            table,
            suspicions,
            local,
            scratch,
            ..
        } = self;
        queue.fill(limit, |id| {
            if packet.remaining() < MIN_BROADCAST_BYTES {
                return Offer::Full;
            }
            if table
                .get(id)
                .is_some_and(|m| m.socket_addr() == to && m.state == MemberState::Alive)
            {
                return Offer::Skipped;
            }
            let Some(msg) = announcement(table, suspicions, *local, id) else {
                return Offer::Stale;
            };
            scratch.clear();
            if encode_message(&msg, scratch).is_err() {
                return Offer::Stale;
            }
            if packet.push_encoded(scratch) {
                Offer::Taken
            } else {
                Offer::Skipped
            }
        });
    }
}

/// The message announcing member `id`'s current state, as gossiped.
fn announcement(
    table: &MemberTable,
    suspicions: &FastMap<MemberId, Suspicion>,
    local: MemberId,
    id: MemberId,
) -> Option<Message> {
    let m = table.get(id)?;
    let local_name = || table.get(local).map(|l| l.name.clone());
    let node = m.name.clone();
    let incarnation = m.incarnation;
    Some(match m.state {
        MemberState::Alive => Message::Alive(Alive {
            incarnation,
            node,
            addr: m.socket_addr(),
            tags: m.tags().clone(),
        }),
        MemberState::Suspect => {
            let from = match suspicions.get(&id) {
                Some(s) => s.from.clone(),
                None => local_name()?,
            };
            Message::Suspect(Suspect {
                incarnation,
                node,
                from,
            })
        }
        MemberState::Dead => Message::Dead(Dead {
            incarnation,
            node,
            from: local_name()?,
        }),
        MemberState::Left => Message::Left(Left { incarnation, node }),
    })
}
