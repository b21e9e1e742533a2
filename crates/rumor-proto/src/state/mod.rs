//! The replicated key-value state: dotted version vectors, the hybrid
//! logical clock, conflict resolution (multi-value, last-writer-wins and
//! CRDTs), tombstones and limits. See `docs/state.md`.
//!
//! ```
//! use rumor_proto::state::{KvStore, Op, ReplicaId, StateConfig};
//!
//! let put = |v: &[u8]| Op::Put { value: v.to_vec(), context: None, kind: None };
//! let mut a = KvStore::new(ReplicaId(1), StateConfig::default());
//! let mut b = KvStore::new(ReplicaId(2), StateConfig::default());
//! // Two writes that have not seen each other...
//! let wa = a.write("color", put(b"red"), 1_000).unwrap();
//! let wb = b.write("color", put(b"blue"), 1_001).unwrap();
//! a.merge("color", &wb.entry, 1_002);
//! b.merge("color", &wa.entry, 1_002);
//! // ...are kept as siblings, on both replicas alike.
//! assert_eq!(a.get("color").unwrap().len(), 2);
//! assert_eq!(a.root(), b.root());
//! // A write with the context of that read resolves them.
//! let context = Some(a.get("color").unwrap().context.clone());
//! let w = a.write("color", Op::Put { value: b"purple".to_vec(), context, kind: None }, 1_003).unwrap();
//! b.merge("color", &w.entry, 1_004);
//! assert_eq!(b.get("color").unwrap().len(), 1);
//! ```

pub mod config;
pub mod entry;
pub mod hlc;
mod small_vec;
pub mod store;
pub mod version_vector;

pub use config::StateConfig;
pub use entry::{Dots, Dotted, Entry, Kind, Payload, WrongKind};
pub use hlc::{Hlc, Timestamp};
pub use store::{Key, KvError, KvStore, Merged, Op, Refusal, StoreSnapshot, Written, key_hash};
pub use version_vector::{Dot, ReplicaId, VersionVector};
