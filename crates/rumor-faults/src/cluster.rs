//! The agents of one scenario, the threads that watch them (members seen
//! by each, memory and exit status), and the faults applied to processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::bail;
use rumor::http::api::WatchItem;

use crate::agent_process::{Agent, AgentSettings, Condition};
use crate::api_client::ApiClient;
use crate::firewall::Firewall;
use crate::netns::{Host, Lab};

/// One member event as an observer reported it.
#[derive(Clone, Debug)]
pub struct SeenEvent {
    /// When the suite received it.
    pub at: Instant,
    /// The node that reported it.
    pub observer: String,
    /// member-join, member-suspect, member-failed, ...
    pub event: String,
    /// The member it is about.
    pub subject: String,
}

/// The running agents of a lab.
pub struct Cluster {
    /// How the agents are started.
    pub settings: AgentSettings,
    /// The agents, by host index.
    agents: Arc<Mutex<Vec<Agent>>>,
    /// Member events reported by every agent's watch stream.
    pub events: Arc<Mutex<Vec<SeenEvent>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The lab; dropped after the agents.
    pub lab: Lab,
}

impl Cluster {
    /// Start one agent per host of `lab` and wait until every agent sees
    /// every other one alive.
    pub fn start(lab: Lab, settings: AgentSettings, within: Duration) -> anyhow::Result<Self> {
        for h in &lab.hosts {
            Firewall::of(h).install()?;
        }
        let mut agents: Vec<Agent> = lab
            .hosts
            .iter()
            .map(|h| Agent::new(h.clone(), &settings))
            .collect();
        let addrs: Vec<String> = agents.iter().map(Agent::gossip_addr).collect();
        for (i, a) in agents.iter_mut().enumerate() {
            let join: Vec<String> = if i == 0 {
                Vec::new()
            } else {
                vec![addrs[0].clone()]
            };
            a.start(&settings, &join)?;
            a.wait_ready(Duration::from_secs(15))?;
        }
        let mut cluster = Cluster {
            settings,
            agents: Arc::new(Mutex::new(agents)),
            events: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            lab,
        };
        cluster.spawn_watchers()?;
        cluster.spawn_sampler()?;
        let deadline = Instant::now() + within;
        loop {
            if cluster.members_healthy().is_ok() {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                bail!(
                    "the cluster did not form within {within:?}: {}",
                    cluster.members_healthy().err().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn spawn_watchers(&mut self) -> anyhow::Result<()> {
        for h in &self.lab.hosts {
            let (stop, events) = (Arc::clone(&self.stop), Arc::clone(&self.events));
            let api = ApiClient::new(h.ns.clone(), Duration::from_secs(3));
            let observer = h.name.clone();
            let t = std::thread::Builder::new()
                .name(format!("watch-{observer}"))
                .spawn(move || {
                    if api.ns().enter().is_err() {
                        return;
                    }
                    while !stop.load(Ordering::Relaxed) {
                        let record = |item: WatchItem| {
                            if let WatchItem::Member { event, member } = item
                                && let Ok(mut ev) = events.lock()
                            {
                                ev.push(SeenEvent {
                                    at: Instant::now(),
                                    observer: observer.clone(),
                                    event,
                                    subject: member.name,
                                });
                            }
                        };
                        let _ = api.watch_members(record, || !stop.load(Ordering::Relaxed));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })?;
            self.threads.push(t);
        }
        Ok(())
    }

    fn spawn_sampler(&mut self) -> anyhow::Result<()> {
        let (stop, agents) = (Arc::clone(&self.stop), Arc::clone(&self.agents));
        let t = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut agents) = agents.lock() {
                        for a in agents.iter_mut() {
                            a.poll_exit();
                            a.sample_rss();
                        }
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            })?;
        self.threads.push(t);
        Ok(())
    }

    /// The agents, locked.
    pub fn agents(&self) -> MutexGuard<'_, Vec<Agent>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.lab.hosts
    }

    /// API clients of every host (whether its agent runs or not).
    pub fn clients(&self) -> Vec<ApiClient> {
        self.agents().iter().map(|a| a.api.clone()).collect()
    }

    /// Indices of the agents that run (paused ones included).
    pub fn live(&self) -> Vec<usize> {
        self.agents()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.condition != Condition::Killed)
            .map(|(i, _)| i)
            .collect()
    }

    /// kill -9 agent `i`.
    pub fn kill9(&self, i: usize) {
        self.agents()[i].kill9();
    }

    /// Start agent `i` again, joining through every other host, and wait
    /// until its API answers.
    pub fn restart(&self, i: usize) -> anyhow::Result<()> {
        let mut agents = self.agents();
        let join: Vec<String> = agents
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.gossip_addr())
            .collect();
        agents[i].start(&self.settings, &join)?;
        let a = &mut agents[i];
        a.wait_ready(Duration::from_secs(15))
    }

    /// SIGSTOP agent `i`.
    pub fn pause(&self, i: usize) {
        self.agents()[i].pause();
    }

    /// SIGCONT agent `i`.
    pub fn resume(&self, i: usize) {
        self.agents()[i].resume();
    }

    /// `Ok` when every running agent sees every running agent alive and
    /// no member suspect or dead; otherwise what is still wrong.
    pub fn members_healthy(&self) -> Result<(), String> {
        let live = self.live();
        let (names, clients): (Vec<String>, Vec<ApiClient>) = {
            let agents = self.agents();
            (
                live.iter().map(|&i| agents[i].host.name.clone()).collect(),
                live.iter().map(|&i| agents[i].api.clone()).collect(),
            )
        };
        for (observer, api) in names.iter().zip(&clients) {
            let members = api.members().map_err(|e| e.to_string())?;
            for name in &names {
                match members.iter().find(|m| &m.name == name) {
                    Some(m) if m.state == "alive" => {}
                    Some(m) => return Err(format!("{observer} sees {name} {}", m.state)),
                    None => return Err(format!("{observer} does not know {name}")),
                }
            }
            if let Some(m) = members
                .iter()
                .find(|m| m.state == "suspect" || m.state == "dead")
            {
                return Err(format!("{observer} sees {} {}", m.name, m.state));
            }
        }
        Ok(())
    }

    /// Clear every firewall fault on every host.
    pub fn heal_network(&self) -> anyhow::Result<()> {
        for h in &self.lab.hosts {
            Firewall::of(h).clear()?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for a in self.agents().iter_mut() {
            a.shutdown();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
