//! Anti-entropy: a Merkle tree over the key space and the descent protocol
//! that finds the entries two replicas disagree on.

pub mod merkle;

pub use merkle::MerkleIndex;
pub mod anti_entropy;
pub mod convergence;

pub use convergence::{Convergence, LatencyHistogram, StateSummary, Summaries};
