//! HashiCorp memberlist nodes in one Go process (the harness in
//! `go/memberlist-harness`), driven over its standard input and output:
//! one command a line, one JSON answer a line.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::settings::Settings;
use crate::swarm::Swarm;

/// N memberlist nodes in the harness process.
pub struct MemberlistSwarm {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pid: u32,
}

impl MemberlistSwarm {
    /// Start the harness with `n` nodes bound (not yet joined).
    pub async fn start(bin: &Path, n: usize, settings: &Settings, seed: u64) -> Result<Self> {
        let mut child = Command::new(bin)
            .args([
                format!("-nodes={n}"),
                format!("-seed={seed}"),
                format!("-gossip-ms={}", settings.gossip_interval_ms),
                format!("-fanout={}", settings.gossip_fanout),
                format!("-probe-ms={}", settings.probe_interval_ms),
                format!("-probe-timeout-ms={}", settings.probe_timeout_ms),
                format!("-indirect={}", settings.indirect_checks),
                format!("-suspicion-mult={}", settings.suspicion_mult),
                format!("-push-pull-s={}", settings.push_pull_interval_s),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the memberlist harness {}", bin.display()))?;
        let pid = child
            .id()
            .context("the memberlist harness exited at once")?;
        let stdin = child.stdin.take().context("harness stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("harness stdout")?).lines();
        let mut swarm = MemberlistSwarm {
            child,
            stdin,
            stdout,
            pid,
        };
        swarm.ask::<String>("ready").await?;
        Ok(swarm)
    }

    async fn ask<T: DeserializeOwned>(&mut self, command: &str) -> Result<T> {
        self.stdin.write_all(command.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        let Some(line) = self.stdout.next_line().await? else {
            bail!("the memberlist harness exited during `{command}`");
        };
        if let Some(e) = line.strip_prefix("error: ") {
            bail!("memberlist harness, `{command}`: {e}");
        }
        serde_json::from_str(&line)
            .with_context(|| format!("memberlist harness answered `{command}` with {line:?}"))
    }
}

impl Swarm for MemberlistSwarm {
    async fn join(&mut self) -> Result<()> {
        self.ask::<String>("join").await.map(drop)
    }

    async fn member_counts(&mut self) -> Result<Vec<usize>> {
        self.ask("counts").await
    }

    async fn down_count(&mut self, target: usize) -> Result<usize> {
        self.ask(&format!("down {target}")).await
    }

    async fn crash(&mut self, node: usize) -> Result<()> {
        self.ask::<String>(&format!("crash {node}")).await.map(drop)
    }

    async fn update(&mut self, node: usize, key: &str, value: &str) -> Result<()> {
        self.ask::<String>(&format!("update {node} {key} {value}"))
            .await
            .map(drop)
    }

    async fn seen_count(&mut self, key: &str, value: &str) -> Result<usize> {
        self.ask(&format!("seen {key} {value}")).await
    }

    async fn downs_by_subject(&mut self) -> Result<Vec<u64>> {
        self.ask("downs").await
    }

    fn pids(&self) -> Vec<u32> {
        vec![self.pid]
    }

    async fn shutdown(&mut self) -> Result<()> {
        let _ = self.ask::<String>("quit").await;
        let _ = self.child.kill().await;
        Ok(())
    }
}
