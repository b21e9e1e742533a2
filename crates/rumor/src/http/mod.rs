//! The HTTP API an agent serves to its operators and their scripts.
//!
//! Every route is under `/v1`; answers are JSON (the documents are in
//! [`api`]), errors are `{"error": "..."}` with a 4xx or 5xx status, and
//! `watch` routes stream one JSON document per line until the client goes
//! away. The API binds to loopback by default; bound to any other address it
//! requires a bearer token (`Authorization: Bearer <token>`).
//!
//! | Route | What it does |
//! |---|---|
//! | `GET /v1/info` | the node's identity, health and counters |
//! | `GET /v1/members?status=S` | members as this node sees them |
//! | `POST /v1/join` | join through `{"addrs": ["host:port", ...]}` |
//! | `POST /v1/leave` | leave the cluster gracefully; the agent then stops |
//! | `GET /v1/kv?prefix=P` | keys under a prefix |
//! | `GET /v1/kv/<key>` | one key: values (siblings), kind, causal context |
//! | `PUT /v1/kv/<key>?context=C&kind=K` | write the body as the value |
//! | `DELETE /v1/kv/<key>?context=C` | delete |
//! | `POST /v1/kv/<key>?op=incr\|decr&by=N` | counters |
//! | `POST /v1/kv/<key>?op=set-add\|set-remove` | sets (body: the element) |
//! | `POST /v1/event/<name>?priority=P` | broadcast a user event (body: payload) |
//! | `GET /v1/watch/members`, `/v1/watch/events`, `/v1/watch/kv?prefix=P` | stream changes |
//! | `GET /v1/convergence` | how far the cluster is from agreement |
//! | `GET /v1/keys` | the cluster's encryption keys (fingerprints) and who holds them |
//! | `POST /v1/keys/install\|use\|remove` | rotate keys cluster-wide: `{"key": "<base64>"}` |
//! | `GET /v1/metrics` | counters and gauges in the Prometheus text format |

pub mod api;
mod auth;
pub mod context_token;
mod error;
mod events;
mod keys;
mod kv;
mod members;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use error::ApiError;

use crate::Handle;

/// Largest request body accepted, beyond the largest value the store takes.
const BODY_SLACK: usize = 4096;

/// How to serve the HTTP API.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Address to listen on (default `127.0.0.1:7947`).
    pub addr: SocketAddr,
    /// Bearer token clients must present; required unless `addr` is a
    /// loopback address.
    pub token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 7947)),
            token: None,
        }
    }
}

/// The HTTP API could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Bound beyond loopback without a token.
    #[error(
        "the HTTP API at {0} would be reachable from other machines without a token; set a bearer token (--http-token or RUMOR_HTTP_TOKEN) or bind it to 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// The listening socket could not be bound.
    #[error(
        "cannot bind the HTTP API to {addr} (is another agent using the port? choose another with --http)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running HTTP API.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    leave: Arc<Notify>,
}

impl HttpServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Completes when a client asked the node to leave (`POST /v1/leave`);
    /// the node has then announced its leave, and the agent should stop.
    pub async fn left(&self) {
        self.leave.notified().await;
    }
}

#[derive(Clone)]
struct ApiState {
    node: Handle,
    token: Option<Arc<str>>,
    leave: Arc<Notify>,
}

/// Serve the HTTP API of `node` until the node stops.
pub async fn serve(node: Handle, config: HttpConfig) -> Result<HttpServer, HttpError> {
    if config.token.is_none() && !config.addr.ip().is_loopback() {
        return Err(HttpError::TokenRequired(config.addr));
    }
    let protocol = node.protocol();
    let max_body = protocol
        .state
        .max_value_bytes
        .max(protocol.dissemination.max_payload)
        + BODY_SLACK;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| HttpError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HttpError::Bind {
        addr: config.addr,
        source,
    })?;
    let leave = Arc::new(Notify::new());
    let state = ApiState {
        node: node.clone(),
        token: config.token.map(Arc::from),
        leave: Arc::clone(&leave),
    };
    let app = router(state, max_body);
    tokio::spawn(async move {
        let stopped = async move { node.stopped().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(%addr, error = %e, "the HTTP API stopped");
        }
    });
    tracing::info!(%addr, "HTTP API listening");
    Ok(HttpServer { addr, leave })
}

fn router(state: ApiState, max_body: usize) -> Router {
    Router::new()
        .route("/v1/info", get(members::info))
        .route("/v1/members", get(members::list))
        .route("/v1/join", post(members::join))
        .route("/v1/leave", post(members::leave))
        .route("/v1/kv", get(kv::list))
        .route(
            "/v1/kv/{*key}",
            get(kv::read)
                .put(kv::put)
                .delete(kv::delete)
                .post(kv::update),
        )
        .route("/v1/event/{name}", post(events::send))
        .route("/v1/watch/{what}", get(events::watch))
        .route("/v1/convergence", get(members::convergence))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/{op}", post(keys::operate))
        .route("/v1/metrics", get(metrics::render))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
