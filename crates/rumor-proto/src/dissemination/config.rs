//! How user events spread: exchange mode, termination rule, fanout, pace.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

/// Which way rumors travel in a gossip exchange.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Send the rumors this node is still spreading.
    Push,
    /// Send a digest of what this node has; the peer answers with what it lacks.
    Pull,
    /// Both in one exchange.
    PushPull,
}

/// When a node loses interest in a rumor (Demers et al.), or the
/// memberlist-style retransmit limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Termination {
    /// After `k` contacts that already knew the rumor.
    FeedbackCounter,
    /// With probability 1/k at each contact that already knew the rumor.
    FeedbackCoin,
    /// After `k` sends, whatever the recipients knew.
    BlindCounter,
    /// With probability 1/k after each send.
    BlindCoin,
    /// After `retransmit_mult × ceil(log10(N + 1))` sends, piggybacked on
    /// every packet the node sends (probes and acks included), as memberlist
    /// broadcasts are.
    TransmitLimit,
}

/// A mode or termination name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}: expected one of {expected}")]
pub struct UnknownName {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Mode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "push" => Ok(Mode::Push),
            "pull" => Ok(Mode::Pull),
            "push-pull" => Ok(Mode::PushPull),
            _ => Err(UnknownName {
                kind: "mode",
                value: s.into(),
                expected: "push, pull, push-pull",
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
            Mode::PushPull => "push-pull",
        })
    }
}

impl FromStr for Termination {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "feedback-counter" => Ok(Termination::FeedbackCounter),
            "feedback-coin" => Ok(Termination::FeedbackCoin),
            "blind-counter" => Ok(Termination::BlindCounter),
            "blind-coin" => Ok(Termination::BlindCoin),
            "transmit-limit" => Ok(Termination::TransmitLimit),
            _ => Err(UnknownName {
                kind: "termination",
                value: s.into(),
                expected: "feedback-counter, feedback-coin, blind-counter, blind-coin, transmit-limit",
            }),
        }
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Termination::FeedbackCounter => "feedback-counter",
            Termination::FeedbackCoin => "feedback-coin",
            Termination::BlindCounter => "blind-counter",
            Termination::BlindCoin => "blind-coin",
            Termination::TransmitLimit => "transmit-limit",
        })
    }
}

/// Settings of user-event dissemination.
#[derive(Clone, Debug, PartialEq)]
pub struct DisseminationConfig {
    /// Push, pull or push-pull (ignored by [`Termination::TransmitLimit`],
    /// which always pushes). Push is the default: it costs nothing while
    /// there is nothing to spread, and anti-entropy repairs its residue.
    /// Pull and push-pull poll every round, and finish sooner.
    pub mode: Mode,
    /// When a node stops spreading a rumor.
    pub termination: Termination,
    /// The `k` of the counter and coin rules.
    pub k: u32,
    /// The `k` of the counter and coin rules for rumors that carry key
    /// writes; equal to `k` by default. A write's rumor only hastens what
    /// the store's Merkle anti-entropy guarantees anyway, so a store under
    /// a heavy stream of writes can lower it to trade update latency for a
    /// third less rumor traffic (see `docs/state.md`).
    pub write_k: u32,
    /// Peers contacted each round.
    pub fanout: usize,
    /// Time between two rounds.
    pub interval: Duration,
    /// How long a rumor is remembered: duplicates are recognised, and pull
    /// requests answered, for this long after it arrived.
    pub retention: Duration,
    /// Most rumors remembered at once; the oldest are forgotten first.
    pub max_rumors: usize,
    /// Largest event payload accepted from the application.
    pub max_payload: usize,
    /// Background anti-entropy: every round also sends a digest, and a
    /// digest is answered with every held rumor it lacks, hot or cold. This
    /// repairs the residue rumor mongering leaves, so every live node gets
    /// every event held within `retention`. Off only to study a termination
    /// rule on its own.
    pub anti_entropy: bool,
    /// Outgoing bandwidth budget of the node in bytes per second, or none.
    /// User events wait (highest priority, then youngest, first) while the
    /// budget is spent; membership traffic is never held back.
    pub bandwidth: Option<u64>,
    /// Spend more on young rumors and less on old ones: a rumor in its
    /// r-th round of pushing goes to `2 × fanout / 2^r` peers (at least one)
    /// instead of `fanout`.
    pub adaptive_fanout: bool,
    /// Push a rumor new to this node this long after it arrived (or was
    /// made here), instead of at the next round: the first push of each
    /// hop happens at once, so an update crosses the cluster in a few
    /// network delays rather than a few rounds. Rumors arriving within the
    /// delay share a packet. Each rumor's first push is the only one
    /// brought forward, so it costs no more messages, only less batching
    /// of new rumors with older ones. `None`: every push waits for a round,
    /// as in the classic protocols (the simulator's broadcast studies use
    /// that). Push and push-pull only, and only on a node that has not
    /// pushed for a whole `interval`: under a steady stream of rumors every
    /// round is full of new ones already, and eager packets would only
    /// split its batches.
    pub eager_push: Option<Duration>,
}

impl Default for DisseminationConfig {
    fn default() -> Self {
        DisseminationConfig {
            mode: Mode::Push,
            termination: Termination::FeedbackCounter,
            k: 4,
            write_k: 4,
            fanout: 3,
            interval: Duration::from_millis(200),
            retention: Duration::from_secs(300),
            max_rumors: 16_384,
            max_payload: 64 * 1024,
            anti_entropy: true,
            bandwidth: None,
            adaptive_fanout: false,
            eager_push: Some(Duration::from_millis(5)),
        }
    }
}
