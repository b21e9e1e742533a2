//! # rumor-proto
//!
//! The sans-io protocol core of rumor: SWIM membership with the Lifeguard
//! refinements, epidemic dissemination of membership updates, user events
//! and key writes, the replicated key-value store ([`state`]), its Merkle
//! anti-entropy and convergence monitoring ([`sync`]), and the wire format. It never touches sockets, threads, the clock or OS randomness:
//! time comes in as an argument, randomness from a seed the caller gives, and
//! everything the node wants done comes out of [`Node::poll_transmit`],
//! [`Node::poll_event`] and [`Node::poll_timeout`].
//!
//! ```
//! use rumor_proto::{Channel, Command, Config, Identity, Instant, Node};
//!
//! let a_addr = "127.0.0.1:7946".parse().unwrap();
//! let b_addr = "127.0.0.2:7946".parse().unwrap();
//! let now = Instant::ZERO;
//! let mut a = Node::new(Config::local(), Identity::new("a".parse().unwrap(), a_addr), 1, now).unwrap();
//! let mut b = Node::new(Config::local(), Identity::new("b".parse().unwrap(), b_addr), 2, now).unwrap();
//!
//! // b joins through a: a push-pull request goes out on the stream channel...
//! b.handle_command(now, Command::Join { seeds: vec![a_addr] }).unwrap();
//! let req = b.poll_transmit().unwrap();
//! assert_eq!((req.to, req.channel), (a_addr, Channel::Stream));
//! // ...a answers with its state, and both now know each other.
//! a.handle_packet(now, b_addr, req.channel, &req.bytes);
//! let reply = a.poll_transmit().unwrap();
//! b.handle_packet(now, a_addr, reply.channel, &reply.bytes);
//! assert_eq!(a.members().count(), 2);
//! assert_eq!(b.members().count(), 2);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub(crate) mod context;
pub mod dissemination;
pub mod event;
pub(crate) mod fast_map;
pub mod membership;
pub mod node;
pub mod state;
pub mod stats;
pub mod sync;
pub mod time;
pub mod timer;
pub mod transmit;
pub mod wire;

pub use config::{Config, ConfigError, Profile};
pub use dissemination::config::{DisseminationConfig, Mode, Termination};
pub use dissemination::rumor::{Priority, RumorId, UserEvent};
pub use event::{Command, Event, MemberEvent, MemberEventKind};
pub use membership::member::{
    Incarnation, InvalidName, Member, MemberState, NodeName, PeerAddr, Tags,
};
pub use node::{Identity, Node, NodeError, Snapshot};
pub use stats::{DropCounts, Stats};
pub use time::Instant;
pub use transmit::{Channel, Transmit};
