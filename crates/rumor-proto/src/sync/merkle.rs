//! Placeholder index (replaced by the Merkle tree).

/// Index of (key hash, digest) pairs.
#[derive(Debug, Default, Clone)]
pub struct MerkleIndex {
    root: u64,
    len: usize,
}

fn mix(k: u64, d: u64) -> u64 {
    let mut z = k ^ d.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MerkleIndex {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add.
    pub fn add(&mut self, key_hash: u64, digest: u64) {
        self.root = self.root.wrapping_add(mix(key_hash, digest));
        self.len += 1;
    }
    /// Sub.
    pub fn sub(&mut self, key_hash: u64, digest: u64) {
        self.root = self.root.wrapping_sub(mix(key_hash, digest));
        self.len -= 1;
    }
    /// Root.
    pub fn root(&self) -> u64 {
        self.root
    }
    /// Len.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
