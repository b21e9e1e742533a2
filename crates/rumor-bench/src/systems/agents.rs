//! Agent processes: `rumor agent` against Serf's `serf agent`, each node a
//! process of its own, driven through its API (rumor's HTTP API, Serf's
//! msgpack RPC) and observed through event-handler scripts that append
//! what each node heard to files.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use super::{node_addr, node_index, node_name};
use crate::swarm::Swarm;

/// Which agent.
#[derive(Clone, Debug)]
pub enum Agent {
    /// `rumor agent`, from this binary.
    Rumor(PathBuf),
    /// `serf agent`.
    Serf,
}

/// The API address of node `i`.
fn api_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000 + i as u16))
}

/// N agent processes.
pub struct AgentSwarm {
    agent: Agent,
    dir: PathBuf,
    children: Vec<Option<Child>>,
    pids: Vec<u32>,
}

/// Remove `path` with `remove`; a path that is not there is fine.
fn remove_stale(path: &Path, remove: fn(&Path) -> std::io::Result<()>) -> Result<()> {
    match remove(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {} left by an earlier run", path.display()))
        }
        _ => Ok(()),
    }
}

impl AgentSwarm {
    /// Start `n` agents (not yet joined) and wait until each answers.
    ///
    /// What an earlier run left in `dir` (the handler files, which the
    /// agents append to, and the agents' data directories, which a rumor
    /// agent would restore its cluster from) is removed first: a second
    /// `compare` into the same `--out` would otherwise find every node's
    /// line for the update before it was made.
    pub async fn start(agent: Agent, n: usize, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        for file in ["seen", "failed"] {
            remove_stale(&dir.join(file), |p| std::fs::remove_file(p))?;
        }
        for i in 0..n {
            remove_stale(&dir.join(node_name(i)), |p| std::fs::remove_dir_all(p))?;
        }
        let mut swarm = AgentSwarm {
            agent,
            dir,
            children: Vec::with_capacity(n),
            pids: Vec::with_capacity(n),
        };
        for i in 0..n {
            let child = swarm.spawn(i)?;
            swarm.pids.push(child.id().unwrap_or(0));
            swarm.children.push(Some(child));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for i in 0..n {
            while swarm.members(i).await.is_err() {
                if tokio::time::Instant::now() > deadline {
                    bail!("agent {i} did not answer on {} within 30 s", api_addr(i));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(swarm)
    }

    fn spawn(&self, i: usize) -> Result<Child> {
        let seen = self.dir.join("seen");
        let failed = self.dir.join("failed");
        let mut cmd = match &self.agent {
            Agent::Rumor(bin) => {
                let mut c = Command::new(bin);
                c.args(["agent", "--node", &node_name(i)])
                    .args(["--bind", &node_addr(i).to_string()])
                    .args(["--http", &api_addr(i).to_string()])
                    .args(["--plaintext", "--profile", "lan", "--log-level", "error"])
                    .arg("--data-dir")
                    .arg(self.dir.join(node_name(i)))
                    .arg("--event-handler")
                    .arg(format!("user:bench=echo \"$RUMOR_SELF_NAME $(cat)\" >> {}", seen.display()))
                    .arg("--event-handler")
                    .arg(format!(
                        "member-failed=while read n rest; do echo \"$RUMOR_SELF_NAME $n\"; done >> {}",
                        failed.display()
                    ));
                c
            }
            Agent::Serf => {
                let mut c = Command::new("serf");
                c.arg("agent")
                    .arg(format!("-node={}", node_name(i)))
                    .arg(format!("-bind={}", node_addr(i)))
                    .arg(format!("-rpc-addr={}", api_addr(i)))
                    .args(["-profile=lan", "-log-level=err"])
                    .arg(format!("-event-handler=user:bench=echo \"$SERF_SELF_NAME $(cat)\" >> {}", seen.display()))
                    .arg(format!(
                        "-event-handler=member-failed=while read n rest; do echo \"$SERF_SELF_NAME $n\"; done >> {}",
                        failed.display()
                    ));
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| match &self.agent {
                Agent::Rumor(bin) => format!("starting agent {i} ({})", bin.display()),
                Agent::Serf => {
                    format!("starting agent {i}: is `serf` installed (apt-get install serf)?")
                }
            })
    }

    /// (name, state) of every member node `i` lists.
    async fn members(&self, i: usize) -> Result<Vec<(String, String)>> {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || match agent {
            Agent::Rumor(_) => rumor_members(i),
            Agent::Serf => serf::members(i),
        })
        .await?
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.children.len()).filter(|&i| self.children[i].is_some())
    }

    fn lines(&self, file: &str) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (a, b) = l.trim().split_once(' ')?;
                Some((a.to_string(), b.trim().to_string()))
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct RumorMember {
    name: String,
    state: String,
}

fn rumor_members(i: usize) -> Result<Vec<(String, String)>> {
    let url = format!("http://{}/v1/members", api_addr(i));
    let body = ureq::get(&url).call()?.body_mut().read_to_string()?;
    let members: Vec<RumorMember> = serde_json::from_str(&body)?;
    Ok(members.into_iter().map(|m| (m.name, m.state)).collect())
}

fn rumor_post(i: usize, path: &str, body: &str) -> Result<()> {
    let url = format!("http://{}{path}", api_addr(i));
    ureq::post(&url)
        .header("content-type", "application/json")
        .send(body)?;
    Ok(())
}

/// Serf's RPC protocol: msgpack maps, a header before each request and
/// answer, a handshake first.
mod serf {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Header<'a> {
        command: &'a str,
        seq: u64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct ResponseHeader {
        #[allow(dead_code)]
        seq: u64,
        error: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Members {
        members: Vec<Member>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Member {
        name: String,
        status: String,
    }

    struct Conn {
        write: TcpStream,
        read: BufReader<TcpStream>,
        seq: u64,
    }

    impl Conn {
        fn open(i: usize) -> Result<Conn> {
            let s = TcpStream::connect_timeout(&api_addr(i), Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut c = Conn {
                read: BufReader::new(s.try_clone()?),
                write: s,
                seq: 0,
            };
            #[derive(Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct Handshake {
                version: i32,
            }
            c.call("handshake", Some(&Handshake { version: 1 }))?;
            Ok(c)
        }

        fn call<B: Serialize>(&mut self, command: &str, body: Option<&B>) -> Result<()> {
            let mut buf = rmp_serde::to_vec_named(&Header {
                command,
                seq: self.seq,
            })?;
            if let Some(b) = body {
                buf.extend(rmp_serde::to_vec_named(b)?);
            }
            self.seq += 1;
            self.write.write_all(&buf)?;
            let h: ResponseHeader = rmp_serde::from_read(&mut self.read)?;
            if !h.error.is_empty() {
                bail!("serf agent answered `{command}` with: {}", h.error);
            }
            Ok(())
        }
    }

    pub(super) fn members(i: usize) -> Result<Vec<(String, String)>> {
        let mut c = Conn::open(i)?;
        c.call::<()>("members", None)?;
        let m: Members = rmp_serde::from_read(&mut c.read)?;
        Ok(m.members.into_iter().map(|m| (m.name, m.status)).collect())
    }

    pub(super) fn join(i: usize, seed: SocketAddr) -> Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Join {
            existing: Vec<String>,
            replay: bool,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Joined {
            #[allow(dead_code)]
            num: i32,
        }
        let mut c = Conn::open(i)?;
        c.call(
            "join",
            Some(&Join {
                existing: vec![seed.to_string()],
                replay: false,
            }),
        )?;
        let _: Joined = rmp_serde::from_read(&mut c.read)?;
        Ok(())
    }

    pub(super) fn event(i: usize, name: &str, payload: &str) -> Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Event<'a> {
            name: &'a str,
            payload: &'a str,
            coalesce: bool,
        }
        let mut c = Conn::open(i)?;
        c.call(
            "event",
            Some(&Event {
                name,
                payload,
                coalesce: false,
            }),
        )
    }
}

fn is_member(state: &str) -> bool {
    matches!(state, "alive" | "suspect")
}

impl Swarm for AgentSwarm {
    async fn join(&mut self) -> Result<()> {
        let seed = node_addr(0);
        for i in self.running().skip(1).collect::<Vec<_>>() {
            let agent = self.agent.clone();
            tokio::task::spawn_blocking(move || {
                let r = match agent {
                    Agent::Rumor(_) => {
                        rumor_post(i, "/v1/join", &format!("{{\"addrs\": [\"{seed}\"]}}"))
                    }
                    Agent::Serf => serf::join(i, seed),
                };
                if let Err(e) = r {
                    tracing::warn!("agent {i} could not join the seed: {e:#}");
                }
            });
        }
        Ok(())
    }

    async fn member_counts(&mut self) -> Result<Vec<usize>> {
        let mut counts = Vec::new();
        for i in self.running().collect::<Vec<_>>() {
            let members = self.members(i).await?;
            counts.push(members.iter().filter(|(_, s)| is_member(s)).count());
        }
        Ok(counts)
    }

    async fn down_count(&mut self, target: usize) -> Result<usize> {
        let name = node_name(target);
        let mut count = 0;
        for i in self.running().filter(|&i| i != target).collect::<Vec<_>>() {
            let members = self.members(i).await?;
            let up = members.iter().any(|(n, s)| *n == name && is_member(s));
            count += usize::from(!up);
        }
        Ok(count)
    }

    async fn crash(&mut self, node: usize) -> Result<()> {
        if let Some(mut child) = self.children[node].take() {
            child.kill().await?;
        }
        Ok(())
    }

    async fn update(&mut self, node: usize, key: &str, value: &str) -> Result<()> {
        let agent = self.agent.clone();
        let (key, value) = (key.to_string(), value.to_string());
        tokio::task::spawn_blocking(move || match agent {
            Agent::Rumor(_) => rumor_post(node, &format!("/v1/event/{key}"), &value),
            Agent::Serf => serf::event(node, &key, &value),
        })
        .await?
    }

    async fn seen_count(&mut self, _key: &str, value: &str) -> Result<usize> {
        let mut nodes: Vec<String> = self
            .lines("seen")
            .into_iter()
            .filter(|(_, v)| v == value)
            .map(|(n, _)| n)
            .collect();
        nodes.sort();
        nodes.dedup();
        Ok(nodes.len())
    }

    async fn downs_by_subject(&mut self) -> Result<Vec<u64>> {
        let mut downs = vec![0; self.children.len()];
        for (_, subject) in self.lines("failed") {
            if let Some(j) = node_index(&subject).filter(|&j| j < downs.len()) {
                downs[j] += 1;
            }
        }
        Ok(downs)
    }

    fn pids(&self) -> Vec<u32> {
        self.pids.clone()
    }

    async fn shutdown(&mut self) -> Result<()> {
        for child in self.children.iter_mut() {
            if let Some(mut c) = child.take() {
                let _ = c.kill().await;
            }
        }
        Ok(())
    }
}
