//! Convergence monitoring: every node announces a compact summary of its
//! store (Merkle root, key count, time of the last change), and any node can
//! tell how many live members hold exactly its state and how fast updates
//! reach it.

use serde::{Deserialize, Serialize};

use crate::fast_map::FastMap;
use crate::membership::member::NodeName;
use crate::state::Timestamp;
use crate::time::Instant;

/// The key of a node's summary in this node's maps and queue: a fast hash of
/// its name (local only, never sent; names are compared on every lookup, so
/// a collision costs a summary, not a wrong answer).
pub(crate) fn name_key(name: &str) -> u64 {
    use core::hash::BuildHasher;
    crate::fast_map::FixedHasher::default().hash_one(name)
}

/// One node's store in a few bytes, gossiped to everyone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSummary {
    /// The node.
    pub node: NodeName,
    /// Its Merkle root.
    pub root: u64,
    /// Keys it holds, tombstones included.
    pub keys: u64,
    /// Time of the last change to its store.
    pub last_change: Timestamp,
    /// When it issued this summary (orders summaries of one node).
    pub issued: Timestamp,
    /// The node has seen every member hold its whole state at this time:
    /// tombstones older than the least `stable` of all members are
    /// everywhere and may be collected.
    pub stable: Timestamp,
}

/// Update propagation latency (arrival at this node minus the write's
/// timestamp at its origin) in power-of-two millisecond buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// `buckets[i]` counts latencies in [2^(i−1), 2^i) ms (bucket 0: under 1 ms).
    pub buckets: Vec<u64>,
    /// Number of updates recorded.
    pub count: u64,
    /// Sum of their latencies, in ms.
    pub sum_ms: u64,
    /// Largest latency recorded, in ms.
    pub max_ms: u64,
}

/// Buckets of the histogram: up to 2^31 ms (about 25 days).
const BUCKETS: usize = 32;

impl LatencyHistogram {
    /// Record one update that took `ms` to arrive.
    pub fn record(&mut self, ms: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        let i = (u64::BITS - ms.leading_zeros()) as usize;
        self.buckets[i.min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    /// Upper bound of the bucket holding the `q` quantile (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(if i == 0 {
                    1
                } else {
                    (1u64 << i).min(self.max_ms.max(1))
                });
            }
        }
        Some(self.max_ms)
    }

    /// Mean latency in ms.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }
}

/// How far the cluster is from agreement, as one node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// This node's Merkle root.
    pub root: u64,
    /// Keys this node holds, tombstones included.
    pub keys: u64,
    /// Live members (alive or suspect), this node included.
    pub members: usize,
    /// Of those, members whose last summary has this node's root (this node
    /// included).
    pub agreeing: usize,
    /// `agreeing / members`.
    pub fraction: f64,
    /// Live members whose summary differs, with their last summary.
    pub differing: Vec<StateSummary>,
    /// Live members not heard from yet (a member that never announced a
    /// summary holds an empty store, so these appear only while this
    /// node's store is not empty).
    pub unknown: Vec<NodeName>,
    /// Update propagation latency as measured here.
    pub latency: LatencyHistogram,
}

/// The summaries a node has heard, and its latency record.
#[derive(Debug, Default)]
pub struct Summaries {
    by_node: FastMap<u64, (StateSummary, Instant)>,
    /// Update propagation latency as measured here.
    pub latency: LatencyHistogram,
    /// Root and time of this node's last announced summary.
    pub(crate) announced: Option<(u64, Instant)>,
}

impl Summaries {
    /// Whether `s` is newer than the summary held for its node.
    pub fn is_newer(&self, s: &StateSummary) -> bool {
        self.is_newer_than(s.node.as_str(), s.issued)
    }

    /// Whether a summary of `node` issued at `issued` would be news here.
    pub fn is_newer_than(&self, node: &str, issued: Timestamp) -> bool {
        match self.by_node.get(&name_key(node)) {
            Some((old, _)) => old.node.as_str() != node || old.issued < issued,
            None => true,
        }
    }

    /// Record a summary; true if it is newer than what was held for its node.
    pub fn insert(&mut self, s: StateSummary, now: Instant) -> bool {
        let key = name_key(s.node.as_str());
        match self.by_node.get(&key) {
            Some((old, _)) if old.node == s.node && old.issued >= s.issued => false,
            _ => {
                self.by_node.insert(key, (s, now));
                true
            }
        }
    }

    /// The last summary heard from `node`.
    pub fn get(&self, node: &NodeName) -> Option<&StateSummary> {
        self.by_node
            .get(&name_key(node.as_str()))
            .map(|(s, _)| s)
            .filter(|s| s.node == *node)
    }

    /// Forget the summary of a node no longer in the member table.
    pub fn remove(&mut self, node: &NodeName) {
        self.by_node.remove(&name_key(node.as_str()));
    }

    /// Number of summaries held.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// The nodes summaries are held for.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeName> {
        self.all().map(|s| &s.node)
    }

    /// Every summary held, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &StateSummary> {
        self.by_node.values().map(|(s, _)| s)
    }

    /// Summaries by node-name hash (for the transmit queue).
    pub(crate) fn by_hash(&self, hash: u64) -> Option<&StateSummary> {
        self.by_node.get(&hash).map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_bound_the_recorded_latencies() {
        let mut h = LatencyHistogram::default();
        for ms in [0, 3, 5, 9, 100, 1000] {
            h.record(ms);
        }
        assert_eq!(h.count, 6);
        assert_eq!(h.max_ms, 1000);
        assert_eq!(h.quantile_ms(0.0), Some(1));
        assert!(h.quantile_ms(0.5).unwrap() >= 5);
        assert!(h.quantile_ms(1.0).unwrap() >= 1000);
    }

    #[test]
    fn an_older_summary_does_not_replace_a_newer_one() {
        let mut s = Summaries::default();
        let node: NodeName = "a".parse().unwrap();
        let at = |ms| StateSummary {
            node: node.clone(),
            root: ms,
            keys: 0,
            last_change: Timestamp::ZERO,
            issued: Timestamp {
                wall_ms: ms,
                logical: 0,
            },
            stable: Timestamp::ZERO,
        };
        assert!(s.insert(at(2), Instant::ZERO));
        assert!(!s.insert(at(1), Instant::ZERO));
        assert_eq!(s.get(&node).unwrap().root, 2);
    }
}
