//! The command-line client: thin commands over an agent's HTTP API
//! (`--http ADDR` or `RUMOR_HTTP_ADDR`, token from `RUMOR_HTTP_TOKEN`).

pub mod cluster;
pub mod event;
pub mod keys;
pub mod kv;
mod table;

use std::io::Read;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rumor::http::api::ErrorBody;
use serde::de::DeserializeOwned;
use ureq::http::Response;

/// Characters of a key left as they are in a URL path.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Longest a request may take (watch streams excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the agent.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Address of the agent's HTTP API.
    #[arg(
        long,
        env = "RUMOR_HTTP_ADDR",
        default_value = "127.0.0.1:7947",
        value_name = "ADDR",
        global = true
    )]
    pub http: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A connection to one agent's HTTP API.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    streaming: ureq::Agent,
}

/// One request to send.
pub enum Body<'a> {
    /// No body.
    None,
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// A JSON document.
    Json(serde_json::Value),
}

impl Client {
    /// A client of the agent at `args.http`.
    pub fn new(args: &ClientArgs) -> Self {
        let base = if args.http.starts_with("http://") || args.http.starts_with("https://") {
            args.http.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", args.http)
        };
        let build = |timeout: Option<Duration>| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(5)))
                .timeout_global(timeout)
                .build()
                .into()
        };
        Client {
            base,
            token: std::env::var("RUMOR_HTTP_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            agent: build(Some(REQUEST_TIMEOUT)),
            streaming: build(None),
        }
    }

    /// The URL path of a key.
    pub fn key_path(key: &str) -> String {
        format!("/v1/kv/{}", utf8_percent_encode(key, KEY_PATH))
    }

    fn request(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> anyhow::Result<Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        macro_rules! finish {
            ($rb:expr) => {{
                let mut rb = $rb;
                for (k, v) in query {
                    rb = rb.query(*k, *v);
                }
                if let Some(a) = &auth {
                    rb = rb.header("Authorization", a);
                }
                rb
            }};
        }
        let result = match method {
            "GET" => finish!(agent.get(&url)).call(),
            "DELETE" => finish!(agent.delete(&url)).call(),
            "PUT" | "POST" => {
                let rb = if method == "PUT" {
                    agent.put(&url)
                } else {
                    agent.post(&url)
                };
                let rb = finish!(rb);
                match body {
                    Body::None => rb.send_empty(),
                    Body::Bytes(b) => rb.send(b),
                    Body::Json(v) => rb
                        .header("Content-Type", "application/json")
                        .send(serde_json::to_vec(&v)?.as_slice()),
                }
            }
            other => bail!("unsupported method {other}"),
        };
        let mut response = result.map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or_else(|_| text.trim().to_string());
            bail!("the agent at {} answered {status}: {message}", self.base);
        }
        Ok(response)
    }

    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        anyhow!(
            "no rumor agent answers at {} ({e}); start one with `rumor agent`, or point --http or RUMOR_HTTP_ADDR at a running agent",
            self.base
        )
    }

    /// Send a request and decode the JSON answer.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> anyhow::Result<T> {
        let mut response = self.request(&self.agent, method, path, query, body)?;
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {}", self.base))?;
        serde_json::from_str(&text)
            .with_context(|| format!("the agent at {} sent an answer this client does not understand; are both the same rumor version?", self.base))
    }

    /// Open a stream of lines (a `watch` route).
    pub fn stream(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<impl Read + use<>> {
        let response = self.request(&self.streaming, "GET", path, query, Body::None)?;
        Ok(response.into_body().into_reader())
    }
}

/// Print `value` as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
