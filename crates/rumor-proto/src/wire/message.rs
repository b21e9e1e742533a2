//! The messages nodes exchange. Every message is encoded with postcard; a
//! datagram carries several of them (see [`super::frame`]).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::dissemination::rumor::{Rumor, RumorId};
use crate::membership::member::{Incarnation, MemberState, NodeName, Tags};
use crate::membership::table::MembershipDigest;
use crate::state::{Entry, store::Key};
use crate::sync::{StateSummary, SyncCompare, SyncKeys};

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Direct probe: "are you alive?"
    Ping(Ping),
    /// Ask the receiver to probe `target` on the sender's behalf.
    IndirectPing(IndirectPing),
    /// Answer to a ping (direct or relayed).
    Ack(Ack),
    /// An indirect prober could not reach the target in time (Lifeguard).
    Nack(Nack),
    /// A member is alive at an incarnation, with its address and tags.
    Alive(Alive),
    /// A member is suspected of failure.
    Suspect(Suspect),
    /// A member is declared failed.
    Dead(Dead),
    /// A member left on purpose.
    Left(Left),
    /// Full-state exchange, on join and periodically (stream channel).
    PushPull(PushPull),
    /// A user event or key write being spread.
    Rumor(Rumor),
    /// The rumors the sender holds; with `pull`, a request for the ones
    /// the receiver is spreading and the sender lacks.
    RumorDigest(RumorDigest),
    /// Rumors the sender of a push already knew (feedback termination).
    RumorFeedback(RumorFeedback),
    /// A node's store summary, for convergence monitoring.
    StateSummary(StateSummary),
    /// Anti-entropy: Merkle tree nodes to compare (stream channel).
    SyncCompare(SyncCompare),
    /// Anti-entropy: the keys under small tree nodes (stream channel).
    SyncKeys(Vec<SyncKeys>),
    /// Anti-entropy: entries the peer lacks or holds differently, and the
    /// key hashes the sender wants in return (stream channel).
    SyncEntries(SyncEntries),
}

impl Message {
    /// Short name of the message type, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Ping(_) => "ping",
            Message::IndirectPing(_) => "indirect-ping",
            Message::Ack(_) => "ack",
            Message::Nack(_) => "nack",
            Message::Alive(_) => "alive",
            Message::Suspect(_) => "suspect",
            Message::Dead(_) => "dead",
            Message::Left(_) => "left",
            Message::PushPull(_) => "push-pull",
            Message::Rumor(_) => "rumor",
            Message::RumorDigest(_) => "rumor-digest",
            Message::RumorFeedback(_) => "rumor-feedback",
            Message::StateSummary(_) => "state-summary",
            Message::SyncCompare(_) => "sync-compare",
            Message::SyncKeys(_) => "sync-keys",
            Message::SyncEntries(_) => "sync-entries",
        }
    }
}

/// Direct probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Sequence number the ack must echo.
    pub seq: u32,
    /// Name of the node the sender means to probe; a ping that reaches
    /// another node (a reused address) is not answered.
    pub target: NodeName,
}

/// Request to probe `target` for the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndirectPing {
    /// Sequence number to echo in the relayed ack or the nack.
    pub seq: u32,
    /// The member to probe.
    pub target: NodeName,
    /// Its address.
    pub addr: SocketAddr,
    /// Whether the sender wants a nack if the target does not answer.
    pub want_nack: bool,
}

/// Probe answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The sequence number of the ping answered.
    pub seq: u32,
    /// The answering node's membership digest: a prober whose own digest
    /// stays different pulls the state it is missing.
    pub digest: MembershipDigest,
}

/// Negative answer from an indirect prober.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The sequence number of the indirect ping answered.
    pub seq: u32,
}

/// A member is alive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    /// The member's incarnation.
    pub incarnation: Incarnation,
    /// The member.
    pub node: NodeName,
    /// Its address.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: Tags,
}

/// A member is suspected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspect {
    /// Incarnation the suspicion is about.
    pub incarnation: Incarnation,
    /// The suspected member.
    pub node: NodeName,
    /// Who suspects it (each distinct accuser confirms the suspicion).
    pub from: NodeName,
}

/// A member is declared failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dead {
    /// Incarnation the verdict is about.
    pub incarnation: Incarnation,
    /// The failed member.
    pub node: NodeName,
    /// Who declared it.
    pub from: NodeName,
}

/// A member left on purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The member's incarnation at leaving (higher than any before).
    pub incarnation: Incarnation,
    /// The member.
    pub node: NodeName,
}

/// One member's entry in a full-state exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// The member.
    pub node: NodeName,
    /// Its address.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// The sender's view of its state.
    pub state: MemberState,
    /// Its tags.
    pub tags: Tags,
}

/// Full-state exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPull {
    /// The sender is joining (or rejoining after a restart, or alone): it
    /// does not re-gossip what it learns from the reply, which the cluster
    /// already knows. The receiver re-gossips what it learns, as always.
    pub join: bool,
    /// This is the answer to a push-pull request.
    pub reply: bool,
    /// The sender's name (the accuser for members it lists as dead).
    pub from: NodeName,
    /// The sender's member table.
    pub members: Vec<MemberEntry>,
}

/// A digest of held rumors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RumorDigest {
    /// Whether the receiver should answer with rumors missing from `ids`.
    pub pull: bool,
    /// This digest answers another (anti-entropy): it is not answered with
    /// a digest in turn.
    pub reply: bool,
    /// Rumors the sender holds (as many as fit in the packet).
    pub ids: Vec<RumorId>,
}

/// Feedback on a push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RumorFeedback {
    /// Rumors in the push that the sender of this feedback already had.
    pub known: Vec<RumorId>,
}

/// Entries exchanged at the end of an anti-entropy descent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEntries {
    /// Keys and their state as the sender holds them.
    pub entries: Vec<(Key, Entry)>,
    /// Hashes of keys whose state the sender wants.
    pub want: Vec<u64>,
}
