//! Hash maps for the core's hot paths: hashbrown with foldhash under a fixed
//! seed. Fast, and free of per-process randomness, so the core stays a pure
//! function of its inputs. No protocol decision ever depends on iteration
//! order of these maps.

/// The fixed-seed hasher.
pub type FixedHasher = foldhash::fast::FixedState;

/// A `HashMap` with [`FixedHasher`].
pub type FastMap<K, V> = hashbrown::HashMap<K, V, FixedHasher>;

/// A `HashSet` with [`FixedHasher`].
pub type FastSet<K> = hashbrown::HashSet<K, FixedHasher>;
