//! Writes through random nodes' HTTP APIs while a fault runs, recording
//! every write the cluster acknowledged.
//!
//! Most writes go to a key of their own (`<prefix>k/<writer>/<n>`), so an
//! acknowledged one must simply be there. Every fourth write of a writer
//! goes to its chain key (`<prefix>chain/<writer>`) with the causal context
//! the previous acknowledged write returned, so each acknowledged value
//! supersedes the one before. A chain write that got no answer may still
//! have been applied (a paused node applies it when it wakes), and then it
//! rightly supersedes the last acknowledged value; so the last acknowledged
//! value, or one of the unanswered writes sent after it, must be among the
//! key's values everywhere (siblings allowed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api_client::ApiClient;

/// A write the cluster acknowledged.
#[derive(Clone, Debug)]
pub struct Ack {
    /// The key.
    pub key: String,
    /// The value written.
    pub value: String,
    /// The host index that acknowledged it.
    pub node: usize,
}

/// Where a chain key stands.
#[derive(Clone, Debug)]
pub struct Chain {
    /// Its last acknowledged write.
    pub last: Ack,
    /// Values written after it whose outcome is unknown (no answer); each
    /// carried the causal context of `last`.
    pub unanswered: Vec<String>,
}

impl Chain {
    /// The values of which one must be among the key's values.
    pub fn acceptable(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.last.value.as_str()).chain(self.unanswered.iter().map(String::as_str))
    }
}

/// What the workload did.
#[derive(Debug, Default)]
pub struct WorkloadLog {
    /// Acknowledged writes to keys of their own.
    pub unique: Vec<Ack>,
    /// Each chain key's last acknowledged write and what followed it.
    pub chains: BTreeMap<String, Chain>,
    /// Acknowledged writes to chain keys.
    pub chain_writes: u64,
    /// Writes sent.
    pub attempted: u64,
    /// Writes that got no acknowledgement (error, timeout, refused).
    pub unacknowledged: u64,
}

impl WorkloadLog {
    /// Every acknowledged write.
    pub fn acknowledged(&self) -> u64 {
        self.unique.len() as u64 + self.chain_writes
    }
}

/// Writers running in the background.
pub struct Workload {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WorkloadLog>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Start `writers` threads, each writing about `per_second` times a
    /// second to random nodes among `clients` (but never to those in
    /// `avoid`), under `prefix`.
    pub fn start(
        clients: Vec<ApiClient>,
        prefix: &str,
        writers: usize,
        per_second: f64,
        avoid: Arc<Mutex<BTreeSet<usize>>>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(WorkloadLog::default()));
        let pause = Duration::from_secs_f64(1.0 / per_second.max(0.1));
        let threads = (0..writers)
            .map(|w| {
                let (stop, log, clients) = (Arc::clone(&stop), Arc::clone(&log), clients.clone());
                let (prefix, avoid) = (prefix.to_string(), Arc::clone(&avoid));
                std::thread::spawn(move || {
                    let targets = Targets {
                        clients: &clients,
                        avoid: &avoid,
                    };
                    writer(w, &targets, &prefix, pause, &stop, &log)
                })
            })
            .collect();
        Workload { stop, log, threads }
    }

    /// Stop the writers and hand back what they did.
    pub fn stop(mut self) -> WorkloadLog {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The nodes a writer may write to.
struct Targets<'a> {
    clients: &'a [ApiClient],
    avoid: &'a Mutex<BTreeSet<usize>>,
}

impl Targets<'_> {
    /// A random node not being avoided.
    fn pick(&self) -> Option<usize> {
        let avoid = self.avoid.lock().map(|a| a.clone()).unwrap_or_default();
        let allowed: Vec<usize> = (0..self.clients.len())
            .filter(|i| !avoid.contains(i))
            .collect();
        if allowed.is_empty() {
            None
        } else {
            Some(allowed[rand::random_range(0..allowed.len())])
        }
    }
}

fn writer(
    w: usize,
    targets: &Targets<'_>,
    prefix: &str,
    pause: Duration,
    stop: &AtomicBool,
    log: &Mutex<WorkloadLog>,
) {
    let chain_key = format!("{prefix}chain/{w}");
    let mut chain_context: Option<String> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let Some(node) = targets.pick() else {
            std::thread::sleep(pause);
            continue;
        };
        n += 1;
        let chained = n.is_multiple_of(4);
        let (key, value) = if chained {
            (chain_key.clone(), format!("c{w}-{n}"))
        } else {
            (format!("{prefix}k/{w}/{n}"), format!("v{w}-{n}"))
        };
        let context = if chained {
            chain_context.as_deref()
        } else {
            None
        };
        let result = targets.clients[node].put(&key, &value, context);
        {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.attempted += 1;
            match result {
                Ok(written) => {
                    let ack = Ack { key, value, node };
                    if chained {
                        chain_context = Some(written.context);
                        log.chain_writes += 1;
                        log.chains.insert(
                            chain_key.clone(),
                            Chain {
                                last: ack,
                                unanswered: Vec::new(),
                            },
                        );
                    } else {
                        log.unique.push(ack);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "write not acknowledged");
                    log.unacknowledged += 1;
                    if chained && let Some(c) = log.chains.get_mut(&chain_key) {
                        c.unanswered.push(value);
                    }
                }
            }
        }
        if let Some(rest) = pause.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_accepts_its_last_acknowledged_value_or_an_unanswered_later_one() {
        let chain = Chain {
            last: Ack {
                key: "x/chain/0".to_string(),
                value: "c0-28".to_string(),
                node: 0,
            },
            unanswered: vec!["c0-32".to_string(), "c0-36".to_string()],
        };
        let ok: Vec<&str> = chain.acceptable().collect();
        assert_eq!(ok, ["c0-28", "c0-32", "c0-36"]);
        assert!(!chain.acceptable().any(|v| v == "c0-24"));
    }
}
