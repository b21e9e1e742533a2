//! The Merkle tree over the key space, kept as an index of
//! `(key hash, digest)` pairs.
//!
//! The tree is implicit: a node at depth `d` is a prefix of `d` nibbles
//! (4 bits each) of the 64-bit key hash, so every node has 16 children and
//! every replica builds the same shape. A node's hash is the wrapping sum of
//! the mixed `(key hash, digest)` of every key under it, so a change updates
//! it in O(1) and equal sets give equal hashes whatever the insertion order.
//!
//! The sums of the 4,096 nodes at depth 3 are kept in an array (32 KiB), so
//! the top three levels cost nothing to read; deeper nodes are summed from
//! the sorted key hashes on demand, which touches only the keys under them.

/// Nibbles of the key hash cached as an array of sums.
pub const CACHED_DEPTH: u8 = 3;
/// Bits per tree level.
pub const LEVEL_BITS: u32 = 4;
/// Deepest level: the whole key hash.
pub const MAX_DEPTH: u8 = 16;

/// Mix a key hash and its digest into the value summed up the tree
/// (splitmix64's finaliser), so that sums of many keys rarely collide.
pub fn entry_hash(key_hash: u64, digest: u64) -> u64 {
    let mut z = key_hash ^ digest.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A node of the tree: the first `depth` nibbles of key hashes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    /// Number of nibbles fixed (0 is the root).
    pub depth: u8,
    /// Their value, right-aligned.
    pub bits: u64,
}

impl Prefix {
    /// The root: every key.
    pub const ROOT: Prefix = Prefix { depth: 0, bits: 0 };

    /// Whether `depth` and `bits` make a prefix.
    pub fn is_valid(self) -> bool {
        self.depth <= MAX_DEPTH
            && (self.depth == MAX_DEPTH || self.bits >> (u32::from(self.depth) * LEVEL_BITS) == 0)
    }

    /// Its `i`-th child (i < 16).
    pub fn child(self, i: u8) -> Prefix {
        Prefix {
            depth: self.depth + 1,
            bits: (self.bits << LEVEL_BITS) | u64::from(i & 0xf),
        }
    }

    /// The range of key hashes under it.
    pub fn range(self) -> core::ops::RangeInclusive<u64> {
        if self.depth == 0 {
            return 0..=u64::MAX;
        }
        let shift = 64 - u32::from(self.depth) * LEVEL_BITS;
        let lo = self.bits.checked_shl(shift).unwrap_or(0);
        let hi = lo | (u64::MAX.checked_shr(64 - shift).unwrap_or(0) * u64::from(shift > 0));
        lo..=hi
    }
}

/// The index: key hashes with the sum of their keys' digests.
///
/// Key hashes are kept sorted in one small vector per depth-3 node, so that
/// a key's update finds it in two memory reads whatever the store's size,
/// and a node's keys are one slice of its bucket.
#[derive(Debug, Clone)]
pub struct MerkleIndex {
    /// `buckets[b]`: the key hashes under depth-3 node `b`, sorted, each
    /// with the sum of the entry hashes of its keys and their number.
    buckets: Vec<Vec<(u64, u64, u32)>>,
    cached: Vec<u64>,
    root: u64,
    /// Distinct key hashes held.
    len: usize,
}

impl Default for MerkleIndex {
    /// Empty; the buckets and cached sums are allocated with the first key,
    /// so that an unused store costs nothing.
    fn default() -> Self {
        MerkleIndex {
            buckets: Vec::new(),
            cached: Vec::new(),
            root: 0,
            len: 0,
        }
    }
}

/// Nodes at [`CACHED_DEPTH`].
const CACHED_NODES: usize = 1 << (CACHED_DEPTH as u32 * LEVEL_BITS);

impl MerkleIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn bucket(key_hash: u64) -> usize {
        (key_hash >> (64 - u32::from(CACHED_DEPTH) * LEVEL_BITS)) as usize
    }

    /// Add `delta` (the entry hash of a key added, or the difference when
    /// one changes) under `key_hash`, whose key count changes by `keys`; a
    /// key hash not held yet starts at `fresh` unless keys are removed.
    fn apply(&mut self, key_hash: u64, delta: u64, keys: i8, fresh: u64) {
        if self.cached.is_empty() {
            self.cached = vec![0; CACHED_NODES];
            self.buckets = vec![Vec::new(); CACHED_NODES];
        }
        let b = Self::bucket(key_hash);
        let bucket = &mut self.buckets[b];
        match bucket.binary_search_by_key(&key_hash, |&(k, _, _)| k) {
            Ok(i) => {
                let e = &mut bucket[i];
                e.1 = e.1.wrapping_add(delta);
                e.2 = e.2.saturating_add_signed(i32::from(keys));
                if e.2 == 0 {
                    bucket.remove(i);
                    self.len -= 1;
                }
            }
            // A key never added is not removed (a removal's delta still
            // moves the sums above it).
            Err(i) if keys >= 0 => {
                bucket.insert(i, (key_hash, fresh, 1));
                self.len += 1;
            }
            Err(_) => {}
        }
        self.cached[b] = self.cached[b].wrapping_add(delta);
        self.root = self.root.wrapping_add(delta);
    }

    /// Add a key's digest.
    pub fn add(&mut self, key_hash: u64, digest: u64) {
        let h = entry_hash(key_hash, digest);
        self.apply(key_hash, h, 1, h);
    }

    /// Remove a key's digest (one added before).
    pub fn sub(&mut self, key_hash: u64, digest: u64) {
        self.apply(key_hash, entry_hash(key_hash, digest).wrapping_neg(), -1, 0);
    }

    /// Replace a key's digest `old` (added before) by `new`: what
    /// [`MerkleIndex::sub`] then [`MerkleIndex::add`] do, in one lookup.
    pub fn replace(&mut self, key_hash: u64, old: u64, new: u64) {
        let h_new = entry_hash(key_hash, new);
        let delta = h_new.wrapping_sub(entry_hash(key_hash, old));
        self.apply(key_hash, delta, 0, h_new);
    }

    /// The root hash: equal roots, equal stores.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Distinct key hashes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key hashes under `p`, sorted, with their entry hash sums.
    fn under(&self, p: Prefix) -> impl Iterator<Item = &(u64, u64, u32)> + '_ {
        let range = p.range();
        let buckets = if self.buckets.is_empty() {
            &[][..]
        } else {
            &self.buckets[Self::bucket(*range.start())..=Self::bucket(*range.end())]
        };
        let in_range = move |e: &&(u64, u64, u32)| range.contains(&e.0);
        buckets.iter().flatten().filter(in_range)
    }

    /// The hash of the tree node `p`.
    pub fn hash(&self, p: Prefix) -> u64 {
        if p.depth == 0 {
            return self.root;
        }
        if p.depth <= CACHED_DEPTH {
            let span = 1usize << ((u32::from(CACHED_DEPTH - p.depth)) * LEVEL_BITS);
            let start = (p.bits as usize) * span;
            return self
                .cached
                .get(start..start + span)
                .map_or(0, |c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)));
        }
        self.under(p).fold(0u64, |a, &(_, h, _)| a.wrapping_add(h))
    }

    /// The hashes of `p`'s 16 children, in order.
    pub fn children(&self, p: Prefix) -> [u64; 16] {
        let mut out = [0u64; 16];
        if p.depth < CACHED_DEPTH {
            for (i, o) in out.iter_mut().enumerate() {
                *o = self.hash(p.child(i as u8));
            }
        } else if p.depth < MAX_DEPTH {
            let shift = 64 - u32::from(p.depth + 1) * LEVEL_BITS;
            for &(k, h, _) in self.under(p) {
                let i = ((k >> shift) & 0xf) as usize;
                out[i] = out[i].wrapping_add(h);
            }
        }
        out
    }

    /// Number of keys under `p`, counting at most `cap`.
    pub fn count_upto(&self, p: Prefix, cap: usize) -> usize {
        if p.depth == 0 {
            return self.len.min(cap);
        }
        self.under(p).take(cap).count()
    }

    /// The key hashes under `p` with the sum of their entry hashes.
    pub fn keys(&self, p: Prefix) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.under(p).map(|&(k, h, _)| (k, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sums_of_the_keys_under_each_prefix_whatever_the_order() {
        let keys: Vec<(u64, u64)> = (0..500u64).map(|i| (entry_hash(i, 7), i)).collect();
        let mut a = MerkleIndex::new();
        let mut b = MerkleIndex::new();
        for &(k, d) in &keys {
            a.add(k, d);
        }
        for &(k, d) in keys.iter().rev() {
            b.add(k, d);
        }
        assert_eq!(a.root(), b.root());
        for depth in 0..6u8 {
            let bits = keys[3]
                .0
                .checked_shr(64 - u32::from(depth) * 4)
                .unwrap_or(0);
            let p = Prefix { depth, bits };
            let brute = keys
                .iter()
                .filter(|(k, _)| p.range().contains(k))
                .fold(0u64, |s, &(k, d)| s.wrapping_add(entry_hash(k, d)));
            assert_eq!(a.hash(p), brute, "depth {depth}");
            let kids = a.children(p).iter().fold(0u64, |s, &h| s.wrapping_add(h));
            assert_eq!(kids, brute, "children of depth {depth}");
        }
        a.sub(keys[0].0, keys[0].1);
        assert_ne!(a.root(), b.root());
        a.add(keys[0].0, keys[0].1);
        assert_eq!(a.root(), b.root());
    }

    #[test]
    fn prefix_ranges_tile_the_key_space() {
        let p = Prefix::ROOT.child(0xa).child(0x3);
        assert_eq!(*p.range().start(), 0xa3u64 << 56);
        assert_eq!(*p.range().end(), (0xa3u64 << 56) | ((1u64 << 56) - 1));
        assert!(p.is_valid());
        assert!(!Prefix { depth: 1, bits: 16 }.is_valid());
        let full = Prefix {
            depth: 16,
            bits: 42,
        };
        assert_eq!(full.range(), 42..=42);
    }
}
