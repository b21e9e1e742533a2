//! Medians over the seeded runs, ratios rumor / peer, as JSON and markdown.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::System;
use crate::scenario::Outcome;

/// One run's identity and outcome.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// System.
    pub system: System,
    /// Cluster size.
    pub nodes: usize,
    /// Loss rate on the INPUT hook.
    pub loss: f64,
    /// Seed.
    pub seed: u64,
    /// What it measured (`None` if the run failed).
    pub outcome: Option<Outcome>,
    /// Why the run failed.
    pub error: Option<String>,
}

/// Medians of one (system, size, loss) over its runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Runs that completed.
    pub runs: usize,
    /// Runs where a scenario timed out, by scenario.
    pub timeouts: BTreeMap<&'static str, usize>,
    /// Median of each figure over the runs that reached it.
    pub median: BTreeMap<&'static str, f64>,
    /// rumor's median divided by this system's, per figure (rumor's own
    /// summary has none).
    pub ratio_rumor_over_this: BTreeMap<&'static str, f64>,
}

/// The figures, in table order: key, column title, how to print it.
pub const FIGURES: [(&str, &str, usize); 8] = [
    ("join_s", "a. join s", 2),
    ("detect_s", "b. detect s", 2),
    ("update_s", "c. update s", 2),
    ("bytes_per_node_s", "d. B/node/s", 0),
    ("packets_per_node_s", "d. pkt/node/s", 1),
    ("cpu_pct_per_node", "CPU %/node", 2),
    ("rss_mib_per_node", "RSS MiB/node", 1),
    ("false_positives", "false pos.", 0),
];

fn figure(o: &Outcome, key: &str) -> Option<f64> {
    match key {
        "join_s" => o.join_s,
        "detect_s" => o.detect_s,
        "update_s" => o.update_s,
        "bytes_per_node_s" => o.bytes_per_node_s,
        "packets_per_node_s" => o.packets_per_node_s,
        "cpu_pct_per_node" => o.cpu_pct_per_node,
        "rss_mib_per_node" => o.rss_mib_per_node,
        "false_positives" => Some(o.false_positives as f64),
        _ => None,
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let m = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    })
}

/// Key of a group of runs: loss in per mille, size, system.
pub type GroupKey = (u32, usize, System);

/// Summaries of every group, with ratios against rumor of the same group
/// (the rumor agent for Serf).
pub fn summarize(records: &[RunRecord]) -> BTreeMap<GroupKey, Summary> {
    let mut groups: BTreeMap<GroupKey, Vec<&Outcome>> = BTreeMap::new();
    for r in records {
        let key = ((r.loss * 1000.0).round() as u32, r.nodes, r.system);
        let entry = groups.entry(key).or_default();
        if let Some(o) = &r.outcome {
            entry.push(o);
        }
    }
    let mut out: BTreeMap<GroupKey, Summary> = BTreeMap::new();
    for (key, outcomes) in &groups {
        let mut s = Summary {
            runs: outcomes.len(),
            ..Summary::default()
        };
        for (fig, _, _) in FIGURES {
            let xs: Vec<f64> = outcomes.iter().filter_map(|o| figure(o, fig)).collect();
            let missing = outcomes.len() - xs.len();
            if missing > 0 && fig.ends_with("_s") && !fig.contains("per_node") {
                s.timeouts.insert(fig, missing);
            }
            if let Some(m) = median(xs) {
                s.median.insert(fig, m);
            }
        }
        out.insert(*key, s);
    }
    let keys: Vec<GroupKey> = out.keys().copied().collect();
    for (loss, nodes, system) in keys {
        let reference = match system {
            System::Rumor | System::RumorFast | System::RumorAgent => continue,
            System::SerfAgent => System::RumorAgent,
            _ => System::Rumor,
        };
        let Some(ours) = out.get(&(loss, nodes, reference)).map(|s| s.median.clone()) else {
            continue;
        };
        if let Some(s) = out.get_mut(&(loss, nodes, system)) {
            for (fig, theirs) in s.median.clone() {
                if let Some(&o) = ours.get(fig)
                    && theirs > 0.0
                {
                    s.ratio_rumor_over_this.insert(fig, o / theirs);
                }
            }
        }
    }
    out
}

/// The summaries as markdown: one table per loss rate and size; a peer's
/// cell shows its median and, in brackets, rumor's median over it.
pub fn markdown(summaries: &BTreeMap<GroupKey, Summary>) -> String {
    let mut md = String::new();
    let mut sections: Vec<(u32, usize)> = summaries.keys().map(|(l, n, _)| (*l, *n)).collect();
    sections.dedup();
    for (loss, nodes) in sections {
        md.push_str(&format!(
            "\n#### N = {nodes}, loss {}%\n\n| system | runs |",
            loss as f64 / 10.0
        ));
        for (_, title, _) in FIGURES {
            md.push_str(&format!(" {title} |"));
        }
        md.push_str("\n|---|---|");
        for _ in FIGURES {
            md.push_str("---|");
        }
        md.push('\n');
        for ((_, _, system), s) in
            summaries.range((loss, nodes, System::Rumor)..=(loss, nodes, System::SerfAgent))
        {
            md.push_str(&format!("| {} | {} |", system.label(), s.runs));
            for (fig, _, digits) in FIGURES {
                let cell = match s.median.get(fig) {
                    Some(m) => {
                        let mut c = format!("{m:.digits$}");
                        if let Some(t) = s.timeouts.get(fig) {
                            c.push_str(&format!(" ({t} timed out)"));
                        }
                        if let Some(r) = s.ratio_rumor_over_this.get(fig) {
                            c.push_str(&format!(" [{r:.2}]"));
                        }
                        c
                    }
                    None if s.runs > 0 => "timed out".to_string(),
                    None => "n/a".to_string(),
                };
                md.push_str(&format!(" {cell} |"));
            }
            md.push('\n');
        }
    }
    md
}
