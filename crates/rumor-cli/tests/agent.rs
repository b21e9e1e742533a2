//! `rumor agent` as real processes on loopback: a second agent joins the
//! first, both log the join, and SIGTERM makes one leave gracefully; an
//! agent killed with SIGKILL and restarted on its data directory rejoins by
//! itself, with every acknowledged write.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Agent, free_port};

#[test]
fn two_agents_join_and_one_leaves_gracefully_on_sigterm() {
    let (pa, pb) = (free_port(), free_port());
    let a = Agent::start("agent-a", pa, None);
    a.expect(
        &["listening on", &format!("127.0.0.1:{pa}")],
        Duration::from_secs(10),
    );
    let mut b = Agent::start("agent-b", pb, Some(pa));
    a.expect(&["member-join", "agent-b"], Duration::from_secs(15));
    b.expect(&["member-join", "agent-a"], Duration::from_secs(15));
    b.terminate();
    a.expect(&["member-leave", "agent-b"], Duration::from_secs(15));
    let status = b.child.wait().unwrap();
    assert!(status.success(), "agent-b exited with {status}");
}

#[test]
fn an_agent_killed_and_restarted_on_its_data_directory_rejoins_with_its_writes() {
    let data = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let mut a = Agent::start_in("agent-a", pa, &[], data.path());
    a.expect(&["HTTP API listening"], Duration::from_secs(10));
    // b joins a: a has no seeds and knows b only as a member.
    let join = ["--join".to_string(), format!("127.0.0.1:{pa}")];
    let b = Agent::start_in("agent-b", pb, &join, data.path());
    a.expect(&["member-join", "agent-b"], Duration::from_secs(15));
    b.expect(&["member-join", "agent-a"], Duration::from_secs(15));
    // Writes acknowledged by a, then a dies without a chance to say so.
    for i in 0..50 {
        a.ok(&["kv", "put", &format!("acked/{i}"), &format!("v{i}")]);
    }
    let before = a.json(&["info"])["incarnation"].as_u64().unwrap();
    a.signal("-KILL");
    a.child.wait().unwrap();
    b.expect(&["member-failed", "agent-a"], Duration::from_secs(20));
    // Restarted without --join, on the same data directory.
    let a = Agent::start_in("agent-a", pa, &[], data.path());
    a.expect(
        &["restored from the data directory", "known_members=1"],
        Duration::from_secs(10),
    );
    a.expect(&["HTTP API listening"], Duration::from_secs(10));
    let keys = a.json(&["kv", "list", "--prefix", "acked/"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(50), "{keys}");
    let after = a.json(&["info"])["incarnation"].as_u64().unwrap();
    assert!(after > before, "incarnation {before} -> {after}");
    a.expect(&["member-join", "agent-b"], Duration::from_secs(20));
    b.expect(&["member-join", "agent-a"], Duration::from_secs(20));
}

#[test]
fn a_second_agent_on_a_data_directory_in_use_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let a = Agent::start_in("agent-a", free_port(), &[], data.path());
    a.expect(&["listening on"], Duration::from_secs(10));
    let out = Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args(["agent", "--node", "agent-a", "--bind", "127.0.0.1:0"])
        .args(["--http", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path().join("agent-a"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use"), "{err}");
}

#[test]
fn a_bad_node_name_is_refused_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args(["agent", "--node", "bad\tname", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid node name") && err.contains("--node"),
        "{err}"
    );
}
