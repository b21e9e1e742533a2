//! `rumor-bench compare`: every system, size, loss rate and seed, each run
//! in a network namespace of its own; then the table.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::process::Command;

use crate::netns::{self, Namespace};
use crate::report::{self, RunRecord};
use crate::settings::Settings;
use crate::{System, Timing};

/// What `compare` runs.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Systems to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "rumor,chitchat,foca,memberlist"
    )]
    systems: Vec<System>,
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    nodes: Vec<usize>,
    /// Seeded runs per configuration (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: u64,
    /// Packet loss rates on the INPUT hook (0 to 1).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    loss: Vec<f64>,
    #[command(flatten)]
    timing: Timing,
    /// Where results.json and results.md go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Run in the current network namespace (no root needed): no loss, and
    /// no traffic figures since other programs share the loopback.
    #[arg(long)]
    no_netns: bool,
    /// The `rumor` binary for agent runs (default: next to this one).
    #[arg(long)]
    rumor_bin: Option<PathBuf>,
}

/// The Go harness's sources, in this crate.
fn harness_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go/memberlist-harness")
}

/// Build the memberlist harness offline against Debian's Go packages.
async fn build_memberlist_harness(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("memberlist-harness");
    let gopath = dir.join("gopath");
    std::fs::create_dir_all(&gopath)?;
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(harness_source())
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .env("GOFLAGS", "-mod=")
        .status()
        .await
        .context("running go: install golang-go and golang-github-hashicorp-memberlist-dev")?;
    if !status.success() {
        bail!(
            "building the memberlist harness failed ({status}): is golang-github-hashicorp-memberlist-dev installed?"
        );
    }
    Ok(bin)
}

/// Run everything and write the results.
pub async fn compare(args: Args) -> Result<()> {
    if args.no_netns && args.loss.iter().any(|&l| l > 0.0) {
        bail!("loss needs network namespaces: drop --no-netns (and run as root)");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out)?;
    if !args.no_netns {
        netns::remove_stale();
    }
    let memberlist_bin = if args.systems.contains(&System::Memberlist) {
        Some(build_memberlist_harness(&out).await?)
    } else {
        None
    };
    let exe = std::env::current_exe()?;
    let settings = Settings::default();
    eprintln!("settings: {}", settings.describe());

    let mut records = Vec::new();
    let mut k = 0;
    for &loss in &args.loss {
        for &nodes in &args.nodes {
            for seed in 1..=args.runs {
                for &system in &args.systems {
                    k += 1;
                    let run = tokio::select! {
                        r = run_one(&args, &exe, memberlist_bin.as_deref(), &out, system, nodes, loss, seed, k) => r,
                        _ = tokio::signal::ctrl_c() => {
                            // The namespace guards drop as the future is dropped.
                            bail!("interrupted; the namespaces this run made are removed");
                        }
                    };
                    let (outcome, error) = match run {
                        Ok(o) => (Some(o), None),
                        Err(e) => (None, Some(format!("{e:#}"))),
                    };
                    eprintln!(
                        "{:<11} N={nodes:<3} loss={loss} seed={seed}: {}",
                        system.label(),
                        match (&outcome, &error) {
                            (Some(o), _) => serde_json::to_string(o)?,
                            (_, Some(e)) => format!("failed: {e}"),
                            _ => String::new(),
                        }
                    );
                    records.push(RunRecord {
                        system,
                        nodes,
                        loss,
                        seed,
                        outcome,
                        error,
                    });
                }
            }
        }
    }

    let summaries = report::summarize(&records);
    let md = report::markdown(&summaries);
    let command: Vec<String> = std::env::args().collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let header = format!(
        "Settings: {}.\n\nCommand: `{}`. Machine: {} cores, load average at the end {}. \
         Cells are medians over seeded runs; [x] is rumor's median divided by that system's \
         (below 1: rumor is faster or lighter).\n",
        settings.describe(),
        command.join(" "),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let summary_json: Vec<_> = summaries
        .iter()
        .map(|((loss, nodes, system), s)| {
            json!({"system": system, "nodes": nodes, "loss": *loss as f64 / 1000.0, "summary": s})
        })
        .collect();
    let doc = json!({
        "settings": settings,
        "command": command,
        "summaries": summary_json,
        "runs": records,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    std::fs::write(out.join("results.md"), format!("{header}{md}"))?;
    println!("{header}{md}");
    eprintln!(
        "wrote {} and {}",
        out.join("results.json").display(),
        out.join("results.md").display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    args: &Args,
    exe: &Path,
    memberlist_bin: Option<&Path>,
    out: &Path,
    system: System,
    nodes: usize,
    loss: f64,
    seed: u64,
    k: usize,
) -> Result<crate::scenario::Outcome> {
    let ns = if args.no_netns {
        None
    } else {
        Some(Namespace::create(&k.to_string(), loss)?)
    };
    let mut argv: Vec<String> = ns.as_ref().map(|n| n.exec_prefix()).unwrap_or_default();
    argv.push(exe.display().to_string());
    argv.extend([
        "run".to_string(),
        format!(
            "--system={}",
            clap::ValueEnum::to_possible_value(&system)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ),
        format!("--nodes={nodes}"),
        format!("--seed={seed}"),
        format!("--work-dir={}", out.join(format!("run-{k}")).display()),
    ]);
    argv.extend(args.timing.to_args());
    if ns.is_some() {
        argv.push("--isolated".into());
    }
    if let Some(bin) = memberlist_bin {
        argv.push(format!("--memberlist-bin={}", bin.display()));
    }
    if let Some(bin) = &args.rumor_bin {
        argv.push(format!("--rumor-bin={}", bin.display()));
    }
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        // The error chain, not a backtrace, is what the table's note needs.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", argv.join(" ")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "run failed ({}): {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("reading the run's outcome from {line:?}"))
}
