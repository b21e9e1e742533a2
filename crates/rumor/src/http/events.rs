//! User events and the `watch` streams.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use rumor_proto::{Event, Priority};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::api::{EventView, KeyView, WatchItem};
use super::error::ApiError;

#[derive(Deserialize)]
pub(super) struct SendQuery {
    priority: Option<String>,
}

pub(super) async fn send(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<SendQuery>,
    payload: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let priority = match q.priority.as_deref() {
        None | Some("") => Priority::Normal,
        Some(p) => p.parse().map_err(ApiError::bad_request)?,
    };
    s.node.broadcast(&name, payload.to_vec(), priority).await?;
    Ok(Json(serde_json::json!({ "sent": name })))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Watched {
    Members,
    Events,
    Kv,
}

#[derive(Deserialize)]
pub(super) struct WatchQuery {
    #[serde(default)]
    prefix: String,
}

/// Stream one JSON document per line for every change of the chosen kind,
/// until the client disconnects or the node stops.
pub(super) async fn watch(
    State(s): State<ApiState>,
    Path(what): Path<String>,
    Query(q): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    let watched = match what.as_str() {
        "members" => Watched::Members,
        "events" => Watched::Events,
        "kv" => Watched::Kv,
        other => {
            return Err(ApiError::not_found(format!(
                "cannot watch {other:?}: watch members, events or kv"
            )));
        }
    };
    let events = s.node.subscribe();
    let state = (s, events, q.prefix);
    let lines = futures_util::stream::unfold(state, move |(s, mut events, prefix)| async move {
        loop {
            let item = match events.recv().await {
                Err(RecvError::Closed) => return None,
                Err(RecvError::Lagged(missed)) => WatchItem::Lagged { missed },
                Ok(e) => match next_item(&s, watched, &prefix, e).await {
                    Some(item) => item,
                    None => continue,
                },
            };
            let mut line = serde_json::to_vec(&item).unwrap_or_default();
            line.push(b'\n');
            return Some((
                Ok::<_, std::io::Error>(Bytes::from(line)),
                (s, events, prefix),
            ));
        }
    });
    Ok((
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

async fn next_item(s: &ApiState, watched: Watched, prefix: &str, e: Event) -> Option<WatchItem> {
    match (watched, e) {
        (Watched::Members, Event::Member(m)) => Some(WatchItem::member(&m)),
        (Watched::Events, Event::UserEvent(u)) => Some(WatchItem::Event(EventView::from(&u))),
        (Watched::Kv, Event::KeyChanged { key, .. })
            if key.starts_with(prefix) && !crate::is_reserved_key(&key, prefix) =>
        {
            let entry = s.node.get(&key).await.ok().flatten();
            Some(WatchItem::Kv {
                name: key.to_string(),
                key: entry
                    .filter(|e| !e.is_tombstone())
                    .map(|e| KeyView::new(&key, &e)),
            })
        }
        _ => None,
    }
}
