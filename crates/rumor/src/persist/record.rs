//! The node record: who the node is and where its store's clock stands.

use std::net::SocketAddr;

use rumor_proto::state::{ReplicaId, Timestamp};
use rumor_proto::{Incarnation, Node, NodeName, Tags};
use serde::{Deserialize, Serialize};

/// What the data directory keeps about the node itself. The key-value
/// entries and known members are kept beside it, one row each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    /// The node's name: a data directory belongs to one node.
    pub name: NodeName,
    /// The last incarnation the node announced; a restart comes back above it.
    pub incarnation: Incarnation,
    /// The node's tags.
    pub tags: Tags,
    /// Seeds it was asked to join through.
    pub seeds: Vec<SocketAddr>,
    /// The store's replica id: its dot counters live in the entries'
    /// contexts, so with the entries it names every write already made.
    pub replica: ReplicaId,
    /// The hybrid logical clock's last timestamp when the record was written.
    pub clock: Timestamp,
    /// The deletion time of the newest collected tombstone.
    pub gc_horizon: Timestamp,
}

impl NodeRecord {
    /// The record of `node` as it is now.
    pub fn of(node: &Node) -> Self {
        let local = node.local();
        let kv = node.kv();
        NodeRecord {
            name: local.name.clone(),
            incarnation: local.incarnation,
            tags: local.tags().clone(),
            seeds: node.seeds().to_vec(),
            replica: kv.replica(),
            clock: kv.clock().last(),
            gc_horizon: kv.gc_horizon(),
        }
    }

    /// Whether `node`'s identity, incarnation, seeds and replica (what must
    /// be durable before the node speaks) are as recorded here. The clock
    /// and horizon are not compared: a restart also rebuilds them from the
    /// entries, so the record may lag behind them.
    pub fn identity_of(&self, node: &Node) -> bool {
        let local = node.local();
        self.name == local.name
            && self.incarnation == local.incarnation
            && &self.tags == local.tags()
            && self.seeds == node.seeds()
            && self.replica == node.kv().replica()
    }
}
