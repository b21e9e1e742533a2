//! The Merkle descent: two replicas find the keys they disagree on by
//! comparing tree nodes level by level, only below nodes that differ.
//!
//! The exchange keeps no state on either side, so no number of requests can
//! grow a node's memory; each message carries what the receiver needs:
//!
//! 1. The initiator sends [`SyncCompare`] with the hashes of the root's 16
//!    children.
//! 2. The receiver compares each child with its own. For every child that
//!    differs it answers with the hashes of that child's own 16 children (a
//!    group in a [`SyncCompare`] one level deeper) or, once it holds at most
//!    [`LEAF_KEYS`] keys there, with the list of its keys ([`SyncKeys`]).
//! 3. Step 2 repeats, each side in turn, until only key lists travel.
//! 4. The receiver of a key list knows the exact difference under that
//!    prefix: the keys it must send (the peer lacks them or holds another
//!    state) and those it wants. It sends its entries with the wanted hashes
//!    (`SyncEntries`); the peer merges them and sends the wanted entries.
//!
//! Hashes travel as 32 bits, mixed with a per-exchange `salt` so that a
//! truncation collision (one in 2^32 comparisons) does not repeat in the
//! next exchange. With N keys and D differences the descent takes about
//! log16(N / LEAF_KEYS) + 3 one-way messages, and sends about
//! 72 bytes × D per level below the level where nodes outnumber D.

use serde::{Deserialize, Serialize};

use super::merkle::{MAX_DEPTH, MerkleIndex, Prefix, entry_hash};
use crate::fast_map::FastMap;

/// A node holding at most this many keys answers with its key list instead
/// of its children.
pub const LEAF_KEYS: usize = 8;

/// Most groups in one [`SyncCompare`], and keys in one [`SyncKeys`], that a
/// receiver looks at: larger messages are refused as invalid.
pub const MAX_GROUPS: usize = 8_192;
/// Most keys one [`SyncKeys`] may list.
pub const MAX_KEYS: usize = 65_536;

/// The 16 children of one tree node, as the sender holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The tree node: its depth in nibbles and its bits.
    pub depth: u8,
    /// The node's prefix bits.
    pub bits: u64,
    /// Salted 32-bit hashes of its 16 children, in order.
    pub children: [u32; 16],
}

/// Tree nodes to compare with the receiver's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCompare {
    /// This exchange's salt.
    pub salt: u32,
    /// Groups of children.
    pub groups: Vec<Group>,
}

/// The keys the sender holds under one tree node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncKeys {
    /// This exchange's salt.
    pub salt: u32,
    /// The tree node's depth.
    pub depth: u8,
    /// The tree node's prefix bits.
    pub bits: u64,
    /// (key hash, salted 32-bit entry hash) of every key under it.
    pub keys: Vec<(u64, u32)>,
}

/// What the receiver of a descent message should do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Tree nodes to send back, one level deeper.
    pub compare: Vec<SyncCompare>,
    /// Key lists to send back.
    pub keys: Vec<SyncKeys>,
    /// Key hashes whose entries to send to the peer.
    pub send: Vec<u64>,
    /// Key hashes whose entries to ask the peer for.
    pub want: Vec<u64>,
}

/// A descent message that breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DescentError {
    /// A prefix is malformed or too deep.
    #[error("bad tree prefix")]
    BadPrefix,
    /// More groups or keys than a message may carry.
    #[error("descent message too large")]
    TooLarge,
}

fn salted(h: u64, salt: u32) -> u32 {
    (entry_hash(h, u64::from(salt)) >> 32) as u32
}

fn group(index: &MerkleIndex, p: Prefix, salt: u32) -> Group {
    let kids = index.children(p);
    Group {
        depth: p.depth,
        bits: p.bits,
        children: kids.map(|h| salted(h, salt)),
    }
}

/// The initiator's first message: the root's children.
pub fn start(index: &MerkleIndex, salt: u32) -> SyncCompare {
    SyncCompare {
        salt,
        groups: vec![group(index, Prefix::ROOT, salt)],
    }
}

/// Answer a [`SyncCompare`]: descend below every child that differs.
/// `max_groups` caps the groups per reply message.
pub fn respond_compare(
    index: &MerkleIndex,
    msg: &SyncCompare,
    max_groups: usize,
) -> Result<Response, DescentError> {
    if msg.groups.len() > MAX_GROUPS {
        return Err(DescentError::TooLarge);
    }
    let salt = msg.salt;
    let mut out = Response::default();
    let mut groups = Vec::new();
    for g in &msg.groups {
        let p = Prefix {
            depth: g.depth,
            bits: g.bits,
        };
        if !p.is_valid() || p.depth >= MAX_DEPTH {
            return Err(DescentError::BadPrefix);
        }
        let mine = index.children(p);
        for (i, (&theirs, &h)) in g.children.iter().zip(&mine).enumerate() {
            if salted(h, salt) == theirs {
                continue;
            }
            let child = p.child(i as u8);
            if child.depth >= MAX_DEPTH || index.count_upto(child, LEAF_KEYS + 1) <= LEAF_KEYS {
                out.keys.push(key_list(index, child, salt));
            } else {
                groups.push(group(index, child, salt));
            }
        }
    }
    let max_groups = max_groups.max(1);
    while !groups.is_empty() {
        let rest = groups.split_off(groups.len().min(max_groups));
        out.compare.push(SyncCompare {
            salt,
            groups: core::mem::replace(&mut groups, rest),
        });
    }
    Ok(out)
}

fn key_list(index: &MerkleIndex, p: Prefix, salt: u32) -> SyncKeys {
    SyncKeys {
        salt,
        depth: p.depth,
        bits: p.bits,
        keys: index.keys(p).map(|(k, h)| (k, salted(h, salt))).collect(),
    }
}

/// Answer a [`SyncKeys`]: the exact difference under its prefix.
pub fn respond_keys(index: &MerkleIndex, msg: &SyncKeys) -> Result<Response, DescentError> {
    if msg.keys.len() > MAX_KEYS {
        return Err(DescentError::TooLarge);
    }
    let p = Prefix {
        depth: msg.depth,
        bits: msg.bits,
    };
    if !p.is_valid() {
        return Err(DescentError::BadPrefix);
    }
    let range = p.range();
    let theirs: FastMap<u64, u32> = msg
        .keys
        .iter()
        .filter(|(k, _)| range.contains(k))
        .copied()
        .collect();
    let mut out = Response::default();
    for (k, h) in index.keys(p) {
        match theirs.get(&k) {
            Some(&t) if t == salted(h, msg.salt) => {}
            Some(_) => {
                out.send.push(k);
                out.want.push(k);
            }
            None => out.send.push(k),
        }
    }
    for &k in theirs.keys() {
        if index
            .keys(Prefix {
                depth: MAX_DEPTH,
                bits: k,
            })
            .next()
            .is_none()
        {
            out.want.push(k);
        }
    }
    out.want.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Run a whole descent between `a` and `b`; returns (keys a must send,
    /// keys a wants, bytes of descent messages, one-way steps).
    pub(crate) fn run(
        a: &MerkleIndex,
        b: &MerkleIndex,
    ) -> (BTreeSet<u64>, BTreeSet<u64>, usize, usize) {
        let mut send = BTreeSet::new();
        let mut want = BTreeSet::new();
        let mut bytes = 0;
        let mut steps = 1;
        let first = start(a, 0x1234_5678);
        bytes += postcard::to_allocvec(&first).unwrap().len();
        // (message, true if it goes to b)
        let mut compares = vec![(first, true)];
        let mut keys: Vec<(SyncKeys, bool)> = Vec::new();
        while !compares.is_empty() || !keys.is_empty() {
            let mut next_c = Vec::new();
            let mut next_k = Vec::new();
            for (m, to_b) in compares.drain(..) {
                let idx = if to_b { b } else { a };
                let r = respond_compare(idx, &m, 4096).unwrap();
                for c in r.compare {
                    bytes += postcard::to_allocvec(&c).unwrap().len();
                    next_c.push((c, !to_b));
                }
                for k in r.keys {
                    bytes += postcard::to_allocvec(&k).unwrap().len();
                    next_k.push((k, !to_b));
                }
            }
            for (m, to_b) in keys.drain(..) {
                let idx = if to_b { b } else { a };
                let r = respond_keys(idx, &m).unwrap();
                // The side that received the key list sends its entries
                // and wants; a's view: if b received it, b sends r.send to
                // a (a wants them) and wants r.want from a (a sends them).
                if to_b {
                    want.extend(r.send);
                    send.extend(r.want);
                } else {
                    send.extend(r.send);
                    want.extend(r.want);
                }
            }
            if !next_c.is_empty() || !next_k.is_empty() {
                steps += 1;
            }
            compares = next_c;
            keys = next_k;
        }
        (send, want, bytes, steps)
    }

    fn index(keys: &[(u64, u64)]) -> MerkleIndex {
        let mut i = MerkleIndex::new();
        for &(k, d) in keys {
            i.add(k, d);
        }
        i
    }

    #[test]
    fn the_descent_finds_exactly_the_keys_that_differ() {
        let base: Vec<(u64, u64)> = (0..20_000u64).map(|i| (entry_hash(i, 1), 1)).collect();
        let mut a = base.clone();
        let mut b = base.clone();
        a[10].1 = 2; // changed on a
        a.push((entry_hash(1_000_000, 1), 1)); // only on a
        b.push((entry_hash(2_000_000, 1), 1)); // only on b
        b.remove(500); // deleted... absent on b
        let (ia, ib) = (index(&a), index(&b));
        let (send, want, bytes, steps) = run(&ia, &ib);
        let expect_send: BTreeSet<u64> = [a[10].0, entry_hash(1_000_000, 1), base[500].0]
            .into_iter()
            .collect();
        let expect_want: BTreeSet<u64> = [a[10].0, entry_hash(2_000_000, 1)].into_iter().collect();
        assert_eq!(send, expect_send);
        assert_eq!(want, expect_want);
        assert!(bytes < 4_000, "{bytes} bytes");
        assert!(steps <= 6, "{steps} steps");
    }

    #[test]
    fn equal_indexes_stop_at_the_first_message() {
        let keys: Vec<(u64, u64)> = (0..1000u64).map(|i| (entry_hash(i, 9), 3)).collect();
        let (send, want, _, steps) = run(&index(&keys), &index(&keys));
        assert!(send.is_empty() && want.is_empty());
        assert_eq!(steps, 1);
    }

    #[test]
    fn hostile_messages_are_refused() {
        let i = MerkleIndex::new();
        let bad = SyncCompare {
            salt: 0,
            groups: vec![Group {
                depth: 1,
                bits: 99,
                children: [0; 16],
            }],
        };
        assert_eq!(respond_compare(&i, &bad, 10), Err(DescentError::BadPrefix));
        let deep = SyncCompare {
            salt: 0,
            groups: vec![Group {
                depth: 16,
                bits: 0,
                children: [0; 16],
            }],
        };
        assert_eq!(respond_compare(&i, &deep, 10), Err(DescentError::BadPrefix));
        let many = SyncKeys {
            salt: 0,
            depth: 0,
            bits: 0,
            keys: vec![(0, 0); MAX_KEYS + 1],
        };
        assert_eq!(respond_keys(&i, &many), Err(DescentError::TooLarge));
    }
}
