//! Settings of the replicated key-value store.

use core::time::Duration;

use super::entry::Kind;

/// Settings of the key-value store and its anti-entropy.
#[derive(Clone, Debug, PartialEq)]
pub struct StateConfig {
    /// Kind of plain puts by key prefix: the longest matching prefix wins;
    /// keys matching none are `mv`. Only `Mv` and `Lww` apply to puts.
    pub kinds: Vec<(String, Kind)>,
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value (or set element), in bytes.
    pub max_value_bytes: usize,
    /// Most values one key may hold (siblings, set elements, counter
    /// replicas); a write or merge beyond it is refused.
    pub max_dots_per_key: usize,
    /// Most keys held, tombstones included; new keys beyond it are refused.
    pub max_keys: usize,
    /// Most bytes of keys and values held.
    pub max_bytes: usize,
    /// A tombstone is collected this long after the delete at the latest
    /// (earlier once every member is known to hold it).
    pub tombstone_grace: Duration,
    /// Time between two anti-entropy exchanges with a random peer.
    pub anti_entropy_interval: Duration,
    /// A node announces its state summary at most this often.
    pub summary_interval: Duration,
    /// Remote timestamps further ahead of the local clock than this do not
    /// move the hybrid logical clock.
    pub max_clock_drift: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            kinds: Vec::new(),
            max_key_bytes: 512,
            max_value_bytes: 1024 * 1024,
            max_dots_per_key: 1024,
            max_keys: 1_000_000,
            max_bytes: 1024 * 1024 * 1024,
            tombstone_grace: Duration::from_secs(24 * 3600),
            anti_entropy_interval: Duration::from_secs(2),
            summary_interval: Duration::from_secs(1),
            max_clock_drift: Duration::from_secs(60),
        }
    }
}

impl StateConfig {
    /// The kind of a plain put to `key`.
    pub fn kind_for(&self, key: &str) -> Kind {
        self.kinds
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(Kind::Mv, |(_, k)| *k)
    }
}
