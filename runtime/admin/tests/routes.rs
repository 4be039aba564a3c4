//! The admin API request by request, over a fake control plane: no node, no
//! engine, no store. Each test states one rule of docs/operations.md (who may
//! call what, which status a failure maps to, what stays JSON).

use anthill_actors::actor::ActorInfo;
use anthill_actors::logs::{LogLine, LogPage, LogQuery};
use anthill_actors::module::{DeployError, DeployRequest, Deployed, ModuleInfo, SwapSummary};
use anthill_actors::tenants::{Quotas, TenantError, TenantInfo};
use anthill_admin::{ControlPlane, SubscriptionInfo};
use anthill_core::{Address, CallError, Limits};
use anthill_store::{DeadLetter, StoreError};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const OPERATOR: &str = "operator-token";
const TENANT: &str = "tenant-a-token";
const SCRAPER: &str = "scrape-token";

/// Two modules: `game` of tenant `a`, `billing` of `default`.
struct Fake {
    limits: Limits,
    healthy: bool,
    calls: Mutex<Vec<(String, Vec<u8>)>>,
}

fn module(name: &str, tenant: &str) -> ModuleInfo {
    serde_json::from_value(serde_json::json!({
        "name": name, "kind": "singleton", "version": 1, "sha256": "00", "size": 1,
        "deployed_at_ms": 0, "live_actors": 0, "actors_per_version": {},
        "canary": null, "swap_in_progress": null,
        "settings": {"kind": "singleton", "deadline_ms": 100, "memory_mb": 64,
            "idle_timeout_ms": 1, "snapshot_interval_ms": 1, "mailbox": 1},
        "versions": [], "tenant": tenant,
    }))
    .expect("a module info")
}

fn unsupported<T: Send + 'static>() -> BoxFuture<'static, Result<T, DeployError>> {
    Box::pin(async { Err(DeployError::Internal("not in this fake".into())) })
}

impl ControlPlane for Fake {
    fn limits(&self) -> &Limits {
        &self.limits
    }
    fn node_info(&self) -> serde_json::Value {
        serde_json::json!({ "version": "test" })
    }
    fn metrics(&self) -> String {
        "anthill_fake 1\n".into()
    }
    fn health(&self) -> Result<(), String> {
        if self.healthy {
            Ok(())
        } else {
            Err("No space left on device".into())
        }
    }
    fn modules(&self) -> Vec<ModuleInfo> {
        vec![module("game", "a"), module("billing", "default")]
    }
    fn module(&self, name: &str) -> Option<ModuleInfo> {
        self.modules().into_iter().find(|m| m.name == name)
    }
    fn deploy(&self, req: DeployRequest) -> BoxFuture<'_, Result<Deployed, DeployError>> {
        Box::pin(async move { Err(DeployError::InvalidName(req.name)) })
    }
    fn undeploy<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<anthill_core::cluster::Rollout>, DeployError>> {
        unsupported()
    }
    fn promote<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<SwapSummary, DeployError>> {
        unsupported()
    }
    fn rollback<'a>(
        &'a self,
        name: &'a str,
        _: Option<u32>,
    ) -> BoxFuture<'a, Result<SwapSummary, DeployError>> {
        Box::pin(async move { Err(DeployError::NoPreviousVersion(name.to_owned())) })
    }
    fn call(
        &self,
        to: Address,
        payload: Vec<u8>,
        _: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>, CallError>> {
        self.calls
            .lock()
            .unwrap()
            .push((to.to_string(), payload.clone()));
        Box::pin(async move { Ok(payload) })
    }
    fn actors(&self, _: &str) -> Vec<ActorInfo> {
        Vec::new()
    }
    /// One line per module, of the modules `only` allows.
    fn logs(&self, _: LogQuery, only: Option<Vec<String>>, _: Duration) -> BoxFuture<'_, LogPage> {
        let lines = self
            .modules()
            .into_iter()
            .filter(|m| only.as_ref().is_none_or(|o| o.contains(&m.name)))
            .enumerate()
            .map(|(i, m)| LogLine {
                seq: i as u64 + 1,
                ts_ms: 0,
                module: m.name,
                key: String::new(),
                version: 1,
                stream: "stdout".into(),
                text: "hello".into(),
            })
            .collect();
        Box::pin(async move { LogPage { lines, next: 2 } })
    }
    fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        Vec::new()
    }
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(Vec::new())
    }
    fn replay_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(async move { Err(CallError::NotFound(format!("no dead letter {id}"))) })
    }
    fn discard_dead_letter(&self, _: u64) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn tenant_by_token(&self, token: &str) -> Option<String> {
        (token == TENANT).then(|| "a".to_owned())
    }
    fn tenant(&self, _: &str) -> Option<TenantInfo> {
        None
    }
    fn tenants(&self) -> Vec<TenantInfo> {
        Vec::new()
    }
    fn create_tenant(&self, name: &str, _: Quotas) -> Result<(TenantInfo, String), TenantError> {
        Err(TenantError::Exists(name.to_owned()))
    }
    fn set_quotas(&self, name: &str, _: Quotas) -> Result<TenantInfo, TenantError> {
        Err(TenantError::NotFound(name.to_owned()))
    }
    fn allow(&self, name: &str, _: &str, _: bool) -> Result<TenantInfo, TenantError> {
        Err(TenantError::NotFound(name.to_owned()))
    }
    fn remove_tenant(&self, _: &str) -> Result<(), TenantError> {
        Err(TenantError::Default)
    }
}

fn fake(healthy: bool) -> Arc<Fake> {
    Arc::new(Fake {
        limits: Limits {
            max_message_bytes: 16,
            ..Limits::default()
        },
        healthy,
        calls: Mutex::default(),
    })
}

/// Sends one request; answers the status and the body as JSON (or text).
async fn send(
    control: Arc<Fake>,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &[u8],
) -> (StatusCode, serde_json::Value) {
    let app = anthill_admin::router(
        control,
        anthill_admin::AdminTokens {
            operator: OPERATOR.into(),
            scrape: Some(SCRAPER.into()),
        },
    );
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .oneshot(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .expect("a response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, json)
}

#[tokio::test]
async fn every_route_but_healthz_needs_a_known_token() {
    let (s, body) = send(fake(true), "GET", "/v1/modules", None, b"").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    let (s, body) = send(fake(true), "GET", "/v1/modules", Some("guess"), b"").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "wrong admin token");
    let (s, _) = send(fake(true), "GET", "/healthz", None, b"").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_tenant_sees_only_its_modules_and_no_operator_route() {
    let (s, body) = send(fake(true), "GET", "/v1/modules", Some(TENANT), b"").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<_> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, vec!["game"]);
    // Another tenant's module does not exist, as far as this tenant knows.
    let (s, body) = send(fake(true), "GET", "/v1/modules/billing", Some(TENANT), b"").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not-found"))
    );
    let (s, body) = send(fake(true), "GET", "/metrics", Some(TENANT), b"").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, body) = send(fake(true), "GET", "/metrics", Some(OPERATOR), b"").await;
    assert_eq!((s, body), (StatusCode::OK, "anthill_fake 1\n".into()));
}

#[tokio::test]
async fn a_call_reaches_the_control_plane_within_the_message_limit() {
    let control = fake(true);
    let (s, _) = send(
        control.clone(),
        "POST",
        "/v1/modules/game/call?key=k1",
        Some(OPERATOR),
        b"ping",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        control.calls.lock().unwrap().clone(),
        vec![("game/k1".to_owned(), b"ping".to_vec())]
    );
    let (s, body) = send(
        control.clone(),
        "POST",
        "/v1/modules/game/call",
        Some(OPERATOR),
        &[0; 17],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too-large"))
    );
    assert_eq!(
        control.calls.lock().unwrap().len(),
        1,
        "the oversized call never reached it"
    );
}

#[tokio::test]
async fn failures_map_to_statuses_that_say_whose_fault() {
    let (s, body) = send(
        fake(true),
        "PUT",
        "/v1/modules/Bad!",
        Some(OPERATOR),
        b"\0asm",
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid-name"))
    );
    let (s, body) = send(
        fake(true),
        "POST",
        "/v1/modules/game/rollback",
        Some(OPERATOR),
        b"",
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("no-previous-version"))
    );
    let (s, body) = send(
        fake(true),
        "DELETE",
        "/v1/tenants/default",
        Some(OPERATOR),
        b"",
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("default-tenant"))
    );
    let (s, body) = send(fake(false), "GET", "/healthz", None, b"").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "store-stopped");
    assert_eq!(body["detail"], "No space left on device");
    let (s, body) = send(fake(true), "GET", "/v1/nowhere", Some(OPERATOR), b"").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not-found"))
    );
}

#[tokio::test]
async fn a_tenant_reads_only_its_modules_logs() {
    let (s, body) = send(fake(true), "GET", "/v1/logs", Some(TENANT), b"").await;
    assert_eq!(s, StatusCode::OK);
    let modules: Vec<_> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["module"].clone())
        .collect();
    assert_eq!(modules, vec!["game"]);
    let (s, _) = send(
        fake(true),
        "GET",
        "/v1/logs?module=billing",
        Some(TENANT),
        b"",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, body) = send(fake(true), "GET", "/v1/logs", Some(OPERATOR), b"").await;
    assert_eq!(body["lines"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_scrape_token_reads_metrics_and_nothing_else() {
    let (s, body) = send(fake(true), "GET", "/metrics", Some(SCRAPER), b"").await;
    assert_eq!((s, body), (StatusCode::OK, "anthill_fake 1\n".into()));
    let (s, body) = send(fake(true), "GET", "/v1/modules", Some(SCRAPER), b"").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
}

#[tokio::test]
async fn axum_rejections_answer_json_too() {
    // A query value of the wrong type is axum's own rejection.
    let (s, body) = send(
        fake(true),
        "GET",
        "/v1/logs?after=soon",
        Some(OPERATOR),
        b"",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad-request");
    assert!(body["detail"].as_str().unwrap().contains("after"), "{body}");
    let (s, body) = send(fake(true), "POST", "/v1/modules", Some(OPERATOR), b"").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method-not-allowed");
}
