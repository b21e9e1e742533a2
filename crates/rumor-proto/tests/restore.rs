//! A node restored from what a runtime persists one key at a time (the
//! entries its `KeyChanged` and `TombstonesCollected` events named, plus
//! the replica id, clock and collection horizon) carries on as the same
//! replica: no dot is named twice, timestamps never go back, and a
//! collected key cannot come back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rumor_proto::state::{Entry, Merged, Op, StoreSnapshot};
use rumor_proto::*;

fn addr() -> SocketAddr {
    "127.0.0.1:7946".parse().unwrap()
}

fn put(v: &[u8]) -> Op {
    Op::Put {
        value: v.to_vec(),
        context: None,
        kind: None,
    }
}

/// What a runtime keeps on disk: the latest state of each key its events
/// named, and the store's metadata.
#[derive(Default)]
struct Disk {
    entries: BTreeMap<String, Entry>,
}

impl Disk {
    fn absorb(&mut self, node: &mut Node) {
        while let Some(e) = node.poll_event() {
            let keys = match e {
                Event::KeyChanged { key, .. } => vec![key],
                Event::TombstonesCollected { keys } => keys,
                _ => continue,
            };
            for key in keys {
                match node.get(&key) {
                    Some(entry) => self.entries.insert(key.to_string(), entry.clone()),
                    None => self.entries.remove(key.as_str()),
                };
            }
        }
    }

    fn snapshot(&self, node: &Node) -> Snapshot {
        let kv = node.kv();
        Snapshot {
            identity: Identity {
                incarnation: node.local().incarnation,
                ..Identity::new(node.local().name.clone(), addr())
            },
            members: Vec::new(),
            seeds: Vec::new(),
            store: StoreSnapshot {
                replica: Some(kv.replica()),
                entries: self
                    .entries
                    .iter()
                    .map(|(k, e)| (k.as_str().into(), e.clone()))
                    .collect(),
                gc_horizon: kv.gc_horizon(),
                clock: kv.clock().last(),
            },
        }
    }
}

#[test]
fn a_store_restored_from_persisted_entries_is_the_same_replica() {
    let mut config = Config::local();
    config.state.tombstone_grace = Duration::from_secs(1);
    let day_ms = 86_400_000;
    let mut now = Instant::ZERO;
    let mut a = Node::new(
        config.clone(),
        Identity::new("a".parse().unwrap(), addr()),
        1,
        now,
    )
    .unwrap();
    a.set_wall_clock(now, day_ms);
    let mut disk = Disk::default();
    for i in 0..5u8 {
        a.write(now, "k", put(&[i])).unwrap();
        a.write(now, "n", Op::Increment(1)).unwrap();
    }
    a.write(now, "gone", put(b"x")).unwrap();
    let stale = a.get("gone").unwrap().clone();
    a.write(now, "gone", Op::Delete { context: None }).unwrap();
    disk.absorb(&mut a);
    assert!(
        disk.entries.contains_key("gone"),
        "the tombstone is persisted"
    );
    // Past the grace, the summary timer collects the tombstone.
    let later = now + Duration::from_secs(5);
    while now < later {
        now = a.poll_timeout().unwrap().max(now);
        a.handle_timeout(now);
    }
    disk.absorb(&mut a);
    assert!(a.get("gone").is_none() && !disk.entries.contains_key("gone"));
    let last_dot = a.get("k").unwrap().dots[0].dot;
    let last_ts = a.kv().clock().last();
    let replica = a.kv().replica();
    let snapshot = disk.snapshot(&a);
    let incarnation = a.local().incarnation;
    drop(a);

    // The wall clock went back an hour while the node was down.
    let mut b = Node::restore(config, snapshot, 2, Instant::ZERO).unwrap();
    b.set_wall_clock(Instant::ZERO, day_ms - 3_600_000);
    assert_eq!(b.local().incarnation, incarnation + 1);
    assert_eq!(b.kv().replica(), replica);
    assert_eq!(b.kv().len(), 2);
    let w = b.write(Instant::ZERO, "k", put(b"after")).unwrap();
    assert_eq!(w.entry.values(), vec![b"after".as_slice()]);
    let dot = w.dot.unwrap();
    assert_eq!(dot.replica, replica);
    assert!(
        dot.counter > last_dot.counter,
        "{dot:?} reuses or precedes {last_dot:?}"
    );
    assert!(w.ts > last_ts, "{:?} is not after {last_ts:?}", w.ts);
    assert_eq!(b.get("n").unwrap().counter_value(), 5);
    let after = b.write(Instant::ZERO, "n", Op::Increment(1)).unwrap();
    assert_eq!(after.entry.counter_value(), 6);
    assert!(matches!(
        b.merge(Instant::ZERO, "gone", &stale),
        Merged::Refused(_)
    ));
}
