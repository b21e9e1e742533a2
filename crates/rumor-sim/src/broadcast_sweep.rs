//! The sweep behind `rumor sim broadcast-report`: the `broadcast` scenario
//! for every mode × termination rule (k = 4, fanout 3, no anti-entropy) and
//! two theory references (push and push-pull, fanout 1, blind counter with
//! k = 60, so that the rumor outlives the spreading), at each cluster size
//! and loss rate, one run after another; then a markdown table
//! ([`Sweep::table_markdown`]) and coverage-by-round plots
//! ([`Sweep::plots`]) for `docs/`.
//!
//! ```
//! use rumor_sim::broadcast_sweep::{SweepParams, run_sweep};
//!
//! let params = SweepParams {
//!     nodes: vec![20],
//!     loss: vec![0.0],
//!     updates: 1,
//!     ..SweepParams::default()
//! };
//! let sweep = run_sweep(&params, &mut |_, _, _| {}).unwrap();
//! assert_eq!(sweep.rows.len(), 17);
//! ```

use core::fmt::Write as _;

use rumor_proto::{Mode, Profile, Termination};

use crate::broadcast_run::{BroadcastError, BroadcastParams, BroadcastReport, run_broadcast};
use crate::svg_plot::{LineChart, Series};

/// The modes swept, in table order.
pub const MODES: [Mode; 3] = [Mode::Push, Mode::Pull, Mode::PushPull];

/// The termination rules swept, in table order.
pub const TERMINATIONS: [Termination; 5] = [
    Termination::FeedbackCounter,
    Termination::FeedbackCoin,
    Termination::BlindCounter,
    Termination::BlindCoin,
    Termination::TransmitLimit,
];

/// The `k` of the mode × termination grid.
pub const GRID_K: u32 = 4;
/// The fanout of the mode × termination grid.
pub const GRID_FANOUT: usize = 3;
/// The `k` of the theory references (blind counter): long enough that a
/// rumor is still hot when the last node hears it.
pub const REFERENCE_K: u32 = 60;

/// The round count theory predicts for a fanout-1 reference configuration.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Theory {
    /// Push, one partner per round: log2 n + ln n (Frieze–Grimmett, Pittel).
    Push,
    /// Push-pull, one partner per round: log3 n (Karp et al.), plus
    /// O(ln ln n).
    PushPull,
}

impl Theory {
    /// The predicted rounds until every node has the rumor.
    pub fn rounds(self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            Theory::Push => n.log2() + n.ln(),
            Theory::PushPull => n.ln() / 3f64.ln(),
        }
    }

    /// The formula, for the table.
    pub fn formula(self) -> &'static str {
        match self {
            Theory::Push => "log2 n + ln n",
            Theory::PushPull => "log3 n",
        }
    }
}

/// One protocol configuration of the sweep.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SweepConfig {
    /// Exchange mode.
    pub mode: Mode,
    /// Termination rule.
    pub termination: Termination,
    /// Its `k` (ignored by transmit-limit).
    pub k: u32,
    /// Peers per round.
    pub fanout: usize,
    /// `Some` for a theory reference.
    pub theory: Option<Theory>,
}

/// The configurations run at each size and loss: the mode × termination
/// grid, then the two theory references.
pub fn configs() -> Vec<SweepConfig> {
    let mut out = Vec::new();
    for mode in MODES {
        for termination in TERMINATIONS {
            out.push(SweepConfig {
                mode,
                termination,
                k: GRID_K,
                fanout: GRID_FANOUT,
                theory: None,
            });
        }
    }
    for (mode, theory) in [
        (Mode::Push, Theory::Push),
        (Mode::PushPull, Theory::PushPull),
    ] {
        out.push(SweepConfig {
            mode,
            termination: Termination::BlindCounter,
            k: REFERENCE_K,
            fanout: 1,
            theory: Some(theory),
        });
    }
    out
}

/// What the sweep varies besides the configurations.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepParams {
    /// Cluster sizes.
    pub nodes: Vec<usize>,
    /// Datagram loss rates.
    pub loss: Vec<f64>,
    /// Seed of every run.
    pub seed: u64,
    /// Updates per run.
    pub updates: usize,
    /// Protocol profile.
    pub profile: Profile,
}

impl Default for SweepParams {
    /// The CLI's defaults: 1,000 and 10,000 nodes, loss 0 and 0.1, seed 1,
    /// 10 updates, `lan`.
    fn default() -> Self {
        SweepParams {
            nodes: vec![1_000, 10_000],
            loss: vec![0.0, 0.1],
            seed: 1,
            updates: 10,
            profile: Profile::Lan,
        }
    }
}

impl SweepParams {
    /// The parameters of one run.
    pub fn run_params(&self, n: usize, loss: f64, c: &SweepConfig) -> BroadcastParams {
        BroadcastParams {
            nodes: n,
            seed: self.seed,
            mode: c.mode,
            termination: c.termination,
            k: c.k,
            fanout: c.fanout,
            anti_entropy: false,
            adaptive_fanout: false,
            bandwidth: None,
            loss,
            updates: self.updates,
            ..BroadcastParams::with_profile(self.profile)
        }
    }

    /// Number of runs.
    pub fn runs(&self) -> usize {
        self.nodes.len() * self.loss.len() * configs().len()
    }
}

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// Its configuration.
    pub config: SweepConfig,
    /// Its report.
    pub report: BroadcastReport,
}

/// All runs of a sweep, in order (size, then loss, then configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// What was swept.
    pub params: SweepParams,
    /// The runs.
    pub rows: Vec<SweepRow>,
}

/// Run the sweep, one run after another (a 10,000-node run takes gigabytes),
/// calling `done(i, total, row)` after run `i` (from 1).
pub fn run_sweep(
    params: &SweepParams,
    done: &mut dyn FnMut(usize, usize, &SweepRow),
) -> Result<Sweep, BroadcastError> {
    let total = params.runs();
    let mut rows = Vec::with_capacity(total);
    // Check every run before the first, so a bad value fails at once.
    for &n in &params.nodes {
        for &loss in &params.loss {
            for c in configs() {
                params.run_params(n, loss, &c).validate()?;
            }
        }
    }
    for &n in &params.nodes {
        for &loss in &params.loss {
            for config in configs() {
                let report = run_broadcast(params.run_params(n, loss, &config), &mut |_| {})?;
                let row = SweepRow { config, report };
                done(rows.len() + 1, total, &row);
                rows.push(row);
            }
        }
    }
    Ok(Sweep {
        params: params.clone(),
        rows,
    })
}

/// `x` with about `digits` significant digits: plain notation from 0.01
/// up, scientific below.
pub fn sig(x: f64, digits: usize) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let mag = x.abs().log10().floor();
    if x.abs() < 0.01 {
        let s = format!("{:.*e}", digits.saturating_sub(1), x);
        return s.replace("e-", "e−");
    }
    let decimals = (digits as f64 - 1.0 - mag).max(0.0) as usize;
    format!("{x:.decimals$}")
}

/// A coverage: three decimals, never rounded up to 1 unless it is 1.
fn coverage_cell(c: f64) -> String {
    if c >= 1.0 {
        "1".to_string()
    } else if c > 0.9995 {
        ">0.999".to_string()
    } else {
        format!("{c:.3}")
    }
}

fn rounds_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |r| sig(r, 3))
}

/// A loss rate as typed on the command line.
fn loss_label(loss: f64) -> String {
    format!("{loss}")
}

impl Sweep {
    /// The markdown table, with a header naming `command` (the command line
    /// that made it) and the fixed parameters.
    pub fn table_markdown(&self, command: &str) -> String {
        let p = &self.params;
        let base = p.run_params(2, 0.0, &configs()[0]);
        let ms = |d: core::time::Duration| d.as_secs_f64() * 1e3;
        let mut s = String::new();
        let _ = writeln!(s, "# Dissemination: modes, termination rules and theory\n");
        let _ = writeln!(
            s,
            "Generated by `{command}` (do not edit by hand; run it again).\n"
        );
        let _ = writeln!(
            s,
            "Each row is one `rumor sim broadcast` run: profile `{}`, seed {}, {} updates \
             from random nodes one round ({} ms) apart, {}-byte payloads, {} bootstrap, \
             latency {} ms + up to {} ms jitter, no anti-entropy, no bandwidth limit, \
             run ends after {} quiet rounds or {} s after the last injection. \
             The grid is every mode × termination rule with k = {GRID_K} \
             (transmit-limit ignores k and always pushes) and fanout {GRID_FANOUT}; \
             the two rows with a theory value are the references: fanout 1, blind counter \
             with k = {REFERENCE_K}, so that the rumor outlives the spreading.\n",
            p.profile.name(),
            p.seed,
            p.updates,
            ms(base.interval),
            base.payload_bytes,
            base.bootstrap,
            ms(base.latency),
            ms(base.jitter),
            crate::broadcast_run::QUIET_ROUNDS,
            base.duration.as_secs_f64(),
        );
        let _ = writeln!(
            s,
            "Columns: coverage = mean fraction of nodes that delivered an update; \
             residue = 1 − coverage; e^−m is the residue Demers et al. predict for push \
             with feedback; rounds to all = rounds (intervals) from injection until the \
             last node delivered, median and worst over updates (— when some update never \
             reached every node); m = copies sent per node per update; rmr = relative \
             message redundancy (0 is optimal); ldh = last delivery hop; theory = \
             predicted rounds to all for the fanout-1 references.\n"
        );
        let _ = writeln!(
            s,
            "| n | loss | mode | termination | k | fanout | coverage | residue | e^−m | rounds p50 | rounds max | m | rmr | ldh | theory |"
        );
        let _ = writeln!(
            s,
            "|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
        );
        for row in &self.rows {
            let r = &row.report;
            let c = &row.config;
            let k = if c.termination == Termination::TransmitLimit {
                "—".to_string()
            } else {
                c.k.to_string()
            };
            let theory = c.theory.map_or_else(String::new, |t| {
                format!("{} = {}", t.formula(), sig(t.rounds(r.nodes), 3))
            });
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.nodes,
                loss_label(r.loss),
                c.mode,
                c.termination,
                k,
                c.fanout,
                coverage_cell(r.coverage),
                sig(r.residue.max(0.0), 2),
                sig((-r.traffic_per_node).exp(), 2),
                rounds_cell(r.rounds_to_all.p50),
                rounds_cell(r.rounds_to_all.max),
                sig(r.traffic_per_node, 3),
                sig(r.rmr, 3),
                sig(r.ldh, 3),
                theory,
            );
        }
        s
    }

    /// The coverage plots, one per mode and size, at loss 0 (none if loss 0
    /// was not swept): `(file name, SVG)` with file names
    /// `coverage-<mode>-n<N>.svg`.
    pub fn plots(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for &n in &self.params.nodes {
            for mode in MODES {
                let rows: Vec<&SweepRow> = self
                    .rows
                    .iter()
                    .filter(|r| {
                        r.report.nodes == n
                            && r.report.loss == 0.0
                            && r.config.mode == mode
                            && r.config.theory.is_none()
                    })
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                let last = rows
                    .iter()
                    .map(|r| r.report.coverage_by_round.len())
                    .max()
                    .unwrap_or(1)
                    .max(2)
                    - 1;
                let series = rows
                    .iter()
                    .map(|r| {
                        let c = &r.report.coverage_by_round;
                        // Flat at the final coverage until the longest series ends.
                        let points = (0..=last)
                            .map(|i| {
                                let y = c.get(i).or(c.last()).copied().unwrap_or(0.0);
                                (i as f64, y)
                            })
                            .collect();
                        Series {
                            label: r.config.termination.to_string(),
                            points,
                        }
                    })
                    .collect();
                let chart = LineChart {
                    title: format!(
                        "{mode}, n = {n}, fanout {GRID_FANOUT}, k = {GRID_K}, no loss: coverage by round"
                    ),
                    x_label: "rounds after injection".to_string(),
                    y_label: "coverage (fraction of nodes)".to_string(),
                    y_range: Some((0.0, 1.0)),
                    series,
                };
                out.push((format!("coverage-{mode}-n{n}.svg"), chart.to_svg()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_keeps_two_or_three_digits() {
        assert_eq!(sig(16.94, 3), "16.9");
        assert_eq!(sig(0.123_456, 3), "0.123");
        assert_eq!(sig(1234.4, 3), "1234");
        assert_eq!(sig(0.000_123_4, 2), "1.2e−4");
        assert_eq!(sig(0.0, 2), "0");
        assert_eq!(coverage_cell(0.99999), ">0.999");
        assert_eq!(coverage_cell(1.0), "1");
    }

    #[test]
    fn theory_matches_the_references() {
        assert!((Theory::Push.rounds(1_000) - 16.9).abs() < 0.05);
        assert!((Theory::Push.rounds(10_000) - 22.5).abs() < 0.05);
        assert!((Theory::PushPull.rounds(1_000) - 6.3).abs() < 0.05);
        assert!((Theory::PushPull.rounds(10_000) - 8.4).abs() < 0.05);
    }

    #[test]
    fn small_sweep_makes_table_and_plots() {
        let params = SweepParams {
            nodes: vec![50],
            loss: vec![0.0, 0.1],
            seed: 3,
            updates: 2,
            profile: Profile::Lan,
        };
        let mut seen = 0;
        let sweep = run_sweep(&params, &mut |i, total, _| {
            seen += 1;
            assert_eq!(i, seen);
            assert_eq!(total, 34);
        })
        .unwrap();
        assert_eq!(sweep.rows.len(), 34);
        let table = sweep.table_markdown("rumor sim broadcast-report --nodes 50");
        assert!(table.contains("`rumor sim broadcast-report --nodes 50`"));
        let data_rows = table.lines().filter(|l| l.starts_with("| 50 |")).count();
        assert_eq!(data_rows, 34);
        assert_eq!(table.matches("log3 n = ").count(), 2);
        let plots = sweep.plots();
        let names: Vec<&str> = plots.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "coverage-push-n50.svg",
                "coverage-pull-n50.svg",
                "coverage-push-pull-n50.svg"
            ]
        );
        for (_, svg) in &plots {
            assert!(svg.starts_with("<svg"));
            assert_eq!(svg.matches("<polyline").count(), TERMINATIONS.len());
            assert!(svg.len() < 20_000);
        }
    }
}
