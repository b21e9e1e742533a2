//! rumor nodes in this process, one [`rumor::Handle`] each.

use anyhow::{Context, Result};
use rumor::{Cluster, Handle, RuntimeConfig};
use rumor_proto::state::Op;
use rumor_proto::{Event, MemberEventKind, MemberState};

use super::{node_addr, node_index, node_name};
use crate::swarm::{DownCounts, Swarm};

/// N rumor nodes on loopback UDP and TCP, plaintext.
pub struct RumorSwarm {
    nodes: Vec<Option<Handle>>,
    downs: DownCounts,
}

impl RumorSwarm {
    /// Start `n` nodes (not yet joined).
    pub async fn start(n: usize, protocol: rumor_proto::Config, seed: u64) -> Result<Self> {
        let downs = DownCounts::new(n);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut config = RuntimeConfig::new(node_name(i).parse()?, node_addr(i));
            config.protocol = protocol.clone();
            config.seed = Some(seed.wrapping_mul(1000).wrapping_add(i as u64));
            let handle = Cluster::start(config)
                .await
                .with_context(|| format!("starting rumor node {i}"))?;
            let mut events = handle.subscribe();
            let downs = downs.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(Event::Member(m)) if m.kind == MemberEventKind::Failed => {
                            if let Some(j) = node_index(m.name.as_str()) {
                                downs.record(j);
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
            });
            nodes.push(Some(handle));
        }
        Ok(RumorSwarm { nodes, downs })
    }

    fn running(&self) -> impl Iterator<Item = (usize, &Handle)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h)))
    }
}

impl Swarm for RumorSwarm {
    async fn join(&mut self) -> Result<()> {
        let seed = node_addr(0);
        for (i, node) in self.running().skip(1) {
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) = node.join(vec![seed]).await {
                    tracing::warn!("rumor node {i} could not join the seed: {e}");
                }
            });
        }
        Ok(())
    }

    async fn member_counts(&mut self) -> Result<Vec<usize>> {
        let mut counts = Vec::new();
        for (_, node) in self.running() {
            let members = node.members().await?;
            counts.push(members.iter().filter(|m| m.state.is_active()).count());
        }
        Ok(counts)
    }

    async fn down_count(&mut self, target: usize) -> Result<usize> {
        let name = node_name(target);
        let mut count = 0;
        for (i, node) in self.running() {
            if i == target {
                continue;
            }
            let members = node.members().await?;
            let down = members
                .iter()
                .find(|m| m.name.as_str() == name)
                .is_none_or(|m| matches!(m.state, MemberState::Dead | MemberState::Left));
            count += usize::from(down);
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
            .context("updating a crashed node")?;
        handle
            .write(
                key,
                Op::Put {
                    value: value.as_bytes().to_vec(),
                    context: None,
                    kind: None,
                },
            )
            .await?;
        Ok(())
    }

    async fn seen_count(&mut self, key: &str, value: &str) -> Result<usize> {
        let mut count = 0;
        for (_, node) in self.running() {
            if let Some(entry) = node.get(key).await? {
                count += usize::from(entry.values().contains(&value.as_bytes()));
            }
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
