//! `rumor`: the gossip agent, its command-line client and the simulator
//! front-end: `rumor agent` runs a node; `members`, `kv`, `event`, `watch`
//! and the other client subcommands talk to a running agent's HTTP API;
//! `rumor sim ...` runs simulations.

mod agent;
mod client;
mod sim_cmd;

/// The simulator allocates and frees a small buffer for nearly every packet
/// of thousands of nodes; mimalloc does that markedly faster than the
/// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rumor: gossip-based cluster membership, dissemination and replicated
/// state.
#[derive(Debug, Parser)]
#[command(name = "rumor", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: TopCommand,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
enum TopCommand {
    /// Run a rumor node on this machine until interrupted (SIGINT or
    /// SIGTERM make it leave the cluster gracefully).
    Agent(agent::AgentArgs),
    /// List the members the agent knows.
    Members(client::cluster::MembersArgs),
    /// Ask the agent to join a cluster through these addresses.
    Join(client::cluster::JoinArgs),
    /// Ask the agent to leave the cluster gracefully and stop.
    Leave(client::cluster::PlainArgs),
    /// Read and write the replicated key-value store.
    #[command(subcommand)]
    Kv(client::kv::KvCommand),
    /// Send user events.
    #[command(subcommand)]
    Event(client::event::EventCommand),
    /// Print membership changes, user events or key changes as they happen.
    Watch(client::event::WatchArgs),
    /// Generate, list and rotate the cluster's encryption keys.
    #[command(subcommand)]
    Keys(client::keys::KeysCommand),
    /// How far the cluster is from agreement, as the agent sees it.
    Convergence(client::cluster::PlainArgs),
    /// What the agent says about itself.
    Info(client::cluster::PlainArgs),
    /// Run deterministic simulations of many nodes in virtual time.
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        TopCommand::Sim(args) => sim_cmd::run(args),
        TopCommand::Agent(args) => agent::run(args),
        TopCommand::Members(args) => client::cluster::members(args),
        TopCommand::Join(args) => client::cluster::join(args),
        TopCommand::Leave(args) => client::cluster::leave(args),
        TopCommand::Kv(command) => client::kv::run(command),
        TopCommand::Event(command) => client::event::run(command),
        TopCommand::Watch(args) => client::event::watch(args),
        TopCommand::Keys(command) => client::keys::run(command),
        TopCommand::Convergence(args) => client::cluster::convergence(args),
        TopCommand::Info(args) => client::cluster::info(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
