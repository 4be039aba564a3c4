//! A small client of the admin API, used by the CLI commands.

use super::AdminArgs;
use anyhow::Context;
use serde::Deserialize;

pub(super) struct AdminClient {
    pub(super) base: String,
    token: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    error: String,
    detail: String,
}

impl AdminClient {
    /// Finds the node: flags/env first, then the files a local node writes.
    pub(super) fn from_args(args: &AdminArgs) -> anyhow::Result<AdminClient> {
        let data = super::data_dir(args.data.as_deref());
        let base = match &args.admin {
            Some(a) => a.clone(),
            None => std::fs::read_to_string(data.join("admin.addr"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "http://127.0.0.1:7350".to_owned()),
        };
        let base = if base.starts_with("http://") || base.starts_with("https://") {
            base
        } else {
            format!("http://{base}")
        };
        let token = match &args.token {
            Some(t) => t.clone(),
            None => {
                let path = data.join("admin.token");
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no admin token: pass --token, set ANTHILL_TOKEN, or pass --data / ANTHILL_DATA, or run where ./anthill-data (or a parent's) is ({} not readable)",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        };
        Ok(AdminClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        })
    }

    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a request; a non-2xx answer becomes an error carrying the API's
    /// `{error, detail}`.
    pub(super) async fn send(
        &self,
        req: reqwest::RequestBuilder,
        doing: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let resp = req.send().await.with_context(|| {
            format!(
                "{doing}: cannot reach the node at {} (is `anthill serve` running?)",
                self.base
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let (error, detail) = match serde_json::from_str::<ApiErrorBody>(&text) {
            Ok(e) => (e.error, e.detail),
            Err(_) => ("http".to_owned(), text),
        };
        Err(ApiFailure {
            doing: doing.to_owned(),
            status: status.as_u16(),
            error,
            detail,
        }
        .into())
    }
}

/// The node refused a request: its `{error, detail}` and status, kept apart
/// so `--json` can print them as they came.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub(crate) doing: String,
    pub(crate) status: u16,
    pub(crate) error: String,
    pub(crate) detail: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({}): {}",
            self.doing, self.error, self.status, self.detail
        )
    }
}

impl std::error::Error for ApiFailure {}
