//! Stream frames over TCP: one connection per frame, opened with the
//! sender's advertised address.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;

use crate::STREAM_TIMEOUT;

/// Longest advertised address accepted in a connection's opening.
const MAX_HELLO: usize = 64;
/// Most inbound connections read at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// Most bytes of inbound frames buffered at once, over all connections (at
/// least one largest frame). A connection reserves the length its frame
/// announces before reading it, so peers that announce large frames and
/// stall hold no more than this between them.
const MAX_BUFFERED: usize = 64 << 20;
/// Unit of the buffer reservation.
const RESERVATION_UNIT: usize = 1024;

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

/// Accept connections and hand each frame, with the sender's advertised
/// address, to `frames`. Frames over `max_frame` bytes and malformed
/// openings close the connection.
pub(crate) async fn accept(
    listener: TcpListener,
    max_frame: usize,
    frames: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let buffered = Arc::new(Semaphore::new(
        MAX_BUFFERED.max(max_frame).div_ceil(RESERVATION_UNIT),
    ));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a stream connection failed");
                continue;
            }
        };
        let frames = frames.clone();
        let buffered = Arc::clone(&buffered);
        tokio::spawn(async move {
            let _permit = permit;
            match timeout(STREAM_TIMEOUT, read(conn, max_frame, &buffered)).await {
                Ok(Ok((from, frame))) => {
                    let _ = frames.send((from, frame)).await;
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
    buffered: &Semaphore,
) -> std::io::Result<(SocketAddr, Vec<u8>)> {
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
        return Err(bad("frame larger than max_stream_frame"));
    }
    let units =
        u32::try_from(len.div_ceil(RESERVATION_UNIT)).map_err(|_| bad("frame too large"))?;
    let _reserved = buffered
        .acquire_many(units)
        .await
        .map_err(|_| bad("shutting down"))?;
    // The buffer grows with the bytes that arrive, not with the length the
    // peer announced.
    let mut frame = Vec::with_capacity(len.min(64 * 1024));
    (&mut conn).take(len as u64).read_to_end(&mut frame).await?;
    if frame.len() != len {
        return Err(bad("connection closed inside a frame"));
    }
    Ok((from, frame))
}
