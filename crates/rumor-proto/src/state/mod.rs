//! The replicated key-value state: dotted version vectors, the hybrid
//! logical clock, conflict resolution and tombstones.
