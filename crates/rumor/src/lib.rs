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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod driver;
mod persist;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rumor_proto::state::{Entry, Op, Written};
use rumor_proto::sync::Convergence;
use rumor_proto::{Config, Event, Member, NodeError, NodeName, Priority};
use tokio::sync::{broadcast, mpsc, oneshot};

/// How to start a node.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The node's unique name.
    pub name: NodeName,
    /// Address to bind UDP and TCP to (port 0: any free port).
    pub bind: SocketAddr,
    /// Address others reach this node at (default: the bound address).
    pub advertise: Option<SocketAddr>,
    /// Protocol settings.
    pub protocol: Config,
    /// Seed of the node's random choices (default: drawn from the OS).
    pub seed: Option<u64>,
    /// Directory of the node's durable state (`None`: memory only, and a
    /// restart starts afresh as a new replica). A directory holding state
    /// restores the node from it.
    pub data_dir: Option<PathBuf>,
}

impl RuntimeConfig {
    /// A node called `name` bound to `bind`, on the `lan` profile.
    pub fn new(name: NodeName, bind: SocketAddr) -> Self {
        RuntimeConfig {
            name,
            bind,
            advertise: None,
            protocol: Config::lan(),
            seed: None,
            data_dir: None,
        }
    }
}

/// A node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be bound.
    #[error("cannot bind {what} to {addr}: {source}; is another process using the port?")]
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
        "cannot use data directory {path}: {source}; check that it is a writable directory on a disk with room"
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
    Broadcast(String, Vec<u8>, Priority, Reply<Result<(), NodeError>>),
    Convergence(Reply<Convergence>),
    Shutdown(Reply<()>),
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
    events: broadcast::Sender<Event>,
    addr: SocketAddr,
}

impl Handle {
    /// The address the node advertises.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
    /// with a data directory, once it is on disk there.
    pub async fn write(&self, key: &str, op: Op) -> Result<Written, Error> {
        self.ask(|r| Request::Write(key.to_string(), op, r)).await?
    }

    /// The state of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        self.ask(|r| Request::Get(key.to_string(), r)).await
    }

    /// Broadcast a user event to every live node.
    pub async fn broadcast(
        &self,
        name: &str,
        payload: Vec<u8>,
        priority: Priority,
    ) -> Result<(), Error> {
        Ok(self
            .ask(|r| Request::Broadcast(name.to_string(), payload, priority, r))
            .await??)
    }

    /// How far the cluster is from agreement, as this node sees it.
    pub async fn convergence(&self) -> Result<Convergence, Error> {
        self.ask(Request::Convergence).await
    }

    /// Every event the node emits from now on (membership changes, user
    /// events, key changes). A subscriber that falls behind loses the
    /// oldest events and is told how many.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
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
