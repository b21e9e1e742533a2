//! a. 20% random packet loss on every host, both UDP and TCP.

use super::{Scenario, Stage};
use crate::firewall::Firewall;

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "loss",
    letter: "a",
    about: "20% of the packets arriving at every host dropped at random, then healed",
    body,
};

/// The loss rate.
const LOSS: f64 = 0.2;

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    for h in stage.cluster.hosts() {
        Firewall::of(h).loss(None, LOSS)?;
    }
    stage.note(format!("{:.0}% loss on every host", LOSS * 100.0));
    stage.hold(stage.options.durations.fault);
    stage.healed()
}
