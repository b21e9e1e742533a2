//! Replay rejection: a packet is accepted once, and only while its send
//! time is within the window around this node's clock.
//!
//! Every authenticated packet carries its send time (unix ms) and a random
//! nonce. A packet is refused when its send time is more than `window`
//! away from the local clock, or when its (send time, nonce) pair was
//! already accepted. Accepted pairs are kept until they leave the window.
//! The memory is capped: when the cap is reached, the oldest pairs are
//! forgotten and the *floor* rises to their send time, so that a packet
//! sent at or before the floor is refused from then on; a forgotten pair
//! can never be accepted again.
//!
//! Nodes' clocks must agree to within the window (less the network delay):
//! a node whose clock is further off has all its packets refused.

use std::collections::BTreeSet;
use std::time::Duration;

use super::envelope::NONCE_LEN;

/// Why a packet was refused as a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Its send time is more than the window before or after the local clock.
    OutsideWindow,
    /// The same packet was already accepted.
    Seen,
    /// Sent at or before the floor raised when the memory was full.
    BelowFloor,
}

/// Accepted (send time, nonce) pairs within the window.
#[derive(Debug)]
pub struct ReplayWindow {
    window_ms: u64,
    capacity: usize,
    seen: BTreeSet<(u64, [u8; NONCE_LEN])>,
    /// Packets sent at or before this time are refused (0: none yet).
    floor_ms: u64,
}

impl ReplayWindow {
    /// A window of `window` either side of the local clock, remembering at
    /// most `capacity` packets (at least one).
    pub fn new(window: Duration, capacity: usize) -> ReplayWindow {
        ReplayWindow {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            capacity: capacity.max(1),
            seen: BTreeSet::new(),
            floor_ms: 0,
        }
    }

    /// Accept the packet sent at `sent_ms` with `nonce`, or say why not.
    /// `now_ms` is the local clock (unix ms).
    pub fn check(
        &mut self,
        sent_ms: u64,
        nonce: [u8; NONCE_LEN],
        now_ms: u64,
    ) -> Result<(), Replay> {
        if sent_ms.abs_diff(now_ms) > self.window_ms {
            return Err(Replay::OutsideWindow);
        }
        if self.floor_ms != 0 && sent_ms <= self.floor_ms {
            return Err(Replay::BelowFloor);
        }
        // Pairs older than the window can never be accepted again anyway.
        let oldest = now_ms.saturating_sub(self.window_ms);
        while self.seen.first().is_some_and(|(t, _)| *t < oldest) {
            self.seen.pop_first();
        }
        if !self.seen.insert((sent_ms, nonce)) {
            return Err(Replay::Seen);
        }
        while self.seen.len() > self.capacity {
            if let Some((t, _)) = self.seen.pop_first() {
                self.floor_ms = self.floor_ms.max(t);
            }
        }
        Ok(())
    }

    /// Packets remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no packet is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Packets sent at or before this time (unix ms) are refused; 0 when
    /// the memory has never been full.
    pub fn floor_ms(&self) -> u64 {
        self.floor_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn nonce(i: u32) -> [u8; NONCE_LEN] {
        let mut n = [0; NONCE_LEN];
        n[..4].copy_from_slice(&i.to_le_bytes());
        n
    }

    #[test]
    fn a_packet_is_accepted_once() {
        let mut w = ReplayWindow::new(Duration::from_secs(60), 100);
        assert_eq!(w.check(NOW, nonce(1), NOW), Ok(()));
        assert_eq!(w.check(NOW, nonce(1), NOW + 10), Err(Replay::Seen));
        assert_eq!(w.check(NOW, nonce(2), NOW + 10), Ok(()));
    }

    #[test]
    fn send_times_outside_the_window_are_refused_both_ways() {
        let mut w = ReplayWindow::new(Duration::from_secs(60), 100);
        assert_eq!(
            w.check(NOW - 60_001, nonce(1), NOW),
            Err(Replay::OutsideWindow)
        );
        assert_eq!(
            w.check(NOW + 60_001, nonce(1), NOW),
            Err(Replay::OutsideWindow)
        );
        assert_eq!(w.check(NOW - 60_000, nonce(1), NOW), Ok(()));
        assert_eq!(w.check(NOW + 60_000, nonce(2), NOW), Ok(()));
    }

    #[test]
    fn pairs_leave_memory_with_the_window() {
        let mut w = ReplayWindow::new(Duration::from_secs(60), 100);
        for i in 0..10 {
            w.check(NOW, nonce(i), NOW).unwrap();
        }
        assert_eq!(w.len(), 10);
        // A minute later the old pairs are gone; replaying them is refused
        // by the window instead.
        w.check(NOW + 60_001, nonce(99), NOW + 60_001).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w.check(NOW, nonce(0), NOW + 60_001),
            Err(Replay::OutsideWindow)
        );
    }

    #[test]
    fn a_full_memory_raises_the_floor_and_an_evicted_packet_stays_refused() {
        let mut w = ReplayWindow::new(Duration::from_secs(60), 4);
        for i in 0..4 {
            w.check(NOW + u64::from(i), nonce(i), NOW).unwrap();
        }
        assert_eq!(w.floor_ms(), 0);
        w.check(NOW + 10, nonce(10), NOW).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w.floor_ms(), NOW);
        // The forgotten packet (sent at NOW) cannot come back.
        assert_eq!(w.check(NOW, nonce(0), NOW), Err(Replay::BelowFloor));
        // Nor can any other sent at or before the floor.
        assert_eq!(w.check(NOW - 5, nonce(50), NOW), Err(Replay::BelowFloor));
        // Those remembered are still refused as seen; new ones pass.
        assert_eq!(w.check(NOW + 2, nonce(2), NOW), Err(Replay::Seen));
        assert_eq!(w.check(NOW + 11, nonce(11), NOW), Ok(()));
        assert!(w.len() <= 4);
    }

    #[test]
    fn memory_never_exceeds_the_cap_under_a_flood() {
        let mut w = ReplayWindow::new(Duration::from_secs(60), 1000);
        for i in 0..20_000u32 {
            let _ = w.check(NOW + u64::from(i % 5000), nonce(i), NOW);
            assert!(w.len() <= 1000);
        }
    }
}
