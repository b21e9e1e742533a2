//! One anti-entropy exchange between two replicas that differ in a few
//! entries (`rumor sim sync`): what the Merkle descent costs against the
//! size of the differing entries themselves.

use std::time::Instant as WallInstant;

use core::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumor_proto::state::{Entry, KvStore, Op, ReplicaId, StateConfig};
use rumor_proto::{Config, Instant};
use serde::Serialize;

use crate::network::NetworkConfig;
use crate::sim::{Sim, SimConfig, SimError};

/// One-way latency of the simulated link: round trips are counted as the
/// exchange's duration over twice this.
const LATENCY: Duration = Duration::from_millis(10);

/// What one exchange cost.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SyncReport {
    /// Entries each replica holds.
    pub keys: usize,
    /// Entries that differ.
    pub diff: usize,
    /// Bytes of anti-entropy frames, both directions.
    pub bytes_sent: u64,
    /// Encoded size of the differing entries (key and state, newer side).
    pub entry_bytes: u64,
    /// `bytes_sent / entry_bytes`.
    pub overhead: f64,
    /// Round trips until both replicas were identical.
    pub round_trips: f64,
    /// Both replicas identical at the end.
    pub converged: bool,
    /// Wall-clock time of the run.
    pub wall_s: f64,
}

/// Two replicas of `keys` entries that differ in `diff`: half of them
/// written again on one side, half new on the other. One exchange runs.
pub fn run_sync(keys: usize, diff: usize, seed: u64) -> Result<SyncReport, SimError> {
    let wall = WallInstant::now();
    let mut config = Config::lan();
    // Only the exchange this run starts.
    config.state.anti_entropy_interval = Duration::from_secs(1_000_000);
    config.state.max_keys = config.state.max_keys.max(keys + diff + 16);
    let network = NetworkConfig {
        latency: LATENCY,
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    let mut sim = Sim::new(
        SimConfig::new(seed)
            .with_node_config(config)
            .with_network(network),
    )?;
    let a = sim.add_node(Instant::ZERO, &[])?;
    let b = sim.add_node(Instant::ZERO, &[a])?;
    sim.run_until(Instant::from_millis(3_000));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut loader = KvStore::new(
        ReplicaId(1),
        StateConfig {
            max_keys: usize::MAX,
            ..StateConfig::default()
        },
    );
    let put = |v: [u8; 16]| Op::Put {
        value: v.to_vec(),
        context: None,
        kind: None,
    };
    for k in 0..keys {
        let _ = loader.write(&format!("key-{k:08}"), put(rng.random()), 0);
    }
    let all: Vec<(String, Entry)> = loader
        .iter()
        .map(|(k, e)| (k.to_string(), e.clone()))
        .collect();
    for (k, e) in &all {
        sim.preload(a, k, e);
        sim.preload(b, k, e);
    }
    // The differences: rewritten on a, or new on b.
    let mut other = KvStore::new(ReplicaId(2), StateConfig::default());
    let mut entry_bytes = 0u64;
    for d in 0..diff {
        let (node, key) = if d % 2 == 0 && !all.is_empty() {
            (a, all[rng.random_range(0..all.len())].0.clone())
        } else {
            (b, format!("new-{d:08}"))
        };
        let base = sim.node(node).get(&key).cloned();
        if let Some(e) = &base {
            other.merge(&key, e, 0);
        }
        if let Ok(w) = other.write(&key, put(rng.random()), 1) {
            entry_bytes += postcard::to_allocvec(&(&key, &w.entry)).map_or(0, |v| v.len() as u64);
            sim.preload(node, &key, &w.entry);
        }
    }
    let before =
        sim.node(a).stats().anti_entropy_bytes_sent + sim.node(b).stats().anti_entropy_bytes_sent;
    let t0 = sim.now();
    let peer = sim.addr(b);
    sim.anti_entropy_with(a, peer);
    let same = |s: &Sim| s.node(a).kv().root() == s.node(b).kv().root();
    let done = sim.run_until_condition(t0 + Duration::from_secs(60), same);
    let bytes_sent = sim.node(a).stats().anti_entropy_bytes_sent
        + sim.node(b).stats().anti_entropy_bytes_sent
        - before;
    let elapsed = done.map_or(60.0, |t| (t - t0).as_secs_f64());
    Ok(SyncReport {
        keys,
        diff,
        bytes_sent,
        entry_bytes,
        overhead: bytes_sent as f64 / (entry_bytes.max(1)) as f64,
        round_trips: (elapsed / (2.0 * LATENCY.as_secs_f64()) * 10.0).round() / 10.0,
        converged: done.is_some(),
        wall_s: wall.elapsed().as_secs_f64(),
    })
}

impl core::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        crate::report::write_fields(f, self)
    }
}
