//! The task that owns the node: it feeds it packets, frames, requests and
//! timeouts, and sends what it emits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumor_proto::state::Written;
use rumor_proto::{Channel, Command, Identity, Instant, Node, NodeError};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc};

use crate::persist::{self, Batch, Pending, PersistError, Store};
use crate::{Error, Handle, Reply, Request, RuntimeConfig, StartError, stream};

/// Events kept for slow subscribers.
const EVENT_BUFFER: usize = 4096;
/// Most requests handled in one loop iteration (their writes share one
/// transaction).
const MAX_REQUESTS_PER_TURN: usize = 256;

/// The data directory's database and what waits to be written to it.
struct Persist {
    store: Arc<Store>,
    pending: Pending,
}

/// A write applied to the node, whose answer waits for the commit.
type Ack = (Reply<Result<Written, Error>>, Result<Written, NodeError>);

pub(crate) async fn start(config: RuntimeConfig) -> Result<Handle, StartError> {
    let udp = UdpSocket::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            what: "UDP",
            addr: config.bind,
            source,
        })?;
    let bound = udp.local_addr().map_err(|source| StartError::Bind {
        what: "UDP",
        addr: config.bind,
        source,
    })?;
    let tcp = TcpListener::bind(bound)
        .await
        .map_err(|source| StartError::Bind {
            what: "TCP",
            addr: bound,
            source,
        })?;
    let advertise = config.advertise.unwrap_or(bound);
    let epoch = tokio::time::Instant::now();
    let seed = config.seed.unwrap_or_else(rand::random);
    let (mut node, persist) = match &config.data_dir {
        None => {
            let identity = Identity::new(config.name.clone(), advertise);
            let node = Node::new(config.protocol.clone(), identity, seed, Instant::ZERO)?;
            (node, None)
        }
        Some(dir) => {
            let (node, persist) = open_persisted(&config, dir, advertise, seed).await?;
            (node, Some(persist))
        }
    };
    node.set_wall_clock(Instant::ZERO, unix_ms());
    let (requests, requests_rx) = mpsc::channel(256);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (frames_tx, frames_rx) = mpsc::channel(1024);
    tokio::spawn(stream::accept(
        tcp,
        config.protocol.max_stream_frame,
        frames_tx,
    ));
    tracing::info!(node = %config.name, %bound, %advertise, "rumor node started");
    let mut driver = Driver {
        node,
        udp: Arc::new(udp),
        advertise,
        epoch,
        events: events.clone(),
        persist,
    };
    // The node's identity and replica are on disk before it says anything.
    if let Some(p) = &mut driver.persist {
        let batch = p.pending.take(&driver.node, tokio::time::Instant::now());
        if let Err(e) = commit(&p.store, batch).await {
            return Err(start_error(p.store.path(), e));
        }
    }
    tokio::spawn(driver.run(requests_rx, frames_rx));
    Ok(Handle {
        requests,
        events,
        addr: advertise,
    })
}

/// Open the data directory and make the node from what it holds (a new
/// node if it holds nothing yet).
async fn open_persisted(
    config: &RuntimeConfig,
    dir: &Path,
    advertise: SocketAddr,
    seed: u64,
) -> Result<(Node, Persist), StartError> {
    let file = dir.join(persist::FILE);
    let opening = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Store::open(&dir))
    };
    let (store, saved) = match opening.await {
        Ok(Ok(opened)) => opened,
        Ok(Err(PersistError::Io(source))) => {
            return Err(StartError::DataDir {
                path: dir.to_path_buf(),
                source,
            });
        }
        Ok(Err(PersistError::InUse)) => {
            return Err(StartError::DataDirInUse {
                path: dir.to_path_buf(),
            });
        }
        Ok(Err(e)) => return Err(start_error(&file, e)),
        Err(_) => {
            return Err(StartError::DataCorrupt {
                path: file,
                detail: "reading the database failed unexpectedly".into(),
            });
        }
    };
    let Some(saved) = saved else {
        tracing::info!(node = %config.name, path = %store.path().display(), "new data directory");
        let identity = Identity::new(config.name.clone(), advertise);
        let node = Node::new(config.protocol.clone(), identity, seed, Instant::ZERO)?;
        let persist = Persist {
            store: Arc::new(store),
            pending: Pending::new(None),
        };
        return Ok((node, persist));
    };
    if saved.record.name != config.name {
        return Err(StartError::NameMismatch {
            path: dir.to_path_buf(),
            stored: saved.record.name,
            configured: config.name.clone(),
        });
    }
    let record = saved.record.clone();
    let (keys, members) = (saved.entries.len(), saved.members.len());
    let snapshot = saved.into_snapshot(advertise);
    let node = Node::restore(config.protocol.clone(), snapshot, seed, Instant::ZERO)?;
    tracing::info!(
        node = %config.name, path = %store.path().display(), keys, known_members = members,
        seeds = record.seeds.len(), incarnation = node.local().incarnation,
        "restored from the data directory; rejoining the members it knew"
    );
    if node.kv().len() < keys {
        tracing::warn!(
            node = %config.name, persisted = keys, restored = node.kv().len(),
            "some persisted keys were not restored: they break the store's limits (state.max_keys, state.max_bytes, state.max_value_bytes); raise the limits to get them back"
        );
    }
    let persist = Persist {
        store: Arc::new(store),
        pending: Pending::new(Some(record)),
    };
    Ok((node, persist))
}

/// The start error for a database that failed at `path`.
fn start_error(path: &Path, e: PersistError) -> StartError {
    match e {
        PersistError::InUse => StartError::DataDirInUse {
            path: path.parent().unwrap_or(path).to_path_buf(),
        },
        PersistError::Io(source) => StartError::DataDir {
            path: path.parent().unwrap_or(path).to_path_buf(),
            source,
        },
        PersistError::Format { found, supported } => StartError::DataFormat {
            path: path.to_path_buf(),
            found,
            supported,
        },
        PersistError::Corrupt(detail) => StartError::DataCorrupt {
            path: path.to_path_buf(),
            detail,
        },
    }
}

/// Commit `batch` (if any) on a blocking thread.
async fn commit(store: &Arc<Store>, batch: Option<Batch>) -> Result<(), PersistError> {
    let Some(batch) = batch else {
        return Ok(());
    };
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || store.commit(batch)).await {
        Ok(result) => result,
        Err(e) => Err(PersistError::Corrupt(format!("the commit failed: {e}"))),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Driver {
    node: Node,
    udp: Arc<UdpSocket>,
    advertise: SocketAddr,
    epoch: tokio::time::Instant,
    events: broadcast::Sender<rumor_proto::Event>,
    persist: Option<Persist>,
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut frames: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    ) {
        let mut buf = vec![0u8; rumor_proto::config::MAX_DATAGRAM];
        let udp = Arc::clone(&self.udp);
        let mut acks: Vec<Ack> = Vec::new();
        // What restoring queued (the rejoin) goes out at once.
        if !self.settle(&mut acks).await {
            return;
        }
        loop {
            let deadline = self
                .node
                .poll_timeout()
                .map(|t| self.epoch + Duration::from_nanos(t.as_nanos()));
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let persist_due = self.persist.as_ref().and_then(|p| p.pending.due());
            let persist_wake = async move {
                match persist_due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let mut stop = None;
            tokio::select! {
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let now = self.now();
                        self.node.handle_packet(now, from, Channel::Datagram, &buf[..n]);
                    }
                    Err(e) => tracing::debug!(error = %e, "UDP receive failed"),
                },
                Some((from, frame)) = frames.recv() => {
                    let now = self.now();
                    self.node.handle_packet(now, from, Channel::Stream, &frame);
                }
                req = requests.recv() => match req {
                    None => return,
                    Some(r) => {
                        stop = self.request(r, &mut acks);
                        // Writes queued meanwhile share this turn's commit.
                        for _ in 1..MAX_REQUESTS_PER_TURN {
                            if stop.is_some() {
                                break;
                            }
                            match requests.try_recv() {
                                Ok(r) => stop = self.request(r, &mut acks),
                                Err(_) => break,
                            }
                        }
                    }
                },
                () = sleep => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
                () = persist_wake => {}
            }
            if !self.settle(&mut acks).await {
                return;
            }
            if let Some(reply) = stop {
                // Release the data directory before saying it is stopped.
                drop(self.persist.take());
                let _ = reply.send(());
                tracing::info!(addr = %self.advertise, "rumor node stopped");
                return;
            }
        }
    }

    /// Handle one request; a write's answer goes to `acks`. Returns the
    /// reply of a shutdown.
    fn request(&mut self, r: Request, acks: &mut Vec<Ack>) -> Option<Reply<()>> {
        let now = self.now();
        match r {
            Request::Join(seeds, reply) => {
                let _ = reply.send(self.node.handle_command(now, Command::Join { seeds }));
            }
            Request::Leave(reply) => {
                let _ = self.node.handle_command(now, Command::Leave);
                let _ = reply.send(());
            }
            Request::Members(reply) => {
                let _ = reply.send(self.node.members().cloned().collect());
            }
            Request::Write(key, op, reply) => {
                let result = self.node.write(now, &key, op);
                acks.push((reply, result));
            }
            Request::Get(key, reply) => {
                let _ = reply.send(self.node.get(&key).cloned());
            }
            Request::Broadcast(name, payload, priority, reply) => {
                let command = Command::Broadcast {
                    name,
                    payload,
                    priority,
                };
                let _ = reply.send(self.node.handle_command(now, command));
            }
            Request::Convergence(reply) => {
                let _ = reply.send(self.node.convergence());
            }
            Request::Shutdown(reply) => return Some(reply),
        }
        None
    }

    /// End a loop iteration: commit what changed (and wait for the disk if
    /// a local write or a new incarnation is in it), then answer the
    /// writes, send what the node wants sent and publish its events.
    /// Returns `false` when the commit failed and the node must stop.
    async fn settle(&mut self, acks: &mut Vec<Ack>) -> bool {
        let mut events = Vec::new();
        while let Some(e) = self.node.poll_event() {
            events.push(e);
        }
        if let Some(p) = &mut self.persist {
            for e in &events {
                p.pending.note(e);
            }
            let batch = p.pending.take(&self.node, tokio::time::Instant::now());
            if let Err(e) = commit(&p.store, batch).await {
                let path = p.store.path().to_path_buf();
                tracing::error!(
                    path = %path.display(), error = %e,
                    "cannot write the data directory; the node stops so as not to run on with state it could forget: fix the disk, then restart it"
                );
                // Nothing that carries the lost changes may leave.
                while self.node.poll_transmit().is_some() {}
                for (reply, _) in acks.drain(..) {
                    let _ = reply.send(Err(Error::NotDurable {
                        path: path.clone(),
                        detail: e.to_string(),
                    }));
                }
                return false;
            }
        }
        for (reply, result) in acks.drain(..) {
            let _ = reply.send(result.map_err(Error::from));
        }
        self.send().await;
        for e in events {
            // No subscriber is not an error.
            let _ = self.events.send(e);
        }
        true
    }

    /// Send what the node wants sent.
    async fn send(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            match t.channel {
                Channel::Datagram => {
                    if let Err(e) = self.udp.send_to(&t.bytes, t.to).await {
                        tracing::debug!(peer = %t.to, error = %e, "UDP send failed");
                    }
                }
                Channel::Stream => {
                    tokio::spawn(stream::send(self.advertise, t.to, t.bytes));
                }
            }
        }
    }
}
