//! `rumor`: the gossip agent, its command-line client and the simulator
//! front-end: `rumor agent` runs a node, `rumor sim ...` runs simulations;
//! `members`, `kv` and the other client subcommands will sit beside them.

mod agent_cmd;
mod sim_cmd;

/// The simulator allocates and frees a small buffer for nearly every packet
/// of thousands of nodes; mimalloc does that markedly faster than the
/// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rumor: gossip-based cluster membership and dissemination.
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
    Agent(agent_cmd::AgentArgs),
    /// Run deterministic simulations of many nodes in virtual time.
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        TopCommand::Sim(args) => sim_cmd::run(args),
        TopCommand::Agent(args) => agent_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
