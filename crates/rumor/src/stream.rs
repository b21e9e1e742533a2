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
        tokio::spawn(async move {
            let _permit = permit;
            match timeout(STREAM_TIMEOUT, read(conn, max_frame)).await {
                Ok(Ok((from, frame))) => {
                    let _ = frames.send((from, frame)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "dropped a stream connection"),
                Err(_) => tracing::debug!(%peer, "stream connection too slow; dropped"),
            }
        });
    }
}

async fn read(mut conn: TcpStream, max_frame: usize) -> std::io::Result<(SocketAddr, Vec<u8>)> {
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
    let mut frame = vec![0; len];
    conn.read_exact(&mut frame).await?;
    Ok((from, frame))
}
