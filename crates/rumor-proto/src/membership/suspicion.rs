//! Lifeguard's dynamic suspicion timeout.
//!
//! A suspicion starts with the maximum timeout and shrinks towards the
//! minimum as independent confirmations arrive (other members that suspect
//! the same incarnation):
//!
//! ```text
//! timeout(c) = max(min, max − (max − min) × log(c + 1) / log(k + 1))
//! ```
//!
//! with `k = suspicion_mult − 2` expected confirmations (zero in clusters too
//! small to provide them, which gives the minimum at once). In plain SWIM mode
//! the timeout is fixed at the minimum.

use core::time::Duration;

use super::member::{Incarnation, NodeName};
use crate::time::Instant;

/// Confirmations beyond this many distinct accusers are not tracked.
const MAX_TRACKED_ACCUSERS: usize = 16;

/// An open suspicion about one member.
#[derive(Clone, Debug)]
pub struct Suspicion {
    /// Incarnation suspected.
    pub incarnation: Incarnation,
    /// When the suspicion started.
    pub start: Instant,
    /// The most recent accuser (named when the suspicion is re-gossiped).
    pub from: NodeName,
    accusers: Vec<NodeName>,
    k: u32,
    min: Duration,
    max: Duration,
}

impl Suspicion {
    /// A new suspicion raised by `from` at `now`. `k` is the number of
    /// confirmations expected; `min`/`max` bound the timeout.
    pub fn new(
        incarnation: Incarnation,
        from: NodeName,
        now: Instant,
        k: u32,
        min: Duration,
        max: Duration,
    ) -> Self {
        Suspicion {
            incarnation,
            start: now,
            accusers: vec![from.clone()],
            from,
            k,
            min,
            max: max.max(min),
        }
    }

    /// Record an accusation from `from`; true if it is a new, independent
    /// confirmation (and so worth re-gossiping).
    pub fn confirm(&mut self, from: &NodeName) -> bool {
        if self.confirmations() >= self.k
            || self.accusers.len() >= MAX_TRACKED_ACCUSERS
            || self.accusers.contains(from)
        {
            return false;
        }
        self.accusers.push(from.clone());
        self.from = from.clone();
        true
    }

    /// Independent confirmations so far (the first accuser is not one).
    pub fn confirmations(&self) -> u32 {
        (self.accusers.len() - 1) as u32
    }

    /// The timeout with the confirmations received so far.
    pub fn timeout(&self) -> Duration {
        if self.k == 0 {
            return self.min;
        }
        let c = f64::from(self.confirmations());
        let frac = (c + 1.0).ln() / (f64::from(self.k) + 1.0).ln();
        let span = self.max.saturating_sub(self.min).as_secs_f64();
        let t = self.max.as_secs_f64() - span * frac;
        Duration::from_secs_f64(t.max(self.min.as_secs_f64()))
    }

    /// When the suspicion expires and the member is declared dead.
    pub fn deadline(&self) -> Instant {
        self.start + self.timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    #[test]
    fn shrinks_from_max_to_min_with_confirmations() {
        let min = Duration::from_secs(8);
        let max = Duration::from_secs(48);
        let mut s = Suspicion::new(1, name("a"), Instant::ZERO, 2, min, max);
        assert_eq!(s.timeout(), max);
        assert!(
            !s.confirm(&name("a")),
            "the same accuser twice is no confirmation"
        );
        assert!(s.confirm(&name("b")));
        let one = s.timeout();
        assert!(one < max && one > min, "{one:?}");
        assert!(s.confirm(&name("c")));
        assert_eq!(s.timeout(), min);
        assert!(!s.confirm(&name("d")), "beyond k nothing changes");
        assert_eq!(s.deadline(), Instant::ZERO + min);
    }

    #[test]
    fn k_zero_gives_minimum() {
        let s = Suspicion::new(
            1,
            name("a"),
            Instant::ZERO,
            0,
            Duration::from_secs(3),
            Duration::from_secs(18),
        );
        assert_eq!(s.timeout(), Duration::from_secs(3));
    }
}
