//! The admin token: where it comes from, and the check on every request.

use crate::caller::Caller;
use crate::{AdminState, ApiError};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Where the node's admin token came from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// From the config file, `--token` or `ANTHILL_TOKEN`.
    Config,
    /// Read from, or generated into, this file.
    File {
        /// The token file.
        path: PathBuf,
        /// Created on this start.
        generated: bool,
    },
}

/// The admin token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file cannot be read.
    #[error("cannot read the admin token {path}: {source}")]
    Read {
        /// The token file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file cannot be written.
    #[error("cannot write the admin token {path}: {source}")]
    Write {
        /// The token file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("the admin token file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`", path = path.display())]
    /// Others may read the token file.
    Permissions {
        /// The token file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The token is empty.
    #[error("the admin token in {0} is empty")]
    Empty(String),
}

/// The tokens the admin API accepts besides tenants'.
#[derive(Clone)]
pub struct AdminTokens {
    /// The operator's: every route.
    pub operator: String,
    /// Read-only, for a metrics scraper: `GET /metrics` only.
    pub scrape: Option<String>,
}

/// The token from the config (`configured`, which `serve` fills from
/// `--token` or `ANTHILL_TOKEN`), else `DATA/admin.token`, generated with mode
/// 0600 on first start.
pub fn load_token(
    configured: Option<&str>,
    data: &Path,
) -> Result<(String, TokenSource), TokenError> {
    load_named_token(configured, &data.join("admin.token"))
}

/// The scrape token: from the config (`metrics_token`, or
/// `ANTHILL_METRICS_TOKEN`), else `DATA/metrics.token`, generated like the
/// admin token.
pub fn load_scrape_token(
    configured: Option<&str>,
    data: &Path,
) -> Result<(String, TokenSource), TokenError> {
    load_named_token(configured, &data.join("metrics.token"))
}

fn load_named_token(
    configured: Option<&str>,
    path: &Path,
) -> Result<(String, TokenSource), TokenError> {
    if let Some(t) = configured {
        if t.trim().is_empty() {
            return Err(TokenError::Empty("the configuration".into()));
        }
        return Ok((t.trim().to_owned(), TokenSource::Config));
    }
    let path = path.to_owned();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path)
                .map_err(|source| TokenError::Read {
                    path: path.clone(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(TokenError::Permissions {
                    path,
                    mode: mode & 0o777,
                });
            }
            let t = text.trim().to_owned();
            if t.is_empty() {
                return Err(TokenError::Empty(path.display().to_string()));
            }
            Ok((
                t,
                TokenSource::File {
                    path,
                    generated: false,
                },
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = hex::encode(rand::random::<[u8; 32]>());
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|source| TokenError::Write {
                    path: path.clone(),
                    source,
                })?;
            writeln!(f, "{token}").map_err(|source| TokenError::Write {
                path: path.clone(),
                source,
            })?;
            Ok((
                token,
                TokenSource::File {
                    path,
                    generated: true,
                },
            ))
        }
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

/// Rejects a request without a known bearer token: the operator's (compared in
/// constant time) or a tenant's (looked up by its SHA-256). The caller goes
/// into the request's extensions for the handlers.
pub(super) async fn require_token(
    State(state): State<AdminState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing `Authorization: Bearer TOKEN` header; the token is in DATA/admin.token \
             (or pass --token / ANTHILL_TOKEN)",
        )),
        Some(t) if bool::from(t.trim().as_bytes().ct_eq(state.token.as_bytes())) => {
            req.extensions_mut().insert(Caller::Operator);
            Ok(next.run(req).await)
        }
        Some(t)
            if state
                .scrape_token
                .as_deref()
                .is_some_and(|s| bool::from(t.trim().as_bytes().ct_eq(s.as_bytes()))) =>
        {
            if req.uri().path() != "/metrics" || req.method() != axum::http::Method::GET {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the scrape token (DATA/metrics.token) reads GET /metrics only; \
                     use the admin token for this route",
                ));
            }
            req.extensions_mut().insert(Caller::Operator);
            Ok(next.run(req).await)
        }
        Some(t) => match state.control.tenant_by_token(t.trim()) {
            Some(tenant) => {
                req.extensions_mut().insert(Caller::Tenant(tenant));
                Ok(next.run(req).await)
            }
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong admin token",
            )),
        },
    }
}
