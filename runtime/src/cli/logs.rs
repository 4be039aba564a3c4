//! `anthill logs [-f] [MODULE[/KEY]] [--since D]`: what modules printed
//! (stdout, stderr, `host.log`), from the node's per-module ring buffers,
//! and with `-f` followed as it is written (long polls of `GET /v1/logs`).

use super::AdminArgs;
use super::client::AdminClient;
use anthill_actors::logs::{LogLine, LogPage};
use anyhow::Context;
use clap::Args;
use reqwest::Method;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub(super) struct LogsArgs {
    /// `module` or `module/key` [default: every module]
    target: Option<String>,
    /// Keep printing new lines as they are written.
    #[arg(short, long)]
    follow: bool,
    /// Only lines from this long ago, e.g. `10m`, `2h`.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// At most this many of the newest lines first.
    #[arg(short = 'n', long, default_value_t = 100)]
    lines: usize,
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

/// How long one follow request waits at the node for a new line.
const FOLLOW_WAIT_MS: u64 = 20_000;

pub(super) async fn run(a: LogsArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let mut query: Vec<(&str, String)> = vec![("limit", a.lines.to_string())];
    if let Some(target) = &a.target {
        let (module, key) = match target.split_once('/') {
            Some((m, k)) => (m, Some(k)),
            None => (target.as_str(), None),
        };
        query.push(("module", module.to_owned()));
        if let Some(k) = key {
            query.push(("key", k.to_owned()));
        }
    }
    if let Some(since) = a.since {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        query.push((
            "since_ms",
            now.saturating_sub(since).as_millis().to_string(),
        ));
    }
    let mut page = fetch(&client, &query, None, 0).await?;
    loop {
        for line in &page.lines {
            print_line(line, a.admin.json)?;
        }
        if !a.follow {
            return Ok(());
        }
        page = fetch(&client, &query, Some(page.next), FOLLOW_WAIT_MS).await?;
    }
}

async fn fetch(
    client: &AdminClient,
    query: &[(&str, String)],
    after: Option<u64>,
    wait_ms: u64,
) -> anyhow::Result<LogPage> {
    let mut req = client
        .request(Method::GET, "/v1/logs")
        .query(query)
        .query(&[("wait_ms", wait_ms)])
        .timeout(Duration::from_millis(wait_ms + 10_000));
    if let Some(after) = after {
        req = req.query(&[("after", after)]);
    }
    client
        .send(req, "reading module logs")
        .await?
        .json()
        .await
        .context("reading the log page")
}

fn print_line(line: &LogLine, json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(line)?)?;
    } else {
        let at = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(line.ts_ms));
        let who = if line.key.is_empty() {
            line.module.clone()
        } else {
            format!("{}/{}", line.module, line.key)
        };
        writeln!(
            out,
            "{at} {who} v{} {}: {}",
            line.version, line.stream, line.text
        )?;
    }
    out.flush()?;
    Ok(())
}
