//! Property tests for the wire format: every message round-trips, compound
//! packets round-trip, and arbitrary bytes never panic the decoder or the
//! node.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use rumor_proto::dissemination::rumor::{Priority, Rumor, RumorBody, RumorId};
use rumor_proto::state::{Entry, KvStore, ReplicaId, StateConfig, Timestamp};
use rumor_proto::sync::descent::Group;
use rumor_proto::sync::{StateSummary, SyncCompare, SyncKeys};
use rumor_proto::wire::frame::{
    decode_datagram_body, decode_message, encode_stream_frame, split_frame,
};
use rumor_proto::wire::*;
use rumor_proto::{Channel, Config, Identity, Instant, MemberState, Node, NodeName, Tags};

fn name() -> impl Strategy<Value = NodeName> {
    "[a-zA-Z0-9._-]{1,40}".prop_map(|s| NodeName::new(&s).expect("strategy yields valid names"))
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

fn tags() -> impl Strategy<Value = Tags> {
    proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,16}", 0..4)
}

fn state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        Just(MemberState::Alive),
        Just(MemberState::Suspect),
        Just(MemberState::Dead),
        Just(MemberState::Left),
    ]
}

fn entry() -> impl Strategy<Value = MemberEntry> {
    (name(), addr(), any::<u32>(), state(), tags()).prop_map(
        |(node, addr, incarnation, state, tags)| MemberEntry {
            node,
            addr,
            incarnation,
            state,
            tags,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![membership_message(), rumor_message(), state_message()]
}

fn kv_entry() -> impl Strategy<Value = Entry> {
    use rumor_proto::state::{Kind, Op};
    // Entries as a store makes them: a few writes of each kind by a few
    // replicas, merged together.
    proptest::collection::vec((0u64..3, 0u8..4, any::<u8>()), 0..6).prop_map(|ops| {
        let mut entry = Entry::default();
        for (i, (r, kind, v)) in ops.into_iter().enumerate() {
            let mut kv = KvStore::new(ReplicaId(r + 1), StateConfig::default());
            kv.merge("k", &entry, 0);
            let op = match kind {
                0 => Op::Put {
                    value: vec![v],
                    context: None,
                    kind: Some(Kind::Mv),
                },
                1 => Op::Put {
                    value: vec![v],
                    context: None,
                    kind: Some(Kind::Lww),
                },
                2 => Op::Increment(i64::from(v)),
                _ => Op::Delete { context: None },
            };
            if let Ok(w) = kv.write("k", op, i as u64) {
                entry = w.entry;
            }
        }
        entry
    })
}

fn key() -> impl Strategy<Value = rumor_proto::state::store::Key> {
    "[a-z0-9/._-]{1,24}".prop_map(|s| s.as_str().into())
}

fn rumor_message() -> impl Strategy<Value = Message> {
    let id = (any::<u64>(), any::<u32>()).prop_map(|(origin, seq)| RumorId { origin, seq });
    let body = prop_oneof![
        ("[a-z]{1,12}", proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(name, payload)| RumorBody::Event { name, payload }),
        (key(), kv_entry()).prop_map(|(key, entry)| RumorBody::Write { key, entry }),
    ];
    prop_oneof![
        (id.clone(), name(), any::<u64>(), any::<u16>(), body).prop_map(
            |(id, origin, ltime, hops, body)| Message::Rumor(Rumor {
                id,
                origin,
                ltime,
                priority: Priority::High,
                hops,
                body,
            })
        ),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(id.clone(), 0..8)
        )
            .prop_map(|(pull, reply, ids)| Message::RumorDigest(RumorDigest {
                pull,
                reply,
                ids
            })),
        proptest::collection::vec(id, 0..8)
            .prop_map(|known| Message::RumorFeedback(RumorFeedback { known })),
    ]
}

/// `bits` cut to a valid prefix of `depth` nibbles.
fn prefix_bits(depth: u8, bits: u64) -> u64 {
    match u32::from(depth) * 4 {
        0 => 0,
        64.. => bits,
        n => bits & ((1u64 << n) - 1),
    }
}

fn state_message() -> impl Strategy<Value = Message> {
    let ts =
        (any::<u64>(), any::<u32>()).prop_map(|(wall_ms, logical)| Timestamp { wall_ms, logical });
    prop_oneof![
        (name(), any::<u64>(), any::<u64>(), ts.clone(), ts).prop_map(
            |(node, root, keys, last_change, issued)| Message::StateSummary(StateSummary {
                node,
                root,
                keys,
                last_change,
                issued,
                stable: last_change,
            })
        ),
        (
            any::<u32>(),
            proptest::collection::vec((0u8..16, any::<u64>(), any::<[u32; 16]>()), 0..4)
        )
            .prop_map(|(salt, groups)| Message::SyncCompare(SyncCompare {
                salt,
                groups: groups
                    .into_iter()
                    .map(|(depth, bits, children)| Group {
                        depth,
                        bits: prefix_bits(depth, bits),
                        children
                    })
                    .collect(),
            })),
        (
            any::<u32>(),
            0u8..=16,
            any::<u64>(),
            proptest::collection::vec(any::<(u64, u32)>(), 0..8)
        )
            .prop_map(
                |(salt, depth, bits, keys)| Message::SyncKeys(vec![SyncKeys {
                    salt,
                    depth,
                    bits: prefix_bits(depth, bits),
                    keys,
                }])
            ),
        (
            proptest::collection::vec((key(), kv_entry()), 0..3),
            proptest::collection::vec(any::<u64>(), 0..8)
        )
            .prop_map(|(entries, want)| Message::SyncEntries(SyncEntries { entries, want })),
    ]
}

fn membership_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), name()).prop_map(|(seq, target)| Message::Ping(Ping { seq, target })),
        (any::<u32>(), name(), addr(), any::<bool>()).prop_map(|(seq, target, addr, want_nack)| {
            Message::IndirectPing(IndirectPing {
                seq,
                target,
                addr,
                want_nack,
            })
        }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(seq, active, hash)| Message::Ack(
            Ack {
                seq,
                digest: rumor_proto::membership::table::MembershipDigest { active, hash },
            }
        )),
        any::<u32>().prop_map(|seq| Message::Nack(Nack { seq })),
        (any::<u32>(), name(), addr(), tags()).prop_map(|(incarnation, node, addr, tags)| {
            Message::Alive(Alive {
                incarnation,
                node,
                addr,
                tags,
            })
        }),
        (any::<u32>(), name(), name()).prop_map(|(incarnation, node, from)| Message::Suspect(
            Suspect {
                incarnation,
                node,
                from
            }
        )),
        (any::<u32>(), name(), name()).prop_map(|(incarnation, node, from)| Message::Dead(Dead {
            incarnation,
            node,
            from
        })),
        (any::<u32>(), name())
            .prop_map(|(incarnation, node)| Message::Left(Left { incarnation, node })),
        (
            any::<bool>(),
            any::<bool>(),
            name(),
            proptest::collection::vec(entry(), 0..8)
        )
            .prop_map(|(join, reply, from, members)| Message::PushPull(PushPull {
                join,
                reply,
                from,
                members
            })),
    ]
}

/// Packets dropped whole (as opposed to single messages skipped).
fn packets_dropped(n: &Node) -> u64 {
    let d = &n.stats().dropped;
    d.truncated + d.oversized + d.unsupported_version + d.wrong_cluster + d.malformed + d.invalid
}

fn node() -> Node {
    let id = Identity::new("target".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
    Node::new(Config::lan(), id, 9, Instant::ZERO).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips_on_a_stream(msg in message()) {
        let bytes = encode_stream_frame("c", &msg, 1 << 20).unwrap();
        let frame = split_frame(&bytes, "c", 1 << 20).unwrap();
        prop_assert_eq!(decode_message(frame.body).unwrap(), msg.clone());
        prop_assert!(validate(&msg, &Config::lan()).is_ok());
    }

    #[test]
    fn compound_datagrams_round_trip_within_budget(msgs in proptest::collection::vec(message(), 1..20), budget in 512usize..1500) {
        let mut b = PacketBuilder::new("cluster", budget).unwrap();
        let mut packed = Vec::new();
        for m in &msgs {
            if b.push(m).unwrap() {
                packed.push(m.clone());
            }
        }
        let bytes = b.finish();
        prop_assert!(bytes.len() <= budget);
        let frame = split_frame(&bytes, "cluster", budget).unwrap();
        let decoded = decode_datagram_body(frame.body).unwrap();
        prop_assert_eq!(decoded.messages, packed);
        prop_assert_eq!(decoded.unknown, 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_datagram_body(&bytes);
        let _ = decode_message(&bytes);
        let _ = split_frame(&bytes, "default", 65_507);
    }

    #[test]
    fn garbage_after_a_valid_header_changes_nothing(body in proptest::collection::vec(any::<u8>(), 0..1400), stream in any::<bool>()) {
        let mut n = node();
        let before: Vec<_> = n.members().cloned().collect();
        let mut bytes = vec![PROTOCOL_VERSION, 0, 7];
        bytes.extend_from_slice(b"default");
        bytes.extend_from_slice(&body);
        let channel = if stream { Channel::Stream } else { Channel::Datagram };
        n.handle_packet(Instant::from_millis(1), "127.0.0.9:1".parse().unwrap(), channel, &bytes);
        // Whatever decoded, a lone node's own entry never changes state.
        let after: Vec<_> = n.members().filter(|m| m.name.as_str() == "target").cloned().collect();
        prop_assert_eq!(after[0].state, MemberState::Alive);
        if packets_dropped(&n) > 0 {
            let now: Vec<_> = n.members().cloned().collect();
            prop_assert_eq!(now, before);
        }
    }

    #[test]
    fn truncations_of_valid_packets_are_dropped_not_half_applied(msgs in proptest::collection::vec(message(), 1..6), cut in any::<prop::sample::Index>()) {
        let mut b = PacketBuilder::new("default", 1400).unwrap();
        for m in &msgs {
            let _ = b.push(m);
        }
        let bytes = b.finish();
        let cut = cut.index(bytes.len());
        let mut n = node();
        let before: Vec<_> = n.members().cloned().collect();
        n.handle_packet(Instant::from_millis(1), "127.0.0.9:1".parse().unwrap(), Channel::Datagram, &bytes[..cut]);
        let after: Vec<_> = n.members().cloned().collect();
        // A cut at a message boundary is a valid shorter packet; anything
        // else must be dropped whole.
        if packets_dropped(&n) > 0 {
            prop_assert_eq!(after, before);
        }
    }
}
