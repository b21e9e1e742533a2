//! The simulated network: latency, jitter, datagram loss and partitions.
//!
//! Every packet gets a latency of `latency` plus a uniform jitter in
//! `[0, jitter]`. Datagrams are lost with probability `loss`; stream frames
//! model TCP and are never lost at random, but partitions (and crashed or
//! absent receivers, which the engine checks) drop both kinds.

use core::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumor_proto::{Channel, Instant};
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// How the network behaves for every link.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Fixed one-way latency of every packet and stream frame.
    pub latency: Duration,
    /// Extra latency drawn uniformly in `[0, jitter]` per packet.
    pub jitter: Duration,
    /// Probability that a datagram is lost (0 to 1; stream frames are never
    /// lost at random).
    pub loss: f64,
}

impl Default for NetworkConfig {
    /// 1 ms latency, 0.5 ms jitter, no loss.
    fn default() -> Self {
        NetworkConfig {
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            loss: 0.0,
        }
    }
}

/// A network configuration that cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// Loss outside `[0, 1]`.
    #[error("loss must be between 0 and 1, got {0}")]
    Loss(f64),
}

impl NetworkConfig {
    /// Check that the values make sense.
    pub fn validate(&self) -> Result<(), NetworkError> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(NetworkError::Loss(self.loss));
        }
        Ok(())
    }
}

/// Which way a [`Partition`] cuts the links between its groups.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Nodes in different groups cannot exchange packets either way.
    Both,
    /// Packets from a node in an earlier group to a node in a later group are
    /// dropped; packets the other way are delivered. With groups `[a, b]`:
    /// a→b is cut, b→a still works.
    OneWay,
}

/// Nodes split into groups that cannot reach each other from `start`
/// (inclusive) to `end` (exclusive).
///
/// Nodes listed in no group form one more group of their own, after the
/// listed ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// When the partition begins.
    pub start: Instant,
    /// When it heals.
    pub end: Instant,
    /// Which links it cuts.
    pub direction: Direction,
    /// Group of each node, by node id; nodes past the end are in `rest`.
    groups: Vec<u32>,
    rest: u32,
}

impl Partition {
    /// A two-way partition of `groups` between `start` and `end`.
    pub fn new(start: Instant, end: Instant, groups: &[Vec<NodeId>]) -> Self {
        let rest = u32::try_from(groups.len()).unwrap_or(u32::MAX);
        let len = groups
            .iter()
            .flatten()
            .max()
            .map_or(0, |&max| max.saturating_add(1));
        let mut assignment = vec![rest; len];
        for (g, members) in groups.iter().enumerate() {
            let g = u32::try_from(g).unwrap_or(u32::MAX);
            for &node in members {
                assignment[node] = g;
            }
        }
        Partition {
            start,
            end,
            direction: Direction::Both,
            groups: assignment,
            rest,
        }
    }

    /// The same partition, cutting only the links from earlier groups to
    /// later ones (see [`Direction::OneWay`]).
    pub fn one_way(mut self) -> Self {
        self.direction = Direction::OneWay;
        self
    }

    /// Whether the partition is in force at `at`.
    pub fn is_active(&self, at: Instant) -> bool {
        self.start <= at && at < self.end
    }

    /// The group `node` is in.
    pub fn group(&self, node: NodeId) -> u32 {
        self.groups.get(node).copied().unwrap_or(self.rest)
    }

    /// Whether this partition (ignoring its time window) drops packets from
    /// `from` to `to`.
    pub fn cuts(&self, from: NodeId, to: NodeId) -> bool {
        let (a, b) = (self.group(from), self.group(to));
        match self.direction {
            Direction::Both => a != b,
            Direction::OneWay => a < b,
        }
    }
}

/// What the network does with one packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives at this instant.
    Arrives(Instant),
    /// A datagram lost at random.
    Lost,
    /// Dropped by an active partition.
    Partitioned,
}

/// Counters of what happened to packets in the network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// Datagrams handed to a receiving node.
    pub datagrams_delivered: u64,
    /// Stream frames handed to a receiving node.
    pub stream_frames_delivered: u64,
    /// Datagrams lost at random.
    pub lost: u64,
    /// Dropped by a partition (when sent or while in flight).
    pub partitioned: u64,
    /// Addressed to a node that was not running (crashed, left, not yet
    /// started, or an unknown address).
    pub unreachable: u64,
}

impl NetworkStats {
    /// Packets of either kind handed to a receiving node.
    pub fn delivered(&self) -> u64 {
        self.datagrams_delivered + self.stream_frames_delivered
    }
}

/// The network model: configuration, active partitions and the one RNG that
/// draws every loss and jitter.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
    rng: ChaCha8Rng,
    partitions: Vec<Partition>,
    stats: NetworkStats,
}

impl Network {
    /// A network with `config` whose random draws come from `seed`.
    pub fn new(config: NetworkConfig, seed: u64) -> Self {
        Network {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            partitions: Vec::new(),
            stats: NetworkStats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Add a partition.
    pub fn add_partition(&mut self, partition: Partition) {
        self.partitions.push(partition);
    }

    /// Every partition added, active or not.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// Whether an active partition drops packets from `from` to `to` at `at`.
    pub fn blocked(&self, at: Instant, from: NodeId, to: NodeId) -> bool {
        self.partitions
            .iter()
            .any(|p| p.is_active(at) && p.cuts(from, to))
    }

    /// Whether `a` and `b` are cut off from each other in either direction
    /// at `at`.
    pub fn separated(&self, at: Instant, a: NodeId, b: NodeId) -> bool {
        self.blocked(at, a, b) || self.blocked(at, b, a)
    }

    /// The least time any packet takes: the latency (jitter only adds).
    pub fn min_delay(&self) -> Duration {
        self.config.latency
    }

    /// Decide the fate of a packet sent at `now` from `from` to `to`, and
    /// count it.
    pub fn route(&mut self, now: Instant, from: NodeId, to: NodeId, channel: Channel) -> Fate {
        if self.blocked(now, from, to) {
            self.stats.partitioned += 1;
            return Fate::Partitioned;
        }
        if channel == Channel::Datagram
            && self.config.loss > 0.0
            && self.rng.random_bool(self.config.loss.min(1.0))
        {
            self.stats.lost += 1;
            return Fate::Lost;
        }
        let jitter = if self.config.jitter.is_zero() {
            Duration::ZERO
        } else {
            let max = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(self.rng.random_range(0..=max))
        };
        Fate::Arrives(now + self.config.latency + jitter)
    }

    /// Change the datagram loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) -> Result<(), NetworkError> {
        let config = NetworkConfig {
            loss,
            ..self.config.clone()
        };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Count a packet dropped because its receiver was not running.
    pub(crate) fn record_unreachable(&mut self) {
        self.stats.unreachable += 1;
    }

    /// Count a packet handed to its receiver.
    pub(crate) fn record_delivered(&mut self, channel: Channel) {
        match channel {
            Channel::Datagram => self.stats.datagrams_delivered += 1,
            Channel::Stream => self.stats.stream_frames_delivered += 1,
        }
    }

    /// Count a packet dropped by a partition while in flight.
    pub(crate) fn record_partitioned(&mut self) {
        self.stats.partitioned += 1;
    }

    /// What happened to packets so far.
    pub fn stats(&self) -> &NetworkStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(loss: f64) -> Network {
        Network::new(
            NetworkConfig {
                latency: Duration::from_millis(10),
                jitter: Duration::from_millis(5),
                loss,
            },
            42,
        )
    }

    #[test]
    fn latency_and_jitter_bound_arrival() {
        let mut n = net(0.0);
        let now = Instant::from_millis(100);
        for _ in 0..1000 {
            match n.route(now, 0, 1, Channel::Datagram) {
                Fate::Arrives(at) => {
                    assert!(at >= Instant::from_millis(110) && at <= Instant::from_millis(115))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn total_loss_drops_datagrams_but_never_stream_frames() {
        let mut n = net(1.0);
        for _ in 0..100 {
            assert_eq!(n.route(Instant::ZERO, 0, 1, Channel::Datagram), Fate::Lost);
            assert!(matches!(
                n.route(Instant::ZERO, 0, 1, Channel::Stream),
                Fate::Arrives(_)
            ));
        }
        assert_eq!(n.stats().lost, 100);
    }

    #[test]
    fn partial_loss_is_close_to_its_rate() {
        let mut n = net(0.2);
        let lost = (0..10_000)
            .filter(|_| n.route(Instant::ZERO, 0, 1, Channel::Datagram) == Fate::Lost)
            .count();
        assert!((1_700..2_300).contains(&lost), "lost {lost} of 10000");
    }

    #[test]
    fn partitions_cut_both_ways_while_active() {
        let mut n = net(0.0);
        let (start, end) = (Instant::from_millis(1000), Instant::from_millis(2000));
        n.add_partition(Partition::new(start, end, &[vec![0, 1], vec![2]]));
        let during = Instant::from_millis(1500);
        assert!(n.blocked(during, 0, 2) && n.blocked(during, 2, 1));
        assert!(!n.blocked(during, 0, 1));
        // Node 3 is in no group: it is in the implicit rest group.
        assert!(n.blocked(during, 3, 2) && n.blocked(during, 0, 3));
        assert!(!n.blocked(Instant::from_millis(999), 0, 2));
        assert!(!n.blocked(end, 0, 2), "the end is exclusive");
        assert_eq!(n.route(during, 2, 0, Channel::Stream), Fate::Partitioned);
        assert_eq!(n.stats().partitioned, 1);
    }

    #[test]
    fn one_way_partition_cuts_one_direction() {
        let mut n = net(0.0);
        let p = Partition::new(Instant::ZERO, Instant::from_millis(10), &[vec![0], vec![1]]);
        n.add_partition(p.one_way());
        let at = Instant::from_millis(5);
        assert!(n.blocked(at, 0, 1));
        assert!(!n.blocked(at, 1, 0));
        assert!(n.separated(at, 1, 0));
    }

    #[test]
    fn validate_rejects_bad_loss() {
        for loss in [-0.1, 1.5, f64::NAN] {
            let c = NetworkConfig {
                loss,
                ..NetworkConfig::default()
            };
            assert!(c.validate().is_err(), "{loss}");
        }
    }
}
