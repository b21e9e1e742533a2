//! # rumor
//!
//! The tokio runtime of rumor: it drives one [`rumor_proto::Node`] over real
//! sockets. UDP carries probes and gossip; TCP carries stream frames
//! (full-state push-pull, anti-entropy, values too large for a datagram,
//! and the fallback probe).
//!
//! One task owns the node; sockets and the application reach it through
//! channels, so there is no lock around the core. Time is the task's
//! monotonic clock, and wall-clock time feeds the hybrid logical clock.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rumor::{Cluster, RuntimeConfig};
//! use rumor_proto::state::Op;
//!
//! let node = Cluster::start(RuntimeConfig::new("node-a".parse()?, "127.0.0.1:7946".parse()?)).await?;
//! node.join(vec!["127.0.0.1:7947".parse()?]).await?;
//! node.write("greeting", Op::Put { value: b"hello".to_vec(), context: None, kind: None }).await?;
//! println!("{} members", node.members().await?.len());
//! # Ok(()) }
//! ```
//!
//! With [`RuntimeConfig::data_dir`] set, the node keeps its key-value
//! entries, identity, last incarnation and known members in a redb
//! database there (`rumor.redb`). A local write is acknowledged only once
//! it is on disk; after a crash the node restarts from that state at a
//! higher incarnation and rejoins the members it knew by itself. See
//! `docs/persistence.md`.
//!
//! Stream frames travel on one TCP connection each. A connection opens with
//! the sender's advertised address (two bytes of length, then the address as
//! text), so that the receiver attributes the frame to the node that will
//! hear the answer, then carries the frame (four bytes of length, then the
//! frame).
//!
//! With [`Security::Encrypted`], every datagram and stream frame is sealed
//! with ChaCha20-Poly1305 under the keyring's primary key, opened with any
//! installed key, and refused when replayed; keys rotate across the cluster
//! with [`Handle::keys_install`], [`Handle::keys_use`] and
//! [`Handle::keys_remove`] (see the [`security`] module and
//! `docs/security.md`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod driver;
pub mod http;
mod persist;
pub mod security;
mod stream;
pub mod subscription;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumor_proto::state::{Entry, Op, Written};
use rumor_proto::sync::Convergence;
use rumor_proto::{Config, Incarnation, Member, NodeError, NodeName, Priority, Stats, Tags};
use tokio::sync::{mpsc, oneshot, watch};

pub use subscription::Subscription;

pub use security::{
    Encryption, Key, KeyError, KeyOp, KeyStatus, Keyring, KeysReport, Security, TransportStats,
};

use security::rotation::{RESERVED_EVENT_PREFIX, RESERVED_KEY_PREFIX};
use security::stats::Counters;
use subscription::EventHub;

/// Whether `key` is one rumor keeps for itself (under `_rumor/`): such keys
/// are hidden from listings and watches unless asked for by that prefix.
pub fn is_reserved_key(key: &str, asked_prefix: &str) -> bool {
    key.starts_with(RESERVED_KEY_PREFIX) && !asked_prefix.starts_with(RESERVED_KEY_PREFIX)
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The node's unique name.
    pub name: NodeName,
    /// Address to bind UDP and TCP to (port 0: any free port).
    pub bind: SocketAddr,
    /// Address others reach this node at (default: the bound address).
    pub advertise: Option<SocketAddr>,
    /// Protocol settings. `protocol.cluster` is the cluster name checked
    /// on every packet (and bound into every sealed one);
    /// `protocol.transport_overhead` is set by the runtime to what its
    /// envelope adds.
    pub protocol: Config,
    /// Seed of the node's random choices (default: drawn from the OS).
    pub seed: Option<u64>,
    /// Tags the node publishes about itself (role, zone, version...).
    pub tags: Tags,
    /// Encryption and authentication of every packet, or plaintext.
    pub security: Security,
    /// Directory of the node's durable state (`None`: memory only, and a
    /// restart starts afresh as a new replica). A directory holding state
    /// restores the node from it.
    pub data_dir: Option<PathBuf>,
}

impl RuntimeConfig {
    /// A node called `name` bound to `bind`, on the `lan` profile, in
    /// **plaintext**: its packets are neither encrypted nor authenticated.
    /// That suits tests and embedding on a closed network; anything else
    /// should use [`RuntimeConfig::encrypted`] or set `security`.
    pub fn new(name: NodeName, bind: SocketAddr) -> Self {
        RuntimeConfig {
            name,
            bind,
            advertise: None,
            protocol: Config::lan(),
            seed: None,
            tags: Tags::new(),
            security: Security::Plaintext,
            data_dir: None,
        }
    }

    /// A node like [`RuntimeConfig::new`] whose packets are sealed under
    /// `keyring` (kept in memory; set [`Encryption::keyring_file`] to keep
    /// rotations across restarts).
    pub fn encrypted(name: NodeName, bind: SocketAddr, keyring: Keyring) -> Self {
        RuntimeConfig {
            security: Security::Encrypted(Encryption::new(keyring)),
            ..RuntimeConfig::new(name, bind)
        }
    }
}

/// A node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be bound.
    #[error(
        "cannot bind {what} to {addr} (is another process using the port? choose another with --bind)"
    )]
    Bind {
        /// UDP or TCP.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The protocol refused the configuration.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The keyring could not be read or written.
    #[error(transparent)]
    Keyring(#[from] KeyError),
    /// A replay window too short for any packet to arrive within it.
    #[error(
        "replay_window of {0:?} is too short: packets spend longer than that on the way; \
         use at least one second (the default is 60 s)"
    )]
    ReplayWindow(Duration),
    /// Another process (or another node in this one) has the data
    /// directory open.
    #[error(
        "data directory {path} is in use: another rumor node holds its database lock; stop that node, or give this one a data directory of its own"
    )]
    DataDirInUse {
        /// The data directory.
        path: PathBuf,
    },
    /// The data directory holds the state of a node with another name.
    #[error(
        "data directory {path} holds the state of node {stored}, not {configured}; start it with the name {stored}, or give {configured} a data directory of its own"
    )]
    NameMismatch {
        /// The data directory.
        path: PathBuf,
        /// The name in the data directory.
        stored: NodeName,
        /// The name configured.
        configured: NodeName,
    },
    /// The database in the data directory is damaged or unreadable.
    #[error(
        "the state in {path} is damaged or unreadable ({detail}); move the data directory aside and start again: the node comes back empty, as a new replica, rejoins through --join and gets the cluster's keys back by anti-entropy (writes only this node held are lost)"
    )]
    DataCorrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The database was written in a layout this build does not read.
    #[error(
        "the state in {path} is in format {found}, and this build of rumor reads format {supported}; run the rumor version that wrote it, or move the data directory aside to start afresh"
    )]
    DataFormat {
        /// The database file.
        path: PathBuf,
        /// The format found.
        found: u32,
        /// The format this build reads.
        supported: u32,
    },
    /// The data directory cannot be created, read or written.
    #[error(
        "cannot use data directory {path} (check that it is a writable directory on a disk with room)"
    )]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A request to a running node failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The protocol refused the request.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A keyring operation was refused; the keyring is unchanged.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// An event name or store key that rumor keeps for itself.
    #[error(
        "{0:?} is reserved for rumor itself (event names starting with \"_rumor.\", keys \
         starting with \"_rumor/\"): choose another name"
    )]
    Reserved(String),
    /// The write was applied in memory but could not be made durable, and
    /// the node stopped rather than run on with state it could forget.
    #[error(
        "the write could not be made durable in {path}: {detail}; the node has stopped: free disk space or fix the disk, then restart it"
    )]
    NotDurable {
        /// The database file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

pub(crate) type Reply<T> = oneshot::Sender<T>;

/// What the application asks of the driver task.
pub(crate) enum Request {
    Join(Vec<SocketAddr>, Reply<Result<(), NodeError>>),
    Leave(Reply<()>),
    Members(Reply<Vec<Member>>),
    Write(String, Op, Reply<Result<Written, Error>>),
    Get(String, Reply<Option<Entry>>),
    List(String, Reply<Vec<(String, Entry)>>),
    SetTags(Tags, Reply<Result<(), NodeError>>),
    Info(Reply<NodeInfo>),
    Broadcast(String, Vec<u8>, Priority, Reply<Result<(), NodeError>>),
    Convergence(Reply<Convergence>),
    /// A keyring operation (`None`: only list).
    Keys(Option<KeyOp>, Reply<Result<KeysReport, KeyError>>),
    Shutdown(Reply<()>),
}

/// What a node says about itself, from [`Handle::info`].
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The node's name.
    pub name: NodeName,
    /// The address it advertises.
    pub addr: SocketAddr,
    /// Its current incarnation.
    pub incarnation: Incarnation,
    /// Its tags.
    pub tags: Tags,
    /// Lifeguard local health: 0 is healthy; higher means this node has
    /// reason to doubt its own timeliness and slows its failure detector.
    pub health_score: u32,
    /// Members by state, this node included: alive, suspect, dead, left.
    pub members: MemberCounts,
    /// Keys held, tombstones included.
    pub keys: u64,
    /// Tombstones held.
    pub tombstones: u64,
    /// Bytes of keys and values held.
    pub kv_bytes: u64,
    /// Rumors waiting to be spread (user events and key writes).
    pub queued_broadcasts: usize,
    /// Traffic and protocol counters since start.
    pub stats: Stats,
}

/// Members by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Alive members.
    pub alive: usize,
    /// Suspected members.
    pub suspect: usize,
    /// Members declared failed (not yet reaped).
    pub dead: usize,
    /// Members that left (not yet reaped).
    pub left: usize,
}

/// Starts nodes.
#[derive(Debug)]
pub struct Cluster;

impl Cluster {
    /// Bind the sockets and start a node; it is alone until it joins.
    pub async fn start(config: RuntimeConfig) -> Result<Handle, StartError> {
        driver::start(config).await
    }
}

/// A running node. Cheap to clone; every clone talks to the same node.
#[derive(Clone, Debug)]
pub struct Handle {
    requests: mpsc::Sender<Request>,
    events: EventHub,
    addr: SocketAddr,
    protocol: std::sync::Arc<Config>,
    /// Closed when the driver task ends.
    running: watch::Receiver<()>,
    counters: Arc<Counters>,
}

impl Handle {
    /// The address the node advertises.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The protocol settings the node runs with.
    pub fn protocol(&self) -> &Config {
        &self.protocol
    }

    /// Completes once the node has stopped.
    pub async fn stopped(&self) {
        let mut running = self.running.clone();
        while running.changed().await.is_ok() {}
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Join a cluster through these seed addresses.
    pub async fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), Error> {
        Ok(self.ask(|r| Request::Join(seeds, r)).await??)
    }

    /// Leave the cluster gracefully (the node keeps running until shut down).
    pub async fn leave(&self) -> Result<(), Error> {
        self.ask(Request::Leave).await
    }

    /// Every member the node knows, itself included.
    pub async fn members(&self) -> Result<Vec<Member>, Error> {
        self.ask(Request::Members).await
    }

    /// Write to the replicated store; acknowledged once applied here and,
    /// with a data directory, once it is on disk there. Keys starting with
    /// `_rumor/` are reserved.
    pub async fn write(&self, key: &str, op: Op) -> Result<Written, Error> {
        if key.starts_with(RESERVED_KEY_PREFIX) {
            return Err(Error::Reserved(key.to_string()));
        }
        self.ask(|r| Request::Write(key.to_string(), op, r)).await?
    }

    /// The state of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        self.ask(|r| Request::Get(key.to_string(), r)).await
    }

    /// Every key whose name starts with `prefix`, with its state, in key
    /// order; deleted keys, and rumor's own keys unless `prefix` asks for
    /// them (see [`is_reserved_key`]), are left out.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, Error> {
        self.ask(|r| Request::List(prefix.to_string(), r)).await
    }

    /// Replace this node's tags and announce them to the cluster.
    pub async fn set_tags(&self, tags: Tags) -> Result<(), Error> {
        Ok(self.ask(|r| Request::SetTags(tags, r)).await??)
    }

    /// What the node says about itself: identity, health, counters.
    pub async fn info(&self) -> Result<NodeInfo, Error> {
        self.ask(Request::Info).await
    }

    /// Broadcast a user event to every live node. Names starting with
    /// `_rumor.` are reserved.
    pub async fn broadcast(
        &self,
        name: &str,
        payload: Vec<u8>,
        priority: Priority,
    ) -> Result<(), Error> {
        if name.starts_with(RESERVED_EVENT_PREFIX) {
            return Err(Error::Reserved(name.to_string()));
        }
        Ok(self
            .ask(|r| Request::Broadcast(name.to_string(), payload, priority, r))
            .await??)
    }

    /// How far the cluster is from agreement, as this node sees it.
    pub async fn convergence(&self) -> Result<Convergence, Error> {
        self.ask(Request::Convergence).await
    }

    async fn keys(&self, op: Option<KeyOp>) -> Result<KeysReport, Error> {
        Ok(self.ask(|r| Request::Keys(op, r)).await??)
    }

    /// Install `key` (base64 of 32 bytes) on every node: applied here, then
    /// spread to the cluster. Installed keys open packets; the primary
    /// still seals. Wait until [`KeysReport::key`] shows it installed on
    /// every member before [`Handle::keys_use`].
    pub async fn keys_install(&self, key: &str) -> Result<KeysReport, Error> {
        self.keys(Some(KeyOp::Install(key.parse()?))).await
    }

    /// Make the installed `key` primary on every node: from then on it
    /// seals what they send. Refused when the key is not installed here.
    pub async fn keys_use(&self, key: &str) -> Result<KeysReport, Error> {
        self.keys(Some(KeyOp::Use(key.parse()?))).await
    }

    /// Remove `key` from every node. Refused for the primary key. Wait until
    /// every member uses the new primary before removing the old one.
    pub async fn keys_remove(&self, key: &str) -> Result<KeysReport, Error> {
        self.keys(Some(KeyOp::Remove(key.parse()?))).await
    }

    /// The cluster's keys as this node sees them: for each fingerprint, how
    /// many live members have it installed and use it as primary.
    pub async fn keys_list(&self) -> Result<KeysReport, Error> {
        self.keys(None).await
    }

    /// What the transport sealed, opened and refused since the node started.
    pub fn transport_stats(&self) -> TransportStats {
        self.counters.snapshot()
    }

    /// Every event the node emits from now on (membership changes, user
    /// events, key changes). A subscriber that falls
    /// [`subscription::SUBSCRIBER_BUFFER`] events behind misses the newest
    /// and is told how many.
    pub fn subscribe(&self) -> Subscription {
        self.events.subscribe()
    }

    /// Stop the node (without announcing a leave: call [`Handle::leave`]
    /// first and give it a few gossip intervals).
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(Request::Shutdown).await
    }
}

/// Longest wait for a TCP connection to open or a frame to be written.
pub(crate) const STREAM_TIMEOUT: Duration = Duration::from_secs(5);
