//! The rumors a node holds: for deduplication, for answering pulls, and, while
//! they are hot, for spreading.

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

/// Held rumors, forgotten after the retention time or beyond a count limit
/// (oldest first), so memory is bounded whatever arrives.
#[derive(Debug)]
pub struct RumorStore {
    held: FastMap<RumorId, Held>,
    by_age: VecDeque<(Instant, RumorId)>,
    hot: Vec<RumorId>,
    max: usize,
}

impl RumorStore {
    /// An empty store holding at most `max` rumors.
    pub fn new(max: usize) -> Self {
        RumorStore {
            held: FastMap::default(),
            by_age: VecDeque::new(),
            hot: Vec::new(),
            max: max.max(1),
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

    /// Hold a new rumor as hot; false if it was already held.
    pub fn insert(&mut self, rumor: Rumor, now: Instant) -> bool {
        let id = rumor.id;
        if self.held.contains_key(&id) {
            return false;
        }
        while self.held.len() >= self.max {
            match self.by_age.pop_front() {
                Some((_, old)) => self.forget(old),
                None => break,
            }
        }
        self.held.insert(
            id,
            Held {
                encoded: forwarding(&rumor),
                priority: rumor.priority,
                is_write: matches!(rumor.body, RumorBody::Write { .. }),
                hot: true,
                count: 0,
                arrived: now,
                waiting_since: None,
                rounds: 0,
            },
        );
        self.by_age.push_back((now, id));
        self.hot.push(id);
        true
    }

    fn forget(&mut self, id: RumorId) {
        if self.held.remove(&id).is_some_and(|h| h.hot) {
            self.hot.retain(|h| *h != id);
        }
    }

    /// Forget rumors that arrived before `cutoff`.
    pub fn expire(&mut self, cutoff: Instant) {
        while let Some(&(at, id)) = self.by_age.front() {
            if at >= cutoff {
                break;
            }
            self.by_age.pop_front();
            self.forget(id);
        }
    }

    /// Count one contact for `id`; it goes cold once `cold` says so.
    pub fn count(&mut self, id: RumorId, cold: impl FnOnce(u32) -> bool) {
        if let Some(h) = self.held.get_mut(&id).filter(|h| h.hot) {
            h.count += 1;
            if cold(h.count) {
                h.hot = false;
                self.hot.retain(|x| *x != id);
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
    pub fn hot(&self) -> Vec<RumorId> {
        let mut ids = self.hot.clone();
        ids.sort_by_key(|id| {
            let h = &self.held[id];
            (
                core::cmp::Reverse(h.priority),
                core::cmp::Reverse(h.arrived),
                *id,
            )
        });
        ids
    }

    /// Every held rumor id, youngest first.
    pub fn ids_youngest_first(&self) -> impl Iterator<Item = RumorId> + '_ {
        self.by_age.iter().rev().map(|&(_, id)| id)
    }
}

/// The encoded message forwarding `rumor` one hop further.
fn forwarding(rumor: &Rumor) -> Arc<[u8]> {
    let mut next = rumor.clone();
    next.hops = next.hops.saturating_add(1);
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for these types; an empty message
    // would simply not decode at the peer.
    let _ = encode_message(&Message::Rumor(next), &mut buf);
    buf.into()
}
