//! Encrypted nodes on loopback, over real UDP and TCP sockets: a shared key
//! lets them form a cluster; another key, another cluster name or plaintext
//! keeps a node out and tells it why; keys rotate while the cluster runs;
//! replayed frames and connection floods are refused and counted.

mod common;

use std::time::Duration;

use common::{alive, eventually, start, start_in};
use rumor::{Encryption, Error, Handle, Key, KeyError, Keyring, Security, TransportStats};
use rumor_proto::state::Op;
use rumor_proto::{Event, MemberEventKind, Priority};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(15);

fn key(b: u8) -> Key {
    Key::from_bytes([b; 32])
}

fn sealed(k: &Key) -> Security {
    Security::Encrypted(Encryption::new(Keyring::new(k.clone())))
}

fn put(v: &[u8]) -> Op {
    Op::Put {
        value: v.to_vec(),
        context: None,
        kind: None,
    }
}

async fn member_count(h: &Handle) -> usize {
    h.members().await.unwrap().len()
}

async fn all_alive(nodes: &[&Handle], n: usize) {
    for h in nodes {
        eventually(WAIT, "every member alive", || async { alive(h).await == n }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_the_same_key_join_and_a_write_reaches_every_node() {
    let k = key(1);
    let a = start("a", sealed(&k)).await;
    let b = start("b", sealed(&k)).await;
    let c = start("c", sealed(&k)).await;
    b.join(vec![a.addr()]).await.unwrap();
    c.join(vec![a.addr()]).await.unwrap();
    all_alive(&[&a, &b, &c], 3).await;
    a.write("greeting", put(b"hello")).await.unwrap();
    for h in [&b, &c] {
        eventually(WAIT, "the key everywhere", || async {
            h.get("greeting").await.unwrap().is_some()
        })
        .await;
        let e = h.get("greeting").await.unwrap().unwrap();
        assert_eq!(e.values(), vec![b"hello".as_slice()]);
    }
    for h in [&a, &b, &c] {
        let s = h.transport_stats();
        assert!(s.sealed > 0 && s.opened > 0, "{s:?}");
        assert_eq!(
            s.auth_failures + s.replays_rejected + s.wrong_cluster,
            0,
            "{s:?}"
        );
        h.shutdown().await.unwrap();
    }
}

/// `joiner` asks `seed` to join; the seed refuses (as `refused` counts),
/// the joiner is told why, and neither lists the other.
async fn join_is_refused(seed: Handle, joiner: Handle, refused: fn(&TransportStats) -> u64) {
    joiner.join(vec![seed.addr()]).await.unwrap();
    eventually(WAIT, "the seed refuses the joiner's packets", || async {
        refused(&seed.transport_stats()) >= 1
    })
    .await;
    eventually(WAIT, "the joiner hears why", || async {
        joiner.transport_stats().notices_received >= 1
    })
    .await;
    assert_eq!(seed.transport_stats().opened, 0);
    assert!(seed.transport_stats().notices_sent >= 1);
    assert_eq!(member_count(&joiner).await, 1, "the joiner lists the seed");
    assert_eq!(member_count(&seed).await, 1, "the seed lists the joiner");
    seed.shutdown().await.unwrap();
    joiner.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_key_cannot_join_and_is_told_why() {
    let seed = start("seed", sealed(&key(1))).await;
    let joiner = start("joiner", sealed(&key(2))).await;
    join_is_refused(seed, joiner, |s| s.auth_failures).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_cannot_join() {
    let k = key(1);
    let seed = start_in("seed", "blue", sealed(&k)).await;
    let joiner = start_in("joiner", "green", sealed(&k)).await;
    join_is_refused(seed, joiner, |s| s.wrong_cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_encrypted_nodes_refuse_each_other() {
    let enc = start("enc", sealed(&key(1))).await;
    let plain = start("plain", Security::Plaintext).await;
    plain.join(vec![enc.addr()]).await.unwrap();
    enc.join(vec![plain.addr()]).await.unwrap();
    eventually(WAIT, "both refuse the other", || async {
        enc.transport_stats().plaintext_refused >= 1 && plain.transport_stats().sealed_refused >= 1
    })
    .await;
    eventually(WAIT, "both hear why", || async {
        enc.transport_stats().notices_received >= 1 && plain.transport_stats().notices_received >= 1
    })
    .await;
    assert_eq!(member_count(&enc).await, 1);
    assert_eq!(member_count(&plain).await, 1);
    assert!(matches!(
        plain.keys_list().await,
        Err(Error::Keys(KeyError::NoEncryption))
    ));
    enc.shutdown().await.unwrap();
    plain.shutdown().await.unwrap();
}

/// Events a subscriber saw, without waiting.
fn drain(rx: &mut rumor::Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_the_cluster_keeps_running() {
    let (old, new) = (key(1), key(2));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring.json");
    let a = start(
        "a",
        Security::Encrypted(Encryption::new(Keyring::new(old.clone())).with_file(&file)),
    )
    .await;
    let b = start("b", sealed(&old)).await;
    let c = start("c", sealed(&old)).await;
    b.join(vec![a.addr()]).await.unwrap();
    c.join(vec![a.addr()]).await.unwrap();
    all_alive(&[&a, &b, &c], 3).await;
    let mut subscribers: Vec<_> = [&a, &b, &c].iter().map(|h| h.subscribe()).collect();
    let nodes = [&a, &b, &c];

    // Refusals leave the keyring unchanged.
    let third = key(3).to_base64();
    assert!(matches!(
        a.keys_use(&third).await,
        Err(Error::Keys(KeyError::NotInstalled(_)))
    ));
    assert!(matches!(
        a.keys_remove(&old.to_base64()).await,
        Err(Error::Keys(KeyError::RemovePrimary(_)))
    ));
    assert!(matches!(
        a.keys_install("c2hvcnQ=").await,
        Err(Error::Keys(KeyError::Malformed(_)))
    ));
    assert!(matches!(
        a.broadcast("_rumor.keys", vec![], Priority::Normal).await,
        Err(Error::Reserved(_))
    ));

    let (old_fp, new_fp) = (old.fingerprint(), new.fingerprint());
    a.keys_install(&new.to_base64()).await.unwrap();
    for h in nodes {
        eventually(
            WAIT,
            "every member reports the new key installed",
            || async {
                let r = h.keys_list().await.unwrap();
                r.key(&new_fp).is_some_and(|k| k.installed_on == 3) && r.unreported.is_empty()
            },
        )
        .await;
    }
    all_alive(&nodes, 3).await;

    let report = a.keys_use(&new.to_base64()).await.unwrap();
    assert!(report.key(&new_fp).unwrap().local_primary);
    eventually(WAIT, "every member seals with the new key", || async {
        let r = a.keys_list().await.unwrap();
        r.key(&new_fp).is_some_and(|k| k.primary_on == 3)
    })
    .await;
    all_alive(&nodes, 3).await;

    a.keys_remove(&old.to_base64()).await.unwrap();
    for h in nodes {
        eventually(WAIT, "the old key gone from every member", || async {
            let r = h.keys_list().await.unwrap();
            r.key(&old_fp).is_none() && r.key(&new_fp).is_some_and(|k| k.installed_on == 3)
        })
        .await;
    }
    all_alive(&nodes, 3).await;

    // The cluster kept working: no packet was refused, nobody failed, and
    // a write still reaches everyone.
    c.write("after", put(b"rotation")).await.unwrap();
    for h in nodes {
        eventually(WAIT, "a write after the rotation everywhere", || async {
            h.get("after").await.unwrap().is_some()
        })
        .await;
        let s = h.transport_stats();
        assert_eq!(s.auth_failures, 0, "{s:?}");
    }
    for rx in &mut subscribers {
        for e in drain(rx) {
            match e {
                Event::Member(m) => assert_ne!(m.kind, MemberEventKind::Failed, "{m:?}"),
                Event::UserEvent(u) => assert!(!u.name.starts_with("_rumor."), "{u:?}"),
                _ => {}
            }
        }
    }
    // The keyring file follows the rotation.
    assert_eq!(
        Keyring::load(&file).unwrap(),
        Some(Keyring::new(new.clone()))
    );

    // A node holding only the old key is now kept out.
    let before = a.transport_stats().auth_failures;
    let stale = start("stale", sealed(&old)).await;
    stale.join(vec![a.addr()]).await.unwrap();
    eventually(WAIT, "the old key refused", || async {
        a.transport_stats().auth_failures > before
    })
    .await;
    assert_eq!(member_count(&stale).await, 1);
    assert!(
        a.members()
            .await
            .unwrap()
            .iter()
            .all(|m| m.name.as_str() != "stale"),
        "the stale node got in"
    );
    for h in [a, b, c, stale] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_replay_window_shorter_than_a_second_is_refused_at_start() {
    let mut config = rumor::RuntimeConfig::encrypted(
        "a".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Keyring::new(key(1)),
    );
    if let Security::Encrypted(e) = &mut config.security {
        e.replay_window = Duration::from_millis(10);
    }
    assert!(matches!(
        rumor::Cluster::start(config).await,
        Err(rumor::StartError::ReplayWindow(_))
    ));
}

/// Accept one connection on `listener` and return everything sent on it.
async fn capture(listener: &TcpListener) -> Vec<u8> {
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    raw
}

async fn resend(to: std::net::SocketAddr, raw: &[u8]) {
    let mut conn = TcpStream::connect(to).await.unwrap();
    conn.write_all(raw).await.unwrap();
    conn.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_frame_sent_again_is_refused_and_counted() {
    let k = key(1);
    let a = start("a", sealed(&k)).await;
    let b = start("b", sealed(&k)).await;
    // `a` joins through a listener that records its join request.
    let spy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    a.join(vec![spy.local_addr().unwrap()]).await.unwrap();
    let raw = tokio::time::timeout(WAIT, capture(&spy)).await.unwrap();
    // Delivered once, the frame is genuine: `b` accepts it.
    resend(b.addr(), &raw).await;
    eventually(WAIT, "the first copy accepted", || async {
        b.transport_stats().opened >= 1
    })
    .await;
    let opened = b.transport_stats().opened;
    resend(b.addr(), &raw).await;
    eventually(WAIT, "the second copy refused as a replay", || async {
        b.transport_stats().replays_rejected == 1
    })
    .await;
    let s = b.transport_stats();
    assert_eq!(s.auth_failures, 0, "{s:?}");
    // Whatever else `b` opened since came from `a` itself, not the copy.
    assert!(s.opened >= opened);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_and_an_oversized_frame_are_refused_and_counted() {
    let a = start("a", sealed(&key(1))).await;
    // Connections that never send hold their slot until the read deadline.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(a.addr()).await.unwrap());
    }
    eventually(
        WAIT,
        "connections past the per-address cap refused",
        || async { a.transport_stats().connections_refused >= 8 },
    )
    .await;
    drop(idle);
    // A frame announced larger than max_stream_frame is refused before any
    // of it is read.
    let hello = b"127.0.0.1:9";
    let mut raw = (hello.len() as u16).to_be_bytes().to_vec();
    raw.extend_from_slice(hello);
    raw.extend_from_slice(&u32::MAX.to_be_bytes());
    eventually(WAIT, "the oversized frame refused", || async {
        // Slots free up as the idle connections close; retry until one is read.
        if let Ok(mut conn) = TcpStream::connect(a.addr()).await {
            let _ = conn.write_all(&raw).await;
        }
        a.transport_stats().oversize_dropped >= 1
    })
    .await;
    a.shutdown().await.unwrap();
}
