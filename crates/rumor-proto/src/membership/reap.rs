//! Reaping dead and left members, and reconnecting to the ones that may be
//! on the far side of a partition.
//!
//! Every `reap_interval`, dead members older than `dead_reap_after` and left
//! members older than `left_reap_after` are removed from the table. A reaped
//! dead member's address is kept as a *former member* until
//! `reconnect_timeout` (bounded to [`MAX_FORMER`] entries).
//!
//! Every `reconnect_interval` (more often while this node knows no other
//! active member), one push-pull goes to a random candidate among dead
//! members, former members and seeds that are not alive members, with
//! probability `candidates / active members` (capped at 1) so that a large
//! cluster does not flood a few failed addresses. If the
//! partition has healed, the exchange re-merges both sides: unknown members
//! are accepted, and members the other side declared dead refute it. This is
//! what lets a partition that outlasted the dead-node timeout heal by itself.

use std::net::SocketAddr;

use rand::RngExt;

use super::Membership;
use super::member::{MemberState, NodeName};
use crate::context::Context;
use crate::event::{Event, MemberEvent, MemberEventKind};
use crate::time::Instant;
use crate::timer::Timer;

/// Most former members remembered for reconnection.
pub const MAX_FORMER: usize = 1024;

/// A reaped dead member still worth trying.
#[derive(Clone, Debug)]
pub struct Former {
    /// Its name.
    pub name: NodeName,
    /// Its last known address.
    pub addr: SocketAddr,
    /// When it was reaped.
    pub reaped: Instant,
}

impl Membership {
    /// Reap timer: remove long-dead and long-left members.
    pub(crate) fn on_reap_timer(&mut self, cx: &mut Context) {
        cx.set_timer(self.config.reap_interval, Timer::Reap);
        let now = cx.now;
        // Only dead and left members are reaped: with none, skip the scan.
        let due: Vec<_> = if self.table.has_inactive() {
            self.table
                .iter()
                .filter(|(_, m)| match m.state {
                    MemberState::Dead => now - m.since >= self.config.dead_reap_after,
                    MemberState::Left => now - m.since >= self.config.left_reap_after,
                    _ => false,
                })
                .map(|(id, _)| id)
                .collect()
        } else {
            Vec::new()
        };
        for id in due {
            if id == self.local {
                continue;
            }
            let Some(m) = self.table.remove(id) else {
                continue;
            };
            self.queue.remove(id);
            self.suspicions.remove(&id);
            cx.emit(Event::Member(MemberEvent::new(MemberEventKind::Reaped, &m)));
            if m.state == MemberState::Dead {
                if self.former.len() >= MAX_FORMER {
                    self.former.pop_front();
                }
                self.former.push_back(Former {
                    name: m.name,
                    addr: m.addr.get(),
                    reaped: now,
                });
            }
        }
        let timeout = self.config.reconnect_timeout;
        self.former.retain(|f| now - f.reaped < timeout);
    }

    /// Whether this node knows no other alive or suspect member.
    pub(crate) fn is_alone(&self) -> bool {
        self.table.active_count() <= 1
    }

    /// Reconnect timer: one push-pull towards a member we lost touch with.
    pub(crate) fn on_reconnect_timer(&mut self, cx: &mut Context) {
        let alone = self.is_alone();
        let interval = if alone {
            self.config
                .reconnect_interval
                .min(self.config.probe_interval * 2)
        } else {
            self.config.reconnect_interval
        };
        cx.set_timer(interval, Timer::Reconnect);
        if self.leaving {
            return;
        }
        let active_addr = |addr: &SocketAddr| {
            self.table
                .iter()
                .any(|(_, m)| m.state.is_active() && m.socket_addr() == *addr)
        };
        let mut candidates: Vec<SocketAddr> = if self.table.has_inactive() {
            self.table
                .iter()
                .filter(|(_, m)| m.state == MemberState::Dead)
                .map(|(_, m)| m.socket_addr())
                .collect()
        } else {
            Vec::new()
        };
        candidates.extend(self.former.iter().map(|f| f.addr));
        let seeds: Vec<SocketAddr> = self
            .seeds
            .iter()
            .filter(|s| !active_addr(s))
            .copied()
            .collect();
        candidates.extend(seeds);
        if candidates.is_empty() {
            return;
        }
        // As Serf does: with many nodes each trying, one attempt per interval
        // per failed member across the cluster is plenty.
        let chance = candidates.len() as f64 / self.table.active_count().max(1) as f64;
        if !alone && !cx.rng.random_bool(chance.min(1.0)) {
            return;
        }
        let addr = candidates[cx.rng.random_range(0..candidates.len())];
        self.send_push_pull(cx, addr, alone);
    }
}
