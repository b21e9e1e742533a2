//! The member table: every member this node knows, by stable slot id and by
//! name.
//!
//! Members live in a slab (`Vec<Option<Member>>`) so that other structures
//! (probe order, broadcast queue, suspicions) refer to them by a 4-byte
//! [`MemberId`]; the name index is a `hashbrown::HashTable` of ids, so a name
//! is stored once. A slot freed by reaping may be reused by a later member;
//! holders of an id check the member's name or state before acting.

use core::hash::BuildHasher;

use hashbrown::HashTable;
use rand::RngExt;
use rand::seq::SliceRandom;

use super::member::{Member, MemberState, NodeName};
use crate::time::Instant;

/// Index of a member in the table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub(crate) u32);

/// Hasher of the name index (never iterated, so it never steers a decision).
type NameHasher = crate::fast_map::FixedHasher;

/// All members known to a node, itself included.
#[derive(Debug, Default)]
pub struct MemberTable {
    slots: Vec<Option<Member>>,
    free: Vec<u32>,
    by_name: HashTable<u32>,
    hasher: NameHasher,
    active: usize,
    active_hash: u64,
}

/// A compact summary of which members a node holds as active, and at which
/// incarnation: their number and the XOR of a hash of each (name,
/// incarnation). Two nodes whose digests differ for longer than gossip needs
/// to settle hold different views: one missed a join or a refutation.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct MembershipDigest {
    /// Number of alive and suspect members (the node itself included).
    pub active: u32,
    /// XOR of the (name, incarnation) hashes of those members.
    pub hash: u32,
}

/// One member's share of the digest hash.
fn digest_term(m: &Member) -> u64 {
    m.name.stable_hash() ^ u64::from(m.incarnation).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// How the name index rehashes an id when it grows: by its member's name.
fn rehash<'a>(slots: &'a [Option<Member>], hasher: &'a NameHasher) -> impl Fn(&u32) -> u64 + 'a {
    move |&i| {
        slots[i as usize]
            .as_ref()
            .map_or(0, |m| hasher.hash_one(m.name.as_str()))
    }
}

impl MemberTable {
    fn hash(&self, name: &NodeName) -> u64 {
        self.hasher.hash_one(name.as_str())
    }

    /// The id of the member called `name`.
    pub fn id_of(&self, name: &NodeName) -> Option<MemberId> {
        self.find(self.hash(name), name)
    }

    fn find(&self, hash: u64, name: &NodeName) -> Option<MemberId> {
        let slots = &self.slots;
        self.by_name
            .find(hash, |&i| {
                slots[i as usize].as_ref().is_some_and(|m| &m.name == name)
            })
            .map(|&i| MemberId(i))
    }

    /// The member at `id`.
    pub fn get(&self, id: MemberId) -> Option<&Member> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The member called `name`.
    pub fn by_name(&self, name: &NodeName) -> Option<&Member> {
        self.id_of(name).and_then(|id| self.get(id))
    }

    /// Add a member not yet in the table.
    pub fn insert(&mut self, member: Member) -> MemberId {
        debug_assert!(self.id_of(&member.name).is_none());
        let hash = self.hash(&member.name);
        self.insert_hashed(hash, member)
    }

    /// Add `member` unless a member of that name is in the table already
    /// (hashing its name once, for tables filled in bulk); returns its id if
    /// it was added.
    pub fn insert_if_absent(&mut self, member: Member) -> Option<MemberId> {
        let hash = self.hash(&member.name);
        match self.find(hash, &member.name) {
            Some(_) => None,
            None => Some(self.insert_hashed(hash, member)),
        }
    }

    fn insert_hashed(&mut self, hash: u64, member: Member) -> MemberId {
        if member.state.is_active() {
            self.active += 1;
            self.active_hash ^= digest_term(&member);
        }
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(member);
                i
            }
            None => {
                self.slots.push(Some(member));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_name
            .insert_unique(hash, idx, rehash(&self.slots, &self.hasher));
        MemberId(idx)
    }

    /// Make room for `additional` more members, so that a table filled at
    /// once holds no spare capacity.
    pub fn reserve(&mut self, additional: usize) {
        let additional = additional.saturating_sub(self.free.len());
        self.slots.reserve_exact(additional);
        self.by_name
            .reserve(additional, rehash(&self.slots, &self.hasher));
    }

    /// Remove a member; returns it.
    pub fn remove(&mut self, id: MemberId) -> Option<Member> {
        let member = self.slots.get_mut(id.0 as usize)?.take()?;
        let hash = self.hash(&member.name);
        if let Ok(entry) = self.by_name.find_entry(hash, |&i| i == id.0) {
            entry.remove();
        }
        if member.state.is_active() {
            self.active -= 1;
            self.active_hash ^= digest_term(&member);
        }
        self.free.push(id.0);
        Some(member)
    }

    /// Change a member with `f`, keeping the active count right.
    /// The name must not change.
    pub fn update<R>(&mut self, id: MemberId, f: impl FnOnce(&mut Member) -> R) -> Option<R> {
        let member = self.slots.get_mut(id.0 as usize)?.as_mut()?;
        let was_active = member.state.is_active();
        if was_active {
            self.active_hash ^= digest_term(member);
        }
        let out = f(member);
        match (was_active, member.state.is_active()) {
            (true, false) => self.active -= 1,
            (false, true) => self.active += 1,
            _ => {}
        }
        if member.state.is_active() {
            self.active_hash ^= digest_term(member);
        }
        Some(out)
    }

    /// Set a member's state, stamping the time of the change.
    pub fn set_state(&mut self, id: MemberId, state: MemberState, now: Instant) {
        self.update(id, |m| {
            if m.state != state {
                m.since = now;
            }
            m.state = state;
        });
    }

    /// Number of alive and suspect members (this node included).
    pub fn active_count(&self) -> usize {
        self.active
    }

    /// Whether the table holds any dead or left member.
    pub fn has_inactive(&self) -> bool {
        self.len() > self.active
    }

    /// The membership digest: active members and the XOR of their name hashes.
    pub fn digest(&self) -> MembershipDigest {
        MembershipDigest {
            active: u32::try_from(self.active).unwrap_or(u32::MAX),
            hash: (self.active_hash ^ (self.active_hash >> 32)) as u32,
        }
    }

    /// Number of members in the table.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every member with its id, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (MemberId, &Member)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (MemberId(i as u32), m)))
    }

    /// Every member id, in slot order.
    pub fn ids(&self) -> Vec<MemberId> {
        self.iter().map(|(id, _)| id).collect()
    }

    /// Up to `k` distinct random members for which `eligible` holds.
    ///
    /// Samples random slots first (cheap in large tables where most members
    /// qualify), then falls back to a full scan so that small or mostly
    /// ineligible tables still yield every candidate.
    pub fn sample(
        &self,
        rng: &mut impl rand::Rng,
        k: usize,
        mut eligible: impl FnMut(MemberId, &Member) -> bool,
    ) -> Vec<MemberId> {
        let mut out = Vec::with_capacity(k);
        if k == 0 || self.slots.is_empty() {
            return out;
        }
        for _ in 0..(4 * k + 8) {
            let i = rng.random_range(0..self.slots.len());
            if let Some(m) = &self.slots[i] {
                let id = MemberId(i as u32);
                if !out.contains(&id) && eligible(id, m) {
                    out.push(id);
                    if out.len() == k {
                        return out;
                    }
                }
            }
        }
        let mut rest: Vec<MemberId> = self
            .iter()
            .filter(|&(id, m)| !out.contains(&id) && eligible(id, m))
            .map(|(id, _)| id)
            .collect();
        rest.shuffle(rng);
        rest.truncate(k - out.len());
        out.extend(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn member(name: &str, state: MemberState) -> Member {
        Member {
            name: name.parse().unwrap(),
            addr: "127.0.0.1:1"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            incarnation: 0,
            state,
            since: Instant::ZERO,
            tags: None,
        }
    }

    #[test]
    fn insert_lookup_remove_reuse() {
        let mut t = MemberTable::default();
        let a = t.insert(member("a", MemberState::Alive));
        let b = t.insert(member("b", MemberState::Dead));
        assert_eq!(t.active_count(), 1);
        assert!(t.has_inactive());
        assert_eq!(t.id_of(&"b".parse().unwrap()), Some(b));
        assert_eq!(t.remove(a).unwrap().name.as_str(), "a");
        assert_eq!(t.active_count(), 0);
        assert!(t.id_of(&"a".parse().unwrap()).is_none());
        let c = t.insert(member("c", MemberState::Alive));
        assert_eq!(c, a, "slot reused");
        assert_eq!(t.by_name(&"c".parse().unwrap()).unwrap().name.as_str(), "c");
        let before = t.digest();
        t.set_state(b, MemberState::Alive, Instant::from_millis(5));
        assert_eq!(t.active_count(), 2);
        assert!(!t.has_inactive());
        assert_ne!(t.digest(), before);
        assert_eq!(t.get(b).unwrap().since, Instant::from_millis(5));
        t.update(b, |m| m.incarnation += 1);
        assert_ne!(
            t.digest().hash,
            before.hash,
            "a new incarnation changes the digest"
        );
        t.update(b, |m| m.incarnation -= 1);
        t.set_state(b, MemberState::Dead, Instant::from_millis(6));
        assert_eq!(
            t.digest(),
            before,
            "the digest depends only on the active set"
        );
    }

    #[test]
    fn insert_if_absent_keeps_the_member_already_known() {
        let mut t = MemberTable::default();
        let a = t.insert_if_absent(member("a", MemberState::Alive));
        assert!(a.is_some());
        assert_eq!(t.insert_if_absent(member("a", MemberState::Dead)), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(a.unwrap()).unwrap().state, MemberState::Alive);
    }

    #[test]
    fn sample_is_distinct_and_filtered() {
        let mut t = MemberTable::default();
        for i in 0..50 {
            let state = if i % 2 == 0 {
                MemberState::Alive
            } else {
                MemberState::Dead
            };
            t.insert(member(&format!("n{i}"), state));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let s = t.sample(&mut rng, 30, |_, m| m.state == MemberState::Alive);
        assert_eq!(s.len(), 25);
        let mut d = s.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 25);
    }
}
