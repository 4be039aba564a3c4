//! `anthill tenants`: list, create (prints the tenant's token once), set quotas,
//! allow or deny one tenant's actors reaching another's, and remove.

use super::AdminArgs;
use super::client::AdminClient;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub(super) struct TenantsArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List tenants with their quotas and usage (the default).
    List,
    /// Create a tenant; prints its admin token (shown only this once).
    Create {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Replace a tenant's quotas (unset ones become unlimited).
    Set {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Let FROM's actors call, send and publish to TO's.
    Allow { from: String, to: String },
    /// Stop FROM's actors reaching TO's.
    Deny { from: String, to: String },
    /// Remove a tenant that owns no modules (its token stops working).
    Remove { name: String },
}

#[derive(Args, Debug)]
struct QuotaArgs {
    /// Live actors across the tenant's modules
    #[arg(long)]
    max_actors: Option<u64>,
    /// Memory caps of its live actors, summed (MiB)
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// Guest calls of its modules executing at once
    #[arg(long)]
    cpu_share: Option<u32>,
    /// Stored snapshots of its modules (MiB)
    #[arg(long)]
    max_storage_mb: Option<u64>,
    /// Messages delivered to its actors per second
    #[arg(long)]
    messages_per_sec: Option<u32>,
    /// Players in its rooms at once
    #[arg(long)]
    max_players: Option<u64>,
}

impl QuotaArgs {
    fn to_json(&self) -> Value {
        json!({
            "max_actors": self.max_actors,
            "max_memory_mb": self.max_memory_mb,
            "cpu_share": self.cpu_share,
            "max_storage_mb": self.max_storage_mb,
            "messages_per_sec": self.messages_per_sec,
            "max_players": self.max_players,
        })
    }
}

fn quota_text(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, q)| !q.is_null())
        .map(|(k, q)| format!("{k}={q}"))
        .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(" ")
    }
}

/// A JSON array of names as `a,b`, or `-`.
fn names(v: &Value) -> String {
    let all: Vec<_> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if all.is_empty() {
        "-".into()
    } else {
        all.join(",")
    }
}

fn print_tenant(t: &Value) {
    let u = &t["usage"];
    println!(
        "{:<16} actors {:>5}  memory {:>6} MiB  storage {:>10} B  players {:>5}  quotas: {}  reaches: {}  modules: {}",
        t["name"].as_str().unwrap_or("?"),
        u["live_actors"].to_string(),
        u["reserved_memory_mb"].to_string(),
        u["storage_bytes"].to_string(),
        u["players"].to_string(),
        quota_text(&t["quotas"]),
        names(&t["may_reach"]),
        names(&t["modules"]),
    );
}

pub(super) async fn run(a: TenantsArgs) -> anyhow::Result<()> {
    let c = AdminClient::from_args(&a.admin)?;
    let json_out = a.admin.json;
    let (req, doing) = match a.action.unwrap_or(Action::List) {
        Action::List => (c.request(Method::GET, "/v1/tenants"), "listing tenants"),
        Action::Create { name, quotas } => (
            c.request(Method::POST, "/v1/tenants")
                .json(&json!({ "name": name, "quotas": quotas.to_json() })),
            "creating the tenant",
        ),
        Action::Set { name, quotas } => (
            c.request(Method::PUT, &format!("/v1/tenants/{name}/quotas"))
                .json(&quotas.to_json()),
            "setting quotas",
        ),
        Action::Allow { from, to } => (
            c.request(Method::POST, &format!("/v1/tenants/{from}/allow"))
                .query(&[("to", to)]),
            "allowing",
        ),
        Action::Deny { from, to } => (
            c.request(Method::DELETE, &format!("/v1/tenants/{from}/allow"))
                .query(&[("to", to)]),
            "denying",
        ),
        Action::Remove { name } => (
            c.request(Method::DELETE, &format!("/v1/tenants/{name}")),
            "removing the tenant",
        ),
    };
    let resp = c.send(req, doing).await?;
    if resp.status() == reqwest::StatusCode::NO_CONTENT {
        if json_out {
            println!("{{\"removed\":true}}");
        } else {
            println!("removed");
        }
        return Ok(());
    }
    let body: Value = resp.json().await?;
    if json_out {
        println!("{body}");
        return Ok(());
    }
    match &body {
        Value::Array(all) => all.iter().for_each(print_tenant),
        one => {
            print_tenant(one);
            if let Some(token) = one["token"].as_str() {
                println!("token (shown once; give it to the tenant): {token}");
            }
        }
    }
    Ok(())
}
