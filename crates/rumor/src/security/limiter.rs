//! At most one action per peer address per interval, in bounded memory:
//! rate-limits warnings about a peer and notices sent to it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Remembers when each peer was last allowed.
#[derive(Debug)]
pub(crate) struct PeerLimiter {
    interval: Duration,
    capacity: usize,
    last: HashMap<SocketAddr, Instant>,
}

impl PeerLimiter {
    /// Once per `interval` per peer, tracking at most `capacity` peers; when
    /// that many were allowed within the interval, others wait.
    pub(crate) fn new(interval: Duration, capacity: usize) -> PeerLimiter {
        PeerLimiter {
            interval,
            capacity,
            last: HashMap::new(),
        }
    }

    /// Whether `peer` may have its action now (and if so, start its wait).
    pub(crate) fn allow(&mut self, peer: SocketAddr, now: Instant) -> bool {
        let interval = self.interval;
        let recent = |at: &Instant| now.saturating_duration_since(*at) < interval;
        if let Some(at) = self.last.get(&peer) {
            if recent(at) {
                return false;
            }
        } else if self.last.len() >= self.capacity {
            self.last.retain(|_, at| recent(at));
            if self.last.len() >= self.capacity {
                return false;
            }
        }
        self.last.insert(peer, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], i))
    }

    #[test]
    fn once_per_interval_per_peer_and_bounded() {
        let t0 = Instant::now();
        let mut l = PeerLimiter::new(Duration::from_secs(5), 2);
        assert!(l.allow(peer(1), t0));
        assert!(!l.allow(peer(1), t0 + Duration::from_secs(4)));
        assert!(l.allow(peer(2), t0));
        // Full: a third peer waits until an entry ages out.
        assert!(!l.allow(peer(3), t0 + Duration::from_secs(1)));
        assert!(l.allow(peer(3), t0 + Duration::from_secs(5)));
        assert!(l.last.len() <= 2);
        assert!(l.allow(peer(1), t0 + Duration::from_secs(6)));
    }
}
