//! The scenarios, and the frame every one runs in: a fresh lab, a formed
//! cluster, the workload, the fault, the heal, then the checker.

mod hostile;
mod key_rotation;
mod latency;
mod loss;
mod one_way;
mod partition;
mod pause;
mod rolling_restart;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent_process::AgentSettings;
use crate::checker::{self, Bounds};
use crate::cluster::Cluster;
use crate::netns::Lab;
use crate::report::{Detection, ScenarioReport};
use crate::workload::Workload;

/// One scenario of the suite.
pub struct Scenario {
    /// Short name, used on the command line.
    pub id: &'static str,
    /// Its letter in the suite's list.
    pub letter: &'static str,
    /// What it does.
    pub about: &'static str,
    /// Inject the fault, hold it, heal it.
    pub body: fn(&mut Stage<'_>) -> anyhow::Result<()>,
}

/// Every scenario, in the order the suite runs them.
pub const ALL: &[Scenario] = &[
    loss::SCENARIO,
    partition::SCENARIO,
    one_way::SCENARIO,
    rolling_restart::SCENARIO,
    pause::SCENARIO,
    key_rotation::SCENARIO,
    hostile::SCENARIO,
    latency::SCENARIO,
];

/// How long the phases last.
#[derive(Clone, Copy, Debug)]
pub struct Durations {
    /// Workload before the fault.
    pub warmup: Duration,
    /// How long most faults are held.
    pub fault: Duration,
    /// How long the 2/3–1/3 partition is held.
    pub partition: Duration,
    /// How long a killed node stays down in the rolling restart.
    pub down: Duration,
}

impl Durations {
    /// The full suite's durations.
    pub fn full() -> Self {
        Durations {
            warmup: Duration::from_secs(3),
            fault: Duration::from_secs(30),
            partition: Duration::from_secs(60),
            down: Duration::from_secs(8),
        }
    }

    /// The short (CI) suite's durations.
    pub fn short() -> Self {
        Durations {
            warmup: Duration::from_secs(2),
            fault: Duration::from_secs(10),
            partition: Duration::from_secs(15),
            down: Duration::from_secs(3),
        }
    }
}

/// Everything a scenario run needs.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// Hosts, each running one agent.
    pub hosts: usize,
    /// How agents start.
    pub agents: AgentSettings,
    /// Phase lengths.
    pub durations: Durations,
    /// The checker's limits.
    pub bounds: Bounds,
    /// Concurrent writers.
    pub writers: usize,
    /// Writes per second per writer.
    pub writes_per_second: f64,
    /// The profile's minimum suspicion timeout at this cluster size.
    pub suspicion: Duration,
    /// The profile's maximum suspicion timeout at this cluster size.
    pub suspicion_max: Duration,
}

/// Reports about `subjects` by `observers` (everyone when `None`) that a
/// fault explains, from `from` until `until` plus a grace.
struct Excuse {
    subjects: BTreeSet<String>,
    observers: Option<BTreeSet<String>>,
    from: Instant,
    until: Option<Instant>,
}

/// What a scenario body works with.
pub struct Stage<'a> {
    /// The running cluster.
    pub cluster: &'a Cluster,
    /// The suite's options.
    pub options: &'a SuiteOptions,
    /// Nodes the workload must not write to (drained before a kill).
    pub avoid: Arc<Mutex<BTreeSet<usize>>>,
    excuses: Vec<Excuse>,
    detections: Vec<(String, Instant)>,
    heal_at: Option<Instant>,
    notes: Vec<String>,
    started: Instant,
}

impl Stage<'_> {
    /// Record a step, with its time since the scenario began.
    pub fn note(&mut self, what: impl Into<String>) {
        let line = format!(
            "{:6.1} s  {}",
            self.started.elapsed().as_secs_f64(),
            what.into()
        );
        tracing::info!("{line}");
        self.notes.push(line);
    }

    /// Keep the fault for `d`.
    pub fn hold(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    /// The host names of `indices`.
    pub fn names(&self, indices: &[usize]) -> BTreeSet<String> {
        indices
            .iter()
            .map(|&i| self.cluster.hosts()[i].name.clone())
            .collect()
    }

    /// From now until the heal, `observers` (all when `None`) may rightly
    /// report `subjects` suspect or failed.
    pub fn excuse(&mut self, subjects: &[usize], observers: Option<&[usize]>) {
        self.excuses.push(Excuse {
            subjects: self.names(subjects),
            observers: observers.map(|o| self.names(o)),
            from: Instant::now(),
            until: None,
        });
    }

    /// End the excuses opened so far (reports stay excused for a grace of
    /// the longest suspicion timeout after this).
    pub fn end_excuses(&mut self) {
        let now = Instant::now();
        for e in self.excuses.iter_mut().filter(|e| e.until.is_none()) {
            e.until = Some(now);
        }
    }

    /// Measure how long the cluster takes to notice host `i`, from now.
    pub fn expect_detection(&mut self, i: usize) {
        let name = self.cluster.hosts()[i].name.clone();
        self.detections.push((name, Instant::now()));
    }

    /// The fault is over: every firewall rule is gone and every process
    /// runs. Healing is measured from here.
    pub fn healed(&mut self) -> anyhow::Result<()> {
        self.cluster.heal_network()?;
        self.end_excuses();
        self.heal_at = Some(Instant::now());
        self.note("healed");
        Ok(())
    }
}

/// Run one scenario on a fresh lab and check the outcome.
pub fn run(scenario: &Scenario, options: &SuiteOptions) -> ScenarioReport {
    let started = Instant::now();
    let mut report = ScenarioReport {
        id: scenario.id.to_string(),
        letter: scenario.letter.to_string(),
        about: scenario.about.to_string(),
        passed: false,
        failures: Vec::new(),
        writes_attempted: 0,
        writes_acknowledged: 0,
        writes_lost: 0,
        lost_examples: Vec::new(),
        converge_s: None,
        members_heal_s: None,
        false_positives: 0,
        false_failures: 0,
        false_positive_examples: Vec::new(),
        detections: Vec::new(),
        peak_rss_mib: BTreeMap::new(),
        duration_s: 0.0,
        notes: Vec::new(),
    };
    if let Err(e) = run_into(scenario, options, &mut report) {
        report
            .failures
            .push(format!("the scenario could not run: {e:#}"));
    }
    report.passed = report.failures.is_empty();
    report.duration_s = started.elapsed().as_secs_f64();
    report
}

fn run_into(
    scenario: &Scenario,
    options: &SuiteOptions,
    report: &mut ScenarioReport,
) -> anyhow::Result<()> {
    let lab = Lab::build(options.hosts)?;
    let cluster = Cluster::start(lab, options.agents.clone(), Duration::from_secs(30))?;
    let prefix = format!("{}/", scenario.id);
    let avoid = Arc::new(Mutex::new(BTreeSet::new()));
    let workload = Workload::start(
        cluster.clients(),
        &prefix,
        options.writers,
        options.writes_per_second,
        Arc::clone(&avoid),
    );
    let mut stage = Stage {
        cluster: &cluster,
        options,
        avoid,
        excuses: Vec::new(),
        detections: Vec::new(),
        heal_at: None,
        notes: Vec::new(),
        started: Instant::now(),
    };
    stage.note(format!(
        "cluster of {} formed; workload running",
        options.hosts
    ));
    stage.hold(options.durations.warmup);
    let outcome = (scenario.body)(&mut stage);
    if stage.heal_at.is_none() {
        // A body that failed half-way still leaves a healed network.
        for i in 0..options.hosts {
            if cluster.agents()[i].condition == crate::agent_process::Condition::Paused {
                cluster.resume(i);
            }
        }
        stage.healed()?;
    }
    outcome?;
    let heal_at = stage.heal_at.unwrap_or_else(Instant::now);
    let log = workload.stop();
    stage.note(format!(
        "workload stopped: {} of {} writes acknowledged",
        log.acknowledged(),
        log.attempted
    ));
    report.writes_attempted = log.attempted;
    report.writes_acknowledged = log.acknowledged();

    let healing = checker::await_healed(&cluster, heal_at, options.bounds.heal_within);
    report.converge_s = healing.converged.map(|d| d.as_secs_f64());
    report.members_heal_s = healing.members.map(|d| d.as_secs_f64());
    if healing.converged.is_none() {
        report.failures.push(format!(
            "digests still differ {:?} after the heal: {}",
            options.bounds.heal_within,
            checker::roots_equal(&cluster).err().unwrap_or_default()
        ));
    }
    if healing.members.is_none() {
        report.failures.push(format!(
            "membership not clean {:?} after the heal: {}",
            options.bounds.heal_within,
            cluster.members_healthy().err().unwrap_or_default()
        ));
    }
    let lost = checker::lost_writes(&cluster, &log, &prefix);
    report.writes_lost = lost.keys.len() as u64;
    report.lost_examples = lost.details.iter().take(10).cloned().collect();
    if !lost.keys.is_empty() {
        report.failures.push(format!(
            "{} acknowledged writes missing on some live node, e.g. {}",
            lost.keys.len(),
            lost.details.first().cloned().unwrap_or_default()
        ));
    }
    report
        .failures
        .extend(checker::process_failures(&cluster, &options.bounds));

    let events = cluster.events.lock().map(|e| e.clone()).unwrap_or_default();
    let grace = options.suspicion_max;
    let mut false_positives = Vec::new();
    let mut false_failures = 0;
    for ev in events.iter().filter(|e| {
        (e.event == "member-suspect" || e.event == "member-failed") && e.at >= stage.started
    }) {
        let excused = stage.excuses.iter().any(|x| {
            x.subjects.contains(&ev.subject)
                && x.observers
                    .as_ref()
                    .is_none_or(|o| o.contains(&ev.observer))
                && ev.at >= x.from
                && x.until.is_none_or(|u| ev.at <= u + grace)
        });
        if !excused {
            false_failures += u64::from(ev.event == "member-failed");
            false_positives.push(format!(
                "{:.1} s: {} reported {} {}",
                ev.at.saturating_duration_since(stage.started).as_secs_f64(),
                ev.observer,
                ev.subject,
                ev.event.trim_start_matches("member-")
            ));
        }
    }
    report.false_positives = false_positives.len() as u64;
    report.false_failures = false_failures;
    report.false_positive_examples = false_positives.into_iter().take(10).collect();
    for (subject, since) in &stage.detections {
        let first = |kind: &str| {
            events
                .iter()
                .filter(|e| e.event == kind && &e.subject == subject && e.at >= *since)
                .map(|e| (e.at - *since).as_secs_f64())
                .reduce(f64::min)
        };
        report.detections.push(Detection {
            subject: subject.clone(),
            first_suspect_s: first("member-suspect"),
            first_failed_s: first("member-failed"),
        });
    }
    for a in cluster.agents().iter() {
        report
            .peak_rss_mib
            .insert(a.host.name.clone(), a.peak_rss_kib as f64 / 1024.0);
    }
    report.notes = std::mem::take(&mut stage.notes);
    Ok(())
}
