//! One `rumor agent` process inside a host's namespace: start, kill -9,
//! restart, SIGSTOP and SIGCONT, memory and exit status.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::api_client::{ApiClient, HTTP_ADDR};
use crate::netns::Host;

/// The gossip port every agent binds on its host's address.
pub const GOSSIP_PORT: u16 = 7946;

/// How the agents are started.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    /// The `rumor` binary.
    pub binary: PathBuf,
    /// `--profile`.
    pub profile: String,
    /// Flags added to every agent (persistence, encryption, ...); `{node}`
    /// and `{scenario}` in them stand for the node's and scenario's names.
    pub extra_args: Vec<String>,
    /// The scenario the agents run in.
    pub scenario: String,
    /// Where stdout and stderr of each agent go.
    pub log_dir: PathBuf,
}

/// What the suite did to the process last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Running.
    Running,
    /// Stopped with SIGSTOP.
    Paused,
    /// Killed on purpose.
    Killed,
}

/// One agent process.
pub struct Agent {
    /// Its host.
    pub host: Host,
    /// Its HTTP API.
    pub api: ApiClient,
    child: Option<Child>,
    /// What the suite did to it last.
    pub condition: Condition,
    /// Its stderr log.
    pub stderr_path: PathBuf,
    /// An exit nobody asked for, once seen.
    pub died: Option<String>,
    /// Largest resident set seen, KiB.
    pub peak_rss_kib: u64,
    /// Times it was started.
    pub starts: u32,
}

impl Agent {
    /// An agent for `host`, not started yet.
    pub fn new(host: Host, settings: &AgentSettings) -> Self {
        let api = ApiClient::new(host.ns.clone(), Duration::from_secs(3));
        let stderr_path = settings.log_dir.join(format!("{}.stderr.log", host.name));
        Agent {
            host,
            api,
            child: None,
            condition: Condition::Killed,
            stderr_path,
            died: None,
            peak_rss_kib: 0,
            starts: 0,
        }
    }

    /// The gossip address.
    pub fn gossip_addr(&self) -> String {
        format!("{}:{GOSSIP_PORT}", self.host.ip)
    }

    /// Start the process, joining through `join`.
    pub fn start(&mut self, settings: &AgentSettings, join: &[String]) -> anyhow::Result<()> {
        let open = |p: &Path| -> anyhow::Result<File> {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open the agent log {}", p.display()))
        };
        let stdout = open(
            &settings
                .log_dir
                .join(format!("{}.stdout.log", self.host.name)),
        )?;
        let stderr = open(&self.stderr_path)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host.ns.name])
            .arg(&settings.binary)
            .args([
                "agent",
                "--node",
                &self.host.name,
                "--bind",
                &self.gossip_addr(),
                "--http",
                HTTP_ADDR,
                "--profile",
                &settings.profile,
            ]);
        if !join.is_empty() {
            cmd.arg("--join").arg(join.join(","));
        }
        cmd.args(settings.extra_args.iter().map(|a| {
            a.replace("{node}", &self.host.name)
                .replace("{scenario}", &settings.scenario)
        }))
        .env_remove("RUMOR_CONFIG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
        // `ip netns exec` execs the agent, so the child's pid is the agent's.
        let child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} for {}",
                settings.binary.display(),
                self.host.name
            )
        })?;
        self.child = Some(child);
        self.condition = Condition::Running;
        self.starts += 1;
        Ok(())
    }

    /// Wait until the HTTP API answers.
    pub fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.api.ready() {
                return Ok(());
            }
            self.poll_exit();
            if let Some(d) = &self.died {
                bail!(
                    "{} exited while starting: {d}; see {}",
                    self.host.name,
                    self.stderr_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not answer on its HTTP API within {within:?}; see {}",
            self.host.name,
            self.stderr_path.display()
        )
    }

    fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok())
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self) {
        self.condition = Condition::Killed;
        self.signal(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// SIGSTOP.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.condition = Condition::Paused;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.condition = Condition::Running;
    }

    /// Record an exit the suite did not cause.
    pub fn poll_exit(&mut self) {
        if self.condition == Condition::Killed {
            return;
        }
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            self.died = Some(describe(status));
            self.child = None;
            self.condition = Condition::Killed;
        }
    }

    /// Sample the resident set; keep the peak.
    pub fn sample_rss(&mut self) -> Option<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        self.peak_rss_kib = self.peak_rss_kib.max(kib);
        Some(kib)
    }

    /// Lines of its stderr that report a panic.
    pub fn panics(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_string)
            .collect()
    }

    /// Stop it for good (SIGCONT first, in case it is paused).
    pub fn shutdown(&mut self) {
        self.signal(libc::SIGCONT);
        self.kill9();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}
