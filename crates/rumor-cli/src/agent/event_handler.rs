//! Event handler scripts, as Serf runs them: `--event-handler
//! [TYPE[,TYPE...]=]SCRIPT` runs `SCRIPT` with `sh -c` for every matching
//! event, one at a time, in the order the events happened.
//!
//! The script learns what happened from its environment and standard input:
//!
//! | Variable | Holds |
//! |---|---|
//! | `RUMOR_EVENT` | `member-join`, `member-leave`, `member-failed`, `member-update`, `member-reap`, `member-suspect`, `member-recover`, `user` or `kv` |
//! | `RUMOR_SELF_NAME`, `RUMOR_SELF_ADDR` | this node |
//! | `RUMOR_TAG_<KEY>` | this node's tags |
//! | `RUMOR_USER_EVENT`, `RUMOR_USER_LTIME`, `RUMOR_USER_ORIGIN` | a user event's name, Lamport time and sender |
//! | `RUMOR_KEY` | the key that changed |
//!
//! Standard input carries, for member events, one line `NAME\tADDR\tSTATE\tTAGS`
//! (tags as `k=v,k=v`); for user events, the payload; for key changes, the
//! key's state as the HTTP API's JSON (`null` when deleted).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::bail;
use rumor::Handle;
use rumor::http::api::KeyView;
use rumor_proto::{Event, MemberEventKind};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

/// Events waiting for their scripts; beyond this, events are skipped and a
/// warning says how many.
const QUEUE: usize = 1024;
/// A script still running after this long is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

const MEMBER_KINDS: [MemberEventKind; 7] = [
    MemberEventKind::Joined,
    MemberEventKind::Left,
    MemberEventKind::Failed,
    MemberEventKind::Updated,
    MemberEventKind::Reaped,
    MemberEventKind::Suspected,
    MemberEventKind::Recovered,
];

/// Which events a handler wants.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Filter {
    Member(MemberEventKind),
    /// User events, all or of one name.
    User(Option<String>),
    /// Key changes, all or under a prefix.
    Kv(String),
}

/// One `--event-handler`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerSpec {
    /// Empty: every event.
    filters: Vec<Filter>,
    script: String,
}

impl HandlerSpec {
    /// Parse `[TYPE[,TYPE...]=]SCRIPT`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let spec = spec.trim();
        // A type list has no spaces and starts with a type's family name;
        // anything else before an `=` belongs to the script (`FOO=1 ./run.sh`).
        let (filters, script) = match spec.split_once('=') {
            Some((types, script))
                if !types.contains(char::is_whitespace)
                    && ["member", "user", "kv"]
                        .iter()
                        .any(|f| types.starts_with(f)) =>
            {
                (parse_types(types)?, script)
            }
            _ => (Vec::new(), spec),
        };
        if script.trim().is_empty() {
            bail!(
                "event handler {spec:?} has no script; write TYPE=SCRIPT, for example member-join=/usr/local/bin/on-join.sh"
            );
        }
        Ok(HandlerSpec {
            filters,
            script: script.to_string(),
        })
    }

    fn wants(&self, e: &Event) -> bool {
        if self.filters.is_empty() {
            return matches!(
                e,
                Event::Member(_) | Event::UserEvent(_) | Event::KeyChanged { .. }
            );
        }
        self.filters.iter().any(|f| match (f, e) {
            (Filter::Member(k), Event::Member(m)) => *k == m.kind,
            (Filter::User(None), Event::UserEvent(_)) => true,
            (Filter::User(Some(n)), Event::UserEvent(u)) => *n == u.name,
            (Filter::Kv(p), Event::KeyChanged { key, .. }) => {
                key.starts_with(p.as_str()) && !rumor::is_reserved_key(key, p)
            }
            _ => false,
        })
    }
}

fn parse_types(types: &str) -> anyhow::Result<Vec<Filter>> {
    let mut out = Vec::new();
    for t in types.split(',') {
        match t {
            "member" => out.extend(MEMBER_KINDS.iter().map(|k| Filter::Member(*k))),
            "user" => out.push(Filter::User(None)),
            "kv" => out.push(Filter::Kv(String::new())),
            _ => {
                if let Some(k) = MEMBER_KINDS.iter().find(|k| k.as_str() == t) {
                    out.push(Filter::Member(*k));
                } else if let Some(name) = t.strip_prefix("user:") {
                    out.push(Filter::User(Some(name.to_string())));
                } else if let Some(prefix) = t.strip_prefix("kv:") {
                    out.push(Filter::Kv(prefix.to_string()));
                } else {
                    bail!(
                        "unknown event type {t:?} in an event handler; use member-join, member-leave, member-failed, member-update, member-reap, member-suspect, member-recover, member, user, user:NAME, kv or kv:PREFIX"
                    );
                }
            }
        }
    }
    Ok(out)
}

/// What one script run gets.
struct Invocation {
    script: String,
    env: BTreeMap<String, String>,
    stdin: Vec<u8>,
}

/// Start running `specs` for the node's events; returns at once.
pub fn spawn(node: Handle, specs: Vec<HandlerSpec>) {
    if specs.is_empty() {
        return;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run_scripts(rx));
    tokio::spawn(dispatch(node, specs, tx));
}

async fn dispatch(node: Handle, specs: Vec<HandlerSpec>, tx: mpsc::Sender<Invocation>) {
    let mut events = node.subscribe();
    let mut skipped = 0u64;
    loop {
        let e = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "event handlers fell behind; some events ran no script"
                );
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let wanted: Vec<&HandlerSpec> = specs.iter().filter(|s| s.wants(&e)).collect();
        if wanted.is_empty() {
            continue;
        }
        let Some((env, stdin)) = describe(&node, &e).await else {
            return;
        };
        for spec in wanted {
            let inv = Invocation {
                script: spec.script.clone(),
                env: env.clone(),
                stdin: stdin.clone(),
            };
            if tx.try_send(inv).is_err() {
                skipped += 1;
                tracing::warn!(
                    skipped,
                    "event handler queue is full ({QUEUE} events); an event ran no script. Are the scripts too slow?"
                );
            }
        }
    }
}

/// The environment and standard input for one event.
async fn describe(node: &Handle, e: &Event) -> Option<(BTreeMap<String, String>, Vec<u8>)> {
    let info = node.info().await.ok()?;
    let mut env = BTreeMap::new();
    env.insert("RUMOR_SELF_NAME".to_string(), info.name.to_string());
    env.insert("RUMOR_SELF_ADDR".to_string(), info.addr.to_string());
    for (k, v) in &info.tags {
        let k: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.insert(format!("RUMOR_TAG_{k}"), v.clone());
    }
    let stdin = match e {
        Event::Member(m) => {
            env.insert("RUMOR_EVENT".to_string(), m.kind.as_str().to_string());
            let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}\t{}\t{}\t{}\n", m.name, m.addr, m.state, tags.join(",")).into_bytes()
        }
        Event::UserEvent(u) => {
            env.insert("RUMOR_EVENT".to_string(), "user".to_string());
            env.insert("RUMOR_USER_EVENT".to_string(), u.name.clone());
            env.insert("RUMOR_USER_LTIME".to_string(), u.ltime.to_string());
            env.insert("RUMOR_USER_ORIGIN".to_string(), u.origin.to_string());
            u.payload.clone()
        }
        Event::KeyChanged { key, .. } => {
            env.insert("RUMOR_EVENT".to_string(), "kv".to_string());
            env.insert("RUMOR_KEY".to_string(), key.to_string());
            let view = node
                .get(key)
                .await
                .ok()
                .flatten()
                .filter(|e| !e.is_tombstone())
                .map(|e| KeyView::new(key, &e));
            let mut json = serde_json::to_vec(&view).unwrap_or_default();
            json.push(b'\n');
            json
        }
        _ => return Some((env, Vec::new())),
    };
    Some((env, stdin))
}

async fn run_scripts(mut rx: mpsc::Receiver<Invocation>) {
    while let Some(inv) = rx.recv().await {
        run_one(inv).await;
    }
}

async fn run_one(inv: Invocation) {
    let event = inv.env.get("RUMOR_EVENT").cloned().unwrap_or_default();
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&inv.script)
        .envs(&inv.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(script = %inv.script, %event, error = %e, "event handler could not start; is `sh` on the PATH?");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A script that does not read its input is not an error.
        let _ = stdin.write_all(&inv.stdin).await;
    }
    match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
        Err(_) => tracing::warn!(
            script = %inv.script, %event,
            "event handler ran longer than {SCRIPT_TIMEOUT:?} and was killed"
        ),
        Ok(Err(e)) => {
            tracing::warn!(script = %inv.script, %event, error = %e, "event handler failed")
        }
        Ok(Ok(out)) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().take(3).collect::<Vec<_>>();
            tracing::warn!(
                script = %inv.script, %event, status = %out.status,
                stderr = %last.into_iter().rev().collect::<Vec<_>>().join(" | "),
                "event handler failed"
            );
        }
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            tracing::debug!(script = %inv.script, %event, output = %stdout.trim(), "event handler ran");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_and_without_types() {
        let all = HandlerSpec::parse("/bin/handler.sh").unwrap();
        assert!(all.filters.is_empty());
        assert_eq!(all.script, "/bin/handler.sh");
        let some = HandlerSpec::parse("member-join,user:deploy,kv:app/=./h.sh arg").unwrap();
        assert_eq!(
            some.filters,
            vec![
                Filter::Member(MemberEventKind::Joined),
                Filter::User(Some("deploy".into())),
                Filter::Kv("app/".into()),
            ]
        );
        assert_eq!(some.script, "./h.sh arg");
        let env_in_script = HandlerSpec::parse("FOO=1 ./run.sh").unwrap();
        assert!(env_in_script.filters.is_empty());
        assert_eq!(env_in_script.script, "FOO=1 ./run.sh");
    }

    #[test]
    fn a_misspelt_type_is_refused() {
        let e = HandlerSpec::parse("member-joined=./h.sh")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown event type") && e.contains("member-join"),
            "{e}"
        );
        assert!(HandlerSpec::parse("user=").is_err());
    }
}
