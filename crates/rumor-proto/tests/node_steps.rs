//! Step a few nodes by hand and check what they send and conclude.

use std::net::SocketAddr;
use std::time::Duration;

use rumor_proto::wire::frame::{decode_datagram_body, decode_message, split_frame};
use rumor_proto::wire::{Alive, Message, PacketBuilder, Suspect};
use rumor_proto::*;

fn addr(i: usize) -> SocketAddr {
    format!("127.0.0.{}:7946", i + 1).parse().unwrap()
}

fn name(i: usize) -> NodeName {
    format!("n{i}").parse().unwrap()
}

/// Nodes that deliver every transmit at once, except to nodes marked down.
struct Net {
    nodes: Vec<Node>,
    down: Vec<bool>,
    /// Partition group of each node; packets cross groups only when `None`.
    groups: Option<Vec<u8>>,
    /// One-way cuts: packets from `.0` to `.1` are lost.
    blocked: Vec<(usize, usize)>,
    now: Instant,
    events: Vec<(usize, Event)>,
    /// Size of the largest datagram sent so far.
    largest_datagram: usize,
    /// Stream frames sent so far.
    stream_frames: usize,
}

impl Net {
    fn new(n: usize, config: Config) -> Net {
        Net::seeded(n, config, 0)
    }

    /// `n` nodes whose RNGs are seeded `seed`, `seed + 1`, ...
    fn seeded(n: usize, config: Config, seed: u64) -> Net {
        let nodes = (0..n)
            .map(|i| {
                Node::new(
                    config.clone(),
                    Identity::new(name(i), addr(i)),
                    seed + i as u64,
                    Instant::ZERO,
                )
                .unwrap()
            })
            .collect();
        Net {
            nodes,
            down: vec![false; n],
            groups: None,
            blocked: Vec::new(),
            now: Instant::ZERO,
            events: Vec::new(),
            largest_datagram: 0,
            stream_frames: 0,
        }
    }

    fn deliver(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(e) = self.nodes[i].poll_event() {
                    self.events.push((i, e));
                }
                while let Some(t) = self.nodes[i].poll_transmit() {
                    any = true;
                    if t.channel == Channel::Datagram {
                        self.largest_datagram = self.largest_datagram.max(t.bytes.len());
                    } else {
                        self.stream_frames += 1;
                    }
                    let Some(j) = (0..self.nodes.len()).find(|&j| addr(j) == t.to) else {
                        continue;
                    };
                    let split = self.groups.as_ref().is_some_and(|g| g[i] != g[j])
                        || self.blocked.contains(&(i, j));
                    if !self.down[j] && !self.down[i] && !split {
                        let now = self.now;
                        self.nodes[j].handle_packet(now, addr(i), t.channel, &t.bytes);
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Advance virtual time to `until`, firing timers in order.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next = (0..self.nodes.len())
                .filter(|&i| !self.down[i])
                .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t, i)))
                .min();
            match next {
                Some((t, i)) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.nodes[i].handle_timeout(now);
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn join_all(&mut self) {
        for i in 1..self.nodes.len() {
            let now = self.now;
            self.nodes[i]
                .handle_command(
                    now,
                    Command::Join {
                        seeds: vec![addr(0)],
                    },
                )
                .unwrap();
            self.deliver();
        }
    }

    /// Run until 3 s, then take `node` down and run a minute more.
    fn crash_after_settling(&mut self, node: usize) {
        self.run_until(Instant::from_millis(3_000));
        self.down[node] = true;
        let crash = self.now;
        self.run_until(crash + Duration::from_secs(60));
    }

    fn state(&self, observer: usize, subject: usize) -> Option<MemberState> {
        self.nodes[observer].member(&name(subject)).map(|m| m.state)
    }
}

fn messages(t: &Transmit) -> Vec<Message> {
    let frame = split_frame(&t.bytes, "default", 1 << 20).unwrap();
    match t.channel {
        Channel::Datagram => decode_datagram_body(frame.body).unwrap().messages,
        Channel::Stream => vec![decode_message(frame.body).unwrap()],
    }
}

#[test]
fn join_spreads_everyone_to_everyone_without_periodic_push_pull() {
    // Rumors alone leave a residue of pairs that never heard of each other
    // when many nodes join at once; the push-pull after joining and the
    // digest comparison on acks must repair it long before any periodic
    // push-pull would (disabled here).
    let config = Config {
        push_pull_interval: Duration::ZERO,
        ..Config::local()
    };
    let n = 30;
    let mut net = Net::new(n, config);
    net.join_all();
    net.run_until(Instant::from_millis(10_000));
    for i in 0..n {
        for j in 0..n {
            assert_eq!(net.state(i, j), Some(MemberState::Alive), "n{i} about n{j}");
        }
    }
}

#[test]
fn installed_members_are_probed_like_joined_ones_without_gossip_or_events() {
    let n = 5;
    let mut net = Net::new(n, Config::local());
    let identities: Vec<Identity> = (0..n).map(|i| Identity::new(name(i), addr(i))).collect();
    for node in &mut net.nodes {
        let queued = node.queued_broadcasts();
        assert_eq!(node.install_members(Instant::ZERO, &identities), n - 1);
        assert_eq!(node.queued_broadcasts(), queued, "nothing new to gossip");
        assert!(node.poll_event().is_none(), "installing emits no events");
        assert!(node.poll_transmit().is_none(), "installing sends nothing");
        assert_eq!(node.member_table().active_count(), n);
    }
    for i in 0..n {
        for j in 0..n {
            assert_eq!(net.state(i, j), Some(MemberState::Alive), "n{i} about n{j}");
        }
    }
    // Installing again changes nothing, even with another address.
    let moved = vec![Identity::new(name(1), addr(9))];
    assert_eq!(net.nodes[0].install_members(Instant::ZERO, &moved), 0);
    assert_eq!(
        net.nodes[0].member(&name(1)).map(|m| m.socket_addr()),
        Some(addr(1))
    );
    // The installed members are probed: a crash is detected.
    net.crash_after_settling(4);
    for i in 0..4 {
        assert_eq!(net.state(i, 4), Some(MemberState::Dead), "n{i} about n4");
        for j in 0..4 {
            assert_eq!(net.state(i, j), Some(MemberState::Alive), "n{i} about n{j}");
        }
    }
}

#[test]
fn installing_skips_members_whose_tags_no_peer_would_accept() {
    let config = Config::local();
    let mut node = Node::new(
        config.clone(),
        Identity::new(name(0), addr(0)),
        0,
        Instant::ZERO,
    )
    .unwrap();
    let mut big = Identity::new(name(1), addr(1));
    big.tags
        .insert("blob".into(), "x".repeat(config.max_tags_bytes + 1));
    let mut small = Identity::new(name(2), addr(2));
    small.tags.insert("role".into(), "db".into());
    assert_eq!(node.install_members(Instant::ZERO, &[big, small]), 1);
    assert!(node.member(&name(1)).is_none());
    assert_eq!(
        node.member(&name(2)).map(|m| m.tags().get("role").cloned()),
        Some(Some("db".to_string()))
    );
}

#[test]
fn a_join_no_seed_answered_is_sent_again() {
    // The seed is unreachable when the join goes out (its request is lost,
    // as when a seed refuses connections in a burst of joins), then comes
    // back. Only the join retry can bring the two together here: no
    // periodic push-pull, and a reconnect interval far beyond the test.
    let config = Config {
        push_pull_interval: Duration::ZERO,
        reconnect_interval: Duration::from_secs(1_000),
        ..Config::lan()
    };
    let mut net = Net::new(2, config);
    net.down[0] = true;
    net.join_all();
    net.run_until(Instant::from_millis(3_000));
    assert_eq!(net.state(1, 0), None, "the seed was unreachable");
    net.down[0] = false;
    net.run_until(Instant::from_millis(12_000));
    assert_eq!(net.state(1, 0), Some(MemberState::Alive));
    assert_eq!(net.state(0, 1), Some(MemberState::Alive));
}

#[test]
fn crashed_node_is_suspected_then_declared_dead() {
    let mut net = Net::new(5, Config::local());
    net.join_all();
    net.crash_after_settling(4);
    for i in 0..4 {
        assert_eq!(net.state(i, 4), Some(MemberState::Dead), "n{i} about n4");
    }
    let kinds: Vec<_> = net
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Member(m) if m.name == name(4) => Some(m.kind),
            _ => None,
        })
        .collect();
    assert!(kinds.contains(&MemberEventKind::Suspected));
    assert!(kinds.contains(&MemberEventKind::Failed));
    assert!(
        net.nodes
            .iter()
            .take(4)
            .all(|n| n.stats().indirect_probes > 0 || n.stats().probes > 0)
    );
}

#[test]
fn suspected_node_refutes_with_higher_incarnation() {
    let mut n = Net::new(1, Config::lan());
    let me = &mut n.nodes[0];
    let mut b = PacketBuilder::new("default", 1400).unwrap();
    let s = Suspect {
        incarnation: 0,
        node: name(0),
        from: name(7),
    };
    b.push(&Message::Suspect(s)).unwrap();
    me.handle_packet(
        Instant::from_millis(1),
        addr(7),
        Channel::Datagram,
        &b.finish(),
    );
    assert_eq!(me.local().incarnation, 1);
    assert_eq!(me.poll_event(), Some(Event::Refuted { incarnation: 1 }));
    assert_eq!(me.stats().refutations, 1);
    assert_eq!(
        me.health_score(),
        1,
        "refuting raises the local health score"
    );
}

fn suspect_packet(subject: usize, accuser: usize) -> Vec<u8> {
    let mut b = PacketBuilder::new("default", 1400).unwrap();
    b.push(&Message::Suspect(Suspect {
        incarnation: 0,
        node: name(subject),
        from: name(accuser),
    }))
    .unwrap();
    b.finish()
}

#[test]
fn stale_accusation_makes_the_node_announce_itself_again() {
    // n0 refutes a suspicion, but its refutation never reaches n1 (as when
    // n1 stops hearing n0 for a while). Once n1 suspects n0 at the old
    // incarnation and tells it so, n0 must announce itself again: without
    // that n1 declares a live, reachable node dead.
    let config = Config {
        push_pull_interval: Duration::ZERO,
        ..Config::local()
    };
    let mut net = Net::new(2, config);
    net.join_all();
    net.run_until(Instant::from_millis(3_000));
    net.blocked.push((0, 1));
    let queued_before = net.nodes[0].queued_broadcasts();
    let now = net.now;
    net.nodes[0].handle_packet(now, addr(1), Channel::Datagram, &suspect_packet(0, 1));
    assert_eq!(net.nodes[0].local().incarnation, 1);
    net.run_until(now + Duration::from_millis(500));
    assert_eq!(
        net.nodes[0].queued_broadcasts(),
        queued_before,
        "the refutation was spent"
    );
    net.blocked.clear();
    let now = net.now;
    net.nodes[1].handle_packet(now, addr(1), Channel::Datagram, &suspect_packet(0, 1));
    assert_eq!(net.state(1, 0), Some(MemberState::Suspect));
    // A few gossip rounds: n1 tells n0, n0 answers. Far less than a probe
    // round, so no digest comparison on acks can be what repairs it.
    net.run_until(now + Duration::from_millis(400));
    assert_eq!(
        net.state(1, 0),
        Some(MemberState::Alive),
        "n1 must learn of n0's refutation"
    );
    assert_eq!(
        net.nodes[1].member(&name(0)).map(|m| m.incarnation),
        Some(1)
    );
    assert_eq!(
        net.nodes[0].stats().refutations,
        1,
        "announcing again does not raise the incarnation"
    );
}

#[test]
fn buddy_system_puts_the_suspicion_in_the_probe() {
    let mut net = Net::new(3, Config::lan());
    net.join_all();
    // n0 hears that n1 is suspected.
    let mut b = PacketBuilder::new("default", 1400).unwrap();
    b.push(&Message::Suspect(Suspect {
        incarnation: 0,
        node: name(1),
        from: name(2),
    }))
    .unwrap();
    let now = net.now;
    net.nodes[0].handle_packet(now, addr(2), Channel::Datagram, &b.finish());
    assert_eq!(net.state(0, 1), Some(MemberState::Suspect));
    // Run n0's timers until it probes n1; the ping must carry the suspicion.
    let mut t = now;
    loop {
        t += Duration::from_millis(100);
        net.nodes[0].handle_timeout(t);
        let mut found = None;
        while let Some(tx) = net.nodes[0].poll_transmit() {
            let msgs = messages(&tx);
            if tx.to == addr(1) && msgs.iter().any(|m| matches!(m, Message::Ping(_))) {
                found = Some(msgs);
            }
        }
        if let Some(msgs) = found {
            assert!(
                msgs.iter()
                    .any(|m| matches!(m, Message::Suspect(s) if s.node == name(1))),
                "the probe must carry the suspicion: {msgs:?}"
            );
            break;
        }
        assert!(t < now + Duration::from_secs(10), "n0 never probed n1");
    }
}

#[test]
fn same_name_on_new_address_is_accepted_at_higher_incarnation() {
    let mut net = Net::new(2, Config::lan());
    net.join_all();
    let new_addr: SocketAddr = "127.0.0.99:7000".parse().unwrap();
    let alive = |incarnation| {
        let mut b = PacketBuilder::new("default", 1400).unwrap();
        b.push(&Message::Alive(Alive {
            incarnation,
            node: name(1),
            addr: new_addr,
            tags: Tags::new(),
        }))
        .unwrap();
        b.finish()
    };
    let now = net.now;
    net.nodes[0].handle_packet(now, new_addr, Channel::Datagram, &alive(0));
    assert_eq!(
        net.nodes[0].member(&name(1)).unwrap().addr,
        addr(1),
        "same incarnation: ignored"
    );
    net.nodes[0].handle_packet(now, new_addr, Channel::Datagram, &alive(5));
    let m = net.nodes[0].member(&name(1)).unwrap();
    assert_eq!(
        (m.socket_addr(), m.incarnation, m.state),
        (new_addr, 5, MemberState::Alive)
    );
}

#[test]
fn tag_change_propagates_as_update() {
    let mut net = Net::new(3, Config::local());
    net.join_all();
    net.run_until(Instant::from_millis(3_000));
    let mut tags = Tags::new();
    tags.insert("role".into(), "db".into());
    let now = net.now;
    net.nodes[2]
        .handle_command(now, Command::SetTags(tags.clone()))
        .unwrap();
    net.run_until(now + Duration::from_secs(3));
    for i in 0..2 {
        assert_eq!(net.nodes[i].member(&name(2)).unwrap().tags(), &tags);
    }
    assert!(net.events.iter().any(|(i, e)| *i == 0
        && matches!(e, Event::Member(m) if m.kind == MemberEventKind::Updated && m.name == name(2))));
}

#[test]
fn broadcast_queue_holds_one_update_per_member() {
    let mut n = Net::new(1, Config::lan());
    let me = &mut n.nodes[0];
    for inc in 1..200u32 {
        let mut b = PacketBuilder::new("default", 1400).unwrap();
        for p in 0..10 {
            let node = format!("p{p}").parse().unwrap();
            b.push(&Message::Alive(Alive {
                incarnation: inc,
                node,
                addr: addr(p + 10),
                tags: Tags::new(),
            }))
            .unwrap();
        }
        me.handle_packet(
            Instant::from_millis(inc as u64),
            addr(10),
            Channel::Datagram,
            &b.finish(),
        );
    }
    assert!(
        me.queued_broadcasts() <= 11,
        "queue holds {} items",
        me.queued_broadcasts()
    );
}

#[test]
fn graceful_leave_is_not_a_failure() {
    let mut net = Net::new(4, Config::local());
    net.join_all();
    net.run_until(Instant::from_millis(3_000));
    let now = net.now;
    net.nodes[3].handle_command(now, Command::Leave).unwrap();
    net.deliver();
    net.run_until(now + Duration::from_secs(2));
    net.down[3] = true;
    net.run_until(now + Duration::from_secs(60));
    for i in 0..3 {
        assert_eq!(net.state(i, 3), Some(MemberState::Left), "n{i} about n3");
    }
    assert!(
        !net.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Member(m) if m.kind == MemberEventKind::Failed))
    );
}

/// Split six nodes 4/2 from 20 s to 120 s; `at_heal` is what each side must
/// think of the other just before the heal; all must be alive 60 s after.
fn partition_heals(config: Config, at_heal: Option<MemberState>) {
    let mut net = Net::new(6, config);
    net.join_all();
    net.run_until(Instant::from_millis(20_000));
    net.groups = Some(vec![0, 0, 0, 0, 1, 1]);
    net.run_until(Instant::from_millis(120_000));
    assert_eq!(net.state(0, 4), at_heal, "n0 about n4 at the heal");
    assert_eq!(net.state(4, 0), at_heal, "n4 about n0 at the heal");
    net.groups = None;
    net.run_until(Instant::from_millis(180_000));
    for i in 0..6 {
        for j in 0..6 {
            assert_eq!(
                net.state(i, j),
                Some(MemberState::Alive),
                "n{i} about n{j} after the heal"
            );
        }
    }
}

#[test]
fn partition_outlasting_reaping_heals_by_itself() {
    let config = Config {
        dead_reap_after: Duration::from_secs(20),
        reap_interval: Duration::from_secs(5),
        reconnect_interval: Duration::from_secs(5),
        ..Config::local()
    };
    // Each side declared the other dead and reaped it.
    partition_heals(config, None);
}

#[test]
fn partition_outlasting_gossip_to_the_dead_heals_by_itself() {
    let config = Config {
        reconnect_interval: Duration::from_secs(5),
        ..Config::local()
    };
    partition_heals(config, Some(MemberState::Dead));
}

fn broadcast_reaches_everyone_once(mode: Mode, termination: Termination) {
    let mut config = Config::local();
    config.dissemination.mode = mode;
    config.dissemination.termination = termination;
    let n = 12;
    let mut net = Net::new(n, config);
    net.join_all();
    net.run_until(Instant::from_millis(5_000));
    for (origin, name) in [(3, "deploy"), (7, "restart")] {
        let now = net.now;
        net.nodes[origin]
            .handle_command(
                now,
                Command::Broadcast {
                    name: name.into(),
                    payload: b"v1".to_vec(),
                    priority: Priority::Normal,
                },
            )
            .unwrap();
        net.deliver();
    }
    let now = net.now;
    net.run_until(now + Duration::from_secs(10));
    for i in 0..n {
        let got: Vec<&UserEvent> = net
            .events
            .iter()
            .filter_map(|(j, e)| match e {
                Event::UserEvent(u) if *j == i => Some(u),
                _ => None,
            })
            .collect();
        let mut names: Vec<&str> = got.iter().map(|u| u.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["deploy", "restart"],
            "{mode}/{termination}: n{i} got {names:?}"
        );
    }
}

#[test]
fn datagrams_leave_room_for_the_transport_overhead() {
    // Enough events to fill every gossip packet to the brim.
    let run = |transport_overhead: usize| {
        let config = Config {
            packet_budget: 700,
            max_tags_bytes: 64,
            transport_overhead,
            ..Config::local()
        };
        let mut net = Net::new(4, config);
        net.join_all();
        for i in 0..40u8 {
            let now = net.now;
            let cmd = Command::Broadcast {
                name: format!("e{i}"),
                payload: vec![i; 120],
                priority: Priority::Normal,
            };
            net.nodes[0].handle_command(now, cmd).unwrap();
            net.deliver();
        }
        net.run_until(Instant::from_millis(3_000));
        net.largest_datagram
    };
    let plain = run(0);
    let wrapped = run(150);
    assert!(plain > 550, "packets were not full ({plain} bytes)");
    assert!(plain <= 700, "{plain} bytes exceed the budget");
    assert!(
        wrapped <= 550,
        "{wrapped} bytes leave no room for 150 of overhead"
    );
}

#[test]
fn every_mode_and_termination_delivers_each_event_exactly_once() {
    for mode in [Mode::Push, Mode::Pull, Mode::PushPull] {
        for termination in [
            Termination::FeedbackCounter,
            Termination::FeedbackCoin,
            Termination::BlindCounter,
            Termination::BlindCoin,
            Termination::TransmitLimit,
        ] {
            broadcast_reaches_everyone_once(mode, termination);
        }
    }
}

#[test]
fn events_carry_lamport_order_and_bad_broadcasts_are_refused() {
    let mut net = Net::new(2, Config::local());
    net.join_all();
    let now = net.now;
    for name in ["a", "b"] {
        net.nodes[0]
            .handle_command(
                now,
                Command::Broadcast {
                    name: name.into(),
                    payload: vec![],
                    priority: Priority::High,
                },
            )
            .unwrap();
    }
    net.run_until(now + Duration::from_secs(5));
    let ltimes: Vec<(String, u64)> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::UserEvent(u) if *i == 1 => Some((u.name.clone(), u.ltime)),
            _ => None,
        })
        .collect();
    assert_eq!(ltimes, [("a".to_string(), 1), ("b".to_string(), 2)]);
    assert!(
        net.nodes[1].dissemination().clock() >= 2,
        "the receiver's clock witnesses the sender's"
    );
    let big = vec![0u8; Config::local().dissemination.max_payload + 1];
    let err = net.nodes[0].handle_command(
        now,
        Command::Broadcast {
            name: "x".into(),
            payload: big,
            priority: Priority::Normal,
        },
    );
    assert!(
        matches!(err, Err(NodeError::EventPayload { .. })),
        "{err:?}"
    );
}

#[test]
fn bandwidth_budget_holds_and_urgent_events_go_first() {
    let mut config = Config::local();
    config.dissemination.mode = Mode::Push;
    config.dissemination.termination = Termination::BlindCounter;
    config.dissemination.k = 1;
    config.dissemination.anti_entropy = false;
    config.dissemination.bandwidth = Some(4_000);
    let mut net = Net::new(2, config);
    net.join_all();
    net.run_until(Instant::from_millis(3_000));
    let start = net.now;
    let sent_before = net.nodes[0].stats().bytes_sent;
    for i in 0..40u32 {
        let priority = if i % 10 == 9 {
            Priority::Critical
        } else {
            Priority::Normal
        };
        let cmd = Command::Broadcast {
            name: format!("e{i}"),
            payload: vec![7; 400],
            priority,
        };
        net.nodes[0].handle_command(start, cmd).unwrap();
    }
    let secs = 10;
    net.run_until(start + Duration::from_secs(secs));
    let sent = net.nodes[0].stats().bytes_sent - sent_before;
    // One second of budget may be banked at the start.
    assert!(
        sent <= 4_000 * (secs + 1),
        "sent {sent} bytes in {secs} s on a 4000 B/s budget"
    );
    let stats = net.nodes[0].stats();
    assert!(
        stats.rumors_deferred > 0 && stats.rumor_wait_ms_max > 0,
        "{stats:?}"
    );
    let order: Vec<(String, Priority)> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::UserEvent(u) if *i == 1 => Some((u.name.clone(), u.priority)),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 40, "every event arrives in the end: {order:?}");
    let first_normal = order
        .iter()
        .position(|(_, p)| *p == Priority::Normal)
        .unwrap();
    let last_critical = order
        .iter()
        .rposition(|(_, p)| *p == Priority::Critical)
        .unwrap();
    assert!(
        last_critical < first_normal,
        "critical events must overtake normal ones: {order:?}"
    );
}

#[test]
fn adaptive_fanout_spends_more_on_young_rumors() {
    let mut config = Config::local();
    config.dissemination.mode = Mode::Push;
    config.dissemination.termination = Termination::FeedbackCounter;
    config.dissemination.k = 100;
    config.dissemination.adaptive_fanout = true;
    // Rounds only: the eager first push is tested on its own.
    config.dissemination.eager_push = None;
    let fanout = config.dissemination.fanout as u64;
    let interval = config.dissemination.interval;
    let mut net = Net::new(20, config);
    net.join_all();
    net.run_until(Instant::from_millis(5_000));
    let start = net.now;
    let cmd = Command::Broadcast {
        name: "young".into(),
        payload: vec![],
        priority: Priority::Normal,
    };
    net.nodes[0].handle_command(start, cmd).unwrap();
    // The origin's first round goes to twice the fanout, its next to the fanout.
    let mut sent = Vec::new();
    let mut t = start;
    while sent.len() < 3 {
        let before = net.nodes[0].stats().rumors_sent;
        t += interval;
        net.run_until(t);
        let d = net.nodes[0].stats().rumors_sent - before;
        if d > 0 || !sent.is_empty() {
            sent.push(d);
        }
    }
    assert_eq!(
        sent,
        [2 * fanout, fanout, (fanout / 2).max(1)],
        "sends per round at the origin"
    );
    net.run_until(t + Duration::from_secs(5));
    let got = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::UserEvent(u) if u.name == "young"))
        .count();
    assert_eq!(got, 20, "every node delivers it once");
}

#[test]
fn eager_push_sends_a_new_rumor_before_the_next_round() {
    let mut config = Config::local();
    config.dissemination.mode = Mode::Push;
    config.dissemination.termination = Termination::FeedbackCounter;
    let delay = Duration::from_millis(5);
    config.dissemination.eager_push = Some(delay);
    let interval = config.dissemination.interval;
    assert!(interval > delay * 20);
    // Rumor mongering covers most of the cluster, not surely all of it, in
    // its first pushes: whoever it misses gets it from a later round.
    for seed in (0..10).map(|k| k * 100) {
        let mut net = Net::seeded(20, config.clone(), seed);
        net.join_all();
        net.run_until(Instant::from_millis(5_000));
        let start = net.now;
        let before = net.nodes[0].stats().rumors_sent;
        let cmd = Command::Broadcast {
            name: "eager".into(),
            payload: vec![],
            priority: Priority::Normal,
        };
        net.nodes[0].handle_command(start, cmd).unwrap();
        let delivered = |net: &Net| {
            net.events
                .iter()
                .filter(|(_, e)| matches!(e, Event::UserEvent(u) if u.name == "eager"))
                .count()
        };
        // The origin's first push goes out after the eager delay, not at
        // its next round, and each hop forwards at once: a fifth of a round
        // later nearly the whole cluster has the event. Pushing only at
        // rounds, a fifth of a round holds the origin's first round with
        // one chance in five, and no second hop at all.
        net.run_until(start + delay);
        assert_eq!(
            net.nodes[0].stats().rumors_sent - before,
            config.dissemination.fanout as u64,
            "seed {seed}: the origin pushed to the fanout at once"
        );
        net.run_until(start + interval / 5);
        let early = delivered(&net);
        assert!(
            early >= 16,
            "seed {seed}: only {early} of 20 nodes delivered it within a fifth of a round"
        );
        net.run_until(start + interval * 2);
        assert_eq!(delivered(&net), 20, "seed {seed}: every node delivered it");
    }
}

#[test]
fn a_push_node_runs_dissemination_rounds_only_while_it_holds_rumors() {
    let mut config = Config::lan();
    assert_eq!(config.dissemination.mode, Mode::Push);
    config.dissemination.retention = Duration::from_secs(5);
    let interval = config.dissemination.interval;
    let mut net = Net::new(5, config);
    net.join_all();
    net.run_until(Instant::from_millis(10_000));
    let rounds =
        |net: &Net| -> Vec<u64> { net.nodes.iter().map(|n| n.stats().rumor_rounds).collect() };
    assert_eq!(rounds(&net), vec![0; 5], "no rumor, no round");

    let start = net.now;
    let cmd = Command::Broadcast {
        name: "e".into(),
        payload: vec![],
        priority: Priority::Normal,
    };
    net.nodes[0].handle_command(start, cmd).unwrap();
    net.run_until(start + Duration::from_secs(2));
    let busy = rounds(&net);
    // Two seconds of holding the rumor: about ten rounds each.
    let ticks = (Duration::from_secs(2).as_nanos() / interval.as_nanos()) as u64;
    assert!(
        busy.iter().all(|&r| r + 2 >= ticks),
        "every holder runs its rounds again: {busy:?}, about {ticks} each"
    );

    // The rumor expires after the retention time, and the rounds stop.
    net.run_until(start + Duration::from_secs(10));
    let after_expiry = rounds(&net);
    net.run_until(start + Duration::from_secs(20));
    assert_eq!(
        rounds(&net),
        after_expiry,
        "rounds stop once nothing is held"
    );
}

#[test]
fn a_settled_cluster_skips_the_periodic_push_pull() {
    let mut config = Config::lan();
    config.push_pull_interval = Duration::from_secs(5);
    let mut net = Net::new(5, config.clone());
    net.join_all();
    net.run_until(Instant::from_millis(20_000));
    let frames = net.stream_frames;
    let skipped = |net: &Net| -> Vec<u64> {
        net.nodes
            .iter()
            .map(|n| n.stats().push_pulls_skipped)
            .collect()
    };
    let before = skipped(&net);
    net.run_until(Instant::from_millis(60_000));
    assert_eq!(
        net.stream_frames, frames,
        "views that agree exchange no full state"
    );
    let after = skipped(&net);
    // Eight periods of 5 s in 40 s, each skipped on every node.
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a - b >= 7, "node {i} skipped {} periodic push-pulls", a - b);
    }
    for i in 0..5 {
        for j in 0..5 {
            assert_eq!(
                net.state(i, j),
                Some(MemberState::Alive),
                "{i}'s view of {j}"
            );
        }
    }
}
