//! The `membership` scenario behind `rumor sim membership`: a cluster joins
//! through one seed, some nodes crash half-way, some are slow throughout,
//! and the report says how fast the cluster converged and detected the
//! crashes, how often it was wrong, and what it cost.

use core::ops::RangeInclusive;
use core::time::Duration;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumor_proto::{Instant, Profile};

use crate::network::NetworkConfig;
use crate::report::{MembershipReport, Percentiles};
use crate::scenario::SlowSpec;
use crate::sim::{Sim, SimConfig, SimError};

/// Joiners start within this long of the seed node (or `nodes` ms, if less).
pub const MAX_START_SPREAD: Duration = Duration::from_secs(5);

/// Everything the `membership` scenario can vary.
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipParams {
    /// Cluster size (at least 1).
    pub nodes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Virtual duration.
    pub duration: Duration,
    /// Datagram loss probability, in `[0, 1)`.
    pub loss: f64,
    /// One-way latency.
    pub latency: Duration,
    /// Maximum extra jitter per packet.
    pub jitter: Duration,
    /// Nodes (never node-0, the seed) that crash at half the duration.
    pub crash: usize,
    /// Other nodes that are slow throughout.
    pub slow: usize,
    /// Running periods of slow nodes.
    pub slow_run: RangeInclusive<Duration>,
    /// Frozen periods of slow nodes.
    pub slow_freeze: RangeInclusive<Duration>,
    /// Protocol profile.
    pub profile: Profile,
    /// Lifeguard on (off: plain SWIM).
    pub lifeguard: bool,
}

impl Default for MembershipParams {
    /// The CLI's defaults: 100 nodes for 60 s on the `lan` profile, 1 ms
    /// latency with 0.5 ms jitter, no loss, no faults.
    fn default() -> Self {
        MembershipParams {
            nodes: 100,
            seed: 1,
            duration: Duration::from_secs(60),
            loss: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            crash: 0,
            slow: 0,
            slow_run: Duration::from_secs(1)..=Duration::from_secs(5),
            slow_freeze: Duration::from_secs(1)..=Duration::from_secs(10),
            profile: Profile::Lan,
            lifeguard: true,
        }
    }
}

/// Parameters the scenario cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// No nodes.
    #[error("--nodes must be at least 1")]
    NoNodes,
    /// Loss outside `[0, 1)`.
    #[error("--loss must be at least 0 and below 1, got {0}")]
    Loss(f64),
    /// Not enough nodes besides the seed for the faults asked.
    #[error(
        "--crash ({crash}) plus --slow ({slow}) must be below --nodes ({nodes}): node-0 is the seed and never crashes or slows"
    )]
    TooManyFaults {
        /// Nodes to crash.
        crash: usize,
        /// Nodes to slow.
        slow: usize,
        /// Cluster size.
        nodes: usize,
    },
    /// A period range that is empty or starts at zero.
    #[error("{0} must be a range MIN..MAX with 0 < MIN <= MAX")]
    Range(&'static str),
}

impl MembershipParams {
    /// Check the parameters.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.nodes == 0 {
            return Err(ParamError::NoNodes);
        }
        if !(0.0..1.0).contains(&self.loss) {
            return Err(ParamError::Loss(self.loss));
        }
        if self.crash.saturating_add(self.slow) >= self.nodes {
            return Err(ParamError::TooManyFaults {
                crash: self.crash,
                slow: self.slow,
                nodes: self.nodes,
            });
        }
        for (name, r) in [
            ("slow run period", &self.slow_run),
            ("slow freeze period", &self.slow_freeze),
        ] {
            if r.start().is_zero() || r.start() > r.end() {
                return Err(ParamError::Range(name));
            }
        }
        Ok(())
    }
}

/// The scenario could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MembershipError {
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The simulation refused its setup.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// A simulation set up for the scenario, ready to run.
#[derive(Debug)]
pub struct MembershipRun {
    params: MembershipParams,
    sim: Sim,
    crashed: usize,
}

impl MembershipRun {
    /// Build the cluster and schedule its faults.
    ///
    /// node-0 starts at 0; every other node starts at a uniformly random
    /// instant in `[0, min(5 s, nodes × 1 ms)]` and joins through node-0.
    /// `crash` random nodes other than node-0 crash at half the duration;
    /// `slow` other random nodes are slow throughout.
    pub fn new(params: MembershipParams) -> Result<Self, MembershipError> {
        params.validate()?;
        let mut config = params.profile.config();
        config.lifeguard = params.lifeguard;
        let network = NetworkConfig {
            latency: params.latency,
            jitter: params.jitter,
            loss: params.loss,
        };
        let mut sim = Sim::new(
            SimConfig::new(params.seed)
                .with_node_config(config)
                .with_network(network),
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x3C6E_F372_FE94_F82B);
        let spread = MAX_START_SPREAD.min(Duration::from_millis(params.nodes as u64));
        let spread = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        let seed_node = sim.add_node(Instant::ZERO, &[])?;
        for _ in 1..params.nodes {
            let start = Instant::from_nanos(rng.random_range(0..=spread));
            sim.add_node(start, &[seed_node])?;
        }
        let mut others: Vec<usize> = (1..params.nodes).collect();
        others.shuffle(&mut rng);
        let crash_at = Instant::ZERO + params.duration / 2;
        for &node in &others[..params.crash] {
            sim.crash_at(crash_at, node);
        }
        for &node in &others[params.crash..params.crash + params.slow] {
            let spec = SlowSpec::throughout(params.slow_run.clone(), params.slow_freeze.clone());
            sim.slow(node, spec);
        }
        Ok(MembershipRun {
            crashed: params.crash,
            params,
            sim,
        })
    }

    /// The simulation, to inspect or run further.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Run to the end of the duration, calling `progress` with the virtual
    /// time now and then, and report. The simulation stays available through
    /// [`MembershipRun::sim`].
    pub fn run(&mut self, progress: &mut dyn FnMut(Instant)) -> MembershipReport {
        let wall = std::time::Instant::now();
        let end = Instant::ZERO + self.params.duration;
        self.sim.run_until_with_progress(end, progress);
        let wall_s = wall.elapsed().as_secs_f64();
        self.report(wall_s)
    }

    /// The report as of now, with `wall_s` as the wall-clock time taken.
    pub fn report(&self, wall_s: f64) -> MembershipReport {
        let p = &self.params;
        let r = self.sim.report();
        let detections: Vec<f64> = r.crashes.iter().filter_map(|c| c.detection_s).collect();
        let per_node_s = (p.nodes as f64) * p.duration.as_secs_f64();
        let rate = |x: u64| {
            if per_node_s > 0.0 {
                x as f64 / per_node_s
            } else {
                0.0
            }
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        MembershipReport {
            nodes: p.nodes,
            seed: p.seed,
            profile: p.profile.name().to_string(),
            lifeguard: p.lifeguard,
            duration_s: p.duration.as_secs_f64(),
            loss: p.loss,
            latency_ms: ms(p.latency),
            jitter_ms: ms(p.jitter),
            slow: p.slow,
            join_converged_s: r.join_converged_s,
            detection_s: Percentiles::of(&detections),
            crashed: self.crashed,
            undetected: r.undetected,
            false_positives: r.false_positives,
            false_positive_nodes: r.false_positive_nodes,
            false_suspicions: r.false_suspicions,
            msgs_per_node_per_s: rate(r.traffic.packets_sent),
            bytes_per_node_per_s: rate(r.traffic.bytes_sent),
            dropped_packets: r.dropped_packets,
            lost_packets: r.network.lost,
            events_processed: r.events_processed,
            wall_s,
        }
    }
}

/// Build and run the `membership` scenario in one go.
pub fn run_membership(
    params: MembershipParams,
    progress: &mut dyn FnMut(Instant),
) -> Result<MembershipReport, MembershipError> {
    let mut run = MembershipRun::new(params)?;
    Ok(run.run(progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_parameters() {
        let ok = MembershipParams::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            MembershipParams {
                nodes: 0,
                ..ok.clone()
            },
            MembershipParams {
                loss: 1.0,
                ..ok.clone()
            },
            MembershipParams {
                loss: -0.5,
                ..ok.clone()
            },
            MembershipParams {
                crash: 60,
                slow: 40,
                ..ok.clone()
            },
            MembershipParams {
                slow_freeze: Duration::from_secs(3)..=Duration::from_secs(2),
                ..ok.clone()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        let edge = MembershipParams {
            crash: 60,
            slow: 39,
            ..ok
        };
        assert_eq!(edge.validate(), Ok(()));
    }
}
