//! The rules for membership updates, and refutation.
//!
//! An update about a member carries an incarnation. Only the member itself
//! raises its incarnation, so for any member:
//!
//! - `alive(i)` overrides anything at an incarnation below `i`;
//! - `suspect(i)` overrides `alive(j)` for `j <= i`;
//! - `dead(i)` and `left(i)` override `alive(j)` and `suspect(j)` for `j <= i`;
//! - an update about the node itself that contradicts it (suspect, dead,
//!   left, or alive with other address or tags) at an incarnation not below
//!   its own is refuted: it raises its incarnation above the one heard and
//!   gossips `alive`; a suspect, dead or left below its own incarnation
//!   makes it gossip its current `alive` again (the accuser missed the
//!   refutation).
//!
//! Every accepted change is queued for gossip (unless the caller says the
//! news is already known everywhere) and reported as a [`MemberEvent`].

use std::net::SocketAddr;

use super::Membership;
use super::member::{Incarnation, Member, MemberState, NodeName, Tags, boxed_tags};
use super::suspicion::Suspicion;
use super::table::MemberId;
use crate::context::Context;
use crate::event::{Event, MemberEvent, MemberEventKind};
use crate::timer::Timer;

impl Membership {
    fn emit(&self, cx: &mut Context, kind: MemberEventKind, id: MemberId) {
        if let Some(m) = self.table.get(id) {
            cx.emit(Event::Member(MemberEvent::new(kind, m)));
        }
    }

    fn announce(&mut self, id: MemberId, gossip: bool) {
        if gossip {
            self.queue.push(id);
        }
    }

    /// Raise this node's incarnation above `heard` and announce it alive.
    pub(crate) fn refute(&mut self, cx: &mut Context, heard: Incarnation) {
        let local = self.local;
        let incarnation = self.local().incarnation.max(heard).saturating_add(1);
        self.table.update(local, |m| m.incarnation = incarnation);
        self.queue.push(local);
        self.urgent = true;
        cx.stats.refutations += 1;
        if self.config.lifeguard {
            self.awareness.apply(1);
        }
        cx.emit(Event::Refuted { incarnation });
    }

    /// Someone says this node is suspect, dead or gone, at `incarnation`.
    /// At or above our incarnation it is refuted. Below it, the accuser has
    /// not heard the refutation yet (it may have been spent on peers that
    /// could not hear it): announce our current state again, without
    /// raising the incarnation, unless that announcement is still queued.
    fn answer_accusation(&mut self, cx: &mut Context, incarnation: Incarnation) {
        if self.leaving {
            return;
        }
        if incarnation >= self.local().incarnation {
            self.refute(cx, incarnation);
        } else if !self.queue.contains(self.local) {
            self.queue.push(self.local);
        }
    }

    /// An `alive` update.
    pub(crate) fn apply_alive(
        &mut self,
        cx: &mut Context,
        incarnation: Incarnation,
        name: &NodeName,
        addr: SocketAddr,
        tags: &Tags,
        gossip: bool,
    ) {
        if name == self.local_name() {
            let me = self.local();
            let differs = me.addr != addr || me.tags() != tags;
            if self.leaving
                || incarnation < me.incarnation
                || (incarnation == me.incarnation && !differs)
            {
                return;
            }
            if me.addr != addr {
                cx.emit(Event::NameConflict { other: addr });
            }
            self.refute(cx, incarnation);
            return;
        }
        let Some(id) = self.table.id_of(name) else {
            let id = self.table.insert(Member {
                name: name.clone(),
                addr: addr.into(),
                incarnation,
                state: MemberState::Alive,
                since: cx.now,
                tags: boxed_tags(tags.clone()),
            });
            self.probe_order.add(id, &mut cx.rng);
            if !self.former.is_empty() {
                self.former.retain(|f| &f.name != name);
            }
            self.emit(cx, MemberEventKind::Joined, id);
            self.announce(id, gossip);
            return;
        };
        let Some(m) = self.table.get(id) else { return };
        if incarnation <= m.incarnation {
            return;
        }
        let previous = m.state;
        let changed = m.addr != addr || m.tags() != tags;
        let now = cx.now;
        self.table.update(id, |m| {
            m.incarnation = incarnation;
            m.addr = addr.into();
            if m.tags() != tags {
                m.tags = boxed_tags(tags.clone());
            }
            if m.state != MemberState::Alive {
                m.state = MemberState::Alive;
                m.since = now;
            }
        });
        self.suspicions.remove(&id);
        let kind = match previous {
            MemberState::Dead | MemberState::Left => Some(MemberEventKind::Joined),
            MemberState::Suspect => Some(MemberEventKind::Recovered),
            MemberState::Alive if changed => Some(MemberEventKind::Updated),
            MemberState::Alive => None,
        };
        if let Some(kind) = kind {
            self.emit(cx, kind, id);
        }
        self.announce(id, gossip);
    }

    /// A `suspect` update from `from` (a direct accuser, or the sender of a
    /// full-state exchange that lists the member as dead or suspect).
    pub(crate) fn apply_suspect(
        &mut self,
        cx: &mut Context,
        incarnation: Incarnation,
        name: &NodeName,
        from: &NodeName,
        gossip: bool,
    ) {
        if name == self.local_name() {
            self.answer_accusation(cx, incarnation);
            return;
        }
        let Some(id) = self.table.id_of(name) else {
            return;
        };
        let Some(m) = self.table.get(id) else { return };
        if incarnation < m.incarnation {
            return;
        }
        match m.state {
            MemberState::Dead | MemberState::Left => {}
            MemberState::Suspect => {
                let restart = self
                    .suspicions
                    .get(&id)
                    .is_none_or(|s| incarnation > s.incarnation);
                if restart {
                    self.table.update(id, |m| m.incarnation = incarnation);
                    self.start_suspicion(cx, id, incarnation, from);
                    self.announce(id, gossip);
                } else if let Some(s) = self.suspicions.get_mut(&id)
                    && s.confirm(from)
                {
                    let deadline = s.deadline();
                    cx.timers.set(deadline, Timer::Suspicion(id));
                    self.announce(id, gossip);
                }
            }
            MemberState::Alive => {
                let now = cx.now;
                self.table.update(id, |m| {
                    m.incarnation = incarnation;
                    m.state = MemberState::Suspect;
                    m.since = now;
                });
                self.start_suspicion(cx, id, incarnation, from);
                self.emit(cx, MemberEventKind::Suspected, id);
                self.announce(id, gossip);
            }
        }
    }

    fn start_suspicion(
        &mut self,
        cx: &mut Context,
        id: MemberId,
        incarnation: Incarnation,
        from: &NodeName,
    ) {
        let n = self.table.active_count();
        let min = self.config.suspicion_min_timeout(n);
        let (k, max) = if self.config.lifeguard {
            let k = self.config.suspicion_mult.saturating_sub(2);
            // Too few other members to expect k independent confirmations.
            let k = if (n as u32).saturating_sub(2) < k {
                0
            } else {
                k
            };
            (k, self.config.suspicion_max_timeout(n))
        } else {
            (0, min)
        };
        let s = Suspicion::new(incarnation, from.clone(), cx.now, k, min, max);
        cx.timers.set(s.deadline(), Timer::Suspicion(id));
        self.suspicions.insert(id, s);
    }

    /// A suspicion timer fired: declare the member dead if it still applies.
    pub(crate) fn on_suspicion_timer(&mut self, cx: &mut Context, id: MemberId) {
        let Some(s) = self.suspicions.get(&id) else {
            return;
        };
        let still = self
            .table
            .get(id)
            .is_some_and(|m| m.state == MemberState::Suspect && m.incarnation == s.incarnation);
        if !still {
            self.suspicions.remove(&id);
            return;
        }
        if cx.now < s.deadline() {
            return; // an earlier timer; the current deadline has its own entry
        }
        self.suspicions.remove(&id);
        self.table.set_state(id, MemberState::Dead, cx.now);
        self.emit(cx, MemberEventKind::Failed, id);
        self.announce(id, true);
        self.urgent = true;
    }

    /// A `dead` update.
    pub(crate) fn apply_dead(
        &mut self,
        cx: &mut Context,
        incarnation: Incarnation,
        name: &NodeName,
        gossip: bool,
    ) {
        self.apply_down(cx, incarnation, name, MemberState::Dead, gossip);
    }

    /// A `left` update.
    pub(crate) fn apply_left(
        &mut self,
        cx: &mut Context,
        incarnation: Incarnation,
        name: &NodeName,
        gossip: bool,
    ) {
        self.apply_down(cx, incarnation, name, MemberState::Left, gossip);
    }

    fn apply_down(
        &mut self,
        cx: &mut Context,
        incarnation: Incarnation,
        name: &NodeName,
        state: MemberState,
        gossip: bool,
    ) {
        if name == self.local_name() {
            self.answer_accusation(cx, incarnation);
            return;
        }
        let Some(id) = self.table.id_of(name) else {
            return;
        };
        let Some(m) = self.table.get(id) else { return };
        if incarnation < m.incarnation || m.state == state || m.state == MemberState::Left {
            return;
        }
        if m.state == MemberState::Dead && state == MemberState::Dead {
            return;
        }
        let now = cx.now;
        self.table.update(id, |m| {
            m.incarnation = incarnation;
            m.state = state;
            m.since = now;
        });
        self.suspicions.remove(&id);
        let kind = if state == MemberState::Left {
            MemberEventKind::Left
        } else {
            MemberEventKind::Failed
        };
        self.emit(cx, kind, id);
        self.announce(id, gossip);
        self.urgent |= gossip;
    }

    /// Leave gracefully: announce `left` at a new incarnation and stop probing.
    pub(crate) fn leave(&mut self, cx: &mut Context) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        let local = self.local;
        let now = cx.now;
        self.table.update(local, |m| {
            m.incarnation = m.incarnation.saturating_add(1);
            m.state = MemberState::Left;
            m.since = now;
        });
        self.queue.push(local);
    }

    /// Replace this node's tags and announce them at a new incarnation.
    pub(crate) fn set_tags(&mut self, tags: Tags) {
        let local = self.local;
        self.table.update(local, |m| {
            m.incarnation = m.incarnation.saturating_add(1);
            m.tags = boxed_tags(tags);
        });
        self.queue.push(local);
    }
}
