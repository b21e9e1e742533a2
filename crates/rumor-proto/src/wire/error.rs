//! Encoding and decoding errors.

/// Why a received packet or frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end in the middle of a header or message.
    #[error("truncated packet")]
    Truncated,
    /// Larger than this node accepts.
    #[error("packet of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// Received length.
        len: usize,
        /// Accepted maximum.
        max: usize,
    },
    /// A protocol version this build does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The packet belongs to another cluster (or to this one under another name).
    #[error("packet for another cluster")]
    WrongCluster,
    /// The bytes do not form valid messages.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well-formed, but a field breaks a limit or rule (bad name, tags too large).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

impl DecodeError {
    pub(crate) fn from_postcard(e: postcard::Error) -> Self {
        match e {
            postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
            _ => DecodeError::Malformed("undecodable message"),
        }
    }
}

/// A message that could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Cluster name longer than a header can carry.
    #[error("cluster name too long for the packet header")]
    ClusterName,
    /// The serializer failed.
    #[error("message could not be serialized")]
    Serialize,
    /// The frame would exceed the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length it would have.
        len: usize,
        /// The limit.
        max: usize,
    },
}
