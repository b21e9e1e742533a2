//! The systems under test, each behind [`crate::swarm::Swarm`].

pub mod agents;
#[cfg(feature = "peers")]
pub mod chitchat;
#[cfg(feature = "peers")]
pub mod foca;
pub mod memberlist;
pub mod rumor;

use std::net::SocketAddr;

/// The gossip address of node `i`: loopback ports from 7000 up, inside the
/// run's own network namespace (below the ephemeral range).
pub fn node_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

/// The name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// The node index in a name made by [`node_name`].
pub fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse().ok()
}
