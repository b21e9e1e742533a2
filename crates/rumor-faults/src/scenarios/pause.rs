//! e. One node frozen with SIGSTOP for three times its suspicion timeout,
//! then resumed with SIGCONT.

use super::{Scenario, Stage};

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "pause",
    letter: "e",
    about: "the last node SIGSTOPped for 3× the suspicion timeout, then SIGCONTed",
    body,
};

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let i = stage.cluster.hosts().len() - 1;
    let frozen = stage.options.suspicion * 3;
    stage.excuse(&[i], None);
    stage.expect_detection(i);
    stage.cluster.pause(i);
    stage.note(format!(
        "{} paused for {frozen:?} (suspicion timeout {:?})",
        stage.cluster.hosts()[i].name,
        stage.options.suspicion
    ));
    stage.hold(frozen);
    stage.cluster.resume(i);
    stage.note("resumed");
    stage.healed()
}
