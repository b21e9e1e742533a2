//! `rumor-bench`: rumor side by side with chitchat, foca, HashiCorp
//! memberlist and Serf, on the same machine, workload and settings.

mod compare;
mod host;
mod netns;
mod report;
mod scenario;
mod settings;
mod swarm;
mod systems;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::scenario::Plan;
use crate::settings::Settings;

#[derive(Parser)]
#[command(
    name = "rumor-bench",
    about = "Benchmarks rumor against other gossip systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every scenario on every system, sizes and loss rates, each in a
    /// network namespace of its own, and print the table.
    Compare(compare::Args),
    /// One seeded run of one system in the current network namespace;
    /// prints its outcome as JSON (what `compare` runs in each namespace).
    Run(RunArgs),
}

/// A system under test.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum System {
    /// rumor nodes in one process.
    Rumor,
    /// rumor nodes in one process on the `fast` profile (probes five
    /// times as often; everything else as `rumor`).
    RumorFast,
    /// chitchat nodes in one process.
    Chitchat,
    /// foca nodes in one process.
    Foca,
    /// HashiCorp memberlist nodes in one Go process.
    Memberlist,
    /// `rumor agent` processes.
    RumorAgent,
    /// `serf agent` processes.
    SerfAgent,
}

impl System {
    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            System::Rumor => "rumor",
            System::RumorFast => "rumor (fast)",
            System::Chitchat => "chitchat",
            System::Foca => "foca",
            System::Memberlist => "memberlist",
            System::RumorAgent => "rumor agent",
            System::SerfAgent => "serf agent",
        }
    }
}

/// How long each phase of a run lasts.
#[derive(clap::Args, Clone, Debug)]
pub struct Timing {
    /// Seconds from join convergence to the steady-state window.
    #[arg(long, default_value_t = 5)]
    pub settle_secs: u64,
    /// Seconds of steady state to measure traffic over.
    #[arg(long, default_value_t = 10)]
    pub steady_secs: u64,
    /// Longest wait for each scenario, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

impl Timing {
    /// The same timing as `run` flags.
    pub fn to_args(&self) -> [String; 3] {
        [
            format!("--settle-secs={}", self.settle_secs),
            format!("--steady-secs={}", self.steady_secs),
            format!("--timeout-secs={}", self.timeout_secs),
        ]
    }
}

#[derive(clap::Args, Clone, Debug)]
struct RunArgs {
    #[arg(long, value_enum)]
    system: System,
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    timing: Timing,
    /// The namespace holds only this run: loopback counters are its traffic.
    #[arg(long)]
    isolated: bool,
    /// The memberlist harness binary (built by `compare`).
    #[arg(long)]
    memberlist_bin: Option<PathBuf>,
    /// The `rumor` binary, for agent runs.
    #[arg(long)]
    rumor_bin: Option<PathBuf>,
    /// A scratch directory for agent runs.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Compare(args) => runtime.block_on(compare::compare(args)),
        Command::Run(args) => {
            let outcome = runtime.block_on(run(args))?;
            println!("{}", serde_json::to_string(&outcome)?);
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> Result<scenario::Outcome> {
    let settings = Settings::default();
    let plan = Plan {
        nodes: args.nodes,
        seed: args.seed,
        settle: Duration::from_secs(args.timing.settle_secs),
        steady: Duration::from_secs(args.timing.steady_secs),
        isolated: args.isolated,
        timeout: Duration::from_secs(args.timing.timeout_secs),
    };
    if args.nodes < 2 {
        bail!("--nodes must be at least 2: one to crash, one to notice");
    }
    match args.system {
        System::Rumor | System::RumorFast => {
            let protocol = if args.system == System::RumorFast {
                settings.rumor_fast_config()
            } else {
                settings.rumor_config()
            };
            let mut swarm =
                systems::rumor::RumorSwarm::start(args.nodes, protocol, args.seed).await?;
            scenario::run(&mut swarm, &plan).await
        }
        #[cfg(feature = "peers")]
        System::Chitchat => {
            let mut swarm =
                systems::chitchat::ChitchatSwarm::start(args.nodes, &settings, args.seed).await?;
            scenario::run(&mut swarm, &plan).await
        }
        #[cfg(feature = "peers")]
        System::Foca => {
            let mut swarm =
                systems::foca::FocaSwarm::start(args.nodes, &settings, args.seed).await?;
            scenario::run(&mut swarm, &plan).await
        }
        #[cfg(not(feature = "peers"))]
        System::Chitchat | System::Foca => {
            bail!("this build has no Rust peers: build rumor-bench with `--features peers`")
        }
        System::Memberlist => {
            let Some(bin) = args.memberlist_bin else {
                bail!("--memberlist-bin is required for memberlist runs (compare builds it)");
            };
            let mut swarm =
                systems::memberlist::MemberlistSwarm::start(&bin, args.nodes, &settings, args.seed)
                    .await?;
            scenario::run(&mut swarm, &plan).await
        }
        System::RumorAgent | System::SerfAgent => {
            let agent = match args.system {
                System::RumorAgent => {
                    let bin = match args.rumor_bin {
                        Some(b) => b,
                        None => std::env::current_exe()?.with_file_name("rumor"),
                    };
                    systems::agents::Agent::Rumor(bin)
                }
                _ => systems::agents::Agent::Serf,
            };
            let dir = args.work_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("rumor-bench-agents-{}", std::process::id()))
            });
            let mut swarm = systems::agents::AgentSwarm::start(agent, args.nodes, &dir).await?;
            scenario::run(&mut swarm, &plan).await
        }
    }
}
