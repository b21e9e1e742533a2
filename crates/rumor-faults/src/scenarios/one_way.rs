//! c. A one-way partition: node-0 hears everyone, but node-1 and node-2 no
//! longer hear node-0. The others still hear both, so indirect probes can
//! vouch for node-0.

use super::{Scenario, Stage};
use crate::firewall::Firewall;

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "one-way",
    letter: "c",
    about: "node-1 and node-2 stop hearing node-0 while node-0 still hears them; others hear all; then healed",
    body,
};

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let hosts = stage.cluster.hosts();
    let deaf: Vec<usize> = (1..hosts.len().min(3)).collect();
    for &j in &deaf {
        Firewall::of(&hosts[j]).block(hosts[0].ip)?;
    }
    // The deaf hosts lose node-0's acks as well as its pings, and node-0
    // loses their acks to its pings: either may report the other.
    stage.excuse(&[0], Some(&deaf));
    stage.excuse(&deaf, Some(&[0]));
    stage.note(format!("{:?} no longer hear node-0", stage.names(&deaf)));
    stage.hold(stage.options.durations.fault);
    stage.healed()
}
