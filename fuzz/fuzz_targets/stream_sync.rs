//! The stream and sync protocol: a sequence of stream frames (push-pull,
//! anti-entropy exchanges, ...) from one peer, each behind a well-formed
//! header, with time passing between them so that exchanges the node
//! starts go on. Input: frames as `[len: u16 LE][body]...`.
#![no_main]

mod common;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rumor_proto::{Channel, Instant};

fuzz_target!(|data: &[u8]| {
    let mut node = common::node();
    let peer = common::PEER.parse().expect("address");
    let mut now = Instant::from_millis(10);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let body = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[(2 + len).min(rest.len())..];
        node.handle_packet(now, peer, Channel::Stream, &common::framed(body));
        common::run_for(&mut node, now, Duration::from_millis(500));
        now = now + Duration::from_millis(500);
    }
    // Whatever arrived, the node still answers for its own keys.
    let _ = node.convergence();
});
