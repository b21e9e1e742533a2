//! The network model as the nodes see it: loss and partitions.

use core::time::Duration;

use rumor_proto::{Config, Instant, MemberState};
use rumor_sim::{NetworkConfig, Partition, Sim, SimConfig};

fn sim(seed: u64, loss: f64) -> Sim {
    let network = NetworkConfig {
        loss,
        ..NetworkConfig::default()
    };
    Sim::new(
        SimConfig::new(seed)
            .with_node_config(Config::local())
            .with_network(network),
    )
    .expect("sim")
}

#[test]
fn total_datagram_loss_lets_only_stream_frames_through() {
    let seed = 5;
    let mut sim = sim(seed, 1.0);
    let a = sim.add_node(Instant::ZERO, &[]).expect("node");
    let b = sim.add_node(Instant::from_millis(5), &[a]).expect("node");
    sim.run_until(Instant::from_millis(20_000));
    let net = sim.network_stats().clone();
    assert_eq!(net.datagrams_delivered, 0, "seed {seed}: {net:?}");
    assert!(net.stream_frames_delivered > 0, "seed {seed}: {net:?}");
    assert!(net.lost > 0, "seed {seed}: {net:?}");
    // What arrived is exactly what the nodes received.
    let received: u64 = [a, b]
        .iter()
        .map(|&i| sim.node(i).stats().packets_received)
        .sum();
    assert_eq!(received, net.stream_frames_delivered, "seed {seed}");
    // The join went over the stream channel, so they know each other.
    assert!(sim.view(a, b).is_some(), "seed {seed}");
    assert!(sim.view(b, a).is_some(), "seed {seed}");
}

#[test]
fn no_loss_delivers_every_packet() {
    let seed = 6;
    let mut sim = sim(seed, 0.0);
    let nodes = sim
        .add_cluster(5, Duration::from_millis(50))
        .expect("cluster");
    sim.run_until(Instant::from_millis(10_000));
    let net = sim.network_stats();
    let sent: u64 = nodes.iter().map(|&i| sim.traffic(i).packets_sent).sum();
    assert_eq!(
        net.lost + net.partitioned + net.unreachable,
        0,
        "seed {seed}"
    );
    // Everything sent has arrived but what is still in flight.
    assert!(
        sent - net.delivered() <= 10,
        "seed {seed}: {sent} sent, {net:?}"
    );
}

#[test]
fn partitioned_nodes_are_declared_dead_without_false_positives_and_heal() {
    let seed = 8;
    let mut sim = sim(seed, 0.0);
    let nodes = sim
        .add_cluster(10, Duration::from_millis(10))
        .expect("cluster");
    let converged = sim
        .run_until_condition(Instant::from_millis(60_000), |s| {
            s.observer().join_converged_at().is_some()
        })
        .unwrap_or_else(|| panic!("seed {seed}: no convergence"));
    let start = converged + Duration::from_secs(1);
    let end = start + Duration::from_secs(30);
    let (left, right) = nodes.split_at(5);
    sim.partition(start, end, &[left.to_vec(), right.to_vec()]);
    sim.run_until(end - Duration::from_millis(1));
    for &i in left {
        for &j in right {
            assert_eq!(
                sim.view(i, j),
                Some(MemberState::Dead),
                "seed {seed}: {i}→{j}"
            );
            assert_eq!(
                sim.view(j, i),
                Some(MemberState::Dead),
                "seed {seed}: {j}→{i}"
            );
        }
    }
    let report = sim.report();
    assert_eq!(
        report.false_positives, 0,
        "seed {seed}: partitions are not false positives"
    );
    assert!(report.network.partitioned > 0, "seed {seed}");
    assert!(!sim.observer().is_converged(), "seed {seed}");
    // Dead members are retried by the reconnect timer, so the halves merge.
    let healed = sim.run_until_condition(end + Duration::from_secs(120), |s| {
        s.observer().is_converged()
    });
    assert!(healed.is_some(), "seed {seed}: the partition never healed");
}

#[test]
fn one_way_partition_is_seen_as_a_failure_by_the_cut_off_side_only() {
    let seed = 9;
    let mut sim = sim(seed, 0.0);
    let nodes = sim
        .add_cluster(3, Duration::from_millis(10))
        .expect("cluster");
    sim.run_until(Instant::from_millis(5_000));
    let (a, b) = (nodes[1], nodes[2]);
    let p = Partition::new(
        Instant::from_millis(5_000),
        Instant::from_millis(200_000),
        &[vec![a], vec![b]],
    );
    sim.add_partition(p.one_way());
    assert!(sim.observer().is_converged(), "seed {seed}");
    sim.run_until(Instant::from_millis(60_000));
    let report = sim.report();
    // a cannot reach b, but b can reach a: some accusation between them
    // happens, and is not counted as a false positive.
    assert_eq!(report.false_positives, 0, "seed {seed}: {report:?}");
    assert!(report.network.partitioned > 0, "seed {seed}");
}
