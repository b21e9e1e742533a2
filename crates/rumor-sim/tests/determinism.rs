//! The same seed and schedule give the same run; another seed gives another.

use core::time::Duration;

use rumor_sim::{MembershipParams, MembershipReport, MembershipRun, SimReport};

fn run(seed: u64) -> (MembershipReport, SimReport) {
    // Loss, jitter, crashes and slow nodes: every source of randomness.
    let params = MembershipParams {
        nodes: 40,
        seed,
        duration: Duration::from_secs(40),
        loss: 0.05,
        crash: 2,
        slow: 2,
        ..MembershipParams::default()
    };
    let mut run = MembershipRun::new(params).expect("valid parameters");
    let mut report = run.run(&mut |_| {});
    report.wall_s = 0.0;
    (report, run.sim().report())
}

#[test]
fn same_seed_gives_identical_reports() {
    for seed in [1, 7] {
        let (a, sim_a) = run(seed);
        let (b, sim_b) = run(seed);
        assert_eq!(a, b, "seed {seed}: membership reports differ");
        assert_eq!(sim_a, sim_b, "seed {seed}: simulation reports differ");
        assert!(sim_a.events_processed > 10_000, "seed {seed}: {sim_a:?}");
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let (_, a) = run(1);
    let (_, b) = run(2);
    assert_ne!(a, b, "seeds 1 and 2 gave identical runs");
}
