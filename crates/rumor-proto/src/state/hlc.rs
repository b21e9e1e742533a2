//! The hybrid logical clock: timestamps that follow wall-clock time but never
//! go backwards and always order a write after every write it has seen.
//!
//! A [`Timestamp`] is a wall-clock reading in milliseconds plus a logical
//! counter that breaks ties within one millisecond (Kulkarni et al., 2014).
//! Last-writer-wins resolution orders values by it, and update age (for
//! convergence monitoring and tombstone collection) is measured against it.

use serde::{Deserialize, Serialize};

/// A hybrid logical timestamp: wall-clock milliseconds, then a logical counter.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch (or the simulator's epoch).
    pub wall_ms: u64,
    /// Orders events that share a wall-clock millisecond.
    pub logical: u32,
}

impl Timestamp {
    /// The earliest timestamp.
    pub const ZERO: Timestamp = Timestamp {
        wall_ms: 0,
        logical: 0,
    };
}

/// One node's hybrid logical clock.
#[derive(Clone, Debug)]
pub struct Hlc {
    last: Timestamp,
    max_drift_ms: u64,
    /// Remote timestamps ignored for being too far ahead of this clock.
    pub rejected_drift: u64,
}

impl Hlc {
    /// A clock that refuses to follow remote timestamps more than
    /// `max_drift_ms` ahead of its own wall clock.
    pub fn new(max_drift_ms: u64) -> Self {
        Hlc {
            last: Timestamp::ZERO,
            max_drift_ms,
            rejected_drift: 0,
        }
    }

    /// A timestamp for a local event at wall-clock time `wall_ms`, later
    /// than every timestamp this clock has issued or observed.
    pub fn tick(&mut self, wall_ms: u64) -> Timestamp {
        self.last = if wall_ms > self.last.wall_ms {
            Timestamp {
                wall_ms,
                logical: 0,
            }
        } else {
            self.bump(self.last)
        };
        self.last
    }

    /// Move the clock past `remote`, a timestamp seen in a message, unless
    /// it is more than the allowed drift ahead of `wall_ms` (a node with a
    /// wrong clock must not drag the cluster's clocks into the future).
    pub fn observe(&mut self, remote: Timestamp, wall_ms: u64) {
        if remote.wall_ms > wall_ms.saturating_add(self.max_drift_ms) {
            self.rejected_drift += 1;
            return;
        }
        if remote > self.last {
            self.last = remote;
        }
    }

    /// The latest timestamp issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    fn bump(&self, t: Timestamp) -> Timestamp {
        match t.logical.checked_add(1) {
            Some(logical) => Timestamp { logical, ..t },
            None => Timestamp {
                wall_ms: t.wall_ms.saturating_add(1),
                logical: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_wall_clock_stalls_or_steps_back() {
        let mut c = Hlc::new(60_000);
        let a = c.tick(1_000);
        let b = c.tick(1_000);
        let d = c.tick(900);
        assert!(a < b && b < d, "{a:?} {b:?} {d:?}");
        assert_eq!(
            c.tick(2_000),
            Timestamp {
                wall_ms: 2_000,
                logical: 0
            }
        );
    }

    #[test]
    fn a_tick_after_observing_a_remote_timestamp_orders_after_it() {
        let mut c = Hlc::new(60_000);
        let remote = Timestamp {
            wall_ms: 5_000,
            logical: 7,
        };
        c.observe(remote, 4_000);
        assert!(c.tick(4_000) > remote);
    }

    #[test]
    fn timestamps_beyond_the_allowed_drift_are_not_followed() {
        let mut c = Hlc::new(1_000);
        c.observe(
            Timestamp {
                wall_ms: 1_000_000,
                logical: 0,
            },
            1_000,
        );
        assert_eq!(c.rejected_drift, 1);
        assert!(c.tick(1_000).wall_ms < 2_000);
    }
}
