//! The `broadcast` scenario behind `rumor sim broadcast`: a cluster forms,
//! its membership converges, then `updates` user events are broadcast from
//! random nodes, and the report says how far and how fast they spread and
//! what they cost (coverage and residue, rounds and time until every node
//! had them, messages per node, relative message redundancy, last delivery
//! hop), to set against the theory of rumor spreading.
//!
//! The run has three phases:
//!
//! 1. **Bootstrap.** With [`Bootstrap::Formed`] (the default) every node
//!    starts at 0 with every other in its member table, alive
//!    ([`Sim::add_formed_cluster`]): no join is simulated. With
//!    [`Bootstrap::Join`] every node starts within `min(5 s, nodes × 1 ms)`
//!    and joins through node-0, as in the `membership` scenario. With
//!    [`Bootstrap::Direct`] every node starts alone at 0; node-0 contacts
//!    every node (a join with all of them as seeds), and once it knows them
//!    all every node joins through it and receives its full member list. The
//!    views end up the same either way; `Direct` avoids the storm of join
//!    rumors that makes `Join` slow beyond a few thousand nodes, and
//!    `Formed` also the full-state exchanges that still cost `Direct`
//!    minutes at 10,000 nodes.
//! 2. **Settle.** The run waits until every live node lists every other as
//!    alive (at most [`BroadcastParams::converge_timeout`]), then a settle
//!    time, so that the full-state exchanges that follow joins are over
//!    before the first update (with `Formed` there are none: it only lets
//!    every node's periodic timers run once); the membership traffic of its
//!    last [`IDLE_WINDOW`] is the idle baseline
//!    ([`BroadcastReport::idle_bytes_per_node_per_s`]).
//! 3. **Dissemination.** Update `j` is broadcast by a random node (distinct
//!    nodes while `updates <= nodes`) at `j × spacing` after the settle
//!    time. The run ends when no node has sent a copy of any update for a
//!    quiet window of rounds (see [`BroadcastRun::run`]) or at the deadline,
//!    `duration` after the last injection.
//!
//! ```
//! use rumor_sim::{BroadcastParams, run_broadcast};
//!
//! let params = BroadcastParams {
//!     nodes: 20,
//!     updates: 2,
//!     anti_entropy: true,
//!     ..BroadcastParams::default()
//! };
//! let report = run_broadcast(params, &mut |_| {}).unwrap();
//! assert_eq!(report.coverage, 1.0);
//! assert!(report.rounds_to_all.max.is_some());
//! ```

use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumor_proto::{
    Command, Config, Event, Instant, Mode, Priority, Profile, Termination, UserEvent,
};
use serde::{Deserialize, Serialize};

use crate::NodeId;
use crate::membership_run::MAX_START_SPREAD;
use crate::network::NetworkConfig;
use crate::report::Percentiles;
use crate::sim::{Sim, SimConfig, SimError};

/// Name of the user event carrying update `j`: this prefix and `j`.
pub const UPDATE_NAME_PREFIX: &str = "update-";

/// With [`Bootstrap::Direct`], the joins through node-0 are spread over at
/// most this long (or `nodes × 50 µs`, if less).
pub const DIRECT_JOIN_SPREAD: Duration = Duration::from_millis(500);

/// The membership background ([`BroadcastReport::idle_bytes_per_node_per_s`])
/// is measured over the last this long of the settle time (or its last
/// half, if shorter).
pub const IDLE_WINDOW: Duration = Duration::from_secs(2);

/// Longest virtual schedule a run may have (a year).
pub const MAX_SCHEDULE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Rounds without a copy of any update sent, anywhere, after which push,
/// push-pull and transmit-limit runs end (see [`BroadcastRun::run`]).
pub const QUIET_ROUNDS: u32 = 10;

/// How the cluster forms before the updates.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bootstrap {
    /// Every node starts with the formed cluster's member table, without
    /// any join ([`Sim::add_formed_cluster`]): the same views as after the
    /// joins, at no cost beyond filling the tables.
    #[default]
    Formed,
    /// Every node starts within `min(5 s, nodes × 1 ms)` and joins through
    /// node-0, as in the `membership` scenario: realistic, but the join
    /// rumors cost O(n²) work, minutes of wall time at 10,000 nodes.
    Join,
    /// Every node starts alone; node-0 contacts all of them, then each joins
    /// through node-0 and takes its full member list. Same views, no storm
    /// of join rumors, but n full-state replies and n join syncs: about
    /// 3 × 10^8 member entries encoded and merged at 10,000 nodes.
    Direct,
}

impl Bootstrap {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bootstrap::Formed => "formed",
            Bootstrap::Join => "join",
            Bootstrap::Direct => "direct",
        }
    }
}

impl fmt::Display for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bootstrap name that is not `formed`, `join` or `direct`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bootstrap {0:?}: expected formed, join or direct")]
pub struct UnknownBootstrap(pub String);

impl FromStr for Bootstrap {
    type Err = UnknownBootstrap;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "formed" => Ok(Bootstrap::Formed),
            "join" => Ok(Bootstrap::Join),
            "direct" => Ok(Bootstrap::Direct),
            _ => Err(UnknownBootstrap(s.to_string())),
        }
    }
}

/// Everything the `broadcast` scenario can vary.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastParams {
    /// Cluster size (at least 2).
    pub nodes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Protocol profile; the dissemination settings below replace its own.
    pub profile: Profile,
    /// How the cluster forms.
    pub bootstrap: Bootstrap,
    /// Push, pull or push-pull.
    pub mode: Mode,
    /// When a node stops spreading an update.
    pub termination: Termination,
    /// The `k` of the counter and coin rules (at least 1).
    pub k: u32,
    /// Peers contacted each round (at least 1).
    pub fanout: usize,
    /// Time between two dissemination rounds (one "round" in the report).
    pub interval: Duration,
    /// Background anti-entropy (off: the residue of the termination rule
    /// shows on its own).
    pub anti_entropy: bool,
    /// Outgoing bandwidth budget of every node, bytes per second.
    pub bandwidth: Option<u64>,
    /// Adaptive fanout: a rumor in its r-th round goes to
    /// `2 × fanout / 2^r` peers.
    pub adaptive_fanout: bool,
    /// Eager push of rumors new to a node, after this delay; `None` (the
    /// default here, unlike the profiles): every push waits for a round, so
    /// that rounds mean what the theory of rumor mongering counts.
    pub eager_push: Option<Duration>,
    /// Datagram loss probability, in `[0, 1)`.
    pub loss: f64,
    /// One-way latency.
    pub latency: Duration,
    /// Maximum extra jitter per packet.
    pub jitter: Duration,
    /// Number of updates broadcast (at least 1).
    pub updates: usize,
    /// Time between two injections; `None`: one interval.
    pub spacing: Option<Duration>,
    /// Payload size of each update, in bytes.
    pub payload_bytes: usize,
    /// The run ends at the latest this long after the last injection.
    pub duration: Duration,
    /// Longest wait for membership to converge; the updates go out then
    /// even if it has not.
    pub converge_timeout: Duration,
    /// Wait between membership convergence and the first update; `None`:
    /// twice the membership settle time (gossip interval × retransmit
    /// limit), so that the full-state exchanges following joins are over,
    /// plus [`IDLE_WINDOW`] to measure the membership background; with
    /// [`Bootstrap::Formed`], which has no joins to wait out, twice
    /// [`IDLE_WINDOW`].
    pub settle: Option<Duration>,
}

impl BroadcastParams {
    /// The defaults with `profile`'s dissemination settings.
    pub fn with_profile(profile: Profile) -> Self {
        let d = profile.config().dissemination;
        BroadcastParams {
            nodes: 100,
            seed: 1,
            profile,
            bootstrap: Bootstrap::Formed,
            mode: d.mode,
            termination: d.termination,
            k: d.k,
            fanout: d.fanout,
            interval: d.interval,
            anti_entropy: false,
            bandwidth: d.bandwidth,
            adaptive_fanout: d.adaptive_fanout,
            eager_push: None,
            loss: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            updates: 10,
            spacing: None,
            payload_bytes: 16,
            duration: Duration::from_secs(60),
            converge_timeout: Duration::from_secs(120),
            settle: None,
        }
    }

    /// Time between two injections.
    pub fn spacing(&self) -> Duration {
        self.spacing.unwrap_or(self.interval)
    }

    /// The node configuration: the profile with these dissemination settings.
    pub fn node_config(&self) -> Config {
        let mut config = self.profile.config();
        let d = &mut config.dissemination;
        d.mode = self.mode;
        d.termination = self.termination;
        d.k = self.k;
        d.fanout = self.fanout;
        d.interval = self.interval;
        d.anti_entropy = self.anti_entropy;
        d.bandwidth = self.bandwidth;
        d.adaptive_fanout = self.adaptive_fanout;
        d.eager_push = self.eager_push;
        config
    }

    /// Wait between membership convergence and the first update.
    pub fn settle(&self) -> Duration {
        self.settle.unwrap_or_else(|| match self.bootstrap {
            // Every periodic timer runs once before the idle window.
            Bootstrap::Formed => IDLE_WINDOW * 2,
            Bootstrap::Join | Bootstrap::Direct => {
                let config = self.profile.config();
                config.gossip_interval * config.retransmit_limit(self.nodes) * 2 + IDLE_WINDOW
            }
        })
    }

    /// Check the parameters.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.nodes < 2 {
            return Err(ParamError::TooFewNodes);
        }
        if !(0.0..1.0).contains(&self.loss) {
            return Err(ParamError::Loss(self.loss));
        }
        if self.updates == 0 {
            return Err(ParamError::NoUpdates);
        }
        if self.k == 0 {
            return Err(ParamError::Zero("--k"));
        }
        if self.fanout == 0 {
            return Err(ParamError::Zero("--fanout"));
        }
        if self.interval.is_zero() {
            return Err(ParamError::Zero("--interval-ms"));
        }
        if self.bandwidth == Some(0) {
            return Err(ParamError::Zero("--bandwidth"));
        }
        let updates = u32::try_from(self.updates - 1).map_err(|_| ParamError::TooLong)?;
        self.spacing()
            .checked_mul(updates)
            .and_then(|d| d.checked_add(self.duration))
            .and_then(|d| d.checked_add(self.settle()))
            .and_then(|d| d.checked_add(self.converge_timeout))
            .filter(|d| *d <= MAX_SCHEDULE)
            .ok_or(ParamError::TooLong)?;
        let max = self.profile.config().dissemination.max_payload;
        if self.payload_bytes > max {
            return Err(ParamError::Payload {
                size: self.payload_bytes,
                max,
            });
        }
        Ok(())
    }
}

impl Default for BroadcastParams {
    /// The CLI's defaults: 100 nodes on the `lan` profile, its dissemination
    /// settings (push-pull, feedback counter, k = 4, fanout 3, 200 ms) without
    /// anti-entropy, 10 updates of 16 bytes one round apart, 1 ms latency
    /// with 0.5 ms jitter, no loss.
    fn default() -> Self {
        BroadcastParams::with_profile(Profile::Lan)
    }
}

/// Parameters the scenario cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// Fewer than two nodes.
    #[error("--nodes must be at least 2")]
    TooFewNodes,
    /// Loss outside `[0, 1)`.
    #[error("--loss must be at least 0 and below 1, got {0}")]
    Loss(f64),
    /// No updates.
    #[error("--updates must be at least 1")]
    NoUpdates,
    /// A setting that must be positive is zero.
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    /// The schedule (waits, injections and deadline) does not fit
    /// [`MAX_SCHEDULE`].
    #[error(
        "the run would last longer than a year of virtual time: fewer --updates, a shorter --spacing-ms or --duration"
    )]
    TooLong,
    /// Payload over the profile's limit.
    #[error("--payload-bytes ({size}) exceeds the largest event payload ({max})")]
    Payload {
        /// Requested size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// The scenario could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BroadcastError {
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The simulation refused its setup.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Percentiles of per-update values where `None` (an update that never
/// reached every node) ranks above every number: a percentile that falls on
/// such an update is `None`.
fn percentiles_with_missing(values: &[Option<f64>]) -> Percentiles {
    let mut v: Vec<Option<f64>> = values
        .iter()
        .copied()
        .filter(|x| x.is_none_or(|x| !x.is_nan()))
        .collect();
    v.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(b),
        (Some(_), None) => core::cmp::Ordering::Less,
        (None, Some(_)) => core::cmp::Ordering::Greater,
        (None, None) => core::cmp::Ordering::Equal,
    });
    let rank = |p: f64| {
        if v.is_empty() {
            return None;
        }
        let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[idx]
    };
    Percentiles {
        p50: rank(0.50),
        p99: rank(0.99),
        max: rank(1.0),
    }
}

/// What is known about one update.
#[derive(Debug)]
struct UpdateTrack {
    /// When its broadcast was scheduled.
    injected_at: Instant,
    /// Nodes that delivered it, one bit each.
    seen: Vec<u64>,
    delivered: usize,
    last_at: Option<Instant>,
    max_hops: u16,
    /// Deliveries by round: index `r` counts those at most `r` intervals,
    /// and more than `r − 1`, after the injection.
    by_round: Vec<u32>,
}

/// Deliveries of every update, fed by the simulation's event hook.
#[derive(Debug, Default)]
struct Tracker {
    interval_ns: u64,
    updates: Vec<UpdateTrack>,
    /// A node delivered an update it had delivered before (must stay 0).
    repeated: u64,
    /// User events that are not updates of this run (must stay 0).
    foreign: u64,
}

impl Tracker {
    fn delivered(&mut self, at: Instant, node: NodeId, event: &UserEvent) {
        let Some(u) = event
            .name
            .strip_prefix(UPDATE_NAME_PREFIX)
            .and_then(|j| j.parse::<usize>().ok())
            .and_then(|j| self.updates.get_mut(j))
        else {
            self.foreign += 1;
            return;
        };
        let (word, bit) = (node / 64, 1u64 << (node % 64));
        if u.seen[word] & bit != 0 {
            self.repeated += 1;
            return;
        }
        u.seen[word] |= bit;
        u.delivered += 1;
        u.last_at = Some(u.last_at.map_or(at, |t| t.max(at)));
        u.max_hops = u.max_hops.max(event.hops);
        let dt = (at - u.injected_at).as_nanos();
        let dt = u64::try_from(dt).unwrap_or(u64::MAX);
        let round = usize::try_from(dt.div_ceil(self.interval_ns.max(1))).unwrap_or(usize::MAX);
        if round < 1 << 24 {
            if u.by_round.len() <= round {
                u.by_round.resize(round + 1, 0);
            }
            u.by_round[round] += 1;
        }
    }
}

/// How the dissemination phase ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// No copy of any update was sent for the quiet window: every update
    /// had gone cold everywhere.
    Quiet,
    /// The deadline came first.
    Deadline,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Quiet => "quiet",
            Ending::Deadline => "deadline",
        })
    }
}

/// The result of the `broadcast` scenario (`rumor sim broadcast`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BroadcastReport {
    /// Cluster size.
    pub nodes: usize,
    /// Simulation seed.
    pub seed: u64,
    /// Protocol profile (`lan`, `wan`, `local`).
    pub profile: String,
    /// How the cluster formed (`formed`, `join`, `direct`).
    pub bootstrap: Bootstrap,
    /// Exchange mode (`push`, `pull`, `push-pull`).
    pub mode: String,
    /// Termination rule.
    pub termination: String,
    /// The `k` of the termination rule.
    pub k: u32,
    /// Peers contacted per round.
    pub fanout: usize,
    /// Whether the fanout was adaptive.
    pub adaptive_fanout: bool,
    /// Eager-push delay in milliseconds; `None`: pushes wait for rounds.
    pub eager_push_ms: Option<f64>,
    /// Dissemination round, in milliseconds.
    pub interval_ms: f64,
    /// Datagram loss probability.
    pub loss: f64,
    /// One-way latency, in milliseconds.
    pub latency_ms: f64,
    /// Maximum extra jitter, in milliseconds.
    pub jitter_ms: f64,
    /// Updates broadcast.
    pub updates: usize,
    /// Time between two injections, in milliseconds.
    pub spacing_ms: f64,
    /// Payload of each update, in bytes.
    pub payload_bytes: usize,
    /// Whether background anti-entropy was on.
    pub anti_entropy: bool,
    /// Outgoing bandwidth budget per node, bytes per second (none: unlimited).
    pub bandwidth: Option<u64>,
    /// When every live node first listed every other as alive, in seconds
    /// from the start (`null`: not within the wait).
    pub membership_converged_s: Option<f64>,
    /// Virtual time of the first injection, in seconds from the start.
    pub first_injection_s: f64,
    /// Live nodes during the dissemination.
    pub live: usize,
    /// Mean over updates of the fraction of live nodes that delivered it.
    pub coverage: f64,
    /// `1 − coverage`: the fraction of nodes an update missed, on average.
    pub residue: f64,
    /// Updates that reached every live node.
    pub complete: usize,
    /// Gossip rounds (intervals) from injection until the last live node
    /// delivered it, over updates; an update that never reached every node
    /// ranks above all others and makes the percentiles it falls on `null`.
    pub rounds_to_all: Percentiles,
    /// The same in milliseconds.
    pub time_to_all_ms: Percentiles,
    /// Mean over `r = 0, 1, 2, …` of the fraction of live nodes holding an
    /// update `r` rounds after its injection, until every update is at its
    /// final coverage.
    pub coverage_by_round: Vec<f64>,
    /// Copies of updates sent per node per update (the m of Demers et al.):
    /// Σ rumors sent / (nodes × updates).
    pub traffic_per_node: f64,
    /// Relative message redundancy: (copies sent per update) / (n − 1) − 1;
    /// 0 is optimal.
    pub rmr: f64,
    /// Received copies that were duplicates, per node per update.
    pub duplicates_per_node: f64,
    /// Last delivery hop: mean over updates of the largest hop count at
    /// which a node delivered it.
    pub ldh: f64,
    /// Largest hop count at any delivery.
    pub ldh_max: u16,
    /// Bytes (all traffic, membership included) sent per node per second
    /// during the dissemination phase.
    pub bytes_per_node_per_s: f64,
    /// Packets sent per node per second during the dissemination phase.
    pub msgs_per_node_per_s: f64,
    /// Bytes sent per node per second over the end of the settle time
    /// ([`IDLE_WINDOW`]), before any update: the membership background.
    pub idle_bytes_per_node_per_s: f64,
    /// Times an update waited for bandwidth budget, summed over nodes.
    pub rumors_deferred: u64,
    /// Length of the dissemination phase, in seconds (first injection to end).
    pub dissemination_s: f64,
    /// How the dissemination phase ended.
    pub ended_by: Ending,
    /// Deliveries of an update a node had delivered already (should be 0).
    pub repeated_deliveries: u64,
    /// Datagrams lost by the network during the dissemination phase.
    pub lost_packets: u64,
    /// Simulation events processed.
    pub events_processed: u64,
    /// Wall-clock time the run took, building the cluster included, in
    /// seconds.
    pub wall_s: f64,
}

fn opt(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}{unit}"))
}

fn pct(p: &Percentiles, unit: &str, digits: usize) -> String {
    format!(
        "p50 {}, p99 {}, max {}",
        opt(p.p50, unit, digits),
        opt(p.p99, unit, digits),
        opt(p.max, unit, digits)
    )
}

/// At most this many values of `coverage_by_round` in the table.
const TABLE_ROUNDS: usize = 40;

impl fmt::Display for BroadcastReport {
    /// An aligned, human-readable summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut by_round: Vec<String> = self
            .coverage_by_round
            .iter()
            .take(TABLE_ROUNDS)
            .map(|c| format!("{c:.3}"))
            .collect();
        if self.coverage_by_round.len() > TABLE_ROUNDS {
            by_round.push(format!("… ({} rounds)", self.coverage_by_round.len()));
        }
        let rows: Vec<(&str, String)> = vec![
            ("nodes", self.nodes.to_string()),
            ("seed", self.seed.to_string()),
            ("profile", self.profile.clone()),
            ("bootstrap", self.bootstrap.to_string()),
            ("mode", self.mode.clone()),
            (
                "termination",
                format!("{} (k = {})", self.termination, self.k),
            ),
            (
                "fanout",
                format!(
                    "{}{}",
                    self.fanout,
                    if self.adaptive_fanout {
                        " (adaptive)"
                    } else {
                        ""
                    }
                ),
            ),
            ("interval", format!("{} ms", self.interval_ms)),
            ("anti-entropy", self.anti_entropy.to_string()),
            (
                "bandwidth",
                self.bandwidth
                    .map_or_else(|| "unlimited".to_string(), |b| format!("{b} B/s")),
            ),
            ("loss", self.loss.to_string()),
            (
                "latency",
                format!("{} ms + jitter {} ms", self.latency_ms, self.jitter_ms),
            ),
            (
                "updates",
                format!(
                    "{} × {} B, {} ms apart",
                    self.updates, self.payload_bytes, self.spacing_ms
                ),
            ),
            (
                "membership converged",
                opt(self.membership_converged_s, " s", 3),
            ),
            (
                "first injection",
                format!("{:.3} s", self.first_injection_s),
            ),
            ("coverage", format!("{:.6}", self.coverage)),
            ("residue", format!("{:.6}", self.residue)),
            (
                "complete updates",
                format!("{} of {}", self.complete, self.updates),
            ),
            ("rounds to all", pct(&self.rounds_to_all, "", 2)),
            ("time to all", pct(&self.time_to_all_ms, " ms", 1)),
            ("coverage by round", by_round.join(" ")),
            ("traffic/node (m)", format!("{:.3}", self.traffic_per_node)),
            ("rmr", format!("{:.3}", self.rmr)),
            (
                "duplicates/node",
                format!("{:.3}", self.duplicates_per_node),
            ),
            ("ldh", format!("{:.2} (max {})", self.ldh, self.ldh_max)),
            ("bytes/node/s", format!("{:.0}", self.bytes_per_node_per_s)),
            ("msgs/node/s", format!("{:.2}", self.msgs_per_node_per_s)),
            (
                "idle bytes/node/s",
                format!("{:.0}", self.idle_bytes_per_node_per_s),
            ),
            ("deferred for bandwidth", self.rumors_deferred.to_string()),
            (
                "dissemination",
                format!("{:.3} s (ended: {})", self.dissemination_s, self.ended_by),
            ),
            ("repeated deliveries", self.repeated_deliveries.to_string()),
            ("lost packets", self.lost_packets.to_string()),
            ("events", self.events_processed.to_string()),
            ("wall time", format!("{:.2} s", self.wall_s)),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            writeln!(f, "{k:<width$}  {v}")?;
        }
        Ok(())
    }
}

/// Totals over every node, taken at one instant.
#[derive(Copy, Clone, Debug, Default)]
struct Totals {
    rumors_sent: u64,
    rumors_duplicate: u64,
    rumors_deferred: u64,
    bytes: u64,
    packets: u64,
    lost: u64,
}

fn totals(sim: &Sim) -> Totals {
    let mut t = Totals {
        lost: sim.network_stats().lost,
        ..Totals::default()
    };
    for i in 0..sim.node_count() {
        let s = sim.node(i).stats();
        t.rumors_sent += s.rumors_sent;
        t.rumors_duplicate += s.rumors_duplicate;
        t.rumors_deferred += s.rumors_deferred;
        let traffic = sim.traffic(i);
        t.bytes += traffic.bytes_sent;
        t.packets += traffic.packets_sent;
    }
    t
}

/// A simulation set up for the scenario, ready to run.
pub struct BroadcastRun {
    params: BroadcastParams,
    sim: Sim,
    tracker: Arc<Mutex<Tracker>>,
    origins: Vec<NodeId>,
    /// The report, once run.
    report: Option<BroadcastReport>,
    /// When building the cluster began: `wall_s` counts from here.
    built_from: std::time::Instant,
}

impl fmt::Debug for BroadcastRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastRun")
            .field("params", &self.params)
            .field("sim", &self.sim)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

/// The tracker, shared with the event hook (which runs on the simulation's
/// thread; a panic there cannot leave it half-updated in a way that matters
/// for a report, so a poisoned lock is taken anyway).
fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    tracker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BroadcastRun {
    /// Build the cluster and schedule its bootstrap (see the module
    /// documentation); the updates are scheduled by [`BroadcastRun::run`]
    /// once membership has converged.
    pub fn new(params: BroadcastParams) -> Result<Self, BroadcastError> {
        let built_from = std::time::Instant::now();
        params.validate()?;
        let network = NetworkConfig {
            latency: params.latency,
            jitter: params.jitter,
            loss: params.loss,
        };
        let mut sim = Sim::new(
            SimConfig::new(params.seed)
                .with_node_config(params.node_config())
                .with_network(network),
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0xB5AD_4ECE_DA1C_E2A9);
        let n = params.nodes;
        match params.bootstrap {
            Bootstrap::Formed => {
                sim.add_formed_cluster(n)?;
            }
            Bootstrap::Join => {
                let seed_node = sim.add_node(Instant::ZERO, &[])?;
                let spread = MAX_START_SPREAD.min(Duration::from_millis(n as u64));
                let spread = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
                for _ in 1..n {
                    let start = Instant::from_nanos(rng.random_range(0..=spread));
                    sim.add_node(start, &[seed_node])?;
                }
            }
            Bootstrap::Direct => {
                let seed_node = sim.add_node(Instant::ZERO, &[])?;
                for _ in 1..n {
                    sim.add_node(Instant::ZERO, &[])?;
                }
                // node-0 contacts everyone: it learns each node from its
                // reply, which is not re-gossiped.
                let all = (1..n).map(|i| sim.addr(i)).collect();
                sim.command_at(
                    Instant::from_millis(1),
                    seed_node,
                    Command::Join { seeds: all },
                );
                // Once the replies are in, every node joins through node-0
                // and takes its full list, again without re-gossip.
                let round_trip = (params.latency + params.jitter) * 2;
                let first = Instant::from_millis(1) + round_trip + Duration::from_millis(20);
                let spread = DIRECT_JOIN_SPREAD.min(Duration::from_micros(50 * n as u64));
                let spread = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
                let seeds = vec![sim.addr(seed_node)];
                for i in 1..n {
                    let at = first + Duration::from_nanos(rng.random_range(0..=spread));
                    let seeds = seeds.clone();
                    sim.command_at(at, i, Command::Join { seeds });
                }
            }
        }
        let mut origins: Vec<NodeId> = Vec::with_capacity(params.updates);
        while origins.len() < params.updates {
            let mut all: Vec<NodeId> = (0..n).collect();
            all.shuffle(&mut rng);
            origins.extend(all.into_iter().take(params.updates - origins.len()));
        }
        let tracker = Arc::new(Mutex::new(Tracker {
            interval_ns: u64::try_from(params.interval.as_nanos()).unwrap_or(u64::MAX),
            ..Tracker::default()
        }));
        let hook = Arc::clone(&tracker);
        sim.set_event_hook(move |at, node, event| {
            if let Event::UserEvent(e) = event {
                lock(&hook).delivered(at, node, e);
            }
        });
        Ok(BroadcastRun {
            params,
            sim,
            tracker,
            origins,
            report: None,
            built_from,
        })
    }

    /// The simulation, to inspect or run further.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The nodes that broadcast the updates, in order.
    pub fn origins(&self) -> &[NodeId] {
        &self.origins
    }

    /// Run all three phases, calling `progress` with the virtual time now
    /// and then, and report. The run happens once: later calls return the
    /// same report.
    ///
    /// The dissemination phase is run one round (interval) at a time. It
    /// ends at the deadline, or after the last injection once no node has
    /// sent a copy of any update for a quiet window of [`QUIET_ROUNDS`]
    /// rounds. A push or push-pull node sends every hot update every
    /// round, so a quiet window means every update has gone cold
    /// everywhere; once every update reached every node, a pull node has
    /// nothing left to send either. While an update is incomplete, pull
    /// mode waits `QUIET_ROUNDS + 4k` rounds (a hot update goes out only
    /// when asked for), and the quiet rule does not apply at all if
    /// anti-entropy could still repair it (it is on) or if pull with a
    /// blind rule could (a blind update never asked for stays hot).
    pub fn run(&mut self, progress: &mut dyn FnMut(Instant)) -> BroadcastReport {
        if let Some(report) = &self.report {
            return report.clone();
        }
        let wall = self.built_from;
        let p = self.params.clone();
        let n = p.nodes;

        // Phase 1: membership.
        let cap = Instant::ZERO + p.converge_timeout;
        let mut converged = None;
        while converged.is_none() && self.sim.now() < cap {
            let step = (self.sim.now() + Duration::from_millis(100)).min(cap);
            converged = self.sim.run_until_condition(step, |s| {
                s.observer().join_converged_at().is_some() && s.observer().is_converged()
            });
            progress(self.sim.now());
        }

        // Phase 2: settle, measuring the idle baseline at its end.
        let settle = p.settle();
        let idle = IDLE_WINDOW.min(settle / 2);
        let t0 = self.sim.now() + settle;
        self.sim.run_until_with_progress(t0 - idle, progress);
        let idle_from = totals(&self.sim);
        let idle_start = self.sim.now();
        self.sim.run_until_with_progress(t0, progress);
        let idle_to = totals(&self.sim);
        let idle_s = (t0 - idle_start).as_secs_f64();

        // Phase 3: dissemination.
        let spacing = p.spacing();
        {
            let mut tracker = lock(&self.tracker);
            let words = n.div_ceil(64);
            for j in 0..p.updates {
                tracker.updates.push(UpdateTrack {
                    injected_at: t0 + spacing * j as u32,
                    seen: vec![0; words],
                    delivered: 0,
                    last_at: None,
                    max_hops: 0,
                    by_round: Vec::new(),
                });
            }
        }
        let payload = vec![0xA5u8; p.payload_bytes];
        for (j, &origin) in self.origins.iter().enumerate() {
            self.sim.command_at(
                t0 + spacing * j as u32,
                origin,
                Command::Broadcast {
                    name: format!("{UPDATE_NAME_PREFIX}{j}"),
                    payload: payload.clone(),
                    priority: Priority::Normal,
                },
            );
        }
        let start = totals(&self.sim);
        let last_injection = t0 + spacing * (p.updates as u32 - 1);
        let deadline = last_injection + p.duration;
        let blind = matches!(
            p.termination,
            Termination::BlindCounter | Termination::BlindCoin
        );
        let pull_only = p.mode == Mode::Pull && p.termination != Termination::TransmitLimit;
        let quiet_rounds = if pull_only {
            QUIET_ROUNDS + 4 * p.k
        } else {
            QUIET_ROUNDS
        };
        // Nothing can repair an incomplete update once all are cold, unless
        // anti-entropy runs or pull with a blind rule keeps updates hot.
        let repairable = p.anti_entropy || (pull_only && blind);
        let mut sent = start.rumors_sent;
        let mut quiet = 0u32;
        let ended_by = loop {
            let next = (self.sim.now() + p.interval).min(deadline);
            self.sim.run_until_with_progress(next, progress);
            if self.sim.now() >= deadline {
                break Ending::Deadline;
            }
            let now_sent = totals(&self.sim).rumors_sent;
            quiet = if now_sent == sent { quiet + 1 } else { 0 };
            sent = now_sent;
            if self.sim.now() < last_injection || quiet < QUIET_ROUNDS {
                continue;
            }
            let live = self.sim.observer().live_count();
            let complete = lock(&self.tracker)
                .updates
                .iter()
                .all(|u| u.delivered >= live);
            if complete || (!repairable && quiet >= quiet_rounds) {
                break Ending::Quiet;
            }
        };
        let end = totals(&self.sim);
        let phase_s = (self.sim.now() - t0).as_secs_f64();
        let wall_s = wall.elapsed().as_secs_f64();
        let converged_s = converged.map(|at| at.since_epoch().as_secs_f64());
        let report = self.build_report(ReportInputs {
            converged_s,
            t0,
            idle: (idle_from, idle_to, idle_s),
            phase: (start, end, phase_s),
            ended_by,
            wall_s,
        });
        self.report = Some(report.clone());
        report
    }

    fn build_report(&self, r: ReportInputs) -> BroadcastReport {
        let p = &self.params;
        let tracker = lock(&self.tracker);
        let live = self.sim.observer().live_count().max(1);
        let n = p.nodes as f64;
        let u = p.updates as f64;
        let interval = p.interval.as_secs_f64();
        let mut coverage = 0.0;
        let mut complete = 0;
        let mut rounds = Vec::with_capacity(p.updates);
        let mut times = Vec::with_capacity(p.updates);
        let mut ldh = 0.0;
        let mut ldh_max = 0;
        let longest = tracker
            .updates
            .iter()
            .map(|t| t.by_round.len())
            .max()
            .unwrap_or(0);
        let mut by_round = vec![0.0; longest];
        for t in &tracker.updates {
            coverage += t.delivered as f64 / live as f64;
            let all = t.delivered >= live;
            complete += usize::from(all);
            let to_all = t
                .last_at
                .filter(|_| all)
                .map(|at| (at - t.injected_at).as_secs_f64());
            rounds.push(to_all.map(|s| s / interval));
            times.push(to_all.map(|s| s * 1e3));
            ldh += f64::from(t.max_hops);
            ldh_max = ldh_max.max(t.max_hops);
            let mut held = 0u64;
            for (r, slot) in by_round.iter_mut().enumerate() {
                held += u64::from(t.by_round.get(r).copied().unwrap_or(0));
                *slot += held as f64 / live as f64;
            }
        }
        for c in &mut by_round {
            *c /= u;
        }
        let coverage = coverage / u;
        let (start, end, phase_s) = r.phase;
        let (idle_from, idle_to, idle_s) = r.idle;
        let copies = (end.rumors_sent - start.rumors_sent) as f64;
        let per_node_s = |bytes: u64, secs: f64| {
            if secs > 0.0 {
                bytes as f64 / (n * secs)
            } else {
                0.0
            }
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        BroadcastReport {
            nodes: p.nodes,
            seed: p.seed,
            profile: p.profile.name().to_string(),
            bootstrap: p.bootstrap,
            mode: p.mode.to_string(),
            termination: p.termination.to_string(),
            k: p.k,
            fanout: p.fanout,
            adaptive_fanout: p.adaptive_fanout,
            eager_push_ms: p.eager_push.map(ms),
            interval_ms: ms(p.interval),
            loss: p.loss,
            latency_ms: ms(p.latency),
            jitter_ms: ms(p.jitter),
            updates: p.updates,
            spacing_ms: ms(p.spacing()),
            payload_bytes: p.payload_bytes,
            anti_entropy: p.anti_entropy,
            bandwidth: p.bandwidth,
            membership_converged_s: r.converged_s,
            first_injection_s: r.t0.since_epoch().as_secs_f64(),
            live,
            coverage,
            residue: 1.0 - coverage,
            complete,
            rounds_to_all: percentiles_with_missing(&rounds),
            time_to_all_ms: percentiles_with_missing(&times),
            coverage_by_round: by_round,
            traffic_per_node: copies / (n * u),
            rmr: copies / u / (n - 1.0) - 1.0,
            duplicates_per_node: (end.rumors_duplicate - start.rumors_duplicate) as f64 / (n * u),
            ldh: ldh / u,
            ldh_max,
            bytes_per_node_per_s: per_node_s(end.bytes - start.bytes, phase_s),
            msgs_per_node_per_s: per_node_s(end.packets - start.packets, phase_s),
            idle_bytes_per_node_per_s: per_node_s(idle_to.bytes - idle_from.bytes, idle_s),
            rumors_deferred: end.rumors_deferred - start.rumors_deferred,
            dissemination_s: phase_s,
            ended_by: r.ended_by,
            repeated_deliveries: tracker.repeated + tracker.foreign,
            lost_packets: end.lost - start.lost,
            events_processed: self.sim.report().events_processed,
            wall_s: r.wall_s,
        }
    }
}

/// What [`BroadcastRun::run`] measured, for the report.
struct ReportInputs {
    converged_s: Option<f64>,
    t0: Instant,
    idle: (Totals, Totals, f64),
    phase: (Totals, Totals, f64),
    ended_by: Ending,
    wall_s: f64,
}

/// Build and run the `broadcast` scenario in one go.
pub fn run_broadcast(
    params: BroadcastParams,
    progress: &mut dyn FnMut(Instant),
) -> Result<BroadcastReport, BroadcastError> {
    let mut run = BroadcastRun::new(params)?;
    Ok(run.run(progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_parameters() {
        let ok = BroadcastParams::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            BroadcastParams {
                nodes: 1,
                ..ok.clone()
            },
            BroadcastParams {
                loss: 1.0,
                ..ok.clone()
            },
            BroadcastParams {
                updates: 0,
                ..ok.clone()
            },
            BroadcastParams { k: 0, ..ok.clone() },
            BroadcastParams {
                fanout: 0,
                ..ok.clone()
            },
            BroadcastParams {
                interval: Duration::ZERO,
                ..ok.clone()
            },
            BroadcastParams {
                payload_bytes: 1 << 20,
                ..ok.clone()
            },
            BroadcastParams {
                bandwidth: Some(0),
                ..ok.clone()
            },
            BroadcastParams {
                updates: 1_000_000,
                spacing: Some(Duration::from_secs(3600)),
                ..ok.clone()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
    }

    #[test]
    fn missing_values_rank_last() {
        let p = percentiles_with_missing(&[Some(3.0), Some(1.0), None, Some(2.0)]);
        assert_eq!((p.p50, p.p99, p.max), (Some(2.0), None, None));
        let p = percentiles_with_missing(&[Some(3.0), Some(1.0)]);
        assert_eq!((p.p50, p.p99, p.max), (Some(1.0), Some(3.0), Some(3.0)));
        assert_eq!(percentiles_with_missing(&[]), Percentiles::default());
    }

    #[test]
    fn bootstrap_names_round_trip() {
        for b in [Bootstrap::Formed, Bootstrap::Join, Bootstrap::Direct] {
            assert_eq!(b.name().parse::<Bootstrap>(), Ok(b));
        }
        assert!("gossip".parse::<Bootstrap>().is_err());
    }
}
