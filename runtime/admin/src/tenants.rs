//! The tenant routes: the operator creates tenants (each gets a token, shown
//! once), sets their quotas, allows one tenant's actors to reach another's, and
//! removes tenants that own nothing. A tenant reads its own record and usage at
//! `/v1/tenant`.

use crate::caller::Caller;
use crate::{AdminState, ApiError};
use anthill_actors::tenants::{Quotas, TenantError, TenantInfo};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Router, routing};
use serde::Deserialize;

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> ApiError {
        let (status, kind) = match &e {
            TenantError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            TenantError::Exists(_) => (StatusCode::CONFLICT, "exists"),
            TenantError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid-name"),
            TenantError::InUse { .. } => (StatusCode::CONFLICT, "in-use"),
            TenantError::Default => (StatusCode::CONFLICT, "default-tenant"),
            TenantError::Quota(_) => (StatusCode::BAD_REQUEST, "invalid-quota"),
            TenantError::Store(s) if s.is_disk_full() => {
                (StatusCode::INSUFFICIENT_STORAGE, "disk-full")
            }
            TenantError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
            TenantError::ClusterUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "cluster-unavailable")
            }
        };
        ApiError::new(status, kind, e.to_string())
    }
}

/// The routes, to be merged behind the token check.
pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/v1/tenant", routing::get(own))
        .route("/v1/tenants", routing::get(list).post(create))
        .route("/v1/tenants/{name}", routing::get(get).delete(remove))
        .route("/v1/tenants/{name}/quotas", routing::put(set_quotas))
        .route(
            "/v1/tenants/{name}/allow",
            routing::post(allow).delete(disallow),
        )
}

fn tenant(s: &AdminState, name: &str) -> Result<TenantInfo, ApiError> {
    s.control
        .tenant(name)
        .ok_or_else(|| TenantError::NotFound(name.to_owned()).into())
}

async fn own(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    let name = match caller {
        Caller::Operator => anthill_core::DEFAULT_TENANT.to_owned(),
        Caller::Tenant(t) => t,
    };
    tenant(&s, &name).map(Json)
}

async fn list(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    Ok(Json(s.control.tenants()))
}

async fn get(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    Ok(Json(tenant(&s, &name)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
    #[serde(default)]
    quotas: Quotas,
}

async fn create(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<CreateTenant>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    let (t, token) = s.control.create_tenant(&req.name, req.quotas)?;
    let mut body = serde_json::to_value(t).expect("plain data");
    body["token"] = serde_json::Value::String(token);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn set_quotas(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(quotas): Json<Quotas>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    Ok(Json(s.control.set_quotas(&name, quotas)?))
}

async fn remove(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_operator()?;
    s.control.remove_tenant(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AllowQuery {
    to: String,
}

async fn allow(
    state: State<AdminState>,
    caller: Extension<Caller>,
    name: Path<String>,
    q: Query<AllowQuery>,
) -> Result<impl IntoResponse, ApiError> {
    set_allowed(state, caller, name, q, true)
}

async fn disallow(
    state: State<AdminState>,
    caller: Extension<Caller>,
    name: Path<String>,
    q: Query<AllowQuery>,
) -> Result<impl IntoResponse, ApiError> {
    set_allowed(state, caller, name, q, false)
}

fn set_allowed(
    State(s): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<AllowQuery>,
    allowed: bool,
) -> Result<Json<TenantInfo>, ApiError> {
    caller.require_operator()?;
    tenant(&s, &name)?;
    Ok(Json(s.control.allow(&name, &q.to, allowed)?))
}
