//! Anti-entropy: a Merkle tree over the key space and the descent protocol
//! that finds the entries two replicas disagree on.

pub mod merkle;

pub use merkle::MerkleIndex;
