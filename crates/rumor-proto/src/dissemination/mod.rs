//! Epidemic dissemination.
//!
//! - [`queue`]: the transmit-limited broadcast queue that carries membership
//!   updates (and, with `transmit-limit`, user events) piggybacked on probe
//!   and gossip packets;
//! - [`rumor`]: user events and their ids;
//! - [`store`]: the rumors a node holds, bounded in time and number;
//! - [`exchange`]: push, pull and push-pull rounds and the termination rules;
//! - [`bandwidth`]: the outgoing bandwidth budget;
//! - [`config`]: the settings.

pub mod bandwidth;
pub mod config;
pub mod exchange;
pub mod queue;
pub mod rumor;
pub mod store;

pub use queue::{Offer, TransmitQueue};
