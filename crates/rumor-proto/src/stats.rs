//! Counters a node keeps about its own traffic and what it dropped.

use crate::wire::DecodeError;

/// Traffic and protocol counters, from [`crate::Node::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams and stream frames sent.
    pub packets_sent: u64,
    /// Bytes sent, headers included.
    pub bytes_sent: u64,
    /// Messages sent (a compound datagram counts each message).
    pub messages_sent: u64,
    /// Datagrams and stream frames received (dropped ones included).
    pub packets_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Probes started.
    pub probes: u64,
    /// Probes that needed indirect probing.
    pub indirect_probes: u64,
    /// Probes that failed and led this node to suspect the target.
    pub failed_probes: u64,
    /// Probes answered over the stream channel (TCP) after the datagram
    /// probe went unanswered: the member is up but UDP between the two
    /// fails.
    pub stream_only_acks: u64,
    /// Periodic push-pulls skipped because a recent ack's membership digest
    /// matched this node's (nothing to exchange).
    pub push_pulls_skipped: u64,
    /// Times this node refuted a suspicion or death about itself.
    pub refutations: u64,
    /// Gossip rounds run ahead of the gossip timer's grid, for a `dead` or
    /// `left` verdict or a refutation new here (`eager_gossip`).
    pub eager_gossip_rounds: u64,
    /// Dissemination rounds run. In push mode a node holding no rumors
    /// runs none: its round timer sleeps until a rumor arrives.
    pub rumor_rounds: u64,
    /// User-event messages sent (each copy counts: the m of Demers et al.).
    pub rumors_sent: u64,
    /// User events received that were new here.
    pub rumors_new: u64,
    /// User events received that this node already had.
    pub rumors_duplicate: u64,
    /// Times a user event could not go out for lack of bandwidth budget.
    pub rumors_deferred: u64,
    /// Total time user events spent waiting for bandwidth, in milliseconds.
    pub rumor_wait_ms_total: u64,
    /// Longest single wait of a user event for bandwidth, in milliseconds.
    pub rumor_wait_ms_max: u64,
    /// Key writes made here.
    pub kv_writes: u64,
    /// Received key states that changed the local store.
    pub kv_merged: u64,
    /// Received key states refused (invalid, store full, or a key whose
    /// tombstone was collected).
    pub kv_refused: u64,
    /// Tombstones collected.
    pub tombstones_collected: u64,
    /// Bytes of key-write rumors sent (message bytes, without headers).
    pub write_rumor_bytes_sent: u64,
    /// Anti-entropy exchanges started by this node.
    pub anti_entropy_started: u64,
    /// Bytes of anti-entropy frames sent (descent and entries).
    pub anti_entropy_bytes_sent: u64,
    /// Received packets and messages dropped, by reason.
    pub dropped: DropCounts,
}

/// Dropped input, by reason. Dropped input never changes membership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Ended in the middle of a header or message.
    pub truncated: u64,
    /// Larger than accepted.
    pub oversized: u64,
    /// Another protocol version.
    pub unsupported_version: u64,
    /// Another cluster's name.
    pub wrong_cluster: u64,
    /// Bytes that are not messages.
    pub malformed: u64,
    /// Messages that break a rule (bad name, tags too large).
    pub invalid: u64,
    /// Message types from a newer protocol, skipped.
    pub unknown_message: u64,
    /// A ping meant for another node name (stale address).
    pub misdirected: u64,
    /// Work refused because a bounded table was full (indirect probe requests).
    pub overload: u64,
}

impl DropCounts {
    /// Count one drop for `err`.
    pub fn record(&mut self, err: &DecodeError) {
        let slot = match err {
            DecodeError::Truncated => &mut self.truncated,
            DecodeError::Oversized { .. } => &mut self.oversized,
            DecodeError::UnsupportedVersion(_) => &mut self.unsupported_version,
            DecodeError::WrongCluster => &mut self.wrong_cluster,
            DecodeError::Malformed(_) => &mut self.malformed,
            DecodeError::Invalid(_) => &mut self.invalid,
        };
        *slot += 1;
    }

    /// Every drop, whatever the reason.
    pub fn total(&self) -> u64 {
        self.truncated
            + self.oversized
            + self.unsupported_version
            + self.wrong_cluster
            + self.malformed
            + self.invalid
            + self.unknown_message
            + self.misdirected
            + self.overload
    }
}
