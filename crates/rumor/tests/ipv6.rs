//! Nodes on the IPv6 loopback: they join over UDP and TCP and a write
//! reaches the other node, as on IPv4.

mod common;

use std::time::Duration;

use common::{alive, eventually};
use rumor::{Cluster, Handle, RuntimeConfig};
use rumor_proto::Config;
use rumor_proto::state::Op;

async fn node(name: &str) -> Handle {
    let mut config = RuntimeConfig::new(name.parse().unwrap(), "[::1]:0".parse().unwrap());
    config.protocol = Config::local();
    config.seed = Some(3);
    Cluster::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_ipv6_join_and_share_a_key() {
    let a = node("v6-a").await;
    let b = node("v6-b").await;
    assert!(a.addr().is_ipv6(), "{}", a.addr());
    b.join(vec![a.addr()]).await.unwrap();
    let put = Op::Put {
        value: b"over v6".to_vec(),
        context: None,
        kind: None,
    };
    a.write("k", put).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "join and write over IPv6",
        || async {
            let got = b.get("k").await.unwrap();
            alive(&a).await == 2 && got.is_some_and(|e| e.values() == vec![b"over v6".as_slice()])
        },
    )
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
