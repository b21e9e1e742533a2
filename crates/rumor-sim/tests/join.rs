//! A cluster that joins through one seed converges.

use core::time::Duration;

use rumor_proto::{Instant, MemberState};
use rumor_sim::{MembershipParams, MembershipRun};

#[test]
fn hundred_nodes_join_and_converge_long_before_the_periodic_push_pull() {
    // The periodic push-pull comes every 90 s at this size: convergence must
    // come from gossip, the join sync and the digest repair.
    for seed in 1..=3 {
        hundred_nodes_converge(seed);
    }
}

fn hundred_nodes_converge(seed: u64) {
    let params = MembershipParams {
        nodes: 100,
        seed,
        duration: Duration::from_secs(60),
        ..MembershipParams::default()
    };
    let mut run = MembershipRun::new(params).expect("valid parameters");
    let report = run.run(&mut |_| {});
    let converged = report
        .join_converged_s
        .unwrap_or_else(|| panic!("seed {seed}: no join convergence in 60 s: {report:?}"));
    assert!(converged <= 10.0, "seed {seed}: converged at {converged} s");
    let sim = run.sim();
    assert_eq!(sim.live_nodes().count(), 100, "seed {seed}");
    for i in 0..100 {
        assert_eq!(
            sim.node(i).members().count(),
            100,
            "seed {seed}: node {i}'s table"
        );
        for j in (0..100).filter(|&j| j != i) {
            assert_eq!(
                sim.view(i, j),
                Some(MemberState::Alive),
                "seed {seed}: node {i}'s view of node {j}"
            );
        }
    }
    assert_eq!(report.false_positives, 0, "seed {seed}");
    assert_eq!(report.false_suspicions, 0, "seed {seed}");
    assert_eq!(report.dropped_packets, 0, "seed {seed}");
    assert_eq!(sim.now(), Instant::from_millis(60_000));
}

#[test]
fn fifty_nodes_joining_at_once_know_each_other_within_one_and_a_half_seconds() {
    // Fifty nodes join through node-0 within 50 ms. The joins' rumors
    // spread while the joiners are too new to be gossip targets, so a few
    // pairs of joiners miss each other; the early join sync, repeated while
    // it brings news, repairs them. Over seeds 1..=20 (`rumor sim membership
    // --nodes 50 --duration 10 --seed S`) that takes 0.63 to 1.30 s, median
    // 0.74; with one sync in [T, 2T) it took 1.67 to 2.86 s (T = 1.6 s).
    for seed in 1..=3 {
        let params = MembershipParams {
            nodes: 50,
            seed,
            duration: Duration::from_secs(10),
            ..MembershipParams::default()
        };
        let mut run = MembershipRun::new(params).expect("valid parameters");
        let report = run.run(&mut |_| {});
        let converged = report
            .join_converged_s
            .unwrap_or_else(|| panic!("seed {seed}: no join convergence: {report:?}"));
        assert!(converged <= 1.5, "seed {seed}: converged at {converged} s");
    }
}

#[test]
fn a_formed_cluster_is_converged_from_the_start_and_runs_as_usual() {
    use rumor_sim::{Sim, SimConfig};
    let n = 50;
    let mut sim = Sim::new(SimConfig::new(3)).expect("valid configuration");
    let ids = sim.add_formed_cluster(n).expect("room for 50 nodes");
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
    assert_eq!(sim.observer().join_converged_at(), Some(Instant::ZERO));
    for i in 0..n {
        assert_eq!(sim.node(i).members().count(), n, "node {i}'s table");
        assert_eq!(sim.node(i).queued_broadcasts(), 1, "node {i}: only itself");
        for j in (0..n).filter(|&j| j != i) {
            assert_eq!(sim.view(i, j), Some(MemberState::Alive), "{i} about {j}");
        }
    }
    // The installed members are probed like joined ones: a crash is found.
    sim.crash_at(Instant::from_millis(10_000), 7);
    sim.run_until(Instant::from_millis(60_000));
    let report = sim.report();
    assert_eq!(report.crashes.len(), 1);
    assert!(report.crashes[0].detection_s.is_some(), "{report:?}");
    assert_eq!(report.false_positives, 0);
    assert_eq!(report.false_suspicions, 0);
    assert!(sim.observer().is_converged());
}
