//! Malformed, truncated, oversized and foreign-cluster packets are dropped,
//! counted by reason, and change nothing.

use rumor_proto::wire::{Alive, Message, PacketBuilder};
use rumor_proto::{Channel, Config, Identity, Instant, Node, Tags};

fn node() -> Node {
    let id = Identity::new("me".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
    Node::new(Config::lan(), id, 1, Instant::ZERO).unwrap()
}

fn alive_packet(cluster: &str, tags: Tags) -> Vec<u8> {
    let mut b = PacketBuilder::new(cluster, 1400).unwrap();
    let alive = Alive {
        incarnation: 1,
        node: "peer".parse().unwrap(),
        addr: "127.0.0.2:7946".parse().unwrap(),
        tags,
    };
    assert!(b.push(&Message::Alive(alive)).unwrap());
    b.finish()
}

const FROM: &str = "127.0.0.2:7946";

#[test]
fn each_bad_packet_is_counted_by_reason_and_ignored() {
    let mut n = node();
    let from = FROM.parse().unwrap();
    let t = Instant::from_millis(1);
    let good = alive_packet("default", Tags::new());

    n.handle_packet(
        t,
        from,
        Channel::Datagram,
        &alive_packet("other", Tags::new()),
    );
    n.handle_packet(t, from, Channel::Datagram, &good[..good.len() - 3]);
    n.handle_packet(t, from, Channel::Datagram, &vec![1u8; 70_000]);
    let mut v9 = good.clone();
    v9[0] = 9;
    n.handle_packet(t, from, Channel::Datagram, &v9);
    let mut garbage = good[..3 + 7].to_vec();
    garbage.extend_from_slice(&[5, 200, 255, 255, 255, 255]);
    n.handle_packet(t, from, Channel::Datagram, &garbage);
    let mut big = Tags::new();
    big.insert("k".into(), "v".repeat(600));
    n.handle_packet(t, from, Channel::Datagram, &alive_packet("default", big));

    let d = &n.stats().dropped;
    assert_eq!(d.wrong_cluster, 1, "{d:?}");
    assert_eq!(d.truncated, 1, "{d:?}");
    assert_eq!(d.oversized, 1, "{d:?}");
    assert_eq!(d.unsupported_version, 1, "{d:?}");
    assert_eq!(d.malformed, 1, "{d:?}");
    assert_eq!(d.invalid, 1, "{d:?}");
    assert_eq!(n.members().count(), 1, "no bad packet may add a member");
    assert!(n.poll_event().is_none());

    n.handle_packet(t, from, Channel::Datagram, &good);
    assert_eq!(n.members().count(), 2, "the good packet is applied");
}
