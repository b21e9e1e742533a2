//! `rumor`: the gossip agent, its command-line client and the simulator
//! front-end. Only `rumor sim membership` and `rumor sim broadcast` exist so
//! far; `agent`, `members` and the other subcommands will sit beside `sim`.

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
    /// Run deterministic simulations of many nodes in virtual time.
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        TopCommand::Sim(args) => sim_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
