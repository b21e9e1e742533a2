//! What the loopback tests share: node set-up and waiting on a condition.

#![allow(dead_code)]

use std::time::Duration;

use rumor::{Cluster, Handle, RuntimeConfig, Security};
use rumor_proto::{Config, MemberState};

/// Start a node on a free loopback port, on the `local` profile.
pub async fn start(name: &str, security: Security) -> Handle {
    start_in(name, "default", security).await
}

/// [`start`] in the cluster called `cluster`. Logs go to the test output
/// when `RUST_LOG` asks for them.
pub async fn start_in(name: &str, cluster: &str, security: Security) -> Handle {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = RuntimeConfig::new(name.parse().unwrap(), "127.0.0.1:0".parse().unwrap());
    config.protocol = Config::local();
    config.protocol.cluster = cluster.to_string();
    config.seed = Some(7);
    config.security = security;
    Cluster::start(config).await.unwrap()
}

/// Poll `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within {within:?}: {what}");
}

/// Members the node sees alive, itself included.
pub async fn alive(h: &Handle) -> usize {
    h.members()
        .await
        .unwrap()
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .count()
}
