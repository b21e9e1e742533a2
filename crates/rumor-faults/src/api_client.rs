//! Talking to an agent's HTTP API on the loopback of its namespace.
//!
//! Every agent listens on 127.0.0.1:7947 inside its own namespace, so the
//! address is the same for all; a request is made by a thread that steps
//! into the namespace for the length of the call, on a fresh connection
//! (a connection pool would mix up the namespaces).

use std::io::{BufRead as _, BufReader, Read as _};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rumor::KeysReport;
use rumor::http::api::{ConvergenceView, KeyView, MemberView, WatchItem, WriteResult};
use serde::de::DeserializeOwned;

use crate::netns::Netns;

/// The HTTP API address inside every host's namespace.
pub const HTTP_ADDR: &str = "127.0.0.1:7947";

/// Characters of a key or token left as they are in a URL.
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The HTTP API of the agent in one namespace.
#[derive(Clone, Debug)]
pub struct ApiClient {
    ns: Netns,
    timeout: Duration,
}

impl ApiClient {
    /// A client of the agent in `ns`; each request gives up after `timeout`.
    pub fn new(ns: Netns, timeout: Duration) -> Self {
        ApiClient { ns, timeout }
    }

    fn agent(&self, timeout: Option<Duration>) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(timeout)
            .max_idle_connections(0)
            .build()
            .into()
    }

    /// Send a request; answer the status and the body.
    fn call(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, String)> {
        let url = format!("http://{HTTP_ADDR}{path_and_query}");
        let agent = self.agent(Some(self.timeout));
        let ns = &self.ns;
        ns.with(|| -> anyhow::Result<(u16, String)> {
            let resp = match method {
                "PUT" => agent.put(&url).send(body),
                "POST" => agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(body),
                "DELETE" => agent.delete(&url).call(),
                _ => agent.get(&url).call(),
            }
            .map_err(|e| anyhow!("{method} {path_and_query} on {}: {e}", ns.name))?;
            let status = resp.status().as_u16();
            let mut text = String::new();
            resp.into_body()
                .into_reader()
                .take(64 * 1024 * 1024)
                .read_to_string(&mut text)
                .with_context(|| {
                    format!("reading the answer of {path_and_query} on {}", ns.name)
                })?;
            Ok((status, text))
        })?
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let (status, text) = self.call("GET", path, &[])?;
        if status != 200 {
            anyhow::bail!("GET {path} on {}: status {status}: {text}", self.ns.name);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("GET {path} on {}: not the expected JSON", self.ns.name))
    }

    /// Write `value` to `key`, replacing what `context` names (or what the
    /// node holds, without one). `Ok` only when the agent acknowledged it.
    pub fn put(
        &self,
        key: &str,
        value: &str,
        context: Option<&str>,
    ) -> anyhow::Result<WriteResult> {
        let mut path = format!("/v1/kv/{}", utf8_percent_encode(key, URL_SAFE));
        if let Some(c) = context {
            path.push_str(&format!("?context={}", utf8_percent_encode(c, URL_SAFE)));
        }
        let (status, text) = self.call("PUT", &path, value.as_bytes())?;
        if status != 200 {
            anyhow::bail!("PUT {key} on {}: status {status}: {text}", self.ns.name);
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Every key under `prefix`, with its values.
    pub fn list(&self, prefix: &str) -> anyhow::Result<Vec<KeyView>> {
        self.get_json(&format!(
            "/v1/kv?prefix={}",
            utf8_percent_encode(prefix, URL_SAFE)
        ))
    }

    /// The members as this node sees them.
    pub fn members(&self) -> anyhow::Result<Vec<MemberView>> {
        self.get_json("/v1/members")
    }

    /// This node's view of convergence.
    pub fn convergence(&self) -> anyhow::Result<ConvergenceView> {
        self.get_json("/v1/convergence")
    }

    /// The cluster's keys as this node sees them.
    pub fn keys(&self) -> anyhow::Result<KeysReport> {
        self.get_json("/v1/keys")
    }

    /// A keyring operation (`install`, `use` or `remove`) through this node.
    pub fn keys_op(&self, op: &str, key: &str) -> anyhow::Result<KeysReport> {
        let body = serde_json::to_vec(&serde_json::json!({ "key": key }))?;
        let (status, text) = self.call("POST", &format!("/v1/keys/{op}"), &body)?;
        if status != 200 {
            anyhow::bail!("keys {op} on {}: status {status}: {text}", self.ns.name);
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Whether the agent answers at all.
    pub fn ready(&self) -> bool {
        matches!(self.call("GET", "/v1/info", &[]), Ok((200, _)))
    }

    /// Follow `/v1/watch/members` until the stream ends or `keep_going`
    /// says stop, handing every item to `on_item`. Runs on the calling
    /// thread, which must already be inside the namespace.
    pub fn watch_members(
        &self,
        mut on_item: impl FnMut(WatchItem),
        keep_going: impl Fn() -> bool,
    ) -> anyhow::Result<()> {
        let url = format!("http://{HTTP_ADDR}/v1/watch/members");
        let resp = self
            .agent(None)
            .get(&url)
            .call()
            .map_err(|e| anyhow!("watching members on {}: {e}", self.ns.name))?;
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let line = line?;
            if let Ok(item) = serde_json::from_str::<WatchItem>(&line) {
                on_item(item);
            }
            if !keep_going() {
                break;
            }
        }
        Ok(())
    }

    /// The namespace this client talks into.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }
}
