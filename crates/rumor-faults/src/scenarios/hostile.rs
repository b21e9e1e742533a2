//! g. A hostile host (not a member) sends the agents malformed, oversized,
//! replayed and random packets, floods them, and abuses their stream port:
//! openings that lie about their length, frames that announce megabytes and
//! stall, garbage.
//!
//! Without authentication a node accepts any well-formed message from
//! anyone, so a mutation that still decodes is a forgery (a bit flip can
//! turn a captured write into another write or a delete), which nothing but
//! keys can stop. Such mutations are withheld (and counted) unless the
//! agents run with an encryption key (`--encrypt-key` among the agent
//! flags); replays are always sent.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rumor_proto::Config;
use rumor_proto::wire::frame::{decode_datagram_body, decode_message, split_frame};
use rumor_proto::wire::validate;

use super::{Scenario, Stage};
use crate::agent_process::GOSSIP_PORT;
use crate::delayer::{Delayer, Tapped};
use crate::firewall::Firewall;

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "hostile",
    letter: "g",
    about: "an outsider replays captured packets, sends mutated, random and oversized ones, floods UDP, and opens stalled or lying TCP streams",
    body,
};

/// Most datagrams sent in the flood.
const FLOOD_PACKETS: u64 = 400_000;
/// Stream connections that announce a large frame and stall.
const STALLED_STREAMS: usize = 270;
/// Bytes each stalled stream sends of the frame it announced.
const STALLED_BYTES: usize = 1 << 20;
/// The frame size a stalled stream announces.
const ANNOUNCED: u32 = 16 << 20;
/// Longest time spent opening stalled streams.
const STALL_PHASE: Duration = Duration::from_secs(6);
/// Write timeout of a stalled stream: a node that does not read it (its
/// budget for inbound frames is taken) must not slow the opening of more.
const STALL_WRITE: Duration = Duration::from_millis(20);
/// Connect and write timeout of the outsider's streams.
const SHORT: Duration = Duration::from_millis(300);

/// What the outsider sent.
#[derive(Debug, Default)]
struct Sent {
    replayed: u64,
    mutated: u64,
    random: u64,
    oversized: u64,
    flood: u64,
    streams: u64,
    stalled: u64,
    /// Mutations withheld because they still decoded (forgeries).
    withheld_forgeries: u64,
}

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let hosts = stage.cluster.hosts();
    let tap = Tapped::default();
    {
        let _delayer = Delayer::start(&hosts[0].ns, 1, HashMap::new(), Some(tap.clone()))?;
        Firewall::of(&hosts[0]).queue(None, Some(GOSSIP_PORT), 1)?;
        stage.hold(Duration::from_secs(3));
        Firewall::of(&hosts[0]).clear()?;
    }
    let captured: Vec<Vec<u8>> = tap.lock().map(|t| t.clone()).unwrap_or_default();
    stage.note(format!(
        "captured {} datagrams arriving at node-0",
        captured.len()
    ));
    if captured.is_empty() {
        anyhow::bail!("the tap on node-0 captured nothing; NFQUEUE did not take effect");
    }
    let targets: Vec<SocketAddr> = hosts
        .iter()
        .map(|h| SocketAddr::from((h.ip, GOSSIP_PORT)))
        .collect();
    let flood_for = (stage.options.durations.fault / 3).min(Duration::from_secs(5));
    let stall_for = stage.options.durations.fault;
    let outsider = stage.cluster.lab.outsider.ns.clone();
    let (src, t) = (stage.cluster.lab.outsider.ip, targets.clone());
    let forge = stage
        .options
        .agents
        .extra_args
        .iter()
        .any(|a| a.starts_with("--encrypt-key"));
    stage.note(format!(
        "outsider {src} attacks for about {stall_for:?}{}",
        if forge { ", forgeries included" } else { "" }
    ));
    let plan = Plan {
        flood_for,
        stall_for,
        forge,
    };
    let sent = outsider.run(move || attack(&t, &captured, &plan))??;
    stage.note(format!("outsider sent {sent:?}"));
    stage.healed()
}

/// How the outsider attacks.
struct Plan {
    /// How long the flood lasts at most.
    flood_for: Duration,
    /// How long the attack lasts (stalled streams stay open until then).
    stall_for: Duration,
    /// Whether mutations that still decode are sent too.
    forge: bool,
}

fn attack(targets: &[SocketAddr], captured: &[Vec<u8>], plan: &Plan) -> anyhow::Result<Sent> {
    let (flood_for, stall_for) = (plan.flood_for, plan.stall_for);
    let mut sent = Sent::default();
    let mutated = |p: &[u8], stream: bool, sent: &mut Sent| -> Option<Vec<u8>> {
        let m = mutate(p);
        if plan.forge || !well_formed(&m, stream) {
            Some(m)
        } else {
            sent.withheld_forgeries += 1;
            None
        }
    };
    let udp = UdpSocket::bind("0.0.0.0:0").context("outsider UDP socket")?;
    let send = |bytes: &[u8], to: &SocketAddr| udp.send_to(bytes, to).is_ok();
    let started = Instant::now();
    let deadline = started + stall_for;
    // Stalled streams first, held open while everything else goes on. A
    // node that stops reading them makes the writes time out, which is
    // fine: the phase is bounded in time.
    let mut stalled = Vec::new();
    let victim = targets[0];
    for _ in 0..STALLED_STREAMS {
        if started.elapsed() > STALL_PHASE {
            break;
        }
        let Ok(mut conn) = TcpStream::connect_timeout(&victim, SHORT) else {
            continue;
        };
        let _ = conn.set_write_timeout(Some(STALL_WRITE));
        let hello = SocketAddr::from(([10, 77, 0, 250], GOSSIP_PORT)).to_string();
        let mut buf = Vec::with_capacity(STALLED_BYTES + 64);
        buf.extend_from_slice(&(hello.len() as u16).to_be_bytes());
        buf.extend_from_slice(hello.as_bytes());
        buf.extend_from_slice(&ANNOUNCED.to_be_bytes());
        buf.resize(buf.len() + STALLED_BYTES, 0xa5);
        // A write cut short by the timeout still leaves the stream stalled.
        let _ = conn.write_all(&buf);
        stalled.push(conn);
        sent.stalled += 1;
    }
    for to in targets {
        for p in captured {
            for _ in 0..3 {
                sent.replayed += u64::from(send(p, to));
            }
            for _ in 0..20 {
                if let Some(m) = mutated(p, false, &mut sent) {
                    sent.mutated += u64::from(send(&m, to));
                }
            }
        }
        for _ in 0..2_000 {
            let len = rand::random_range(0..2_000);
            sent.random += u64::from(send(&random_bytes(len), to));
        }
        for p in captured.iter().take(10) {
            let mut big = p.clone();
            big.resize(65_000, 0);
            sent.oversized += u64::from(send(&big, to));
            sent.oversized += u64::from(send(&random_bytes(65_507), to));
        }
        let frames: Vec<Vec<u8>> = captured
            .iter()
            .take(50)
            .filter_map(|p| mutated(p, true, &mut sent))
            .collect();
        stream_abuse(to, captured, &frames, deadline, &mut sent);
    }
    let flood_start = Instant::now();
    let mut i = 0usize;
    while flood_start.elapsed() < flood_for && sent.flood < FLOOD_PACKETS {
        let to = &targets[i % targets.len()];
        let p = &captured[i % captured.len()];
        let ok = if i.is_multiple_of(2) {
            send(p, to)
        } else {
            mutated(p, false, &mut sent).is_some_and(|m| send(&m, to))
        };
        sent.flood += u64::from(ok);
        i += 1;
    }
    if let Some(rest) = stall_for.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    drop(stalled);
    Ok(sent)
}

/// Streams that lie: an opening longer than allowed, one that is not an
/// address, a frame of garbage, replayed datagrams as frames, and
/// `mutated` as frames.
fn stream_abuse(
    to: &SocketAddr,
    captured: &[Vec<u8>],
    mutated: &[Vec<u8>],
    deadline: Instant,
    sent: &mut Sent,
) {
    let hello = SocketAddr::from(([10, 77, 0, 250], GOSSIP_PORT)).to_string();
    let framed = |frame: &[u8]| {
        let mut b = (hello.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(hello.as_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        b.extend_from_slice(frame);
        b
    };
    let mut payloads = vec![
        u16::MAX.to_be_bytes().to_vec(),
        {
            let mut b = 5u16.to_be_bytes().to_vec();
            b.extend_from_slice(b"hello");
            b
        },
        framed(&random_bytes(4096)),
        random_bytes(8192),
        Vec::new(),
    ];
    payloads.extend(captured.iter().take(50).map(|p| framed(p)));
    payloads.extend(mutated.iter().map(|p| framed(p)));
    for p in payloads {
        if Instant::now() > deadline {
            return;
        }
        if let Ok(mut conn) = TcpStream::connect_timeout(to, SHORT) {
            let _ = conn.set_write_timeout(Some(SHORT));
            if conn.write_all(&p).is_ok() {
                sent.streams += 1;
            }
        }
    }
}

/// Whether a node would accept `bytes` (a datagram, or a stream frame
/// when `stream`) as well-formed messages.
fn well_formed(bytes: &[u8], stream: bool) -> bool {
    let config = Config::local();
    let Ok(frame) = split_frame(bytes, &config.cluster, 1 << 24) else {
        return false;
    };
    let messages = if stream {
        decode_message(frame.body).map(|m| vec![m])
    } else {
        decode_datagram_body(frame.body).map(|d| d.messages)
    };
    messages.is_ok_and(|ms| !ms.is_empty() && ms.iter().all(|m| validate(m, &config).is_ok()))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::fill(&mut v[..]);
    v
}

/// A copy of `p` with a few bits flipped, cut short or grown.
fn mutate(p: &[u8]) -> Vec<u8> {
    let mut v = p.to_vec();
    match rand::random_range(0..4) {
        0 => {
            for _ in 0..rand::random_range(1..4) {
                if !v.is_empty() {
                    let i = rand::random_range(0..v.len());
                    v[i] ^= 1 << rand::random_range(0..8);
                }
            }
        }
        1 => v.truncate(rand::random_range(0..=v.len())),
        2 => v.extend(random_bytes(rand::random_range(1..64))),
        _ => {
            if !v.is_empty() {
                let i = rand::random_range(0..v.len());
                v[i] = rand::random();
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use rumor_proto::wire::{Alive, Message, PacketBuilder};

    use super::*;

    #[test]
    fn tells_forgeries_from_malformed_packets() {
        let mut b = PacketBuilder::new("default", 1400).unwrap();
        b.push(&Message::Alive(Alive {
            incarnation: 3,
            node: "node-1".parse().unwrap(),
            addr: "10.77.0.11:7946".parse().unwrap(),
            tags: Default::default(),
        }))
        .unwrap();
        let packet = b.finish();
        assert!(well_formed(&packet, false));
        assert!(!well_formed(&packet[..packet.len() - 1], false));
        assert!(!well_formed(&random_bytes(64), false));
        let mut other_cluster = packet.clone();
        other_cluster[3] ^= 0x20;
        assert!(!well_formed(&other_cluster, false));
    }
}
