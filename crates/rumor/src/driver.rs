//! The task that owns the node: it feeds it packets, frames, requests and
//! timeouts, and sends what it emits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumor_proto::{Channel, Command, Identity, Instant, MemberState, Node};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, watch};

use crate::{Handle, MemberCounts, NodeInfo, Request, RuntimeConfig, StartError, stream};

/// Events kept for slow subscribers.
const EVENT_BUFFER: usize = 4096;

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
    ));
    tracing::info!(node = %config.name, %bound, %advertise, "rumor node started");
    let driver = Driver {
        node,
        udp: Arc::new(udp),
        advertise,
        epoch,
        events: events.clone(),
        _running: running_tx,
    };
    tokio::spawn(driver.run(requests_rx, frames_rx));
    Ok(Handle {
        requests,
        events,
        addr: advertise,
        protocol: Arc::new(config.protocol),
        running,
    })
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
        mut frames: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
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
        while let Some(e) = self.node.poll_event() {
            // No subscriber is not an error.
            let _ = self.events.send(e);
        }
    }
}
