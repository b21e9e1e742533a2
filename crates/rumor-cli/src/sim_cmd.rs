//! `rumor sim ...`: run rumor-sim scenarios and print their reports.

use std::io::{IsTerminal, Write};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rumor_proto::{Instant, Profile};
use rumor_sim::{MembershipParams, MembershipRun};

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
}

/// Flags of `rumor sim membership`.
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
    /// Protocol profile: lan, wan or local.
    #[arg(long, default_value = "lan")]
    profile: Profile,
    /// Plain SWIM: turn the Lifeguard refinements off.
    #[arg(long)]
    no_lifeguard: bool,
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
    }
}

fn membership(args: MembershipArgs) -> anyhow::Result<()> {
    let params = MembershipParams {
        nodes: args.nodes,
        seed: args.seed,
        duration: args.duration,
        loss: args.loss,
        latency: args.latency_ms,
        jitter: args.jitter_ms.unwrap_or(args.latency_ms / 2),
        crash: args.crash,
        slow: args.slow,
        slow_run: args.slow_run_ms,
        slow_freeze: args.slow_freeze_ms,
        profile: args.profile,
        lifeguard: !args.no_lifeguard,
    };
    let total_ms = u64::try_from(params.duration.as_millis()).unwrap_or(u64::MAX);
    let mut run = MembershipRun::new(params)?;
    let bar = progress_bar(total_ms);
    let started = std::time::Instant::now();
    let mut progress = |now: Instant| {
        if let Some(bar) = &bar {
            if bar.is_hidden() && started.elapsed() >= PROGRESS_AFTER {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            bar.set_position(now.as_nanos() / 1_000_000);
        }
    };
    let report = run.run(&mut progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report).context("writing the report")?;
        writeln!(out).context("writing the report")?;
    } else {
        write!(out, "{report}").context("writing the report")?;
    }
    out.flush().context("writing the report")?;
    Ok(())
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
