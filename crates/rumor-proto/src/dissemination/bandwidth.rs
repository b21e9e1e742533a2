//! The outgoing bandwidth budget: a token bucket in bytes per second.
//!
//! Everything the node sends is charged to it. Membership traffic (probes,
//! acks, gossip of membership updates) is always sent, since holding it back
//! would make a busy node look dead; user events wait, highest priority and
//! youngest first, until the bucket has room. Set the budget above the
//! membership traffic (a few hundred bytes per second per node) so that user
//! events get a share.

use core::time::Duration;

use crate::time::Instant;

/// A token bucket holding at most one second of budget.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    /// Bytes available; negative after forced charges.
    tokens: i64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` bytes per second.
    pub fn new(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1);
        TokenBucket {
            rate,
            tokens: i64::try_from(rate).unwrap_or(i64::MAX),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed: Duration = now - self.last;
        self.last = self.last.max(now);
        let add = (u128::from(self.rate) * elapsed.as_nanos() / 1_000_000_000) as i64;
        let cap = i64::try_from(self.rate).unwrap_or(i64::MAX);
        self.tokens = self.tokens.saturating_add(add).min(cap);
    }

    /// Whether `bytes` fit in the budget at `now` (nothing is taken).
    pub fn allows(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        self.tokens >= bytes as i64
    }

    /// Charge `bytes`, even past the budget, but never into more than one
    /// second of debt: a single large forced send (a full-state exchange)
    /// must not starve user events for longer than that.
    pub fn charge(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        let floor = -i64::try_from(self.rate).unwrap_or(i64::MAX);
        self.tokens = self.tokens.saturating_sub(bytes as i64).max(floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_caps_at_one_second() {
        let t0 = Instant::ZERO;
        let mut b = TokenBucket::new(1000, t0);
        assert!(b.allows(t0, 1000));
        b.charge(t0, 1000);
        assert!(!b.allows(t0, 1));
        assert!(b.allows(t0 + Duration::from_millis(500), 500));
        assert!(!b.allows(t0 + Duration::from_millis(500), 501));
        assert!(
            !b.allows(t0 + Duration::from_secs(60), 1001),
            "at most one second banked"
        );
        b.charge(t0 + Duration::from_secs(60), 1500);
        assert!(
            !b.allows(t0 + Duration::from_millis(60_400), 1),
            "forced charges are paid back first"
        );
        b.charge(t0 + Duration::from_secs(70), 1_000_000);
        assert!(
            b.allows(t0 + Duration::from_secs(72), 1000),
            "debt is capped at one second of budget"
        );
    }
}
