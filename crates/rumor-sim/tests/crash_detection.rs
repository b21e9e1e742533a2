//! Crashed nodes are declared dead by every live node.

use core::time::Duration;

use rumor_proto::{Config, Instant, MemberState};
use rumor_sim::{NodeStatus, Sim, SimConfig};

#[test]
fn three_crashes_in_a_hundred_are_detected_by_everyone() {
    let seed = 3;
    let mut sim = Sim::new(SimConfig::new(seed).with_node_config(Config::lan())).expect("sim");
    let nodes = sim
        .add_cluster(100, Duration::from_millis(100))
        .expect("cluster");
    let converged = sim
        .run_until_condition(Instant::from_millis(120_000), |s| {
            s.observer().join_converged_at().is_some()
        })
        .unwrap_or_else(|| panic!("seed {seed}: no convergence in 120 s"));
    let crash_at = converged + Duration::from_secs(1);
    let victims = [nodes[10], nodes[42], nodes[77]];
    for &v in &victims {
        sim.crash_at(crash_at, v);
    }
    sim.run_until(crash_at + Duration::from_secs(60));

    let report = sim.report();
    assert_eq!(report.crashes.len(), 3, "seed {seed}: {report:?}");
    for c in &report.crashes {
        let d = c
            .detection_s
            .unwrap_or_else(|| panic!("seed {seed}: node {} not detected: {report:?}", c.node));
        // Lifeguard at 100 nodes: at least the minimum suspicion timeout
        // (8 s), at most a probe round plus the maximum (48 s).
        assert!((8.0..60.0).contains(&d), "seed {seed}: detection {d} s");
    }
    assert_eq!(report.undetected, 0, "seed {seed}");
    assert_eq!(report.false_positives, 0, "seed {seed}");
    assert_eq!(report.live, 97, "seed {seed}");
    for i in sim.live_nodes() {
        for &v in &victims {
            assert_eq!(
                sim.view(i, v),
                Some(MemberState::Dead),
                "seed {seed}: node {i}'s view of crashed node {v}"
            );
        }
    }
    for &v in &victims {
        assert_eq!(sim.status(v), NodeStatus::Crashed, "seed {seed}");
        assert!(!sim.is_live(v), "seed {seed}");
    }
}

#[test]
fn the_fast_profile_declares_a_crash_within_two_seconds() {
    // fast at 100 nodes: probes every 200 ms, minimum suspicion
    // 2 × log10(100) × 200 ms = 0.8 s (lan: 8 s, as the test above holds).
    for seed in 1..=3 {
        let mut sim = Sim::new(SimConfig::new(seed).with_node_config(Config::fast())).expect("sim");
        let nodes = sim
            .add_cluster(100, Duration::from_millis(100))
            .expect("cluster");
        let converged = sim
            .run_until_condition(Instant::from_millis(60_000), |s| {
                s.observer().join_converged_at().is_some()
            })
            .unwrap_or_else(|| panic!("seed {seed}: no convergence in 60 s"));
        let crash_at = converged + Duration::from_secs(1);
        sim.crash_at(crash_at, nodes[42]);
        sim.run_until(crash_at + Duration::from_secs(30));
        let report = sim.report();
        let d = report.crashes[0]
            .detection_s
            .unwrap_or_else(|| panic!("seed {seed}: not detected: {report:?}"));
        assert!((0.8..2.0).contains(&d), "seed {seed}: detection {d} s");
        assert_eq!(report.false_positives, 0, "seed {seed}");
    }
}
