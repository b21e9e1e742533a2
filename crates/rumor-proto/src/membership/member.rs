//! A member of the cluster as one node sees it: name, address, incarnation,
//! state and tags.

use core::fmt;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::time::Instant;

/// Longest node name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Incarnation number: only a node itself raises its own, to refute a
/// suspicion or to announce a change.
pub type Incarnation = u32;

/// A node's name, unique in its cluster: 1 to [`MAX_NAME_LEN`] bytes of
/// UTF-8 with no control characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeName(CompactString);

/// A node name that breaks the rules of [`NodeName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node name {0:?}: names are 1 to {MAX_NAME_LEN} bytes without control characters")]
pub struct InvalidName(pub String);

impl NodeName {
    /// Check and wrap a name.
    pub fn new(name: &str) -> Result<Self, InvalidName> {
        let name = NodeName(CompactString::from(name));
        if name.is_valid() {
            Ok(name)
        } else {
            Err(InvalidName(name.0.into()))
        }
    }

    /// Whether this name obeys the rules (decoded names are checked with it).
    pub fn is_valid(&self) -> bool {
        !self.0.is_empty() && self.0.len() <= MAX_NAME_LEN && !self.0.chars().any(char::is_control)
    }

    /// A hash of the name that every node of every build computes alike
    /// (FNV-1a): used in membership digests and rumor ids.
    pub fn stable_hash(&self) -> u64 {
        self.0.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl core::str::FromStr for NodeName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeName::new(s)
    }
}

/// Key-value metadata a node publishes about itself (role, zone, version...).
/// Its encoded size is limited by `Config::max_tags_bytes`.
pub type Tags = BTreeMap<String, String>;

/// What a node believes about a member.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberState {
    /// Answering probes, or not yet suspected.
    Alive,
    /// A probe failed; the member has until the suspicion timeout to refute.
    Suspect,
    /// Declared failed after an unrefuted suspicion.
    Dead,
    /// Left the cluster on purpose: never counted as a failure.
    Left,
}

impl MemberState {
    /// Alive or suspect: still a member that is probed and gossiped to.
    pub fn is_active(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }

    /// Lower-case name, as shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member as stored in the member table.
///
/// Kept small on purpose: every node holds one per member, and the simulator
/// holds N² of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The member's name.
    pub name: NodeName,
    /// Where it receives packets.
    pub addr: SocketAddr,
    /// The highest incarnation heard for it.
    pub incarnation: Incarnation,
    /// What this node believes about it.
    pub state: MemberState,
    /// When `state` last changed, on this node's clock.
    pub since: Instant,
    /// Its tags; `None` when it has none.
    pub tags: Option<Box<Tags>>,
}

impl Member {
    /// The member's tags (empty when it has none).
    pub fn tags(&self) -> &Tags {
        static EMPTY: Tags = BTreeMap::new();
        self.tags.as_deref().unwrap_or(&EMPTY)
    }
}

/// Box tags only when there are some.
pub(crate) fn boxed_tags(tags: Tags) -> Option<Box<Tags>> {
    if tags.is_empty() {
        None
    } else {
        Some(Box::new(tags))
    }
}
