//! The protocol settings every system runs with, so that figures compare.

use std::time::Duration;

use serde::Serialize;

/// Timing shared by every system: memberlist's LAN profile, which rumor's
/// `lan` profile and foca's `Config::new_lan` also follow. chitchat has no
/// probes: it gossips on the same interval and convicts at phi 8.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Interval between gossip rounds.
    pub gossip_interval_ms: u64,
    /// Members gossiped to per round.
    pub gossip_fanout: usize,
    /// SWIM probe interval.
    pub probe_interval_ms: u64,
    /// SWIM probe timeout before indirect probes.
    pub probe_timeout_ms: u64,
    /// Indirect probes per failed direct probe.
    pub indirect_checks: usize,
    /// Suspicion timeout multiplier (× log10 N × probe interval).
    pub suspicion_mult: u32,
    /// Full-state push-pull interval (rumor, memberlist, Serf).
    pub push_pull_interval_s: u64,
    /// chitchat's phi-accrual conviction threshold.
    pub phi_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            gossip_interval_ms: 200,
            gossip_fanout: 3,
            probe_interval_ms: 1000,
            probe_timeout_ms: 500,
            indirect_checks: 3,
            suspicion_mult: 4,
            push_pull_interval_s: 30,
            phi_threshold: 8.0,
        }
    }
}

impl Settings {
    /// The gossip interval.
    pub fn gossip_interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }

    /// The probe interval.
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    /// The probe timeout.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }

    /// rumor's protocol configuration on these settings.
    pub fn rumor_config(&self) -> rumor_proto::Config {
        rumor_proto::Config {
            gossip_interval: self.gossip_interval(),
            gossip_fanout: self.gossip_fanout,
            probe_interval: self.probe_interval(),
            probe_timeout: self.probe_timeout(),
            indirect_checks: self.indirect_checks,
            suspicion_mult: self.suspicion_mult,
            push_pull_interval: Duration::from_secs(self.push_pull_interval_s),
            ..rumor_proto::Config::lan()
        }
    }

    /// rumor's `fast` profile, with these gossip and push-pull settings:
    /// probes every 200 ms, 100 ms timeout, suspicion multiplier 2.
    pub fn rumor_fast_config(&self) -> rumor_proto::Config {
        rumor_proto::Config {
            gossip_interval: self.gossip_interval(),
            gossip_fanout: self.gossip_fanout,
            indirect_checks: self.indirect_checks,
            push_pull_interval: Duration::from_secs(self.push_pull_interval_s),
            ..rumor_proto::Config::fast()
        }
    }

    /// One line that says what every system ran with.
    pub fn describe(&self) -> String {
        format!(
            "gossip every {} ms to {} members; probe every {} ms, timeout {} ms, {} indirect; \
             suspicion multiplier {}; push-pull every {} s; chitchat phi threshold {}",
            self.gossip_interval_ms,
            self.gossip_fanout,
            self.probe_interval_ms,
            self.probe_timeout_ms,
            self.indirect_checks,
            self.suspicion_mult,
            self.push_pull_interval_s,
            self.phi_threshold
        )
    }
}
