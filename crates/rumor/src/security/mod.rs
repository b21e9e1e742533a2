//! The transport's security: every datagram and stream frame sealed with
//! ChaCha20-Poly1305 under the keyring's primary key and opened with any
//! installed key, the cluster name and channel bound in, replays refused,
//! and keys rotated across the cluster without downtime.
//!
//! - [`keyring`]: keys, fingerprints, the keyring and its file.
//! - [`envelope`]: sealing and opening a frame; the notice sent back to a
//!   peer whose packets are refused.
//! - [`replay`]: the replay window.
//! - [`rotation`]: keyring operations spread as reserved user events, and
//!   the per-node keyring records that make a rotation observable.
//! - `gate`: the per-node door every packet passes, in and out.
//!
//! See `docs/security.md` for the formats and the rotation procedure.

pub mod envelope;
pub(crate) mod gate;
pub mod keyring;
pub(crate) mod limiter;
pub mod replay;
pub mod rotation;
pub(crate) mod stats;

use std::path::PathBuf;
use std::time::Duration;

pub use keyring::{Key, KeyError, Keyring};
pub use rotation::{KeyOp, KeyStatus, KeysReport};
pub use stats::TransportStats;

/// Default replay window: a packet sent more than this far from the local
/// clock, either way, is refused.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(60);
/// Default number of accepted packets remembered to refuse their replays.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Whether and how the node protects its packets.
#[derive(Clone, Debug)]
pub enum Security {
    /// No encryption and no authentication: anyone who can reach the ports
    /// can read and forge packets. Packets still carry the cluster name,
    /// which is checked. For tests and closed networks only, and only when
    /// asked for explicitly. A plaintext node and an encrypting node refuse
    /// each other's packets and log why.
    Plaintext,
    /// Every packet sealed and authenticated under a keyring.
    Encrypted(Encryption),
}

/// The settings of an encrypting node.
#[derive(Clone, Debug)]
pub struct Encryption {
    /// The keys, primary first. When `keyring_file` exists, its keys are
    /// used instead (they hold the rotations made since).
    pub keyring: Keyring,
    /// Where the keyring is kept across restarts; rewritten atomically on
    /// every change (a JSON array of base64 keys, primary first).
    pub keyring_file: Option<PathBuf>,
    /// A packet sent more than this far from the local clock, either way,
    /// is refused. Nodes' clocks must agree to within it (less the network
    /// delay): keep them synchronised (NTP). At least one second.
    pub replay_window: Duration,
    /// Accepted packets remembered to refuse their replays. When full, the
    /// oldest are forgotten and every packet sent before them is refused
    /// (the floor rises), so raise it for nodes that receive more than
    /// `replay_capacity / (2 × window)` packets a second.
    pub replay_capacity: usize,
}

impl Encryption {
    /// Encryption under `keyring`, kept in memory only, with the default
    /// replay window.
    pub fn new(keyring: Keyring) -> Encryption {
        Encryption {
            keyring,
            keyring_file: None,
            replay_window: DEFAULT_REPLAY_WINDOW,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
        }
    }

    /// The same, with the keyring kept in `path`.
    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Encryption {
        self.keyring_file = Some(path.into());
        self
    }
}
