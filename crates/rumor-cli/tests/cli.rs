//! The client subcommands against real agent processes on loopback: every
//! command of the HTTP API, the errors an operator meets, the bearer token,
//! and event handler scripts.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Agent, cli, eventually, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// Two agents that see each other alive.
fn pair() -> (Agent, Agent) {
    let a = Agent::start("cli-a", free_port(), None);
    a.expect(&["HTTP API listening"], WAIT);
    let b = Agent::start("cli-b", free_port(), Some(a.port));
    b.expect(&["HTTP API listening"], WAIT);
    for n in [&a, &b] {
        eventually(WAIT, "both members alive", || {
            let m = n.json(&["members", "--status", "alive"]);
            m.as_array().is_some_and(|m| m.len() == 2)
        });
    }
    (a, b)
}

fn values(key: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = key["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn kv_commands_write_read_resolve_siblings_and_delete_across_agents() {
    let (a, b) = pair();
    let members = a.ok(&["members"]);
    assert!(
        members.starts_with("NAME"),
        "a table with a header: {members}"
    );
    assert!(
        members.contains("cli-b") && members.contains("alive"),
        "{members}"
    );

    a.ok(&["kv", "put", "config/db", "postgres://a"]);
    eventually(WAIT, "the value reaches b", || {
        let out = b.cli(&["kv", "get", "config/db", "--json"]);
        out.status.success()
            && values(&serde_json::from_slice(&out.stdout).unwrap()) == ["postgres://a"]
    });

    // Concurrent writes while the two cannot have seen each other's: both
    // write with the context of the same read, so neither supersedes the
    // other and both survive as siblings.
    let read = a.json(&["kv", "get", "config/db"]);
    let ctx = read["context"].as_str().unwrap().to_string();
    a.ok(&["kv", "put", "config/db", "one", "--context", &ctx]);
    b.ok(&["kv", "put", "config/db", "two", "--context", &ctx]);
    eventually(WAIT, "both siblings on both agents", || {
        [&a, &b]
            .iter()
            .all(|n| values(&n.json(&["kv", "get", "config/db"])) == ["one", "two"])
    });
    let shown = a.ok(&["kv", "get", "config/db"]);
    assert!(
        shown.contains("2 siblings") && shown.contains("--context"),
        "{shown}"
    );

    // A write with the context of the read that showed both resolves them.
    let both = b.json(&["kv", "get", "config/db"]);
    let ctx = both["context"].as_str().unwrap().to_string();
    b.ok(&["kv", "put", "config/db", "merged", "--context", &ctx]);
    eventually(WAIT, "the resolution reaches a", || {
        values(&a.json(&["kv", "get", "config/db"])) == ["merged"]
    });

    // Counters and sets.
    a.ok(&["kv", "incr", "hits", "--by", "5"]);
    b.ok(&["kv", "decr", "hits"]);
    a.ok(&["kv", "set-add", "colors", "red"]);
    b.ok(&["kv", "set-add", "colors", "blue"]);
    // An observed-remove set removes only what the remover has seen.
    eventually(WAIT, "b sees red", || {
        b.ok(&["kv", "get", "colors"]).contains("red")
    });
    b.ok(&["kv", "set-remove", "colors", "red"]);
    eventually(WAIT, "counter and set agree", || {
        [&a, &b].iter().all(|n| {
            let hits = n.cli(&["kv", "get", "hits", "--json"]);
            let colors = n.cli(&["kv", "get", "colors", "--json"]);
            hits.status.success()
                && colors.status.success()
                && serde_json::from_slice::<serde_json::Value>(&hits.stdout).unwrap()["counter"]
                    == 4
                && serde_json::from_slice::<serde_json::Value>(&colors.stdout).unwrap()["elements"]
                    == serde_json::json!([{"value": "blue"}])
        })
    });
    let list = a.ok(&["kv", "list", "--prefix", "co"]);
    assert!(
        list.contains("colors") && list.contains("config/db") && !list.contains("hits"),
        "{list}"
    );

    // A counter operation on a value key is refused and changes nothing.
    let wrong = a.cli(&["kv", "incr", "config/db"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("holds a mv value"));
    assert_eq!(values(&a.json(&["kv", "get", "config/db"])), ["merged"]);

    a.ok(&["kv", "del", "config/db"]);
    eventually(WAIT, "the delete reaches b", || {
        let out = b.cli(&["kv", "get", "config/db"]);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no key")
    });

    let bad = a.cli(&["kv", "put", "k", "v", "--context", "not-a-context!"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid causal context"));
}

#[test]
fn events_reach_watchers_and_handler_scripts_on_other_agents() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploys");
    let a = Agent::start("ev-a", free_port(), None);
    a.expect(&["HTTP API listening"], WAIT);
    // A script of several commands: its `;` must stay in the script.
    let handler = format!(
        "user:deploy=read payload; echo \"$RUMOR_EVENT $RUMOR_USER_EVENT $RUMOR_USER_ORIGIN $payload\" >> {}",
        out.display()
    );
    let b = Agent::start_with(
        "ev-b",
        free_port(),
        &[
            "--join".into(),
            format!("127.0.0.1:{}", a.port),
            "--event-handler".into(),
            handler,
        ],
    );
    b.expect(&["HTTP API listening"], WAIT);
    eventually(WAIT, "a sees b", || {
        a.json(&["members", "--status", "alive"])
            .as_array()
            .is_some_and(|m| m.len() == 2)
    });

    let mut watch = Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args(["watch", "events", "--json"])
        .env("RUMOR_HTTP_ADDR", format!("127.0.0.1:{}", b.http))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // The watch is subscribed once the agent answers; an event sent before
    // that would be missed, so send until one line arrives.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
    });
    let mut seen = None;
    for _ in 0..20 {
        a.ok(&["event", "send", "deploy", "v1.2"]);
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            seen = Some(line);
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let line = seen.expect("the watch printed the event");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "event");
    assert_eq!(event["name"], "deploy");
    assert_eq!(event["origin"], "ev-a");
    assert_eq!(event["payload"]["value"], "v1.2");

    eventually(WAIT, "the handler script ran on b", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.contains("user deploy ev-a v1.2"))
    });
}

#[test]
fn client_errors_say_what_to_do_and_exit_non_zero() {
    let port = free_port();
    let out = cli(&format!("127.0.0.1:{port}"), &["members"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no rumor agent answers") && err.contains("rumor agent"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // An HTTP API reachable from other machines needs a token.
    let data = tempfile::tempdir().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args([
            "agent",
            "--node",
            "open",
            "--bind",
            "127.0.0.1:0",
            "--http",
            "0.0.0.0:0",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("RUMOR_HTTP_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("token"), "{err}");
    let created = std::fs::read_dir(data.path()).unwrap().count();
    assert_eq!(created, 0, "refused before touching the data directory");
}

#[test]
fn a_token_protects_the_http_api() {
    let a = Agent::start_with(
        "tok-a",
        free_port(),
        &["--http-token".into(), "s3cret".into()],
    );
    a.expect(&["HTTP API listening"], WAIT);
    let http = format!("127.0.0.1:{}", a.http);
    let without = cli(&http, &["info"], None);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("401"));
    let wrong = cli(&http, &["info"], Some("guess"));
    assert!(!wrong.status.success());
    let with = cli(&http, &["info", "--json"], Some("s3cret"));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&with.stdout).unwrap();
    assert_eq!(info["name"], "tok-a");
}

#[test]
fn leave_through_the_client_stops_the_agent_gracefully() {
    let (a, mut b) = pair();
    b.ok(&["leave"]);
    a.expect(&["member-leave", "cli-b"], WAIT);
    let status = b.child.wait().unwrap();
    assert!(status.success(), "cli-b exited with {status}");
    let m = a.json(&["members", "--status", "left"]);
    assert_eq!(m[0]["name"], "cli-b");
}

#[test]
fn metrics_are_served_in_the_prometheus_text_format() {
    use std::io::{Read, Write};
    let (a, _b) = pair();
    let metrics = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", a.http)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET /v1/metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let value = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let before = metrics();
    a.ok(&["kv", "put", "m", "1"]);
    let text = metrics();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("# TYPE rumor_members gauge"), "{text}");
    assert!(text.contains("rumor_members{state=\"alive\"} 2"), "{text}");
    assert_eq!(
        value(&text, "rumor_kv_writes_total"),
        value(&before, "rumor_kv_writes_total") + 1
    );
    assert!(value(&text, "rumor_transport_opened_total") > 0, "{text}");
    assert_eq!(
        value(&text, "rumor_transport_auth_failures_total"),
        0,
        "{text}"
    );
    // The write's rumor keeps the dissemination rounds running.
    eventually(
        WAIT,
        "the rounds counter grows while a rumor is held",
        || {
            value(&metrics(), "rumor_dissemination_rounds_total")
                > value(&text, "rumor_dissemination_rounds_total")
        },
    );
    assert!(text.contains("rumor_push_pulls_skipped_total"), "{text}");
}

fn generated_key() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rumor"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn keys_rotate_through_the_client_while_the_agents_keep_talking() {
    let (a, b) = pair();
    let new = generated_key();
    assert_eq!(new.len(), 44, "a base64 key of 32 bytes: {new}");
    let listed = a.json(&["keys", "list"]);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
    a.ok(&["keys", "install", &new]);
    eventually(WAIT, "both agents hold the new key", || {
        let r = b.json(&["keys", "list"]);
        r["keys"]
            .as_array()
            .is_some_and(|k| k.len() == 2 && k.iter().all(|k| k["installed_on"] == 2))
    });
    let used = b.json(&["keys", "use", &new]);
    let fingerprint = used["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["local_primary"] == true))
        .map(|k| k["fingerprint"].clone())
        .expect("b reports its new primary");
    eventually(WAIT, "both agents seal with the new key", || {
        let r = a.json(&["keys", "list"]);
        r["keys"].as_array().is_some_and(|keys| {
            keys.iter().any(|k| {
                k["fingerprint"] == fingerprint
                    && k["primary_on"] == 2
                    && k["local_primary"] == true
            })
        })
    });
    a.ok(&["keys", "remove", common::TEST_KEY]);
    eventually(WAIT, "the old key is gone everywhere", || {
        b.json(&["keys", "list"])["keys"]
            .as_array()
            .is_some_and(|k| k.len() == 1)
    });
    // Still talking: a write on one reaches the other, and nobody failed.
    a.ok(&["kv", "put", "after-rotation", "yes"]);
    eventually(WAIT, "the write reaches b", || {
        b.cli(&["kv", "get", "after-rotation"]).status.success()
    });
    let alive = a.json(&["members", "--status", "alive"]);
    assert_eq!(alive.as_array().unwrap().len(), 2, "{alive}");
    let removing_primary = a.cli(&["keys", "remove", &new]);
    assert!(!removing_primary.status.success());
    assert!(String::from_utf8_lossy(&removing_primary.stderr).contains("primary"));
}

#[test]
fn an_agent_with_another_key_cannot_join_and_says_why() {
    let a = Agent::start("key-a", free_port(), None);
    a.expect(&["HTTP API listening"], WAIT);
    let b = Agent::start_with(
        "key-b",
        free_port(),
        &[
            "--join".into(),
            format!("127.0.0.1:{}", a.port),
            "--encrypt-key".into(),
            generated_key(),
        ],
    );
    b.expect(
        &[
            "could not decrypt this node's packets",
            "same encryption key",
        ],
        WAIT,
    );
    let members = a.json(&["members"]);
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
}
