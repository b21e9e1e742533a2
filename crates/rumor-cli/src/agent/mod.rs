//! `rumor agent`: run a node on this machine until interrupted, with its
//! HTTP API and event handlers.

mod config;
mod encryption;
mod event_handler;

use std::net::SocketAddr;

use anyhow::Context as _;
use rumor::http::{HttpConfig, HttpServer};
use rumor::{Cluster, Handle, RuntimeConfig};
use rumor_proto::{Event, NodeName};

pub use config::AgentArgs;
use config::AgentConfig;
use event_handler::HandlerSpec;

/// Gossip intervals a leaving node keeps running so the news spreads.
const LEAVE_INTERVALS: u32 = 5;

/// Run the agent until SIGINT or SIGTERM, or a leave through the HTTP API,
/// then leave gracefully.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level).with_context(|| {
        format!(
            "log level {:?} is not valid; use error, warn, info, debug or trace",
            config.log_level
        )
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(agent(config))
}

/// Resolve `host:port` names to addresses (the first address of each).
async fn resolve(addrs: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for a in addrs {
        let mut found = tokio::net::lookup_host(a.as_str())
            .await
            .with_context(|| format!("cannot resolve --join address {a:?}; write host:port"))?;
        out.extend(found.next());
    }
    Ok(out)
}

async fn agent(config: AgentConfig) -> anyhow::Result<()> {
    let name: NodeName = config
        .node
        .parse()
        .with_context(|| "choose another --node name".to_string())?;
    let handlers = config
        .event_handlers
        .iter()
        .map(|s| HandlerSpec::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if config.http_token.is_none() && !config.http.ip().is_loopback() {
        return Err(rumor::http::HttpError::TokenRequired(config.http).into());
    }
    let seeds = resolve(&config.join).await?;
    let mut protocol = config.profile.config();
    if let Some(cluster) = &config.cluster {
        protocol.cluster = cluster.clone();
    }
    let gossip = protocol.gossip_interval;
    let mut runtime = RuntimeConfig::new(name.clone(), config.bind);
    runtime.advertise = config.advertise;
    runtime.protocol = protocol;
    runtime.tags = config.tags.clone();
    runtime.data_dir = Some(config.data_dir.clone());
    let (security, chosen) = encryption::choose(
        &config.data_dir,
        config.keyring.as_deref(),
        config.encrypt_key.as_deref(),
        config.plaintext,
    )?;
    runtime.security = security;
    let node = Cluster::start(runtime).await?;
    let http = rumor::http::serve(
        node.clone(),
        HttpConfig {
            addr: config.http,
            token: config.http_token.clone(),
        },
    )
    .await?;
    event_handler::spawn(node.clone(), handlers);
    encryption::announce(&chosen);
    announce(&node, &http, &config, &chosen);
    if !seeds.is_empty() {
        node.join(seeds.clone()).await?;
        tracing::info!(seeds = ?seeds, "joining");
    }
    let mut events = node.subscribe();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let left = http.left();
    tokio::pin!(left);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("leaving the cluster");
                node.leave().await?;
                break;
            }
            () = &mut left => {
                tracing::info!("left the cluster on request of the HTTP API");
                break;
            }
            e = events.recv() => match e {
                Ok(e) => log_event(&e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event log fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    tokio::time::sleep(gossip * LEAVE_INTERVALS).await;
    node.shutdown().await?;
    Ok(())
}

/// Say what the agent listens on and how to use it.
fn announce(node: &Handle, http: &HttpServer, config: &AgentConfig, chosen: &encryption::Chosen) {
    println!(
        "rumor agent {} listening on {} (gossip, UDP and TCP), HTTP API on {}, profile {}, data in {}",
        config.node,
        node.addr(),
        http.addr(),
        config.profile,
        config.data_dir.display()
    );
    let mut next = node.addr();
    next.set_port(next.port().wrapping_add(2));
    let mut next_http = http.addr();
    next_http.set_port(next_http.port().wrapping_add(2));
    println!(
        "another node joins it with: rumor agent --node OTHER --bind {next} --http {next_http} --join {}{}",
        node.addr(),
        encryption::join_flag(chosen)
    );
    println!(
        "talk to it with: rumor members{}",
        if http.addr().to_string() == config::DEFAULT_HTTP {
            String::new()
        } else {
            format!(" --http {}", http.addr())
        }
    );
}

fn log_event(e: &Event) {
    match e {
        Event::Member(m) => tracing::info!(
            event = m.kind.as_str(), member = %m.name, addr = %m.addr,
            incarnation = m.incarnation, "membership"
        ),
        Event::UserEvent(u) => tracing::info!(
            event = "user", name = %u.name, origin = %u.origin, ltime = u.ltime, "user event"
        ),
        Event::NameConflict { other } => tracing::warn!(
            %other, "another address claims this node's name; rename one of the two nodes"
        ),
        Event::Refuted { incarnation } => {
            tracing::info!(incarnation, "refuted a suspicion of this node")
        }
        Event::DatagramsFailing { name, addr } => tracing::warn!(
            member = %name, %addr,
            "the member answered a probe over TCP but not over UDP; UDP may be blocked between the two: check firewalls for UDP on the gossip port"
        ),
        Event::TombstonesCollected { keys } => {
            tracing::debug!(count = keys.len(), "collected tombstones")
        }
        Event::KeyChanged { .. } => {}
    }
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
