//! The JSON documents of the HTTP API, shared by the agent that serves them
//! and the command-line client that reads them.
//!
//! Values are bytes. In JSON a value is written as `{"value": "text"}` when
//! it is valid UTF-8, and as `{"base64": "..."}` (standard alphabet, with
//! padding) otherwise; exactly one of the two fields is present.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rumor_proto::state::{Entry, Kind};
use rumor_proto::sync::Convergence;
use rumor_proto::{Member, MemberEvent, UserEvent};
use serde::{Deserialize, Serialize};

use super::context_token;
use crate::NodeInfo;

/// A byte string as JSON: text when it is UTF-8, base64 otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The value as text, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl Value {
    /// Wrap bytes.
    pub fn new(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Value {
                value: Some(s.to_string()),
                base64: None,
            },
            Err(_) => Value {
                value: None,
                base64: Some(STANDARD.encode(bytes)),
            },
        }
    }

    /// The bytes back (`None` when `base64` does not decode).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        match (&self.value, &self.base64) {
            (Some(s), _) => Some(s.as_bytes().to_vec()),
            (None, Some(b)) => STANDARD.decode(b).ok(),
            (None, None) => Some(Vec::new()),
        }
    }

    /// For display: the text, or `base64:...`.
    pub fn display(&self) -> String {
        match (&self.value, &self.base64) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) => format!("base64:{b}"),
            (None, None) => String::new(),
        }
    }
}

/// A member as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its name.
    pub name: String,
    /// Its gossip address.
    pub addr: String,
    /// alive, suspect, dead or left.
    pub state: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        MemberView {
            name: m.name.to_string(),
            addr: m.addr.to_string(),
            state: m.state.as_str().to_string(),
            incarnation: u64::from(m.incarnation),
            tags: m.tags().clone(),
        }
    }
}

impl From<&MemberEvent> for MemberView {
    fn from(m: &MemberEvent) -> Self {
        MemberView {
            name: m.name.to_string(),
            addr: m.addr.to_string(),
            state: m.state.as_str().to_string(),
            incarnation: u64::from(m.incarnation),
            tags: m.tags.clone(),
        }
    }
}

/// One key's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// The key.
    pub key: String,
    /// mv, lww, counter or set.
    pub kind: String,
    /// The values a read shows: every sibling of an `mv` key, the winner of
    /// an `lww` key; empty for counters and sets.
    pub values: Vec<Value>,
    /// A counter's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<i64>,
    /// A set's elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements: Option<Vec<Value>>,
    /// The causal context of this read: pass it to a put or delete to
    /// replace exactly the values shown here.
    pub context: String,
    /// Wall-clock time of the latest write, in milliseconds since the Unix
    /// epoch (from the writer's hybrid logical clock).
    pub updated_ms: u64,
}

impl KeyView {
    /// The view of `entry` under `key`.
    pub fn new(key: &str, entry: &Entry) -> Self {
        let kind = entry.kind().unwrap_or(Kind::Mv);
        let (counter, elements) = match kind {
            Kind::Counter => (Some(entry.counter_value()), None),
            Kind::Set => (
                None,
                Some(entry.set_elements().into_iter().map(Value::new).collect()),
            ),
            Kind::Mv | Kind::Lww => (None, None),
        };
        let values = match kind {
            Kind::Mv | Kind::Lww => entry.values().into_iter().map(Value::new).collect(),
            Kind::Counter | Kind::Set => Vec::new(),
        };
        KeyView {
            key: key.to_string(),
            kind: kind.as_str().to_string(),
            values,
            counter,
            elements,
            context: context_token::encode(&entry.context),
            updated_ms: entry.ts.wall_ms,
        }
    }
}

/// The answer to a write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    /// The key written.
    pub key: String,
    /// The key's causal context after the write.
    pub context: String,
}

/// A request to join a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Addresses of members to join through (`host:port`).
    pub addrs: Vec<String>,
}

/// A user event as delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Its name.
    pub name: String,
    /// Its payload.
    pub payload: Value,
    /// The node that sent it.
    pub origin: String,
    /// Lamport time at the origin.
    pub ltime: u64,
}

impl From<&UserEvent> for EventView {
    fn from(u: &UserEvent) -> Self {
        EventView {
            name: u.name.clone(),
            payload: Value::new(&u.payload),
            origin: u.origin.to_string(),
            ltime: u.ltime,
        }
    }
}

/// One line of a `watch` stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WatchItem {
    /// A member changed.
    Member {
        /// member-join, member-update, member-suspect, member-recover,
        /// member-failed, member-leave or member-reap.
        event: String,
        /// The member after the change.
        member: MemberView,
    },
    /// A user event arrived.
    Event(EventView),
    /// A key changed (`key` is `None` when it was deleted).
    Kv {
        /// The key's name.
        name: String,
        /// Its state, or `None` when deleted.
        key: Option<KeyView>,
    },
    /// The watcher fell behind and missed this many items.
    Lagged {
        /// Items missed.
        missed: u64,
    },
}

impl WatchItem {
    /// The watch item for a member event.
    pub fn member(m: &MemberEvent) -> Self {
        WatchItem::Member {
            event: m.kind.as_str().to_string(),
            member: MemberView::from(m),
        }
    }
}

/// A member whose state summary differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DifferingView {
    /// Its name.
    pub node: String,
    /// Its Merkle root (hex).
    pub root: String,
    /// Keys it holds.
    pub keys: u64,
}

/// How far the cluster is from agreement, as one node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceView {
    /// This node's Merkle root (hex).
    pub root: String,
    /// Keys this node holds, tombstones included.
    pub keys: u64,
    /// Live members, this node included.
    pub members: usize,
    /// Live members whose digest equals this node's.
    pub agreeing: usize,
    /// `agreeing / members`.
    pub fraction: f64,
    /// Members whose digest differs.
    pub differing: Vec<DifferingView>,
    /// Live members not heard from yet.
    pub unknown: Vec<String>,
    /// Update propagation latency: updates measured.
    pub latency_count: u64,
    /// Median propagation latency in ms.
    pub latency_p50_ms: Option<u64>,
    /// 99th percentile propagation latency in ms.
    pub latency_p99_ms: Option<u64>,
    /// Largest propagation latency in ms.
    pub latency_max_ms: u64,
    /// The histogram: `buckets[i]` counts latencies in [2^(i−1), 2^i) ms.
    pub latency_buckets: Vec<u64>,
}

impl From<&Convergence> for ConvergenceView {
    fn from(c: &Convergence) -> Self {
        ConvergenceView {
            root: format!("{:016x}", c.root),
            keys: c.keys,
            members: c.members,
            agreeing: c.agreeing,
            fraction: c.fraction,
            differing: c
                .differing
                .iter()
                .map(|s| DifferingView {
                    node: s.node.to_string(),
                    root: format!("{:016x}", s.root),
                    keys: s.keys,
                })
                .collect(),
            unknown: c.unknown.iter().map(ToString::to_string).collect(),
            latency_count: c.latency.count,
            latency_p50_ms: c.latency.quantile_ms(0.5),
            latency_p99_ms: c.latency.quantile_ms(0.99),
            latency_max_ms: c.latency.max_ms,
            latency_buckets: c.latency.buckets.clone(),
        }
    }
}

/// What an agent says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoView {
    /// The node's name.
    pub name: String,
    /// Its gossip address.
    pub addr: String,
    /// The rumor version it runs.
    pub version: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Lifeguard local health (0 is healthy).
    pub health_score: u32,
    /// Members by state: alive, suspect, dead, left.
    pub members: BTreeMap<String, usize>,
    /// Keys held, tombstones included.
    pub keys: u64,
    /// Tombstones held.
    pub tombstones: u64,
    /// Bytes of keys and values held.
    pub kv_bytes: u64,
    /// Rumors waiting to be spread.
    pub queued_broadcasts: usize,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

impl From<&NodeInfo> for InfoView {
    fn from(i: &NodeInfo) -> Self {
        let members = [
            ("alive", i.members.alive),
            ("suspect", i.members.suspect),
            ("dead", i.members.dead),
            ("left", i.members.left),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        InfoView {
            name: i.name.to_string(),
            addr: i.addr.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            incarnation: u64::from(i.incarnation),
            tags: i.tags.clone(),
            health_score: i.health_score,
            members,
            keys: i.keys,
            tombstones: i.tombstones,
            kv_bytes: i.kv_bytes,
            queued_broadcasts: i.queued_broadcasts,
            packets_sent: i.stats.packets_sent,
            packets_received: i.stats.packets_received,
            bytes_sent: i.stats.bytes_sent,
            bytes_received: i.stats.bytes_received,
        }
    }
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}
