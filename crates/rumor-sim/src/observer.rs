//! What every node believes about every other, tracked from the events the
//! nodes emit, and the metrics computed from it incrementally: join
//! convergence, failure detection times, false positives.
//!
//! A node is *live* from its start until it crashes or leaves (a slow, even
//! frozen, node is live). Views are kept as one byte per (observer, subject)
//! pair, so 10,000 nodes take 100 MB; every event costs O(1), and only
//! changes of liveness (starts, crashes, leaves) cost O(n).

use rumor_proto::{Instant, MemberEventKind, MemberState};

use crate::NodeId;

/// Compact view codes.
const UNKNOWN: u8 = 0;
const ALIVE: u8 = 1;
const SUSPECT: u8 = 2;
const DEAD: u8 = 3;
const LEFT: u8 = 4;
const REAPED_DEAD: u8 = 5;
const REAPED_LEFT: u8 = 6;

fn code(kind: MemberEventKind, state: MemberState) -> u8 {
    match (kind, state) {
        (MemberEventKind::Reaped, MemberState::Dead) => REAPED_DEAD,
        (MemberEventKind::Reaped, _) => REAPED_LEFT,
        (_, MemberState::Alive) => ALIVE,
        (_, MemberState::Suspect) => SUSPECT,
        (_, MemberState::Dead) => DEAD,
        (_, MemberState::Left) => LEFT,
    }
}

/// Dead, or reaped after being dead.
fn is_dead(code: u8) -> bool {
    matches!(code, DEAD | REAPED_DEAD)
}

/// Alive or suspect: still believed a member.
fn is_active(code: u8) -> bool {
    matches!(code, ALIVE | SUSPECT)
}

/// The story of one crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The node that crashed.
    pub node: NodeId,
    /// When it crashed.
    pub crashed_at: Instant,
    /// When no live node that was running at the crash listed it as alive
    /// or suspect any more, and at least one listed it as dead: every node
    /// that knew it had declared it dead. `None` until then.
    pub detected_at: Option<Instant>,
    /// When it was restarted, if it was before detection completed (its
    /// tracking then stops).
    pub restarted_at: Option<Instant>,
}

/// A crash whose detection is still in progress.
#[derive(Clone, Debug)]
struct Tracking {
    /// Index into `detections`.
    record: usize,
    /// Counted observers (live, running since before the crash) that list
    /// the node as alive or suspect.
    active: usize,
    /// Counted observers that list it as dead.
    dead: usize,
}

/// Every node's view of every other, and the metrics derived from them.
#[derive(Debug, Default)]
pub struct Observer {
    /// `rows[i][j]`: observer `i`'s view of `j`, grown on demand.
    rows: Vec<Vec<u8>>,
    live: Vec<bool>,
    /// When each node last started (or restarted).
    started_at: Vec<Option<Instant>>,
    /// Nodes added but not yet started.
    pending_starts: usize,
    live_count: usize,
    /// For each live observer: live nodes other than itself it lists as alive.
    alive_live: Vec<u32>,
    /// Sum over live observers of the live nodes they do not list as alive.
    deficit: u64,
    join_converged_at: Option<Instant>,
    converged_since: Option<Instant>,
    detections: Vec<Detection>,
    /// Crashes being tracked, by crashed node.
    tracking: Vec<Option<Tracking>>,
    tracked: Vec<NodeId>,
    false_positives: u64,
    false_suspicions: u64,
    falsely_declared: Vec<bool>,
    falsely_declared_count: usize,
}

impl Observer {
    /// Observer `i`'s view of `j`, raw.
    fn code(&self, i: NodeId, j: NodeId) -> u8 {
        self.rows
            .get(i)
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(UNKNOWN)
    }

    /// What node `observer` believes about `subject`: `None` when it does not
    /// know it, has reaped it, or when `observer == subject`.
    pub fn view(&self, observer: NodeId, subject: NodeId) -> Option<MemberState> {
        match self.code(observer, subject) {
            ALIVE => Some(MemberState::Alive),
            SUSPECT => Some(MemberState::Suspect),
            DEAD => Some(MemberState::Dead),
            LEFT => Some(MemberState::Left),
            _ => None,
        }
    }

    /// Whether `node` is live: started, not crashed, not left.
    pub fn is_live(&self, node: NodeId) -> bool {
        self.live.get(node).copied().unwrap_or(false)
    }

    /// Number of live nodes.
    pub fn live_count(&self) -> usize {
        self.live_count
    }

    /// The first instant, once every node had started, at which every live
    /// node listed every other live node as alive.
    pub fn join_converged_at(&self) -> Option<Instant> {
        self.join_converged_at
    }

    /// Whether every live node lists every other live node as alive now.
    pub fn is_converged(&self) -> bool {
        self.live_count > 0 && self.deficit == 0
    }

    /// Since when [`Observer::is_converged`] has held, if it holds.
    pub fn converged_since(&self) -> Option<Instant> {
        self.converged_since
    }

    /// Every crash so far, in order.
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }

    /// `Failed` events about a live node by an observer not partitioned from
    /// it.
    pub fn false_positives(&self) -> u64 {
        self.false_positives
    }

    /// `Suspected` events about a live node by an observer not partitioned
    /// from it.
    pub fn false_suspicions(&self) -> u64 {
        self.false_suspicions
    }

    /// Distinct nodes that some observer falsely declared dead.
    pub fn falsely_declared_nodes(&self) -> usize {
        self.falsely_declared_count
    }

    /// Crashed nodes, not restarted, that some live node still lists as
    /// alive or suspect.
    pub fn undetected(&self) -> Vec<NodeId> {
        self.tracked
            .iter()
            .copied()
            .filter(|&j| (0..self.live.len()).any(|i| self.live[i] && is_active(self.code(i, j))))
            .collect()
    }

    /// A node was added (it will start later).
    pub(crate) fn node_added(&mut self) -> NodeId {
        let id = self.live.len();
        self.rows.push(Vec::new());
        self.live.push(false);
        self.started_at.push(None);
        self.alive_live.push(0);
        self.tracking.push(None);
        self.falsely_declared.push(false);
        self.pending_starts += 1;
        id
    }

    /// Node `j` started for the first time.
    pub(crate) fn node_started(&mut self, j: NodeId, now: Instant) {
        self.pending_starts = self.pending_starts.saturating_sub(1);
        self.set_live(j, true, now);
    }

    /// Node `j`, live until now, crashed: start tracking its detection.
    pub(crate) fn node_crashed(&mut self, j: NodeId, now: Instant) {
        self.set_live(j, false, now);
        let mut t = Tracking {
            record: self.detections.len(),
            active: 0,
            dead: 0,
        };
        for i in 0..self.live.len() {
            if self.counts_for(i, now) {
                let code = self.code(i, j);
                t.active += usize::from(is_active(code));
                t.dead += usize::from(is_dead(code));
            }
        }
        self.detections.push(Detection {
            node: j,
            crashed_at: now,
            detected_at: None,
            restarted_at: None,
        });
        self.tracking[j] = Some(t);
        self.tracked.push(j);
        self.check_detected(j, now);
    }

    /// Node `j`, live until now, left the cluster.
    pub(crate) fn node_left(&mut self, j: NodeId, now: Instant) {
        self.set_live(j, false, now);
    }

    /// Node `j`, crashed or gone, started again with an empty view.
    pub(crate) fn node_restarted(&mut self, j: NodeId, now: Instant) {
        if let Some(t) = self.tracking[j].take() {
            self.detections[t.record].restarted_at = Some(now);
            self.tracked.retain(|&k| k != j);
        }
        self.rows[j].clear();
        self.set_live(j, true, now);
    }

    /// Observer `i` counts towards the detection of a crash at `crashed_at`
    /// if it is live and was already running then.
    fn counts_for(&self, i: NodeId, crashed_at: Instant) -> bool {
        self.live[i] && self.started_at[i].is_some_and(|s| s < crashed_at)
    }

    fn set_live(&mut self, j: NodeId, live: bool, now: Instant) {
        if self.live[j] == live {
            return;
        }
        let was_started = self.started_at[j].is_some();
        // Live observers that list j as alive gain or lose one alive live
        // node. Nobody can know a node before its first start.
        let mut seen = 0u64;
        if was_started {
            for i in 0..self.live.len() {
                if i != j && self.live[i] && self.code(i, j) == ALIVE {
                    seen += 1;
                    if live {
                        self.alive_live[i] += 1;
                    } else {
                        self.alive_live[i] -= 1;
                    }
                }
            }
        }
        let others = self.live_count as u64; // live nodes other than j, before
        if live {
            self.started_at[j] = Some(now);
            self.live[j] = true;
            self.live_count += 1;
            let row = &self.rows[j];
            let own = (0..row.len())
                .filter(|&k| k != j && self.live[k] && row[k] == ALIVE)
                .count() as u32;
            self.alive_live[j] = own;
            // Every other live observer needs one more alive node, minus those
            // that already list j; j itself misses those it does not list.
            self.deficit = self.deficit + others - seen + (others - u64::from(own));
        } else {
            let others = others - 1;
            let own = u64::from(self.alive_live[j]);
            self.deficit = self.deficit + seen - (others - own) - others;
            self.live[j] = false;
            self.live_count -= 1;
            self.alive_live[j] = 0;
            // An observer leaving the live set stops counting for detections.
            for k in self.tracked.clone() {
                let crashed_at = self.detection_start(k);
                let code = self.code(j, k);
                if self.started_at[j].is_some_and(|s| s < crashed_at)
                    && let Some(t) = self.tracking[k].as_mut()
                {
                    t.active -= usize::from(is_active(code));
                    t.dead -= usize::from(is_dead(code));
                }
                self.check_detected(k, now);
            }
        }
        self.update_convergence(now);
    }

    fn detection_start(&self, k: NodeId) -> Instant {
        self.tracking[k]
            .as_ref()
            .map_or(Instant::ZERO, |t| self.detections[t.record].crashed_at)
    }

    fn check_detected(&mut self, k: NodeId, now: Instant) {
        let Some(t) = &self.tracking[k] else { return };
        if t.active == 0 && t.dead > 0 {
            let record = t.record;
            self.detections[record].detected_at = Some(now);
            self.tracking[k] = None;
            self.tracked.retain(|&n| n != k);
        }
    }

    fn update_convergence(&mut self, now: Instant) {
        if self.is_converged() {
            if self.converged_since.is_none() {
                self.converged_since = Some(now);
            }
            if self.pending_starts == 0 && self.join_converged_at.is_none() {
                self.join_converged_at = Some(now);
            }
        } else {
            self.converged_since = None;
        }
    }

    /// Observer `i` lists every node of `ids` as alive from now on, as if
    /// it had reported each of them joining (a cluster that starts formed).
    pub(crate) fn joined_all(&mut self, now: Instant, i: NodeId, ids: &[NodeId]) {
        if let Some(&last) = ids.iter().max() {
            let row = &mut self.rows[i];
            row.reserve_exact((last + 1).saturating_sub(row.len()));
        }
        for &j in ids {
            self.member_event(
                now,
                i,
                j,
                MemberEventKind::Joined,
                MemberState::Alive,
                || false,
            );
        }
    }

    /// Observer `i` reported a member event about `j`. `separated` tells
    /// whether a partition cuts `i` and `j` apart now; it is asked only when
    /// the event is a suspicion or failure of a live node.
    pub(crate) fn member_event(
        &mut self,
        now: Instant,
        i: NodeId,
        j: NodeId,
        kind: MemberEventKind,
        state: MemberState,
        separated: impl FnOnce() -> bool,
    ) {
        if i == j {
            return;
        }
        let new = code(kind, state);
        let old = self.code(i, j);
        if matches!(kind, MemberEventKind::Failed | MemberEventKind::Suspected)
            && self.live[j]
            && !separated()
        {
            if kind == MemberEventKind::Failed {
                self.false_positives += 1;
                if !self.falsely_declared[j] {
                    self.falsely_declared[j] = true;
                    self.falsely_declared_count += 1;
                }
            } else {
                self.false_suspicions += 1;
            }
        }
        if old == new {
            return;
        }
        let row = &mut self.rows[i];
        if row.len() <= j {
            row.resize(j + 1, UNKNOWN);
        }
        row[j] = new;
        if self.live[i] && self.live[j] && (old == ALIVE) != (new == ALIVE) {
            if new == ALIVE {
                self.alive_live[i] += 1;
                self.deficit -= 1;
            } else {
                self.alive_live[i] -= 1;
                self.deficit += 1;
            }
            self.update_convergence(now);
        }
        if self.tracking[j].is_some() {
            let crashed_at = self.detection_start(j);
            if self.counts_for(i, crashed_at)
                && let Some(t) = self.tracking[j].as_mut()
            {
                t.active = t.active + usize::from(is_active(new)) - usize::from(is_active(old));
                t.dead = t.dead + usize::from(is_dead(new)) - usize::from(is_dead(old));
                self.check_detected(j, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberEventKind::*;
    use MemberState::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn observer(n: usize) -> Observer {
        let mut o = Observer::default();
        for _ in 0..n {
            o.node_added();
        }
        o
    }

    fn see_all_alive(o: &mut Observer, nodes: &[NodeId], now: Instant) {
        for &i in nodes {
            for &j in nodes {
                o.member_event(now, i, j, Joined, Alive, || false);
            }
        }
    }

    #[test]
    fn join_convergence_waits_for_every_start_and_every_view() {
        let mut o = observer(3);
        o.node_started(0, t(0));
        assert!(o.is_converged(), "a single node is converged with itself");
        assert_eq!(o.join_converged_at(), None, "two nodes have not started");
        o.node_started(1, t(1));
        o.node_started(2, t(2));
        assert!(!o.is_converged());
        see_all_alive(&mut o, &[0, 1], t(3));
        o.member_event(t(4), 2, 0, Joined, Alive, || false);
        o.member_event(t(4), 2, 1, Joined, Alive, || false);
        o.member_event(t(5), 0, 2, Joined, Alive, || false);
        assert!(!o.is_converged());
        o.member_event(t(6), 1, 2, Joined, Alive, || false);
        assert_eq!(o.join_converged_at(), Some(t(6)));
        o.member_event(t(7), 1, 2, Suspected, Suspect, || false);
        assert!(!o.is_converged());
        assert_eq!(o.false_suspicions(), 1);
        o.member_event(t(8), 1, 2, Recovered, Alive, || false);
        assert_eq!(o.converged_since(), Some(t(8)));
        assert_eq!(o.join_converged_at(), Some(t(6)), "first time only");
    }

    #[test]
    fn crash_detection_and_false_positives() {
        let mut o = observer(4);
        for i in 0..4 {
            o.node_started(i, t(0));
        }
        see_all_alive(&mut o, &[0, 1, 2, 3], t(1));
        o.node_crashed(3, t(100));
        assert!(o.is_converged(), "the crashed node no longer counts");
        assert_eq!(o.undetected(), vec![3]);
        o.member_event(t(150), 0, 3, Suspected, Suspect, || false);
        o.member_event(t(200), 0, 3, Failed, Dead, || false);
        o.member_event(t(210), 1, 3, Failed, Dead, || false);
        assert_eq!(o.detections()[0].detected_at, None);
        // A reaped member still counts as dead.
        o.member_event(t(220), 0, 3, Reaped, Dead, || false);
        // Observer 2 crashes before detecting: no longer needed.
        o.node_crashed(2, t(300));
        assert_eq!(o.detections()[0].detected_at, Some(t(300)));
        assert_eq!(o.undetected(), vec![2]);
        assert_eq!(
            o.false_positives(),
            0,
            "crashed nodes are not false positives"
        );
        // A live node declared dead is a false positive, unless partitioned.
        o.member_event(t(400), 0, 1, Failed, Dead, || false);
        o.member_event(t(400), 1, 0, Failed, Dead, || true);
        assert_eq!(o.false_positives(), 1);
        assert_eq!(o.falsely_declared_nodes(), 1);
        assert_eq!(o.view(0, 1), Some(Dead));
        assert_eq!(o.view(0, 3), None, "reaped");
    }

    #[test]
    fn observers_that_never_knew_a_crashed_node_do_not_block_detection() {
        let mut o = observer(3);
        for i in 0..3 {
            o.node_started(i, t(0));
        }
        o.member_event(t(1), 0, 2, Joined, Alive, || false);
        o.node_crashed(2, t(10));
        assert!(o.undetected() == vec![2]);
        o.member_event(t(20), 0, 2, Failed, Dead, || false);
        assert_eq!(o.detections()[0].detected_at, Some(t(20)));
        assert!(o.undetected().is_empty());
    }

    #[test]
    fn restart_stops_tracking_and_left_nodes_are_not_live() {
        let mut o = observer(3);
        for i in 0..3 {
            o.node_started(i, t(0));
        }
        see_all_alive(&mut o, &[0, 1, 2], t(1));
        o.node_crashed(2, t(10));
        o.node_restarted(2, t(20));
        assert_eq!(o.detections()[0].restarted_at, Some(t(20)));
        assert!(o.undetected().is_empty());
        assert!(!o.is_converged(), "the restarted node knows nobody");
        o.member_event(t(30), 2, 0, Joined, Alive, || false);
        o.member_event(t(30), 2, 1, Joined, Alive, || false);
        assert!(o.is_converged(), "the others still list it alive");
        o.node_left(1, t(40));
        assert_eq!(o.live_count(), 2);
        o.member_event(t(41), 0, 1, Failed, Dead, || false);
        assert_eq!(o.false_positives(), 0, "a node that left is not live");
        assert!(o.is_converged());
    }
}
