//! f. The cluster key rotated while the workload runs: a new key installed
//! through one node, made primary through another, the old one removed
//! through a third, each step waited out until every node reports it.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use rumor::{Key, KeysReport};

use super::{Scenario, Stage};
use crate::api_client::ApiClient;

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    id: "key-rotation",
    letter: "f",
    about: "a new cluster key installed, made primary and the old one removed, under traffic",
    body,
};

/// Longest wait for one rotation step to reach every node.
const STEP_WITHIN: Duration = Duration::from_secs(60);

fn body(stage: &mut Stage<'_>) -> anyhow::Result<()> {
    let old = stage
        .options
        .agents
        .extra_args
        .iter()
        .find_map(|a| a.strip_prefix("--encrypt-key="))
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow!("key rotation needs agents sharing --encrypt-key=KEY; leave out --plaintext and --keyring")
        })?;
    let new = Key::generate();
    let fingerprint = new.fingerprint();
    let new = new.to_base64();
    let clients = stage.cluster.clients();
    let n = clients.len();
    let at = |i: usize| &clients[i % n];

    at(0).keys_op("install", &new)?;
    stage.note(format!("installed key {fingerprint} through node 0"));
    wait_all(stage, &clients, "every node holds the new key", |r| {
        r.key(&fingerprint).is_some_and(|k| k.installed_on == n)
    })?;
    at(1).keys_op("use", &new)?;
    stage.note(format!("made {fingerprint} primary through node 1"));
    wait_all(stage, &clients, "every node seals with the new key", |r| {
        r.key(&fingerprint).is_some_and(|k| k.primary_on == n)
    })?;
    at(2).keys_op("remove", &old)?;
    stage.note("removed the old key through node 2");
    wait_all(stage, &clients, "no node holds the old key", |r| {
        r.keys.len() == 1 && r.key(&fingerprint).is_some_and(|k| k.installed_on == n)
    })?;
    stage.healed()
}

/// Poll every node's key report until `done` holds for all of them.
fn wait_all(
    stage: &mut Stage<'_>,
    clients: &[ApiClient],
    what: &str,
    done: impl Fn(&KeysReport) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_WITHIN;
    loop {
        let reports: Vec<KeysReport> = clients.iter().filter_map(|c| c.keys().ok()).collect();
        if reports.len() == clients.len() && reports.iter().all(&done) {
            stage.note(what);
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("not within {STEP_WITHIN:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
