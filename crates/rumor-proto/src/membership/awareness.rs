//! Lifeguard's local health awareness.
//!
//! A score from 0 to `max − 1`: a node that misses acks and nacks is more
//! likely slow itself than surrounded by failures, so it stretches its own
//! probe interval and probe timeout by `score + 1` and accuses others less.
//!
//! - −1 after a successful probe;
//! - after a failed probe: +1 per indirect prober that sent no nack, or +1 if
//!   there were no indirect probers to ask;
//! - +1 when this node has to refute a suspicion about itself.

use core::time::Duration;

/// The local health score.
#[derive(Clone, Debug)]
pub struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    /// A healthy score with multiplier limit `max` (score stays below it).
    pub fn new(max: u32) -> Self {
        Awareness {
            score: 0,
            max: max.max(1),
        }
    }

    /// Adjust the score by `delta`, clamped to `0..max`.
    pub fn apply(&mut self, delta: i32) {
        let s = i64::from(self.score) + i64::from(delta);
        self.score = s.clamp(0, i64::from(self.max - 1)) as u32;
    }

    /// The current score (0 is healthy).
    pub fn score(&self) -> u32 {
        self.score
    }

    /// `d` stretched by `score + 1`.
    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_scales() {
        let mut a = Awareness::new(8);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(3);
        assert_eq!(a.scale(Duration::from_millis(500)), Duration::from_secs(2));
        a.apply(100);
        assert_eq!(a.score(), 7);
        a.apply(-1);
        assert_eq!(a.score(), 6);
    }
}
