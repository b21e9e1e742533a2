//! `rumor agent`: run a node on this machine until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rumor::{Cluster, RuntimeConfig};
use rumor_proto::{Event, NodeName, Profile};

/// Gossip intervals a leaving node keeps running so the news spreads.
const LEAVE_INTERVALS: u32 = 5;

/// Flags of `rumor agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This node's name, unique in the cluster (default: the host name).
    #[arg(long, env = "RUMOR_NODE")]
    node: Option<String>,
    /// Address to bind UDP and TCP to.
    #[arg(long, env = "RUMOR_BIND", default_value = "127.0.0.1:7946")]
    bind: SocketAddr,
    /// Address other nodes reach this one at (default: the bind address).
    #[arg(long, env = "RUMOR_ADVERTISE")]
    advertise: Option<SocketAddr>,
    /// Join the cluster through these addresses (repeat the flag or separate
    /// with commas).
    #[arg(long, env = "RUMOR_JOIN", value_delimiter = ',')]
    join: Vec<SocketAddr>,
    /// Protocol defaults: lan, wan or local.
    #[arg(long, env = "RUMOR_PROFILE", default_value = "lan")]
    profile: Profile,
    /// Directory of the node's durable state: keys, identity, known members
    /// (default: ./rumor-data/NODE).
    #[arg(long, env = "RUMOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rumor".to_string())
}

/// Run the agent until SIGINT or SIGTERM, then leave gracefully.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(agent(args))
}

async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let name = args.node.unwrap_or_else(default_name);
    let name: NodeName = name
        .parse()
        .with_context(|| "choose another --node name".to_string())?;
    let protocol = args.profile.config();
    let gossip = protocol.gossip_interval;
    let mut config = RuntimeConfig::new(name.clone(), args.bind);
    config.advertise = args.advertise;
    config.protocol = protocol;
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from("rumor-data").join(name.as_str()));
    config.data_dir = Some(data_dir.clone());
    let node = Cluster::start(config).await?;
    let mut events = node.subscribe();
    println!(
        "rumor agent {name} listening on {} (UDP and TCP), profile {}, data in {}",
        node.addr(),
        args.profile,
        data_dir.display()
    );
    let mut next = node.addr();
    next.set_port(next.port().wrapping_add(1));
    println!(
        "another node joins it with: rumor agent --node OTHER --bind {next} --join {}",
        node.addr()
    );
    if !args.join.is_empty() {
        node.join(args.join.clone()).await?;
        tracing::info!(seeds = ?args.join, "joining");
    }
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            e = events.recv() => match e {
                Ok(Event::Member(m)) => tracing::info!(
                    event = m.kind.as_str(), member = %m.name, addr = %m.addr,
                    incarnation = m.incarnation, "membership"
                ),
                Ok(Event::UserEvent(u)) => tracing::info!(
                    event = "user", name = %u.name, origin = %u.origin, ltime = u.ltime, "user event"
                ),
                Ok(Event::NameConflict { other }) => tracing::warn!(
                    %other, "another address claims this node's name; rename one of the two nodes"
                ),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event log fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    tracing::info!("leaving the cluster");
    node.leave().await?;
    tokio::time::sleep(gossip * LEAVE_INTERVALS).await;
    node.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
