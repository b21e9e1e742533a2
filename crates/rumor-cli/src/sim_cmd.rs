//! `rumor sim ...`: run rumor-sim scenarios and print their reports.

use std::io::{IsTerminal, Write};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rumor_proto::{Instant, Mode, Profile, Termination};
use rumor_sim::broadcast_sweep::{SweepParams, run_sweep};
use rumor_sim::{Bootstrap, BroadcastParams, BroadcastRun, MembershipParams, MembershipRun};

/// Show the progress bar only once a run has taken this long.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

/// `rumor sim`: simulations.
#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// A cluster joins through node-0; some nodes crash half-way, some are
    /// slow; report convergence, detection times, false positives and cost.
    Membership(MembershipArgs),
    /// A cluster forms and converges; user events are broadcast from random
    /// nodes; report coverage and residue, rounds and time until every node
    /// has them, messages per node, redundancy and last delivery hop.
    Broadcast(BroadcastArgs),
    /// Every broadcast mode × termination rule (k = 4, fanout 3) and the
    /// fanout-1 theory references, at each size and loss, one run after
    /// another; writes `OUT/dissemination-table.md` and
    /// `OUT/plots/coverage-MODE-nN.svg`.
    BroadcastReport(BroadcastReportArgs),
    /// A cluster holding a replicated key-value store takes random writes
    /// (some concurrent on one key) under a partition, loss and crashes;
    /// report convergence, lost writes, siblings and cost.
    Kv(KvArgs),
    /// Two replicas that differ in a few entries run one anti-entropy
    /// exchange; report its bytes, overhead and round trips.
    Sync(SyncArgs),
}

/// Flags of `rumor sim kv`.
#[derive(Debug, Args)]
struct KvArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Seed: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keys every node holds at the start.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Writes through random nodes between 5 s and `duration − 30 s`.
    #[arg(long, default_value_t = 1000)]
    writes: usize,
    /// Fraction of nodes cut off from the rest (0: no partition).
    #[arg(long, default_value_t = 0.0)]
    partition: f64,
    /// Partition start, seconds.
    #[arg(long, default_value_t = 30.0)]
    partition_start: f64,
    /// Partition end (heal), seconds.
    #[arg(long, default_value_t = 90.0)]
    partition_end: f64,
    /// Datagram loss probability.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Nodes that crash at a third of the run and restart 20 s later.
    #[arg(long, default_value_t = 0)]
    crash: usize,
    /// Length of the run in seconds (it continues until convergence).
    #[arg(long, default_value_t = 120.0)]
    duration: f64,
    /// Protocol profile.
    #[arg(long, default_value = "lan")]
    profile: Profile,
    /// How the cluster forms: formed (every node starts with the whole
    /// member table, no joins) or join (nodes join through node-0 over
    /// `min(2 s, nodes × 2 ms)`, while the first writes are made).
    #[arg(long, default_value = "formed")]
    bootstrap: Bootstrap,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Flags of `rumor sim sync`.
#[derive(Debug, Args)]
struct SyncArgs {
    /// Entries each replica holds.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Entries that differ.
    #[arg(long, default_value_t = 100)]
    diff: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Flags of `rumor sim broadcast-report`.
#[derive(Debug, Args)]
struct BroadcastReportArgs {
    /// Output directory (the docs directory).
    #[arg(long, value_name = "DIR")]
    out: std::path::PathBuf,
    /// Cluster sizes, comma-separated (a 10,000-node run takes 20 to 30 s of
    /// CPU time and about 9.5 GB).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1000,10000"
    )]
    nodes: Vec<usize>,
    /// Datagram loss rates, comma-separated, each in [0, 1).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "0,0.1"
    )]
    loss: Vec<f64>,
    /// Seed of every run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Updates broadcast per run.
    #[arg(long, value_name = "U", default_value_t = 10)]
    updates: usize,
}

/// Flags of `rumor sim membership`.
/// The simulated network, shared by the scenarios.
#[derive(Debug, Args)]
struct NetworkArgs {
    /// Datagram loss probability, in [0, 1).
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    loss: f64,
    /// One-way network latency, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "1", value_parser = parse_ms)]
    latency_ms: Duration,
    /// Maximum extra latency per packet, in milliseconds [default: half the latency].
    #[arg(long, value_name = "MS", value_parser = parse_ms)]
    jitter_ms: Option<Duration>,
}

impl NetworkArgs {
    /// (loss, latency, jitter), the jitter defaulting to half the latency.
    fn model(&self) -> (f64, Duration, Duration) {
        let jitter = self.jitter_ms.unwrap_or(self.latency_ms / 2);
        (self.loss, self.latency_ms, jitter)
    }
}

#[derive(Debug, Args)]
struct MembershipArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Seed of every random choice; the same seed gives the same report.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual duration, in seconds.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    duration: Duration,
    #[command(flatten)]
    network: NetworkArgs,
    /// Random nodes (never node-0) that crash at half the duration.
    #[arg(long, value_name = "K", default_value_t = 0)]
    crash: usize,
    /// Other random nodes that are slow throughout (alternately frozen and running).
    #[arg(long, value_name = "K", default_value_t = 0)]
    slow: usize,
    /// Frozen periods of slow nodes, in milliseconds.
    #[arg(long, value_name = "MIN..MAX", default_value = "1000..10000", value_parser = parse_ms_range)]
    slow_freeze_ms: RangeInclusive<Duration>,
    /// Running periods of slow nodes, in milliseconds.
    #[arg(long, value_name = "MIN..MAX", default_value = "1000..5000", value_parser = parse_ms_range)]
    slow_run_ms: RangeInclusive<Duration>,
    /// Protocol profile: lan, fast, wan or local.
    #[arg(long, default_value = "lan")]
    profile: Profile,
    /// Plain SWIM: turn the Lifeguard refinements off.
    #[arg(long)]
    no_lifeguard: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Flags of `rumor sim broadcast`.
#[derive(Debug, Args)]
struct BroadcastArgs {
    /// Cluster size (at least 2).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Seed of every random choice; the same seed gives the same report.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Exchange mode: push, pull or push-pull [default: the profile's, push].
    #[arg(long)]
    mode: Option<Mode>,
    /// Termination rule: feedback-counter, feedback-coin, blind-counter,
    /// blind-coin or transmit-limit [default: the profile's, feedback-counter].
    #[arg(long)]
    termination: Option<Termination>,
    /// The k of the counter and coin rules [default: the profile's, 4].
    #[arg(long, value_name = "K")]
    k: Option<u32>,
    /// Peers contacted per round [default: the profile's, 3].
    #[arg(long)]
    fanout: Option<usize>,
    /// Adaptive fanout: a rumor in its r-th round goes to 2 × fanout / 2^r peers.
    #[arg(long)]
    adaptive_fanout: bool,
    /// Push each rumor new to a node this many milliseconds after it
    /// arrives instead of at the next round (the profiles use 5); off by
    /// default here, so that rounds mean what the theory counts.
    #[arg(long, value_name = "MS", value_parser = parse_ms)]
    eager_push_ms: Option<Duration>,
    /// Time between two dissemination rounds, in milliseconds [default: the profile's, 200].
    #[arg(long, value_name = "MS", value_parser = parse_ms)]
    interval_ms: Option<Duration>,
    /// Background anti-entropy on (off by default, so that a termination
    /// rule's residue shows).
    #[arg(long)]
    anti_entropy: bool,
    /// Outgoing bandwidth budget of every node, in bytes per second [default: unlimited].
    #[arg(long, value_name = "BYTES_PER_S")]
    bandwidth: Option<u64>,
    /// Number of updates (user events) broadcast, each from a random node.
    #[arg(long, value_name = "U", default_value_t = 10)]
    updates: usize,
    /// Time between two injections, in milliseconds [default: one interval].
    #[arg(long, value_name = "MS", value_parser = parse_ms)]
    spacing_ms: Option<Duration>,
    /// Payload of each update, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    payload_bytes: usize,
    /// The run ends at the latest this many virtual seconds after the last injection.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    duration: Duration,
    /// How the cluster forms: formed (every node starts with the whole
    /// member table, no joins: fast at any size), direct (node-0 contacts
    /// every node, then every node takes node-0's member list) or join
    /// (nodes join through node-0 over a few seconds, as in `sim membership`).
    #[arg(long, default_value = "formed")]
    bootstrap: Bootstrap,
    /// Longest wait for membership to converge, in virtual seconds.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_secs)]
    converge_timeout: Duration,
    /// Wait between membership convergence and the first update, in
    /// milliseconds; its last 2 s (at most half) measure the idle membership
    /// traffic [default: 4 s with --bootstrap formed, otherwise twice the
    /// membership settle time, plus 2 s].
    #[arg(long, value_name = "MS", value_parser = parse_ms)]
    settle_ms: Option<Duration>,
    #[command(flatten)]
    network: NetworkArgs,
    /// Protocol profile: lan, fast, wan or local.
    #[arg(long, default_value = "lan")]
    profile: Profile,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err("must be a number greater than 0".to_string());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn parse_ms(s: &str) -> Result<Duration, String> {
    let ms: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !ms.is_finite() || ms < 0.0 {
        return Err("must be a number, not negative".to_string());
    }
    Duration::try_from_secs_f64(ms / 1e3).map_err(|e| e.to_string())
}

fn parse_ms_range(s: &str) -> Result<RangeInclusive<Duration>, String> {
    let (lo, hi) = s
        .split_once("..")
        .ok_or_else(|| format!("{s:?} is not a range MIN..MAX"))?;
    let (lo, hi) = (parse_ms(lo)?, parse_ms(hi)?);
    if lo.is_zero() || lo > hi {
        return Err(format!("{s:?}: need 0 < MIN <= MAX"));
    }
    Ok(lo..=hi)
}

/// Run `rumor sim ...`.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Membership(m) => membership(m),
        Scenario::Broadcast(b) => broadcast(b),
        Scenario::BroadcastReport(r) => broadcast_report(r),
        Scenario::Kv(k) => kv(k),
        Scenario::Sync(s) => sync(s),
    }
}

fn kv(args: KvArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes > 0, "--nodes must be at least 1");
    anyhow::ensure!(
        (0.0..1.0).contains(&args.partition),
        "--partition is a fraction of the nodes, in [0, 1)"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.loss),
        "--loss is a probability, in [0, 1]"
    );
    anyhow::ensure!(
        args.partition_start <= args.partition_end,
        "--partition-start must not be after --partition-end"
    );
    anyhow::ensure!(
        args.bootstrap != Bootstrap::Direct,
        "--bootstrap for `sim kv` is formed or join"
    );
    let params = rumor_sim::KvParams {
        nodes: args.nodes,
        seed: args.seed,
        keys: args.keys,
        writes: args.writes,
        partition: args.partition,
        partition_start: args.partition_start,
        partition_end: args.partition_end,
        loss: args.loss,
        crash: args.crash.min(args.nodes.saturating_sub(1)),
        duration: args.duration,
        profile: args.profile,
        bootstrap: args.bootstrap,
        ..rumor_sim::KvParams::default()
    };
    let (report, sim) = with_progress(spinner(), |progress| {
        rumor_sim::run_kv_keeping_sim(&params, progress)
    })?;
    // The process ends after printing: the operating system takes the
    // simulation's memory back at once, where freeing it piece by piece
    // takes seconds at 1,000 nodes.
    std::mem::forget(sim);
    let json = serde_json::to_string(&report).map_err(anyhow::Error::from);
    print_report(json, &report, args.json)
}

fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let report = rumor_sim::run_sync(args.keys, args.diff, args.seed)?;
    let json = serde_json::to_string(&report).map_err(anyhow::Error::from);
    print_report(json, &report, args.json)
}

fn membership(args: MembershipArgs) -> anyhow::Result<()> {
    let (loss, latency, jitter) = args.network.model();
    let params = MembershipParams {
        nodes: args.nodes,
        seed: args.seed,
        duration: args.duration,
        loss,
        latency,
        jitter,
        crash: args.crash,
        slow: args.slow,
        slow_run: args.slow_run_ms,
        slow_freeze: args.slow_freeze_ms,
        profile: args.profile,
        lifeguard: !args.no_lifeguard,
    };
    let total_ms = u64::try_from(params.duration.as_millis()).unwrap_or(u64::MAX);
    let mut run = MembershipRun::new(params)?;
    let report = with_progress(progress_bar(total_ms), |progress| run.run(progress));
    exit_without_freeing(run);
    let json = serde_json::to_string(&report).map_err(anyhow::Error::from);
    print_report(json, &report, args.json)
}

/// Leave a finished simulation to the operating system: the process exits
/// once its report is printed, and freeing up to 10^8 member records one by
/// one would only add seconds to a large run.
fn exit_without_freeing<T>(run: T) {
    core::mem::forget(run);
}

/// Run `f` with a progress callback that moves `bar` (in virtual
/// milliseconds), shown on stderr only once the run has lasted
/// `PROGRESS_AFTER`, and cleared at the end.
fn with_progress<R>(bar: Option<ProgressBar>, f: impl FnOnce(&mut dyn FnMut(Instant)) -> R) -> R {
    let started = std::time::Instant::now();
    let mut progress = |now: Instant| {
        if let Some(bar) = &bar {
            if bar.is_hidden() && started.elapsed() >= PROGRESS_AFTER {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            bar.set_position(now.as_nanos() / 1_000_000);
        }
    };
    let out = f(&mut progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    out
}

fn broadcast(args: BroadcastArgs) -> anyhow::Result<()> {
    let (loss, latency, jitter) = args.network.model();
    let defaults = BroadcastParams::with_profile(args.profile);
    let params = BroadcastParams {
        nodes: args.nodes,
        seed: args.seed,
        bootstrap: args.bootstrap,
        mode: args.mode.unwrap_or(defaults.mode),
        termination: args.termination.unwrap_or(defaults.termination),
        k: args.k.unwrap_or(defaults.k),
        fanout: args.fanout.unwrap_or(defaults.fanout),
        interval: args.interval_ms.unwrap_or(defaults.interval),
        anti_entropy: args.anti_entropy,
        bandwidth: args.bandwidth,
        adaptive_fanout: args.adaptive_fanout,
        eager_push: args.eager_push_ms,
        loss,
        latency,
        jitter,
        updates: args.updates,
        spacing: args.spacing_ms,
        payload_bytes: args.payload_bytes,
        duration: args.duration,
        converge_timeout: args.converge_timeout,
        settle: args.settle_ms,
        ..defaults
    };
    let mut run = BroadcastRun::new(params)?;
    let report = with_progress(spinner(), |progress| run.run(progress));
    exit_without_freeing(run);
    let json = serde_json::to_string(&report).map_err(anyhow::Error::from);
    print_report(json, &report, args.json)
}

fn broadcast_report(args: BroadcastReportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.nodes.is_empty(), "--nodes needs at least one size");
    anyhow::ensure!(!args.loss.is_empty(), "--loss needs at least one rate");
    let join = |v: Vec<String>| v.join(",");
    let command = format!(
        "rumor sim broadcast-report --out {} --nodes {} --loss {} --seed {} --updates {}",
        args.out.display(),
        join(args.nodes.iter().map(ToString::to_string).collect()),
        join(args.loss.iter().map(ToString::to_string).collect()),
        args.seed,
        args.updates
    );
    let params = SweepParams {
        nodes: args.nodes,
        loss: args.loss,
        seed: args.seed,
        updates: args.updates,
        ..SweepParams::default()
    };
    let plots_dir = args.out.join("plots");
    std::fs::create_dir_all(&plots_dir)
        .with_context(|| format!("creating {}", plots_dir.display()))?;
    eprintln!("{command}: {} runs, one after another", params.runs());
    let started = std::time::Instant::now();
    let sweep = run_sweep(&params, &mut |i, total, row| {
        let r = &row.report;
        let rounds = r
            .rounds_to_all
            .p50
            .map_or_else(|| "-".to_string(), |x| format!("{x:.1}"));
        eprintln!(
            "[{i}/{total}] n={} loss={} {} {} k={} fanout={}: coverage {:.4}, rounds p50 {rounds}, m {:.2} ({:.1} s, total {:.0} s)",
            r.nodes,
            r.loss,
            r.mode,
            r.termination,
            r.k,
            r.fanout,
            r.coverage,
            r.traffic_per_node,
            r.wall_s,
            started.elapsed().as_secs_f64()
        );
    })?;
    let table = args.out.join("dissemination-table.md");
    std::fs::write(&table, sweep.table_markdown(&command))
        .with_context(|| format!("writing {}", table.display()))?;
    eprintln!("wrote {}", table.display());
    for (name, svg) in sweep.plots() {
        let path = plots_dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Print a report on stdout: `json` (one line) with `--json`, else `table`.
fn print_report(
    json: anyhow::Result<String>,
    table: &dyn std::fmt::Display,
    as_json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let json = json.context("writing the report")?;
        writeln!(out, "{json}").context("writing the report")?;
    } else {
        write!(out, "{table}").context("writing the report")?;
    }
    out.flush().context("writing the report")?;
    Ok(())
}

/// A counter of virtual milliseconds on stderr (the length of a run is not
/// known beforehand), hidden until the run has taken [`PROGRESS_AFTER`];
/// none at all when stderr is not a terminal.
fn spinner() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} virtual ms")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// A bar of virtual milliseconds on stderr, hidden until the run has taken
/// [`PROGRESS_AFTER`]; none at all when stderr is not a terminal.
fn progress_bar(total_ms: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} virtual ms (eta {eta})",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_ranges() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-3").is_err());
        assert!(parse_secs("NaN").is_err());
        assert_eq!(parse_ms("0.5"), Ok(Duration::from_micros(500)));
        assert!(parse_ms("x").is_err());
        assert_eq!(
            parse_ms_range("100..200"),
            Ok(Duration::from_millis(100)..=Duration::from_millis(200))
        );
        assert!(parse_ms_range("200..100").is_err());
        assert!(parse_ms_range("0..100").is_err());
        assert!(parse_ms_range("100").is_err());
    }
}
