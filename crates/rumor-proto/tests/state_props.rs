//! Property tests: the causal merge behind every kind of value (mv, lww,
//! counter, set) is commutative, associative and idempotent, on states
//! produced by random histories of writes and merges at three replicas.

use proptest::prelude::*;
use rumor_proto::state::{Entry, Hlc, Kind, ReplicaId};

#[derive(Clone, Debug)]
enum Step {
    Write(usize, u8),
    Delete(usize),
    Merge(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, any::<u8>()).prop_map(|(r, v)| Step::Write(r, v)),
        1 => (0..3usize).prop_map(Step::Delete),
        3 => (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Merge(a, b)),
    ]
}

/// Run a history of `kind` writes and return the three replicas' states.
fn run(kind: Kind, steps: &[Step]) -> [Entry; 3] {
    let mut states: [Entry; 3] = Default::default();
    let mut clocks = [Hlc::new(u64::MAX), Hlc::new(u64::MAX), Hlc::new(u64::MAX)];
    for (t, s) in steps.iter().enumerate() {
        // Wall clocks that disagree: replica 2 runs 5 ms behind.
        let wall = |r: usize| (t as u64 * 3).saturating_sub(5 * (r as u64 / 2));
        match *s {
            Step::Write(r, v) => {
                let ts = clocks[r].tick(wall(r));
                let id = ReplicaId(r as u64 + 1);
                let e = &mut states[r];
                let _ = match kind {
                    Kind::Mv | Kind::Lww => {
                        // Half the writes are blind (an empty context), so
                        // siblings arise even on one replica.
                        let ctx = (v % 2 == 0).then(Default::default);
                        e.put(id, ts, kind, vec![v], ctx.as_ref());
                        Ok(())
                    }
                    Kind::Counter => e.increment(id, ts, i64::from(v) - 128).map(drop),
                    Kind::Set => {
                        if v % 3 == 0 {
                            e.set_remove(ts, &[v % 7]).map(drop)
                        } else {
                            e.set_add(id, ts, vec![v % 7]).map(drop)
                        }
                    }
                };
            }
            Step::Delete(r) => {
                let ts = clocks[r].tick(wall(r));
                states[r].delete(ReplicaId(r as u64 + 1), ts, None);
            }
            Step::Merge(to, from) => {
                let other = states[from].clone();
                clocks[to].observe(other.ts, wall(to));
                states[to].merge(&other);
            }
        }
    }
    states
}

fn merged(a: &Entry, b: &Entry) -> Entry {
    let mut x = a.clone();
    x.merge(b);
    x
}

fn check_laws(kind: Kind, steps: &[Step]) -> Result<(), TestCaseError> {
    let [a, b, c] = run(kind, steps);
    for e in [&a, &b, &c] {
        prop_assert!(e.is_valid(), "invalid state {e:?}");
    }
    prop_assert_eq!(merged(&a, &b), merged(&b, &a), "commutative");
    prop_assert_eq!(
        merged(&merged(&a, &b), &c),
        merged(&a, &merged(&b, &c)),
        "associative"
    );
    prop_assert_eq!(merged(&a, &a), a.clone(), "idempotent");
    let mut x = a.clone();
    prop_assert!(!x.merge(&a), "merging oneself reports a change");
    // Merging in a state already included changes nothing.
    let ab = merged(&a, &b);
    prop_assert_eq!(merged(&ab, &b), ab.clone());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mv_merge_laws(steps in prop::collection::vec(step(), 0..40)) {
        check_laws(Kind::Mv, &steps)?;
    }

    #[test]
    fn lww_register_merge_laws(steps in prop::collection::vec(step(), 0..40)) {
        check_laws(Kind::Lww, &steps)?;
        let [a, b, c] = run(Kind::Lww, &steps);
        let all = merged(&merged(&a, &b), &c);
        prop_assert!(all.len() <= 1, "lww keeps one value: {:?}", all.dots);
        // The survivor is the latest write (or delete) of the whole history.
        let latest = [&a, &b, &c].iter().flat_map(|e| e.dots.iter()).map(|d| (d.ts, d.dot)).max();
        if let (Some(l), Some(w)) = (latest, all.dots.first()) {
            prop_assert!((w.ts, w.dot) >= l);
        }
    }

    #[test]
    fn counter_merge_laws(steps in prop::collection::vec(step(), 0..40)) {
        check_laws(Kind::Counter, &steps)?;
    }

    #[test]
    fn set_merge_laws(steps in prop::collection::vec(step(), 0..40)) {
        check_laws(Kind::Set, &steps)?;
    }

    /// Without deletes, a counter converges to the sum of every increment.
    #[test]
    fn counter_converges_to_the_sum_of_increments(
        incs in prop::collection::vec((0..3usize, -50i64..50), 0..40),
        order in prop::collection::vec((0..3usize, 0..3usize), 0..20),
    ) {
        let mut states: [Entry; 3] = Default::default();
        let mut clock = Hlc::new(u64::MAX);
        for (i, &(r, d)) in incs.iter().enumerate() {
            let ts = clock.tick(i as u64);
            states[r].increment(ReplicaId(r as u64 + 1), ts, d).unwrap();
            if let Some(&(to, from)) = order.get(i) {
                let other = states[from].clone();
                states[to].merge(&other);
            }
        }
        let all = merged(&merged(&states[0], &states[1]), &states[2]);
        prop_assert_eq!(all.counter_value(), incs.iter().map(|(_, d)| d).sum::<i64>());
    }
}
