//! A node with a data directory, on loopback: acknowledged writes survive
//! SIGKILL, the node comes back at a higher incarnation and rejoins
//! the members it knew by itself; a data directory of another node, one in
//! use, or a damaged one is a clear start error.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::eventually;
use rumor::{Cluster, Handle, RuntimeConfig, StartError};
use rumor_proto::state::Op;
use rumor_proto::{Config, Incarnation, MemberState};

const KEYS: usize = 200;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(name: &str, bind: SocketAddr, dir: Option<&Path>) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(name.parse().unwrap(), bind);
    config.protocol = Config::local();
    config.data_dir = dir.map(Path::to_path_buf);
    config
}

fn put(value: &[u8]) -> Op {
    Op::Put {
        value: value.to_vec(),
        context: None,
        kind: None,
    }
}

/// How `observer` sees the member called `name`.
async fn view(observer: &Handle, name: &str) -> Option<(MemberState, Incarnation)> {
    observer
        .members()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name.as_str() == name)
        .map(|m| (m.state, m.incarnation))
}

/// Set in the child process that runs the node to be killed: its data
/// directory.
const CHILD_DIR: &str = "RUMOR_TEST_KILLED_NODE_DIR";
const CHILD_TEST: &str =
    "a_node_killed_mid_write_restarts_with_every_acknowledged_write_and_rejoins_by_itself";

/// The node that is killed, in a process of its own: it prints its address,
/// waits for the peer, then writes keys without end, printing each one
/// acknowledged.
fn run_killed_node(dir: &Path) {
    let rt = runtime();
    rt.block_on(async {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let node = Cluster::start(config("durable", any, Some(dir)))
            .await
            .unwrap();
        println!("listening {}", node.addr());
        eventually(
            Duration::from_secs(20),
            "the node sees the peer",
            || async { matches!(view(&node, "peer").await, Some((MemberState::Alive, _))) },
        )
        .await;
        let (_, incarnation) = view(&node, "durable").await.unwrap();
        println!("incarnation {incarnation}");
        for i in 0.. {
            node.write(&format!("key-{i}"), put(format!("value-{i}").as_bytes()))
                .await
                .unwrap();
            println!("acked {i}");
        }
    });
}

#[test]
fn a_node_killed_mid_write_restarts_with_every_acknowledged_write_and_rejoins_by_itself() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        run_killed_node(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let rt = runtime();
    // The peer never reaches out to a dead member by itself (no reconnect,
    // no gossip to the dead): only the restarted node can bring it back.
    let mut peer_config = config("peer", any, None);
    peer_config.protocol.reconnect_interval = Duration::from_secs(3600);
    peer_config.protocol.gossip_to_dead = Duration::ZERO;
    let peer = rt.block_on(Cluster::start(peer_config)).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |prefix: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the node printed no {prefix:?} line"));
        // The harness may have begun the line with the test's name.
        if let Some((_, rest)) = line.split_once(prefix) {
            return rest.to_string();
        }
    };
    let addr: SocketAddr = next("listening ").parse().unwrap();
    // The peer joins the node, so the node has no seeds: it knows the peer
    // only as a member.
    rt.block_on(peer.join(vec![addr])).unwrap();
    let before: Incarnation = next("incarnation ").parse().unwrap();
    let mut acked = 0;
    while acked < KEYS {
        acked = next("acked ").parse::<usize>().unwrap() + 1;
    }
    // SIGKILL while it keeps writing: no leave, no flush, nothing.
    child.kill().unwrap();
    child.wait().unwrap();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        if let Some((_, i)) = line.split_once("acked ") {
            acked = i.parse::<usize>().unwrap() + 1;
        }
    }
    rt.block_on(eventually(
        Duration::from_secs(20),
        "the peer declares the node dead",
        || async { matches!(view(&peer, "durable").await, Some((MemberState::Dead, _))) },
    ));

    let node = rt
        .block_on(Cluster::start(config("durable", addr, Some(dir.path()))))
        .unwrap();
    rt.block_on(async {
        for i in 0..acked {
            let entry = node.get(&format!("key-{i}")).await.unwrap();
            let entry = entry.unwrap_or_else(|| panic!("acknowledged key-{i} of {acked} lost"));
            assert_eq!(entry.values(), vec![format!("value-{i}").as_bytes()]);
        }
        let (_, after) = view(&node, "durable").await.unwrap();
        assert!(after > before, "incarnation {after} after {before}");
        // The same replica carries on: a new write replaces the old value
        // instead of standing beside it as a sibling under a reused dot.
        let w = node.write("key-0", put(b"again")).await.unwrap();
        assert_eq!(w.entry.values(), vec![b"again".as_slice()]);
        assert!(w.dot.unwrap().counter > 1);
        eventually(
            Duration::from_secs(20),
            "the peer sees the node back",
            || async {
                matches!(view(&peer, "durable").await, Some((MemberState::Alive, i)) if i > before)
            },
        )
        .await;
        eventually(
            Duration::from_secs(20),
            "the node sees the peer",
            || async { matches!(view(&node, "peer").await, Some((MemberState::Alive, _))) },
        )
        .await;
        eventually(
            Duration::from_secs(20),
            "the new write reaches the peer",
            || async {
                peer.get("key-0")
                    .await
                    .unwrap()
                    .is_some_and(|e| e.values() == vec![b"again".as_slice()])
            },
        )
        .await;
        node.shutdown().await.unwrap();
        peer.shutdown().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_serves_one_node_of_one_name() {
    let dir = tempfile::tempdir().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let first = Cluster::start(config("first", any, Some(dir.path())))
        .await
        .unwrap();
    first.write("k", put(b"v")).await.unwrap();
    // A second node on the same directory while the first runs.
    let err = Cluster::start(config("first", any, Some(dir.path())))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::DataDirInUse { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("in use") && message.contains("data directory"),
        "{message}"
    );
    first.shutdown().await.unwrap();
    // Stopped, the directory is free again, but not for another name.
    let err = Cluster::start(config("second", any, Some(dir.path())))
        .await
        .unwrap_err();
    match &err {
        StartError::NameMismatch {
            stored, configured, ..
        } => assert_eq!((stored.as_str(), configured.as_str()), ("first", "second")),
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("first") && message.contains("second"),
        "{message}"
    );
    let again = Cluster::start(config("first", any, Some(dir.path())))
        .await
        .unwrap();
    assert_eq!(
        again.get("k").await.unwrap().unwrap().values(),
        vec![b"v".as_slice()]
    );
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_a_start_error_not_a_panic() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // Not a database at all.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rumor.redb"), vec![0x5a; 64 * 1024]).unwrap();
    let err = Cluster::start(config("n", any, Some(dir.path())))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::DataCorrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains("move the data directory aside"),
        "{err}"
    );

    // A real database with its middle overwritten.
    let dir = tempfile::tempdir().unwrap();
    let node = Cluster::start(config("n", any, Some(dir.path())))
        .await
        .unwrap();
    for i in 0..500 {
        node.write(&format!("k{i}"), put(&[7; 100])).await.unwrap();
    }
    node.shutdown().await.unwrap();
    let file = dir.path().join("rumor.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let (from, to) = (bytes.len() / 4, bytes.len() * 3 / 4);
    bytes[from..to].fill(0xa5);
    std::fs::write(&file, bytes).unwrap();
    let err = Cluster::start(config("n", any, Some(dir.path())))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::DataCorrupt { .. }), "{err:?}");
}
