//! Key-value routes: read, list, put, delete, counters and sets.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use rumor_proto::state::store::check_key;
use rumor_proto::state::{Kind, Op, VersionVector};
use serde::Deserialize;

use super::ApiState;
use super::api::{KeyView, WriteResult};
use super::context_token;
use super::error::ApiError;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    prefix: String,
}

pub(super) async fn list(
    State(s): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = s.node.list(&q.prefix).await?;
    Ok(Json(keys.iter().map(|(k, e)| KeyView::new(k, e)).collect()))
}

fn valid_key(s: &ApiState, key: &str) -> Result<(), ApiError> {
    check_key(key, s.node.protocol().state.max_key_bytes).map_err(ApiError::bad_request)
}

pub(super) async fn read(
    State(s): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    valid_key(&s, &key)?;
    match s.node.get(&key).await? {
        Some(e) if !e.is_tombstone() => Ok(Json(KeyView::new(&key, &e))),
        _ => Err(ApiError::not_found(format!("no key {key:?}"))),
    }
}

#[derive(Deserialize)]
pub(super) struct PutQuery {
    context: Option<String>,
    kind: Option<String>,
}

fn context(token: Option<&str>) -> Result<Option<VersionVector>, ApiError> {
    token
        .filter(|t| !t.is_empty())
        .map(context_token::decode)
        .transpose()
        .map_err(ApiError::bad_request)
}

async fn write(s: &ApiState, key: &str, op: Op) -> Result<Json<WriteResult>, ApiError> {
    valid_key(s, key)?;
    let written = s.node.write(key, op).await?;
    Ok(Json(WriteResult {
        key: key.to_string(),
        context: context_token::encode(&written.entry.context),
    }))
}

pub(super) async fn put(
    State(s): State<ApiState>,
    Path(key): Path<String>,
    Query(q): Query<PutQuery>,
    body: Bytes,
) -> Result<Json<WriteResult>, ApiError> {
    let kind = q
        .kind
        .as_deref()
        .map(str::parse::<Kind>)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let op = Op::Put {
        value: body.to_vec(),
        context: context(q.context.as_deref())?,
        kind,
    };
    write(&s, &key, op).await
}

#[derive(Deserialize)]
pub(super) struct DeleteQuery {
    context: Option<String>,
}

pub(super) async fn delete(
    State(s): State<ApiState>,
    Path(key): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Json<WriteResult>, ApiError> {
    let op = Op::Delete {
        context: context(q.context.as_deref())?,
    };
    write(&s, &key, op).await
}

#[derive(Deserialize)]
pub(super) struct UpdateQuery {
    op: String,
    by: Option<i64>,
}

pub(super) async fn update(
    State(s): State<ApiState>,
    Path(key): Path<String>,
    Query(q): Query<UpdateQuery>,
    body: Bytes,
) -> Result<Json<WriteResult>, ApiError> {
    let by = q.by.unwrap_or(1);
    let op = match q.op.as_str() {
        "incr" => Op::Increment(by),
        "decr" => {
            Op::Increment(by.checked_neg().ok_or_else(|| {
                ApiError::bad_request("decrement out of range; use a smaller --by")
            })?)
        }
        "set-add" => Op::SetAdd(body.to_vec()),
        "set-remove" => Op::SetRemove(body.to_vec()),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown op {other:?}: use incr, decr, set-add or set-remove (put and delete have their own methods)"
            )));
        }
    };
    write(&s, &key, op).await
}
