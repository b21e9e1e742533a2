//! The rumors a node holds: for deduplication, for answering pulls, and, while
//! they are hot, for spreading.

use core::cmp::Reverse;
use std::collections::VecDeque;

use std::sync::Arc;

use super::rumor::{Priority, Rumor, RumorBody, RumorId};
use crate::fast_map::FastMap;
use crate::time::Instant;
use crate::wire::Message;
use crate::wire::frame::encode_message;

/// A rumor held by this node.
#[derive(Clone, Debug)]
pub struct Held {
    /// The message that forwards it (one more hop), encoded once; the
    /// decoded rumor is not kept, which halves the store's memory.
    pub encoded: Arc<[u8]>,
    /// Its priority.
    pub priority: Priority,
    /// Whether it carries a key write (rather than a user event).
    pub is_write: bool,
    /// Still being spread.
    pub hot: bool,
    /// Contacts counted towards the termination rule.
    pub count: u32,
    /// When it arrived (or was broadcast) here.
    pub arrived: Instant,
    /// Since when it has been waiting for bandwidth, if it is.
    pub waiting_since: Option<Instant>,
    /// Rounds in which this node pushed it.
    pub rounds: u32,
}

/// Where a hot rumor goes in the spreading order: highest priority first,
/// then youngest first, then by id.
type HotKey = (Reverse<Priority>, Reverse<Instant>, RumorId);

/// Held rumors, forgotten after the retention time or beyond a count limit
/// (oldest first), so memory is bounded whatever arrives.
#[derive(Debug)]
pub struct RumorStore {
    held: FastMap<RumorId, Held>,
    by_age: VecDeque<(Instant, RumorId)>,
    /// The rumors being spread, in spreading order as of the last call to
    /// [`RumorStore::hot`], newer ones appended; rumors gone cold or
    /// forgotten since are dropped there, not at once (which would cost a
    /// scan of the list each time).
    hot: Vec<HotKey>,
    max: usize,
    scratch: Vec<u8>,
}

impl RumorStore {
    /// An empty store holding at most `max` rumors.
    pub fn new(max: usize) -> Self {
        RumorStore {
            held: FastMap::default(),
            by_age: VecDeque::new(),
            hot: Vec::new(),
            max: max.max(1),
            scratch: Vec::new(),
        }
    }

    /// Whether `id` is held (seen within the retention time).
    pub fn contains(&self, id: &RumorId) -> bool {
        self.held.contains_key(id)
    }

    /// The held rumor `id`.
    pub fn get(&self, id: &RumorId) -> Option<&Held> {
        self.held.get(id)
    }

    /// Number of rumors held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Hold a new rumor as hot. Gives the rumor back if it was new, and
    /// drops it if it was already held.
    pub fn insert(&mut self, rumor: Rumor, now: Instant) -> Option<Rumor> {
        let id = rumor.id;
        if self.held.contains_key(&id) {
            return None;
        }
        while self.held.len() >= self.max {
            match self.by_age.pop_front() {
                Some((_, old)) => {
                    self.held.remove(&old);
                }
                None => break,
            }
        }
        let priority = rumor.priority;
        let is_write = matches!(rumor.body, RumorBody::Write { .. });
        let (encoded, rumor) = forwarding(rumor, &mut self.scratch);
        self.held.insert(
            id,
            Held {
                encoded,
                priority,
                is_write,
                hot: true,
                count: 0,
                arrived: now,
                waiting_since: None,
                rounds: 0,
            },
        );
        self.by_age.push_back((now, id));
        // Entries of rumors no longer hot are dropped by `hot()`; a node
        // that never asks (transmit-limit, pull) drops them here.
        if self.hot.len() >= 2 * self.held.len() + 64 {
            self.retain_hot();
        }
        self.hot.push((Reverse(priority), Reverse(now), id));
        Some(rumor)
    }

    /// Forget rumors that arrived before `cutoff`.
    pub fn expire(&mut self, cutoff: Instant) {
        while let Some(&(at, id)) = self.by_age.front() {
            if at >= cutoff {
                break;
            }
            self.by_age.pop_front();
            self.held.remove(&id);
        }
    }

    /// Count one contact for `id`; it goes cold once `cold` says so.
    pub fn count(&mut self, id: RumorId, cold: impl FnOnce(u32) -> bool) {
        if let Some(h) = self.held.get_mut(&id).filter(|h| h.hot) {
            h.count += 1;
            if cold(h.count) {
                h.hot = false;
            }
        }
    }

    /// Note that `id` could not be sent for lack of bandwidth; true if it
    /// was not already waiting.
    pub fn defer(&mut self, id: RumorId, now: Instant) -> bool {
        match self.held.get_mut(&id) {
            Some(h) if h.waiting_since.is_none() => {
                h.waiting_since = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Note that `id` was sent; returns how long it had waited, if it had.
    pub fn sent(&mut self, id: RumorId, now: Instant) -> Option<core::time::Duration> {
        let h = self.held.get_mut(&id)?;
        h.waiting_since.take().map(|t| now - t)
    }

    /// Count a round in which `id` was pushed.
    pub fn pushed(&mut self, id: RumorId) {
        if let Some(h) = self.held.get_mut(&id) {
            h.rounds = h.rounds.saturating_add(1);
        }
    }

    /// Hot rumors, highest priority first, then youngest first.
    pub fn hot(&mut self) -> Vec<RumorId> {
        self.retain_hot();
        // Sorted already but for the rumors that arrived since: the sort
        // only merges them in.
        self.hot.sort_unstable();
        self.hot.dedup();
        self.hot.iter().map(|&(_, _, id)| id).collect()
    }

    /// Drop the entries of rumors gone cold or forgotten (and of earlier
    /// copies of rumors held again) from the hot list.
    fn retain_hot(&mut self) {
        let held = &self.held;
        self.hot
            .retain(|(_, Reverse(at), id)| held.get(id).is_some_and(|h| h.hot && h.arrived == *at));
    }

    /// Every held rumor id, youngest first.
    pub fn ids_youngest_first(&self) -> impl Iterator<Item = RumorId> + '_ {
        self.by_age.iter().rev().map(|&(_, id)| id)
    }
}

/// The encoded message forwarding `rumor` one hop further, and the rumor
/// back (its hop count as it arrived), encoded through `scratch` without
/// copying the rumor.
fn forwarding(rumor: Rumor, scratch: &mut Vec<u8>) -> (Arc<[u8]>, Rumor) {
    let hops = rumor.hops;
    let msg = Message::Rumor(Rumor {
        hops: hops.saturating_add(1),
        ..rumor
    });
    scratch.clear();
    // Encoding into a Vec cannot fail for these types; an empty message
    // would simply not decode at the peer.
    let _ = encode_message(&msg, scratch);
    let encoded = Arc::from(scratch.as_slice());
    match msg {
        Message::Rumor(rumor) => (encoded, Rumor { hops, ..rumor }),
        _ => unreachable!("built as a rumor just above"),
    }
}
