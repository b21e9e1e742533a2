//! `rumor-faults`: the real-network fault suite. It builds hosts as Linux
//! network namespaces on a bridge, runs one `rumor agent` per host, injects
//! faults with iptables, a user-space NFQUEUE delayer and signals, drives a
//! write workload through the agents' HTTP APIs, and checks what must hold
//! once each fault heals. Needs root, iproute2 and iptables.

mod agent_process;
mod api_client;
mod checker;
mod cluster;
mod delayer;
mod firewall;
mod netns;
mod report;
mod scenarios;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rumor_proto::Profile;

use crate::agent_process::AgentSettings;
use crate::checker::Bounds;
use crate::report::{RunReport, Settings};
use crate::scenarios::{Durations, SuiteOptions};

#[derive(Parser)]
#[command(
    name = "rumor-faults",
    version,
    about = "Run rumor agents in network namespaces under injected faults and check that they heal"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and write the report.
    Run(RunArgs),
    /// List the scenarios.
    List,
    /// Remove namespaces (and their processes) a previous run left behind.
    Cleanup,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenarios to run, by name or letter, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// The short version (CI): faults held for seconds rather than a minute.
    #[arg(long)]
    short: bool,
    /// Hosts, each running one agent.
    #[arg(long, default_value_t = 6)]
    hosts: usize,
    /// The rumor binary to run.
    #[arg(long, default_value = "target/release/rumor")]
    rumor: PathBuf,
    /// `--profile` of the agents.
    #[arg(long, default_value = "local")]
    profile: Profile,
    /// A flag passed to every agent (repeatable); `{node}` and `{scenario}`
    /// stand for their names, e.g. --agent-arg=--data-dir=/tmp/faults/{scenario}/{node}.
    #[arg(long = "agent-arg", allow_hyphen_values = true)]
    agent_args: Vec<String>,
    /// Concurrent writers.
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Writes per second per writer.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds after the heal within which digests and membership must agree.
    #[arg(long, default_value_t = 60)]
    heal_within: u64,
    /// Peak resident memory allowed per agent, MiB.
    #[arg(long, default_value_t = 256)]
    rss_limit_mib: u64,
    /// Directory for report.json, report.md and the agents' logs.
    #[arg(long, default_value = "target/faults")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::List => {
            for s in scenarios::ALL {
                println!("{} {:16} {}", s.letter, s.id, s.about);
            }
            Ok(())
        }
        Command::Cleanup => {
            require_root()?;
            let n = netns::remove_leftovers()?;
            println!("removed {n} namespaces");
            Ok(())
        }
        Command::Run(args) => run(args),
    }
}

fn require_root() -> anyhow::Result<()> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("rumor-faults creates network namespaces and firewall rules: run it as root");
    }
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    require_root()?;
    let binary = std::fs::canonicalize(&args.rumor).with_context(|| {
        format!(
            "no rumor binary at {}; build it with `cargo build --release -p rumor-cli` or pass --rumor",
            args.rumor.display()
        )
    })?;
    let chosen: Vec<&scenarios::Scenario> = if args.scenarios.is_empty() {
        scenarios::ALL.iter().collect()
    } else {
        args.scenarios
            .iter()
            .map(|name| {
                scenarios::ALL
                    .iter()
                    .find(|s| s.id == name || s.letter == name)
                    .with_context(|| {
                        format!("no scenario {name:?}; `rumor-faults list` shows them")
                    })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let left = netns::remove_leftovers()?;
    if left > 0 {
        tracing::warn!(
            namespaces = left,
            "removed namespaces a previous run left behind"
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let config = args.profile.config();
    let suspicion = config.suspicion_min_timeout(args.hosts);
    let suspicion_max = config.suspicion_max_timeout(args.hosts);
    let timings: BTreeMap<String, String> = [
        ("probe interval", config.probe_interval),
        ("probe timeout", config.probe_timeout),
        ("gossip interval", config.gossip_interval),
        ("suspicion timeout min", suspicion),
        ("suspicion timeout max", suspicion_max),
        ("push-pull interval", config.push_pull_interval),
        ("anti-entropy interval", config.state.anti_entropy_interval),
        ("reconnect interval", config.reconnect_interval),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), format!("{v:?}")))
    .collect();
    let bounds = Bounds {
        heal_within: Duration::from_secs(args.heal_within),
        rss_limit_kib: args.rss_limit_mib * 1024,
    };
    let mut report = RunReport {
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        settings: Settings {
            binary: binary.display().to_string(),
            profile: args.profile.name().to_string(),
            extra_args: args.agent_args.clone(),
            hosts: args.hosts,
            short: args.short,
            timings,
            workload: format!("{} writers × {}/s", args.writers, args.rate),
            heal_within_s: bounds.heal_within.as_secs_f64(),
            rss_limit_mib: args.rss_limit_mib,
        },
        scenarios: Vec::new(),
    };
    let agent_args = agent_args(&args);
    for s in chosen {
        let log_dir = args.out.join("logs").join(s.id);
        let _ = std::fs::remove_dir_all(&log_dir);
        // Every scenario starts its agents on empty data directories.
        let _ = std::fs::remove_dir_all(args.out.join("data").join(s.id));
        std::fs::create_dir_all(&log_dir)?;
        let options = SuiteOptions {
            hosts: args.hosts,
            agents: AgentSettings {
                binary: binary.clone(),
                profile: args.profile.name().to_string(),
                extra_args: agent_args.clone(),
                scenario: s.id.to_string(),
                log_dir,
            },
            durations: if args.short {
                Durations::short()
            } else {
                Durations::full()
            },
            bounds,
            writers: args.writers,
            writes_per_second: args.rate,
            suspicion,
            suspicion_max,
        };
        tracing::info!(scenario = s.id, "starting: {}", s.about);
        let r = scenarios::run(s, &options);
        tracing::info!(
            scenario = s.id,
            passed = r.passed,
            "finished in {:.0} s",
            r.duration_s
        );
        report.scenarios.push(r);
        write_report(&report, &args.out)?;
    }
    let table = report.table();
    println!("{table}");
    println!(
        "report: {} and {}",
        args.out.join("report.json").display(),
        args.out.join("report.md").display()
    );
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    println!(
        "faults: {passed} passed, {} failed",
        report.scenarios.len() - passed
    );
    if !report.passed() {
        bail!(
            "some scenarios failed; see the table above and the agents' logs under {}",
            args.out.join("logs").display()
        );
    }
    Ok(())
}

fn write_report(report: &RunReport, dir: &std::path::Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("report.md"), report.table())?;
    Ok(())
}

/// The flags every agent gets: those given with `--agent-arg`, plus a data
/// directory per scenario and node and the cluster key the agents share
/// (generated for the run), unless `--agent-arg` chose otherwise.
fn agent_args(args: &RunArgs) -> Vec<String> {
    let mut out = args.agent_args.clone();
    if !out.iter().any(|a| a.starts_with("--data-dir")) {
        let data = args.out.join("data").join("{scenario}").join("{node}");
        out.push(format!("--data-dir={}", data.display()));
    }
    if !out
        .iter()
        .any(|a| a.starts_with("--encrypt-key") || a.starts_with("--keyring") || a == "--plaintext")
    {
        out.push(format!(
            "--encrypt-key={}",
            rumor::Key::generate().to_base64()
        ));
    }
    out
}
