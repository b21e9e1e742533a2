//! `rumor agent` as real processes on loopback: a second agent joins the
//! first, both log the join, and SIGTERM makes one leave gracefully.

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
