//! b. The hosts split 2/3 and 1/3, with writes on both sides, then healed.

use super::{Scenario, Stage};
use crate::firewall::Firewall;

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "partition",
    letter: "b",
    about: "hosts split into 2/3 and 1/3 (writes on both sides), then healed",
    body,
};

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let n = stage.cluster.hosts().len();
    let majority = ((2 * n + 1) / 3).clamp(1, n.saturating_sub(1).max(1));
    let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| i < majority);
    let hosts = stage.cluster.hosts();
    for &i in &a {
        for &j in &b {
            Firewall::of(&hosts[i]).block(hosts[j].ip)?;
            Firewall::of(&hosts[j]).block(hosts[i].ip)?;
        }
    }
    stage.excuse(&b, Some(&a));
    stage.excuse(&a, Some(&b));
    stage.note(format!(
        "partitioned {:?} | {:?}",
        stage.names(&a),
        stage.names(&b)
    ));
    stage.hold(stage.options.durations.partition);
    stage.healed()
}
