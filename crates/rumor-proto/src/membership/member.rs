//! A member of the cluster as one node sees it: name, address, incarnation,
//! state and tags.

use core::fmt;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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

/// A member's address as the member table stores it: 19 bytes with no
/// padding, where `SocketAddr` takes 32. Every node holds one per member and
/// the simulator N² of them, so this is most of a large simulation's memory.
///
/// It keeps what the wire carries (IP and port); an IPv6 flow label or
/// scope id, which the wire never carries, is not kept.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    ip: [u8; 16],
    port: [u8; 2],
    v6: bool,
}

impl PeerAddr {
    /// The address as a `SocketAddr`.
    pub fn get(self) -> SocketAddr {
        let port = u16::from_le_bytes(self.port);
        if self.v6 {
            SocketAddr::from((Ipv6Addr::from(self.ip), port))
        } else {
            let [.., a, b, c, d] = self.ip;
            SocketAddr::from((Ipv4Addr::new(a, b, c, d), port))
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        let (ip, v6) = match addr.ip() {
            IpAddr::V4(ip) => (ip.to_ipv6_mapped().octets(), false),
            IpAddr::V6(ip) => (ip.octets(), true),
        };
        PeerAddr {
            ip,
            port: addr.port().to_le_bytes(),
            v6,
        }
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(addr: PeerAddr) -> Self {
        addr.get()
    }
}

impl PartialEq<SocketAddr> for PeerAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.get() == *other
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

/// A member as stored in the member table.
///
/// Kept small on purpose (64 bytes): every node holds one per member, and
/// the simulator holds N² of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The member's name.
    pub name: NodeName,
    /// Where it receives packets ([`Member::socket_addr`] as a
    /// `SocketAddr`).
    pub addr: PeerAddr,
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
    /// Where it receives packets.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr.get()
    }

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

#[cfg(test)]
mod tests {
    use std::net::{SocketAddrV4, SocketAddrV6};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_member_fits_in_64_bytes() {
        assert_eq!(core::mem::size_of::<PeerAddr>(), 19);
        assert_eq!(core::mem::size_of::<Member>(), 64);
        assert_eq!(core::mem::size_of::<Option<Member>>(), 64);
    }

    #[test]
    fn a_v4_mapped_v6_address_stays_v6() {
        let v6: SocketAddr = "[::ffff:10.0.0.1]:7946".parse().unwrap();
        let v4: SocketAddr = "10.0.0.1:7946".parse().unwrap();
        assert_eq!(PeerAddr::from(v6).get(), v6);
        assert_eq!(PeerAddr::from(v4).get(), v4);
        assert_ne!(PeerAddr::from(v6), PeerAddr::from(v4));
    }

    proptest! {
        #[test]
        fn peer_addr_keeps_ip_and_port(ip4: [u8; 4], ip6: [u8; 16], port: u16) {
            let v4 = SocketAddr::V4(SocketAddrV4::new(ip4.into(), port));
            prop_assert_eq!(PeerAddr::from(v4).get(), v4);
            let v6 = SocketAddr::V6(SocketAddrV6::new(ip6.into(), port, 0, 0));
            prop_assert_eq!(PeerAddr::from(v6).get(), v6);
            prop_assert!(PeerAddr::from(v6) == v6);
        }
    }
}
