//! The task that owns the node: it feeds it packets, frames, requests and
//! timeouts, and sends what it emits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumor_proto::{Channel, Command, Event, Identity, Instant, MemberState, Node, Priority};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, watch};

use crate::security::KeyError;
use crate::security::gate::{Gate, Inbound};
use crate::security::rotation::{KEYS_EVENT, KeyOp, KeyringRecord, KeysReport};
use crate::security::stats::Counters;
use crate::stream::Frame;
use crate::{Handle, MemberCounts, NodeInfo, Request, RuntimeConfig, Security, StartError, stream};

/// Events kept for slow subscribers.
const EVENT_BUFFER: usize = 4096;
/// Shortest replay window accepted.
const MIN_REPLAY_WINDOW: Duration = Duration::from_secs(1);

pub(crate) async fn start(mut config: RuntimeConfig) -> Result<Handle, StartError> {
    if let Security::Encrypted(e) = &config.security {
        if e.replay_window < MIN_REPLAY_WINDOW {
            return Err(StartError::ReplayWindow(e.replay_window));
        }
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
    let mut identity = Identity::new(config.name.clone(), advertise);
    identity.tags = config.tags.clone();
    let mut node = Node::new(config.protocol.clone(), identity, seed, Instant::ZERO)?;
    node.set_wall_clock(Instant::ZERO, unix_ms());
    let (requests, requests_rx) = mpsc::channel(256);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
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
    };
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
    events: broadcast::Sender<Event>,
    gate: Gate,
    /// Dropped with the driver, which tells [`Handle::stopped`].
    _running: watch::Sender<()>,
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
                    Some(Request::Shutdown(reply)) => {
                        let _ = reply.send(());
                        tracing::info!(addr = %self.advertise, "rumor node stopped");
                        return;
                    }
                    Some(r) => self.request(r),
                },
                () = sleep => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
            }
            self.flush().await;
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

    fn request(&mut self, r: Request) {
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
                let _ = reply.send(self.node.write(now, &key, op));
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
            Request::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
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
            addr: local.addr,
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

    /// Send what the node wants sent, and publish its events.
    async fn flush(&mut self) {
        loop {
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
            let mut more = false;
            while let Some(e) = self.node.poll_event() {
                match e {
                    Event::UserEvent(u) if u.name == KEYS_EVENT => {
                        // Applying may write this node's record, which sends.
                        self.peer_keys(&u.origin, &u.payload);
                        more = true;
                    }
                    // No subscriber is not an error.
                    e => drop(self.events.send(e)),
                }
            }
            if !more {
                return;
            }
        }
    }
}
