//! What the core tells the application, and what the application asks of it.

use std::net::SocketAddr;

use crate::membership::member::{Incarnation, Member, MemberState, NodeName, Tags};

/// Something the application should know about, from [`crate::Node::poll_event`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A member changed state, address or tags.
    Member(MemberEvent),
    /// Another node suspected or declared this node dead, or spoke of it at a
    /// newer incarnation; this node refuted by raising its incarnation.
    Refuted {
        /// The new incarnation of this node.
        incarnation: Incarnation,
    },
    /// A user event, delivered once per node (the origin included).
    UserEvent(crate::dissemination::rumor::UserEvent),
    /// A key's state changed here, by a local write or one merged from
    /// another node; read it with [`crate::Node::get`] (and persist it).
    KeyChanged {
        /// The key.
        key: crate::state::store::Key,
        /// Whether the change was a write made on this node.
        local: bool,
    },
    /// A member answered the fallback probe over the stream channel (TCP)
    /// but not the probe by datagram (UDP): it is up, but datagrams between
    /// the two are lost, perhaps blocked by a firewall. Failure detection
    /// still works, more slowly and at more cost.
    DatagramsFailing {
        /// The member.
        name: NodeName,
        /// Its address.
        addr: SocketAddr,
    },
    /// Tombstones old enough, or known to be on every member, were
    /// collected: these keys are gone from the store (drop them from
    /// persisted state too). The store's
    /// [`gc_horizon`](crate::state::KvStore::gc_horizon) moved past them,
    /// so they cannot come back from a node that missed the delete.
    TombstonesCollected {
        /// The keys collected.
        keys: Vec<crate::state::store::Key>,
    },
    /// This node's name was announced from another address at a newer
    /// incarnation. Either an earlier run of this node at another address
    /// (harmless: the cluster now learns the new address) or a second node
    /// using the same name, which the operator should rename. This node
    /// refuted either way.
    NameConflict {
        /// The address that claimed this node's name.
        other: SocketAddr,
    },
}

/// A change in one member as seen by this node.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberEvent {
    /// What happened.
    pub kind: MemberEventKind,
    /// The member's name.
    pub name: NodeName,
    /// Its address.
    pub addr: SocketAddr,
    /// Its incarnation after the change.
    pub incarnation: Incarnation,
    /// Its state after the change.
    pub state: MemberState,
    /// Its tags after the change.
    pub tags: Tags,
}

impl MemberEvent {
    pub(crate) fn new(kind: MemberEventKind, m: &Member) -> Self {
        MemberEvent {
            kind,
            name: m.name.clone(),
            addr: m.socket_addr(),
            incarnation: m.incarnation,
            state: m.state,
            tags: m.tags().clone(),
        }
    }
}

/// The kinds of member change.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemberEventKind {
    /// A member became alive: new, or back after being dead or having left.
    Joined,
    /// An alive member changed address or tags.
    Updated,
    /// A member is suspected of failure.
    Suspected,
    /// A suspected member refuted the suspicion and is alive again.
    Recovered,
    /// A member was declared failed.
    Failed,
    /// A member left on purpose.
    Left,
    /// A dead or left member was removed from the member table.
    Reaped,
}

impl MemberEventKind {
    /// Name as shown to operators and handlers (`member-join` and so on).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberEventKind::Joined => "member-join",
            MemberEventKind::Updated => "member-update",
            MemberEventKind::Suspected => "member-suspect",
            MemberEventKind::Recovered => "member-recover",
            MemberEventKind::Failed => "member-failed",
            MemberEventKind::Left => "member-leave",
            MemberEventKind::Reaped => "member-reap",
        }
    }
}

/// Something the application asks the node to do, through
/// [`crate::Node::handle_command`].
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Join a cluster through these seed addresses. Seeds are remembered and
    /// retried by the reconnect timer while they are not alive members.
    Join {
        /// Addresses of one or more members.
        seeds: Vec<SocketAddr>,
    },
    /// Leave the cluster gracefully. The node keeps running (and gossiping)
    /// until the caller stops it; give it a few gossip intervals.
    Leave,
    /// Replace this node's tags and announce them.
    SetTags(Tags),
    /// Broadcast a user event to every live node.
    Broadcast {
        /// Event name (at most `wire::MAX_EVENT_NAME` bytes).
        name: String,
        /// Payload (at most `dissemination.max_payload` bytes).
        payload: Vec<u8>,
        /// Priority.
        priority: crate::dissemination::rumor::Priority,
    },
}
