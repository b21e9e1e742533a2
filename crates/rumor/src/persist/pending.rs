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
        let identity_changed = self.written.as_ref().is_none_or(|w| !w.identity_of(node));
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
        let record = NodeRecord::of(node);
        self.written = Some(record.clone());
        batch.record = Some(record);
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use rumor_proto::state::Op;
    use rumor_proto::{Config, Identity, Instant as At};

    use super::*;

    fn node() -> Node {
        let identity = Identity::new("n".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
        Node::new(Config::local(), identity, 1, At::ZERO).unwrap()
    }

    fn note_all(pending: &mut Pending, node: &mut Node) {
        while let Some(e) = node.poll_event() {
            pending.note(&e);
        }
    }

    #[test]
    fn local_writes_wait_for_the_disk_and_merged_entries_do_not() {
        let mut node = node();
        let mut pending = Pending::new(None);
        let t = Instant::now();
        let first = pending.take(&node, t).unwrap();
        assert!(first.durable, "a new identity is made durable");
        assert!(pending.take(&node, t).is_none(), "nothing changed since");

        let mut other = rumor_proto::state::KvStore::new(
            rumor_proto::state::ReplicaId(9),
            rumor_proto::state::StateConfig::default(),
        );
        let remote = other.write("r", Op::Increment(1), 1).unwrap();
        node.merge(At::ZERO, "r", &remote.entry);
        note_all(&mut pending, &mut node);
        let merged = pending.take(&node, t).unwrap();
        assert!(!merged.durable);
        assert_eq!(merged.entries.len(), 1);
        assert_eq!(pending.due(), Some(t + DURABLE_EVERY));
        // Within the checkpoint interval nothing more is due...
        assert!(pending.take(&node, t + Duration::from_secs(1)).is_none());
        // ...then a durable commit follows.
        let checkpoint = pending.take(&node, t + DURABLE_EVERY).unwrap();
        assert!(checkpoint.durable && checkpoint.entries.is_empty());
        assert_eq!(pending.due(), None);

        node.write(At::ZERO, "l", Op::Increment(1)).unwrap();
        node.write(At::ZERO, "l", Op::Increment(1)).unwrap();
        note_all(&mut pending, &mut node);
        let local = pending.take(&node, t).unwrap();
        assert!(local.durable);
        assert_eq!(
            local.entries.len(),
            1,
            "a key changed twice is written once"
        );

        pending.note(&Event::TombstonesCollected {
            keys: vec![Key::from("gone")],
        });
        let collected = pending.take(&node, t).unwrap();
        assert_eq!(collected.entries, vec![(Key::from("gone"), None)]);
    }

    #[test]
    fn member_changes_are_written_at_most_every_few_seconds() {
        let node = node();
        let mut pending = Pending::new(Some(NodeRecord::of(&node)));
        let t = Instant::now();
        let joined = Event::Member(rumor_proto::MemberEvent {
            kind: MemberEventKind::Joined,
            name: "m".parse().unwrap(),
            addr: "127.0.0.1:2".parse().unwrap(),
            incarnation: 0,
            state: rumor_proto::MemberState::Alive,
            tags: Default::default(),
        });
        pending.note(&joined);
        assert!(pending.due().is_some_and(|d| d <= Instant::now()));
        let first = pending.take(&node, t).unwrap();
        assert!(first.durable);
        // A node alone keeps the members on disk.
        assert!(first.members.is_none());
        pending.note(&joined);
        assert_eq!(pending.due(), Some(t + MEMBERS_EVERY));
        assert!(pending.take(&node, t + Duration::from_secs(1)).is_none());
        assert!(pending.take(&node, t + MEMBERS_EVERY).is_some());
    }
}
