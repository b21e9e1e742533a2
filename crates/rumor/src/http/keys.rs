//! Keyring routes: list the cluster's keys, install, use and remove one.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::ApiState;
use super::error::ApiError;
use crate::KeysReport;

/// The body of a keyring operation.
#[derive(Deserialize)]
pub(super) struct KeyBody {
    key: String,
}

pub(super) async fn list(State(s): State<ApiState>) -> Result<Json<KeysReport>, ApiError> {
    Ok(Json(s.node.keys_list().await?))
}

pub(super) async fn operate(
    State(s): State<ApiState>,
    Path(op): Path<String>,
    Json(body): Json<KeyBody>,
) -> Result<Json<KeysReport>, ApiError> {
    let report = match op.as_str() {
        "install" => s.node.keys_install(&body.key).await?,
        "use" => s.node.keys_use(&body.key).await?,
        "remove" => s.node.keys_remove(&body.key).await?,
        other => {
            return Err(ApiError::not_found(format!(
                "no keyring operation {other:?}: use install, use or remove"
            )));
        }
    };
    Ok(Json(report))
}
