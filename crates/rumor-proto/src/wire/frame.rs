//! Packet framing: header, compound datagrams and stream frames.
//!
//! ```text
//! header   = version:u8  flags:u8  cluster_len:u8  cluster:[u8; cluster_len]
//! datagram = header  { len:varint  message:[u8; len] }*
//! stream   = header  message
//! ```
//!
//! The header is what a sealing layer binds as associated data; everything
//! after it is the body it encrypts. Flag bit 0 marks a sealed body and bit 1
//! a transport notice (both handled outside the core, which refuses them);
//! the other bits are reserved and must be zero. Messages in a datagram are
//! length-prefixed so that a receiver can skip message types it does not know
//! (a newer peer) without losing the rest of the packet.

use serde::Serialize;

use super::error::{DecodeError, EncodeError};
use super::message::Message;
use crate::config::MAX_CLUSTER_NAME;
use crate::dissemination::rumor::RumorId;
use crate::state::Timestamp;

/// Version of the wire protocol spoken by this build.
pub const PROTOCOL_VERSION: u8 = 1;
/// Header flag: the body is sealed by an AEAD layer.
pub const FLAG_SEALED: u8 = 0b0000_0001;
/// Header flag: a notice from the transport layer to its peer's transport
/// (for example "your packet could not be authenticated here"); the body is
/// the transport's, never a protocol message.
pub const FLAG_NOTICE: u8 = 0b0000_0010;
/// Number of message types this build knows; a higher variant index is a
/// message from a newer protocol and is skipped.
pub(crate) const KNOWN_MESSAGE_KINDS: u32 = 16;

/// Bytes taken by the header for a cluster name of `cluster_len` bytes.
pub fn header_len(cluster_len: usize) -> usize {
    3 + cluster_len
}

/// The parts of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Header flags.
    pub flags: u8,
    /// Cluster name bytes as sent.
    pub cluster: &'a [u8],
    /// Everything after the header.
    pub body: &'a [u8],
}

/// Write a header for `cluster` with `flags`.
pub fn write_header(buf: &mut Vec<u8>, cluster: &str, flags: u8) -> Result<(), EncodeError> {
    let len = u8::try_from(cluster.len())
        .ok()
        .filter(|&l| l as usize <= MAX_CLUSTER_NAME)
        .ok_or(EncodeError::ClusterName)?;
    buf.push(PROTOCOL_VERSION);
    buf.push(flags);
    buf.push(len);
    buf.extend_from_slice(cluster.as_bytes());
    Ok(())
}

/// Split a frame into header fields and body, checking version, size and
/// cluster name.
pub fn split_frame<'a>(
    bytes: &'a [u8],
    cluster: &str,
    max_len: usize,
) -> Result<Frame<'a>, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            max: max_len,
        });
    }
    let frame = parse_header(bytes)?;
    if frame.flags & !FLAG_SEALED != 0 {
        return Err(DecodeError::Malformed("reserved header flags set"));
    }
    if frame.cluster != cluster.as_bytes() {
        return Err(DecodeError::WrongCluster);
    }
    Ok(frame)
}

/// Split a frame into header fields and body, checking only the version
/// and that the cluster name is whole: for a transport layer that reads the
/// header before the core does (flags and cluster name are the caller's to
/// judge).
pub fn parse_header(bytes: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let [version, flags, len, rest @ ..] = bytes else {
        return Err(DecodeError::Truncated);
    };
    if *version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(*version));
    }
    let len = *len as usize;
    if rest.len() < len {
        return Err(DecodeError::Truncated);
    }
    let (name, body) = rest.split_at(len);
    Ok(Frame {
        flags: *flags,
        cluster: name,
        body,
    })
}

/// Encode one message with postcard, appending to `buf`.
pub fn encode_message(msg: &Message, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_into(msg, buf)
}

fn encode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let out = core::mem::take(buf);
    *buf = postcard::to_extend(value, out).map_err(|_| EncodeError::Serialize)?;
    Ok(())
}

/// Length in bytes of `n` as a varint.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - n.max(1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Builds one datagram: a header followed by as many messages as fit in the
/// packet budget.
#[derive(Debug)]
pub struct PacketBuilder {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    budget: usize,
    messages: usize,
}

impl PacketBuilder {
    /// Start a datagram for `cluster` that will not exceed `budget` bytes.
    pub fn new(cluster: &str, budget: usize) -> Result<Self, EncodeError> {
        let mut buf = Vec::with_capacity(budget.min(2048));
        write_header(&mut buf, cluster, 0)?;
        Ok(PacketBuilder {
            buf,
            scratch: Vec::new(),
            budget,
            messages: 0,
        })
    }

    /// Bytes still free in the budget.
    pub fn remaining(&self) -> usize {
        self.budget.saturating_sub(self.buf.len())
    }

    /// Number of messages added so far.
    pub fn len(&self) -> usize {
        self.messages
    }

    /// Whether no message was added yet.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// Add `msg` if it fits; returns whether it was added.
    pub fn push(&mut self, msg: &Message) -> Result<bool, EncodeError> {
        self.scratch.clear();
        let mut scratch = core::mem::take(&mut self.scratch);
        encode_message(msg, &mut scratch)?;
        let added = self.push_encoded(&scratch);
        self.scratch = scratch;
        Ok(added)
    }

    /// Add an already encoded message if it fits; returns whether it was added.
    pub fn push_encoded(&mut self, encoded: &[u8]) -> bool {
        let need = varint_len(encoded.len()) + encoded.len();
        if need > self.remaining() {
            return false;
        }
        let out = core::mem::take(&mut self.buf);
        self.buf = match postcard::to_extend(&(encoded.len() as u32), out) {
            Ok(b) => b,
            Err(_) => unreachable!("writing to a Vec cannot fail"),
        };
        self.buf.extend_from_slice(encoded);
        self.messages += 1;
        true
    }

    /// The finished datagram.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Messages decoded from one datagram.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// The messages, in packet order.
    pub messages: Vec<Message>,
    /// Messages of a type this build does not know, skipped.
    pub unknown: usize,
    /// Rumors the receiver already held: only their ids were decoded. Each
    /// comes with the number of `messages` that preceded it in the packet,
    /// so the packet can be handled in order.
    pub known_rumors: Vec<(usize, RumorId)>,
    /// State summaries no newer than the receiver's, dropped undecoded.
    pub stale_summaries: usize,
}

/// What a receiver already holds, so that the copies of it that epidemic
/// spreading brings need not be decoded.
pub trait AlreadyHeld {
    /// Whether the rumor `id` is held.
    fn rumor(&self, id: &RumorId) -> bool;
    /// Whether a summary of `node` at least as recent as `issued` is held.
    fn summary(&self, node: &str, issued: Timestamp) -> bool;
}

/// Holds nothing: every message is decoded.
impl AlreadyHeld for () {
    fn rumor(&self, _: &RumorId) -> bool {
        false
    }
    fn summary(&self, _: &str, _: Timestamp) -> bool {
        false
    }
}

/// Variant index of [`Message::Rumor`] on the wire.
pub(crate) const RUMOR_KIND: u32 = 9;
/// Variant index of [`Message::StateSummary`] on the wire.
pub(crate) const SUMMARY_KIND: u32 = 12;

/// Decode the body of a datagram into its messages. Nothing is returned
/// unless the whole body decodes, so a damaged packet changes nothing.
pub fn decode_datagram_body(body: &[u8]) -> Result<Decoded, DecodeError> {
    decode_datagram_body_skipping(body, &())
}

/// [`decode_datagram_body`], but what `held` already has is not decoded in
/// full: a held rumor only as far as its id, which goes to
/// [`Decoded::known_rumors`], and a summary no newer than the held one only
/// as far as its node and issue time. Most copies a node receives are ones
/// it already has (the price of epidemic spreading), and their bodies would
/// only be decoded, validated and thrown away. Their bodies are not checked.
pub fn decode_datagram_body_skipping(
    body: &[u8],
    held: &impl AlreadyHeld,
) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    decode_datagram_body_into(body, held, &mut out)?;
    Ok(out)
}

impl Decoded {
    /// Empty it, keeping its buffers for the next packet.
    pub fn clear(&mut self) {
        self.messages.clear();
        self.unknown = 0;
        self.known_rumors.clear();
        self.stale_summaries = 0;
    }
}

/// [`decode_datagram_body_skipping`] into `out` (cleared first), so that a
/// receiver reuses its buffers from packet to packet. On an error `out`
/// holds part of the body and must not be used.
pub fn decode_datagram_body_into(
    mut body: &[u8],
    held: &impl AlreadyHeld,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    out.clear();
    while !body.is_empty() {
        let (len, rest) =
            postcard::take_from_bytes::<u32>(body).map_err(DecodeError::from_postcard)?;
        let len = len as usize;
        if rest.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (msg, rest) = rest.split_at(len);
        body = rest;
        if is_unknown_kind(msg) {
            out.unknown += 1;
            continue;
        }

        match postcard::take_from_bytes::<u32>(msg) {
            Ok((RUMOR_KIND, rest)) => {
                if let Ok((id, _)) = postcard::take_from_bytes::<RumorId>(rest)
                    && held.rumor(&id)
                {
                    out.known_rumors.push((out.messages.len(), id));
                    continue;
                }
            }
            Ok((SUMMARY_KIND, rest)) => {
                if let Some((node, issued)) = summary_head(rest)
                    && held.summary(node, issued)
                {
                    out.stale_summaries += 1;
                    continue;
                }
            }
            _ => {}
        }
        out.messages.push(decode_message(msg)?);
    }
    Ok(())
}

/// The node and issue time of an encoded state summary (after its kind),
/// read in place: the fields before `issued` are node, root, keys and
/// last_change.
fn summary_head(bytes: &[u8]) -> Option<(&str, Timestamp)> {
    type Head<'a> = (&'a str, u64, u64, Timestamp, Timestamp);
    let ((node, _, _, _, issued), _) = postcard::take_from_bytes::<Head<'_>>(bytes).ok()?;
    Some((node, issued))
}

fn is_unknown_kind(msg: &[u8]) -> bool {
    matches!(postcard::take_from_bytes::<u32>(msg), Ok((kind, _)) if kind >= KNOWN_MESSAGE_KINDS)
}

/// Decode exactly one message that fills `bytes`.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let (msg, rest) =
        postcard::take_from_bytes::<Message>(bytes).map_err(DecodeError::from_postcard)?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed("trailing bytes after message"));
    }
    Ok(msg)
}

/// Encode a stream frame: header and a single message.
pub fn encode_stream_frame(
    cluster: &str,
    msg: &Message,
    max_len: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::new();
    write_header(&mut buf, cluster, 0)?;
    encode_message(msg, &mut buf)?;
    if buf.len() > max_len {
        return Err(EncodeError::TooLarge {
            len: buf.len(),
            max: max_len,
        });
    }
    Ok(buf)
}

/// Encode a stream frame around a message already encoded.
pub fn encode_stream_frame_encoded(
    cluster: &str,
    encoded: &[u8],
    max_len: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(header_len(cluster.len()) + encoded.len());
    write_header(&mut buf, cluster, 0)?;
    buf.extend_from_slice(encoded);
    if buf.len() > max_len {
        return Err(EncodeError::TooLarge {
            len: buf.len(),
            max: max_len,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_last_message_variant_is_a_known_kind() {
        let last = crate::wire::Message::SyncEntries(crate::wire::SyncEntries {
            entries: Vec::new(),
            want: Vec::new(),
        });
        let bytes = postcard::to_allocvec(&last).unwrap();
        let (kind, _) = postcard::take_from_bytes::<u32>(&bytes).unwrap();
        assert_eq!(
            kind + 1,
            super::KNOWN_MESSAGE_KINDS,
            "update KNOWN_MESSAGE_KINDS"
        );
    }

    use super::*;
    use crate::membership::member::NodeName;
    use crate::wire::message::{Ack, Ping};

    #[test]
    fn varint_len_matches_postcard() {
        for n in [
            0usize,
            1,
            127,
            128,
            16_383,
            16_384,
            1 << 21,
            u32::MAX as usize,
        ] {
            let enc = postcard::to_allocvec(&(n as u32)).unwrap();
            assert_eq!(varint_len(n), enc.len(), "n = {n}");
        }
    }

    #[test]
    fn builder_respects_budget() {
        let mut b = PacketBuilder::new("c", 64).unwrap();
        let mut n = 0;
        while b
            .push(&Message::Ack(Ack {
                seq: u32::MAX,
                digest: Default::default(),
            }))
            .unwrap()
        {
            n += 1;
        }
        let pkt = b.finish();
        assert!(pkt.len() <= 64);
        assert!(n > 5);
        let frame = split_frame(&pkt, "c", 64).unwrap();
        assert_eq!(decode_datagram_body(frame.body).unwrap().messages.len(), n);
    }

    #[test]
    fn header_checks() {
        let mut b = PacketBuilder::new("alpha", 1400).unwrap();
        let ping = Message::Ping(Ping {
            seq: 1,
            target: "n1".parse().unwrap(),
        });
        assert!(b.push(&ping).unwrap());
        let pkt = b.finish();
        assert_eq!(
            split_frame(&pkt, "beta", 1400),
            Err(DecodeError::WrongCluster)
        );
        assert_eq!(
            split_frame(&pkt, "alpha", 10),
            Err(DecodeError::Oversized {
                len: pkt.len(),
                max: 10
            })
        );
        assert_eq!(
            split_frame(&pkt[..2], "alpha", 1400),
            Err(DecodeError::Truncated)
        );
        let mut v2 = pkt.clone();
        v2[0] = 2;
        assert_eq!(
            split_frame(&v2, "alpha", 1400),
            Err(DecodeError::UnsupportedVersion(2))
        );
        let frame = split_frame(&pkt, "alpha", 1400).unwrap();
        assert_eq!(
            decode_datagram_body(frame.body).unwrap().messages,
            vec![ping]
        );
    }

    #[test]
    fn largest_allowed_alive_fits_the_smallest_allowed_budget() {
        use crate::config::{Config, MAX_CLUSTER_NAME};
        use crate::membership::member::MAX_NAME_LEN;
        use crate::wire::message::Alive;
        let max_tags = 512;
        let mut budget = crate::config::MIN_PACKET_BUDGET;
        while (Config {
            max_tags_bytes: max_tags,
            packet_budget: budget,
            ..Config::lan()
        })
        .validate()
        .is_err()
        {
            budget += 1;
        }
        let cluster = "c".repeat(MAX_CLUSTER_NAME);
        // Worst cases for the tag map: one huge entry, or many 2-byte ones.
        let one: crate::Tags = [("k".to_string(), "v".repeat(max_tags - 3))].into();
        let many: crate::Tags = (0..max_tags / 5)
            .map(|i| (format!("{i:03}"), String::new()))
            .collect();
        for tags in [one, many] {
            assert!(crate::wire::tags_size(&tags) <= max_tags);
            let alive = Alive {
                incarnation: u32::MAX,
                node: NodeName::new(&"n".repeat(MAX_NAME_LEN)).unwrap(),
                addr: "[ffff::1]:65535".parse().unwrap(),
                tags,
            };
            let mut b = PacketBuilder::new(&cluster, budget).unwrap();
            assert!(b.push(&Message::Alive(alive)).unwrap(), "budget {budget}");
        }
    }

    #[test]
    fn unknown_message_kinds_are_skipped() {
        let mut b = PacketBuilder::new("c", 1400).unwrap();
        assert!(b.push_encoded(&[42, 1, 2, 3]));
        assert!(
            b.push(&Message::Ack(Ack {
                seq: 7,
                digest: Default::default()
            }))
            .unwrap()
        );
        let pkt = b.finish();
        let frame = split_frame(&pkt, "c", 1400).unwrap();
        let d = decode_datagram_body(frame.body).unwrap();
        assert_eq!(d.unknown, 1);
        assert_eq!(
            d.messages,
            vec![Message::Ack(Ack {
                seq: 7,
                digest: Default::default()
            })]
        );
    }

    fn rumor(seq: u32) -> Message {
        use crate::dissemination::rumor::{Priority, Rumor, RumorBody};
        Message::Rumor(Rumor {
            id: RumorId { origin: 99, seq },
            origin: NodeName::new("o").unwrap(),
            ltime: 1,
            priority: Priority::Normal,
            hops: 0,
            body: RumorBody::Event {
                name: "e".into(),
                payload: vec![1, 2, 3],
            },
        })
    }

    fn summary(issued: u64) -> Message {
        Message::StateSummary(crate::sync::StateSummary {
            node: NodeName::new("n1").unwrap(),
            root: 7,
            keys: 3,
            last_change: Timestamp {
                wall_ms: 5,
                logical: 0,
            },
            issued: Timestamp {
                wall_ms: issued,
                logical: 1,
            },
            stable: Timestamp::ZERO,
        })
    }

    #[test]
    fn the_skip_kinds_are_the_wire_indexes_of_rumors_and_summaries() {
        let bytes = postcard::to_allocvec(&rumor(1)).unwrap();
        let (kind, rest) = postcard::take_from_bytes::<u32>(&bytes).unwrap();
        assert_eq!(kind, RUMOR_KIND);
        let (id, _) = postcard::take_from_bytes::<RumorId>(rest).unwrap();
        assert_eq!(id, RumorId { origin: 99, seq: 1 });
        let bytes = postcard::to_allocvec(&summary(9)).unwrap();
        let (kind, rest) = postcard::take_from_bytes::<u32>(&bytes).unwrap();
        assert_eq!(kind, SUMMARY_KIND);
        assert_eq!(
            summary_head(rest),
            Some((
                "n1",
                Timestamp {
                    wall_ms: 9,
                    logical: 1
                }
            ))
        );
    }

    struct Holds;
    impl AlreadyHeld for Holds {
        fn rumor(&self, id: &RumorId) -> bool {
            id.seq == 1
        }
        fn summary(&self, node: &str, issued: Timestamp) -> bool {
            node == "n1" && issued.wall_ms <= 9
        }
    }

    #[test]
    fn held_summaries_are_dropped_undecoded_and_newer_ones_decoded() {
        let mut b = PacketBuilder::new("c", 1400).unwrap();
        assert!(b.push(&summary(9)).unwrap());
        assert!(b.push(&summary(10)).unwrap());
        let pkt = b.finish();
        let frame = split_frame(&pkt, "c", 1400).unwrap();
        let d = decode_datagram_body_skipping(frame.body, &Holds).unwrap();
        assert_eq!(d.stale_summaries, 1);
        assert_eq!(d.messages, vec![summary(10)]);
    }

    #[test]
    fn known_rumors_are_not_decoded_past_their_id() {
        let mut b = PacketBuilder::new("c", 1400).unwrap();
        // A known rumor whose body is damaged after its id is skipped, not
        // an error; an unknown one decodes in full.
        let mut damaged = postcard::to_allocvec(&rumor(1)).unwrap();
        let len = damaged.len();
        damaged.truncate(len - 2);
        assert!(b.push_encoded(&damaged));
        assert!(b.push(&rumor(2)).unwrap());
        let pkt = b.finish();
        let frame = split_frame(&pkt, "c", 1400).unwrap();
        let d = decode_datagram_body_skipping(frame.body, &Holds).unwrap();
        assert_eq!(d.known_rumors, vec![(0, RumorId { origin: 99, seq: 1 })]);
        assert_eq!(d.messages, vec![rumor(2)]);
        // Without the skip, the damaged rumor makes the packet fail whole.
        assert!(decode_datagram_body(frame.body).is_err());
    }
}
