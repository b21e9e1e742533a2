//! Restarts, graceful leaves and slow nodes.

use core::time::Duration;

use rumor_proto::{Config, Event, Instant, MemberEventKind, MemberState};
use rumor_sim::{NodeStatus, RestartMode, Sim, SimConfig, SlowSpec};

fn converged_cluster(seed: u64, n: usize, config: Config) -> (Sim, Vec<usize>) {
    let mut sim = Sim::new(SimConfig::new(seed).with_node_config(config)).expect("sim");
    let nodes = sim
        .add_cluster(n, Duration::from_millis(10))
        .expect("cluster");
    sim.run_until_condition(Instant::from_millis(120_000), |s| {
        s.observer().join_converged_at().is_some()
    })
    .unwrap_or_else(|| panic!("seed {seed}: no convergence"));
    (sim, nodes)
}

#[test]
fn restarted_nodes_come_back_alive_with_and_without_state() {
    let seed = 11;
    let (mut sim, nodes) = converged_cluster(seed, 8, Config::local());
    let t0 = sim.now();
    let (kept, fresh) = (nodes[3], nodes[5]);
    sim.crash_at(t0 + Duration::from_secs(1), kept);
    sim.crash_at(t0 + Duration::from_secs(1), fresh);
    sim.run_until(t0 + Duration::from_secs(30));
    assert_eq!(
        sim.view(nodes[0], kept),
        Some(MemberState::Dead),
        "seed {seed}"
    );
    let incarnation = sim.node(kept).local().incarnation;
    sim.restart_at(t0 + Duration::from_secs(31), kept, RestartMode::WithState);
    sim.restart_at(t0 + Duration::from_secs(31), fresh, RestartMode::Fresh);
    sim.run_until(t0 + Duration::from_secs(31));
    assert!(sim.is_live(kept) && sim.is_live(fresh), "seed {seed}");
    let back = sim.run_until_condition(t0 + Duration::from_secs(120), |s| {
        s.observer().is_converged()
    });
    assert!(
        back.is_some(),
        "seed {seed}: restarted nodes never rejoined"
    );
    for &i in &[kept, fresh] {
        assert_eq!(sim.status(i), NodeStatus::Running, "seed {seed}");
        for &j in nodes.iter().filter(|&&j| j != i) {
            assert_eq!(
                sim.view(j, i),
                Some(MemberState::Alive),
                "seed {seed}: {j}→{i}"
            );
            assert_eq!(
                sim.view(i, j),
                Some(MemberState::Alive),
                "seed {seed}: {i}→{j}"
            );
        }
    }
    assert!(
        sim.node(kept).local().incarnation > incarnation,
        "seed {seed}: a restored node comes back at a higher incarnation"
    );
    let report = sim.report();
    assert_eq!(report.crashes.len(), 2, "seed {seed}");
    assert!(
        report.crashes.iter().all(|c| c.detection_s.is_some()),
        "seed {seed}"
    );
    assert_eq!(report.undetected, 0, "seed {seed}");
}

#[test]
fn leaving_node_is_seen_as_left_and_then_stops() {
    let seed = 12;
    let (mut sim, nodes) = converged_cluster(seed, 8, Config::local());
    let t0 = sim.now();
    let leaver = nodes[2];
    sim.leave_at(t0, leaver);
    sim.run_until(t0 + Duration::from_millis(1));
    assert_eq!(sim.status(leaver), NodeStatus::Leaving, "seed {seed}");
    assert!(
        !sim.is_live(leaver),
        "seed {seed}: a leaving node is not live"
    );
    sim.run_until(t0 + Duration::from_secs(10));
    assert_eq!(sim.status(leaver), NodeStatus::Gone, "seed {seed}");
    for j in sim.live_nodes().collect::<Vec<_>>() {
        assert_eq!(
            sim.view(j, leaver),
            Some(MemberState::Left),
            "seed {seed}: {j}"
        );
    }
    let report = sim.report();
    assert_eq!(report.false_positives, 0, "seed {seed}");
    assert!(report.crashes.is_empty(), "seed {seed}");
    assert!(sim.observer().is_converged(), "seed {seed}");
}

#[test]
fn frozen_nodes_queue_their_input_and_plain_swim_declares_them_dead() {
    let seed = 13;
    let mut config = Config::local();
    config.lifeguard = false;
    let (mut sim, nodes) = converged_cluster(seed, 6, config);
    let t0 = sim.now();
    let slow = nodes[4];
    // Frozen for 20 s at a time: far beyond the 3 s suspicion timeout.
    sim.slow(
        slow,
        SlowSpec {
            start: t0,
            end: t0 + Duration::from_secs(60),
            run: Duration::from_secs(1)..=Duration::from_secs(1),
            freeze: Duration::from_secs(20)..=Duration::from_secs(20),
        },
    );
    let frozen_at = t0 + Duration::from_secs(1);
    sim.run_until(frozen_at + Duration::from_millis(1));
    assert!(sim.is_frozen(slow), "seed {seed}");
    let received = sim.node(slow).stats().packets_received;
    sim.run_until(frozen_at + Duration::from_secs(19));
    assert!(sim.is_frozen(slow), "seed {seed}");
    assert_eq!(
        sim.node(slow).stats().packets_received,
        received,
        "seed {seed}: a frozen node handles nothing"
    );
    let report = sim.report();
    assert!(
        report.false_positives > 0,
        "seed {seed}: a frozen node is live, declaring it dead is a false positive: {report:?}"
    );
    assert_eq!(report.false_positive_nodes, 1, "seed {seed}");
    sim.run_until(frozen_at + Duration::from_secs(20) + Duration::from_millis(1));
    assert!(!sim.is_frozen(slow), "seed {seed}");
    assert!(
        sim.node(slow).stats().packets_received > received,
        "seed {seed}: queued packets are handled on thaw"
    );
    assert!(sim.is_live(slow), "seed {seed}");
}

#[test]
fn thawed_node_runs_timers_before_queued_packets() {
    let seed = 14;
    let (mut sim, nodes) = converged_cluster(seed, 4, Config::local());
    let slow = nodes[1];
    // Wait for the node to send a probe...
    let probes = sim.node(slow).stats().probes;
    let probed_at = sim
        .run_until_condition(sim.now() + Duration::from_secs(5), |s| {
            s.node(slow).stats().probes > probes
        })
        .unwrap_or_else(|| panic!("seed {seed}: no probe"));
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let events = log.clone();
    sim.set_event_hook(move |at, node, event| {
        if node == slow
            && let Event::Member(m) = event
        {
            events.lock().unwrap().push((at, m.kind));
        }
    });
    // ...and freeze it before the ack arrives (latency is at least 1 ms),
    // for longer than the probe period.
    let freeze = Duration::from_secs(2);
    sim.slow(
        slow,
        SlowSpec {
            start: probed_at,
            end: probed_at + Duration::from_secs(3),
            run: Duration::from_micros(500)..=Duration::from_micros(500),
            freeze: freeze..=freeze,
        },
    );
    let thaw = probed_at + Duration::from_micros(500) + freeze;
    sim.run_until(thaw - Duration::from_millis(1));
    assert!(sim.is_frozen(slow), "seed {seed}");
    sim.run_until(thaw);
    assert!(!sim.is_frozen(slow), "seed {seed}");
    // On thaw the probe deadline fires before the ack waiting in the inbox
    // is read, so the node suspects its target at the thaw instant.
    let events = log.lock().unwrap();
    assert!(
        events.contains(&(thaw, MemberEventKind::Suspected)),
        "seed {seed}: {events:?}"
    );
}

#[test]
fn members_whose_datagrams_are_all_lost_stay_alive_through_the_stream_fallback_and_are_reported() {
    use std::sync::{Arc, Mutex};
    let seed = 17;
    let (mut sim, nodes) = converged_cluster(seed, 3, Config::local());
    let reports = Arc::new(Mutex::new(0u32));
    let seen = Arc::clone(&reports);
    sim.set_event_hook(move |_, _, e| {
        if matches!(e, Event::DatagramsFailing { .. }) {
            *seen.lock().unwrap() += 1;
        }
    });
    // From now on every datagram is lost; stream frames still arrive.
    sim.set_datagram_loss(1.0).expect("a valid loss");
    let t0 = sim.now();
    sim.run_until(t0 + Duration::from_secs(60));
    assert!(
        *reports.lock().unwrap() > 0,
        "seed {seed}: no DatagramsFailing event"
    );
    for &i in &nodes {
        assert!(
            sim.node(i).stats().stream_only_acks > 0,
            "seed {seed}: node {i}"
        );
        for &j in nodes.iter().filter(|&&j| j != i) {
            assert_eq!(
                sim.view(i, j),
                Some(MemberState::Alive),
                "seed {seed}: {i}→{j}"
            );
        }
    }
}
