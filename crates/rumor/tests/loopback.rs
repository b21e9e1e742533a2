//! Two and three nodes on loopback, over real UDP and TCP sockets: they
//! join, see each other alive, and a key written on one reaches the others
//! by rumor and by anti-entropy.

mod common;

use std::time::Duration;

use common::eventually;
use rumor::{Cluster, Handle, RuntimeConfig};
use rumor_proto::state::Op;
use rumor_proto::{Config, MemberState};

async fn node(name: &str) -> Handle {
    let mut config = RuntimeConfig::new(name.parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    config.protocol = Config::local();
    config.seed = Some(7);
    Cluster::start(config).await.unwrap()
}

async fn alive(h: &Handle) -> usize {
    h.members()
        .await
        .unwrap()
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_over_loopback_and_a_write_reaches_every_node() {
    let a = node("a").await;
    let b = node("b").await;
    let c = node("c").await;
    b.join(vec![a.addr()]).await.unwrap();
    c.join(vec![a.addr()]).await.unwrap();
    for h in [&a, &b, &c] {
        eventually(Duration::from_secs(10), "three alive members", || async {
            alive(h).await == 3
        })
        .await;
        assert_eq!(alive(h).await, 3);
    }
    let put = Op::Put {
        value: b"hello".to_vec(),
        context: None,
        kind: None,
    };
    a.write("greeting", put).await.unwrap();
    for h in [&b, &c] {
        eventually(Duration::from_secs(10), "the key everywhere", || async {
            h.get("greeting").await.unwrap().is_some()
        })
        .await;
        let e = h.get("greeting").await.unwrap().unwrap();
        assert_eq!(e.values(), vec![b"hello".as_slice()]);
    }
    eventually(Duration::from_secs(10), "full agreement", || async {
        a.convergence().await.unwrap().fraction == 1.0
    })
    .await;
    for h in [a, b, c] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_catches_up_on_existing_keys_by_anti_entropy() {
    let a = node("early").await;
    for i in 0..50 {
        let put = Op::Put {
            value: vec![i],
            context: None,
            kind: None,
        };
        a.write(&format!("k{i}"), put).await.unwrap();
    }
    // Long after the rumors went cold, a new node joins.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = node("late").await;
    b.join(vec![a.addr()]).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "all 50 keys on the late node",
        || async {
            let mut n = 0;
            for i in 0..50 {
                if b.get(&format!("k{i}")).await.unwrap().is_some() {
                    n += 1;
                }
            }
            n == 50
        },
    )
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
