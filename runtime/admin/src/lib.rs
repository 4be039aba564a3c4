//! # anthill-admin: the authenticated HTTP API
//!
//! The admin API (axum) under `/v1`, plus `/metrics`, `/healthz` (503
//! with the reason once the database has stopped after an I/O error) and the
//! web console's static page at `/console`. Every route but `/healthz` and
//! the console's assets needs `Authorization: Bearer TOKEN`: the operator's,
//! or a tenant's (which reaches only that tenant's modules). Errors are JSON
//! `{error, detail}` with a status that says whose fault it is.
//!
//! The handlers reach the node only through [`ControlPlane`]
//! ([`NodeControl`] for one node), so each route can be tested with a fake.
//! Must not know: the gateway, sockets other than its own listener.

#![warn(missing_docs, unreachable_pub)]

mod auth;
mod caller;
mod console;
mod control;
mod error;
mod node_control;
mod routes;
mod tenants;

pub use auth::{AdminTokens, TokenError, TokenSource, load_scrape_token, load_token};
pub use control::{ControlPlane, SubscriptionInfo};
pub use error::ApiError;
pub use node_control::NodeControl;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) control: Arc<dyn ControlPlane>,
    pub(crate) token: Arc<str>,
    pub(crate) scrape_token: Option<Arc<str>>,
}

/// Builds the API over `control`, accepting `tokens` (and tenants').
pub fn router(control: Arc<dyn ControlPlane>, tokens: AdminTokens) -> Router {
    let upload_limit = (control.limits().upload_limit_mb as usize) << 20;
    let state = AdminState {
        control,
        token: tokens.operator.into(),
        scrape_token: tokens.scrape.map(Into::into),
    };
    let authed = Router::new()
        .route("/metrics", get(routes::metrics))
        .route("/v1/node", get(routes::node_info))
        .route("/v1/modules", get(routes::list_modules))
        .route(
            "/v1/modules/{name}",
            get(routes::get_module)
                .put(routes::deploy)
                .delete(routes::undeploy),
        )
        .route("/v1/modules/{name}/call", post(routes::call))
        .route("/v1/modules/{name}/promote", post(routes::promote))
        .route("/v1/modules/{name}/rollback", post(routes::rollback))
        .route("/v1/actors", get(routes::actors))
        .route("/v1/cluster/nodes", get(routes::cluster_nodes))
        .route("/v1/logs", get(routes::logs))
        .route("/v1/subscriptions", get(routes::subscriptions))
        .route("/v1/dead-letters", get(routes::dead_letters))
        .route(
            "/v1/dead-letters/{id}",
            axum::routing::delete(routes::discard_dead_letter),
        )
        .route(
            "/v1/dead-letters/{id}/replay",
            post(routes::replay_dead_letter),
        )
        .merge(tenants::routes())
        .layer(DefaultBodyLimit::max(upload_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::refuse_declared_oversize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .merge(console::routes())
        .merge(authed)
        .fallback(routes::not_found)
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(state)
}
