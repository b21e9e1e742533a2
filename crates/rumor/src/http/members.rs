//! Routes about the node and its view of the cluster: info, members, join,
//! leave, convergence.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{Query, State};
use rumor_proto::MemberState;
use serde::Deserialize;

use super::ApiState;
use super::api::{ConvergenceView, InfoView, JoinRequest, MemberView};
use super::error::ApiError;

pub(super) async fn info(State(s): State<ApiState>) -> Result<Json<InfoView>, ApiError> {
    Ok(Json(InfoView::from(&s.node.info().await?)))
}

#[derive(Deserialize)]
pub(super) struct MembersQuery {
    status: Option<String>,
}

pub(super) async fn list(
    State(s): State<ApiState>,
    Query(q): Query<MembersQuery>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let wanted = match q.status.as_deref() {
        None | Some("") | Some("any") => None,
        Some(status) => Some(parse_state(status)?),
    };
    let mut members: Vec<MemberView> = s
        .node
        .members()
        .await?
        .iter()
        .filter(|m| wanted.is_none_or(|w| m.state == w))
        .map(MemberView::from)
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(members))
}

fn parse_state(s: &str) -> Result<MemberState, ApiError> {
    [
        MemberState::Alive,
        MemberState::Suspect,
        MemberState::Dead,
        MemberState::Left,
    ]
    .into_iter()
    .find(|m| m.as_str() == s)
    .ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown status {s:?}: use alive, suspect, dead, left or any"
        ))
    })
}

/// Longest list of join addresses accepted.
const MAX_JOIN_ADDRS: usize = 64;

pub(super) async fn join(
    State(s): State<ApiState>,
    Json(req): Json<JoinRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if req.addrs.is_empty() || req.addrs.len() > MAX_JOIN_ADDRS {
        return Err(ApiError::bad_request(format!(
            "give 1 to {MAX_JOIN_ADDRS} addresses to join through"
        )));
    }
    let mut seeds: Vec<SocketAddr> = Vec::new();
    for a in &req.addrs {
        let resolved = tokio::net::lookup_host(a.as_str()).await.map_err(|e| {
            ApiError::bad_request(format!(
                "cannot resolve {a:?} ({e}); give host:port, for example 10.0.0.5:7946"
            ))
        })?;
        seeds.extend(resolved.take(1));
    }
    s.node.join(seeds.clone()).await?;
    let seeds: Vec<String> = seeds.iter().map(ToString::to_string).collect();
    Ok(Json(serde_json::json!({ "joining": seeds })))
}

pub(super) async fn leave(State(s): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    s.node.leave().await?;
    s.leave.notify_one();
    Ok(Json(serde_json::json!({ "left": true })))
}

pub(super) async fn convergence(
    State(s): State<ApiState>,
) -> Result<Json<ConvergenceView>, ApiError> {
    Ok(Json(ConvergenceView::from(&s.node.convergence().await?)))
}
