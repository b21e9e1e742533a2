//! Reports: plain serde data, printed as JSON or as an aligned table.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;
use crate::network::NetworkStats;

/// The state of a simulation's metrics, from [`crate::Sim::report`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// Nodes added to the simulation.
    pub nodes: usize,
    /// Nodes live now (started, not crashed, not left).
    pub live: usize,
    /// Virtual time elapsed, in seconds.
    pub elapsed_s: f64,
    /// When every live node first listed every other live node as alive,
    /// once all nodes had started.
    pub join_converged_s: Option<f64>,
    /// Every crash, in order.
    pub crashes: Vec<CrashReport>,
    /// Crashed nodes (not restarted) that some live node still lists as alive
    /// or suspect.
    pub undetected: usize,
    /// `Failed` events about live nodes not partitioned from the observer.
    pub false_positives: u64,
    /// Distinct live nodes that were falsely declared dead.
    pub false_positive_nodes: usize,
    /// `Suspected` events about live nodes not partitioned from the observer.
    pub false_suspicions: u64,
    /// What the nodes sent.
    pub traffic: Traffic,
    /// What the network did with it.
    pub network: NetworkStats,
    /// Received packets the nodes dropped (sum of their drop counters).
    pub dropped_packets: u64,
    /// Simulation events processed (deliveries, timer wakeups, faults).
    pub events_processed: u64,
    /// Scheduled commands a node refused (`SetTags` over the size limit).
    pub rejected_commands: u64,
}

/// One crash and how long it took to detect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrashReport {
    /// The node that crashed.
    pub node: NodeId,
    /// When it crashed, in seconds.
    pub crashed_at_s: f64,
    /// Time from the crash until every live node that knew it (and was
    /// running before the crash) listed it as dead.
    pub detection_s: Option<f64>,
    /// Whether it was restarted before detection completed.
    pub restarted: bool,
}

/// Packets and bytes sent by all nodes, both channels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Datagrams and stream frames sent.
    pub packets_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
}

/// Percentiles of a sample (nearest rank); all `None` for an empty sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

impl Percentiles {
    /// The percentiles of `values` (NaNs are ignored).
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if v.is_empty() {
                return None;
            }
            let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(v[idx])
        };
        Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
            max: v.last().copied(),
        }
    }
}

/// The result of the `membership` scenario (`rumor sim membership`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MembershipReport {
    /// Cluster size.
    pub nodes: usize,
    /// Simulation seed.
    pub seed: u64,
    /// Protocol profile (`lan`, `wan`, `local`).
    pub profile: String,
    /// Whether the Lifeguard refinements were on.
    pub lifeguard: bool,
    /// Virtual duration, in seconds.
    pub duration_s: f64,
    /// Datagram loss probability.
    pub loss: f64,
    /// One-way latency, in milliseconds.
    pub latency_ms: f64,
    /// Maximum extra jitter, in milliseconds.
    pub jitter_ms: f64,
    /// Slow (periodically frozen) nodes.
    pub slow: usize,
    /// Time until every node listed every other as alive, once all started.
    pub join_converged_s: Option<f64>,
    /// Detection time of the crashed nodes that were detected, in seconds.
    pub detection_s: Percentiles,
    /// Nodes crashed.
    pub crashed: usize,
    /// Crashed nodes some live node still lists as alive or suspect at the end.
    pub undetected: usize,
    /// Times a node declared a live, reachable node dead.
    pub false_positives: u64,
    /// Distinct live nodes declared dead by someone.
    pub false_positive_nodes: usize,
    /// Times a node suspected a live, reachable node.
    pub false_suspicions: u64,
    /// Packets (both channels) sent per node per second.
    pub msgs_per_node_per_s: f64,
    /// Bytes sent per node per second.
    pub bytes_per_node_per_s: f64,
    /// Received packets the nodes dropped (sum of their drop counters).
    pub dropped_packets: u64,
    /// Datagrams lost by the network.
    pub lost_packets: u64,
    /// Simulation events processed.
    pub events_processed: u64,
    /// Wall-clock time the run took, in seconds.
    pub wall_s: f64,
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("{s:.3} s"))
}

impl fmt::Display for MembershipReport {
    /// An aligned, human-readable summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.detection_s;
        let rows: [(&str, String); 20] = [
            ("nodes", self.nodes.to_string()),
            ("seed", self.seed.to_string()),
            ("profile", self.profile.clone()),
            ("lifeguard", self.lifeguard.to_string()),
            ("duration", format!("{} s", self.duration_s)),
            ("loss", self.loss.to_string()),
            (
                "latency",
                format!("{} ms + jitter {} ms", self.latency_ms, self.jitter_ms),
            ),
            ("slow nodes", self.slow.to_string()),
            ("join converged", secs(self.join_converged_s)),
            ("crashed", self.crashed.to_string()),
            (
                "detection",
                format!(
                    "p50 {}, p99 {}, max {}",
                    secs(d.p50),
                    secs(d.p99),
                    secs(d.max)
                ),
            ),
            ("undetected", self.undetected.to_string()),
            (
                "false positives",
                format!(
                    "{} ({} nodes)",
                    self.false_positives, self.false_positive_nodes
                ),
            ),
            ("false suspicions", self.false_suspicions.to_string()),
            ("msgs/node/s", format!("{:.2}", self.msgs_per_node_per_s)),
            ("bytes/node/s", format!("{:.0}", self.bytes_per_node_per_s)),
            ("dropped packets", self.dropped_packets.to_string()),
            ("lost packets", self.lost_packets.to_string()),
            ("events", self.events_processed.to_string()),
            ("wall time", format!("{:.2} s", self.wall_s)),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            writeln!(f, "{k:<width$}  {v}")?;
        }
        Ok(())
    }
}

/// Print a serde report as aligned `field  value` lines (nested objects
/// flattened with dots): the readable form of reports without a table of
/// their own.
pub fn write_fields(
    f: &mut core::fmt::Formatter<'_>,
    report: &impl serde::Serialize,
) -> core::fmt::Result {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            serde_json::Value::Number(n) => {
                let s = match n.as_f64() {
                    Some(x) if n.is_f64() => format!("{x:.3}"),
                    _ => n.to_string(),
                };
                out.push((prefix.to_string(), s));
            }
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    let value = serde_json::to_value(report).map_err(|_| core::fmt::Error)?;
    flatten("", &value, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        writeln!(f, "{k:<width$}  {v}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((p.p50, p.p99, p.max), (Some(3.0), Some(5.0), Some(5.0)));
        let many: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(Percentiles::of(&many).p99, Some(198.0));
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }
}
