//! A node with a peer and a few keys, for the targets that feed it input.

use std::net::SocketAddr;
use std::time::Duration;

use rumor_proto::state::Op;
use rumor_proto::wire::frame::write_header;
use rumor_proto::wire::{Alive, Message, PacketBuilder};
use rumor_proto::{Config, Identity, Instant, Node};

/// The peer the input claims to come from.
pub const PEER: &str = "10.0.0.2:7946";

/// A node that knows one peer and holds a few keys.
pub fn node() -> Node {
    let me: SocketAddr = "10.0.0.1:7946".parse().expect("address");
    let mut node = Node::new(
        Config::local(),
        Identity::new("a".parse().expect("name"), me),
        7,
        Instant::ZERO,
    )
    .expect("node");
    let mut b = PacketBuilder::new("default", 1400).expect("builder");
    b.push(&Message::Alive(Alive {
        incarnation: 0,
        node: "b".parse().expect("name"),
        addr: PEER.parse().expect("address"),
        tags: Default::default(),
    }))
    .expect("alive");
    node.handle_packet(
        Instant::from_millis(1),
        PEER.parse().expect("address"),
        rumor_proto::Channel::Datagram,
        &b.finish(),
    );
    for (i, key) in ["k/1", "k/2", "config/db"].iter().enumerate() {
        let op = Op::Put {
            value: vec![i as u8; 8],
            context: None,
            kind: None,
        };
        let _ = node.write(Instant::from_millis(2), key, op);
    }
    node
}

/// `body` behind a well-formed header of the default cluster.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(body.len() + 16);
    write_header(&mut buf, "default", 0).expect("header");
    buf.extend_from_slice(body);
    buf
}

/// Run the node's timers for `d` and drop what it sends.
pub fn run_for(node: &mut Node, from: Instant, d: Duration) {
    let until = from + d;
    while let Some(t) = node.poll_timeout() {
        if t > until {
            break;
        }
        node.handle_timeout(t);
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
}
