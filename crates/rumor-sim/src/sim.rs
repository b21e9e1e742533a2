//! The engine: owns every node, the virtual clock, the event queue, the
//! network and the observer, and runs them forward in virtual time.
//!
//! Each node has at most one live wakeup in the queue: after every call into
//! a node its transmits are routed, its events observed, and its
//! [`Node::poll_timeout`] compared with the wakeup already scheduled; a wakeup
//! is pushed only if the node now needs one earlier. Entries superseded that
//! way are skipped when popped. No event costs O(n) work, so 10,000 nodes
//! are practical.

use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use foldhash::fast::FixedState;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumor_proto::{
    Channel, Command, Config, Event, Identity, Instant, InvalidName, MemberState, Node, NodeError,
    NodeName, Snapshot, Transmit,
};

use crate::NodeId;
use crate::network::{Fate, Network, NetworkConfig, NetworkError, NetworkStats, Partition};
use crate::observer::Observer;
use crate::queue::EventQueue;
use crate::report::{CrashReport, SimReport, Traffic};
use crate::scenario::{Fault, RestartMode, SlowSpec};

mod window;
use window::{Record, WindowEvent};

/// Port of every simulated node's (virtual, never opened) address.
pub const PORT: u16 = 7946;
/// Most nodes one simulation can hold (addresses use 24 bits).
pub const MAX_NODES: usize = (1 << 24) - 1;
/// A leaving node keeps running this many gossip intervals before it stops.
pub const LEAVE_GOSSIP_INTERVALS: u32 = 5;
/// Progress callbacks come at most this often in virtual time.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The virtual address of node `i`: `127.x.y.z:7946` with `x.y.z` = `i + 1`.
pub fn node_addr(i: NodeId) -> SocketAddr {
    let n = i.wrapping_add(1);
    let ip = Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8);
    SocketAddr::new(IpAddr::V4(ip), PORT)
}

/// The seed of node `i`'s RNG in its `generation`-th life (0 for the first).
pub fn node_seed(sim_seed: u64, i: NodeId, generation: u64) -> u64 {
    (sim_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64)
        .wrapping_add(generation.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// How to build a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds the network, the fault schedule and every node.
    pub seed: u64,
    /// Protocol configuration of nodes added with [`Sim::add_node`].
    pub node: Config,
    /// The network model.
    pub network: NetworkConfig,
    /// Run the nodes side by side on all cores where no packet can pass
    /// between them (on by default). The outcome is the same either way.
    pub parallel: bool,
}

impl SimConfig {
    /// The `lan` profile on the default network (1 ms latency, 0.5 ms jitter,
    /// no loss).
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            node: Config::lan(),
            network: NetworkConfig::default(),
            parallel: true,
        }
    }

    /// Run every event one by one on the calling thread
    /// ([`SimConfig::parallel`] off).
    pub fn one_by_one(mut self) -> Self {
        self.parallel = false;
        self
    }

    /// Use `config` for the nodes.
    pub fn with_node_config(mut self, config: Config) -> Self {
        self.node = config;
        self
    }

    /// Use `network` as the network model.
    pub fn with_network(mut self, network: NetworkConfig) -> Self {
        self.network = network;
        self
    }
}

/// A simulation could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A node could not be created (bad configuration).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The network configuration is unusable.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A generated node name was refused.
    #[error(transparent)]
    Name(#[from] InvalidName),
    /// More nodes than addresses.
    #[error("a simulation holds at most {MAX_NODES} nodes")]
    TooManyNodes,
}

/// Where a node is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Added, its start time not reached yet.
    Pending,
    /// Running and live.
    Running,
    /// Left gracefully; still running for a few gossip intervals.
    Leaving,
    /// Crashed.
    Crashed,
    /// Left and stopped.
    Gone,
}

impl NodeStatus {
    /// Whether the node processes packets and timers.
    pub fn is_running(self) -> bool {
        matches!(self, NodeStatus::Running | NodeStatus::Leaving)
    }
}

/// A packet waiting for a frozen node.
#[derive(Debug)]
struct Inbound {
    from: NodeId,
    channel: Channel,
    bytes: Vec<u8>,
}

/// Give every node of `slots` the member table of `identities`, on as many
/// threads as the machine has cores (each node's table, probe order and
/// random draws are its own, so the result does not depend on the split).
fn install_in_parallel(slots: &mut [Slot], now: Instant, identities: &[Identity]) {
    in_parallel(slots, |slot| {
        slot.node.install_members(now, identities);
    });
}

/// Run `f` on every slot, the slots split over the cores. Only for work
/// that touches nothing but the slot itself, so that the outcome does not
/// depend on the split.
fn in_parallel(slots: &mut [Slot], f: impl Fn(&mut Slot) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = slots.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        for chunk in slots.chunks_mut(per_thread) {
            scope.spawn(move || chunk.iter_mut().for_each(f));
        }
    });
}

/// Everything the engine keeps about one node.
#[derive(Debug)]
struct Slot {
    node: Node,
    name: NodeName,
    addr: SocketAddr,
    config: Config,
    seeds: Vec<SocketAddr>,
    status: NodeStatus,
    /// The one wakeup entry in the queue that is not stale.
    wakeup: Option<Instant>,
    frozen: bool,
    inbox: VecDeque<Inbound>,
    /// The slow schedule and its epoch (older Freeze/Thaw entries are stale).
    slow: Option<SlowSpec>,
    slow_epoch: u32,
    /// State kept at the last crash.
    snapshot: Option<Snapshot>,
    generation: u64,
    packets_sent: u64,
    bytes_sent: u64,
    /// Drop counters of the node's earlier lives.
    retired_drops: u64,
    /// The node's events of the current window, in order.
    window_in: Vec<(Instant, WindowEvent)>,
    /// What each of them did, for replaying.
    window_out: VecDeque<Record>,
}

/// What a node produced after one call into it, taken from the node.
#[derive(Debug, Default)]
struct Outputs {
    transmits: Vec<Transmit>,
    events: Vec<Event>,
    /// A wakeup to queue: the node needs one earlier than the one queued.
    wake: Option<Instant>,
}

impl Outputs {
    /// Take what the node in `slot` sent and emitted, count its sends, and
    /// move its wakeup earlier if its next deadline is. Touches nothing but
    /// the slot.
    fn take(slot: &mut Slot, now: Instant) -> Self {
        let mut out = Outputs::default();
        while let Some(tx) = slot.node.poll_transmit() {
            slot.packets_sent += 1;
            slot.bytes_sent += tx.bytes.len() as u64;
            out.transmits.push(tx);
        }
        while let Some(event) = slot.node.poll_event() {
            out.events.push(event);
        }
        if let Some(deadline) = slot.node.poll_timeout() {
            let deadline = deadline.max(now);
            if slot.wakeup.is_none_or(|w| deadline < w) {
                slot.wakeup = Some(deadline);
                out.wake = Some(deadline);
            }
        }
        out
    }
}

/// What the event queue holds.
#[derive(Debug)]
enum Action {
    Start(NodeId),
    Wake(NodeId),
    Deliver {
        from: NodeId,
        to: NodeId,
        channel: Channel,
        bytes: Vec<u8>,
    },
    Fault(NodeId, Fault),
    Remove(NodeId),
    Freeze(NodeId, u32),
    Thaw(NodeId, u32),
}

impl Action {
    /// Whether the action acts on more than the one node's own state, or
    /// on the simulation itself: no window of events run side by side may
    /// reach past it (see `window`). Only wakeups and deliveries do not.
    fn is_barrier(&self) -> bool {
        !matches!(self, Action::Wake(_) | Action::Deliver { .. })
    }
}

/// Queue `action` at `at`, as a barrier if it is one: every action the
/// engine schedules goes through here, so none is misfiled.
fn enqueue(queue: &mut EventQueue<Action>, at: Instant, action: Action) {
    if action.is_barrier() {
        queue.push_barrier(at, action);
    } else {
        queue.push(at, action);
    }
}

/// A callback that sees every event every node emits.
pub type EventHook = Box<dyn FnMut(Instant, NodeId, &Event) + Send>;

/// A deterministic simulation of many [`Node`]s over a virtual network.
///
/// ```
/// use rumor_proto::{Config, Instant, MemberState};
/// use rumor_sim::{Sim, SimConfig};
///
/// let mut sim = Sim::new(SimConfig::new(7).with_node_config(Config::local())).unwrap();
/// let a = sim.add_node(Instant::ZERO, &[]).unwrap();
/// let b = sim.add_node(Instant::from_millis(10), &[a]).unwrap();
/// sim.run_until(Instant::from_millis(2_000));
/// assert_eq!(sim.view(a, b), Some(MemberState::Alive));
/// assert!(sim.observer().join_converged_at().is_some());
/// ```
pub struct Sim {
    seed: u64,
    default_config: Config,
    now: Instant,
    queue: EventQueue<Action>,
    network: Network,
    slots: Vec<Slot>,
    /// Looked up for every packet sent and every member event: a fast
    /// fixed-seed hasher (only ever looked up, never iterated).
    by_addr: HashMap<SocketAddr, NodeId, FixedState>,
    by_name: HashMap<NodeName, NodeId, FixedState>,
    observer: Observer,
    /// Draws cluster start times and the slow nodes' periods.
    fault_rng: ChaCha8Rng,
    hook: Option<EventHook>,
    /// Run windows of events on all cores (see `window`).
    parallel: bool,
    events_processed: u64,
    /// Scheduled commands the node refused (tags too large).
    rejected_commands: u64,
}

impl core::fmt::Debug for Sim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("nodes", &self.slots.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

fn draw(rng: &mut ChaCha8Rng, range: &core::ops::RangeInclusive<Duration>) -> Duration {
    let lo = u64::try_from(range.start().as_nanos()).unwrap_or(u64::MAX);
    let hi = u64::try_from(range.end().as_nanos()).unwrap_or(u64::MAX);
    if hi <= lo {
        return Duration::from_nanos(lo);
    }
    Duration::from_nanos(rng.random_range(lo..=hi))
}

impl Sim {
    /// An empty simulation at virtual time zero.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.network.validate()?;
        config.node.validate().map_err(NodeError::from)?;
        Ok(Sim {
            seed: config.seed,
            default_config: config.node,
            now: Instant::ZERO,
            queue: EventQueue::default(),
            network: Network::new(config.network, config.seed),
            slots: Vec::new(),
            by_addr: HashMap::default(),
            by_name: HashMap::default(),
            observer: Observer::default(),
            fault_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x5EED_FA17_0000_0001),
            hook: None,
            parallel: config.parallel,
            events_processed: 0,
            rejected_commands: 0,
        })
    }

    /// Add node `node-{i}` with the simulation's node configuration. It starts
    /// at `start` and joins through `seeds` (none: it starts alone, and
    /// others join it).
    pub fn add_node(&mut self, start: Instant, seeds: &[NodeId]) -> Result<NodeId, SimError> {
        let config = self.default_config.clone();
        self.add_node_with(start, seeds, config)
    }

    /// [`Sim::add_node`] with a configuration of its own.
    ///
    /// # Panics
    ///
    /// If a seed is not a node of this simulation.
    pub fn add_node_with(
        &mut self,
        start: Instant,
        seeds: &[NodeId],
        config: Config,
    ) -> Result<NodeId, SimError> {
        let i = self.slots.len();
        if i >= MAX_NODES {
            return Err(SimError::TooManyNodes);
        }
        let name = NodeName::new(&format!("node-{i}"))?;
        let addr = node_addr(i);
        let start = start.max(self.now);
        let node = Node::new(
            config.clone(),
            Identity::new(name.clone(), addr),
            node_seed(self.seed, i, 0),
            start,
        )?;
        let seeds = seeds.iter().map(|&s| self.slots[s].addr).collect();
        self.slots.push(Slot {
            node,
            name: name.clone(),
            addr,
            config,
            seeds,
            status: NodeStatus::Pending,
            wakeup: None,
            frozen: false,
            inbox: VecDeque::new(),
            slow: None,
            slow_epoch: 0,
            snapshot: None,
            generation: 0,
            packets_sent: 0,
            bytes_sent: 0,
            retired_drops: 0,
            window_in: Vec::new(),
            window_out: VecDeque::new(),
        });
        self.by_addr.insert(addr, i);
        self.by_name.insert(name, i);
        let id = self.observer.node_added();
        debug_assert_eq!(id, i);
        enqueue(&mut self.queue, start, Action::Start(i));
        Ok(i)
    }

    fn check(&self, node: NodeId) {
        assert!(
            node < self.slots.len(),
            "node {node} is not in this simulation of {} nodes",
            self.slots.len()
        );
    }

    /// Change the probability that a datagram is lost, from now on (stream
    /// frames are never lost at random).
    pub fn set_datagram_loss(&mut self, loss: f64) -> Result<(), NetworkError> {
        self.network.set_loss(loss)
    }

    /// Schedule `fault` for `node` at `at` (or now, if `at` is past).
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this simulation.
    pub fn schedule(&mut self, at: Instant, node: NodeId, fault: Fault) {
        self.check(node);
        enqueue(
            &mut self.queue,
            at.max(self.now),
            Action::Fault(node, fault),
        );
    }

    /// Crash `node` at `at`.
    pub fn crash_at(&mut self, at: Instant, node: NodeId) {
        self.schedule(at, node, Fault::Crash);
    }

    /// Restart `node` at `at`, if it is crashed or gone by then.
    pub fn restart_at(&mut self, at: Instant, node: NodeId, mode: RestartMode) {
        self.schedule(at, node, Fault::Restart(mode));
    }

    /// Make `node` leave gracefully at `at`.
    pub fn leave_at(&mut self, at: Instant, node: NodeId) {
        self.schedule(at, node, Fault::Leave);
    }

    /// Hand `node` an application command at `at`.
    pub fn command_at(&mut self, at: Instant, node: NodeId, command: Command) {
        self.schedule(at, node, Fault::Command(command));
    }

    /// Partition the nodes into `groups` (nodes in none form one more group)
    /// from `start` to `end`.
    pub fn partition(&mut self, start: Instant, end: Instant, groups: &[Vec<NodeId>]) {
        self.network
            .add_partition(Partition::new(start, end, groups));
    }

    /// Add a partition built by hand (for example a [`Partition::one_way`]).
    pub fn add_partition(&mut self, partition: Partition) {
        self.network.add_partition(partition);
    }

    /// Make `node` slow as `spec` says (replacing any earlier slow schedule).
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this simulation.
    pub fn slow(&mut self, node: NodeId, spec: SlowSpec) {
        self.check(node);
        let slot = &mut self.slots[node];
        slot.slow_epoch = slot.slow_epoch.wrapping_add(1);
        let first = spec.start.max(self.now) + draw(&mut self.fault_rng, &spec.run);
        let epoch = slot.slow_epoch;
        slot.slow = Some(spec);
        enqueue(&mut self.queue, first, Action::Freeze(node, epoch));
    }

    /// Add a cluster of `n` nodes: the first starts now, alone; the others
    /// start at uniformly random instants within `spread` of now and join
    /// through the first. Returns their ids, the first first.
    pub fn add_cluster(&mut self, n: usize, spread: Duration) -> Result<Vec<NodeId>, SimError> {
        let mut ids = Vec::with_capacity(n);
        if n == 0 {
            return Ok(ids);
        }
        let now = self.now;
        let first = self.add_node(now, &[])?;
        ids.push(first);
        let spread = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        for _ in 1..n {
            let start = now + Duration::from_nanos(self.fault_rng.random_range(0..=spread));
            ids.push(self.add_node(start, &[first])?);
        }
        Ok(ids)
    }

    /// Add a cluster of `n` nodes that starts now already formed: every
    /// node lists every other as alive at incarnation 0, as if all had
    /// joined and gossip had settled, but no join or full-state exchange is
    /// simulated (see [`Node::install_members`]). The nodes have no seeds.
    /// The observer sees every view at once, so the cluster is converged
    /// now. Returns their ids, in order.
    ///
    /// This is the fast way to a large cluster (the joins of 10,000 nodes
    /// exchange about 3 × 10^8 member entries); use [`Sim::add_cluster`] when
    /// the joins are what is measured.
    pub fn add_formed_cluster(&mut self, n: usize) -> Result<Vec<NodeId>, SimError> {
        let now = self.now;
        let ids = (0..n)
            .map(|_| self.add_node(now, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let identities: Vec<Identity> = ids
            .iter()
            .map(|&i| Identity::new(self.slots[i].name.clone(), self.slots[i].addr))
            .collect();
        // The new nodes are the last `n` slots. Filling n tables of n
        // members is most of the cost of a large formed cluster (and all of
        // its memory), and each node fills its own from its own state, so
        // the work is split over the cores without changing any outcome.
        let first = self.slots.len() - n;
        install_in_parallel(&mut self.slots[first..], now, &identities);
        for &i in &ids {
            self.start(i);
        }
        for &i in &ids {
            self.observer.joined_all(now, i, &ids);
        }
        Ok(ids)
    }

    /// Write to the key-value store of `node` now, as its application would.
    /// `None` if the node is not running (or frozen): the write was not
    /// acknowledged.
    pub fn write(
        &mut self,
        node: NodeId,
        key: &str,
        op: rumor_proto::state::Op,
    ) -> Option<Result<rumor_proto::state::Written, NodeError>> {
        self.check(node);
        let now = self.now;
        let slot = &mut self.slots[node];
        if !slot.status.is_running() || slot.frozen || slot.status == NodeStatus::Leaving {
            return None;
        }
        let r = slot.node.write(now, key, op);
        self.after(node);
        Some(r)
    }

    /// Give `node` a copy of `template`'s keys without spreading them (to
    /// preload identical state on every node); `false`, changing nothing,
    /// when its store is not empty.
    pub fn preload_store(&mut self, node: NodeId, template: &rumor_proto::state::KvStore) -> bool {
        self.check(node);
        self.slots[node].node.load_store(template)
    }

    /// [`Sim::preload_store`] on every node, the copies made on all cores;
    /// returns how many nodes took the copy (those whose store was empty).
    pub fn preload_every_store(&mut self, template: &rumor_proto::state::KvStore) -> usize {
        let loaded = core::sync::atomic::AtomicUsize::new(0);
        in_parallel(&mut self.slots, |slot| {
            if slot.node.load_store(template) {
                loaded.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            }
        });
        loaded.into_inner()
    }

    /// Merge `entry` into the store of `node` without spreading it (to
    /// preload identical state on every node).
    pub fn preload(&mut self, node: NodeId, key: &str, entry: &rumor_proto::state::Entry) {
        self.check(node);
        let now = self.now;
        let slot = &mut self.slots[node];
        slot.node.merge(now, key, entry);
        while slot.node.poll_event().is_some() {}
    }

    /// Make `node` start an anti-entropy exchange with the node at `peer` now.
    pub fn anti_entropy_with(&mut self, node: NodeId, peer: SocketAddr) {
        self.check(node);
        let now = self.now;
        self.slots[node].node.anti_entropy_with(now, peer);
        self.after(node);
    }

    /// Call `hook` with every event any node emits, as it is emitted.
    pub fn set_event_hook(&mut self, hook: impl FnMut(Instant, NodeId, &Event) + Send + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Run every event due up to and including `until`; the clock then reads
    /// `until`.
    pub fn run_until(&mut self, until: Instant) {
        self.run_until_with_progress(until, &mut |_| {});
    }

    /// [`Sim::run_until`], calling `progress` with the virtual time at most
    /// every [`PROGRESS_INTERVAL`] of virtual time, and once at the end.
    pub fn run_until_with_progress(&mut self, until: Instant, progress: &mut dyn FnMut(Instant)) {
        let mut next_tick = self.now + PROGRESS_INTERVAL;
        while let Some(first) = self.queue.peek_time().filter(|&at| at <= until) {
            if first >= next_tick {
                progress(first);
                next_tick = first + PROGRESS_INTERVAL;
            }
            // Everything due before the next progress call (or up to
            // `until`) runs in one span.
            let end = if next_tick <= until {
                next_tick
            } else {
                until + Duration::from_nanos(1)
            };
            self.run_span(end);
        }
        self.now = self.now.max(until);
        progress(self.now);
    }

    /// Run every event due before `end`, in windows on all cores where it
    /// can (see `window`).
    fn run_span(&mut self, end: Instant) {
        if self.windows_possible() {
            // On a thread of the pool, so that splitting a window runs
            // half of it right here and the rest wherever a core is free.
            rayon::scope(|_| self.run_span_here(end));
        } else {
            self.run_span_here(end);
        }
    }

    fn run_span_here(&mut self, end: Instant) {
        while let Some(first) = self.queue.peek_time().filter(|&at| at < end) {
            if let Some(window_end) = self.window_end(first, end) {
                self.run_window(window_end);
                continue;
            }
            let Some((at, action)) = self.queue.pop() else {
                break;
            };
            self.process(at, action);
        }
    }

    /// Run until `condition` holds (checked after every event) or until
    /// `deadline`. Returns the instant it first held, or `None` if it did not
    /// by the deadline (the clock then reads `deadline`).
    pub fn run_until_condition(
        &mut self,
        deadline: Instant,
        mut condition: impl FnMut(&Sim) -> bool,
    ) -> Option<Instant> {
        if condition(self) {
            return Some(self.now);
        }
        while self.queue.peek_time().is_some_and(|at| at <= deadline) {
            let Some((at, action)) = self.queue.pop() else {
                break;
            };
            self.process(at, action);
            if condition(self) {
                return Some(self.now);
            }
        }
        self.now = self.now.max(deadline);
        None
    }

    fn process(&mut self, at: Instant, action: Action) {
        self.now = at;
        self.events_processed += 1;
        match action {
            Action::Start(i) => self.start(i),
            Action::Wake(i) => self.wake(i),
            Action::Deliver {
                from,
                to,
                channel,
                bytes,
            } => self.deliver(from, to, channel, bytes),
            Action::Fault(i, fault) => self.fault(i, fault),
            Action::Remove(i) => self.remove(i),
            Action::Freeze(i, epoch) => self.freeze(i, epoch),
            Action::Thaw(i, epoch) => self.thaw(i, epoch),
        }
    }

    fn start(&mut self, i: NodeId) {
        let now = self.now;
        let slot = &mut self.slots[i];
        if slot.status != NodeStatus::Pending {
            return;
        }
        slot.status = NodeStatus::Running;
        self.observer.node_started(i, now);
        if !slot.seeds.is_empty() {
            let seeds = slot.seeds.clone();
            // Only SetTags can be refused.
            let _ = slot.node.handle_command(now, Command::Join { seeds });
        }
        self.after(i);
    }

    fn wake(&mut self, i: NodeId) {
        let now = self.now;
        let slot = &mut self.slots[i];
        if slot.wakeup != Some(now) {
            return; // superseded by an earlier wakeup
        }
        slot.wakeup = None;
        if !slot.status.is_running() || slot.frozen {
            return; // a frozen node is rescheduled when it thaws
        }
        slot.node.handle_timeout(now);
        self.after(i);
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, channel: Channel, bytes: Vec<u8>) {
        let now = self.now;
        if !self.slots[to].status.is_running() {
            self.network.record_unreachable();
            return;
        }
        if self.network.blocked(now, from, to) {
            self.network.record_partitioned();
            return;
        }
        let from_addr = self.slots[from].addr;
        let slot = &mut self.slots[to];
        if slot.frozen {
            slot.inbox.push_back(Inbound {
                from,
                channel,
                bytes,
            });
            return;
        }
        self.network.record_delivered(channel);
        slot.node.handle_packet(now, from_addr, channel, &bytes);
        self.after(to);
    }

    fn fault(&mut self, i: NodeId, fault: Fault) {
        match fault {
            Fault::Crash => self.crash(i),
            Fault::Restart(mode) => self.restart(i, mode),
            Fault::Leave => self.leave(i),
            Fault::Command(command) => {
                let slot = &mut self.slots[i];
                if slot.status.is_running() {
                    if slot.node.handle_command(self.now, command).is_err() {
                        self.rejected_commands += 1;
                    }
                    self.after(i);
                }
            }
        }
    }

    /// Stop a node where it stands; packets waiting for it are lost.
    fn halt(&mut self, i: NodeId, status: NodeStatus) {
        let slot = &mut self.slots[i];
        slot.status = status;
        slot.wakeup = None;
        slot.frozen = false;
        for _ in slot.inbox.drain(..) {
            self.network.record_unreachable();
        }
    }

    fn crash(&mut self, i: NodeId) {
        let now = self.now;
        match self.slots[i].status {
            NodeStatus::Running => self.observer.node_crashed(i, now),
            NodeStatus::Leaving => {}
            _ => return,
        }
        self.slots[i].snapshot = Some(self.slots[i].node.snapshot());
        self.halt(i, NodeStatus::Crashed);
    }

    fn restart(&mut self, i: NodeId, mode: RestartMode) {
        let now = self.now;
        let slot = &mut self.slots[i];
        if !matches!(slot.status, NodeStatus::Crashed | NodeStatus::Gone) {
            return;
        }
        slot.generation += 1;
        let seed = node_seed(self.seed, i, slot.generation);
        let config = slot.config.clone();
        let node = match mode {
            RestartMode::WithState => {
                let snapshot = slot.snapshot.take().unwrap_or_else(|| slot.node.snapshot());
                Node::restore(config, snapshot, seed, now)
            }
            RestartMode::Fresh => {
                let identity = Identity::new(slot.name.clone(), slot.addr);
                Node::new(config, identity, seed, now).map(|mut node| {
                    if !slot.seeds.is_empty() {
                        let seeds = slot.seeds.clone();
                        // Only SetTags can be refused.
                        let _ = node.handle_command(now, Command::Join { seeds });
                    }
                    node
                })
            }
        };
        // The configuration and identity were accepted when the node was
        // added, so this cannot fail; if it somehow did, it stays down.
        let Ok(node) = node else { return };
        slot.retired_drops += slot.node.stats().dropped.total();
        slot.node = node;
        slot.status = NodeStatus::Running;
        self.observer.node_restarted(i, now);
        self.after(i);
    }

    fn leave(&mut self, i: NodeId) {
        let now = self.now;
        let slot = &mut self.slots[i];
        if slot.status != NodeStatus::Running {
            return;
        }
        // Only SetTags can be refused.
        let _ = slot.node.handle_command(now, Command::Leave);
        slot.status = NodeStatus::Leaving;
        let linger = slot.config.gossip_interval * LEAVE_GOSSIP_INTERVALS;
        self.observer.node_left(i, now);
        self.after(i);
        enqueue(&mut self.queue, now + linger, Action::Remove(i));
    }

    fn remove(&mut self, i: NodeId) {
        if self.slots[i].status == NodeStatus::Leaving {
            self.halt(i, NodeStatus::Gone);
        }
    }

    fn freeze(&mut self, i: NodeId, epoch: u32) {
        let now = self.now;
        let slot = &mut self.slots[i];
        let Some(spec) = slot.slow.as_ref().filter(|_| slot.slow_epoch == epoch) else {
            return;
        };
        if now >= spec.end {
            return;
        }
        if slot.status.is_running() {
            slot.frozen = true;
            let thaw = (now + draw(&mut self.fault_rng, &spec.freeze)).min(spec.end);
            enqueue(&mut self.queue, thaw, Action::Thaw(i, epoch));
        } else {
            // Not running now: try again after another running period.
            let next = now + draw(&mut self.fault_rng, &spec.run);
            enqueue(&mut self.queue, next, Action::Freeze(i, epoch));
        }
    }

    fn thaw(&mut self, i: NodeId, epoch: u32) {
        let now = self.now;
        let slot = &mut self.slots[i];
        if slot.slow_epoch != epoch {
            return;
        }
        if let Some(spec) = &slot.slow
            && now < spec.end
        {
            let next = now + draw(&mut self.fault_rng, &spec.run);
            enqueue(&mut self.queue, next, Action::Freeze(i, epoch));
        }
        if !slot.frozen {
            return; // crashed or left while frozen
        }
        slot.frozen = false;
        // Timers win the race against the socket.
        slot.node.handle_timeout(now);
        self.after(i);
        while let Some(Inbound {
            from,
            channel,
            bytes,
        }) = self.slots[i].inbox.pop_front()
        {
            let from_addr = self.slots[from].addr;
            self.network.record_delivered(channel);
            self.slots[i]
                .node
                .handle_packet(now, from_addr, channel, &bytes);
            self.after(i);
        }
    }

    /// Route what node `i` sent, observe what it emitted, and make sure it
    /// has a wakeup for its next deadline.
    fn after(&mut self, i: NodeId) {
        let out = Outputs::take(&mut self.slots[i], self.now);
        self.apply(i, out);
    }

    /// The part of [`Sim::after`] that reaches beyond node `i`: route its
    /// transmits, show its events to the observer and the hook, queue its
    /// wakeup.
    fn apply(&mut self, i: NodeId, out: Outputs) {
        let Sim {
            now,
            queue,
            network,
            by_addr,
            by_name,
            observer,
            hook,
            ..
        } = self;
        let now = *now;
        for tx in out.transmits {
            let Some(&to) = by_addr.get(&tx.to) else {
                network.record_unreachable();
                continue;
            };
            if let Fate::Arrives(at) = network.route(now, i, to, tx.channel) {
                enqueue(
                    queue,
                    at,
                    Action::Deliver {
                        from: i,
                        to,
                        channel: tx.channel,
                        bytes: tx.bytes,
                    },
                );
            }
        }
        for event in &out.events {
            if let Event::Member(m) = event
                && let Some(&j) = by_name.get(&m.name)
            {
                observer.member_event(now, i, j, m.kind, m.state, || network.separated(now, i, j));
            }
            if let Some(hook) = hook {
                hook(now, i, event);
            }
        }
        if let Some(deadline) = out.wake {
            enqueue(queue, deadline, Action::Wake(i));
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The simulation's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of nodes added.
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// Node `i`'s protocol state machine (its latest life, after restarts; a
    /// crashed node's state as it was at the crash).
    ///
    /// # Panics
    ///
    /// If `i` is not a node of this simulation.
    pub fn node(&self, i: NodeId) -> &Node {
        self.check(i);
        &self.slots[i].node
    }

    /// Where node `i` is in its life.
    pub fn status(&self, i: NodeId) -> NodeStatus {
        self.check(i);
        self.slots[i].status
    }

    /// Whether node `i` is frozen (a slow node in a frozen period).
    pub fn is_frozen(&self, i: NodeId) -> bool {
        self.check(i);
        self.slots[i].frozen
    }

    /// Node `i`'s name.
    pub fn name(&self, i: NodeId) -> &NodeName {
        self.check(i);
        &self.slots[i].name
    }

    /// Node `i`'s virtual address.
    pub fn addr(&self, i: NodeId) -> SocketAddr {
        self.check(i);
        self.slots[i].addr
    }

    /// The node called `name`.
    pub fn node_named(&self, name: &NodeName) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// The node at `addr`.
    pub fn node_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.by_addr.get(&addr).copied()
    }

    /// Whether node `i` is live: started, not crashed, not left.
    pub fn is_live(&self, i: NodeId) -> bool {
        self.observer.is_live(i)
    }

    /// The live nodes, in id order.
    pub fn live_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.slots.len()).filter(|&i| self.observer.is_live(i))
    }

    /// What `observer` believes about `subject`, as tracked from its events:
    /// `None` if it does not know it (or reaped it), or if they are the same
    /// node.
    pub fn view(&self, observer: NodeId, subject: NodeId) -> Option<MemberState> {
        self.observer.view(observer, subject)
    }

    /// The views and metrics tracked so far.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// What the network did with packets so far.
    pub fn network_stats(&self) -> &NetworkStats {
        self.network.stats()
    }

    /// Packets and bytes node `i` sent, over all its lives.
    pub fn traffic(&self, i: NodeId) -> Traffic {
        self.check(i);
        let s = &self.slots[i];
        Traffic {
            packets_sent: s.packets_sent,
            bytes_sent: s.bytes_sent,
        }
    }

    /// Events waiting in the queue (stale wakeups included).
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }

    /// The metrics so far. Costs O(n × crashes).
    pub fn report(&self) -> SimReport {
        let secs = |d: Duration| d.as_secs_f64();
        let crashes = self
            .observer
            .detections()
            .iter()
            .map(|d| CrashReport {
                node: d.node,
                crashed_at_s: secs(d.crashed_at.since_epoch()),
                detection_s: d.detected_at.map(|at| secs(at - d.crashed_at)),
                restarted: d.restarted_at.is_some(),
            })
            .collect();
        let mut traffic = Traffic::default();
        let mut dropped = 0;
        for s in &self.slots {
            traffic.packets_sent += s.packets_sent;
            traffic.bytes_sent += s.bytes_sent;
            dropped += s.retired_drops + s.node.stats().dropped.total();
        }
        SimReport {
            nodes: self.slots.len(),
            live: self.observer.live_count(),
            elapsed_s: secs(self.now.since_epoch()),
            join_converged_s: self
                .observer
                .join_converged_at()
                .map(|at| secs(at.since_epoch())),
            crashes,
            undetected: self.observer.undetected().len(),
            false_positives: self.observer.false_positives(),
            false_positive_nodes: self.observer.falsely_declared_nodes(),
            false_suspicions: self.observer.false_suspicions(),
            traffic,
            network: self.network.stats().clone(),
            dropped_packets: dropped,
            events_processed: self.events_processed,
            rejected_commands: self.rejected_commands,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_index() {
        assert_eq!(node_addr(0), "127.0.0.1:7946".parse().unwrap());
        assert_eq!(node_addr(255), "127.0.1.0:7946".parse().unwrap());
        assert_eq!(node_addr(70_000), "127.1.17.113:7946".parse().unwrap());
    }

    #[test]
    fn node_seeds_differ_by_node_and_life() {
        assert_ne!(node_seed(1, 0, 0), node_seed(1, 1, 0));
        assert_ne!(node_seed(1, 0, 0), node_seed(1, 0, 1));
        assert_ne!(node_seed(1, 0, 0), node_seed(2, 0, 0));
    }
}
