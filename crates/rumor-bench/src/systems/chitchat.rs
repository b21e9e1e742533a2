//! chitchat nodes in this process: Scuttlebutt anti-entropy with
//! phi-accrual failure detection, over its own UDP transport.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use chitchat::transport::UdpTransport;
use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, ProtocolVersion,
    spawn_chitchat,
};

use super::{node_addr, node_index, node_name};
use crate::settings::Settings;
use crate::swarm::{DownCounts, Swarm};

/// N chitchat nodes.
pub struct ChitchatSwarm {
    nodes: Vec<Option<ChitchatHandle>>,
    ids: Vec<ChitchatId>,
    settings: Settings,
    writer: Option<usize>,
    downs: DownCounts,
}

impl ChitchatSwarm {
    /// Start `n` nodes; chitchat joins at start, so they wait for
    /// [`Swarm::join`] before being spawned with the seed.
    pub async fn start(n: usize, settings: &Settings, _seed: u64) -> Result<Self> {
        let ids = (0..n)
            .map(|i| ChitchatId::new(node_name(i), 0, node_addr(i)))
            .collect();
        Ok(ChitchatSwarm {
            nodes: (0..n).map(|_| None).collect(),
            ids,
            settings: settings.clone(),
            writer: None,
            downs: DownCounts::new(n),
        })
    }

    fn running(&self) -> impl Iterator<Item = (usize, &ChitchatHandle)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h)))
    }
}

/// The settings in chitchat's terms: the shared gossip interval; phi
/// conviction at the shared threshold; a short initial interval so that the
/// detector's prior matches the gossip rate.
fn config(id: ChitchatId, seed: Option<String>, settings: &Settings) -> ChitchatConfig {
    ChitchatConfig {
        listen_addr: id.gossip_advertise_addr,
        chitchat_id: id,
        cluster_id: "bench".to_string(),
        gossip_interval: settings.gossip_interval(),
        seed_nodes: seed.into_iter().collect(),
        failure_detector_config: FailureDetectorConfig {
            phi_threshold: settings.phi_threshold,
            initial_interval: settings.gossip_interval(),
            ..FailureDetectorConfig::default()
        },
        marked_for_deletion_grace_period: Duration::from_secs(3600),
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: ProtocolVersion::V1,
    }
}

impl Swarm for ChitchatSwarm {
    async fn join(&mut self) -> Result<()> {
        let seed = node_addr(0).to_string();
        for i in 0..self.ids.len() {
            let id = self.ids[i].clone();
            let seeds = (i > 0).then(|| seed.clone());
            let handle =
                spawn_chitchat(config(id, seeds, &self.settings), Vec::new(), &UdpTransport)
                    .await
                    .with_context(|| format!("starting chitchat node {i}"))?;
            let mut live = handle.chitchat().lock().await.live_nodes_watcher();
            let downs = self.downs.clone();
            tokio::spawn(async move {
                let mut before: BTreeSet<ChitchatId> = BTreeSet::new();
                while live.changed().await.is_ok() {
                    let now: BTreeSet<ChitchatId> =
                        live.borrow_and_update().keys().cloned().collect();
                    for gone in before.difference(&now) {
                        if let Some(j) = node_index(&gone.node_id) {
                            downs.record(j);
                        }
                    }
                    before = now;
                }
            });
            self.nodes[i] = Some(handle);
        }
        Ok(())
    }

    async fn member_counts(&mut self) -> Result<Vec<usize>> {
        let mut counts = Vec::new();
        for (_, node) in self.running() {
            counts.push(node.chitchat().lock().await.live_nodes().count());
        }
        Ok(counts)
    }

    async fn down_count(&mut self, target: usize) -> Result<usize> {
        let id = self.ids[target].clone();
        let mut count = 0;
        for (i, node) in self.running() {
            if i != target {
                let live = node.chitchat().lock().await.live_nodes().any(|l| *l == id);
                count += usize::from(!live);
            }
        }
        Ok(count)
    }

    async fn crash(&mut self, node: usize) -> Result<()> {
        if let Some(handle) = self.nodes[node].take() {
            handle.shutdown().await?;
        }
        Ok(())
    }

    async fn update(&mut self, node: usize, key: &str, value: &str) -> Result<()> {
        let handle = self.nodes[node]
            .as_ref()
            .context("updating a stopped node")?;
        handle
            .chitchat()
            .lock()
            .await
            .self_node_state()
            .set(key, value);
        self.writer = Some(node);
        Ok(())
    }

    async fn seen_count(&mut self, key: &str, value: &str) -> Result<usize> {
        let Some(writer) = self.writer else {
            return Ok(0);
        };
        let id = &self.ids[writer];
        let mut count = 0;
        for (_, node) in self.running() {
            let chitchat = node.chitchat();
            let guard = chitchat.lock().await;
            let has = guard.node_state(id).and_then(|s| s.get(key)) == Some(value);
            count += usize::from(has);
        }
        Ok(count)
    }

    async fn downs_by_subject(&mut self) -> Result<Vec<u64>> {
        Ok(self.downs.snapshot())
    }

    async fn shutdown(&mut self) -> Result<()> {
        for node in self.nodes.iter_mut() {
            if let Some(h) = node.take() {
                let _ = h.shutdown().await;
            }
        }
        Ok(())
    }
}
