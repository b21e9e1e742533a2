//! The `kv` scenario run by `rumor sim kv`: a cluster holding a replicated
//! key-value store takes random writes (some concurrent on the same key)
//! through random nodes while a partition splits it, datagrams are lost and
//! nodes crash and come back with their durable state; at the end every
//! acknowledged write is looked for.

use std::collections::HashSet;
use std::time::Instant as WallInstant;

use core::time::Duration;

use rand::{RngExt, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use rumor_proto::state::{Dot, KvStore, Op, Payload, ReplicaId, StateConfig};
use rumor_proto::{Config, Instant, Profile};
use serde::Serialize;

use crate::NodeId;
use crate::broadcast_run::Bootstrap;
use crate::network::{NetworkConfig, Partition};
use crate::scenario::RestartMode;
use crate::sim::{Sim, SimConfig, SimError};

/// Parameters of a `kv` run.
#[derive(Clone, Debug, PartialEq)]
pub struct KvParams {
    /// Cluster size.
    pub nodes: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Keys every node holds at the start.
    pub keys: usize,
    /// Writes made over the run through random live nodes.
    pub writes: usize,
    /// Fraction of the nodes cut off from the rest during the partition
    /// (0: no partition).
    pub partition: f64,
    /// When the partition starts, in seconds.
    pub partition_start: f64,
    /// When it heals, in seconds.
    pub partition_end: f64,
    /// Datagram loss probability.
    pub loss: f64,
    /// Nodes that crash at a third of the run and restart 20 s later with
    /// their durable state.
    pub crash: usize,
    /// Writes happen between 5 s and this.
    pub duration: f64,
    /// Network latency.
    pub latency: Duration,
    /// Network jitter.
    pub jitter: Duration,
    /// Protocol profile.
    pub profile: Profile,
    /// How the cluster forms: [`Bootstrap::Formed`] (every node starts
    /// with the whole member table) or [`Bootstrap::Join`] (nodes join
    /// through node-0 over `min(2 s, nodes × 2 ms)`). [`Bootstrap::Direct`]
    /// is not offered here and runs as `Join`.
    pub bootstrap: Bootstrap,
}

impl Default for KvParams {
    fn default() -> Self {
        KvParams {
            nodes: 100,
            seed: 1,
            keys: 1000,
            writes: 1000,
            partition: 0.0,
            partition_start: 30.0,
            partition_end: 90.0,
            loss: 0.0,
            crash: 0,
            duration: 120.0,
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            profile: Profile::Lan,
            bootstrap: Bootstrap::Formed,
        }
    }
}

/// What a `kv` run measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KvReport {
    /// Cluster size.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Initial keys.
    pub keys: usize,
    /// Writes attempted.
    pub writes: usize,
    /// Writes acknowledged (made on a running node).
    pub acknowledged: usize,
    /// Acknowledged writes that were concurrent with another on the same key.
    pub concurrent_writes: usize,
    /// Partitioned fraction.
    pub partition: f64,
    /// Partition start, s.
    pub partition_start_s: f64,
    /// Partition end, s.
    pub partition_end_s: f64,
    /// Datagram loss.
    pub loss: f64,
    /// Nodes crashed and restarted.
    pub crash: usize,
    /// How the cluster formed: `formed` or `join`.
    pub bootstrap: String,
    /// Every live node holds an identical store at the end.
    pub converged: bool,
    /// Seconds from the heal (or the last write, without a partition) until
    /// every live node held an identical store; `null` if never.
    pub convergence_after_heal_s: Option<f64>,
    /// Acknowledged writes whose value is in no live node's final state and
    /// was not superseded by a write or delete that had seen it.
    pub lost_writes: usize,
    /// Keys with more than one value at the end.
    pub siblings: usize,
    /// Keys held at the end (tombstones included).
    pub final_keys: usize,
    /// Bytes of anti-entropy frames sent by all nodes.
    pub anti_entropy_bytes: u64,
    /// Bytes of key-write rumors sent by all nodes.
    pub rumor_bytes: u64,
    /// Anti-entropy exchanges started.
    pub anti_entropy_exchanges: u64,
    /// Update propagation latency at node-0, ms: p50, p99 (bucket bounds), max.
    pub latency_ms: LatencyReport,
    /// Bytes per node per second, all traffic.
    pub bytes_per_node_per_s: f64,
    /// Wall-clock time of the run.
    pub wall_s: f64,
}

/// Latency percentiles.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LatencyReport {
    /// Median (upper bound of its power-of-two bucket).
    pub p50: Option<u64>,
    /// 99th percentile (upper bound of its bucket).
    pub p99: Option<u64>,
    /// Largest.
    pub max: u64,
}

struct Acked {
    key: String,
    dot: Option<Dot>,
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s.max(0.0) * 1e9) as u64)
}

/// Whether every live node holds the same store.
pub fn kv_converged(sim: &Sim) -> bool {
    let mut roots = sim.live_nodes().map(|i| sim.node(i).kv().root());
    match roots.next() {
        Some(r) => roots.all(|x| x == r),
        None => true,
    }
}

/// Run the `kv` scenario; `progress` is called with the virtual time.
pub fn run_kv(p: &KvParams, progress: &mut dyn FnMut(Instant)) -> Result<KvReport, SimError> {
    run_kv_keeping_sim(p, progress).map(|(report, _)| report)
}

/// [`run_kv`], returning the finished simulation with the report: for
/// inspecting its nodes, or for a caller about to exit, which can skip
/// freeing it (at 1,000 nodes that is gigabytes in millions of pieces).
pub fn run_kv_keeping_sim(
    p: &KvParams,
    progress: &mut dyn FnMut(Instant),
) -> Result<(KvReport, Sim), SimError> {
    let wall = WallInstant::now();
    let config = Config {
        ..p.profile.config()
    };
    let network = NetworkConfig {
        latency: p.latency,
        jitter: p.jitter,
        loss: p.loss,
    };
    let mut sim = Sim::new(
        SimConfig::new(p.seed)
            .with_node_config(config)
            .with_network(network),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x6B76_5F72_756E_0001);
    let n = p.nodes.max(1);
    let ids = match p.bootstrap {
        Bootstrap::Formed => sim.add_formed_cluster(n)?,
        Bootstrap::Join | Bootstrap::Direct => {
            let spread = Duration::from_millis((n as u64 * 2).min(2_000));
            sim.add_cluster(n, spread)?
        }
    };

    // Initial keys: written once by a loader replica and preloaded on every
    // node, so all start identical.
    let mut loader = KvStore::new(ReplicaId(0x10AD), StateConfig::default());
    let mut key_names: Vec<String> = Vec::with_capacity(p.keys);
    for k in 0..p.keys {
        let key = format!("key-{k:07}");
        let value: [u8; 16] = rng.random();
        if loader
            .write(
                &key,
                Op::Put {
                    value: value.to_vec(),
                    context: None,
                    kind: None,
                },
                0,
            )
            .is_ok()
        {
            key_names.push(key);
        }
    }
    sim.preload_every_store(&loader);
    drop(loader);

    // Faults.
    if p.partition > 0.0 {
        let mut shuffled = ids.clone();
        shuffled.shuffle(&mut rng);
        let cut = ((n as f64) * p.partition).round() as usize;
        let (b, a) = shuffled.split_at(cut.min(n));
        sim.add_partition(Partition::new(
            secs(p.partition_start),
            secs(p.partition_end),
            &[a.to_vec(), b.to_vec()],
        ));
    }
    let crash_at = p.duration / 3.0;
    let mut crashed: Vec<NodeId> = ids.iter().copied().filter(|&i| i != 0).collect();
    crashed.shuffle(&mut rng);
    crashed.truncate(p.crash);
    for &c in &crashed {
        sim.crash_at(secs(crash_at), c);
        sim.restart_at(secs(crash_at + 20.0), c, RestartMode::WithState);
    }

    // The write schedule: (time, node, key, op kind), with some writes
    // paired with a concurrent one on the same key elsewhere.
    let start = 5.0;
    let end = (p.duration - 30.0).max(start + 1.0);
    let mut schedule: Vec<(f64, usize, String, bool)> = Vec::with_capacity(p.writes);
    let mut new_keys = 0usize;
    while schedule.len() < p.writes {
        let t = rng.random_range(start..end);
        let key = if key_names.is_empty() || rng.random_bool(0.1) {
            new_keys += 1;
            format!("new-{new_keys:07}")
        } else {
            key_names[rng.random_range(0..key_names.len())].clone()
        };
        let delete = rng.random_bool(0.05);
        let node = rng.random_range(0..n);
        schedule.push((t, node, key.clone(), delete));
        if schedule.len() < p.writes && rng.random_bool(0.25) {
            let other = rng.random_range(0..n);
            let dt = rng.random_range(0.0..0.02);
            schedule.push((t + dt, other, key, false));
        }
    }
    schedule.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut acked: Vec<Acked> = Vec::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let mut concurrent = 0usize;
    let mut last_write: Option<(String, f64)> = None;
    for (t, node, key, delete) in &schedule {
        sim.run_until_with_progress(secs(*t), progress);
        let op = if *delete {
            Op::Delete { context: None }
        } else {
            let value: [u8; 16] = rng.random();
            Op::Put {
                value: value.to_vec(),
                context: None,
                kind: None,
            }
        };
        if let Some(Ok(w)) = sim.write(*node, key, op) {
            if let Some((k, at)) = &last_write
                && k == key
                && t - at < 0.05
            {
                concurrent += 1;
            }
            last_write = Some((key.clone(), *t));
            if *delete {
                deleted.insert(key.clone());
            }
            acked.push(Acked {
                key: key.clone(),
                dot: w.dot,
            });
        }
    }

    // From the heal (or the last write, if later), step until every live
    // node agrees.
    let last = schedule.last().map_or(start, |w| w.0);
    let heal = if p.partition > 0.0 {
        p.partition_end.max(last)
    } else {
        last
    };
    sim.run_until_with_progress(secs(heal), progress);
    let deadline = secs(heal.max(p.duration)) + Duration::from_secs(300);
    let mut converged_at = kv_converged(&sim).then(|| sim.now());
    while converged_at.is_none() && sim.now() < deadline {
        let next = sim.now() + Duration::from_millis(250);
        sim.run_until_with_progress(next, progress);
        if kv_converged(&sim) {
            converged_at = Some(sim.now());
        }
    }
    let convergence_after_heal_s =
        converged_at.map(|at| (at.as_nanos() as f64 / 1e9 - heal).max(0.0));

    let live: Vec<NodeId> = sim.live_nodes().collect();
    let mut lost = 0;
    for a in &acked {
        let Some(dot) = a.dot else { continue };
        let mut present = false;
        let mut seen = false;
        for &i in &live {
            if let Some(e) = sim.node(i).get(&a.key) {
                if e.dots.iter().any(|d| d.dot == dot) {
                    present = true;
                    break;
                }
                if e.context.covers(dot) {
                    seen = true;
                }
            } else if deleted.contains(&a.key) {
                // Deleted, and the tombstone collected.
                seen = true;
            }
        }
        if !present && !seen {
            lost += 1;
        }
    }
    let observer = live.first().copied().unwrap_or(0);
    let kv = sim.node(observer).kv();
    let siblings = kv
        .iter()
        .filter(|(_, e)| {
            e.dots
                .iter()
                .filter(|d| matches!(d.payload, Payload::Mv(_)))
                .count()
                > 1
        })
        .count();
    let (mut ae_bytes, mut rumor_bytes, mut ae_started, mut bytes) = (0, 0, 0, 0);
    for i in 0..sim.node_count() {
        let s = sim.node(i).stats();
        ae_bytes += s.anti_entropy_bytes_sent;
        rumor_bytes += s.write_rumor_bytes_sent;
        ae_started += s.anti_entropy_started;
        bytes += sim.traffic(i).bytes_sent;
    }
    let conv = sim.node(observer).convergence();
    let elapsed = sim.now().as_nanos() as f64 / 1e9;
    let report = KvReport {
        nodes: n,
        seed: p.seed,
        keys: p.keys,
        writes: p.writes,
        acknowledged: acked.len(),
        concurrent_writes: concurrent,
        partition: p.partition,
        partition_start_s: p.partition_start,
        partition_end_s: p.partition_end,
        loss: p.loss,
        crash: crashed.len(),
        bootstrap: match p.bootstrap {
            Bootstrap::Formed => Bootstrap::Formed,
            Bootstrap::Join | Bootstrap::Direct => Bootstrap::Join,
        }
        .to_string(),
        converged: kv_converged(&sim),
        convergence_after_heal_s,
        lost_writes: lost,
        siblings,
        final_keys: kv.len(),
        anti_entropy_bytes: ae_bytes,
        rumor_bytes,
        anti_entropy_exchanges: ae_started,
        latency_ms: LatencyReport {
            p50: conv.latency.quantile_ms(0.5),
            p99: conv.latency.quantile_ms(0.99),
            max: conv.latency.max_ms,
        },
        bytes_per_node_per_s: bytes as f64 / n as f64 / elapsed.max(1e-9),
        wall_s: wall.elapsed().as_secs_f64(),
    };
    Ok((report, sim))
}

impl core::fmt::Display for KvReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        crate::report::write_fields(f, self)
    }
}
