//! The replicated key-value state: dotted version vectors, the hybrid
//! logical clock, conflict resolution (multi-value, last-writer-wins and
//! CRDTs), tombstones and limits. See `docs/state.md`.

pub mod config;
pub mod entry;
pub mod hlc;
pub mod store;
pub mod version_vector;

pub use config::StateConfig;
pub use entry::{Dotted, Entry, Kind, Payload, WrongKind};
pub use hlc::{Hlc, Timestamp};
pub use store::{KvError, KvStore, Merged, Op, Refusal, StoreSnapshot, Written, key_hash};
pub use version_vector::{Dot, ReplicaId, VersionVector};
