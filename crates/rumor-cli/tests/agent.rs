//! `rumor agent` as real processes on loopback: a second agent joins the
//! first, both log the join, and SIGTERM makes one leave gracefully.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Agent {
    fn start(name: &str, port: u16, join: Option<u16>) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumor"));
        cmd.args(["agent", "--node", name, "--profile", "local"])
            .args(["--bind", &format!("127.0.0.1:{port}")])
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

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
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
