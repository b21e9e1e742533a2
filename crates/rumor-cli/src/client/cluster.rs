//! `members`, `join`, `leave`, `info` and `convergence`.

use clap::Args;
use rumor::http::api::{ConvergenceView, InfoView, MemberView};

use super::table::Table;
use super::{Body, Client, ClientArgs, print_json};

/// Flags of `rumor members`.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// Only members in this state: alive, suspect, dead or left.
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// `rumor members`.
pub fn members(args: MembersArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let query: Vec<(&str, &str)> = args.status.iter().map(|s| ("status", s.as_str())).collect();
    let members: Vec<MemberView> = client.call("GET", "/v1/members", &query, Body::None)?;
    if args.client.json {
        return print_json(&members);
    }
    let mut t = Table::new(&["NAME", "ADDRESS", "STATE", "INCARNATION", "TAGS"]);
    for m in &members {
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        t.row(vec![
            m.name.clone(),
            m.addr.clone(),
            m.state.clone(),
            m.incarnation.to_string(),
            tags.join(","),
        ]);
    }
    t.print();
    Ok(())
}

/// Flags of `rumor join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Addresses of members to join through (host:port).
    #[arg(required = true)]
    addrs: Vec<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// `rumor join`.
pub fn join(args: JoinArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let body = serde_json::json!({ "addrs": args.addrs });
    let answer: serde_json::Value = client.call("POST", "/v1/join", &[], Body::Json(body))?;
    if args.client.json {
        return print_json(&answer);
    }
    println!(
        "joining through {}; see `rumor members` for progress",
        args.addrs.join(", ")
    );
    Ok(())
}

/// Flags of commands with no arguments of their own.
#[derive(Debug, Args)]
pub struct PlainArgs {
    #[command(flatten)]
    client: ClientArgs,
}

/// `rumor leave`.
pub fn leave(args: PlainArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let answer: serde_json::Value = client.call("POST", "/v1/leave", &[], Body::None)?;
    if args.client.json {
        return print_json(&answer);
    }
    println!("the agent left the cluster and is stopping");
    Ok(())
}

/// `rumor info`.
pub fn info(args: PlainArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let i: InfoView = client.call("GET", "/v1/info", &[], Body::None)?;
    if args.client.json {
        return print_json(&i);
    }
    let tags: Vec<String> = i.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let members: Vec<String> = ["alive", "suspect", "dead", "left"]
        .iter()
        .map(|s| format!("{} {s}", i.members.get(*s).copied().unwrap_or(0)))
        .collect();
    let mut t = Table::new(&["FIELD", "VALUE"]);
    for (k, v) in [
        ("name", i.name.clone()),
        ("address", i.addr.clone()),
        ("version", i.version.clone()),
        ("incarnation", i.incarnation.to_string()),
        ("tags", tags.join(",")),
        ("health score", i.health_score.to_string()),
        ("members", members.join(", ")),
        (
            "keys",
            format!(
                "{} ({} tombstones, {} bytes)",
                i.keys, i.tombstones, i.kv_bytes
            ),
        ),
        ("queued broadcasts", i.queued_broadcasts.to_string()),
        (
            "sent",
            format!("{} packets, {} bytes", i.packets_sent, i.bytes_sent),
        ),
        (
            "received",
            format!("{} packets, {} bytes", i.packets_received, i.bytes_received),
        ),
    ] {
        t.row(vec![k.to_string(), v]);
    }
    t.print();
    Ok(())
}

/// `rumor convergence`.
pub fn convergence(args: PlainArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let c: ConvergenceView = client.call("GET", "/v1/convergence", &[], Body::None)?;
    if args.client.json {
        return print_json(&c);
    }
    println!(
        "{} of {} live members agree with this node ({:.1}%); digest {}, {} keys",
        c.agreeing,
        c.members,
        c.fraction * 100.0,
        c.root,
        c.keys
    );
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    println!(
        "update propagation: {} measured, p50 {}, p99 {}, max {} ms",
        c.latency_count,
        ms(c.latency_p50_ms),
        ms(c.latency_p99_ms),
        c.latency_max_ms
    );
    if !c.differing.is_empty() || !c.unknown.is_empty() {
        let mut t = Table::new(&["MEMBER", "DIGEST", "KEYS"]);
        for d in &c.differing {
            t.row(vec![d.node.clone(), d.root.clone(), d.keys.to_string()]);
        }
        for u in &c.unknown {
            t.row(vec![u.clone(), "not heard yet".into(), "-".into()]);
        }
        t.print();
    }
    Ok(())
}
