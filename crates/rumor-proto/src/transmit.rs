//! Bytes the runtime must send.

use std::net::SocketAddr;

/// How a transmit travels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// An unreliable datagram of at most the packet budget (UDP).
    Datagram,
    /// A reliable frame on a stream (TCP): full-state exchanges and the
    /// fallback probe. The answer comes back as another stream frame.
    Stream,
}

/// One packet or stream frame to send, from [`crate::Node::poll_transmit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Datagram or stream.
    pub channel: Channel,
    /// The encoded frame (header included).
    pub bytes: Vec<u8>,
}
