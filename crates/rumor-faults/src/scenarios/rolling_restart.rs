//! d. kill -9 and restart every node in turn.
//!
//! Without a data directory a restarted node comes back empty and catches
//! up from the others, so writes are first drained away from the node
//! about to be killed: a write it acknowledged in its last milliseconds
//! could otherwise exist nowhere else. With `--data-dir` among the agent
//! flags nothing is drained, and every acknowledged write must survive.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::{Scenario, Stage};

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "rolling-restart",
    letter: "d",
    about: "each node in turn killed with SIGKILL, kept down, restarted; the next only once membership is clean",
    body,
};

/// How long writes stay away from a node before it is killed.
const DRAIN: Duration = Duration::from_secs(1);

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let persistent = stage
        .options
        .agents
        .extra_args
        .iter()
        .any(|a| a.starts_with("--data-dir"));
    for i in 0..stage.cluster.hosts().len() {
        let name = stage.cluster.hosts()[i].name.clone();
        if !persistent {
            stage
                .avoid
                .lock()
                .map_err(|_| anyhow::anyhow!("workload lock poisoned"))?
                .insert(i);
            stage.hold(DRAIN);
        }
        stage.excuse(&[i], None);
        stage.expect_detection(i);
        stage.cluster.kill9(i);
        stage.note(format!("{name} killed with SIGKILL"));
        stage.hold(stage.options.durations.down);
        stage.cluster.restart(i)?;
        stage.end_excuses();
        stage.note(format!("{name} restarted"));
        if let Ok(mut avoid) = stage.avoid.lock() {
            avoid.remove(&i);
        }
        let deadline = Instant::now() + stage.options.bounds.heal_within;
        while let Err(e) = stage.cluster.members_healthy() {
            if Instant::now() > deadline {
                bail!(
                    "membership not clean {:?} after restarting {name}: {e}",
                    stage.options.bounds.heal_within
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stage.note("membership clean");
    }
    stage.healed()
}
