//! The engine runs windows of events on all cores; a seed must still give
//! the same run, event for event, as running them one by one.

use core::time::Duration;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rumor_proto::state::Op;
use rumor_proto::{Config, Event, Instant};
use rumor_sim::{NetworkConfig, RestartMode, Sim, SimConfig, SlowSpec};

/// Everything observable about a run, as text: every event every node
/// emitted with its time, then each node's counters, member views and
/// store root, the network's counters and the simulation report.
/// Without jitter many events fall on the same nanosecond, where only the
/// order of scheduling decides.
fn fingerprint(seed: u64, jitter: Duration, parallel: bool) -> String {
    let network = NetworkConfig {
        latency: Duration::from_millis(1),
        jitter,
        loss: 0.05,
    };
    let mut config = SimConfig::new(seed)
        .with_node_config(Config::local())
        .with_network(network);
    if !parallel {
        config = config.one_by_one();
    }
    let mut sim = Sim::new(config).unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    sim.set_event_hook(move |at: Instant, node, event: &Event| {
        let mut s = sink.lock().unwrap();
        let _ = writeln!(s, "{at:?} {node} {event:?}");
    });
    let n = 120;
    let ids = sim.add_formed_cluster(n).unwrap();
    // Joins too: a second group comes in through node 0 while the first
    // runs.
    for _ in 0..10 {
        sim.add_node(Instant::from_millis(200), &[ids[0]]).unwrap();
    }
    let (a, b) = ids.split_at(n / 2);
    sim.partition(
        Instant::from_millis(3_000),
        Instant::from_millis(6_000),
        &[a.to_vec(), b.to_vec()],
    );
    sim.crash_at(Instant::from_millis(2_000), ids[7]);
    sim.restart_at(Instant::from_millis(4_000), ids[7], RestartMode::WithState);
    sim.slow(
        ids[9],
        SlowSpec {
            start: Instant::from_millis(1_000),
            end: Instant::from_millis(5_000),
            run: Duration::from_millis(50)..=Duration::from_millis(300),
            freeze: Duration::from_millis(20)..=Duration::from_millis(400),
        },
    );
    for step in 0..40u64 {
        sim.run_until(Instant::from_millis(250 * step));
        let node = (step as usize * 37) % n;
        let value = step.to_le_bytes().to_vec();
        let op = Op::Put {
            value,
            context: None,
            kind: None,
        };
        let _ = sim.write(node, &format!("key-{}", step % 7), op);
    }
    sim.run_until(Instant::from_millis(14_000));

    let mut out = std::mem::take(&mut *log.lock().unwrap());
    for i in 0..sim.node_count() {
        let node = sim.node(i);
        let views: Vec<_> = node
            .members()
            .map(|m| (m.name.clone(), m.state, m.incarnation))
            .collect();
        let _ = writeln!(
            out,
            "node {i}: {:?} {:?} root {} {views:?} {:?}",
            sim.status(i),
            node.stats(),
            node.kv().root(),
            sim.traffic(i),
        );
    }
    let _ = writeln!(out, "{:?}", sim.network_stats());
    let _ = writeln!(out, "{:?}", sim.report());
    out
}

#[test]
fn a_seed_gives_the_same_run_on_all_cores_as_one_by_one() {
    for (seed, jitter) in [(3, 500), (11, 0)] {
        let jitter = Duration::from_micros(jitter);
        let one_by_one = fingerprint(seed, jitter, false);
        let parallel = fingerprint(seed, jitter, true);
        assert!(
            one_by_one.lines().count() > 1_000,
            "seed {seed}: the run is too quiet to compare"
        );
        if one_by_one != parallel {
            let (line, (a, b)) = one_by_one
                .lines()
                .zip(parallel.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .unwrap_or((0, ("(length differs)", "")));
            panic!("seed {seed}: runs differ at line {line}:\none by one: {a}\nparallel:   {b}");
        }
    }
}
