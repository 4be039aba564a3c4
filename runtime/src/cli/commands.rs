//! The admin commands: deploy, modules, call, undeploy, actors.

use super::AdminArgs;
use super::client::AdminClient;
use anthill_actors::module::{Deployed, ModuleInfo, SwapSummary};
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub(super) struct DeployArgs {
    /// Module name (a-z, 0-9, `-`, `_`).
    name: String,
    /// The component (.wasm).
    file: PathBuf,
    /// One actor per key (rooms, players...) instead of a singleton.
    #[arg(long)]
    keyed: bool,
    /// Per-call guest deadline in ms [default: the node's, 100]
    #[arg(long)]
    deadline_ms: Option<u64>,
    /// Memory cap per actor in MiB [default: the node's, 64]
    #[arg(long)]
    memory_mb: Option<u32>,
    /// `interval` or `every-message`
    #[arg(long)]
    durability: Option<String>,
    /// Passivate keyed actors idle this long (ms)
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Snapshot live actors with changes this often (ms)
    #[arg(long)]
    snapshot_interval_ms: Option<u64>,
    /// Mailbox capacity per actor
    #[arg(long)]
    mailbox: Option<usize>,
    /// What players may do: `none` (not reachable), `existing` (reach actors
    /// that exist; the default) or `open` (also create new keys)
    #[arg(long)]
    players: Option<String>,
    /// The tenant a new module belongs to (operator token only; a tenant's
    /// token always deploys into its own tenant)
    #[arg(long)]
    tenant: Option<String>,
    /// Canary: route only this percentage of keys to the new version (then
    /// `anthill promote` or `anthill rollback`).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    canary: Option<u8>,
    /// Make a new version and swap every live actor to it even if the
    /// component and settings are those already running.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Args, Debug)]
pub(super) struct PromoteArgs {
    name: String,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Args, Debug)]
pub(super) struct RollbackArgs {
    name: String,
    /// The version to go back to [default: the canary's stable version, else the one before]
    #[arg(long)]
    to: Option<u32>,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Args, Debug)]
pub(super) struct ModulesArgs {
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Args, Debug)]
pub(super) struct CallArgs {
    /// `module` or `module/key`
    target: String,
    /// The payload: text, or `@path` to send a file's bytes.
    payload: String,
    /// Reply timeout in ms
    #[arg(long)]
    timeout_ms: Option<u64>,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Args, Debug)]
pub(super) struct UndeployArgs {
    name: String,
    /// Do not ask: undeploy deletes the module's state (snapshots, timers,
    /// subscriptions) for good.
    #[arg(short, long)]
    yes: bool,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(Args, Debug)]
pub(super) struct ActorsArgs {
    /// Module whose actors to list (all modules when omitted).
    module: Option<String>,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

pub(super) async fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let size = bytes.len() as u64;
    // Refuse locally what the node would refuse before reading the body: a
    // clear message instead of a connection closed mid-upload.
    if let Ok(resp) = client
        .send(
            client.request(Method::GET, "/v1/node"),
            "reading the node's limits",
        )
        .await
        && let Ok(info) = resp.json::<serde_json::Value>().await
        && let Some(limit) = info["limits"]["upload_limit_bytes"].as_u64()
        && size > limit
    {
        anyhow::bail!(
            "{} is {}, over the node's upload limit of {} (limits.upload_limit_mb)",
            a.file.display(),
            human_bytes(size),
            human_bytes(limit)
        );
    }
    let mut query: Vec<(&str, String)> = Vec::new();
    query.push(("kind", if a.keyed { "keyed" } else { "singleton" }.into()));
    if let Some(v) = a.canary {
        query.push(("canary", v.to_string()));
    }
    if let Some(v) = a.deadline_ms {
        query.push(("deadline_ms", v.to_string()));
    }
    if let Some(v) = a.memory_mb {
        query.push(("memory_mb", v.to_string()));
    }
    if let Some(v) = &a.durability {
        query.push(("durability", v.clone()));
    }
    if let Some(v) = a.idle_timeout_ms {
        query.push(("idle_timeout_ms", v.to_string()));
    }
    if let Some(v) = a.snapshot_interval_ms {
        query.push(("snapshot_interval_ms", v.to_string()));
    }
    if let Some(v) = a.mailbox {
        query.push(("mailbox", v.to_string()));
    }
    if let Some(v) = &a.players {
        query.push(("players", v.clone()));
    }
    if let Some(v) = &a.tenant {
        query.push(("tenant", v.clone()));
    }
    if a.force {
        query.push(("force", "true".into()));
    }

    // Progress: upload bytes, then a spinner while the node validates, compiles
    // (seconds for a large JS/Python component) and swaps live actors.
    let tty = std::io::stderr().is_terminal() && !a.admin.json;
    let bar = if tty {
        let b = ProgressBar::new(size);
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes}/{total_bytes} {wide_bar}")
                .expect("valid template"),
        );
        b.set_message(format!("uploading {}", a.name));
        b
    } else {
        if !a.admin.json {
            eprintln!("deploying {} ({})…", a.name, human_bytes(size));
        }
        ProgressBar::hidden()
    };
    let chunks: Vec<bytes::Bytes> = bytes
        .chunks(256 << 10)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let up = bar.clone();
    let compiling = bar.clone();
    let name = a.name.clone();
    let total = chunks.len();
    let stream = futures::stream::iter(chunks.into_iter().enumerate().map(move |(i, c)| {
        up.inc(c.len() as u64);
        if i + 1 == total {
            compiling.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("valid template"),
            );
            compiling.set_message(format!("validating and compiling {name}…"));
            compiling.enable_steady_tick(Duration::from_millis(100));
        }
        Ok::<_, std::io::Error>(c)
    }));
    let req = client
        .request(Method::PUT, &format!("/v1/modules/{}", a.name))
        .query(&query)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(stream));
    let result = with_swap_progress(
        &client,
        &a.name,
        &bar,
        client.send(req, &format!("deploying {}", a.name)),
    )
    .await;
    bar.finish_and_clear();
    let deployed: Deployed = result?.json().await.context("reading the deploy answer")?;
    if a.admin.json {
        println!("{}", serde_json::to_string(&deployed)?);
        return Ok(());
    }
    if deployed.unchanged {
        println!(
            "{} v{} is already this component (sha256 {}) with these settings: nothing changed \
             (--force makes a new version anyway)",
            deployed.name,
            deployed.version,
            &deployed.sha256[..12]
        );
        return Ok(());
    }
    let how = if deployed.cached {
        format!("loaded precompiled in {:.1} ms", deployed.compile_ms)
    } else {
        format!("compiled in {:.0} ms", deployed.compile_ms)
    };
    println!(
        "deployed {} v{} ({}, {}, sha256 {}), {how}",
        deployed.name,
        deployed.version,
        deployed.kind,
        human_bytes(deployed.size),
        &deployed.sha256[..12],
    );
    if let Some(s) = &deployed.swap {
        print_swap(s);
    }
    print_rollout(deployed.rollout.as_ref());
    Ok(())
}

/// In a cluster: which nodes followed the change.
fn print_rollout(r: Option<&anthill_core::cluster::Rollout>) {
    let Some(r) = r else { return };
    println!(
        "cluster: {} node(s) ready [{}]{}{}",
        r.ready.len(),
        r.ready.join(", "),
        if r.pending.is_empty() {
            String::new()
        } else {
            format!("; still pending: {}", r.pending.join(", "))
        },
        if r.failed.is_empty() { "" } else { "; FAILED:" }
    );
    for (node, why) in &r.failed {
        println!("  {node}: {why}");
    }
}

fn print_swap(s: &SwapSummary) {
    println!(
        "swapped {} live actor(s) v{} → v{} in {:.1} ms; stall per actor p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; 0 failures",
        s.actors,
        s.from_version,
        s.to_version,
        s.duration_ms,
        s.p50_stall_ms,
        s.p99_stall_ms,
        s.max_stall_ms
    );
    if let Some(c) = &s.canary {
        println!(
            "canary: v{} serves {}% of keys (anthill promote / anthill rollback)",
            c.version, c.percent
        );
    }
}

/// While `work` (a deploy, promote or rollback) runs, polls the module's swap
/// progress and shows it: a swap of many actors takes a moment.
async fn with_swap_progress<T>(
    client: &AdminClient,
    name: &str,
    bar: &ProgressBar,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::pin!(work);
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    poll.tick().await;
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = poll.tick() => {
                let Ok(resp) = client.send(client.request(Method::GET, &format!("/v1/modules/{name}")), "reading swap progress").await else { continue };
                let Ok(info) = resp.json::<ModuleInfo>().await else { continue };
                if let Some(p) = info.swap_in_progress {
                    let line = format!("swapping {name} to v{}: {}/{} actors ({} failed)", p.to_version, p.done, p.total, p.failed);
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.set_message(line);
                    }
                }
            }
        }
    }
}

pub(super) async fn promote(a: PromoteArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let bar = ProgressBar::hidden();
    let req = client.request(Method::POST, &format!("/v1/modules/{}/promote", a.name));
    let resp = with_swap_progress(
        &client,
        &a.name,
        &bar,
        client.send(req, &format!("promoting {}", a.name)),
    )
    .await?;
    let s: SwapSummary = resp.json().await.context("reading the promote answer")?;
    if a.admin.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "promoted {}: v{} now serves every key",
            a.name, s.to_version
        );
        print_swap(&s);
        print_rollout(s.rollout.as_ref());
    }
    Ok(())
}

pub(super) async fn rollback(a: RollbackArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let bar = ProgressBar::hidden();
    let mut req = client.request(Method::POST, &format!("/v1/modules/{}/rollback", a.name));
    if let Some(v) = a.to {
        req = req.query(&[("to", v)]);
    }
    let resp = with_swap_progress(
        &client,
        &a.name,
        &bar,
        client.send(req, &format!("rolling back {}", a.name)),
    )
    .await?;
    let s: SwapSummary = resp.json().await.context("reading the rollback answer")?;
    if a.admin.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("rolled back {} to v{}", a.name, s.to_version);
        print_swap(&s);
        print_rollout(s.rollout.as_ref());
    }
    Ok(())
}

pub(super) async fn modules(a: ModulesArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let resp = client
        .send(
            client.request(Method::GET, "/v1/modules"),
            "listing modules",
        )
        .await?;
    let list: Vec<ModuleInfo> = resp.json().await.context("reading the module list")?;
    if a.admin.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no modules deployed");
        return Ok(());
    }
    println!(
        "{:<20} {:<9} {:>7} {:>10} {:>7}  {:<12}  CANARY",
        "NAME", "KIND", "VERSION", "SIZE", "ACTORS", "SHA256"
    );
    for m in list {
        let canary = match m.canary {
            Some(c) => format!("v{} on {}% of keys", c.version, c.percent),
            None => "-".to_owned(),
        };
        println!(
            "{:<20} {:<9} {:>7} {:>10} {:>7}  {:<12}  {canary}",
            m.name,
            m.kind.to_string(),
            format!("v{}", m.version),
            human_bytes(m.size),
            m.live_actors,
            &m.sha256[..12]
        );
    }
    Ok(())
}

pub(super) async fn call(a: CallArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let (module, key) = match a.target.split_once('/') {
        Some((m, k)) => (m.to_owned(), k.to_owned()),
        None => (a.target.clone(), String::new()),
    };
    let payload = match a.payload.strip_prefix('@') {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("reading payload file {path}"))?
        }
        None => a.payload.clone().into_bytes(),
    };
    let mut req = client
        .request(Method::POST, &format!("/v1/modules/{module}/call"))
        .query(&[("key", key)])
        .body(payload);
    if let Some(t) = a.timeout_ms {
        req = req.query(&[("timeout_ms", t)]);
    }
    let resp = client.send(req, &format!("calling {}", a.target)).await?;
    let reply = resp.bytes().await.context("reading the reply")?;
    if a.admin.json {
        let text = String::from_utf8(reply.to_vec()).ok();
        println!(
            "{}",
            serde_json::json!({ "bytes": reply.len(), "text": text, "hex": if text.is_none() { Some(hex::encode(&reply)) } else { None } })
        );
        return Ok(());
    }
    let mut out = std::io::stdout();
    out.write_all(&reply)?;
    if out.is_terminal() && !reply.ends_with(b"\n") {
        writeln!(out)?;
    }
    Ok(())
}

pub(super) async fn undeploy(a: UndeployArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    if !a.yes {
        confirm_undeploy(&a.name)?;
    }
    let resp = client
        .send(
            client.request(Method::DELETE, &format!("/v1/modules/{}", a.name)),
            &format!("undeploying {}", a.name),
        )
        .await?;
    // A lone node answers 204; a cluster says where each node stands.
    let answer: serde_json::Value = match resp.status() {
        reqwest::StatusCode::NO_CONTENT => serde_json::json!({ "undeployed": a.name }),
        _ => resp.json().await.context("reading the undeploy answer")?,
    };
    if a.admin.json {
        println!("{answer}");
    } else {
        println!("undeployed {}", a.name);
        let rollout = serde_json::from_value(answer["rollout"].clone()).ok();
        print_rollout(rollout.as_ref());
    }
    Ok(())
}

/// Asks on a terminal; refuses elsewhere (a script must say `--yes`).
fn confirm_undeploy(name: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "not undeploying {name}: undeploy deletes its state for good; pass --yes to confirm"
        );
    }
    eprint!("undeploy {name} and delete its snapshots, timers and subscriptions? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("not undeploying {name} (answered no)")
    }
}

pub(super) async fn actors(a: ActorsArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let mut req = client.request(Method::GET, "/v1/actors");
    if let Some(m) = &a.module {
        req = req.query(&[("module", m)]);
    }
    let resp = client.send(req, "listing actors").await?;
    let v: serde_json::Value = resp.json().await.context("reading the actor list")?;
    if a.admin.json {
        println!("{v}");
        return Ok(());
    }
    for m in v.as_array().into_iter().flatten() {
        let actors = m["actors"].as_array().cloned().unwrap_or_default();
        println!(
            "{} ({} live)",
            m["module"].as_str().unwrap_or("?"),
            actors.len()
        );
        for a in actors {
            println!(
                "  {:<24} v{:<3} mailbox {:>5}  handled {:>8}  last snapshot {}",
                a["key"]
                    .as_str()
                    .map(|k| if k.is_empty() { "(singleton)" } else { k })
                    .unwrap_or("?"),
                a["version"],
                a["mailbox_depth"],
                a["handled"],
                match a["last_snapshot_ms"].as_u64() {
                    Some(0) | None => "never".to_owned(),
                    Some(ms) => format!("{} ms ago", anthill_core::now_ms().saturating_sub(ms)),
                }
            );
        }
    }
    Ok(())
}
