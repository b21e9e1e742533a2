//! What must hold once a fault has healed:
//!
//! - every acknowledged write is present on every live node (a write to a
//!   key of its own: the key is there with that value; a chain write: the
//!   chain's last acknowledged value, or an unanswered write sent after it
//!   with its context, is among the key's values);
//! - every live node's Merkle root (`GET /v1/convergence`) is equal, within
//!   the stated bound after the heal;
//! - no live node sees a member suspect or dead, and each sees every live
//!   node alive, within the same bound;
//! - no agent panicked (its stderr) or exited without being told to;
//! - every agent's resident set stayed under the stated bound.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::agent_process::Condition;
use crate::cluster::Cluster;
use crate::workload::{Ack, WorkloadLog};

/// Limits the checker holds the cluster to.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Bounds {
    /// Digests equal and membership clean within this after the heal.
    pub heal_within: Duration,
    /// Peak resident set of any agent, KiB.
    pub rss_limit_kib: u64,
}

/// How long healing took, measured from the heal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Healing {
    /// Until every live node's root was equal.
    pub converged: Option<Duration>,
    /// Until no live node saw anyone suspect or dead.
    pub members: Option<Duration>,
}

/// Wait until the digests agree and membership is clean, or `within` of
/// `heal_at` passes.
pub fn await_healed(cluster: &Cluster, heal_at: Instant, within: Duration) -> Healing {
    let mut out = Healing::default();
    let deadline = heal_at + within;
    loop {
        if out.converged.is_none() && roots_equal(cluster).is_ok() {
            out.converged = Some(heal_at.elapsed());
        }
        if out.members.is_none() && cluster.members_healthy().is_ok() {
            out.members = Some(heal_at.elapsed());
        }
        if (out.converged.is_some() && out.members.is_some()) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `Ok` when every live node reports the same root.
pub fn roots_equal(cluster: &Cluster) -> Result<(), String> {
    let clients = cluster.clients();
    let names: Vec<String> = cluster.hosts().iter().map(|h| h.name.clone()).collect();
    let mut roots = BTreeSet::new();
    let mut seen = Vec::new();
    for i in cluster.live() {
        let c = clients[i].convergence().map_err(|e| e.to_string())?;
        seen.push(format!("{}={} ({} keys)", names[i], c.root, c.keys));
        roots.insert(c.root);
    }
    if roots.len() == 1 {
        Ok(())
    } else {
        Err(format!("roots differ: {}", seen.join(", ")))
    }
}

/// Acknowledged writes missing somewhere.
#[derive(Debug, Default)]
pub struct Lost {
    /// Keys of acknowledged writes missing on at least one live node.
    pub keys: BTreeSet<String>,
    /// One line per node and write.
    pub details: Vec<String>,
}

/// Acknowledged writes missing somewhere: every write is looked up in
/// every live node's listing of the scenario's keys.
pub fn lost_writes(cluster: &Cluster, log: &WorkloadLog, prefix: &str) -> Lost {
    let clients = cluster.clients();
    let names: Vec<String> = cluster.hosts().iter().map(|h| h.name.clone()).collect();
    let mut lost = Lost::default();
    for i in cluster.live() {
        let held: BTreeMap<String, Vec<String>> = match clients[i].list(prefix) {
            Ok(keys) => keys
                .into_iter()
                .map(|k| {
                    (
                        k.key,
                        k.values.into_iter().filter_map(|v| v.value).collect(),
                    )
                })
                .collect(),
            Err(e) => {
                lost.keys.insert(format!("(everything on {})", names[i]));
                lost.details
                    .push(format!("{}: cannot list keys ({e:#})", names[i]));
                continue;
            }
        };
        let holds = |key: &str| held.get(key).cloned().unwrap_or_default();
        let mut missing = |ack: &Ack, also: &[String]| {
            lost.keys.insert(ack.key.clone());
            lost.details.push(format!(
                "{}: {} lacks {:?} (acknowledged by {}){}; it holds {:?}",
                names[i],
                ack.key,
                ack.value,
                names[ack.node],
                if also.is_empty() {
                    String::new()
                } else {
                    format!(" and the unanswered writes after it {also:?}")
                },
                holds(&ack.key)
            ));
        };
        for ack in &log.unique {
            if !held
                .get(&ack.key)
                .is_some_and(|values| values.contains(&ack.value))
            {
                missing(ack, &[]);
            }
        }
        for chain in log.chains.values() {
            let found = held
                .get(&chain.last.key)
                .is_some_and(|values| chain.acceptable().any(|v| values.iter().any(|h| h == v)));
            if !found {
                missing(&chain.last, &chain.unanswered);
            }
        }
    }
    lost
}

/// Panics, unbidden exits and memory over the bound.
pub fn process_failures(cluster: &Cluster, bounds: &Bounds) -> Vec<String> {
    let mut out = Vec::new();
    let mut agents = cluster.agents();
    for a in agents.iter_mut() {
        a.poll_exit();
        a.sample_rss();
        for p in a.panics() {
            out.push(format!("{} panicked: {p}", a.host.name));
        }
        if let Some(d) = &a.died {
            out.push(format!(
                "{} exited on its own ({d}); see {}",
                a.host.name,
                a.stderr_path.display()
            ));
        }
        if a.peak_rss_kib > bounds.rss_limit_kib {
            out.push(format!(
                "{} peaked at {} MiB resident, over the {} MiB bound",
                a.host.name,
                a.peak_rss_kib / 1024,
                bounds.rss_limit_kib / 1024
            ));
        }
        if a.condition == Condition::Paused {
            out.push(format!("{} is still paused", a.host.name));
        }
    }
    out
}
