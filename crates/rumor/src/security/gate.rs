//! The door every packet passes: outbound frames are sealed, inbound ones
//! are checked (cluster, mode, key, replay) and opened before the core sees
//! them. Refusals are counted, logged at most once per peer per interval,
//! and answered with a notice when that is safe.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumor_proto::Channel;
use rumor_proto::wire::frame::{FLAG_NOTICE, FLAG_SEALED, Frame, parse_header};

use super::envelope::{self, NoticeReason};
use super::keyring::{KeyError, Keyring};
use super::limiter::PeerLimiter;
use super::replay::{Replay, ReplayWindow};
use super::rotation::KeyOp;
use super::stats::{Counters, bump};
use super::{Encryption, Security};

/// A peer's refusals are logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// A peer is sent a notice at most this often.
const NOTICE_INTERVAL: Duration = Duration::from_secs(5);
/// Peers tracked for rate limits (each limit).
const TRACKED_PEERS: usize = 1024;

/// What to do with an inbound packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound<'a> {
    /// Hand this frame to the core.
    Deliver(Cow<'a, [u8]>),
    /// Drop it.
    Drop,
    /// Drop it and send this notice back to the sender.
    Notify(Vec<u8>),
}

struct Sealing {
    keyring: Keyring,
    file: Option<PathBuf>,
    replay: ReplayWindow,
    window: Duration,
}

/// One node's gate.
pub(crate) struct Gate {
    cluster: String,
    sealing: Option<Sealing>,
    warned: PeerLimiter,
    notified: PeerLimiter,
    counters: Arc<Counters>,
}

impl Gate {
    /// The gate of a node of `cluster`. With a keyring file, the file's
    /// keys win over the configured ones (they hold the rotations made
    /// since); a missing file is written from the configured keyring.
    pub(crate) fn new(
        cluster: &str,
        security: &Security,
        counters: Arc<Counters>,
    ) -> Result<Gate, KeyError> {
        let sealing = match security {
            Security::Plaintext => None,
            Security::Encrypted(e) => Some(Sealing {
                keyring: resolve_keyring(e)?,
                file: e.keyring_file.clone(),
                replay: ReplayWindow::new(e.replay_window, e.replay_capacity),
                window: e.replay_window,
            }),
        };
        Ok(Gate {
            cluster: cluster.to_string(),
            sealing,
            warned: PeerLimiter::new(WARN_INTERVAL, TRACKED_PEERS),
            notified: PeerLimiter::new(NOTICE_INTERVAL, TRACKED_PEERS),
            counters,
        })
    }

    /// Bytes sealing adds to each frame (the core must leave room for them).
    pub(crate) fn overhead(&self) -> usize {
        if self.sealing.is_some() {
            envelope::OVERHEAD
        } else {
            0
        }
    }

    /// The keyring, when the node encrypts.
    pub(crate) fn keyring(&self) -> Option<&Keyring> {
        self.sealing.as_ref().map(|s| &s.keyring)
    }

    /// Apply a keyring operation, and rewrite the keyring file when it
    /// changed; nothing changes when the file cannot be written. Returns
    /// whether the keyring changed.
    pub(crate) fn apply(&mut self, op: &KeyOp, from_peer: bool) -> Result<bool, KeyError> {
        let sealing = self.sealing.as_mut().ok_or(KeyError::NoEncryption)?;
        let mut ring = sealing.keyring.clone();
        if !op.apply(&mut ring, from_peer)? {
            return Ok(false);
        }
        if let Some(path) = &sealing.file {
            ring.save(path)?;
        }
        sealing.keyring = ring;
        Ok(true)
    }

    /// The frame as it goes on the wire: sealed under the primary key, or
    /// unchanged in plaintext mode. `None` when the core's frame does not
    /// parse (never expected).
    pub(crate) fn seal(&self, channel: Channel, frame: Vec<u8>, now_ms: u64) -> Option<Vec<u8>> {
        let Some(sealing) = &self.sealing else {
            return Some(frame);
        };
        match envelope::seal(sealing.keyring.primary(), channel, &frame, now_ms) {
            Ok(sealed) => {
                bump(&self.counters.sealed);
                Some(sealed)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not seal an outgoing frame; dropped");
                None
            }
        }
    }

    /// Judge a packet from `from` (for a stream frame, the address its
    /// sender advertised).
    pub(crate) fn inbound<'a>(
        &mut self,
        from: SocketAddr,
        channel: Channel,
        bytes: &'a [u8],
        now: Instant,
        now_ms: u64,
    ) -> Inbound<'a> {
        let frame = match parse_header(bytes) {
            Ok(f) => f,
            Err(e) => {
                bump(&self.counters.malformed);
                tracing::debug!(peer = %from, error = %e, "dropped a packet whose header does not parse");
                return Inbound::Drop;
            }
        };
        if frame.flags & FLAG_NOTICE != 0 {
            self.notice_received(from, &frame, now);
            return Inbound::Drop;
        }
        if frame.cluster != self.cluster.as_bytes() {
            bump(&self.counters.wrong_cluster);
            if self.warned.allow(from, now) {
                tracing::warn!(
                    peer = %from,
                    their_cluster = %String::from_utf8_lossy(frame.cluster),
                    our_cluster = %self.cluster,
                    "dropped a packet from {from} for another cluster: give both nodes the same \
                     cluster name, or keep them apart"
                );
            }
            return self.notify(from, NoticeReason::WrongCluster, bytes.len(), now);
        }
        let sealed = frame.flags & FLAG_SEALED != 0;
        let Some(sealing) = &mut self.sealing else {
            if !sealed {
                return Inbound::Deliver(Cow::Borrowed(bytes));
            }
            bump(&self.counters.sealed_refused);
            if self.warned.allow(from, now) {
                tracing::warn!(
                    peer = %from,
                    "dropped an encrypted packet from {from}: this node runs without encryption \
                     (plaintext mode); give it the cluster's key, or run every node in plaintext mode"
                );
            }
            return self.notify(from, NoticeReason::SealedRefused, bytes.len(), now);
        };
        if !sealed {
            bump(&self.counters.plaintext_refused);
            if self.warned.allow(from, now) {
                tracing::warn!(
                    peer = %from,
                    "dropped an unencrypted packet from {from}: this node requires encryption; \
                     give {from} the cluster's key (or run every node in plaintext mode)"
                );
            }
            return self.notify(from, NoticeReason::PlaintextRefused, bytes.len(), now);
        }
        let opened = match envelope::open(sealing.keyring.keys(), channel, bytes) {
            Ok(o) => o,
            Err(_) => {
                bump(&self.counters.auth_failures);
                if self.warned.allow(from, now) {
                    tracing::warn!(
                        peer = %from,
                        "dropped a packet from {from} that no installed key authenticates: check \
                         that both nodes use the same encryption key and cluster name"
                    );
                }
                return self.notify(from, NoticeReason::Unauthenticated, bytes.len(), now);
            }
        };
        match sealing.replay.check(opened.sent_ms, opened.nonce, now_ms) {
            Ok(()) => {
                bump(&self.counters.opened);
                Inbound::Deliver(Cow::Owned(opened.frame))
            }
            Err(Replay::OutsideWindow) => {
                bump(&self.counters.outside_window);
                let window = sealing.window;
                if self.warned.allow(from, now) {
                    let skew_s = (i128::from(opened.sent_ms) - i128::from(now_ms)) as f64 / 1000.0;
                    tracing::warn!(
                        peer = %from,
                        skew_s,
                        "dropped a packet from {from} sent {skew_s:+.1} s from this node's clock, \
                         outside the replay window of {window:?}: synchronise the clocks (NTP), or \
                         it is an old packet replayed"
                    );
                }
                self.notify(from, NoticeReason::ClockSkew, bytes.len(), now)
            }
            Err(Replay::Seen | Replay::BelowFloor) => {
                bump(&self.counters.replays_rejected);
                if self.warned.allow(from, now) {
                    tracing::warn!(
                        peer = %from,
                        "dropped a replayed packet claiming to come from {from}: someone on the \
                         network is re-sending captured packets"
                    );
                }
                Inbound::Drop
            }
        }
    }

    /// Drop the packet, and tell the sender why when it was not told within
    /// the last few seconds and the notice is no larger than its packet.
    fn notify(
        &mut self,
        to: SocketAddr,
        reason: NoticeReason,
        packet_len: usize,
        now: Instant,
    ) -> Inbound<'static> {
        let notice = envelope::notice(&self.cluster, reason);
        if notice.len() > packet_len || !self.notified.allow(to, now) {
            return Inbound::Drop;
        }
        bump(&self.counters.notices_sent);
        Inbound::Notify(notice)
    }

    fn notice_received(&mut self, from: SocketAddr, frame: &Frame<'_>, now: Instant) {
        bump(&self.counters.notices_received);
        if !self.warned.allow(from, now) {
            return;
        }
        let Some(reason) = envelope::notice_reason(frame.body) else {
            tracing::debug!(peer = %from, "ignored a notice of an unknown kind");
            return;
        };
        let theirs = String::from_utf8_lossy(frame.cluster);
        match reason {
            NoticeReason::Unauthenticated => tracing::warn!(
                peer = %from,
                "{from} could not decrypt this node's packets: check that both nodes use the \
                 same encryption key and cluster name"
            ),
            NoticeReason::PlaintextRefused => tracing::warn!(
                peer = %from,
                "{from} requires encryption and refused this node's unencrypted packets: give \
                 this node the cluster's key"
            ),
            NoticeReason::SealedRefused => tracing::warn!(
                peer = %from,
                "{from} runs without encryption and refused this node's encrypted packets: run \
                 every node with the same key, or every node in plaintext mode"
            ),
            NoticeReason::WrongCluster => tracing::warn!(
                peer = %from,
                their_cluster = %theirs,
                our_cluster = %self.cluster,
                "{from} is in cluster {theirs:?} and refused this node's packets for cluster {:?}: \
                 give both nodes the same cluster name, or keep them apart",
                self.cluster
            ),
            NoticeReason::ClockSkew => tracing::warn!(
                peer = %from,
                "{from} refused this node's packets as sent outside its replay window: the two \
                 clocks disagree; synchronise them (NTP)"
            ),
        }
    }
}

fn resolve_keyring(e: &Encryption) -> Result<Keyring, KeyError> {
    let Some(path) = &e.keyring_file else {
        return Ok(e.keyring.clone());
    };
    match Keyring::load(path)? {
        Some(ring) => {
            if !ring.contains(e.keyring.primary()) {
                tracing::warn!(
                    file = %path.display(),
                    configured = %e.keyring.primary().fingerprint(),
                    primary = %ring.primary().fingerprint(),
                    "the keyring file does not hold the configured key; using the file, which \
                     holds the rotations made since (remove the file to start from the configured key)"
                );
            }
            Ok(ring)
        }
        None => {
            e.keyring.save(path)?;
            Ok(e.keyring.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::keyring::Key;
    use rumor_proto::wire::frame::write_header;

    fn frame(cluster: &str) -> Vec<u8> {
        let mut f = Vec::new();
        write_header(&mut f, cluster, 0).unwrap();
        f.extend_from_slice(&[7; 40]);
        f
    }

    fn gate(security: &Security) -> Gate {
        Gate::new("default", security, Arc::default()).unwrap()
    }

    fn encrypted(b: u8) -> Security {
        Security::Encrypted(Encryption::new(Keyring::new(Key::from_bytes([b; 32]))))
    }

    const NOW_MS: u64 = 1_700_000_000_000;

    #[test]
    fn a_sealed_packet_is_delivered_once_and_its_replay_counted() {
        let a = gate(&encrypted(1));
        let mut b = gate(&encrypted(1));
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = Instant::now();
        let wire = a.seal(Channel::Datagram, frame("default"), NOW_MS).unwrap();
        assert_eq!(
            b.inbound(peer, Channel::Datagram, &wire, now, NOW_MS),
            Inbound::Deliver(Cow::Owned(frame("default")))
        );
        assert_eq!(
            b.inbound(peer, Channel::Datagram, &wire, now, NOW_MS),
            Inbound::Drop
        );
        let stats = b.counters.snapshot();
        assert_eq!((stats.opened, stats.replays_rejected), (1, 1));
    }

    #[test]
    fn refusals_are_told_at_most_once_per_interval_and_never_larger_than_the_packet() {
        let mut a = gate(&encrypted(1));
        let mut b = gate(&encrypted(2));
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = Instant::now();
        let wire = a.seal(Channel::Datagram, frame("default"), NOW_MS).unwrap();
        let Inbound::Notify(notice) = b.inbound(peer, Channel::Datagram, &wire, now, NOW_MS) else {
            panic!("no notice for a wrong key");
        };
        assert!(notice.len() <= wire.len());
        assert_eq!(
            b.inbound(peer, Channel::Datagram, &wire, now, NOW_MS),
            Inbound::Drop
        );
        assert_eq!(b.counters.snapshot().auth_failures, 2);
        // The notice reaches the sender and changes nothing there.
        assert_eq!(
            a.inbound(peer, Channel::Datagram, &notice, now, NOW_MS),
            Inbound::Drop
        );
        assert_eq!(a.counters.snapshot().notices_received, 1);
        // A packet smaller than the notice gets none.
        let mut c = gate(&encrypted(2));
        let tiny = [1u8, 0, 1, b'x'];
        assert_eq!(
            c.inbound(peer, Channel::Datagram, &tiny, now, NOW_MS),
            Inbound::Drop
        );
        assert_eq!(c.counters.snapshot().wrong_cluster, 1);
    }

    #[test]
    fn plaintext_and_encrypted_nodes_refuse_each_other() {
        let mut plain = gate(&Security::Plaintext);
        let mut sealed = gate(&encrypted(1));
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = Instant::now();
        let clear = plain
            .seal(Channel::Stream, frame("default"), NOW_MS)
            .unwrap();
        assert_eq!(clear, frame("default"));
        assert!(matches!(
            sealed.inbound(peer, Channel::Stream, &clear, now, NOW_MS),
            Inbound::Notify(_)
        ));
        let wire = sealed
            .seal(Channel::Stream, frame("default"), NOW_MS)
            .unwrap();
        assert!(matches!(
            plain.inbound(peer, Channel::Stream, &wire, now, NOW_MS),
            Inbound::Notify(_)
        ));
        assert_eq!(sealed.counters.snapshot().plaintext_refused, 1);
        assert_eq!(plain.counters.snapshot().sealed_refused, 1);
        assert_eq!(
            plain.inbound(peer, Channel::Stream, &clear, now, NOW_MS),
            Inbound::Deliver(Cow::Borrowed(&clear[..]))
        );
    }

    #[test]
    fn a_skewed_clock_is_refused_and_told() {
        let a = gate(&encrypted(1));
        let mut b = gate(&encrypted(1));
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let wire = a
            .seal(Channel::Datagram, frame("default"), NOW_MS - 61_000)
            .unwrap();
        assert!(matches!(
            b.inbound(peer, Channel::Datagram, &wire, Instant::now(), NOW_MS),
            Inbound::Notify(_)
        ));
        assert_eq!(b.counters.snapshot().outside_window, 1);
    }

    #[test]
    fn a_keyring_file_wins_over_the_configured_key_and_follows_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let k1 = Key::from_bytes([1; 32]);
        let k2 = Key::from_bytes([2; 32]);
        let config = |k: &Key| {
            Security::Encrypted(Encryption::new(Keyring::new(k.clone())).with_file(&path))
        };
        let mut g = gate(&config(&k1));
        assert_eq!(
            Keyring::load(&path).unwrap(),
            Some(Keyring::new(k1.clone()))
        );
        g.apply(&KeyOp::Install(k2.clone()), false).unwrap();
        g.apply(&KeyOp::Use(k2.clone()), false).unwrap();
        g.apply(&KeyOp::Remove(k1.clone()), false).unwrap();
        // A restart with the old configured key keeps the rotation.
        let g = gate(&config(&k1));
        assert_eq!(g.keyring(), Some(&Keyring::new(k2)));
    }
}
