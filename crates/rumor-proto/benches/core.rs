//! Micro-benchmarks of the core's hot paths: packet encode and decode,
//! Merkle descent between two large stores, version-vector merge and
//! membership updates. `cargo bench -p rumor-proto`; figures in
//! docs/benchmarks.md.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rumor_proto::state::{Dot, ReplicaId, VersionVector};
use rumor_proto::sync::MerkleIndex;
use rumor_proto::sync::descent;
use rumor_proto::wire::frame::{decode_datagram_body, parse_header};
use rumor_proto::wire::{Alive, Message, PacketBuilder, Ping};
use rumor_proto::{Channel, Config, Identity, Instant, Node, Tags};

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946))
}

fn alive(i: usize) -> Message {
    Message::Alive(Alive {
        incarnation: 1,
        node: format!("node-{i}").parse().expect("a valid name"),
        addr: addr(i),
        tags: Tags::new(),
    })
}

/// A full datagram: a ping and as many membership updates as fit.
fn gossip_packet(first: usize) -> (Vec<u8>, usize) {
    let mut b = PacketBuilder::new("default", 1400).expect("a valid cluster name");
    let ping = Message::Ping(Ping {
        seq: 7,
        target: "node-0".parse().expect("a valid name"),
    });
    let mut messages = usize::from(b.push(&ping).expect("encodes"));
    let mut i = first;
    while b.push(&alive(i)).expect("encodes") {
        messages += 1;
        i += 1;
    }
    (b.finish(), messages)
}

fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    let (packet, messages) = gossip_packet(1);
    g.throughput(Throughput::Elements(messages as u64));
    g.bench_function("encode 1400-byte packet", |b| {
        b.iter(|| black_box(gossip_packet(black_box(1))))
    });
    g.bench_function("decode 1400-byte packet", |b| {
        b.iter(|| {
            let frame = parse_header(black_box(&packet)).expect("a valid header");
            black_box(decode_datagram_body(frame.body).expect("decodes"))
        })
    });
    g.finish();
}

/// Two Merkle indexes over `keys` entries that differ in `diff`; one full
/// descent from the root to the differing key hashes, in memory.
fn merkle(c: &mut Criterion) {
    const KEYS: u64 = 1_000_000;
    const DIFF: u64 = 100;
    let mut a = MerkleIndex::new();
    let mut b = MerkleIndex::new();
    let mix =
        |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ 0xD1B5_4A32_D192_ED03;
    for k in 0..KEYS {
        let (h, d) = (mix(k), mix(k ^ 0xABCD));
        a.add(h, d);
        if k % (KEYS / DIFF) != 0 {
            b.add(h, d);
        } else {
            b.add(h, d ^ 1);
        }
    }
    let mut g = c.benchmark_group("merkle");
    g.sample_size(20);
    g.bench_function("diff 1M keys, 100 differences", |bench| {
        bench.iter(|| {
            let found = descend(&a, &b);
            assert_eq!(found, DIFF as usize);
            black_box(found)
        })
    });
    g.finish();
}

/// Run the descent protocol between `a` (initiator) and `b` until only
/// differing keys remain; the number of key hashes found to differ.
fn descend(a: &MerkleIndex, b: &MerkleIndex) -> usize {
    let mut to_b = vec![descent::start(a, 42)];
    let mut to_a = Vec::new();
    let mut keys_to_b = Vec::new();
    let mut keys_to_a = Vec::new();
    let mut differing = 0;
    let mut turn_b = true;
    while !(to_b.is_empty() && to_a.is_empty() && keys_to_a.is_empty() && keys_to_b.is_empty()) {
        let (index, compares, keys, out_compares, out_keys) = if turn_b {
            (b, &mut to_b, &mut keys_to_b, &mut to_a, &mut keys_to_a)
        } else {
            (a, &mut to_a, &mut keys_to_a, &mut to_b, &mut keys_to_b)
        };
        for msg in compares.drain(..) {
            let r = descent::respond_compare(index, &msg, 64).expect("a valid descent");
            out_compares.extend(r.compare);
            out_keys.extend(r.keys);
        }
        for msg in keys.drain(..) {
            let r = descent::respond_keys(index, &msg).expect("a valid key list");
            differing += r.send.len().max(r.want.len());
        }
        turn_b = !turn_b;
    }
    differing
}

fn version_vectors(c: &mut Criterion) {
    let mut g = c.benchmark_group("version vector");
    for replicas in [3u64, 100] {
        let mut x = VersionVector::new();
        let mut y = VersionVector::new();
        for r in 0..replicas {
            for _ in 0..(r % 7 + 1) {
                x.add(x.next_dot(ReplicaId(r * 2)));
                y.add(y.next_dot(ReplicaId(r * 3)));
            }
        }
        y.add(Dot {
            replica: ReplicaId(1),
            counter: 1,
        });
        g.bench_function(format!("join {replicas} replicas"), |b| {
            b.iter_batched(
                || x.clone(),
                |mut v| {
                    v.join(black_box(&y));
                    v
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// A node of 100 members takes a datagram full of news: updates about
/// members it does not know yet.
fn membership(c: &mut Criterion) {
    let mut g = c.benchmark_group("membership");
    let from = addr(1);
    let (known, _) = gossip_packet(1);
    let base = || {
        let me = Identity::new("node-0".parse().expect("a valid name"), addr(0));
        let mut node = Node::new(Config::lan(), me, 1, Instant::ZERO).expect("a valid config");
        node.handle_packet(Instant::from_millis(1), from, Channel::Datagram, &known);
        while node.poll_event().is_some() {}
        node
    };
    let (news, messages) = gossip_packet(10_000);
    g.throughput(Throughput::Elements(messages as u64));
    g.bench_function("handle 1400-byte packet of new members", |b| {
        b.iter_batched(
            base,
            |mut node| {
                node.handle_packet(
                    Instant::from_millis(2),
                    from,
                    Channel::Datagram,
                    black_box(&news),
                );
                while node.poll_event().is_some() {}
                node
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("handle 1400-byte packet of known members", |b| {
        b.iter_batched(
            base,
            |mut node| {
                node.handle_packet(
                    Instant::from_millis(2),
                    from,
                    Channel::Datagram,
                    black_box(&known),
                );
                node
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, wire, merkle, version_vectors, membership);
criterion_main!(benches);
