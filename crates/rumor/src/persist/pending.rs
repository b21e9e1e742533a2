//! What waits to be written, and when: the driver notes the node's events
//! here and takes one [`Batch`] per loop iteration.

use std::collections::HashSet;
use std::time::Duration;

use rumor_proto::state::Key;
use rumor_proto::{Event, MemberEventKind, Node};
use tokio::time::Instant;

use super::record::NodeRecord;

/// Known members are written at most this often (the first change after a
/// quiet spell at once, so that a node that has just joined can rejoin).
pub(crate) const MEMBERS_EVERY: Duration = Duration::from_secs(3);
/// Entries merged from other nodes are committed without waiting for the
/// disk; a durable commit follows within this time.
pub(crate) const DURABLE_EVERY: Duration = Duration::from_secs(3);

/// One transaction's worth of changes.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Wait for the disk (a local write, an identity change or a
    /// checkpoint is in it), or not (only entries from other nodes).
    pub durable: bool,
    /// The node record, when it changed.
    pub record: Option<NodeRecord>,
    /// Entries to write (`Some`: postcard-encoded) or remove (`None`).
    pub entries: Vec<(Key, Option<Vec<u8>>)>,
    /// The known members (name, address), replacing those on disk.
    pub members: Option<Vec<(String, String)>>,
}

/// Changes noted since the last commit.
#[derive(Debug)]
pub(crate) struct Pending {
    keys: HashSet<Key>,
    local: bool,
    members_changed: bool,
    members_written: Option<Instant>,
    /// When the oldest commit not yet followed by a durable one was made.
    undurable_since: Option<Instant>,
    /// The record as last written (`None`: never).
    written: Option<NodeRecord>,
}

impl Pending {
    /// Nothing pending; `written` is the record on disk.
    pub fn new(written: Option<NodeRecord>) -> Self {
        Pending {
            keys: HashSet::new(),
            local: false,
            members_changed: false,
            members_written: None,
            undurable_since: None,
            written,
        }
    }

    /// Note what `event` changes on disk.
    pub fn note(&mut self, event: &Event) {
        match event {
            Event::KeyChanged { key, local } => {
                self.local |= *local;
                self.keys.insert(key.clone());
            }
            Event::TombstonesCollected { keys } => self.keys.extend(keys.iter().cloned()),
            Event::Member(m) => {
                self.members_changed |= !matches!(
                    m.kind,
                    MemberEventKind::Suspected | MemberEventKind::Recovered
                );
            }
            _ => {}
        }
    }

    /// When the driver must wake to write what is pending even if nothing
    /// else happens.
    pub fn due(&self) -> Option<Instant> {
        let members = self.members_changed.then(|| {
            self.members_written
                .map_or_else(Instant::now, |t| t + MEMBERS_EVERY)
        });
        let durable = self.undurable_since.map(|t| t + DURABLE_EVERY);
        members.into_iter().chain(durable).min()
    }

    /// What to commit now, read from `node` (`None`: nothing). Entries are
    /// read as they are now, so a key changed twice is written once.
    pub fn take(&mut self, node: &Node, now: Instant) -> Option<Batch> {
        let record = NodeRecord::of(node);
        let identity_changed = self
            .written
            .as_ref()
            .is_none_or(|w| !w.same_identity(&record));
        let members_due = self.members_changed
            && self
                .members_written
                .is_none_or(|t| now.duration_since(t) >= MEMBERS_EVERY);
        let checkpoint_due = self
            .undurable_since
            .is_some_and(|t| now.duration_since(t) >= DURABLE_EVERY);
        if self.keys.is_empty() && !identity_changed && !members_due && !checkpoint_due {
            return None;
        }
        let mut batch = Batch {
            durable: self.local || identity_changed || members_due || checkpoint_due,
            ..Batch::default()
        };
        for key in self.keys.drain() {
            let bytes = match node.get(&key).map(postcard::to_allocvec) {
                None => None,
                Some(Ok(bytes)) => Some(bytes),
                Some(Err(e)) => {
                    // Not reachable for an entry in memory; keep the old row.
                    tracing::error!(%key, error = %e, "cannot encode an entry; not persisted");
                    continue;
                }
            };
            batch.entries.push((key, bytes));
        }
        if members_due {
            let members: Vec<(String, String)> = node
                .known_members()
                .map(|(name, addr)| (name.to_string(), addr.to_string()))
                .collect();
            // A node alone (just restarted, or its peers all gone) keeps the
            // members it knew: they are where it rejoins.
            if !members.is_empty() {
                batch.members = Some(members);
            }
            self.members_changed = false;
            self.members_written = Some(now);
        }
        self.local = false;
        if batch.durable {
            self.undurable_since = None;
        } else {
            self.undurable_since.get_or_insert(now);
        }
        self.written = Some(record.clone());
        batch.record = Some(record);
        Some(batch)
    }
}
