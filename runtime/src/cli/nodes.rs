//! `anthill nodes`: the cluster's nodes as any one of them sees them.

use super::AdminArgs;
use super::client::AdminClient;
use anthill_core::cluster::NodeStatus;
use anyhow::Context;
use clap::Args;
use reqwest::Method;

#[derive(Args, Debug)]
pub(super) struct NodesArgs {
    #[command(flatten)]
    pub(super) admin: AdminArgs,
}

#[derive(serde::Deserialize)]
struct NodeList {
    nodes: Vec<NodeStatus>,
}

pub(super) async fn run(a: NodesArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&a.admin)?;
    let resp = client
        .send(
            client.request(Method::GET, "/v1/cluster/nodes"),
            "listing the cluster's nodes",
        )
        .await?;
    let text = resp.text().await.context("reading the node list")?;
    if a.admin.json {
        println!("{text}");
        return Ok(());
    }
    let list: NodeList = serde_json::from_str(&text).context("decoding the node list")?;
    println!(
        "{:<16} {:<9} {:<24} {:<22} {:>7} {:>7} {:>8}  MODULES",
        "NODE", "STATE", "ADMIN", "PLAYERS", "ACTORS", "PLAYERS", "BEAT"
    );
    for n in list.nodes {
        let modules: Vec<String> = n
            .modules
            .iter()
            .map(|(name, v)| match v.canary {
                Some(c) => format!("{name}@v{}+v{c}", v.active),
                None => format!("{name}@v{}", v.active),
            })
            .chain(n.failed.keys().map(|m| format!("{m}:FAILED")))
            .collect();
        println!(
            "{:<16} {:<9} {:<24} {:<22} {:>7} {:>7} {:>6}ms  {}",
            n.name,
            n.state.to_string(),
            n.admin,
            n.players_addr.as_deref().unwrap_or("-"),
            n.live_actors,
            n.players,
            n.last_beat_ms_ago,
            modules.join(" ")
        );
        for (m, why) in &n.failed {
            println!("    {m}: {why}");
        }
    }
    Ok(())
}
