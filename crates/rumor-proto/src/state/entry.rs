//! One key's replicated state: a causal context and the dotted values it
//! holds, with one merge rule for every kind of value.
//!
//! Every value in an [`Entry`] carries the [`Dot`] of the write that made it.
//! Merging two states of a key keeps a value if both hold it, or if one holds
//! it and the other's context has not seen its dot; anything else was
//! overwritten or deleted by a write that had seen it. Contexts join. This is
//! the dotted-version-vector rule (Preguiça, Baquero et al.): concurrency is
//! detected exactly, a write replaces exactly what its context had seen, and
//! siblings never pile up, because a context holds one entry per replica, not
//! per client.
//!
//! The kinds of value share the rule:
//!
//! | kind | a write | what a read shows |
//! |---|---|---|
//! | `mv` | replaces the values its context saw | every sibling |
//! | `lww` (the LWW register) | the same; after a merge only the value with the highest (timestamp, replica) stays | one value |
//! | `counter` | replaces the replica's own dot with its running totals | Σ increments − Σ decrements |
//! | `set` (add-wins observed-remove) | add: a new dot for the element; remove: drops the element's dots seen | the elements |
//!
//! A delete drops every value its context saw and leaves a *tombstone*: an
//! entry with a context and no values, so that the deleted values cannot come
//! back from a replica that has not heard of the delete.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::hlc::Timestamp;
use super::version_vector::{Dot, ReplicaId, VersionVector};

/// How a key's values are kept and read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Multi-value: concurrent writes are kept as siblings.
    Mv,
    /// Last writer wins: the highest hybrid-logical timestamp, ties broken
    /// by replica. The `register` CRDT type is this kind.
    Lww,
    /// A counter of increments and decrements.
    Counter,
    /// An add-wins observed-remove set.
    Set,
}

impl Kind {
    /// The kind's name as operators write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mv => "mv",
            Kind::Lww => "lww",
            Kind::Counter => "counter",
            Kind::Set => "set",
        }
    }
}

impl core::fmt::Display for Kind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mv" => Ok(Kind::Mv),
            "lww" | "register" => Ok(Kind::Lww),
            "counter" => Ok(Kind::Counter),
            "set" => Ok(Kind::Set),
            other => Err(format!(
                "unknown kind {other:?}: expected mv, lww, register, counter or set"
            )),
        }
    }
}

/// What one dot holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// A multi-value sibling.
    Mv(Vec<u8>),
    /// A last-writer-wins value; `None` is a delete, which takes part in
    /// the timestamp order like any write.
    Lww(Option<Vec<u8>>),
    /// One replica's running totals.
    Counter {
        /// Sum of its increments.
        inc: u64,
        /// Sum of its decrements.
        dec: u64,
    },
    /// One set element (one of possibly several dots for it).
    Element(Vec<u8>),
}

impl Payload {
    /// The kind this payload belongs to.
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Mv(_) => Kind::Mv,
            Payload::Lww(_) => Kind::Lww,
            Payload::Counter { .. } => Kind::Counter,
            Payload::Element(_) => Kind::Set,
        }
    }

    /// Bytes of user data it carries.
    pub fn data_len(&self) -> usize {
        match self {
            Payload::Mv(b) | Payload::Lww(Some(b)) | Payload::Element(b) => b.len(),
            Payload::Lww(None) => 0,
            Payload::Counter { .. } => 16,
        }
    }
}

/// A value with the dot of the write that made it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dotted {
    /// The write that made it.
    pub dot: Dot,
    /// When (hybrid logical time at the writing node).
    pub ts: Timestamp,
    /// The value.
    pub payload: Payload,
}

/// The values of one key: one held inline (most keys have one value), more
/// on the heap.
pub type Dots = SmallVec<[Dotted; 1]>;

/// One key's replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// Every write to the key this state has seen.
    pub context: VersionVector,
    /// The values, sorted by dot.
    #[serde(deserialize_with = "super::small_vec::deserialize")]
    pub dots: Dots,
    /// The latest write or delete (hybrid logical time).
    pub ts: Timestamp,
}

/// A write that would mix kinds in one key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "key holds a {held} value; a {wanted} operation needs a {wanted} key (delete the key first)"
)]
pub struct WrongKind {
    /// The kind the key holds.
    pub held: Kind,
    /// The kind the operation needs.
    pub wanted: Kind,
}

impl Entry {
    /// Whether the key is deleted: no values left, or only an `lww` delete.
    pub fn is_tombstone(&self) -> bool {
        self.dots
            .iter()
            .all(|d| matches!(d.payload, Payload::Lww(None)))
    }

    /// The kind of the values held; `None` for a tombstone. When concurrent
    /// writes of different kinds meet, the kind of the highest dot.
    pub fn kind(&self) -> Option<Kind> {
        self.dots
            .iter()
            .max_by_key(|d| (d.ts, d.dot))
            .map(|d| d.payload.kind())
    }

    /// Number of values held (siblings, set element dots, counter replicas).
    pub fn len(&self) -> usize {
        self.dots.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.dots.is_empty()
    }

    /// Bytes of user data held.
    pub fn data_len(&self) -> usize {
        self.dots.iter().map(|d| d.payload.data_len()).sum()
    }

    fn check_kind(&self, wanted: Kind) -> Result<(), WrongKind> {
        let live = self
            .dots
            .iter()
            .filter(|d| !matches!(d.payload, Payload::Lww(None)));
        match live.into_iter().find(|d| d.payload.kind() != wanted) {
            Some(d) => Err(WrongKind {
                held: d.payload.kind(),
                wanted,
            }),
            None => Ok(()),
        }
    }

    fn insert(&mut self, replica: ReplicaId, ts: Timestamp, payload: Payload) -> Dot {
        let dot = self.context.next_dot(replica);
        self.context.add(dot);
        // A replica's new dot is above all of its dots here, but dots of other
        // replicas may sort after it.
        let at = self.dots.partition_point(|d| d.dot < dot);
        self.dots.insert(at, Dotted { dot, ts, payload });
        self.ts = self.ts.max(ts);
        dot
    }

    /// Write `value` as `kind` (`Mv` or `Lww`), replacing the values
    /// `seen` had seen (every value this state holds when `seen` is `None`).
    /// Returns the new value's dot.
    pub fn put(
        &mut self,
        replica: ReplicaId,
        ts: Timestamp,
        kind: Kind,
        value: Vec<u8>,
        seen: Option<&VersionVector>,
    ) -> Dot {
        self.discard_seen(seen);
        let payload = match kind {
            Kind::Lww => Payload::Lww(Some(value)),
            _ => Payload::Mv(value),
        };
        let dot = self.insert(replica, ts, payload);
        self.normalize();
        dot
    }

    /// Delete the values `seen` had seen (all held values when `None`).
    /// In an `lww` key the delete is itself a timestamped write, so that it
    /// beats every older value, seen or not, as last-writer-wins demands.
    pub fn delete(&mut self, replica: ReplicaId, ts: Timestamp, seen: Option<&VersionVector>) {
        let lww = self.kind() == Some(Kind::Lww);
        self.discard_seen(seen);
        if lww {
            self.insert(replica, ts, Payload::Lww(None));
            self.normalize();
        }
        self.ts = self.ts.max(ts);
    }

    fn discard_seen(&mut self, seen: Option<&VersionVector>) {
        match seen {
            Some(ctx) => {
                self.dots.retain(|d| !ctx.covers(d.dot));
                self.context.join(ctx);
            }
            None => self.dots.clear(),
        }
    }

    /// Add `delta` (which may be negative) to the counter.
    pub fn increment(
        &mut self,
        replica: ReplicaId,
        ts: Timestamp,
        delta: i64,
    ) -> Result<Dot, WrongKind> {
        self.check_kind(Kind::Counter)?;
        let (mut inc, mut dec) = (0u64, 0u64);
        self.dots.retain(|d| match d.payload {
            Payload::Counter { inc: i, dec: de } if d.dot.replica == replica => {
                inc = inc.max(i);
                dec = dec.max(de);
                false
            }
            _ => true,
        });
        if delta >= 0 {
            inc = inc.saturating_add(delta.unsigned_abs());
        } else {
            dec = dec.saturating_add(delta.unsigned_abs());
        }
        Ok(self.insert(replica, ts, Payload::Counter { inc, dec }))
    }

    /// Add `element` to the set.
    pub fn set_add(
        &mut self,
        replica: ReplicaId,
        ts: Timestamp,
        element: Vec<u8>,
    ) -> Result<Dot, WrongKind> {
        self.check_kind(Kind::Set)?;
        self.dots
            .retain(|d| !matches!(&d.payload, Payload::Element(e) if *e == element));
        Ok(self.insert(replica, ts, Payload::Element(element)))
    }

    /// Remove `element` from the set (its additions seen here; a concurrent
    /// addition elsewhere wins). Returns whether it was present.
    pub fn set_remove(&mut self, ts: Timestamp, element: &[u8]) -> Result<bool, WrongKind> {
        self.check_kind(Kind::Set)?;
        let before = self.dots.len();
        self.dots
            .retain(|d| !matches!(&d.payload, Payload::Element(e) if e == element));
        self.ts = self.ts.max(ts);
        Ok(self.dots.len() != before)
    }

    /// Merge `other` into this state (the dotted-version-vector rule);
    /// returns whether this state changed.
    pub fn merge(&mut self, other: &Entry) -> bool {
        match self.merged(other) {
            Some(merged) => {
                *self = merged;
                true
            }
            None => false,
        }
    }

    /// This state merged with `other` (the dotted-version-vector rule), or
    /// `None` if that changes nothing: built from both without copying
    /// either first.
    pub fn merged(&self, other: &Entry) -> Option<Entry> {
        if self == other {
            return None;
        }
        let mut out = Dots::with_capacity(self.dots.len().max(other.dots.len()));
        let (mut a, mut b) = (self.dots.iter().peekable(), other.dots.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.dot == y.dot => {
                    // The same write: identical everywhere it exists.
                    out.push((*x).clone());
                    a.next();
                    b.next();
                }
                (Some(x), y) if y.is_none_or(|y| x.dot < y.dot) => {
                    if !other.context.covers(x.dot) {
                        out.push((*x).clone());
                    }
                    a.next();
                }
                (_, Some(y)) => {
                    if !self.context.covers(y.dot) {
                        out.push((*y).clone());
                    }
                    b.next();
                }
                _ => break,
            }
        }
        normalize(&mut out);
        let dots_changed =
            out.len() != self.dots.len() || out.iter().zip(&self.dots).any(|(x, y)| x.dot != y.dot);
        let ctx_changed = !self.context.dominates(&other.context);
        let ts_changed = other.ts > self.ts;
        (dots_changed || ctx_changed || ts_changed).then(|| Entry {
            context: self.context.joined(&other.context),
            dots: out,
            ts: self.ts.max(other.ts),
        })
    }

    fn normalize(&mut self) {
        normalize(&mut self.dots);
    }

    /// The values a read of an `mv` or `lww` key shows (every sibling, or
    /// the one lww value), in dot order.
    pub fn values(&self) -> Vec<&[u8]> {
        self.dots
            .iter()
            .filter_map(|d| match &d.payload {
                Payload::Mv(v) | Payload::Lww(Some(v)) => Some(v.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// The counter's value: Σ increments − Σ decrements over its replicas.
    pub fn counter_value(&self) -> i64 {
        let mut total: i128 = 0;
        for d in &self.dots {
            if let Payload::Counter { inc, dec } = d.payload {
                total += i128::from(inc) - i128::from(dec);
            }
        }
        i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
    }

    /// The set's elements, sorted, each once.
    pub fn set_elements(&self) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = self
            .dots
            .iter()
            .filter_map(|d| match &d.payload {
                Payload::Element(e) => Some(e.as_slice()),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether the entry obeys its invariants: a valid context, dots
    /// strictly sorted, every dot seen by the context, and at most one
    /// `lww` value. Entries from the network are checked with it.
    pub fn is_valid(&self) -> bool {
        self.context.is_valid()
            && self.dots.windows(2).all(|w| w[0].dot < w[1].dot)
            && self.dots.iter().all(|d| self.context.covers(d.dot))
            && self
                .dots
                .iter()
                .filter(|d| matches!(d.payload, Payload::Lww(_)))
                .count()
                <= 1
    }
}

/// Last writer wins among `lww` values: keep the highest (timestamp, dot).
/// Safe because the hybrid logical clock orders every write after the
/// writes it has seen.
fn normalize(dots: &mut Dots) {
    let winner = dots
        .iter()
        .filter(|d| matches!(d.payload, Payload::Lww(_)))
        .max_by_key(|d| (d.ts, d.dot))
        .map(|d| d.dot);
    if let Some(w) = winner {
        dots.retain(|d| !matches!(d.payload, Payload::Lww(_)) || d.dot == w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ReplicaId = ReplicaId(1);
    const B: ReplicaId = ReplicaId(2);

    fn ts(ms: u64) -> Timestamp {
        Timestamp {
            wall_ms: ms,
            logical: 0,
        }
    }

    #[test]
    fn concurrent_puts_become_siblings_and_a_put_with_their_context_resolves_them() {
        let mut a = Entry::default();
        a.put(A, ts(1), Kind::Mv, b"x".to_vec(), None);
        let mut b = Entry::default();
        b.put(B, ts(2), Kind::Mv, b"y".to_vec(), None);
        assert!(a.merge(&b));
        assert_eq!(a.values(), vec![b"x".as_slice(), b"y"]);
        let ctx = a.context.clone();
        let mut c = b.clone();
        c.put(B, ts(3), Kind::Mv, b"z".to_vec(), Some(&ctx));
        a.merge(&c);
        assert_eq!(a.values(), vec![b"z".as_slice()]);
    }

    #[test]
    fn two_clients_writing_with_their_own_last_context_keep_two_siblings_not_more() {
        // The anomaly behind "sibling explosion": each client writes with the
        // context its previous write returned, through the same node. With
        // one vector for all siblings every write looks concurrent with every
        // other and siblings grow without bound; with a dot per value each
        // write replaces exactly the client's own previous value.
        let mut node = Entry::default();
        let mut ctx_x = VersionVector::new();
        let mut ctx_y = VersionVector::new();
        for i in 0..20u8 {
            node.put(
                A,
                ts(2 * u64::from(i)),
                Kind::Mv,
                vec![b'x', i],
                Some(&ctx_x),
            );
            ctx_x = node.context.clone();
            node.put(
                A,
                ts(2 * u64::from(i) + 1),
                Kind::Mv,
                vec![b'y', i],
                Some(&ctx_y),
            );
            ctx_y = node.context.clone();
            assert!(node.len() <= 2, "round {i}: {:?}", node.dots);
        }
        assert_eq!(node.values(), vec![[b'x', 19].as_slice(), &[b'y', 19]]);
    }

    #[test]
    fn lww_keeps_the_latest_timestamp_whatever_the_merge_order() {
        let mut a = Entry::default();
        a.put(A, ts(10), Kind::Lww, b"late".to_vec(), None);
        let mut b = Entry::default();
        b.put(B, ts(5), Kind::Lww, b"early".to_vec(), None);
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.merge(&b);
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.values(), vec![b"late".as_slice()]);
    }

    #[test]
    fn a_delete_leaves_a_tombstone_that_beats_the_old_value_but_not_a_concurrent_one() {
        let mut a = Entry::default();
        a.put(A, ts(1), Kind::Mv, b"old".to_vec(), None);
        let mut b = a.clone();
        let mut c = a.clone();
        b.delete(A, ts(2), None);
        assert!(b.is_tombstone());
        c.put(
            ReplicaId(3),
            ts(3),
            Kind::Mv,
            b"new".to_vec(),
            Some(&VersionVector::new()),
        );
        let mut stale = a.clone();
        stale.merge(&b);
        assert!(stale.is_tombstone(), "the deleted value came back");
        b.merge(&c);
        assert_eq!(b.values(), vec![b"new".as_slice()]);
    }

    #[test]
    fn counters_and_sets_merge_to_the_expected_values() {
        let mut a = Entry::default();
        let mut b = Entry::default();
        a.increment(A, ts(1), 5).unwrap();
        b.increment(B, ts(1), -2).unwrap();
        a.increment(A, ts(2), 1).unwrap();
        a.merge(&b);
        b.merge(&a);
        assert_eq!((a.counter_value(), b.counter_value()), (4, 4));
        assert!(a.set_add(A, ts(3), b"e".to_vec()).is_err(), "mixed kinds");

        let mut s = Entry::default();
        s.set_add(A, ts(1), b"x".to_vec()).unwrap();
        let mut t = s.clone();
        t.set_remove(ts(2), b"x").unwrap();
        s.set_add(A, ts(3), b"x".to_vec()).unwrap(); // concurrent re-add wins
        t.set_add(B, ts(4), b"y".to_vec()).unwrap();
        s.merge(&t);
        assert_eq!(s.set_elements(), vec![b"x".as_slice(), b"y"]);
    }
}
