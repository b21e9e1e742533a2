//! What the scenario runner needs from a system under test: N nodes it can
//! join, observe, update and crash.

use std::sync::{Arc, Mutex};

use anyhow::Result;

/// How many times each node was declared down by another, shared between
/// the nodes of an in-process swarm and the swarm.
#[derive(Clone, Debug)]
pub struct DownCounts(Arc<Mutex<Vec<u64>>>);

impl DownCounts {
    /// Counts for `n` nodes, all zero.
    pub fn new(n: usize) -> Self {
        DownCounts(Arc::new(Mutex::new(vec![0; n])))
    }

    /// Node `subject` was declared down once more.
    pub fn record(&self, subject: usize) {
        if let Ok(mut d) = self.0.lock()
            && let Some(c) = d.get_mut(subject)
        {
            *c += 1;
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> Vec<u64> {
        self.0.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// N nodes of one system. Node 0 is the seed every other node joins
/// through. Indices stay valid after a crash; a crashed node is no longer
/// asked anything.
pub trait Swarm {
    /// Every node but the seed joins through the seed.
    async fn join(&mut self) -> Result<()>;

    /// For every running node, how many members (itself included) it holds
    /// as alive or suspect.
    async fn member_counts(&mut self) -> Result<Vec<usize>>;

    /// How many running nodes other than `target` hold it as down.
    async fn down_count(&mut self, target: usize) -> Result<usize>;

    /// Stop `node` abruptly, without a leave.
    async fn crash(&mut self, node: usize) -> Result<()>;

    /// Publish a small state update from `node`.
    async fn update(&mut self, node: usize, key: &str, value: &str) -> Result<()>;

    /// How many running nodes hold the update.
    async fn seen_count(&mut self, key: &str, value: &str) -> Result<usize>;

    /// For every node, how many times another node declared it down.
    async fn downs_by_subject(&mut self) -> Result<Vec<u64>>;

    /// The processes whose CPU time and memory the nodes use (by default
    /// this one: the nodes run in it).
    fn pids(&self) -> Vec<u32> {
        vec![std::process::id()]
    }

    /// Stop every node.
    async fn shutdown(&mut self) -> Result<()>;
}
