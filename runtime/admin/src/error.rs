//! API errors as JSON `{error, detail}`, and the status each failure maps to:
//! 4xx for the caller's input, 5xx only for the node's own faults.

use anthill_actors::module::DeployError;
use anthill_core::CallError;
use anthill_engine::ComponentError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error: the status, a stable `error` kind and a `detail` for people.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short stable name (`not-found`, `too-large`, ...).
    pub error: &'static str,
    /// What went wrong and how to fix it.
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: &'a str,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body {
            error: self.error,
            detail: &self.detail,
        });
        (self.status, body).into_response()
    }
}

/// Keeps every error answer JSON: axum's own rejections (a bad query string,
/// a wrong method, a malformed path) answer `text/plain`; this rewrites them
/// as `{error, detail}` with the same status.
pub(crate) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 << 10).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::NOT_FOUND => "not-found",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    let detail = if text.is_empty() {
        format!(
            "{} (see docs/operations.md for the routes)",
            status.canonical_reason().unwrap_or("error")
        )
    } else {
        text
    };
    let mut out = ApiError::new(status, error, detail).into_response();
    // Keep headers such as `Allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> ApiError {
        let status = match &e {
            CallError::ModuleNotFound(_) | CallError::NotFound(_) => StatusCode::NOT_FOUND,
            CallError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CallError::Timeout { .. } | CallError::DeadlineExceeded { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            CallError::Overloaded(_) | CallError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Cycle(_) => StatusCode::LOOP_DETECTED,
            CallError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            // The module failed, not the node: a bad gateway, like a proxy whose
            // upstream crashed.
            CallError::Trapped { .. }
            | CallError::OutOfMemory { .. }
            | CallError::LimitReached { .. } => StatusCode::BAD_GATEWAY,
            CallError::Quota(_) => StatusCode::TOO_MANY_REQUESTS,
            CallError::Forbidden(_) => StatusCode::FORBIDDEN,
            CallError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CallError::BadRequest(_) => StatusCode::BAD_REQUEST,
            CallError::Storage {
                disk_full: true, ..
            } => StatusCode::INSUFFICIENT_STORAGE,
            CallError::Storage { .. } | CallError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.kind(), e.to_string())
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> ApiError {
        let (status, kind) = match &e {
            DeployError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid-name"),
            DeployError::Component(ComponentError::NotAComponent(_)) => {
                (StatusCode::BAD_REQUEST, "not-a-component")
            }
            DeployError::Component(ComponentError::Invalid(_)) => {
                (StatusCode::BAD_REQUEST, "invalid-component")
            }
            DeployError::Component(ComponentError::WrongWorld(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "wrong-world")
            }
            DeployError::Settings(_) => (StatusCode::BAD_REQUEST, "invalid-settings"),
            DeployError::KindChange { .. } => (StatusCode::CONFLICT, "kind-change"),
            DeployError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            DeployError::SwapFailed { .. } => (StatusCode::CONFLICT, "swap-failed"),
            DeployError::NoCanary(_) => (StatusCode::CONFLICT, "no-canary"),
            DeployError::NoPreviousVersion(_) => (StatusCode::CONFLICT, "no-previous-version"),
            DeployError::UnknownVersion { .. } => (StatusCode::NOT_FOUND, "unknown-version"),
            DeployError::CanaryInProgress { .. } => (StatusCode::CONFLICT, "canary-in-progress"),
            DeployError::CanaryPercent(_) => (StatusCode::BAD_REQUEST, "invalid-settings"),
            DeployError::UnknownTenant(_) => (StatusCode::NOT_FOUND, "unknown-tenant"),
            DeployError::NameTaken { .. } => (StatusCode::CONFLICT, "name-taken"),
            DeployError::TenantChange { .. } => (StatusCode::CONFLICT, "tenant-change"),
            DeployError::Store(s) if s.is_disk_full() => {
                (StatusCode::INSUFFICIENT_STORAGE, "disk-full")
            }
            DeployError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
            DeployError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            DeployError::ClusterConflict { .. } => (StatusCode::CONFLICT, "cluster-conflict"),
            DeployError::ClusterUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "cluster-unavailable")
            }
        };
        ApiError::new(status, kind, e.to_string())
    }
}
