//! The node's side of anti-entropy and convergence monitoring: announcing
//! its store summary, choosing whom to reconcile with, and the entry
//! exchange that ends a descent.

use std::net::SocketAddr;

use rand::seq::IndexedRandom;

use super::convergence::{StateSummary, Summaries, name_key};
use crate::dissemination::queue::{Offer, TransmitQueue};
use crate::fast_map::FastMap;
use crate::membership::member::NodeName;
use crate::membership::table::{MemberId, MemberTable};
use crate::state::store::Key;
use crate::state::{Entry, KvStore};
use crate::time::Instant;
use crate::wire::frame::encode_message;
use crate::wire::{Message, PacketBuilder, SyncEntries};

/// Re-announce an unchanged summary this many summary intervals apart, so
/// that members who joined since hear it.
const REANNOUNCE_INTERVALS: u32 = 30;

/// A node's own new summary rides on every packet it sends for this many
/// (unscaled) summary intervals: the relays, which send each summary only
/// ceil(log10(N + 1)) times, start from every peer it talks to.
const OWN_SUMMARY_INTERVALS: u32 = 3;

/// Bytes of entries per [`SyncEntries`] frame (several frames when more).
pub const ENTRIES_FRAME_BYTES: usize = 256 * 1024;

/// Anti-entropy and convergence state of a node.
#[derive(Debug, Default)]
pub struct AntiEntropy {
    /// Summaries heard from other nodes, and the latency record.
    pub summaries: Summaries,
    queue: TransmitQueue<u64>,
    scratch: Vec<u8>,
    /// This node's stable time (see [`StateSummary::stable`]).
    pub(crate) stable: crate::state::Timestamp,
    /// The stable time last announced.
    announced_stable: crate::state::Timestamp,
    /// This node's latest summary, encoded, and until when it rides on
    /// every packet this node sends.
    own: Option<(Vec<u8>, Instant)>,
    /// Rounds since the last exchange with a peer whose root was not known
    /// to differ.
    quiet_rounds: u32,
}

impl AntiEntropy {
    /// Announce this node's summary if its root changed since the last
    /// announcement, or if it has been quiet for a long time.
    pub(crate) fn announce(
        &mut self,
        node: &NodeName,
        kv: &KvStore,
        now: Instant,
        issued: crate::state::Timestamp,
        interval: core::time::Duration,
        base_interval: core::time::Duration,
    ) {
        let root = kv.root();
        // A node that never announced a summary is taken to hold an empty
        // store (root 0): an idle cluster sends no summaries at all.
        let due = match self.summaries.announced {
            None => root != 0,
            Some((r, at)) => {
                r != root
                    || self.stable != self.announced_stable
                    || now - at >= interval * REANNOUNCE_INTERVALS
            }
        };
        if !due {
            return;
        }
        self.summaries.announced = Some((root, now));
        self.announced_stable = self.stable;
        let s = StateSummary {
            node: node.clone(),
            root,
            keys: kv.len() as u64,
            last_change: kv.last_change(),
            issued,
            stable: self.stable,
        };
        let mut encoded = Vec::new();
        if encode_message(&Message::StateSummary(s.clone()), &mut encoded).is_ok() {
            self.own = Some((encoded, now + base_interval * OWN_SUMMARY_INTERVALS));
        }
        // Others relay it through their queues; this node sends it on every
        // packet for a while instead (see `fill_packet`).
        self.summaries.insert(s, now);
    }

    /// A summary arrived: keep and relay it if it is news about a member.
    pub(crate) fn handle_summary(&mut self, s: StateSummary, table: &MemberTable, now: Instant) {
        // Most summaries arrive several times: drop repeats before the
        // member lookup.
        if !self.summaries.is_newer(&s) || table.by_name(&s.node).is_none() {
            return;
        }
        let hash = name_key(s.node.as_str());
        if self.summaries.insert(s, now) {
            self.queue.push(hash);
        }
    }

    /// Forget summaries of nodes that left the member table.
    pub(crate) fn prune(&mut self, table: &MemberTable) {
        if self.summaries.len() > table.len() {
            let gone: Vec<NodeName> = self
                .summaries
                .nodes()
                .filter(|n| table.by_name(n).is_none())
                .cloned()
                .collect();
            for n in gone {
                self.summaries.remove(&n);
            }
        }
    }

    /// Fill the rest of `packet` with this node's fresh summary and queued
    /// summaries of others.
    pub(crate) fn fill_packet(&mut self, packet: &mut PacketBuilder, limit: u32, now: Instant) {
        match &self.own {
            Some((encoded, until)) if now < *until => {
                packet.push_encoded(encoded);
            }
            Some(_) => self.own = None,
            None => {}
        }
        let AntiEntropy {
            queue,
            summaries,
            scratch,
            ..
        } = self;
        queue.fill(limit, |hash| {
            let Some(s) = summaries.by_hash(hash) else {
                return Offer::Stale;
            };
            scratch.clear();
            if encode_message(&Message::StateSummary(s.clone()), scratch).is_err() {
                return Offer::Stale;
            }
            // Summaries differ in size by a few bytes at most: one that
            // does not fit means the packet is full, and looking further
            // would encode summaries only to drop them.
            if packet.push_encoded(scratch) {
                Offer::Taken
            } else {
                Offer::Full
            }
        });
    }

    /// Whether summaries wait to be gossiped.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty() || self.own.is_some()
    }

    /// The peer to reconcile with: a random live member whose last summary
    /// differs from `root` (no summary: an empty store); when every member agrees, a
    /// random live member every tenth round anyway, so that a summary lost
    /// or stale cannot hide a difference for long.
    pub(crate) fn choose_peer(
        &mut self,
        rng: &mut impl rand::Rng,
        table: &MemberTable,
        local: &NodeName,
        root: u64,
    ) -> Option<SocketAddr> {
        let live = || {
            table
                .iter()
                .map(|(_, m)| m)
                .filter(|m| m.state.is_active() && m.name != *local)
        };
        let differing: Vec<SocketAddr> = if root == 0 {
            // A member that never announced holds an empty store too, so
            // only the summaries with a root of their own can differ: look
            // at those rather than at every member, in table order all the
            // same.
            let mut found: Vec<(MemberId, SocketAddr)> = self
                .summaries
                .all()
                .filter(|s| s.root != 0 && s.node != *local)
                .filter_map(|s| {
                    let id = table.id_of(&s.node)?;
                    table
                        .get(id)
                        .filter(|m| m.state.is_active())
                        .map(|m| (id, m.socket_addr()))
                })
                .collect();
            found.sort_unstable_by_key(|&(id, _)| id);
            found.into_iter().map(|(_, addr)| addr).collect()
        } else {
            // While stores change most members differ: a few random draws
            // find one without looking at every member (the sample falls
            // back to a scan when few or none differ).
            let summaries = &self.summaries;
            table
                .sample(rng, 1, |_, m| {
                    m.state.is_active()
                        && m.name != *local
                        && summaries.get(&m.name).map_or(0, |s| s.root) != root
                })
                .into_iter()
                .filter_map(|id| table.get(id).map(|m| m.socket_addr()))
                .collect()
        };
        if let Some(&peer) = differing.choose(rng) {
            self.quiet_rounds = 0;
            return Some(peer);
        }
        self.quiet_rounds += 1;
        // An empty store among empty stores has nothing to check.
        if root == 0 || self.quiet_rounds < 10 {
            return None;
        }
        self.quiet_rounds = 0;
        let all: Vec<SocketAddr> = live().map(|m| m.socket_addr()).collect();
        all.choose(rng).copied()
    }
}

/// The entries of `kv` whose key hashes are in `hashes`, packed into
/// frames of about [`ENTRIES_FRAME_BYTES`], the first carrying `want`.
pub(crate) fn entries_frames(kv: &KvStore, hashes: &[u64], want: Vec<u64>) -> Vec<SyncEntries> {
    let mut frames = vec![SyncEntries {
        entries: Vec::new(),
        want,
    }];
    let mut size = 0;
    let mut seen: FastMap<u64, ()> = FastMap::default();
    for &h in hashes {
        if seen.insert(h, ()).is_some() {
            continue;
        }
        for (k, e) in kv.by_hash(h) {
            let len = k.len() + e.data_len() + 16 * (e.context.len() + e.len()) + 16;
            if size + len > ENTRIES_FRAME_BYTES && size > 0 {
                frames.push(SyncEntries {
                    entries: Vec::new(),
                    want: Vec::new(),
                });
                size = 0;
            }
            if let Some(f) = frames.last_mut() {
                f.entries.push((Key::clone(k), Entry::clone(e)));
            }
            size += len;
        }
    }
    frames.retain(|f| !f.entries.is_empty() || !f.want.is_empty());
    frames
}
