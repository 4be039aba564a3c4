//! The handlers. Each one is a thin translation between HTTP and a function of the
//! part of the node that owns the operation.

use crate::caller::Caller;
use crate::{AdminState, ApiError};
use anthill_actors::logs::LogQuery;
use anthill_actors::module::{DeployRequest, SettingsRequest};
use anthill_actors::tenants::Tenant;
use anthill_core::{Address, CallError};
use anthill_store::StoreError;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::time::Duration;

/// Answers 413 from the `Content-Length` header alone, before reading a body the
/// node would refuse anyway (the body limit still catches bodies without one).
pub(super) async fn refuse_declared_oversize(
    State(s): State<AdminState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let limit_mb = s.control.limits().upload_limit_mb;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > u64::from(limit_mb) << 20
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "the body ({len} bytes) exceeds the {limit_mb} MiB upload limit (limits.upload_limit_mb)"
            ),
        ));
    }
    Ok(next.run(req).await)
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such route; see docs/operations.md",
    )
}

pub(super) async fn metrics(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.control.metrics(),
    ))
}

/// What a client may want to know before it sends anything: version and limits.
pub(super) async fn node_info(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    Ok(Json(s.control.node_info()))
}

pub(super) async fn list_modules(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> impl IntoResponse {
    let infos: Vec<_> = s
        .control
        .modules()
        .into_iter()
        .filter(|m| caller.owns(m))
        .collect();
    Json(infos)
}

pub(super) async fn get_module(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(caller.module(s.control.as_ref(), &name)?))
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
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(mut settings): Query<SettingsRequest>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    settings.tenant = caller.tenant_for_deploy(settings.tenant.take());
    let limit = format!(
        "{} MiB upload limit (limits.upload_limit_mb)",
        s.control.limits().upload_limit_mb
    );
    let bytes = body_or_error(body, "component", limit)?;
    let deployed = s
        .control
        .deploy(DeployRequest {
            name,
            settings,
            bytes,
        })
        .await?;
    let status = if deployed.swap.is_some() || deployed.unchanged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(deployed)))
}

pub(super) async fn undeploy(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.module(s.control.as_ref(), &name)?;
    Ok(match s.control.undeploy(&name).await? {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(rollout) => {
            Json(serde_json::json!({ "undeployed": name, "rollout": rollout })).into_response()
        }
    })
}

/// `GET /v1/cluster/nodes`: every node with its addresses, load and state.
pub(super) async fn cluster_nodes(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    match s.control.cluster_nodes().await {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-clustered",
            "this node runs alone: start it with --cluster nats://HOST:PORT --node NAME to join a cluster",
        )),
        Some(Err(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster-unreachable",
            e,
        )),
        Some(Ok(nodes)) => Ok(Json(serde_json::json!({ "nodes": nodes }))),
    }
}

pub(super) async fn promote(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.module(s.control.as_ref(), &name)?;
    Ok(Json(s.control.promote(&name).await?))
}

#[derive(Deserialize)]
pub(super) struct RollbackQuery {
    to: Option<u32>,
}

pub(super) async fn rollback(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<RollbackQuery>,
) -> Result<impl IntoResponse, ApiError> {
    caller.module(s.control.as_ref(), &name)?;
    Ok(Json(s.control.rollback(&name, q.to).await?))
}

#[derive(Deserialize)]
pub(super) struct CallQuery {
    #[serde(default)]
    key: String,
    timeout_ms: Option<u64>,
}

pub(super) async fn call(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<CallQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.module(s.control.as_ref(), &name)?;
    let limits = s.control.limits();
    let payload = body_or_error(body, "payload", "upload limit".into())?;
    if payload.len() > limits.max_message_bytes {
        return Err(CallError::TooLarge {
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
    let reply = s.control.call(to, payload.to_vec(), timeout).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], reply))
}

#[derive(Deserialize)]
pub(super) struct ActorsQuery {
    module: Option<String>,
}

pub(super) async fn actors(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ActorsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let modules = match q.module {
        Some(name) => vec![caller.module(s.control.as_ref(), &name)?],
        None => s
            .control
            .modules()
            .into_iter()
            .filter(|m| caller.owns(m))
            .collect(),
    };
    let out: Vec<_> = modules
        .iter()
        .map(|m| serde_json::json!({ "module": m.name, "actors": s.control.actors(&m.name) }))
        .collect();
    Ok(Json(out))
}

/// `GET /v1/logs?wait_ms=`: how long to wait for new lines (besides the
/// [`LogQuery`] fields; two extractors, since `serde(flatten)` loses the
/// types of query-string numbers).
#[derive(Deserialize)]
pub(super) struct LogsWait {
    wait_ms: Option<u64>,
}

/// Longest a `GET /v1/logs?wait_ms=` may wait before answering empty.
const MAX_LOG_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn logs(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<LogQuery>,
    Query(wait): Query<LogsWait>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(name) = &query.module {
        caller.module(s.control.as_ref(), name)?;
    }
    let only = match &caller {
        Caller::Operator => None,
        Caller::Tenant(_) => Some(
            s.control
                .modules()
                .into_iter()
                .filter(|m| caller.owns(m))
                .map(|m| m.name)
                .collect(),
        ),
    };
    let wait = Duration::from_millis(wait.wait_ms.unwrap_or(0)).min(MAX_LOG_WAIT);
    Ok(Json(s.control.logs(query, only, wait).await))
}

pub(super) async fn subscriptions(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    Ok(Json(s.control.subscriptions()))
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
}

pub(super) async fn dead_letters(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    let letters = s.control.dead_letters().map_err(store_error)?;
    let out: Vec<_> = letters
        .iter()
        .map(|d| {
            let (tenant, topic) = Tenant::unscope_topic(&d.topic);
            serde_json::json!({
                "id": d.id,
                "topic": topic,
                "tenant": tenant,
                "subscriber": Address::new(d.module.clone(), d.key.clone()).to_string(),
                "seq": d.seq,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "at_ms": d.at_ms,
                "bytes": d.event.len(),
                "text": std::str::from_utf8(&d.event).ok(),
            })
        })
        .collect();
    Ok(Json(out))
}

pub(super) async fn replay_dead_letter(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<u64>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    s.control.replay_dead_letter(id).await?;
    Ok(Json(serde_json::json!({ "replayed": id })))
}

pub(super) async fn discard_dead_letter(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<u64>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    if s.control.discard_dead_letter(id).map_err(store_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no dead letter {id}"),
        ))
    }
}

/// `ok`, or 503 with the reason once an I/O error (a full disk) has stopped the
/// database: durable writes fail until the node restarts, which a load
/// balancer or an operator should know without a token.
pub(super) async fn healthz(State(s): State<AdminState>) -> axum::response::Response {
    match s.control.health() {
        Ok(()) => "ok\n".into_response(),
        Err(reason) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store-stopped", reason).into_response()
        }
    }
}
