//! One seeded run of the scenarios on one system: join, steady state,
//! a state update, a crash; and what each took.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::host;
use crate::swarm::Swarm;

/// How one run goes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Cluster size.
    pub nodes: usize,
    /// Seed of the random choices (which node updates, which crashes).
    pub seed: u64,
    /// How long after the join converged the steady state starts, so that
    /// the join's own gossip has died down.
    pub settle: Duration,
    /// How long the steady-state traffic is measured.
    pub steady: Duration,
    /// Whether the run has a network namespace to itself, so that the
    /// loopback counters hold only its traffic.
    pub isolated: bool,
    /// Longest wait for each scenario.
    pub timeout: Duration,
}

/// What one run measured. Times are `None` when the condition was not met
/// within the plan's timeout.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// a. Seconds from the joins until every node holds all N.
    pub join_s: Option<f64>,
    /// b. Seconds from a crash until every other node holds it as down.
    pub detect_s: Option<f64>,
    /// c. Seconds from an update until every node holds it.
    pub update_s: Option<f64>,
    /// d. Bytes sent per node per second in steady state (IP headers
    /// included; `None` without an isolated namespace).
    pub bytes_per_node_s: Option<f64>,
    /// d. Packets sent per node per second in steady state.
    pub packets_per_node_s: Option<f64>,
    /// d. CPU time per node in steady state, in percent of one core.
    pub cpu_pct_per_node: Option<f64>,
    /// Resident memory per node at the end of steady state, in MiB.
    pub rss_mib_per_node: Option<f64>,
    /// Times a node that never crashed was declared down by another.
    pub false_positives: u64,
}

const POLL: Duration = Duration::from_millis(50);

/// Run the scenarios on `swarm` and shut it down.
pub async fn run<S: Swarm>(swarm: &mut S, plan: &Plan) -> Result<Outcome> {
    let result = run_scenarios(swarm, plan).await;
    let stopped = swarm.shutdown().await;
    let outcome = result?;
    stopped?;
    Ok(outcome)
}

async fn run_scenarios<S: Swarm>(swarm: &mut S, plan: &Plan) -> Result<Outcome> {
    let n = plan.nodes;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut outcome = Outcome::default();

    // a. Join through the seed.
    let start = Instant::now();
    swarm.join().await?;
    outcome.join_s = wait_until(plan.timeout, start, async || {
        let counts = swarm.member_counts().await?;
        let behind = counts.iter().filter(|&&c| c < n).count();
        tracing::debug!(
            "join at {:.2} s: {behind} nodes see fewer than {n}; least view {}",
            start.elapsed().as_secs_f64(),
            counts.iter().min().unwrap_or(&0)
        );
        Ok(behind == 0)
    })
    .await?;

    // d. Steady state: let the joins' traffic settle, then count.
    tokio::time::sleep(plan.settle).await;
    let pids = swarm.pids();
    let traffic_before = plan.isolated.then(host::loopback_sent).transpose()?;
    let cpu_before = host::cpu_time(&pids)?;
    let window = Instant::now();
    tokio::time::sleep(plan.steady).await;
    let elapsed = window.elapsed().as_secs_f64();
    let per_node_s = |x: u64| x as f64 / n as f64 / elapsed;
    if let Some(before) = traffic_before {
        let after = host::loopback_sent()?;
        outcome.bytes_per_node_s = Some(per_node_s(after.bytes - before.bytes));
        outcome.packets_per_node_s = Some(per_node_s(after.packets - before.packets));
    }
    let cpu = host::cpu_time(&pids)?.saturating_sub(cpu_before);
    outcome.cpu_pct_per_node = Some(100.0 * cpu.as_secs_f64() / n as f64 / elapsed);
    outcome.rss_mib_per_node = Some(host::rss_bytes(&pids)? as f64 / n as f64 / (1 << 20) as f64);

    // c. A small update from a random node.
    let writer = rng.random_range(0..n);
    let value = format!("v{}", plan.seed);
    let start = Instant::now();
    swarm.update(writer, "bench", &value).await?;
    outcome.update_s = wait_until(plan.timeout, start, async || {
        Ok(swarm.seen_count("bench", &value).await? >= n)
    })
    .await?;

    // b. A random node other than the seed crashes.
    let victim = rng.random_range(1..n);
    let start = Instant::now();
    swarm.crash(victim).await?;
    outcome.detect_s = wait_until(plan.timeout, start, async || {
        Ok(swarm.down_count(victim).await? >= n - 1)
    })
    .await?;

    outcome.false_positives = swarm
        .downs_by_subject()
        .await?
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != victim)
        .map(|(_, &d)| d)
        .sum();
    Ok(outcome)
}

/// Poll `done` until it holds or `timeout` passes; the seconds since
/// `start` when it held.
async fn wait_until<F>(timeout: Duration, start: Instant, mut done: F) -> Result<Option<f64>>
where
    F: AsyncFnMut() -> Result<bool>,
{
    loop {
        if done().await? {
            return Ok(Some(start.elapsed().as_secs_f64()));
        }
        if start.elapsed() > timeout {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}
