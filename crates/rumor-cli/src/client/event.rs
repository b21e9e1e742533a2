//! `rumor event send` and `rumor watch`.

use std::io::{BufRead as _, BufReader};

use clap::{Args, Subcommand};
use rumor::http::api::WatchItem;

use super::{Body, Client, ClientArgs, print_json};

/// `rumor event` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Broadcast a user event to every live node.
    Send {
        /// The event's name.
        name: String,
        /// Its payload.
        #[arg(default_value = "")]
        payload: String,
        /// normal, high or critical.
        #[arg(long, default_value = "normal")]
        priority: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Run an `event` subcommand.
pub fn run(command: EventCommand) -> anyhow::Result<()> {
    match command {
        EventCommand::Send {
            name,
            payload,
            priority,
            client: args,
        } => {
            let client = Client::new(&args);
            let path = format!(
                "/v1/event/{}",
                percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
            );
            let answer: serde_json::Value = client.call(
                "POST",
                &path,
                &[("priority", &priority)],
                Body::Bytes(payload.as_bytes()),
            )?;
            if args.json {
                return print_json(&answer);
            }
            println!("event {name} sent");
            Ok(())
        }
    }
}

/// What to watch.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Watched {
    /// Membership changes.
    Members,
    /// User events.
    Events,
    /// Key changes (optionally under a prefix).
    Kv,
}

/// Flags of `rumor watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// members, events or kv.
    what: Watched,
    /// For kv: only keys starting with this.
    #[arg(default_value = "")]
    prefix: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// `rumor watch`: print changes as they happen, until interrupted.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let what = match args.what {
        Watched::Members => "members",
        Watched::Events => "events",
        Watched::Kv => "kv",
    };
    let reader = client.stream(&format!("/v1/watch/{what}"), &[("prefix", &args.prefix)])?;
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|e| anyhow::anyhow!("the watch stream ended: {e}"))?;
        if args.client.json {
            println!("{line}");
            continue;
        }
        match serde_json::from_str::<WatchItem>(&line) {
            Ok(item) => println!("{}", describe(&item)),
            Err(_) => println!("{line}"),
        }
    }
    Ok(())
}

fn describe(item: &WatchItem) -> String {
    match item {
        WatchItem::Member { event, member } => format!(
            "{event:<15} {} {} {} incarnation {}",
            member.name, member.addr, member.state, member.incarnation
        ),
        WatchItem::Event(e) => format!(
            "event {} from {} (ltime {}): {}",
            e.name,
            e.origin,
            e.ltime,
            e.payload.display()
        ),
        WatchItem::Kv { name, key: Some(k) } => {
            let values: Vec<String> = k.values.iter().map(|v| v.display()).collect();
            match (k.counter, &k.elements) {
                (Some(c), _) => format!("kv {name} = {c}"),
                (None, Some(e)) => format!(
                    "kv {name} = {{{}}}",
                    e.iter().map(|v| v.display()).collect::<Vec<_>>().join(", ")
                ),
                (None, None) => format!("kv {name} = {}", values.join(" | ")),
            }
        }
        WatchItem::Kv { name, key: None } => format!("kv {name} deleted"),
        WatchItem::Lagged { missed } => format!("(fell behind: {missed} changes not shown)"),
    }
}
