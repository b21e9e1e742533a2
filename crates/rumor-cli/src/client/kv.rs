//! `rumor kv ...`: the replicated key-value store.

use std::io::Read as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rumor::http::api::{KeyView, WriteResult};

use super::table::Table;
use super::{Body, Client, ClientArgs, print_json};

/// `rumor kv` subcommands.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Show a key: its values (every sibling), kind and causal context.
    Get {
        /// The key.
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Write a value (`-` reads it from standard input).
    Put {
        /// The key.
        key: String,
        /// The value, or `-` for standard input.
        value: String,
        /// The causal context of the read this write is based on (from
        /// `kv get`): replaces exactly the values that read showed.
        #[arg(long)]
        context: Option<String>,
        /// Resolution for this write: mv (keep concurrent values as
        /// siblings) or lww (last writer wins) [default: by key prefix, else mv].
        #[arg(long)]
        kind: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: String,
        /// The causal context of the read this delete is based on.
        #[arg(long)]
        context: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List keys.
    List {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Increment a counter.
    Incr(CounterArgs),
    /// Decrement a counter.
    Decr(CounterArgs),
    /// Add an element to a set.
    SetAdd(ElementArgs),
    /// Remove an element from a set.
    SetRemove(ElementArgs),
}

/// Flags of `kv incr` and `kv decr`.
#[derive(Debug, Args)]
pub struct CounterArgs {
    /// The counter's key.
    key: String,
    /// By how much.
    #[arg(long, default_value_t = 1)]
    by: i64,
    #[command(flatten)]
    client: ClientArgs,
}

/// Flags of `kv set-add` and `kv set-remove`.
#[derive(Debug, Args)]
pub struct ElementArgs {
    /// The set's key.
    key: String,
    /// The element.
    element: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// Run a `kv` subcommand.
pub fn run(command: KvCommand) -> anyhow::Result<()> {
    match command {
        KvCommand::Get { key, client: args } => {
            let client = Client::new(&args);
            let view: KeyView = client.call("GET", &Client::key_path(&key), &[], Body::None)?;
            if args.json {
                return print_json(&view);
            }
            print_key(&view);
            Ok(())
        }
        KvCommand::Put {
            key,
            value,
            context,
            kind,
            client: args,
        } => {
            let value = if value == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("reading the value from standard input")?;
                buf
            } else {
                value.into_bytes()
            };
            let mut query = Vec::new();
            if let Some(c) = &context {
                query.push(("context", c.as_str()));
            }
            if let Some(k) = &kind {
                query.push(("kind", k.as_str()));
            }
            write(&args, "PUT", &key, &query, Body::Bytes(&value))
        }
        KvCommand::Del {
            key,
            context,
            client: args,
        } => {
            let query: Vec<(&str, &str)> =
                context.iter().map(|c| ("context", c.as_str())).collect();
            write(&args, "DELETE", &key, &query, Body::None)
        }
        KvCommand::List {
            prefix,
            client: args,
        } => {
            let client = Client::new(&args);
            let keys: Vec<KeyView> =
                client.call("GET", "/v1/kv", &[("prefix", &prefix)], Body::None)?;
            if args.json {
                return print_json(&keys);
            }
            let mut t = Table::new(&["KEY", "KIND", "VALUE"]);
            for k in &keys {
                t.row(vec![k.key.clone(), k.kind.clone(), summary(k)]);
            }
            t.print();
            Ok(())
        }
        KvCommand::Incr(a) => counter(a, "incr"),
        KvCommand::Decr(a) => counter(a, "decr"),
        KvCommand::SetAdd(a) => element(a, "set-add"),
        KvCommand::SetRemove(a) => element(a, "set-remove"),
    }
}

fn write(
    args: &ClientArgs,
    method: &str,
    key: &str,
    query: &[(&str, &str)],
    body: Body<'_>,
) -> anyhow::Result<()> {
    let client = Client::new(args);
    let r: WriteResult = client.call(method, &Client::key_path(key), query, body)?;
    if args.json {
        return print_json(&r);
    }
    println!("ok {} (context {})", r.key, r.context);
    Ok(())
}

fn counter(a: CounterArgs, op: &str) -> anyhow::Result<()> {
    let by = a.by.to_string();
    write(
        &a.client,
        "POST",
        &a.key,
        &[("op", op), ("by", &by)],
        Body::None,
    )
}

fn element(a: ElementArgs, op: &str) -> anyhow::Result<()> {
    write(
        &a.client,
        "POST",
        &a.key,
        &[("op", op)],
        Body::Bytes(a.element.as_bytes()),
    )
}

/// One line for a key's value(s).
fn summary(k: &KeyView) -> String {
    if let Some(c) = k.counter {
        return c.to_string();
    }
    if let Some(e) = &k.elements {
        let e: Vec<String> = e.iter().map(|v| v.display()).collect();
        return format!("{{{}}}", e.join(", "));
    }
    match k.values.as_slice() {
        [one] => one.display(),
        many => {
            let v: Vec<String> = many.iter().map(|v| v.display()).collect();
            format!("{} siblings: {}", many.len(), v.join(" | "))
        }
    }
}

fn print_key(k: &KeyView) {
    println!("key:     {}", k.key);
    println!("kind:    {}", k.kind);
    if k.values.len() > 1 {
        println!(
            "{} siblings (concurrent writes); resolve them with:",
            k.values.len()
        );
        println!("  rumor kv put {:?} VALUE --context {}", k.key, k.context);
        for (i, v) in k.values.iter().enumerate() {
            println!("value {}: {}", i + 1, v.display());
        }
    } else {
        println!("value:   {}", summary(k));
    }
    println!("context: {}", k.context);
}
