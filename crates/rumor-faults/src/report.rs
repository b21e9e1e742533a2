//! The report of a run: JSON for machines, a Markdown table for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// How long it took a fault to be noticed.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    /// The member the fault hit.
    pub subject: String,
    /// Seconds from the fault until some node reported it suspect.
    pub first_suspect_s: Option<f64>,
    /// Seconds from the fault until some node reported it failed.
    pub first_failed_s: Option<f64>,
}

/// One scenario's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Short name (`loss`, `partition`, ...).
    pub id: String,
    /// Its letter in the suite's list.
    pub letter: String,
    /// What it does.
    pub about: String,
    /// Whether every check held.
    pub passed: bool,
    /// The checks that did not hold.
    pub failures: Vec<String>,
    /// Writes sent.
    pub writes_attempted: u64,
    /// Writes acknowledged.
    pub writes_acknowledged: u64,
    /// Acknowledged writes missing on some live node.
    pub writes_lost: u64,
    /// The first few missing writes.
    pub lost_examples: Vec<String>,
    /// Seconds from the heal until every live node's root was equal.
    pub converge_s: Option<f64>,
    /// Seconds from the heal until no node saw anyone suspect or dead.
    pub members_heal_s: Option<f64>,
    /// Suspect or failed reports about a member the fault did not cut off
    /// from the reporting node.
    pub false_positives: u64,
    /// How many of those were failures (the rest are suspicions).
    pub false_failures: u64,
    /// The first few of them.
    pub false_positive_examples: Vec<String>,
    /// Detection times of the members the fault hit.
    pub detections: Vec<Detection>,
    /// Peak resident set of each agent, MiB.
    pub peak_rss_mib: BTreeMap<String, f64>,
    /// Wall time of the scenario, seconds.
    pub duration_s: f64,
    /// What the scenario did, step by step.
    pub notes: Vec<String>,
}

/// The settings a run used.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// The agent binary.
    pub binary: String,
    /// `--profile`.
    pub profile: String,
    /// Extra agent flags.
    pub extra_args: Vec<String>,
    /// Hosts (agents).
    pub hosts: usize,
    /// Short (CI) or full durations.
    pub short: bool,
    /// The profile's protocol timings, as text.
    pub timings: BTreeMap<String, String>,
    /// Writers and writes per second per writer.
    pub workload: String,
    /// Heal bound, seconds.
    pub heal_within_s: f64,
    /// Memory bound per agent, MiB.
    pub rss_limit_mib: u64,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Seconds since the Unix epoch when the run began.
    pub started_unix: u64,
    /// The settings.
    pub settings: Settings,
    /// One entry per scenario run.
    pub scenarios: Vec<ScenarioReport>,
}

impl RunReport {
    /// Whether every scenario passed.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.passed)
    }

    /// The readable table, with the settings above it and the failures
    /// below it.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} hosts, profile {} ({}), {} run; heal bound {} s, memory bound {} MiB per agent; workload {}",
            s.hosts,
            s.profile,
            s.timings
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            if s.short { "short" } else { "full" },
            s.heal_within_s,
            s.rss_limit_mib,
            s.workload
        );
        out.push('\n');
        out.push_str("| scenario | result | writes acked | lost | converge after heal (s) | members clean after heal (s) | false positives: suspect / failed | detection: suspect / failed (s) | peak RSS max (MiB) |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        let secs = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
        for r in &self.scenarios {
            let detect = if r.detections.is_empty() {
                "—".to_string()
            } else {
                r.detections
                    .iter()
                    .map(|d| {
                        format!(
                            "{}: {} / {}",
                            d.subject,
                            secs(d.first_suspect_s),
                            secs(d.first_failed_s)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let rss = r.peak_rss_mib.values().copied().fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "| {} {} | {} | {} / {} | {} | {} | {} | {} / {} | {} | {:.0} |",
                r.letter,
                r.id,
                if r.passed { "pass" } else { "FAIL" },
                r.writes_acknowledged,
                r.writes_attempted,
                r.writes_lost,
                secs(r.converge_s),
                secs(r.members_heal_s),
                r.false_positives - r.false_failures,
                r.false_failures,
                detect,
                rss
            );
        }
        for r in self.scenarios.iter().filter(|r| !r.passed) {
            let _ = writeln!(out, "\n{} failed:", r.id);
            for f in &r.failures {
                let _ = writeln!(out, "- {f}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(id: &str, passed: bool) -> ScenarioReport {
        ScenarioReport {
            id: id.to_string(),
            letter: "a".to_string(),
            about: String::new(),
            passed,
            failures: if passed {
                Vec::new()
            } else {
                vec!["2 acknowledged writes missing".to_string()]
            },
            writes_attempted: 10,
            writes_acknowledged: 9,
            writes_lost: u64::from(!passed) * 2,
            lost_examples: Vec::new(),
            converge_s: Some(1.25),
            members_heal_s: None,
            false_positives: 3,
            false_failures: 1,
            false_positive_examples: Vec::new(),
            detections: vec![Detection {
                subject: "node-4".to_string(),
                first_suspect_s: Some(2.0),
                first_failed_s: None,
            }],
            peak_rss_mib: [("node-0".to_string(), 20.0), ("node-1".to_string(), 31.6)]
                .into_iter()
                .collect(),
            duration_s: 1.0,
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_table_has_a_row_per_scenario_and_lists_failures() {
        let report = RunReport {
            started_unix: 0,
            settings: Settings {
                binary: "rumor".to_string(),
                profile: "local".to_string(),
                extra_args: Vec::new(),
                hosts: 6,
                short: true,
                timings: BTreeMap::new(),
                workload: "2 writers × 10/s".to_string(),
                heal_within_s: 60.0,
                rss_limit_mib: 256,
            },
            scenarios: vec![scenario("loss", true), scenario("pause", false)],
        };
        assert!(!report.passed());
        let table = report.table();
        assert!(
            table.contains(
                "| a loss | pass | 9 / 10 | 0 | 1.2 | — | 2 / 1 | node-4: 2.0 / — | 32 |"
            ),
            "{table}"
        );
        assert!(table.contains("| a pause | FAIL |"), "{table}");
        assert!(
            table.contains("pause failed:\n- 2 acknowledged writes missing"),
            "{table}"
        );
    }
}
