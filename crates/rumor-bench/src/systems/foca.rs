//! foca nodes in this process: sans-io SWIM driven by a small tokio loop per
//! node over UDP, with foca's custom broadcasts carrying the state update.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use foca::{
    AccumulatingRuntime, BroadcastHandler, Foca, Invalidates, OwnedNotification, PostcardCodec,
    Timer,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::node_addr;
use crate::settings::Settings;
use crate::swarm::{DownCounts, Swarm};

/// A foca identity: the address, and a generation bumped on rejoin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Id {
    addr: SocketAddr,
    bump: u64,
}

impl foca::Identity for Id {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Id {
            addr: self.addr,
            bump: self.bump.wrapping_add(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// A state update: `key = value` from `origin`, at `version`.
#[derive(Serialize, Deserialize)]
struct Update {
    origin: u32,
    version: u64,
    key: String,
    value: String,
}

/// What supersedes what among updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UpdateKey {
    origin: u32,
    version: u64,
}

impl Invalidates for UpdateKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.origin == other.origin && self.version > other.version
    }
}

#[derive(Debug)]
struct BadUpdate(String);

impl std::fmt::Display for BadUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadUpdate {}

/// What one node knows, shared with the swarm for observation.
#[derive(Default)]
struct View {
    members: HashSet<usize>,
    /// Latest update per origin: (version, key, value).
    state: HashMap<u32, (u64, String, String)>,
}

struct Handler(Arc<Mutex<View>>);

impl BroadcastHandler<Id> for Handler {
    type Key = UpdateKey;
    type Error = BadUpdate;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&Id>,
    ) -> Result<Option<UpdateKey>, BadUpdate> {
        let update: Update = postcard::from_bytes(data).map_err(|e| BadUpdate(e.to_string()))?;
        let mut view = self
            .0
            .lock()
            .map_err(|_| BadUpdate("view poisoned".into()))?;
        let newer = view
            .state
            .get(&update.origin)
            .is_none_or(|(v, _, _)| *v < update.version);
        if !newer {
            return Ok(None);
        }
        let key = UpdateKey {
            origin: update.origin,
            version: update.version,
        };
        view.state
            .insert(update.origin, (update.version, update.key, update.value));
        Ok(Some(key))
    }
}

enum Command {
    Announce(Id),
    Broadcast(Vec<u8>),
}

struct NodeTask {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    view: Arc<Mutex<View>>,
}

/// N foca nodes.
pub struct FocaSwarm {
    nodes: Vec<Option<NodeTask>>,
    downs: DownCounts,
    version: u64,
}

impl FocaSwarm {
    /// Start `n` nodes (not yet joined).
    pub async fn start(n: usize, settings: &Settings, seed: u64) -> Result<Self> {
        let downs = DownCounts::new(n);
        let size = NonZeroU32::new(n as u32).context("a cluster needs nodes")?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut config = foca::Config::new_lan(size);
            config.probe_period = settings.probe_interval();
            config.probe_rtt = settings.probe_timeout();
            config.num_indirect_probes =
                std::num::NonZeroUsize::new(settings.indirect_checks.max(1))
                    .context("indirect checks")?;
            config.periodic_gossip = Some(foca::PeriodicParams {
                frequency: settings.gossip_interval(),
                num_members: std::num::NonZeroUsize::new(settings.gossip_fanout.max(1))
                    .context("gossip fanout")?,
            });
            let socket = UdpSocket::bind(node_addr(i))
                .await
                .with_context(|| format!("binding foca node {i} to {}", node_addr(i)))?;
            let view = Arc::new(Mutex::new(View::default()));
            let id = Id {
                addr: node_addr(i),
                bump: 0,
            };
            let rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(i as u64));
            let foca =
                Foca::with_custom_broadcast(id, config, rng, PostcardCodec, Handler(view.clone()));
            let (commands, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(drive(i, foca, socket, rx, view.clone(), downs.clone()));
            nodes.push(Some(NodeTask {
                commands,
                task,
                view,
            }));
        }
        Ok(FocaSwarm {
            nodes,
            downs,
            version: 0,
        })
    }

    fn running(&self) -> impl Iterator<Item = (usize, &NodeTask)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h)))
    }
}

type FocaNode = Foca<Id, PostcardCodec, StdRng, Handler>;

/// One node's loop: datagrams, timers and commands in; datagrams, timers and
/// notifications out.
async fn drive(
    me: usize,
    mut foca: FocaNode,
    socket: UdpSocket,
    mut commands: mpsc::UnboundedReceiver<Command>,
    view: Arc<Mutex<View>>,
    downs: DownCounts,
) {
    let mut runtime = AccumulatingRuntime::new();
    let mut timers: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut pending: HashMap<u64, Timer<Id>> = HashMap::new();
    let mut next_timer = 0u64;
    let mut buf = vec![0u8; 65_536];
    loop {
        let deadline = timers.peek().map(|Reverse((at, _))| *at);
        let result = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, _)) => foca.handle_data(&buf[..len], &mut runtime),
                Err(_) => Ok(()),
            },
            command = commands.recv() => match command {
                Some(Command::Announce(to)) => foca.announce(to, &mut runtime),
                Some(Command::Broadcast(data)) => foca.add_broadcast(&data).map(|_| ()),
                None => return,
            },
            () = sleep_until_opt(deadline) => {
                let Some(Reverse((_, key))) = timers.pop() else { continue };
                match pending.remove(&key) {
                    Some(timer) => foca.handle_timer(timer, &mut runtime),
                    None => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!("foca node {me}: {e}");
        }
        while let Some((to, data)) = runtime.to_send() {
            let _ = socket.send_to(&data, to.addr).await;
        }
        let now = Instant::now();
        while let Some((after, timer)) = runtime.to_schedule() {
            timers.push(Reverse((now + after, next_timer)));
            pending.insert(next_timer, timer);
            next_timer += 1;
        }
        while let Some(notification) = runtime.to_notify() {
            match notification {
                OwnedNotification::MemberUp(id) => {
                    if let (Some(j), Ok(mut v)) = (index_of(&id), view.lock()) {
                        v.members.insert(j);
                    }
                }
                OwnedNotification::MemberDown(id) => {
                    if let Some(j) = index_of(&id) {
                        if let Ok(mut v) = view.lock() {
                            v.members.remove(&j);
                        }
                        downs.record(j);
                    }
                }
                _ => {}
            }
        }
    }
}

fn index_of(id: &Id) -> Option<usize> {
    Some(usize::from(
        id.addr.port().checked_sub(node_addr(0).port())?,
    ))
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Swarm for FocaSwarm {
    async fn join(&mut self) -> Result<()> {
        let seed = Id {
            addr: node_addr(0),
            bump: 0,
        };
        for (_, node) in self.running().skip(1) {
            let _ = node.commands.send(Command::Announce(seed.clone()));
        }
        Ok(())
    }

    async fn member_counts(&mut self) -> Result<Vec<usize>> {
        Ok(self
            .running()
            .map(|(_, n)| n.view.lock().map(|v| v.members.len() + 1).unwrap_or(0))
            .collect())
    }

    async fn down_count(&mut self, target: usize) -> Result<usize> {
        Ok(self
            .running()
            .filter(|&(i, n)| {
                i != target && n.view.lock().is_ok_and(|v| !v.members.contains(&target))
            })
            .count())
    }

    async fn crash(&mut self, node: usize) -> Result<()> {
        if let Some(task) = self.nodes[node].take() {
            task.task.abort();
            let _ = task.task.await;
        }
        Ok(())
    }

    async fn update(&mut self, node: usize, key: &str, value: &str) -> Result<()> {
        self.version += 1;
        let update = Update {
            origin: node as u32,
            version: self.version,
            key: key.to_string(),
            value: value.to_string(),
        };
        let data = postcard::to_allocvec(&update)?;
        let task = self.nodes[node]
            .as_ref()
            .context("updating a crashed node")?;
        task.commands
            .send(Command::Broadcast(data))
            .map_err(|_| anyhow::anyhow!("foca node {node} stopped"))?;
        Ok(())
    }

    async fn seen_count(&mut self, key: &str, value: &str) -> Result<usize> {
        Ok(self
            .running()
            .filter(|(_, n)| {
                n.view
                    .lock()
                    .is_ok_and(|v| v.state.values().any(|(_, k, val)| k == key && val == value))
            })
            .count())
    }

    async fn downs_by_subject(&mut self) -> Result<Vec<u64>> {
        Ok(self.downs.snapshot())
    }

    async fn shutdown(&mut self) -> Result<()> {
        for node in self.nodes.iter_mut() {
            if let Some(task) = node.take() {
                task.task.abort();
            }
        }
        Ok(())
    }
}
