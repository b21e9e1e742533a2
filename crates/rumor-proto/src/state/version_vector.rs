//! Dots and version vectors: the causal vocabulary of the key-value store.
//!
//! A *replica* is one node's store for as long as it keeps its data (a node
//! that restarts with an empty store is a new replica, so it can never reuse
//! a dot that others have already seen). Every write a replica makes to a key
//! is named by a *dot*: the replica and a counter one above the highest that
//! replica's counter the key's context holds. A key's *context* is a version
//! vector: for each replica, the highest counter of that replica's writes to
//! the key that the state has seen. Because a key's full state always travels
//! whole, a context covering `(r, n)` has seen every write of `r` to the key
//! up to `n`.

use core::fmt;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// One replica of the store: a node's data for as long as it keeps it.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplicaId(pub u64);

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{:016x}", self.0)
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The name of one write: which replica made it, and its counter there.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that made the write.
    pub replica: ReplicaId,
    /// Its counter at that replica (1 for the first write to the key).
    pub counter: u64,
}

/// Most replicas one context may name; a larger one from the network is
/// refused. Each replica that ever wrote a key takes an entry, so this
/// bounds the writers of one key, not the cluster size.
pub const MAX_CONTEXT_ENTRIES: usize = 4096;

/// Replicas a context holds without a heap allocation: most keys are
/// written by one or two.
const INLINE_REPLICAS: usize = 2;

/// The (replica, counter) pairs of a version vector.
type Pairs = SmallVec<[(ReplicaId, u64); INLINE_REPLICAS]>;

/// A version vector: for each replica, the highest counter seen. Kept sorted
/// by replica, without zero counters, so equal vectors encode alike.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(#[serde(deserialize_with = "super::small_vec::deserialize")] Pairs);

impl VersionVector {
    /// The empty vector: has seen nothing.
    pub fn new() -> Self {
        VersionVector(SmallVec::new())
    }

    /// The highest counter of `replica` seen (0 if none).
    pub fn get(&self, replica: ReplicaId) -> u64 {
        match self.0.binary_search_by_key(&replica, |(r, _)| *r) {
            Ok(i) => self.0[i].1,
            Err(_) => 0,
        }
    }

    /// Whether the write `dot` has been seen.
    pub fn covers(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.replica)
    }

    /// Record that the write `dot` (and so every earlier one of its
    /// replica) has been seen.
    pub fn add(&mut self, dot: Dot) {
        if dot.counter == 0 {
            return;
        }
        match self.0.binary_search_by_key(&dot.replica, |(r, _)| *r) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(dot.counter),
            Err(i) => self.0.insert(i, (dot.replica, dot.counter)),
        }
    }

    /// The next dot for `replica`: one above what this vector has seen.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        Dot {
            replica,
            counter: self.get(replica).saturating_add(1),
        }
    }

    /// Merge `other` in: the pointwise maximum.
    pub fn join(&mut self, other: &VersionVector) {
        if !other.0.is_empty() {
            *self = self.joined(other);
        }
    }

    /// The pointwise maximum of this vector and `other`.
    pub fn joined(&self, other: &VersionVector) -> VersionVector {
        if other.0.is_empty() {
            return self.clone();
        }
        let mut out = Pairs::with_capacity(self.0.len().max(other.0.len()));
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(ra, na)), Some(&&(rb, nb))) => {
                    if ra == rb {
                        out.push((ra, na.max(nb)));
                        a.next();
                        b.next();
                    } else if ra < rb {
                        out.push((ra, na));
                        a.next();
                    } else {
                        out.push((rb, nb));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    out.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    out.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        VersionVector(out)
    }

    /// Whether this vector has seen everything `other` has.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|&(r, n)| self.get(r) >= n)
    }

    /// Number of replicas named.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The (replica, counter) pairs, sorted by replica.
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.0.iter().copied()
    }

    /// Whether the vector obeys its invariants (sorted, no duplicates, no
    /// zero counters, within [`MAX_CONTEXT_ENTRIES`]); decoded vectors are
    /// checked with it.
    pub fn is_valid(&self) -> bool {
        self.0.len() <= MAX_CONTEXT_ENTRIES
            && self.0.iter().all(|&(_, n)| n > 0)
            && self.0.windows(2).all(|w| w[0].0 < w[1].0)
    }
}

impl FromIterator<Dot> for VersionVector {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut v = VersionVector::new();
        for d in iter {
            v.add(d);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(r: u64, n: u64) -> Dot {
        Dot {
            replica: ReplicaId(r),
            counter: n,
        }
    }

    #[test]
    fn join_is_the_pointwise_maximum_and_stays_sorted() {
        let mut a: VersionVector = [dot(1, 3), dot(5, 1)].into_iter().collect();
        let b: VersionVector = [dot(1, 2), dot(3, 4), dot(5, 2)].into_iter().collect();
        a.join(&b);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![(ReplicaId(1), 3), (ReplicaId(3), 4), (ReplicaId(5), 2)]
        );
        assert!(a.is_valid());
        assert!(a.dominates(&b));
        assert!(!b.dominates(&a));
    }

    #[test]
    fn encodes_as_a_sequence_of_pairs_and_a_false_length_fails_to_decode() {
        let v: VersionVector = [dot(1, 3), dot(5, 1), dot(9, 2)].into_iter().collect();
        let bytes = postcard::to_allocvec(&v).unwrap();
        let pairs: Vec<(ReplicaId, u64)> = v.iter().collect();
        assert_eq!(bytes, postcard::to_allocvec(&pairs).unwrap());
        assert_eq!(postcard::from_bytes::<VersionVector>(&bytes).unwrap(), v);
        // A sequence claiming 2^28 pairs and holding one.
        let mut lie = postcard::to_allocvec(&(1u32 << 28)).unwrap();
        lie.extend(postcard::to_allocvec(&(ReplicaId(1), 1u64)).unwrap());
        assert!(postcard::from_bytes::<VersionVector>(&lie).is_err());
    }

    #[test]
    fn covers_every_earlier_dot_of_a_replica() {
        let v: VersionVector = [dot(7, 4)].into_iter().collect();
        assert!(v.covers(dot(7, 1)) && v.covers(dot(7, 4)));
        assert!(!v.covers(dot(7, 5)) && !v.covers(dot(8, 1)));
        assert_eq!(v.next_dot(ReplicaId(7)), dot(7, 5));
    }
}
