//! # rumor-sim
//!
//! A deterministic discrete-event simulator that drives many real
//! [`rumor_proto::Node`]s over a virtual network, in virtual time.
//!
//! - [`queue`]: the event queue, ordered by (time, insertion order);
//! - [`network`]: latency, jitter, datagram loss and partitions;
//! - [`scenario`]: crashes, restarts, leaves, commands and slow nodes;
//! - [`sim`]: the engine, [`Sim`], that owns the nodes and runs them;
//! - [`observer`]: every node's view of every other, and the metrics
//!   derived from them (join convergence, detection times, false positives);
//! - [`report`]: serde reports;
//! - [`membership_run`]: the `membership` scenario run by
//!   `rumor sim membership`;
//! - [`broadcast_run`]: the `broadcast` scenario run by
//!   `rumor sim broadcast`: user events spread through a converged cluster,
//!   with coverage, residue, rounds, traffic and redundancy;
//! - [`kv_run`]: the `kv` scenario run by `rumor sim kv`: writes through
//!   random nodes under partitions, loss and crashes, then a search for
//!   every acknowledged write;
//! - [`sync_run`]: one anti-entropy exchange between two replicas
//!   (`rumor sim sync`);
//! - [`broadcast_sweep`]: every mode × termination rule and the theory
//!   references, as a markdown table and plots (`rumor sim broadcast-report`);
//! - [`svg_plot`]: minimal SVG line charts for those plots.
//!
//! The same seed and the same schedule give the same run, event for event.
//! The library prints nothing; [`Sim::run_until_with_progress`] lets a
//! front-end show progress.
//!
//! ```
//! use rumor_proto::{Config, Instant, MemberState};
//! use rumor_sim::{RestartMode, Sim, SimConfig};
//!
//! let mut sim = Sim::new(SimConfig::new(1).with_node_config(Config::local())).unwrap();
//! let seed = sim.add_node(Instant::ZERO, &[]).unwrap();
//! let nodes: Vec<_> = (0..4)
//!     .map(|i| sim.add_node(Instant::from_millis(i * 10), &[seed]).unwrap())
//!     .collect();
//! sim.crash_at(Instant::from_millis(5_000), nodes[0]);
//! sim.restart_at(Instant::from_millis(40_000), nodes[0], RestartMode::WithState);
//! sim.run_until(Instant::from_millis(30_000));
//! assert_eq!(sim.view(seed, nodes[0]), Some(MemberState::Dead));
//! sim.run_until(Instant::from_millis(60_000));
//! assert_eq!(sim.view(seed, nodes[0]), Some(MemberState::Alive));
//! assert_eq!(sim.report().undetected, 0);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broadcast_run;
pub mod broadcast_sweep;
pub mod kv_run;
pub mod membership_run;
pub mod network;
pub mod observer;
pub mod queue;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod svg_plot;
pub mod sync_run;

/// A node's index in a simulation: node `i` is called `node-{i}`.
pub type NodeId = usize;

pub use broadcast_run::{
    Bootstrap, BroadcastParams, BroadcastReport, BroadcastRun, Ending, run_broadcast,
};
pub use kv_run::{KvParams, KvReport, run_kv, run_kv_keeping_sim};
pub use membership_run::{MembershipParams, MembershipRun, run_membership};
pub use network::{Direction, NetworkConfig, Partition};
pub use observer::Observer;
pub use report::{MembershipReport, Percentiles, SimReport};
pub use scenario::{Fault, RestartMode, SlowSpec};
pub use sim::{NodeStatus, Sim, SimConfig, SimError};
pub use sync_run::{SyncReport, run_sync};
