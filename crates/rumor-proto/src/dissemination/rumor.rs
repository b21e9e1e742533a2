//! User events: what the application broadcasts, and how it is named on the
//! wire.

use serde::{Deserialize, Serialize};

use crate::membership::member::NodeName;
use crate::state::{Entry, store::Key};

/// Identity of a rumor: a hash of its origin's name and the origin's own
/// sequence number. Compact, so that digests of many rumors fit a packet:
/// the hash travels as 8 fixed bytes (a varint would take 10 for most
/// hashes, and cost more to encode and decode), the sequence as a varint.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RumorId {
    /// [`NodeName::stable_hash`] of the origin's name.
    #[serde(with = "postcard::fixint::le")]
    pub origin: u64,
    /// The origin's sequence number for it.
    pub seq: u32,
}

/// How urgently a rumor must go out when bandwidth is short.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Priority {
    /// Ordinary application events.
    #[default]
    Normal,
    /// Events that should overtake normal ones.
    High,
    /// Events that must go first.
    Critical,
}

impl core::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "normal" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            "critical" => Ok(Priority::Critical),
            other => Err(format!(
                "unknown priority {other:?}: expected normal, high or critical"
            )),
        }
    }
}

/// A user event as it travels and as it is delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    /// Its identity (deduplication key).
    pub id: RumorId,
    /// The node that broadcast it.
    pub origin: NodeName,
    /// Lamport time at the origin when it was broadcast: events are
    /// ordered by it, as Serf orders user events.
    pub ltime: u64,
    /// Application-chosen event name (for example `deploy`).
    pub name: String,
    /// Application payload.
    pub payload: Vec<u8>,
    /// Its priority.
    pub priority: Priority,
    /// Gossip hops from the origin to the node holding this copy.
    pub hops: u16,
}

/// What a rumor carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RumorBody {
    /// A user event, delivered to the application on every node.
    Event {
        /// Application-chosen event name.
        name: String,
        /// Application payload.
        payload: Vec<u8>,
    },
    /// A key's state after a write at the origin, merged into every
    /// node's store.
    Write {
        /// The key.
        key: Key,
        /// Its state after the write.
        entry: Entry,
    },
}

/// Something spread by rumor mongering: a user event or a key write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rumor {
    /// Its identity (deduplication key).
    pub id: RumorId,
    /// The node that started it.
    pub origin: NodeName,
    /// Lamport time at the origin.
    pub ltime: u64,
    /// Its priority.
    pub priority: Priority,
    /// Gossip hops from the origin to the node holding this copy.
    pub hops: u16,
    /// What it carries.
    pub body: RumorBody,
}

impl Rumor {
    /// The user event it carries, as delivered to the application.
    pub fn user_event(&self) -> Option<UserEvent> {
        match &self.body {
            RumorBody::Event { name, payload } => Some(UserEvent {
                id: self.id,
                origin: self.origin.clone(),
                ltime: self.ltime,
                name: name.clone(),
                payload: payload.clone(),
                priority: self.priority,
                hops: self.hops,
            }),
            RumorBody::Write { .. } => None,
        }
    }
}
