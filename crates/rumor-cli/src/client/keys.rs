//! `rumor keys ...`: the cluster's encryption keys.

use clap::Subcommand;
use rumor::{Key, KeysReport};

use super::table::Table;
use super::{Body, Client, ClientArgs, print_json};

/// `rumor keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key (no agent needed).
    Generate,
    /// The cluster's keys: how many live members have each installed and
    /// use it as primary.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Install a key on every node (it opens packets; the primary still
    /// seals them).
    Install {
        /// The key, base64 of 32 bytes.
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make an installed key primary on every node.
    Use {
        /// The key.
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a key from every node (not the primary).
    Remove {
        /// The key.
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Run a `keys` subcommand.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    let (op, key, args) = match command {
        KeysCommand::Generate => {
            println!("{}", Key::generate().to_base64());
            return Ok(());
        }
        KeysCommand::List { client } => {
            let c = Client::new(&client);
            let report: KeysReport = c.call("GET", "/v1/keys", &[], Body::None)?;
            return show(&report, &client);
        }
        KeysCommand::Install { key, client } => ("install", key, client),
        KeysCommand::Use { key, client } => ("use", key, client),
        KeysCommand::Remove { key, client } => ("remove", key, client),
    };
    let c = Client::new(&args);
    let body = serde_json::json!({ "key": key });
    let report: KeysReport = c.call("POST", &format!("/v1/keys/{op}"), &[], Body::Json(body))?;
    if !args.json {
        println!("{op}: applied on this agent and spreading to the cluster");
    }
    show(&report, &args)
}

fn show(report: &KeysReport, args: &ClientArgs) -> anyhow::Result<()> {
    if args.json {
        return print_json(report);
    }
    let mut t = Table::new(&["KEY", "INSTALLED", "PRIMARY", "HERE"]);
    for k in &report.keys {
        let here = match (k.local, k.local_primary) {
            (_, true) => "primary",
            (true, false) => "installed",
            (false, false) => "-",
        };
        t.row(vec![
            k.fingerprint.clone(),
            format!("{}/{}", k.installed_on, report.members),
            format!("{}/{}", k.primary_on, report.members),
            here.to_string(),
        ]);
    }
    t.print();
    if !report.unreported.is_empty() {
        println!(
            "not reported yet by: {} (wait before `use` or `remove`)",
            report.unreported.join(", ")
        );
    }
    Ok(())
}
