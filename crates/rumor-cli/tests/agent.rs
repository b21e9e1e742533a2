//! `rumor agent` as real processes on loopback: a second agent joins the
//! first, both log the join, and SIGTERM makes one leave gracefully; an
//! agent killed with SIGKILL and restarted on its data directory rejoins by
//! itself.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Agent {
    fn start(name: &str, port: u16, join: Option<u16>, data: &Path) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumor"));
        cmd.args(["agent", "--node", name, "--profile", "local"])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.join(name))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(j) = join {
            cmd.args(["--join", &format!("127.0.0.1:{j}")]);
        }
        let mut child = cmd.spawn().expect("the rumor binary runs");
        let (tx, lines) = mpsc::channel();
        for out in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Agent { child, lines }
    }

    /// Wait for a line containing every one of `words`.
    fn expect(&self, words: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if words.iter().all(|w| line.contains(w)) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!(
            "no line with {words:?} within {within:?}; output was:\n{}",
            seen.join("\n")
        );
    }

    fn signal(&mut self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // Bind UDP to port 0 and release it; the agent binds UDP and TCP there.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

#[test]
fn two_agents_join_and_one_leaves_gracefully_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let a = Agent::start("agent-a", pa, None, data.path());
    a.expect(
        &["listening on", &format!("127.0.0.1:{pa}")],
        Duration::from_secs(10),
    );
    let mut b = Agent::start("agent-b", pb, Some(pa), data.path());
    a.expect(&["member-join", "agent-b"], Duration::from_secs(15));
    b.expect(&["member-join", "agent-a"], Duration::from_secs(15));
    b.signal("-TERM");
    a.expect(&["member-leave", "agent-b"], Duration::from_secs(15));
    let status = b.child.wait().unwrap();
    assert!(status.success(), "agent-b exited with {status}");
}

#[test]
fn an_agent_killed_and_restarted_on_its_data_directory_rejoins_by_itself() {
    let data = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let mut a = Agent::start("agent-a", pa, None, data.path());
    a.expect(&["listening on"], Duration::from_secs(10));
    // b joins a: a has no seeds and knows b only as a member.
    let b = Agent::start("agent-b", pb, Some(pa), data.path());
    a.expect(&["member-join", "agent-b"], Duration::from_secs(15));
    b.expect(&["member-join", "agent-a"], Duration::from_secs(15));
    a.signal("-KILL");
    a.child.wait().unwrap();
    b.expect(&["member-failed", "agent-a"], Duration::from_secs(20));
    // Restarted without --join, on the same data directory.
    let a = Agent::start("agent-a", pa, None, data.path());
    a.expect(
        &["restored from the data directory", "known_members=1"],
        Duration::from_secs(10),
    );
    a.expect(&["member-join", "agent-b"], Duration::from_secs(20));
    b.expect(&["member-join", "agent-a"], Duration::from_secs(20));
}

#[test]
fn a_second_agent_on_a_data_directory_in_use_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let a = Agent::start("agent-a", free_port(), None, data.path());
    a.expect(&["listening on"], Duration::from_secs(10));
    let out = Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args(["agent", "--node", "agent-a", "--bind", "127.0.0.1:0"])
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
