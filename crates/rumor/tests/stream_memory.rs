//! Peers that open stream connections, announce the largest frame and then
//! stall must not make the node hold memory for every announced frame.
//! (Its own test binary: it measures this process's resident memory.)

mod common;

use std::time::{Duration, Instant};

use common::{alive, eventually};
use rumor::Security;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Connections the attacker opens.
const CONNECTIONS: usize = 200;
/// Bytes each sends of the 16 MiB frame it announces.
const SENT: usize = 1 << 20;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_frames_are_not_all_buffered() {
    let a = common::start("a", Security::Plaintext).await;
    let target = a.addr();
    let before = rss_kib();

    let mut attackers = Vec::new();
    for _ in 0..CONNECTIONS {
        attackers.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(target).await.ok()?;
            let hello = "127.0.0.1:9".to_string();
            let mut buf = (hello.len() as u16).to_be_bytes().to_vec();
            buf.extend_from_slice(hello.as_bytes());
            buf.extend_from_slice(&(16u32 << 20).to_be_bytes());
            buf.resize(buf.len() + SENT, 0x5a);
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.write_all(&buf)).await;
            Some(conn)
        }));
    }
    // Watch the resident set while the stalled connections are open.
    let mut peak = before;
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        peak = peak.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown_mib = peak.saturating_sub(before) / 1024;
    // Buffering every connection's bytes would be 200 MiB and more; the
    // node reserves at most 64 MiB for inbound frames.
    assert!(
        grown_mib < 120,
        "resident memory grew {grown_mib} MiB under {CONNECTIONS} stalled 16 MiB frames"
    );
    for t in attackers {
        drop(t.await);
    }

    // The stream path still works once they are gone: a node joins (a
    // push-pull over TCP) and both see each other.
    let b = common::start("b", Security::Plaintext).await;
    b.join(vec![target]).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "b joins a after the attack",
        || async { alive(&a).await == 2 },
    )
    .await;
}
