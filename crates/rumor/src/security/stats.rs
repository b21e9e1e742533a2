//! Counters of what the transport sealed, opened and refused, shared by the
//! driver task and the stream listener, read through
//! [`crate::Handle::transport_stats`].

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! transport_counters {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// What the transport sealed, opened and refused since the node
        /// started.
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct TransportStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        /// The live counters behind [`TransportStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: AtomicU64, )*
        }

        impl Counters {
            /// The counters now.
            pub(crate) fn snapshot(&self) -> TransportStats {
                TransportStats {
                    $( $name: self.$name.load(Ordering::Relaxed), )*
                }
            }
        }
    };
}

transport_counters! {
    /// Datagrams and stream frames sealed for sending.
    sealed,
    /// Sealed packets received that a key opened and the replay window
    /// accepted.
    opened,
    /// Sealed packets no installed key authenticates: another key, another
    /// cluster or channel, or bytes changed on the way.
    auth_failures,
    /// Authenticated packets refused because they were already accepted
    /// once (or were sent before the replay floor).
    replays_rejected,
    /// Authenticated packets whose send time is outside the replay window
    /// (clock skew, or an old capture).
    outside_window,
    /// Packets naming another cluster.
    wrong_cluster,
    /// Plaintext packets refused by a node that requires encryption.
    plaintext_refused,
    /// Sealed packets refused by a node in plaintext mode.
    sealed_refused,
    /// Packets whose header does not parse.
    malformed,
    /// Stream frames announced larger than `max_stream_frame`, or that did
    /// not fit the memory set aside for frames being read.
    oversize_dropped,
    /// Inbound stream connections closed unread because too many were open
    /// (in all, or from one address).
    connections_refused,
    /// Notices sent to peers whose packets were refused.
    notices_sent,
    /// Notices received from peers that refused this node's packets.
    notices_received,
}

/// Add one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
