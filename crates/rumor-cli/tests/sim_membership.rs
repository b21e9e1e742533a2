//! `rumor sim membership` end to end: the real binary, its JSON and its errors.

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
        "membership",
        "--nodes",
        "20",
        "--duration",
        "30",
        "--crash",
        "1",
        "--seed",
        "4",
        "--json",
    ];
    let out = rumor(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "seed 4: one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    for field in [
        "nodes",
        "seed",
        "profile",
        "lifeguard",
        "duration_s",
        "loss",
        "join_converged_s",
        "detection_s",
        "crashed",
        "undetected",
        "false_positives",
        "false_suspicions",
        "msgs_per_node_per_s",
        "bytes_per_node_per_s",
        "dropped_packets",
        "wall_s",
    ] {
        assert!(v.get(field).is_some(), "seed 4: missing {field}: {v}");
    }
    assert_eq!(v["nodes"], 20);
    assert_eq!(v["profile"], "lan");
    assert_eq!(v["lifeguard"], true);
    assert_eq!(v["crashed"], 1);
    assert!(
        v["detection_s"]["p50"].is_f64(),
        "seed 4: crash not detected: {v}"
    );
    assert!(v["msgs_per_node_per_s"].as_f64().is_some_and(|m| m > 0.0));

    // The same seed gives the same report, wall time aside.
    let again: serde_json::Value =
        serde_json::from_slice(&rumor(&args).stdout).expect("valid JSON");
    let strip = |mut v: serde_json::Value| {
        v["wall_s"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(v), strip(again), "seed 4: runs differ");
}

#[test]
fn table_report_is_aligned_text() {
    let out = rumor(&["sim", "membership", "--nodes", "5", "--duration", "5"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("nodes ") && l.ends_with(" 5")),
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
        &["--nodes", "0"][..],
        &["--loss", "1"],
        &["--loss", "-0.1"],
        &["--nodes", "3", "--crash", "2", "--slow", "1"],
        &["--profile", "moon"],
    ] {
        let out = rumor(&[&["sim", "membership"][..], args].concat());
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}
