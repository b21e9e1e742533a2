//! The replicated key-value store through the simulator: writes spread,
//! concurrent writes become siblings that a write with their context
//! resolves, partitions heal with nothing lost, deletes stay deleted, and a
//! node that restarts empty catches up by anti-entropy.

use core::time::Duration;

use rumor_proto::state::{Entry, Op};
use rumor_proto::{Config, Instant};
use rumor_sim::kv_run::kv_converged;
use rumor_sim::{KvParams, Partition, RestartMode, Sim, SimConfig, run_kv};

const SEED: u64 = 7;

fn cluster(n: usize) -> Sim {
    let mut sim = Sim::new(SimConfig::new(SEED).with_node_config(Config::local())).unwrap();
    sim.add_cluster(n, Duration::from_millis(100)).unwrap();
    sim.run_until(Instant::from_millis(3_000));
    sim
}

fn put(v: &[u8]) -> Op {
    Op::Put {
        value: v.to_vec(),
        context: None,
        kind: None,
    }
}

fn run_until_converged(sim: &mut Sim, within: Duration) {
    let deadline = sim.now() + within;
    let at = sim.run_until_condition(deadline, kv_converged);
    assert!(
        at.is_some(),
        "seed {SEED}: stores did not converge by {deadline:?}"
    );
}

#[test]
fn concurrent_writes_become_siblings_and_a_write_with_their_context_resolves_them() {
    let mut sim = cluster(5);
    let t = sim.now();
    sim.write(1, "k", put(b"one")).unwrap().unwrap();
    sim.write(3, "k", put(b"three")).unwrap().unwrap();
    run_until_converged(&mut sim, Duration::from_secs(10));
    let e = sim.node(0).get("k").unwrap().clone();
    let mut v = e.values();
    v.sort();
    assert_eq!(v, vec![b"one".as_slice(), b"three"], "seed {SEED}");
    let op = Op::Put {
        value: b"merged".to_vec(),
        context: Some(e.context.clone()),
        kind: None,
    };
    sim.write(4, "k", op).unwrap().unwrap();
    run_until_converged(&mut sim, Duration::from_secs(10));
    for i in 0..5 {
        assert_eq!(
            sim.node(i).get("k").unwrap().values(),
            vec![b"merged".as_slice()]
        );
    }
    assert!(sim.now() > t);
}

#[test]
fn deleted_keys_do_not_come_back_from_a_node_that_missed_the_delete() {
    let mut sim = cluster(4);
    sim.write(0, "gone", put(b"v")).unwrap().unwrap();
    run_until_converged(&mut sim, Duration::from_secs(10));
    // Node 3 is cut off while the key is deleted, then returns.
    let now = sim.now();
    sim.add_partition(Partition::new(
        now,
        now + Duration::from_secs(20),
        &[vec![0, 1, 2], vec![3]],
    ));
    sim.run_until(now + Duration::from_secs(1));
    sim.write(1, "gone", Op::Delete { context: None })
        .unwrap()
        .unwrap();
    sim.run_until(now + Duration::from_secs(21));
    run_until_converged(&mut sim, Duration::from_secs(30));
    for i in 0..4 {
        let e = sim.node(i).get("gone");
        assert!(
            e.is_none_or(Entry::is_tombstone),
            "seed {SEED}: node {i} has {e:?}"
        );
    }
}

#[test]
fn a_node_restarted_with_an_empty_store_catches_up_by_anti_entropy() {
    let mut sim = cluster(4);
    for k in 0..200 {
        sim.write(k % 3, &format!("key-{k}"), put(b"x"))
            .unwrap()
            .unwrap();
    }
    run_until_converged(&mut sim, Duration::from_secs(20));
    let now = sim.now();
    sim.crash_at(now, 3);
    sim.restart_at(now + Duration::from_secs(2), 3, RestartMode::Fresh);
    sim.run_until(now + Duration::from_secs(2));
    assert_eq!(
        sim.node(3).kv().len(),
        0,
        "the restarted store starts empty"
    );
    run_until_converged(&mut sim, Duration::from_secs(60));
    assert_eq!(sim.node(3).kv().len(), 200, "seed {SEED}");
}

#[test]
fn a_partition_with_concurrent_writes_on_both_sides_heals_with_no_lost_write() {
    let p = KvParams {
        nodes: 16,
        seed: SEED,
        keys: 100,
        writes: 200,
        partition: 0.4,
        partition_start: 10.0,
        partition_end: 30.0,
        loss: 0.05,
        crash: 2,
        duration: 40.0,
        ..KvParams::default()
    };
    let r = run_kv(&p, &mut |_| {}).unwrap();
    assert!(r.converged, "seed {SEED}: {r:?}");
    assert_eq!(r.lost_writes, 0, "seed {SEED}: {r:?}");
    assert!(
        r.concurrent_writes > 0 && r.siblings > 0,
        "the workload makes siblings: {r:?}"
    );
    assert!(r.anti_entropy_bytes > 0, "{r:?}");
}

#[test]
fn a_value_larger_than_a_datagram_travels_on_the_stream_path() {
    let mut sim = cluster(4);
    let big = vec![0x5Au8; 100 * 1024];
    sim.write(2, "big", put(&big)).unwrap().unwrap();
    run_until_converged(&mut sim, Duration::from_secs(20));
    for i in 0..4 {
        assert_eq!(
            sim.node(i).get("big").unwrap().values(),
            vec![big.as_slice()],
            "node {i}"
        );
    }
}
