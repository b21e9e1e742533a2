//! Anti-entropy and convergence monitoring.
//!
//! - [`merkle`]: the Merkle tree over the key space (an index of key hashes
//!   and entry digests, 16 children per node);
//! - [`descent`]: the stateless descent that finds the keys two replicas
//!   disagree on;
//! - [`anti_entropy`]: the node's side: whom to reconcile with, and the
//!   entry exchange that ends a descent;
//! - [`convergence`]: store summaries, the convergence report and the
//!   update-latency histogram.

pub mod anti_entropy;
pub mod convergence;
pub mod descent;
pub mod merkle;

pub use convergence::{Convergence, LatencyHistogram, StateSummary, Summaries};
pub use descent::{SyncCompare, SyncKeys};
pub use merkle::MerkleIndex;
