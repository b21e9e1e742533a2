//! The key-value store one node holds: entries by key, their Merkle index,
//! the hybrid logical clock, limits and tombstone collection.

use std::collections::BTreeSet;

use compact_str::CompactString;

use super::config::StateConfig;
use super::entry::{Entry, Kind, WrongKind};
use super::hlc::{Hlc, Timestamp};
use super::version_vector::{Dot, ReplicaId, VersionVector};
use crate::fast_map::FastMap;
use crate::sync::MerkleIndex;

/// A key: UTF-8 text without control characters.
pub type Key = CompactString;

/// A write the application asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Write a value, replacing the values `context` had seen (the values
    /// this node holds when `None`). `kind` overrides the prefix rule
    /// (`Mv` or `Lww`; the others are refused).
    Put {
        /// The value.
        value: Vec<u8>,
        /// The causal context of the read this write is based on.
        context: Option<VersionVector>,
        /// Resolution for this write.
        kind: Option<Kind>,
    },
    /// Delete the values `context` had seen (all held here when `None`).
    Delete {
        /// The causal context of the read this delete is based on.
        context: Option<VersionVector>,
    },
    /// Add to a counter (negative to decrement).
    Increment(i64),
    /// Add an element to a set.
    SetAdd(Vec<u8>),
    /// Remove an element from a set.
    SetRemove(Vec<u8>),
}

/// A write was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key is empty, too long or holds control characters.
    #[error("invalid key {key:?}: keys are 1 to {max} bytes of text without control characters")]
    InvalidKey {
        /// The key (cut to 64 characters).
        key: String,
        /// The length limit.
        max: usize,
    },
    /// The value is too large.
    #[error(
        "value of {size} bytes exceeds state.max_value_bytes ({max}); store less, or raise the limit on every node"
    )]
    ValueTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The operation does not fit the key's kind.
    #[error(transparent)]
    WrongKind(#[from] WrongKind),
    /// `put` was asked for a CRDT kind.
    #[error("a put writes mv or lww values; use increment for counters and set-add for sets")]
    PutKind,
    /// The key would hold too many values.
    #[error(
        "key would hold {count} values, more than state.max_dots_per_key ({max}); resolve its siblings or shrink the set"
    )]
    TooManyValues {
        /// The count it would reach.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The store is full.
    #[error(
        "store is full ({keys} keys, {bytes} bytes; limits state.max_keys {max_keys}, state.max_bytes {max_bytes}); delete keys or raise the limits"
    )]
    Full {
        /// Keys held.
        keys: usize,
        /// Bytes held.
        bytes: usize,
        /// The key limit.
        max_keys: usize,
        /// The byte limit.
        max_bytes: usize,
    },
}

/// What became of an entry received from another node.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Merged {
    /// The local state changed; `age_ms` is how old the newest write in it
    /// was on arrival (local hybrid clock minus the write's timestamp).
    Changed {
        /// Propagation latency of the update, in milliseconds.
        age_ms: u64,
    },
    /// Nothing new.
    Unchanged,
    /// Dropped: invalid, over a limit, or a key whose tombstone was
    /// collected (a resurrection).
    Refused(Refusal),
}

/// Why a received entry was dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It breaks the entry invariants or the size limits.
    Invalid,
    /// The store is full.
    Full,
    /// Its key is unknown here and it is older than a tombstone this node
    /// has collected: it would bring back a deleted key.
    Collected,
}

/// A write made here: what to spread.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The key.
    pub key: Key,
    /// The key's state after the write (what is gossiped).
    pub entry: Entry,
    /// The dot of the value written (none for deletes and set removals).
    pub dot: Option<Dot>,
    /// The write's timestamp.
    pub ts: Timestamp,
}

#[derive(Clone, Debug)]
struct Stored {
    entry: Entry,
    digest: u64,
    bytes: usize,
}

/// What a node keeps of its store across a restart (the runtime persists
/// it; the simulator keeps it in memory).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreSnapshot {
    /// The replica the entries belong to (`None`: a new one is made).
    pub replica: Option<ReplicaId>,
    /// Every entry, tombstones included.
    pub entries: Vec<(Key, Entry)>,
    /// The deletion time of the newest collected tombstone.
    pub gc_horizon: Timestamp,
    /// The hybrid logical clock's last timestamp.
    pub clock: Timestamp,
}

/// One node's replica of the key-value store.
#[derive(Clone, Debug)]
pub struct KvStore {
    replica: ReplicaId,
    config: StateConfig,
    /// Entries by key hash.
    slots: FastMap<u64, (Key, Stored)>,
    /// Entries whose key hash another key already holds in `slots` (two
    /// keys colliding in 64 bits: practically never).
    collisions: Vec<(u64, Key, Stored)>,
    index: MerkleIndex,
    hlc: Hlc,
    keys: usize,
    tombstones: usize,
    bytes: usize,
    last_change: Timestamp,
    gc_horizon: Timestamp,
    /// Tombstones by deletion time, oldest first, for collection.
    tombstone_ages: BTreeSet<(Timestamp, Key)>,
    scratch: Vec<u8>,
}

/// The stable 64-bit hash of a key: every node of every build agrees.
pub fn key_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// Whether `key` is a valid key under `max` bytes.
pub fn check_key(key: &str, max: usize) -> Result<(), KvError> {
    if key.is_empty() || key.len() > max || key.chars().any(char::is_control) {
        return Err(KvError::InvalidKey {
            key: key.chars().take(64).collect(),
            max,
        });
    }
    Ok(())
}

impl KvStore {
    /// An empty store for `replica`.
    pub fn new(replica: ReplicaId, config: StateConfig) -> Self {
        let drift = u64::try_from(config.max_clock_drift.as_millis()).unwrap_or(u64::MAX);
        KvStore {
            replica,
            config,
            slots: FastMap::default(),
            collisions: Vec::new(),
            index: MerkleIndex::new(),
            hlc: Hlc::new(drift),
            keys: 0,
            tombstones: 0,
            bytes: 0,
            last_change: Timestamp::ZERO,
            gc_horizon: Timestamp::ZERO,
            tombstone_ages: BTreeSet::new(),
            scratch: Vec::new(),
        }
    }

    /// A copy of this store's entries, index and clock, as replica
    /// `replica` with `config`: for loading identical state into many
    /// nodes at once (the simulator's initial keys), much cheaper than
    /// merging every entry into every node.
    pub fn copy_for(&self, replica: ReplicaId, config: StateConfig) -> KvStore {
        KvStore {
            replica,
            config,
            ..self.clone()
        }
    }

    /// Everything needed to bring this store back after a restart.
    pub fn export(&self) -> StoreSnapshot {
        StoreSnapshot {
            replica: Some(self.replica),
            entries: self.iter().map(|(k, e)| (k.clone(), e.clone())).collect(),
            gc_horizon: self.gc_horizon,
            clock: self.hlc.last(),
        }
    }

    /// A store holding `snapshot`'s entries, as replica `replica`. Entries
    /// that break their invariants or the limits are skipped.
    ///
    /// The entries may come one by one from durable storage (as the runtime
    /// keeps them): the replica's dot counters live in the entries'
    /// contexts, so a store imported with every entry it had acknowledged
    /// never names a new write with a dot it already used. The clock starts
    /// past `snapshot.clock`, past every entry's timestamp and past
    /// `gc_horizon`, so that timestamps never go backwards across a restart
    /// even when the wall clock did.
    pub fn import(replica: ReplicaId, config: StateConfig, snapshot: StoreSnapshot) -> Self {
        let mut kv = KvStore::new(replica, config);
        kv.gc_horizon = snapshot.gc_horizon;
        let mut clock = snapshot.clock.max(snapshot.gc_horizon);
        for (key, entry) in snapshot.entries {
            if check_key(&key, kv.config.max_key_bytes).is_ok() && entry.is_valid() {
                clock = clock.max(entry.ts);
                let _ = kv.store(&key, entry);
            }
        }
        kv.hlc.observe(clock, u64::MAX / 2);
        kv
    }

    /// This store's replica id.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The settings.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    /// Keys held, tombstones included.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// Tombstones held.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The Merkle root over every entry: equal roots, equal stores.
    pub fn root(&self) -> u64 {
        self.index.root()
    }

    /// The Merkle index (for anti-entropy).
    pub fn index(&self) -> &MerkleIndex {
        &self.index
    }

    /// The time of the last change to the store.
    pub fn last_change(&self) -> Timestamp {
        self.last_change
    }

    /// The hybrid logical clock.
    pub fn clock(&self) -> &Hlc {
        &self.hlc
    }

    /// A fresh timestamp from the hybrid logical clock.
    pub fn tick(&mut self, wall_ms: u64) -> Timestamp {
        self.hlc.tick(wall_ms)
    }

    /// The deletion time of the newest tombstone collected here.
    pub fn gc_horizon(&self) -> Timestamp {
        self.gc_horizon
    }

    /// The entry for `key`, tombstones included.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.find(key_hash(key), key).map(|s| &s.entry)
    }

    fn find(&self, hash: u64, key: &str) -> Option<&Stored> {
        match self.slots.get(&hash) {
            Some((k, s)) if k == key => Some(s),
            Some(_) => self
                .collisions
                .iter()
                .find(|(h, k, _)| *h == hash && k == key)
                .map(|(_, _, s)| s),
            None => None,
        }
    }

    fn insert_new(&mut self, hash: u64, key: &str, stored: Stored) {
        if self.slots.contains_key(&hash) {
            self.collisions.push((hash, Key::from(key), stored));
        } else {
            self.slots.insert(hash, (Key::from(key), stored));
        }
    }

    fn remove(&mut self, hash: u64, key: &str) -> Option<Stored> {
        if let Some(i) = self
            .collisions
            .iter()
            .position(|(h, k, _)| *h == hash && k == key)
        {
            return Some(self.collisions.swap_remove(i).2);
        }
        match self.slots.get(&hash) {
            Some((k, _)) if k == key => {}
            _ => return None,
        }
        let (_, s) = self.slots.remove(&hash)?;
        // Move a colliding entry into the freed slot.
        if let Some(i) = self.collisions.iter().position(|(h, _, _)| *h == hash) {
            let (_, k, c) = self.collisions.swap_remove(i);
            self.slots.insert(hash, (k, c));
        }
        Some(s)
    }

    /// The entries whose key hashes to `hash`.
    pub fn by_hash(&self, hash: u64) -> impl Iterator<Item = (&Key, &Entry)> {
        let first = self.slots.get(&hash).map(|(k, s)| (k, &s.entry));
        let more = self
            .collisions
            .iter()
            .filter(move |(h, _, _)| *h == hash)
            .map(|(_, k, s)| (k, &s.entry));
        first.into_iter().chain(more)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        let main = self.slots.values().map(|(k, s)| (k, &s.entry));
        main.chain(self.collisions.iter().map(|(_, k, s)| (k, &s.entry)))
    }

    /// Live (not deleted) keys starting with `prefix`, sorted.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<(&Key, &Entry)> {
        let mut out: Vec<_> = self
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && !e.is_tombstone())
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Apply a local write at wall-clock time `wall_ms`.
    pub fn write(&mut self, key: &str, op: Op, wall_ms: u64) -> Result<Written, KvError> {
        check_key(key, self.config.max_key_bytes)?;
        let max = self.config.max_value_bytes;
        let size = match &op {
            Op::Put { value, .. } => value.len(),
            Op::SetAdd(e) | Op::SetRemove(e) => e.len(),
            _ => 0,
        };
        if size > max {
            return Err(KvError::ValueTooLarge { size, max });
        }
        let mut entry = self.get(key).cloned().unwrap_or_default();
        let ts = self.hlc.tick(wall_ms);
        let replica = self.replica;
        let dot = match op {
            Op::Put {
                value,
                context,
                kind,
            } => {
                // An lww key stays lww unless the write says otherwise.
                let kind = kind.unwrap_or_else(|| match entry.kind() {
                    Some(Kind::Lww) => Kind::Lww,
                    _ => self.config.kind_for(key),
                });
                if !matches!(kind, Kind::Mv | Kind::Lww) {
                    return Err(KvError::PutKind);
                }
                Some(entry.put(replica, ts, kind, value, context.as_ref()))
            }
            Op::Delete { context } => {
                entry.delete(replica, ts, context.as_ref());
                None
            }
            Op::Increment(delta) => Some(entry.increment(replica, ts, delta)?),
            Op::SetAdd(e) => Some(entry.set_add(replica, ts, e)?),
            Op::SetRemove(e) => {
                entry.set_remove(ts, &e)?;
                None
            }
        };
        let max = self.config.max_dots_per_key;
        if entry.len() > max {
            return Err(KvError::TooManyValues {
                count: entry.len(),
                max,
            });
        }
        self.store(key, entry.clone())?;
        Ok(Written {
            key: Key::from(key),
            entry,
            dot,
            ts,
        })
    }

    /// Merge an entry received from another node at wall-clock `wall_ms`.
    pub fn merge(&mut self, key: &str, remote: &Entry, wall_ms: u64) -> Merged {
        if check_key(key, self.config.max_key_bytes).is_err()
            || !remote.is_valid()
            || remote.len() > self.config.max_dots_per_key
            || remote
                .dots
                .iter()
                .any(|d| d.payload.data_len() > self.config.max_value_bytes)
        {
            return Merged::Refused(Refusal::Invalid);
        }
        self.hlc.observe(remote.ts, wall_ms);
        let hash = key_hash(key);
        let entry = match self.find(hash, key) {
            // The common case for a rumor that anti-entropy (or another
            // rumor) already brought: nothing to do, nothing to copy.
            Some(s) if s.entry == *remote => return Merged::Unchanged,
            Some(s) => match s.entry.merged(remote) {
                Some(merged) => merged,
                None => return Merged::Unchanged,
            },
            None => {
                if self.gc_horizon > Timestamp::ZERO && remote.ts <= self.gc_horizon {
                    return Merged::Refused(Refusal::Collected);
                }
                match Entry::default().merged(remote) {
                    Some(merged) => merged,
                    None => return Merged::Unchanged,
                }
            }
        };
        if entry.len() > self.config.max_dots_per_key {
            return Merged::Refused(Refusal::Invalid);
        }
        let newest = remote.dots.iter().map(|d| d.ts).max().unwrap_or(remote.ts);
        match self.store_hashed(hash, key, entry) {
            Ok(()) => Merged::Changed {
                age_ms: self.hlc.last().wall_ms.saturating_sub(newest.wall_ms),
            },
            Err(_) => Merged::Refused(Refusal::Full),
        }
    }

    /// Replace the entry of `key`, updating the index, the counts and the
    /// tombstone ages; refused (changing nothing) when the store is full.
    fn store(&mut self, key: &str, entry: Entry) -> Result<(), KvError> {
        self.store_hashed(key_hash(key), key, entry)
    }

    /// [`KvStore::store`] for a key whose hash is known.
    fn store_hashed(&mut self, hash: u64, key: &str, entry: Entry) -> Result<(), KvError> {
        let new_bytes = key.len() + entry.data_len();
        self.scratch.clear();
        let digest = match postcard::to_extend(&entry, core::mem::take(&mut self.scratch)) {
            Ok(buf) => {
                let d = xxhash_rust::xxh3::xxh3_64_with_seed(&buf, hash);
                self.scratch = buf;
                d
            }
            Err(_) => hash,
        };
        let full = |keys: usize, bytes: usize, config: &StateConfig| KvError::Full {
            keys,
            bytes,
            max_keys: config.max_keys,
            max_bytes: config.max_bytes,
        };
        let tomb = entry.is_tombstone();
        let ts = entry.ts;
        let stored = Stored {
            entry,
            digest,
            bytes: new_bytes,
        };
        let slot = match self.slots.get_mut(&hash) {
            Some((k, s)) if k == key => Some(s),
            Some(_) => self
                .collisions
                .iter_mut()
                .find(|(h, k, _)| *h == hash && k == key)
                .map(|(_, _, s)| s),
            None => None,
        };
        let old_bytes = match slot {
            Some(slot) => {
                let old_bytes = slot.bytes;
                if self.bytes - old_bytes + new_bytes > self.config.max_bytes
                    && new_bytes > old_bytes
                {
                    return Err(full(self.keys, self.bytes, &self.config));
                }
                let old = core::mem::replace(slot, stored);
                self.index.replace(hash, old.digest, digest);
                if old.entry.is_tombstone() {
                    self.tombstones -= 1;
                    self.tombstone_ages.remove(&(old.entry.ts, Key::from(key)));
                }
                old_bytes
            }
            None => {
                if self.keys >= self.config.max_keys
                    || self.bytes + new_bytes > self.config.max_bytes && new_bytes > 0
                {
                    return Err(full(self.keys, self.bytes, &self.config));
                }
                self.insert_new(hash, key, stored);
                self.keys += 1;
                self.index.add(hash, digest);
                0
            }
        };
        self.last_change = self.last_change.max(ts);
        if tomb {
            self.tombstones += 1;
            self.tombstone_ages.insert((ts, Key::from(key)));
        }
        self.bytes = self.bytes - old_bytes + new_bytes;
        Ok(())
    }

    /// Collect tombstones written before `wall_ms − tombstone_grace`, and,
    /// when `safe_before` is given (every member is known to hold this
    /// store's state as of then), those written before it. Returns the
    /// keys collected.
    pub fn collect_tombstones(&mut self, wall_ms: u64, safe_before: Option<Timestamp>) -> Vec<Key> {
        if self.tombstones == 0 {
            return Vec::new();
        }
        let grace = u64::try_from(self.config.tombstone_grace.as_millis()).unwrap_or(u64::MAX);
        let mut cutoff = Timestamp {
            wall_ms: wall_ms.saturating_sub(grace),
            logical: 0,
        };
        if let Some(safe) = safe_before {
            cutoff = cutoff.max(safe);
        }
        let mut collected = Vec::new();
        while let Some(first) = self.tombstone_ages.first() {
            if first.0 >= cutoff {
                break;
            }
            if let Some((_, key)) = self.tombstone_ages.pop_first() {
                collected.push((key_hash(&key), key));
            }
        }
        let mut keys = Vec::with_capacity(collected.len());
        for (hash, key) in collected {
            let Some(s) = self.remove(hash, &key) else {
                continue;
            };
            self.index.sub(hash, s.digest);
            self.keys -= 1;
            self.tombstones -= 1;
            self.bytes -= s.bytes;
            self.gc_horizon = self.gc_horizon.max(s.entry.ts);
            keys.push(key);
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::entry::Payload;

    fn store(r: u64) -> KvStore {
        KvStore::new(ReplicaId(r), StateConfig::default())
    }

    fn put(v: &[u8]) -> Op {
        Op::Put {
            value: v.to_vec(),
            context: None,
            kind: None,
        }
    }

    #[test]
    fn a_copy_for_another_replica_holds_the_same_keys_and_writes_its_own_dots() {
        let mut template = store(1);
        template.write("a", put(b"1"), 10).unwrap();
        template.write("b", put(b"2"), 11).unwrap();
        let mut copy = template.copy_for(ReplicaId(2), StateConfig::default());
        assert_eq!(copy.replica(), ReplicaId(2));
        assert_eq!(copy.root(), template.root());
        assert_eq!(copy.len(), 2);
        let w = copy.write("a", put(b"3"), 12).unwrap();
        assert_eq!(w.dot.map(|d| d.replica), Some(ReplicaId(2)));
        assert_eq!(template.get("a").unwrap().values(), vec![b"1".as_slice()]);
    }

    #[test]
    fn equal_states_have_equal_roots_whatever_the_order_of_merges() {
        let (mut a, mut b) = (store(1), store(2));
        let w1 = a.write("x", put(b"1"), 10).unwrap();
        let w2 = b.write("y", put(b"2"), 11).unwrap();
        let w3 = b.write("x", put(b"3"), 12).unwrap();
        a.merge("y", &w2.entry, 20);
        a.merge("x", &w3.entry, 20);
        b.merge("x", &w1.entry, 20);
        assert_eq!(a.root(), b.root());
        assert_eq!(
            a.get("x").unwrap().len(),
            2,
            "concurrent writes are siblings"
        );
        assert_ne!(a.root(), store(3).root());
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let mut a = store(1);
        assert!(matches!(
            a.write("", put(b"v"), 1),
            Err(KvError::InvalidKey { .. })
        ));
        assert!(matches!(
            a.write("a\nb", put(b"v"), 1),
            Err(KvError::InvalidKey { .. })
        ));
        let big = vec![0u8; a.config().max_value_bytes + 1];
        assert!(matches!(
            a.write("k", put(&big), 1),
            Err(KvError::ValueTooLarge { .. })
        ));
        a.write("n", Op::Increment(1), 1).unwrap();
        assert!(matches!(
            a.write("n", Op::SetAdd(b"e".to_vec()), 1),
            Err(KvError::WrongKind(_))
        ));
        let root = a.root();
        // A dot the context has not seen breaks the invariants.
        let mut bad = Entry::default();
        bad.dots.push(crate::state::entry::Dotted {
            dot: Dot {
                replica: ReplicaId(9),
                counter: 1,
            },
            ts: Timestamp::ZERO,
            payload: Payload::Mv(b"v".to_vec()),
        });
        assert_eq!(a.merge("k", &bad, 1), Merged::Refused(Refusal::Invalid));
        assert_eq!((a.root(), a.len()), (root, 1));
    }

    #[test]
    fn an_imported_store_ticks_past_every_entry_even_without_its_clock() {
        let mut a = store(1);
        a.write("k", put(b"1"), 5_000).unwrap();
        let newest = a.write("k", put(b"2"), 5_000).unwrap().ts;
        let mut snapshot = a.export();
        snapshot.clock = Timestamp::ZERO;
        let mut b = KvStore::import(ReplicaId(1), StateConfig::default(), snapshot);
        assert!(b.tick(1_000) > newest);
        assert_eq!(b.root(), a.root());
    }

    #[test]
    fn limits_on_keys_hold() {
        let mut a = KvStore::new(
            ReplicaId(1),
            StateConfig {
                max_keys: 2,
                ..StateConfig::default()
            },
        );
        a.write("a", put(b"1"), 1).unwrap();
        a.write("b", put(b"1"), 1).unwrap();
        assert!(matches!(
            a.write("c", put(b"1"), 1),
            Err(KvError::Full { .. })
        ));
        a.write("a", put(b"2"), 2).unwrap();
        let mut b = store(2);
        let w = b.write("c", put(b"1"), 1).unwrap();
        assert_eq!(a.merge("c", &w.entry, 3), Merged::Refused(Refusal::Full));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn collected_tombstones_do_not_let_the_deleted_key_come_back() {
        let (mut a, mut b) = (store(1), store(2));
        let w = a.write("k", put(b"v"), 1_000).unwrap();
        b.merge("k", &w.entry, 1_000);
        let stale = w.entry.clone();
        a.write("k", Op::Delete { context: None }, 2_000).unwrap();
        assert_eq!(a.tombstones(), 1);
        let day = 24 * 3600 * 1000;
        assert_eq!(
            a.collect_tombstones(2_000 + day + 1, None),
            vec![Key::from("k")]
        );
        assert!(a.get("k").is_none());
        // b never heard of the delete and offers its old value back.
        assert_eq!(
            a.merge("k", &stale, 2_000 + day + 2),
            Merged::Refused(Refusal::Collected)
        );
        assert!(a.get("k").is_none());
    }
}

#[cfg(test)]
mod collision_tests {
    use super::*;

    #[test]
    fn keys_sharing_a_hash_are_kept_apart() {
        let mut kv = KvStore::new(ReplicaId(1), StateConfig::default());
        let put = |v: &[u8]| Op::Put {
            value: v.to_vec(),
            context: None,
            kind: None,
        };
        kv.write("a", put(b"1"), 1).unwrap();
        // Force a collision: store "b" under "a"'s hash.
        let entry = kv.get("a").unwrap().clone();
        let h = key_hash("a");
        kv.insert_new(
            h,
            "b",
            Stored {
                entry,
                digest: 7,
                bytes: 2,
            },
        );
        assert_eq!(kv.by_hash(h).count(), 2);
        assert!(kv.find(h, "b").is_some() && kv.find(h, "a").is_some());
        assert!(kv.remove(h, "a").is_some());
        assert!(
            kv.find(h, "b").is_some(),
            "the colliding key moved into the slot"
        );
        assert!(kv.collisions.is_empty());
    }
}
