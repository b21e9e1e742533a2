//! The task that owns the node: it feeds it packets, frames, requests and
//! timeouts, and sends what it emits.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumor_proto::state::Written;
use rumor_proto::{
    Channel, Command, Event, Identity, Instant, MemberState, Node, NodeError, Priority,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::persist::{self, Batch, Pending, PersistError, Store};
use crate::security::KeyError;
use crate::security::gate::{Gate, Inbound};
use crate::security::rotation::{KEYS_EVENT, KeyOp, KeyringRecord, KeysReport};
use crate::security::stats::Counters;
use crate::stream::Frame;
use crate::subscription::EventHub;
use crate::{
    Error, Handle, MemberCounts, NodeInfo, Reply, Request, RuntimeConfig, Security, StartError,
    stream,
};

/// Shortest replay window accepted.
const MIN_REPLAY_WINDOW: Duration = Duration::from_secs(1);
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

pub(crate) async fn start(mut config: RuntimeConfig) -> Result<Handle, StartError> {
    if let Security::Encrypted(e) = &config.security
        && e.replay_window < MIN_REPLAY_WINDOW
    {
        return Err(StartError::ReplayWindow(e.replay_window));
    }
    let counters = Arc::new(Counters::default());
    let gate = Gate::new(
        &config.protocol.cluster,
        &config.security,
        Arc::clone(&counters),
    )?;
    config.protocol.transport_overhead = gate.overhead();
    let (udp, tcp, bound) = bind(config.bind).await?;
    let advertise = config.advertise.unwrap_or(bound);
    let epoch = tokio::time::Instant::now();
    let seed = config.seed.unwrap_or_else(rand::random);
    let (mut node, persist) = match &config.data_dir {
        None => {
            let mut identity = Identity::new(config.name.clone(), advertise);
            identity.tags = config.tags.clone();
            let node = Node::new(config.protocol.clone(), identity, seed, Instant::ZERO)?;
            (node, None)
        }
        Some(dir) => {
            let (node, persist) = open_persisted(&config, dir, advertise, seed).await?;
            (node, Some(persist))
        }
    };
    if node.local().tags() != &config.tags {
        // Restored with the tags of its last run: announce the configured ones.
        node.handle_command(Instant::ZERO, Command::SetTags(config.tags.clone()))?;
    }
    node.set_wall_clock(Instant::ZERO, unix_ms());
    let (requests, requests_rx) = mpsc::channel(256);
    let events = EventHub::default();
    let (frames_tx, frames_rx) = mpsc::channel(1024);
    let (running_tx, running) = watch::channel(());
    tokio::spawn(stream::accept(
        tcp,
        config.protocol.max_stream_frame,
        frames_tx,
        Arc::clone(&counters),
    ));
    match gate.keyring() {
        Some(ring) => tracing::info!(
            node = %config.name, %bound, %advertise, cluster = %config.protocol.cluster,
            primary_key = %ring.primary().fingerprint(), keys = ring.keys().len(),
            "rumor node started; packets are encrypted"
        ),
        None => tracing::warn!(
            node = %config.name, %bound, %advertise, cluster = %config.protocol.cluster,
            "rumor node started in plaintext mode: packets are neither encrypted nor \
             authenticated; give it a key unless the network is closed"
        ),
    }
    let mut driver = Driver {
        node,
        udp: Arc::new(udp),
        advertise,
        epoch,
        events: events.clone(),
        _running: running_tx,
        gate,
        persist,
    };
    // The node's identity and replica are on disk before it says anything.
    if let Some(p) = &mut driver.persist {
        let batch = p.pending.take(&driver.node, tokio::time::Instant::now());
        if let Err(e) = commit(&p.store, batch).await {
            return Err(start_error(p.store.path(), e));
        }
    }
    driver.record_keyring();
    tokio::spawn(driver.run(requests_rx, frames_rx));
    Ok(Handle {
        requests,
        events,
        addr: advertise,
        protocol: Arc::new(config.protocol),
        running,
        counters,
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
        let mut identity = Identity::new(config.name.clone(), advertise);
        identity.tags = config.tags.clone();
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

/// Tries at binding a free port (port 0) before giving up: the port the
/// system picks for UDP may already be taken for TCP.
const BIND_ATTEMPTS: usize = 16;

/// Bind UDP and TCP to the same address; with port 0, to the same free port.
async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), StartError> {
    let error = |what, addr, source| StartError::Bind { what, addr, source };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| error("UDP", addr, e))?;
        let bound = udp.local_addr().map_err(|e| error("UDP", addr, e))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e)
                if addr.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < BIND_ATTEMPTS => {}
            Err(e) => return Err(error("TCP", bound, e)),
        }
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
    events: EventHub,
    gate: Gate,
    /// Dropped with the driver, which tells [`Handle::stopped`].
    _running: watch::Sender<()>,
    persist: Option<Persist>,
}

impl Drop for Driver {
    /// However the driver ends, its subscriptions end too.
    fn drop(&mut self) {
        self.events.close();
    }
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut frames: mpsc::Receiver<Frame>,
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
                    Ok((n, from)) => self.inbound(from, Channel::Datagram, &buf[..n]).await,
                    Err(e) => tracing::debug!(error = %e, "UDP receive failed"),
                },
                Some(frame) = frames.recv() => {
                    // The frame's memory reservation is held until it is handled.
                    self.inbound(frame.from, Channel::Stream, &frame.bytes).await;
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

    /// A packet arrived: through the gate, then to the core, or a notice
    /// back to the sender.
    async fn inbound(&mut self, from: SocketAddr, channel: Channel, bytes: &[u8]) {
        let wall = unix_ms();
        match self
            .gate
            .inbound(from, channel, bytes, std::time::Instant::now(), wall)
        {
            Inbound::Deliver(frame) => {
                let now = self.now();
                self.node.handle_packet(now, from, channel, &frame);
            }
            Inbound::Drop => {}
            Inbound::Notify(notice) => {
                if let Err(e) = self.udp.send_to(&notice, from).await {
                    tracing::debug!(peer = %from, error = %e, "notice not sent");
                }
            }
        }
    }

    /// Apply a keyring operation asked of this node, spread it, and report.
    fn keys(&mut self, op: Option<KeyOp>) -> Result<KeysReport, KeyError> {
        if let Some(op) = op {
            if self.gate.apply(&op, false)? {
                self.record_keyring();
            }
            tracing::info!(
                op = op.verb(), key = %op.key().fingerprint(),
                "keyring operation applied here; spreading it to the cluster"
            );
            let command = Command::Broadcast {
                name: KEYS_EVENT.to_string(),
                payload: op.encode(),
                priority: Priority::High,
            };
            if let Err(e) = self.node.handle_command(self.now(), command) {
                tracing::warn!(error = %e, "could not spread a keyring change; run it on every node");
            }
        }
        let ring = self.gate.keyring().ok_or(KeyError::NoEncryption)?;
        let node = &self.node;
        Ok(KeysReport::build(
            &node.local().name,
            ring,
            node.members(),
            |name| {
                let entry = node.get(&KeyringRecord::store_key(name))?;
                entry.values().iter().find_map(|v| KeyringRecord::parse(v))
            },
        ))
    }

    /// A keyring operation from another node, delivered as a reserved event.
    fn peer_keys(&mut self, origin: &rumor_proto::NodeName, payload: &[u8]) {
        if *origin == self.node.local().name {
            return;
        }
        let Some(op) = KeyOp::decode(payload) else {
            tracing::warn!(%origin, "ignored a malformed keyring operation");
            return;
        };
        match self.gate.apply(&op, true) {
            Ok(true) => {
                tracing::info!(
                    %origin, op = op.verb(), key = %op.key().fingerprint(),
                    "keyring changed by an operation from another node"
                );
                self.record_keyring();
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(
                %origin, op = op.verb(), key = %op.key().fingerprint(), error = %e,
                "could not apply a keyring operation from another node; check this node's \
                 keyring (`rumor keys list`) and repeat the operation"
            ),
        }
    }

    /// Record this node's keyring fingerprints in the replicated store.
    fn record_keyring(&mut self) {
        let Some(ring) = self.gate.keyring() else {
            return;
        };
        let record = KeyringRecord::of(ring);
        let key = KeyringRecord::store_key(&self.node.local().name);
        let now = self.now();
        if let Err(e) = self.node.write(now, &key, record.write()) {
            tracing::warn!(error = %e, "could not record this node's keyring fingerprints");
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
            Request::List(prefix, reply) => {
                let keys = self.node.kv().keys_with_prefix(&prefix);
                let _ = reply.send(
                    keys.into_iter()
                        .filter(|(k, _)| !crate::is_reserved_key(k, &prefix))
                        .map(|(k, e)| (k.to_string(), e.clone()))
                        .collect(),
                );
            }
            Request::SetTags(tags, reply) => {
                let _ = reply.send(self.node.handle_command(now, Command::SetTags(tags)));
            }
            Request::Info(reply) => {
                let _ = reply.send(self.info());
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
            Request::Keys(op, reply) => {
                let _ = reply.send(self.keys(op));
            }
            Request::Shutdown(reply) => return Some(reply),
        }
        None
    }

    fn info(&self) -> NodeInfo {
        let local = self.node.local();
        let mut members = MemberCounts::default();
        for m in self.node.members() {
            match m.state {
                MemberState::Alive => members.alive += 1,
                MemberState::Suspect => members.suspect += 1,
                MemberState::Dead => members.dead += 1,
                MemberState::Left => members.left += 1,
            }
        }
        let kv = self.node.kv();
        NodeInfo {
            name: local.name.clone(),
            addr: local.socket_addr(),
            incarnation: local.incarnation,
            tags: local.tags().clone(),
            health_score: self.node.health_score(),
            members,
            keys: kv.len() as u64,
            tombstones: kv.tombstones() as u64,
            kv_bytes: kv.bytes() as u64,
            queued_broadcasts: self.node.queued_broadcasts(),
            stats: self.node.stats().clone(),
        }
    }

    /// End a loop iteration: apply keyring operations from other nodes,
    /// commit what changed (and wait for the disk if a local write or a new
    /// incarnation is in it), then answer the writes, send what the node
    /// wants sent and publish its events. Returns `false` when the commit
    /// failed and the node must stop.
    async fn settle(&mut self, acks: &mut Vec<Ack>) -> bool {
        let mut events = Vec::new();
        loop {
            let mut more = false;
            while let Some(e) = self.node.poll_event() {
                match e {
                    Event::UserEvent(u) if u.name == KEYS_EVENT => {
                        // Applying may write this node's record: more events.
                        self.peer_keys(&u.origin, &u.payload);
                        more = true;
                    }
                    e => events.push(e),
                }
            }
            if !more {
                break;
            }
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
        self.events.publish(events);
        true
    }

    /// Seal and send what the node wants sent.
    async fn send(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            let Some(bytes) = self.gate.seal(t.channel, t.bytes, unix_ms()) else {
                continue;
            };
            match t.channel {
                Channel::Datagram => {
                    if let Err(e) = self.udp.send_to(&bytes, t.to).await {
                        tracing::debug!(peer = %t.to, error = %e, "UDP send failed");
                    }
                }
                Channel::Stream => {
                    tokio::spawn(stream::send(self.advertise, t.to, bytes));
                }
            }
        }
    }
}
