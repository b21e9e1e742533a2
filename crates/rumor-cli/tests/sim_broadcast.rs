//! `rumor sim broadcast` end to end: the real binary, its JSON and its errors.

use std::process::Command;

fn rumor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args(args)
        .output()
        .expect("the rumor binary runs")
}

#[test]
fn json_report_is_one_object_with_the_documented_fields() {
    let args = [
        "sim",
        "broadcast",
        "--nodes",
        "50",
        "--seed",
        "3",
        "--mode",
        "push",
        "--fanout",
        "2",
        "--interval-ms",
        "100",
        "--loss",
        "0.01",
        "--updates",
        "4",
        "--termination",
        "feedback-coin",
        "--k",
        "3",
        "--bandwidth",
        "100000",
        "--json",
    ];
    let out = rumor(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "seed 3: one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    for field in [
        "nodes",
        "seed",
        "mode",
        "termination",
        "k",
        "fanout",
        "interval_ms",
        "loss",
        "updates",
        "anti_entropy",
        "bandwidth",
        "membership_converged_s",
        "coverage",
        "residue",
        "rounds_to_all",
        "time_to_all_ms",
        "coverage_by_round",
        "traffic_per_node",
        "rmr",
        "ldh",
        "ldh_max",
        "bytes_per_node_per_s",
        "idle_bytes_per_node_per_s",
        "wall_s",
    ] {
        assert!(v.get(field).is_some(), "seed 3: missing {field}: {v}");
    }
    for field in ["rounds_to_all", "time_to_all_ms"] {
        for p in ["p50", "p99", "max"] {
            assert!(
                v[field].get(p).is_some(),
                "seed 3: missing {field}.{p}: {v}"
            );
        }
    }
    assert_eq!(v["nodes"], 50);
    assert_eq!(v["mode"], "push");
    assert_eq!(v["termination"], "feedback-coin");
    assert_eq!(v["k"], 3);
    assert_eq!(v["fanout"], 2);
    assert_eq!(v["interval_ms"], 100.0);
    assert_eq!(v["updates"], 4);
    assert_eq!(v["anti_entropy"], false);
    assert_eq!(v["bandwidth"], 100_000);
    let coverage = v["coverage"].as_f64().expect("a number");
    let residue = v["residue"].as_f64().expect("a number");
    assert!(coverage > 0.5 && coverage <= 1.0, "seed 3: {v}");
    assert!((coverage + residue - 1.0).abs() < 1e-9, "seed 3: {v}");
    assert!(
        v["coverage_by_round"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    // The same seed gives the same report, wall time aside.
    let again: serde_json::Value =
        serde_json::from_slice(&rumor(&args).stdout).expect("valid JSON");
    let strip = |mut v: serde_json::Value| {
        v["wall_s"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(v), strip(again), "seed 3: runs differ");
}

#[test]
fn anti_entropy_flag_and_defaults() {
    let out = rumor(&[
        "sim",
        "broadcast",
        "--nodes",
        "30",
        "--updates",
        "2",
        "--anti-entropy",
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["anti_entropy"], true);
    assert_eq!(v["mode"], "push");
    assert_eq!(v["termination"], "feedback-counter");
    assert_eq!(v["k"], 4);
    assert_eq!(v["fanout"], 3);
    assert_eq!(v["interval_ms"], 200.0);
    assert_eq!(v["bandwidth"], serde_json::Value::Null);
    assert_eq!(v["coverage"], 1.0, "seed 1: {v}");
    assert!(v["rounds_to_all"]["max"].is_f64(), "seed 1: {v}");
}

#[test]
fn table_report_is_aligned_text() {
    let out = rumor(&["sim", "broadcast", "--nodes", "10", "--updates", "2"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("nodes ") && l.ends_with(" 10")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("residue ")),
        "{stdout}"
    );
    let value_columns: Vec<usize> = stdout
        .lines()
        .map(|l| l.len() - l.split_once("  ").map_or("", |(_, v)| v).trim_start().len())
        .collect();
    assert!(value_columns.windows(2).all(|w| w[0] == w[1]), "{stdout}");
}

#[test]
fn bad_flags_fail_with_one_line_errors() {
    for args in [
        &["--nodes", "1"][..],
        &["--loss", "1"],
        &["--updates", "0"],
        &["--k", "0"],
        &["--fanout", "0"],
        &["--interval-ms", "0"],
        &["--bandwidth", "0"],
        &["--payload-bytes", "100000000"],
        &["--mode", "sideways"],
        &["--termination", "never"],
        &["--bootstrap", "teleport"],
        &["--profile", "moon"],
    ] {
        let out = rumor(&[&["sim", "broadcast"][..], args].concat());
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}
