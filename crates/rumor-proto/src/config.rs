//! Protocol configuration and the `lan`, `fast`, `wan` and `local` profiles.
//!
//! Defaults follow HashiCorp memberlist and Serf (see `docs/membership.md` for
//! the table and the reasons where rumor differs).

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::dissemination::config::DisseminationConfig;
use crate::state::StateConfig;

/// Largest datagram the core will accept, whatever the packet budget.
pub const MAX_DATAGRAM: usize = 65_507;
/// Longest cluster name carried in a packet header.
pub const MAX_CLUSTER_NAME: usize = 64;

/// A named set of defaults for a kind of network.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Profile {
    /// A data-centre network: sub-millisecond round trips, rare loss.
    Lan,
    /// A data-centre network where a crash must be noticed within about a
    /// second: probes five times as often as `lan`, for five times its
    /// probe traffic.
    Fast,
    /// Nodes spread over regions: round trips of tens to hundreds of ms.
    Wan,
    /// Every node on one host (tests, development): fast and tight.
    Local,
}

impl Profile {
    /// The configuration this profile stands for.
    pub fn config(self) -> Config {
        match self {
            Profile::Lan => Config::lan(),
            Profile::Fast => Config::fast(),
            Profile::Wan => Config::wan(),
            Profile::Local => Config::local(),
        }
    }

    /// The profile's name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Fast => "fast",
            Profile::Wan => "wan",
            Profile::Local => "local",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not `lan`, `fast`, `wan` or `local`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}: expected one of lan, fast, wan, local")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "lan" => Ok(Profile::Lan),
            "fast" => Ok(Profile::Fast),
            "wan" => Ok(Profile::Wan),
            "local" => Ok(Profile::Local),
            _ => Err(UnknownProfile(s.to_string())),
        }
    }
}

/// Every tunable of the protocol core.
///
/// Start from a profile ([`Config::lan`], [`Config::fast`], [`Config::wan`],
/// [`Config::local`])
/// and change fields; [`Config::validate`] is called by `Node::new`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Name of the cluster; carried in every packet, and packets of another
    /// cluster are dropped. At most [`MAX_CLUSTER_NAME`] bytes.
    pub cluster: String,
    /// Time between two probes (before local-health scaling).
    pub probe_interval: Duration,
    /// Time to wait for a direct ack before asking others to probe indirectly.
    pub probe_timeout: Duration,
    /// Number of peers asked to probe indirectly.
    pub indirect_checks: usize,
    /// Time between two gossip rounds.
    pub gossip_interval: Duration,
    /// Peers sent a gossip packet each gossip round.
    pub gossip_fanout: usize,
    /// Dead members stay gossip targets this long, so that they learn of
    /// their death and refute it if they are in fact alive.
    pub gossip_to_dead: Duration,
    /// A `dead` or `left` verdict, or this node's refutation, new to this
    /// node leaves in a gossip round this long after it is queued instead
    /// of at the next tick of the gossip timer (at most one such round per
    /// gossip interval). `None` waits for the tick.
    pub eager_gossip: Option<Duration>,
    /// Retransmit limit = `retransmit_mult` × ceil(log10(N + 1)).
    pub retransmit_mult: u32,
    /// Suspicion timeout minimum = `suspicion_mult` × max(1, log10 N) × probe interval.
    pub suspicion_mult: u32,
    /// Suspicion timeout maximum = this × the minimum (Lifeguard).
    pub suspicion_max_timeout_mult: u32,
    /// Base interval of the periodic full-state push-pull exchange; it grows
    /// with the cluster size above 32 members. Zero disables it.
    pub push_pull_interval: Duration,
    /// Local health: the probe interval and timeout are multiplied by up to this.
    pub awareness_max_multiplier: u32,
    /// Enable the Lifeguard refinements: dynamic suspicion timeouts, local
    /// health awareness, nacks and the buddy system. Off gives plain SWIM.
    pub lifeguard: bool,
    /// After a failed direct probe, also probe once over the stream channel
    /// (TCP in the runtime), in case datagrams are blocked.
    pub stream_fallback_probe: bool,
    /// Largest datagram this node builds (bytes, headers included).
    pub packet_budget: usize,
    /// Largest stream frame accepted or built (full-state exchanges).
    pub max_stream_frame: usize,
    /// Bytes a transport layer adds to every datagram and stream frame the
    /// core builds (an encryption envelope: nonce, timestamp and tag). The
    /// core builds datagrams of at most `packet_budget − transport_overhead`
    /// bytes ([`Config::datagram_room`]) and stream frames of at most
    /// `max_stream_frame − transport_overhead` ([`Config::stream_room`]), so
    /// that what goes on the wire stays within `packet_budget` and
    /// `max_stream_frame`. Zero when nothing wraps the core's packets (the
    /// simulator, plaintext); the runtime sets it to its envelope's size.
    pub transport_overhead: usize,
    /// Largest encoded size of a node's tags.
    pub max_tags_bytes: usize,
    /// How often dead and left members are checked for reaping.
    pub reap_interval: Duration,
    /// A dead member is removed from the member table this long after it died.
    pub dead_reap_after: Duration,
    /// A member that left is removed from the member table this long after it left.
    pub left_reap_after: Duration,
    /// How often to try a push-pull exchange with one dead member, former
    /// member or seed, so that partitions heal by themselves.
    pub reconnect_interval: Duration,
    /// How long a failed (reaped) member's address is still tried.
    pub reconnect_timeout: Duration,
    /// How user events and key writes spread.
    pub dissemination: DisseminationConfig,
    /// The replicated key-value store.
    pub state: StateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

impl Config {
    /// Data-centre defaults (memberlist `DefaultLANConfig`, Serf reaping).
    pub fn lan() -> Self {
        Config {
            cluster: "default".to_string(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            gossip_to_dead: Duration::from_secs(30),
            eager_gossip: Some(Duration::from_millis(5)),
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            push_pull_interval: Duration::from_secs(30),
            awareness_max_multiplier: 8,
            lifeguard: true,
            stream_fallback_probe: true,
            packet_budget: 1400,
            max_stream_frame: 16 * 1024 * 1024,
            transport_overhead: 0,
            max_tags_bytes: 512,
            reap_interval: Duration::from_secs(15),
            dead_reap_after: Duration::from_secs(24 * 3600),
            left_reap_after: Duration::from_secs(24 * 3600),
            reconnect_interval: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(24 * 3600),
            dissemination: DisseminationConfig::default(),
            state: StateConfig::default(),
        }
    }

    /// `lan` with failure detection about five times faster: a probe
    /// every 200 ms with a 100 ms timeout, and suspicion timeouts of
    /// 2 × log10(N) probe intervals (0.4 s at 10 nodes, 0.8 s at 10,000;
    /// Lifeguard starts them at six times that). Probe traffic is five
    /// times `lan`'s (about 470 bytes per node per second), still a small
    /// fraction of what a heartbeat-gossip detector spends for the same
    /// speed. Use it where round trips stay well under 100 ms.
    pub fn fast() -> Self {
        Config {
            probe_interval: Duration::from_millis(200),
            probe_timeout: Duration::from_millis(100),
            suspicion_mult: 2,
            ..Config::lan()
        }
    }

    /// Wide-area defaults (memberlist `DefaultWANConfig`).
    pub fn wan() -> Self {
        Config {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            gossip_interval: Duration::from_millis(500),
            gossip_fanout: 4,
            gossip_to_dead: Duration::from_secs(60),
            suspicion_mult: 6,
            push_pull_interval: Duration::from_secs(60),
            reconnect_interval: Duration::from_secs(60),
            ..Config::lan()
        }
    }

    /// Single-host defaults (memberlist `DefaultLocalConfig`).
    pub fn local() -> Self {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            gossip_interval: Duration::from_millis(100),
            gossip_to_dead: Duration::from_secs(15),
            retransmit_mult: 2,
            suspicion_mult: 3,
            push_pull_interval: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(15),
            ..Config::lan()
        }
    }

    /// Check that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.is_empty() || self.cluster.len() > MAX_CLUSTER_NAME {
            return Err(ConfigError::ClusterName(self.cluster.len()));
        }
        for (name, d) in [
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("gossip_interval", self.gossip_interval),
            ("reap_interval", self.reap_interval),
            ("reconnect_interval", self.reconnect_interval),
            (
                "state.anti_entropy_interval",
                self.state.anti_entropy_interval,
            ),
            ("state.summary_interval", self.state.summary_interval),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.probe_timeout > self.probe_interval {
            return Err(ConfigError::ProbeTimeoutTooLong {
                timeout: self.probe_timeout,
                interval: self.probe_interval,
            });
        }
        if !(MIN_PACKET_BUDGET..=MAX_DATAGRAM).contains(&self.packet_budget) {
            return Err(ConfigError::PacketBudget(self.packet_budget));
        }
        if self.datagram_room() < MIN_PACKET_BUDGET {
            return Err(ConfigError::TransportOverhead {
                overhead: self.transport_overhead,
                budget: self.packet_budget,
            });
        }
        let largest_alive = self.max_tags_bytes + ALIVE_OVERHEAD;
        if self.datagram_room() < largest_alive {
            return Err(ConfigError::TagsExceedPacket {
                tags: self.max_tags_bytes,
                budget: self.packet_budget,
            });
        }
        if self.max_stream_frame < self.packet_budget {
            return Err(ConfigError::StreamFrame(self.max_stream_frame));
        }
        if self.retransmit_mult == 0 || self.suspicion_mult == 0 {
            return Err(ConfigError::ZeroMultiplier);
        }
        if self.suspicion_max_timeout_mult == 0 || self.awareness_max_multiplier == 0 {
            return Err(ConfigError::ZeroMultiplier);
        }
        Ok(())
    }

    /// Largest datagram the core builds: `packet_budget` less the
    /// transport's overhead.
    pub fn datagram_room(&self) -> usize {
        self.packet_budget.saturating_sub(self.transport_overhead)
    }

    /// Largest stream frame the core builds: `max_stream_frame` less the
    /// transport's overhead.
    pub fn stream_room(&self) -> usize {
        self.max_stream_frame
            .saturating_sub(self.transport_overhead)
    }

    /// Retransmit limit for a cluster of `n` members:
    /// `retransmit_mult × ceil(log10(n + 1))`.
    pub fn retransmit_limit(&self, n: usize) -> u32 {
        let log = ((n as f64) + 1.0).log10().ceil().max(1.0) as u32;
        self.retransmit_mult.saturating_mul(log)
    }

    /// Lifeguard's minimum suspicion timeout for a cluster of `n` members:
    /// `suspicion_mult × max(1, log10 n) × probe_interval`.
    pub fn suspicion_min_timeout(&self, n: usize) -> Duration {
        let scale = (n.max(1) as f64).log10().max(1.0);
        self.probe_interval
            .mul_f64(f64::from(self.suspicion_mult) * scale)
    }

    /// Lifeguard's maximum suspicion timeout: the minimum times
    /// `suspicion_max_timeout_mult`.
    pub fn suspicion_max_timeout(&self, n: usize) -> Duration {
        self.suspicion_min_timeout(n) * self.suspicion_max_timeout_mult
    }

    /// Push-pull interval for `n` members: the base interval, multiplied by
    /// `ceil(log2 n − 5) + 1` above 32 members so that the full-state
    /// exchange costs each node about the same as the cluster grows.
    pub fn push_pull_interval_for(&self, n: usize) -> Duration {
        if n <= 32 {
            return self.push_pull_interval;
        }
        let mult = ((n as f64).log2() - 5.0).ceil() as u32 + 1;
        self.push_pull_interval * mult
    }
}

/// Smallest packet budget: it fits the header with the longest cluster name
/// and any single message but a push-pull (a `suspect` or `dead` naming two
/// nodes of the longest name takes about 335 bytes), with room to spare.
pub const MIN_PACKET_BUDGET: usize = 512;

/// Room an `alive` message needs besides its tags: packet header with the
/// longest cluster name, length prefix, incarnation, the longest node name,
/// an IPv6 address, and the tag map's own prefixes (tags are counted with two
/// bytes per entry already).
const ALIVE_OVERHEAD: usize =
    3 + MAX_CLUSTER_NAME + 3 + 1 + 5 + 2 + crate::membership::member::MAX_NAME_LEN + 24 + 5;

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Cluster name empty or too long.
    #[error("cluster name must be 1 to {MAX_CLUSTER_NAME} bytes, got {0}")]
    ClusterName(usize),
    /// A period that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// Probe timeout longer than the probe interval.
    #[error("probe_timeout ({timeout:?}) must not exceed probe_interval ({interval:?})")]
    ProbeTimeoutTooLong {
        /// The configured probe timeout.
        timeout: Duration,
        /// The configured probe interval.
        interval: Duration,
    },
    /// Packet budget outside the supported range.
    #[error("packet_budget must be {MIN_PACKET_BUDGET} to {MAX_DATAGRAM} bytes, got {0}")]
    PacketBudget(usize),
    /// The transport's overhead leaves less than [`MIN_PACKET_BUDGET`] of
    /// the packet budget to the core.
    #[error(
        "packet_budget ({budget}) less the transport overhead ({overhead}) is under \
         {MIN_PACKET_BUDGET} bytes: raise packet_budget"
    )]
    TransportOverhead {
        /// The transport's overhead per packet.
        overhead: usize,
        /// The configured packet budget.
        budget: usize,
    },
    /// Tags allowed so large that an `alive` could not fit in a packet.
    #[error(
        "max_tags_bytes ({tags}) does not fit in packet_budget ({budget}) less the \
         transport overhead: raise packet_budget or lower max_tags_bytes"
    )]
    TagsExceedPacket {
        /// The configured tag limit.
        tags: usize,
        /// The configured packet budget.
        budget: usize,
    },
    /// Stream frame limit smaller than a packet.
    #[error("max_stream_frame ({0} bytes) must be at least packet_budget")]
    StreamFrame(usize),
    /// A multiplier that must be at least one is zero.
    #[error(
        "retransmit_mult, suspicion_mult, suspicion_max_timeout_mult and awareness_max_multiplier must be at least 1"
    )]
    ZeroMultiplier,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmit_limit_matches_memberlist() {
        let c = Config::lan();
        assert_eq!(c.retransmit_limit(100), 12);
        assert_eq!(c.retransmit_limit(1000), 16);
        assert_eq!(c.retransmit_limit(1), 4);
    }

    #[test]
    fn suspicion_bounds() {
        let c = Config::lan();
        assert_eq!(c.suspicion_min_timeout(1000), Duration::from_secs(12));
        assert_eq!(c.suspicion_max_timeout(1000), Duration::from_secs(72));
        assert_eq!(c.suspicion_min_timeout(3), Duration::from_secs(4));
    }

    #[test]
    fn push_pull_scales_with_size() {
        let c = Config::lan();
        assert_eq!(c.push_pull_interval_for(10), Duration::from_secs(30));
        assert_eq!(c.push_pull_interval_for(1000), Duration::from_secs(180));
    }

    #[test]
    fn transport_overhead_comes_out_of_the_budget() {
        let c = Config {
            transport_overhead: 36,
            ..Config::lan()
        };
        c.validate().unwrap();
        assert_eq!(c.datagram_room(), 1400 - 36);
        assert_eq!(c.stream_room(), 16 * 1024 * 1024 - 36);
        let tight = Config {
            packet_budget: MIN_PACKET_BUDGET + 10,
            transport_overhead: 36,
            ..Config::lan()
        };
        assert_eq!(
            tight.validate(),
            Err(ConfigError::TransportOverhead {
                overhead: 36,
                budget: MIN_PACKET_BUDGET + 10
            })
        );
        // The largest alive must fit in what is left, not in the budget.
        let tags = Config {
            max_tags_bytes: 1400 - ALIVE_OVERHEAD,
            ..Config::lan()
        };
        tags.validate().unwrap();
        let squeezed = Config {
            transport_overhead: 36,
            ..tags
        };
        assert!(matches!(
            squeezed.validate(),
            Err(ConfigError::TagsExceedPacket { .. })
        ));
    }

    #[test]
    fn profiles_validate_and_parse() {
        for p in ["lan", "fast", "WAN", "local"] {
            let profile: Profile = p.parse().unwrap();
            profile.config().validate().unwrap();
        }
        assert!("moon".parse::<Profile>().is_err());
        let bad = Config {
            probe_timeout: Duration::from_secs(5),
            ..Config::lan()
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::ProbeTimeoutTooLong { .. })
        ));
    }
}
