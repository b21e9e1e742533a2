//! Agent processes on loopback for the tests, and the client commands run
//! against them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One `rumor agent` process.
pub struct Agent {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Its gossip port.
    pub port: u16,
    /// Its HTTP API port.
    pub http: u16,
    /// Its data directory, when the agent owns it (removed on drop).
    _data: Option<tempfile::TempDir>,
}

/// The cluster key the test agents share (unless a test gives its own, or
/// `--plaintext`).
pub const TEST_KEY: &str = "cnVtb3ItdGVzdC1rZXktcnVtb3ItdGVzdC1rZXktMzI=";

/// A free port on loopback, for UDP and TCP alike.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Agent {
    /// An agent called `name` on the `local` profile, joining `join`.
    pub fn start(name: &str, port: u16, join: Option<u16>) -> Agent {
        let extra: Vec<String> = join
            .map(|j| vec!["--join".to_string(), format!("127.0.0.1:{j}")])
            .unwrap_or_default();
        Agent::start_with(name, port, &extra)
    }

    /// An agent with these extra flags, on a data directory of its own.
    pub fn start_with(name: &str, port: u16, extra: &[String]) -> Agent {
        let data = tempfile::tempdir().unwrap();
        let mut agent = Agent::start_in(name, port, extra, data.path());
        agent._data = Some(data);
        agent
    }

    /// An agent whose data directory is `root/NAME` (kept after it stops,
    /// so that it can be restarted on it).
    pub fn start_in(name: &str, port: u16, extra: &[String], root: &Path) -> Agent {
        let http = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumor"));
        // Agents of tests running side by side must never merge, even when
        // one reuses a port another test's agents remember.
        let test = std::thread::current().name().unwrap_or("test").to_string();
        let cluster = test[test.len().saturating_sub(60)..].to_string();
        cmd.args(["agent", "--node", name, "--profile", "local"])
            .args(["--cluster", &cluster])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .arg("--data-dir")
            .arg(root.join(name))
            .args(extra)
            .args(
                (!extra
                    .iter()
                    .any(|f| ["--plaintext", "--encrypt-key", "--keyring"].contains(&f.as_str())))
                .then_some(["--encrypt-key", TEST_KEY])
                .into_iter()
                .flatten(),
            )
            .env("RUST_LOG", "info")
            .env_remove("RUMOR_HTTP_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        Agent {
            child,
            lines,
            port,
            http,
            _data: None,
        }
    }

    /// Wait for a line containing every one of `words`.
    pub fn expect(&self, words: &[&str], within: Duration) -> String {
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

    /// Run `rumor ARGS --http <this agent>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&format!("127.0.0.1:{}", self.http), args, None)
    }

    /// Run a client command and return its standard output, failing the
    /// test if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "rumor {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a client command that prints JSON and parse it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("rumor {args:?}: {e}: {out}"))
    }

    /// Send SIGTERM.
    pub fn terminate(&mut self) {
        self.signal("-TERM");
    }

    /// Send a signal (`-KILL`, `-STOP`...).
    pub fn signal(&mut self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `rumor ARGS` against the HTTP API at `http`, with an optional token.
pub fn cli(http: &str, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumor"));
    cmd.args(args).env("RUMOR_HTTP_ADDR", http);
    match token {
        Some(t) => cmd.env("RUMOR_HTTP_TOKEN", t),
        None => cmd.env_remove("RUMOR_HTTP_TOKEN"),
    };
    cmd.output().expect("the rumor binary runs")
}

/// Poll `check` until it holds or `within` passes.
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("not within {within:?}: {what}");
}
