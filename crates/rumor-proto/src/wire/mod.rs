//! Wire format: messages, framing, limits.
//!
//! Decoding is total: any bytes give messages or a [`DecodeError`], never a
//! panic, and allocation is bounded by the input length (postcard reads
//! lengths from the input, and serde caps any up-front reservation).

pub mod error;
pub mod frame;
pub mod message;

pub use error::{DecodeError, EncodeError};
pub use frame::{Decoded, PROTOCOL_VERSION, PacketBuilder};
pub use message::*;

use crate::config::Config;
use crate::dissemination::rumor::RumorBody;
use crate::membership::member::{NodeName, Tags};
use crate::state::Entry;
use crate::sync::merkle::{MAX_DEPTH, Prefix};

/// Size of tags as counted against `Config::max_tags_bytes`: the bytes of
/// every key and value, plus two per entry.
pub fn tags_size(tags: &Tags) -> usize {
    tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum()
}

fn check_name(name: &NodeName) -> Result<(), DecodeError> {
    if name.is_valid() {
        Ok(())
    } else {
        Err(DecodeError::Invalid("bad node name"))
    }
}

fn check_tags(tags: &Tags, max: usize) -> Result<(), DecodeError> {
    if tags_size(tags) <= max {
        Ok(())
    } else {
        Err(DecodeError::Invalid("tags too large"))
    }
}

/// Most key hashes one [`SyncEntries`] may ask for.
pub const MAX_SYNC_WANT: usize = 65_536;

/// Longest user-event name, in bytes.
pub const MAX_EVENT_NAME: usize = 128;

/// Check the rules serde cannot: valid names, tags within
/// `config.max_tags_bytes`, event payloads within
/// `config.dissemination.max_payload`.
pub fn validate(msg: &Message, config: &Config) -> Result<(), DecodeError> {
    let max_tags_bytes = config.max_tags_bytes;
    match msg {
        Message::Ping(p) => check_name(&p.target),
        Message::IndirectPing(p) => check_name(&p.target),
        Message::Ack(_) | Message::Nack(_) => Ok(()),
        Message::Alive(a) => {
            check_name(&a.node)?;
            check_tags(&a.tags, max_tags_bytes)
        }
        Message::Suspect(s) => {
            check_name(&s.node)?;
            check_name(&s.from)
        }
        Message::Dead(d) => {
            check_name(&d.node)?;
            check_name(&d.from)
        }
        Message::Left(l) => check_name(&l.node),
        Message::PushPull(p) => {
            check_name(&p.from)?;
            p.members.iter().try_for_each(|m| {
                check_name(&m.node)?;
                check_tags(&m.tags, max_tags_bytes)
            })
        }
        Message::Rumor(r) => {
            check_name(&r.origin)?;
            match &r.body {
                RumorBody::Event { name, payload } => {
                    if name.len() > MAX_EVENT_NAME {
                        return Err(DecodeError::Invalid("event name too long"));
                    }
                    if payload.len() > config.dissemination.max_payload {
                        return Err(DecodeError::Invalid("event payload too large"));
                    }
                    Ok(())
                }
                RumorBody::Write { key, entry } => check_key_entry(key, entry, config),
            }
        }
        Message::RumorDigest(_) | Message::RumorFeedback(_) => Ok(()),
        Message::StateSummary(s) => check_name(&s.node),
        Message::SyncCompare(c) => {
            if c.groups.len() > crate::sync::descent::MAX_GROUPS {
                return Err(DecodeError::Invalid("too many tree nodes"));
            }
            let inner = |g: &crate::sync::descent::Group| {
                let p = Prefix {
                    depth: g.depth,
                    bits: g.bits,
                };
                p.is_valid() && p.depth < MAX_DEPTH
            };
            if !c.groups.iter().all(inner) {
                return Err(DecodeError::Invalid("bad tree prefix"));
            }
            Ok(())
        }
        Message::SyncKeys(lists) => {
            let keys: usize = lists.iter().map(|l| l.keys.len()).sum();
            if keys > crate::sync::descent::MAX_KEYS {
                return Err(DecodeError::Invalid("too many keys listed"));
            }
            if !lists.iter().all(|l| {
                Prefix {
                    depth: l.depth,
                    bits: l.bits,
                }
                .is_valid()
            }) {
                return Err(DecodeError::Invalid("bad tree prefix"));
            }
            Ok(())
        }
        Message::SyncEntries(e) => {
            if e.want.len() > MAX_SYNC_WANT {
                return Err(DecodeError::Invalid("too many wanted keys"));
            }
            e.entries
                .iter()
                .try_for_each(|(k, entry)| check_key_entry(k, entry, config))
        }
    }
}

/// A key and its state as received: a valid key, an entry that keeps its
/// invariants, and values within the store's limits.
pub fn check_key_entry(key: &str, entry: &Entry, config: &Config) -> Result<(), DecodeError> {
    let limits = &config.state;
    if crate::state::store::check_key(key, limits.max_key_bytes).is_err() {
        return Err(DecodeError::Invalid("bad key"));
    }
    if entry.len() > limits.max_dots_per_key
        || entry
            .dots
            .iter()
            .any(|d| d.payload.data_len() > limits.max_value_bytes)
    {
        return Err(DecodeError::Invalid("entry over the store's limits"));
    }
    if !entry.is_valid() {
        return Err(DecodeError::Invalid("entry breaks its causal invariants"));
    }
    Ok(())
}
