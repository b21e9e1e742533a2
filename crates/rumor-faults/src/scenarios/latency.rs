//! h. Added latency, jitter and some loss on the links of two hosts, done
//! by a user-space delayer on NFQUEUE (this kernel has no netem).

use std::collections::HashMap;
use std::time::Duration;

use super::{Scenario, Stage};
use crate::delayer::{Delayer, LinkShape};
use crate::firewall::Firewall;

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "latency",
    letter: "h",
    about: "every link of node-0 and node-1 delayed 60 ms ± 40 ms each way with 5% loss, then healed",
    body,
};

const SHAPE: LinkShape = LinkShape {
    delay: Duration::from_millis(60),
    jitter: Duration::from_millis(40),
    loss: 0.05,
};

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let hosts = stage.cluster.hosts();
    let slow = [0usize, 1];
    let mut delayers = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let peers: Vec<usize> = if slow.contains(&i) {
            (0..hosts.len()).filter(|&j| j != i).collect()
        } else {
            slow.to_vec()
        };
        let shapes: HashMap<_, _> = peers.iter().map(|&j| (hosts[j].ip, SHAPE)).collect();
        delayers.push(Delayer::start(&h.ns, 0, shapes, None)?);
        for &j in &peers {
            Firewall::of(h).queue(Some(hosts[j].ip), None, 0)?;
        }
    }
    stage.note(format!(
        "links of {:?} shaped: {SHAPE:?}",
        stage.names(&slow)
    ));
    stage.hold(stage.options.durations.fault);
    let handled: u64 = delayers
        .iter()
        .map(|d| d.handled.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    stage.healed()?;
    drop(delayers);
    stage.note(format!("the delayers handled {handled} packets"));
    if handled == 0 {
        anyhow::bail!("the delayers saw no packet: the NFQUEUE rules did not take effect");
    }
    Ok(())
}
