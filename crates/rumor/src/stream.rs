//! Stream frames over TCP: one connection per frame, opened with the
//! sender's advertised address.
//!
//! The listener bounds what a flood can take: at most [`MAX_CONNECTIONS`]
//! connections are read at once, at most [`MAX_CONNECTIONS_PER_IP`] from one
//! address, and as many more from that address may wait up to
//! [`SLOT_WAIT`] for one of those to finish (others are closed unread and
//! counted: a burst of joins from one host, such as a cluster started on
//! one machine or behind one NAT, is read in turn instead of refused), each
//! must deliver its
//! frame within [`STREAM_TIMEOUT`], a frame's announced length is checked
//! against `max_stream_frame` before anything is allocated, and the bytes of
//! frames being read or waiting for the driver come out of a fixed
//! reservation ([`inbound_budget`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::timeout;

use crate::STREAM_TIMEOUT;
use crate::security::stats::{Counters, bump};

/// Longest advertised address accepted in a connection's opening.
const MAX_HELLO: usize = 64;
/// Most inbound connections read at once; more are closed unread.
const MAX_CONNECTIONS: usize = 256;
/// Most inbound connections read at once from one IP address.
const MAX_CONNECTIONS_PER_IP: usize = 32;
/// Longest a connection over the per-IP limit waits for a slot.
const SLOT_WAIT: Duration = Duration::from_millis(500);
/// Least memory set aside for inbound frames.
const MIN_INBOUND_BUDGET: usize = 64 * 1024 * 1024;

/// Bytes of inbound frames that may be held at once (being read, or queued
/// for the driver): room for two of the largest frames, and at least 64 MiB.
pub(crate) fn inbound_budget(max_frame: usize) -> usize {
    max_frame.saturating_mul(2).max(MIN_INBOUND_BUDGET)
}

/// A frame received, with the sender's advertised address. Its memory stays
/// reserved until it is dropped.
pub(crate) struct Frame {
    pub(crate) from: SocketAddr,
    pub(crate) bytes: Vec<u8>,
    _reserved: OwnedSemaphorePermit,
}

/// Send `frame` to `to` on a new connection, introducing ourselves as `me`.
pub(crate) async fn send(me: SocketAddr, to: SocketAddr, frame: Vec<u8>) {
    let result = timeout(STREAM_TIMEOUT, async {
        let mut conn = TcpStream::connect(to).await?;
        let hello = me.to_string();
        let mut buf = Vec::with_capacity(2 + hello.len() + 4 + frame.len());
        buf.extend_from_slice(&(hello.len() as u16).to_be_bytes());
        buf.extend_from_slice(hello.as_bytes());
        let len = u32::try_from(frame.len()).map_err(std::io::Error::other)?;
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&frame);
        conn.write_all(&buf).await?;
        conn.shutdown().await
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(peer = %to, error = %e, "stream frame not delivered"),
        Err(_) => tracing::debug!(peer = %to, "stream frame timed out"),
    }
}

/// Connections open per IP address, and connections waiting for one of
/// them to close; an entry leaves when its last connection closes, so the
/// map holds at most [`MAX_CONNECTIONS`] entries.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, PerIpCount>>, Notify);

#[derive(Default)]
struct PerIpCount {
    open: usize,
    waiting: usize,
}

/// One open connection counted in [`PerIp`] until dropped.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// A slot for a connection from `ip`, if fewer than the limit are open
    /// (`waited`: the connection was counted as waiting until now).
    fn take_slot(self: &Arc<Self>, ip: IpAddr, waited: bool) -> Option<IpSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if n.open >= MAX_CONNECTIONS_PER_IP {
            return None;
        }
        n.open += 1;
        if waited {
            n.waiting -= 1;
        }
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        self.take_slot(ip, false)
    }

    /// Count one more connection from `ip` as waiting, unless as many as
    /// the per-IP limit already wait.
    fn enqueue(&self, ip: IpAddr) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if n.waiting >= MAX_CONNECTIONS_PER_IP {
            return false;
        }
        n.waiting += 1;
        true
    }

    /// Give up waiting for a slot from `ip`.
    fn dequeue(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            n.waiting -= 1;
            if n.open == 0 && n.waiting == 0 {
                map.remove(&ip);
            }
        }
    }

    /// A slot for a connection from `ip`, waiting up to [`SLOT_WAIT`] for
    /// one when the limit is reached; `None` if too many already wait or
    /// none freed in time.
    async fn take_or_wait(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        if let Some(slot) = self.take(ip) {
            return Some(slot);
        }
        if !self.enqueue(ip) {
            return None;
        }
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        loop {
            let freed = self.1.notified();
            if let Some(slot) = self.take_slot(ip, true) {
                return Some(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                self.dequeue(ip);
                return None;
            }
        }
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            n.open -= 1;
            if n.open == 0 && n.waiting == 0 {
                map.remove(&self.ip);
            }
        }
        drop(map);
        self.table.1.notify_waiters();
    }
}

/// Accept connections and hand each frame, with the sender's advertised
/// address, to `frames`. Frames over `max_frame` bytes and malformed
/// openings close the connection.
pub(crate) async fn accept(
    listener: TcpListener,
    max_frame: usize,
    frames: mpsc::Sender<Frame>,
    counters: Arc<Counters>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_ip = Arc::new(PerIp::default());
    let bytes = Arc::new(Semaphore::new(inbound_budget(max_frame)));
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a stream connection failed");
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            bump(&counters.connections_refused);
            tracing::debug!(%peer, "too many stream connections open; closed one unread");
            continue;
        };
        let frames = frames.clone();
        let bytes = Arc::clone(&bytes);
        let counters = Arc::clone(&counters);
        let per_ip = Arc::clone(&per_ip);
        tokio::spawn(async move {
            let Some(slot) = per_ip.take_or_wait(peer.ip()).await else {
                bump(&counters.connections_refused);
                tracing::debug!(%peer, "too many stream connections open from its address; closed one unread");
                return;
            };
            let _held = (permit, slot);
            match timeout(STREAM_TIMEOUT, read(conn, max_frame, bytes, &counters)).await {
                Ok(Ok(frame)) => {
                    let _ = frames.send(frame).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "dropped a stream connection"),
                Err(_) => tracing::debug!(%peer, "stream connection too slow; dropped"),
            }
        });
    }
}

async fn read(
    mut conn: TcpStream,
    max_frame: usize,
    budget: Arc<Semaphore>,
    counters: &Counters,
) -> std::io::Result<Frame> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let hello_len = usize::from(conn.read_u16().await?);
    if hello_len > MAX_HELLO {
        return Err(bad("opening too long"));
    }
    let mut hello = vec![0; hello_len];
    conn.read_exact(&mut hello).await?;
    let from: SocketAddr = std::str::from_utf8(&hello)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("opening is not an address"))?;
    let len = conn.read_u32().await? as usize;
    if len > max_frame {
        bump(&counters.oversize_dropped);
        return Err(bad("frame larger than max_stream_frame"));
    }
    let reserved = u32::try_from(len)
        .ok()
        .and_then(|n| budget.try_acquire_many_owned(n).ok())
        .ok_or_else(|| {
            bump(&counters.oversize_dropped);
            bad("no memory left for inbound frames; dropped")
        })?;
    // The buffer grows with the bytes that arrive, not with the length the
    // peer announced.
    let mut bytes = Vec::with_capacity(len.min(64 * 1024));
    (&mut conn).take(len as u64).read_to_end(&mut bytes).await?;
    if bytes.len() != len {
        return Err(bad("connection closed inside a frame"));
    }
    Ok(Frame {
        from,
        bytes,
        _reserved: reserved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_ip_are_capped_and_released() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<IpSlot> = (0..MAX_CONNECTIONS_PER_IP)
            .map(|_| table.take(ip).unwrap())
            .collect();
        assert!(table.take(ip).is_none());
        assert!(table.take("10.0.0.2".parse().unwrap()).is_some());
        drop(slots);
        let again = table.take(ip);
        assert!(again.is_some());
        assert_eq!(table.0.lock().unwrap().len(), 1);
        drop(again);
        assert!(table.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_connection_over_the_limit_waits_for_a_slot_and_the_queue_is_bounded() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut open: Vec<IpSlot> = (0..MAX_CONNECTIONS_PER_IP)
            .map(|_| table.take(ip).unwrap())
            .collect();
        let waiter = tokio::spawn({
            let table = Arc::clone(&table);
            async move { table.take_or_wait(ip).await.is_some() }
        });
        // Fill the waiting queue behind the spawned waiter.
        while table.0.lock().unwrap()[&ip].waiting == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 1..MAX_CONNECTIONS_PER_IP {
            assert!(table.enqueue(ip));
        }
        assert!(!table.enqueue(ip), "the waiting queue is bounded");
        for _ in 1..MAX_CONNECTIONS_PER_IP {
            table.dequeue(ip);
        }
        open.pop();
        assert!(
            waiter.await.unwrap(),
            "a freed slot goes to the waiting connection"
        );
        drop(open);
        assert!(
            table.0.lock().unwrap().is_empty(),
            "every slot and wait released"
        );
    }

    #[tokio::test]
    async fn a_waiting_connection_gives_up_after_the_slot_wait() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _open: Vec<IpSlot> = (0..MAX_CONNECTIONS_PER_IP)
            .map(|_| table.take(ip).unwrap())
            .collect();
        assert!(table.take_or_wait(ip).await.is_none());
        assert_eq!(table.0.lock().unwrap()[&ip].waiting, 0);
    }
}
