//! The envelope around every datagram and stream frame, and the notice a
//! node sends back when it cannot accept a peer's packets.
//!
//! ```text
//! sealed = header  nonce:[u8; 12]  ChaCha20-Poly1305(plaintext):[u8; 8 + n]  tag:[u8; 16]
//! header = version:u8  flags:u8 (FLAG_SEALED)  cluster_len:u8  cluster:[u8; cluster_len]
//! plaintext = sent_at:u64 (unix ms, little endian)  body:[u8; n]   (the core's frame body)
//! associated data = channel:u8 (0 datagram, 1 stream)  header
//! notice = header (FLAG_NOTICE, the sender's cluster)  reason:u8
//! ```
//!
//! The header is the core's own frame header with the sealed flag set, so
//! the cluster name is checked before any key is tried and is bound into
//! the tag with the channel: a packet of another cluster, or one moved from
//! the datagram to the stream channel, fails to open. The nonce is 96
//! random bits, fresh for every packet.

use chacha20poly1305::Nonce;
use chacha20poly1305::aead::{Aead, Payload};
use rumor_proto::Channel;
use rumor_proto::wire::DecodeError;
use rumor_proto::wire::frame::{FLAG_NOTICE, FLAG_SEALED, parse_header, write_header};

use super::keyring::Key;

/// Length of the random nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Length of the send timestamp inside the sealed plaintext.
pub const TIMESTAMP_LEN: usize = 8;
/// Bytes sealing adds to a frame (the header is the core's, unchanged in
/// size).
pub const OVERHEAD: usize = NONCE_LEN + TIMESTAMP_LEN + TAG_LEN;

/// A sealed frame, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The core's frame: header without the sealed flag, then the body.
    pub frame: Vec<u8>,
    /// When the sender sealed it (unix ms, the sender's clock).
    pub sent_ms: u64,
    /// The nonce it was sealed with.
    pub nonce: [u8; NONCE_LEN],
    /// Position in the keyring of the key that opened it (0: primary).
    pub key_index: usize,
}

/// A frame could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The header does not parse.
    #[error("bad header: {0}")]
    Header(#[from] DecodeError),
    /// Sealing a frame that is already sealed, or opening one that is not.
    #[error("the sealed flag is not as expected")]
    Flag,
    /// No installed key opens it: another key, another cluster, another
    /// channel, or bytes changed on the way.
    #[error("no installed key authenticates it")]
    Unauthenticated,
}

fn channel_byte(channel: Channel) -> u8 {
    match channel {
        Channel::Datagram => 0,
        Channel::Stream => 1,
    }
}

fn associated_data(channel: Channel, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + header.len());
    aad.push(channel_byte(channel));
    aad.extend_from_slice(header);
    aad
}

/// Seal the core's `frame` under `key` for `channel`, stamped `sent_ms`,
/// with a fresh random nonce.
pub fn seal(
    key: &Key,
    channel: Channel,
    frame: &[u8],
    sent_ms: u64,
) -> Result<Vec<u8>, EnvelopeError> {
    seal_with_nonce(key, channel, frame, sent_ms, rand::random())
}

/// [`seal`] with a given nonce (which must never repeat under one key).
pub fn seal_with_nonce(
    key: &Key,
    channel: Channel,
    frame: &[u8],
    sent_ms: u64,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    let parsed = parse_header(frame)?;
    if parsed.flags & (FLAG_SEALED | FLAG_NOTICE) != 0 {
        return Err(EnvelopeError::Flag);
    }
    let header_len = frame.len() - parsed.body.len();
    let mut out = Vec::with_capacity(frame.len() + OVERHEAD);
    out.extend_from_slice(&frame[..header_len]);
    out[1] |= FLAG_SEALED;
    let aad = associated_data(channel, &out);
    let mut plaintext = Vec::with_capacity(TIMESTAMP_LEN + parsed.body.len());
    plaintext.extend_from_slice(&sent_ms.to_le_bytes());
    plaintext.extend_from_slice(parsed.body);
    let sealed = key
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| EnvelopeError::Unauthenticated)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Open a sealed frame received on `channel` with the first of `keys`
/// (primary first) that authenticates it. The cluster name is not checked
/// here: it is bound into the tag, and the caller compares it first to say
/// why a packet was refused.
pub fn open(keys: &[Key], channel: Channel, bytes: &[u8]) -> Result<Opened, EnvelopeError> {
    let parsed = parse_header(bytes)?;
    if parsed.flags & FLAG_SEALED == 0 || parsed.flags & FLAG_NOTICE != 0 {
        return Err(EnvelopeError::Flag);
    }
    let header = &bytes[..bytes.len() - parsed.body.len()];
    if parsed.body.len() < OVERHEAD {
        return Err(EnvelopeError::Unauthenticated);
    }
    let (nonce, sealed) = parsed.body.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| EnvelopeError::Unauthenticated)?;
    let aad = associated_data(channel, header);
    for (key_index, key) in keys.iter().enumerate() {
        let Ok(plaintext) = key.cipher().decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        ) else {
            continue;
        };
        let (stamp, body) = plaintext.split_at(TIMESTAMP_LEN);
        let mut stamp_bytes = [0u8; TIMESTAMP_LEN];
        stamp_bytes.copy_from_slice(stamp);
        let mut frame = Vec::with_capacity(header.len() + body.len());
        frame.extend_from_slice(header);
        frame[1] &= !FLAG_SEALED;
        frame.extend_from_slice(body);
        return Ok(Opened {
            frame,
            sent_ms: u64::from_le_bytes(stamp_bytes),
            nonce,
            key_index,
        });
    }
    Err(EnvelopeError::Unauthenticated)
}

/// Why a node refused a peer's packet, as told in a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeReason {
    /// No key installed there opens the packet.
    Unauthenticated = 1,
    /// The packet was plaintext and the receiver requires encryption.
    PlaintextRefused = 2,
    /// The packet was sealed and the receiver runs in plaintext mode.
    SealedRefused = 3,
    /// The packet named another cluster (the notice names the receiver's).
    WrongCluster = 4,
    /// The packet's send time is outside the receiver's replay window:
    /// the two clocks disagree.
    ClockSkew = 5,
}

impl NoticeReason {
    fn from_byte(b: u8) -> Option<NoticeReason> {
        Some(match b {
            1 => NoticeReason::Unauthenticated,
            2 => NoticeReason::PlaintextRefused,
            3 => NoticeReason::SealedRefused,
            4 => NoticeReason::WrongCluster,
            5 => NoticeReason::ClockSkew,
            _ => return None,
        })
    }
}

/// A notice from a node of `cluster`.
pub fn notice(cluster: &str, reason: NoticeReason) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + cluster.len());
    // A configured cluster name always fits the header (Config::validate).
    if write_header(&mut out, cluster, FLAG_NOTICE).is_err() {
        out.clear();
    }
    out.push(reason as u8);
    out
}

/// The reason a notice body gives, if it is one this build knows.
pub fn notice_reason(body: &[u8]) -> Option<NoticeReason> {
    match body {
        [b] => NoticeReason::from_byte(*b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rumor_proto::wire::frame::write_header;

    fn frame(cluster: &str, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        write_header(&mut f, cluster, 0).unwrap();
        f.extend_from_slice(body);
        f
    }

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    #[test]
    fn overhead_is_what_sealing_adds() {
        let f = frame("default", b"hello");
        let sealed = seal(&key(1), Channel::Datagram, &f, 42).unwrap();
        assert_eq!(sealed.len(), f.len() + OVERHEAD);
        assert_eq!(sealed[1], FLAG_SEALED);
        // The body is not readable on the wire.
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn any_installed_key_opens_and_the_index_says_which() {
        let f = frame("default", b"body");
        let sealed = seal(&key(2), Channel::Stream, &f, 7).unwrap();
        let opened = open(&[key(1), key(2)], Channel::Stream, &sealed).unwrap();
        assert_eq!(opened.frame, f);
        assert_eq!(opened.sent_ms, 7);
        assert_eq!(opened.key_index, 1);
        assert_eq!(
            open(&[key(1), key(3)], Channel::Stream, &sealed),
            Err(EnvelopeError::Unauthenticated)
        );
    }

    #[test]
    fn another_channel_or_cluster_fails_to_open() {
        let sealed = seal(&key(1), Channel::Datagram, &frame("alpha", b"x"), 1).unwrap();
        assert_eq!(
            open(&[key(1)], Channel::Stream, &sealed),
            Err(EnvelopeError::Unauthenticated)
        );
        // The same bytes under another cluster name of the same length.
        let mut moved = sealed.clone();
        moved[3..8].copy_from_slice(b"omega");
        assert_eq!(
            open(&[key(1)], Channel::Datagram, &moved),
            Err(EnvelopeError::Unauthenticated)
        );
        assert_eq!(
            open(&[key(1)], Channel::Datagram, &frame("alpha", &[0; 40])),
            Err(EnvelopeError::Flag)
        );
    }

    #[test]
    fn notices_carry_a_reason_and_stay_tiny() {
        let n = notice("default", NoticeReason::ClockSkew);
        assert_eq!(n.len(), 3 + 7 + 1);
        let parsed = parse_header(&n).unwrap();
        assert_eq!(parsed.flags, FLAG_NOTICE);
        assert_eq!(notice_reason(parsed.body), Some(NoticeReason::ClockSkew));
        assert_eq!(notice_reason(&[9]), None);
        assert_eq!(notice_reason(&[1, 1]), None);
    }

    proptest! {
        #[test]
        fn seal_then_open_gives_the_frame_back(
            cluster in "[a-z]{1,64}",
            body in proptest::collection::vec(any::<u8>(), 0..2000),
            stamp in any::<u64>(),
            stream in any::<bool>(),
        ) {
            let channel = if stream { Channel::Stream } else { Channel::Datagram };
            let f = frame(&cluster, &body);
            let sealed = seal(&key(5), channel, &f, stamp).unwrap();
            let opened = open(&[key(9), key(5)], channel, &sealed).unwrap();
            prop_assert_eq!(opened.frame, f);
            prop_assert_eq!(opened.sent_ms, stamp);
        }

        #[test]
        fn any_bit_flip_fails_to_open(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let sealed = seal(&key(5), Channel::Datagram, &frame("default", &body), 3).unwrap();
            let mut bad = sealed.clone();
            let i = at.index(bad.len());
            bad[i] ^= 1 << bit;
            prop_assert!(open(&[key(5)], Channel::Datagram, &bad).is_err());
        }

        #[test]
        fn any_truncation_fails_to_open(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            at in any::<prop::sample::Index>(),
        ) {
            let sealed = seal(&key(5), Channel::Datagram, &frame("default", &body), 3).unwrap();
            let cut = at.index(sealed.len());
            prop_assert!(open(&[key(5)], Channel::Datagram, &sealed[..cut]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_open_and_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            prop_assert!(open(&[key(5)], Channel::Stream, &bytes).is_err());
        }
    }
}
