//! The handlers. Each one is a thin translation between HTTP and a function of the
//! part of the node that owns the operation.

use super::{AdminState, ApiError};
use crate::host::types::Sender;
use crate::module::{self, DeployRequest, SettingsRequest};
use crate::router::{Address, CallChain};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::time::Duration;

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such route; see docs/operations.md",
    )
}

pub(super) async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.node.metrics.render(),
    )
}

pub(super) async fn list_modules(State(s): State<AdminState>) -> impl IntoResponse {
    let infos: Vec<_> = s.node.router.modules().iter().map(|m| m.info()).collect();
    Json(infos)
}

pub(super) async fn get_module(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let m = s
        .node
        .router
        .module(&name)
        .ok_or_else(|| ApiError::from(module::DeployError::NotFound(name)))?;
    Ok(Json(m.info()))
}

fn body_or_error(
    body: Result<Bytes, BytesRejection>,
    what: &str,
    limit: String,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "too-large",
                format!("the {what} exceeds the {limit}"),
            )
        } else {
            ApiError::new(status, "bad-body", rejection.body_text())
        }
    })
}

pub(super) async fn deploy(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Query(settings): Query<SettingsRequest>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = format!(
        "{} MiB upload limit (limits.upload_limit_mb)",
        s.node.config.limits.upload_limit_mb
    );
    let bytes = body_or_error(body, "component", limit)?;
    let deployed = module::deploy(
        &s.node,
        DeployRequest {
            name,
            settings,
            bytes,
        },
    )
    .await
    .inspect_err(|_| {
        s.node.metrics.deploys.with_label_values(&["refused"]).inc();
    })?;
    let status = if deployed.swap.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(deployed)))
}

pub(super) async fn undeploy(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    module::undeploy(&s.node, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(super) struct CallQuery {
    #[serde(default)]
    key: String,
    timeout_ms: Option<u64>,
}

pub(super) async fn call(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Query(q): Query<CallQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let limits = &s.node.config.limits;
    let payload = body_or_error(body, "payload", "upload limit".into())?;
    if payload.len() > limits.max_message_bytes {
        return Err(crate::actor::CallError::TooLarge {
            what: "payload".into(),
            size: payload.len(),
            limit: limits.max_message_bytes,
        }
        .into());
    }
    let timeout = Duration::from_millis(
        q.timeout_ms
            .unwrap_or(limits.call_timeout_ms)
            .min(limits.max_call_timeout_ms),
    );
    let to = Address::new(name, q.key);
    let reply = s
        .node
        .router
        .call(
            &s.node,
            &to,
            Sender::Admin,
            payload.to_vec(),
            timeout,
            CallChain::default(),
        )
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], reply))
}

#[derive(Deserialize)]
pub(super) struct ActorsQuery {
    module: Option<String>,
}

pub(super) async fn actors(
    State(s): State<AdminState>,
    Query(q): Query<ActorsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let modules = match q.module {
        Some(name) => vec![
            s.node
                .router
                .module(&name)
                .ok_or_else(|| ApiError::from(module::DeployError::NotFound(name)))?,
        ],
        None => s.node.router.modules(),
    };
    let out: Vec<_> = modules
        .iter()
        .map(|m| serde_json::json!({ "module": m.name, "actors": m.actors() }))
        .collect();
    Ok(Json(out))
}
