//! A user-space delayer on an NFQUEUE: this kernel has no netem, so added
//! latency, jitter and per-link loss are done by holding queued packets in
//! a thread inside the host's namespace and releasing them later. The same
//! queue can keep copies of the UDP payloads that pass (a tap), which the
//! hostile scenario replays.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nfq::{Queue, Verdict};

use crate::netns::Netns;

/// What the delayer does to packets from one source.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LinkShape {
    /// Added one-way delay.
    pub delay: Duration,
    /// Uniform jitter: each packet's delay is `delay ± jitter`.
    pub jitter: Duration,
    /// Fraction of packets dropped.
    pub loss: f64,
}

/// Most packets held at once; beyond that packets pass undelayed.
const MAX_HELD: usize = 10_000;
/// Most payloads a tap keeps.
const MAX_TAPPED: usize = 512;

/// Payloads a tap copied.
pub type Tapped = Arc<Mutex<Vec<Vec<u8>>>>;

/// A running delayer; dropping it stops it (packets still held are let go).
pub struct Delayer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Packets handled.
    pub handled: Arc<AtomicU64>,
}

impl Delayer {
    /// Read NFQUEUE `queue` in `ns`, shaping packets by source address
    /// (sources not in `shapes` pass at once), copying UDP payloads into
    /// `tap` when given.
    pub fn start(
        ns: &Netns,
        queue: u16,
        shapes: HashMap<Ipv4Addr, LinkShape>,
        tap: Option<Tapped>,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let handled = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (ns, stop, handled) = (ns.clone(), Arc::clone(&stop), Arc::clone(&handled));
            std::thread::Builder::new()
                .name(format!("delayer-{}", ns.name))
                .spawn(move || {
                    let opened = ns
                        .enter()
                        .map_err(anyhow::Error::from)
                        .and_then(|()| open(queue));
                    match opened {
                        Ok(q) => {
                            let _ = ready_tx.send(Ok(()));
                            serve(q, &stop, &shapes, tap.as_ref(), &handled);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })?
        };
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .context("the delayer thread did not start")??;
        Ok(Delayer {
            stop,
            thread: Some(thread),
            handled,
        })
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open(queue: u16) -> anyhow::Result<Queue> {
    let mut q = Queue::open().context("cannot open an NFQUEUE netlink socket")?;
    q.bind(queue)
        .with_context(|| format!("cannot bind NFQUEUE {queue}"))?;
    // A full kernel queue lets packets through rather than dropping them.
    q.set_fail_open(queue, true)?;
    q.set_queue_max_len(queue, MAX_HELD as u32)?;
    q.set_nonblocking(true);
    Ok(q)
}

fn serve(
    mut q: Queue,
    stop: &AtomicBool,
    shapes: &HashMap<Ipv4Addr, LinkShape>,
    tap: Option<&Tapped>,
    handled: &AtomicU64,
) {
    let mut held: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut by_seq: HashMap<u64, nfq::Message> = HashMap::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        match q.recv() {
            Ok(mut msg) => {
                idle = false;
                handled.fetch_add(1, Ordering::Relaxed);
                let packet = msg.get_payload();
                if let Some(tap) = tap {
                    copy_udp_payload(packet, tap);
                }
                let src = source(packet);
                match src.and_then(|s| shapes.get(&s)) {
                    Some(shape) if rand::random_bool(shape.loss.clamp(0.0, 1.0)) => {
                        msg.set_verdict(Verdict::Drop);
                        let _ = q.verdict(msg);
                    }
                    Some(shape) if by_seq.len() < MAX_HELD => {
                        let jitter = shape.jitter.as_secs_f64();
                        let d = shape.delay.as_secs_f64()
                            + if jitter > 0.0 {
                                rand::random_range(-jitter..jitter)
                            } else {
                                0.0
                            };
                        let due = Instant::now() + Duration::from_secs_f64(d.max(0.0));
                        seq += 1;
                        held.push(Reverse((due, seq)));
                        by_seq.insert(seq, msg);
                    }
                    _ => {
                        msg.set_verdict(Verdict::Accept);
                        let _ = q.verdict(msg);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the NFQUEUE failed; packets pass unshaped");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let now = Instant::now();
        while let Some(Reverse((due, s))) = held.peek().copied() {
            if due > now {
                break;
            }
            held.pop();
            if let Some(mut msg) = by_seq.remove(&s) {
                msg.set_verdict(Verdict::Accept);
                let _ = q.verdict(msg);
            }
            idle = false;
        }
        if idle {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    for (_, mut msg) in by_seq.drain() {
        msg.set_verdict(Verdict::Accept);
        let _ = q.verdict(msg);
    }
}

/// The IPv4 source address of a packet.
fn source(packet: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// Keep the UDP payload of an IPv4 packet.
fn copy_udp_payload(packet: &[u8], tap: &Tapped) {
    let Some(&first) = packet.first() else { return };
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || packet.get(9) != Some(&17) {
        return;
    }
    if let Some(payload) = packet.get(ihl + 8..)
        && let Ok(mut t) = tap.lock()
        && t.len() < MAX_TAPPED
    {
        t.push(payload.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 packet from 10.77.0.11 carrying UDP with `payload`.
    fn udp_packet(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&[10, 77, 0, 11, 10, 77, 0, 10]);
        p.extend_from_slice(&[0x1f, 0x0a, 0x1f, 0x0a, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_the_source_and_taps_the_udp_payload() {
        let packet = udp_packet(b"gossip");
        assert_eq!(source(&packet), Some(Ipv4Addr::new(10, 77, 0, 11)));
        let tap = Tapped::default();
        copy_udp_payload(&packet, &tap);
        let mut tcp = packet.clone();
        tcp[9] = 6;
        copy_udp_payload(&tcp, &tap);
        copy_udp_payload(&packet[..10], &tap);
        assert_eq!(*tap.lock().unwrap(), vec![b"gossip".to_vec()]);
        assert_eq!(source(&[0x45, 0]), None);
    }

    #[test]
    fn a_tap_keeps_a_bounded_number_of_payloads() {
        let tap = Tapped::default();
        let packet = udp_packet(b"x");
        for _ in 0..MAX_TAPPED + 10 {
            copy_udp_payload(&packet, &tap);
        }
        assert_eq!(tap.lock().unwrap().len(), MAX_TAPPED);
    }
}
