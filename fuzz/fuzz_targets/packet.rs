//! Packet decoding: raw bytes to the wire decoders and to
//! `Node::handle_packet` on both channels, with and without a well-formed
//! header in front. Nothing may panic; a message that decodes re-encodes to
//! one that decodes the same.
#![no_main]

mod common;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rumor_proto::wire::frame::{decode_datagram_body, decode_message, encode_message, split_frame};
use rumor_proto::{Channel, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = split_frame(rest, "default", 1 << 20);
    let _ = decode_datagram_body(rest);
    if let Ok(msg) = decode_message(rest) {
        let mut buf = Vec::new();
        if encode_message(&msg, &mut buf).is_ok() {
            assert_eq!(
                decode_message(&buf).ok(),
                Some(msg),
                "a message survives encode and decode"
            );
        }
    }
    let channel = if mode & 1 == 0 {
        Channel::Datagram
    } else {
        Channel::Stream
    };
    let bytes = if mode & 2 == 0 {
        common::framed(rest)
    } else {
        rest.to_vec()
    };
    let mut node = common::node();
    let now = Instant::from_millis(10);
    node.handle_packet(now, common::PEER.parse().expect("address"), channel, &bytes);
    common::run_for(&mut node, now, Duration::from_millis(300));
});
