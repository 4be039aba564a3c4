//! The `anthill` command line: `serve` runs a node; the other commands are
//! clients of a node's admin API (found through flags, `ANTHILL_ADMIN` /
//! `ANTHILL_TOKEN`, or the local data dir).

mod bot;
mod client;
mod commands;
mod completions;
mod logs;
mod new;
mod nodes;
mod serve;
mod swarm;
mod tenants;

use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "anthill",
    version,
    about = "Anthill: a game server runtime for WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: admin API, modules, players.
    Serve(serve::ServeArgs),
    /// Deploy a component as a module, or hot-swap a deployed module to it.
    Deploy(commands::DeployArgs),
    /// List deployed modules.
    Modules(commands::ModulesArgs),
    /// Call a module: `anthill call counter/alice incr` (payload text, or @file).
    Call(commands::CallArgs),
    /// Remove a module and its state.
    Undeploy(commands::UndeployArgs),
    /// List a module's live actors.
    Actors(commands::ActorsArgs),
    /// Complete a canary: its version serves every key.
    Promote(commands::PromoteArgs),
    /// Go back: end a canary, or return to an earlier version (state carried).
    Rollback(commands::RollbackArgs),
    /// Simulated players over QUIC, with live stats and a summary.
    Bot(bot::BotArgs),
    /// Scaffold a module project: `anthill new --lang rust|js|python NAME`.
    New(new::NewArgs),
    /// The cluster's nodes: addresses, load and state (alive, suspect, draining, dead).
    Nodes(nodes::NodesArgs),
    /// Tenants and their quotas: list, create, set, allow, deny, remove.
    Tenants(tenants::TenantsArgs),
    /// Show (and with -f follow) what modules print: `anthill logs -f counter/alice`.
    Logs(logs::LogsArgs),
    /// Print a shell completion script: `anthill completions bash > /etc/bash_completion.d/anthill`.
    Completions(completions::CompletionsArgs),
}

impl Command {
    /// Whether the user asked for JSON (errors then print as JSON too).
    fn json(&self) -> bool {
        let admin = match self {
            Command::Deploy(a) => &a.admin,
            Command::Modules(a) => &a.admin,
            Command::Call(a) => &a.admin,
            Command::Undeploy(a) => &a.admin,
            Command::Actors(a) => &a.admin,
            Command::Promote(a) => &a.admin,
            Command::Rollback(a) => &a.admin,
            Command::Tenants(a) => &a.admin,
            Command::Nodes(a) => &a.admin,
            Command::Logs(a) => &a.admin,
            Command::Serve(_) | Command::Bot(_) | Command::New(_) | Command::Completions(_) => {
                return false;
            }
        };
        admin.json
    }
}

/// How to reach a node's admin API.
#[derive(Args, Clone, Debug)]
pub(crate) struct AdminArgs {
    /// Admin API URL [default: from DATA/admin.addr, else http://127.0.0.1:7350]
    #[arg(long, env = "ANTHILL_ADMIN", global = true)]
    pub(crate) admin: Option<String>,
    /// Admin token [default: from DATA/admin.token]
    #[arg(long, env = "ANTHILL_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// The node's data dir, to find the address and token of a local node
    /// [default: the nearest `anthill-data` in this directory or a parent]
    #[arg(long, env = "ANTHILL_DATA", global = true)]
    data: Option<PathBuf>,
    /// Machine-readable JSON output (errors too, as `{error, detail}` on stderr).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The data dir a client command means: the one given, else the nearest
/// `anthill-data` in the current directory or one of its parents (so a
/// command works from inside a module project beside the node), else
/// `./anthill-data`.
pub(crate) fn data_dir(given: Option<&Path>) -> PathBuf {
    if let Some(d) = given {
        return d.to_owned();
    }
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    here.ancestors()
        .map(|dir| dir.join("anthill-data"))
        .find(|d| d.join("admin.addr").exists() || d.join("admin.token").exists())
        .unwrap_or_else(|| PathBuf::from("./anthill-data"))
}

/// Entry point of the binary.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.command.json();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Deploy(a) => commands::deploy(a).await,
            Command::Modules(a) => commands::modules(a).await,
            Command::Call(a) => commands::call(a).await,
            Command::Undeploy(a) => commands::undeploy(a).await,
            Command::Actors(a) => commands::actors(a).await,
            Command::Promote(a) => commands::promote(a).await,
            Command::Rollback(a) => commands::rollback(a).await,
            Command::Bot(a) => bot::run(a).await,
            Command::New(a) => new::run(a),
            Command::Tenants(a) => tenants::run(a).await,
            Command::Nodes(a) => nodes::run(a).await,
            Command::Logs(a) => logs::run(a).await,
            Command::Completions(a) => completions::run(a),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json => {
            let body = match e.downcast_ref::<client::ApiFailure>() {
                Some(f) => serde_json::json!({
                    "error": f.error, "detail": f.detail, "status": f.status, "doing": f.doing,
                }),
                None => serde_json::json!({ "error": "cli", "detail": format!("{e:#}") }),
            };
            eprintln!("{body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
