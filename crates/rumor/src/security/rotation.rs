//! Key rotation across the cluster.
//!
//! An operation (install, use, remove) is applied on the node that was
//! asked, then spread as a user event named [`KEYS_EVENT`], which travels
//! sealed like every packet; each node applies it on delivery, and the
//! event is never shown to subscribers. Every node records the
//! fingerprints of its keyring under `_rumor/keyring/<node>` in the
//! replicated store (last writer wins), so any node can tell how many live
//! members hold each key before the next step of a rotation.

use std::collections::BTreeMap;

use rumor_proto::state::{Kind, Op};
use rumor_proto::{Member, NodeName};
use serde::{Deserialize, Serialize};

use super::keyring::{KEY_LEN, Key, KeyError, Keyring};

/// Name of the user event that carries keyring operations.
pub const KEYS_EVENT: &str = "_rumor.keys";
/// User-event names starting with this are reserved for rumor itself.
pub const RESERVED_EVENT_PREFIX: &str = "_rumor.";
/// Store keys starting with this are reserved for rumor itself.
pub const RESERVED_KEY_PREFIX: &str = "_rumor/";
/// Prefix of the store keys where nodes record their keyring fingerprints.
pub const RECORD_PREFIX: &str = "_rumor/keyring/";

/// A change to the keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOp {
    /// Add a key; it opens packets from now on.
    Install(Key),
    /// Make an installed key primary; it seals from now on.
    Use(Key),
    /// Remove a key that is not primary.
    Remove(Key),
}

impl KeyOp {
    /// The key it is about.
    pub fn key(&self) -> &Key {
        match self {
            KeyOp::Install(k) | KeyOp::Use(k) | KeyOp::Remove(k) => k,
        }
    }

    /// The operation's name, as operators type it.
    pub fn verb(&self) -> &'static str {
        match self {
            KeyOp::Install(_) => "install",
            KeyOp::Use(_) => "use",
            KeyOp::Remove(_) => "remove",
        }
    }

    /// The event payload: one byte of operation, then the 32-byte key.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let op = match self {
            KeyOp::Install(_) => 1,
            KeyOp::Use(_) => 2,
            KeyOp::Remove(_) => 3,
        };
        let mut out = Vec::with_capacity(1 + KEY_LEN);
        out.push(op);
        out.extend_from_slice(self.key().as_bytes());
        out
    }

    /// The operation an event payload carries, if it is one.
    pub(crate) fn decode(payload: &[u8]) -> Option<KeyOp> {
        let (&op, key) = payload.split_first()?;
        let key = Key::from_bytes(key.try_into().ok()?);
        match op {
            1 => Some(KeyOp::Install(key)),
            2 => Some(KeyOp::Use(key)),
            3 => Some(KeyOp::Remove(key)),
            _ => None,
        }
    }

    /// Apply to `ring`. An operation from another node is applied
    /// leniently where that keeps this node in the cluster: `use` of a key
    /// this node missed the install of installs it first.
    pub(crate) fn apply(&self, ring: &mut Keyring, from_peer: bool) -> Result<bool, KeyError> {
        match self {
            KeyOp::Install(k) => ring.install(k.clone()),
            KeyOp::Use(k) => {
                let installed = from_peer && ring.install(k.clone())?;
                Ok(ring.use_key(k)? || installed)
            }
            KeyOp::Remove(k) => ring.remove(k),
        }
    }
}

/// What a node records of its keyring in the replicated store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringRecord {
    /// Fingerprint of the primary key.
    pub primary: String,
    /// Fingerprints of every installed key, the primary first.
    pub keys: Vec<String>,
}

impl KeyringRecord {
    /// The record of `ring`.
    pub fn of(ring: &Keyring) -> KeyringRecord {
        KeyringRecord {
            primary: ring.primary().fingerprint(),
            keys: ring.keys().iter().map(Key::fingerprint).collect(),
        }
    }

    /// The store key `node` records under.
    pub fn store_key(node: &NodeName) -> String {
        format!("{RECORD_PREFIX}{node}")
    }

    /// The write that records it.
    pub(crate) fn write(&self) -> Op {
        Op::Put {
            // Two strings and a list of short hex strings always serialize.
            value: serde_json::to_vec(self).unwrap_or_default(),
            context: None,
            kind: Some(Kind::Lww),
        }
    }

    /// The record in a store value, if it is one.
    pub(crate) fn parse(value: &[u8]) -> Option<KeyringRecord> {
        serde_json::from_slice(value).ok()
    }
}

/// One key as the cluster holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    /// The key's fingerprint (first 8 bytes of its SHA-256, hex).
    pub fingerprint: String,
    /// Live members that have it installed.
    pub installed_on: usize,
    /// Live members that seal with it.
    pub primary_on: usize,
    /// Whether this node has it installed.
    pub local: bool,
    /// Whether this node seals with it.
    pub local_primary: bool,
}

/// The keys of the cluster as this node sees them: from its own keyring,
/// and the records of the live members it knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysReport {
    /// Live (alive or suspect) members, this node included.
    pub members: usize,
    /// Every key installed on a live member, this node's first (primary
    /// first), then by fingerprint.
    pub keys: Vec<KeyStatus>,
    /// Live members whose record has not reached this node yet.
    pub unreported: Vec<String>,
}

impl KeysReport {
    /// The status of the key with this fingerprint, if a live member has it.
    pub fn key(&self, fingerprint: &str) -> Option<&KeyStatus> {
        self.keys.iter().find(|k| k.fingerprint == fingerprint)
    }

    /// Build the report from the local keyring and what `record_of` finds
    /// for each live member other than `local`.
    pub(crate) fn build<'a>(
        local: &NodeName,
        ring: &Keyring,
        members: impl Iterator<Item = &'a Member>,
        record_of: impl Fn(&NodeName) -> Option<KeyringRecord>,
    ) -> KeysReport {
        let own = KeyringRecord::of(ring);
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut tally = |r: &KeyringRecord| {
            for fp in &r.keys {
                let c = counts.entry(fp.clone()).or_default();
                c.0 += 1;
                c.1 += usize::from(*fp == r.primary);
            }
        };
        tally(&own);
        let mut live = 1;
        let mut unreported = Vec::new();
        for m in members.filter(|m| m.state.is_active() && m.name != *local) {
            live += 1;
            match record_of(&m.name) {
                Some(r) => tally(&r),
                None => unreported.push(m.name.to_string()),
            }
        }
        let status = |fp: &String, (installed_on, primary_on): (usize, usize)| KeyStatus {
            fingerprint: fp.clone(),
            installed_on,
            primary_on,
            local: own.keys.contains(fp),
            local_primary: own.primary == *fp,
        };
        let mut keys: Vec<KeyStatus> = own
            .keys
            .iter()
            .map(|fp| status(fp, counts.get(fp).copied().unwrap_or_default()))
            .collect();
        keys.extend(
            counts
                .iter()
                .filter(|(fp, _)| !own.keys.contains(fp))
                .map(|(fp, c)| status(fp, *c)),
        );
        KeysReport {
            members: live,
            keys,
            unreported,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rumor_proto::{Member, MemberState};

    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn operations_round_trip_and_junk_is_ignored() {
        for op in [
            KeyOp::Install(key(1)),
            KeyOp::Use(key(2)),
            KeyOp::Remove(key(3)),
        ] {
            assert_eq!(KeyOp::decode(&op.encode()), Some(op));
        }
        assert_eq!(KeyOp::decode(&[]), None);
        assert_eq!(KeyOp::decode(&[1; 10]), None);
        assert_eq!(KeyOp::decode(&[9; 33]), None);
    }

    #[test]
    fn a_peer_use_of_a_missed_key_installs_it_but_a_local_one_is_refused() {
        let mut ring = Keyring::new(key(1));
        assert!(KeyOp::Use(key(2)).apply(&mut ring, false).is_err());
        assert!(KeyOp::Use(key(2)).apply(&mut ring, true).unwrap());
        assert_eq!(ring.primary(), &key(2));
        assert!(KeyOp::Remove(key(2)).apply(&mut ring, true).is_err());
    }

    #[test]
    fn the_report_counts_live_members_per_key() {
        let names: Vec<NodeName> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut members: Vec<Member> = names
            .iter()
            .map(|n| Member {
                name: n.clone(),
                addr: addr.into(),
                incarnation: 0,
                state: MemberState::Alive,
                since: rumor_proto::Instant::ZERO,
                tags: None,
            })
            .collect();
        members[3].state = MemberState::Dead;
        let mut ring = Keyring::new(key(1));
        ring.install(key(2)).unwrap();
        let b = KeyringRecord::of(&Keyring::from_keys(vec![key(2), key(1)]).unwrap());
        let report = KeysReport::build(&names[0], &ring, members.iter(), |n| {
            (n.as_str() == "b").then(|| b.clone())
        });
        assert_eq!(report.members, 3);
        assert_eq!(report.unreported, vec!["c".to_string()]);
        let k1 = report.key(&key(1).fingerprint()).unwrap();
        assert_eq!(
            (k1.installed_on, k1.primary_on, k1.local_primary),
            (2, 1, true)
        );
        let k2 = report.key(&key(2).fingerprint()).unwrap();
        assert_eq!((k2.installed_on, k2.primary_on, k2.local), (2, 1, true));
        assert_eq!(report.keys[0].fingerprint, key(1).fingerprint());
    }
}
