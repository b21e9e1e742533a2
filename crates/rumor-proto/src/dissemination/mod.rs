//! Epidemic dissemination: the transmit-limited broadcast queue that carries
//! membership updates piggybacked on probe and gossip packets.

pub mod queue;

pub use queue::{Offer, TransmitQueue};
