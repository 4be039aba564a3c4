//! The `anthill` command line: `serve` runs a node; the other commands are
//! clients of a node's admin API (found through flags, `ANTHILL_ADMIN` /
//! `ANTHILL_TOKEN`, or the local data dir).

mod bot;
mod client;
mod commands;
mod new;
mod serve;
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
    /// Tenants and their quotas: list, create, set, allow, deny, remove.
    Tenants(tenants::TenantsArgs),
}

/// How to reach a node's admin API.
#[derive(Args, Clone, Debug)]
pub(crate) struct AdminArgs {
    /// Admin API URL [default: from DATA/admin.addr, else http://127.0.0.1:7350]
    #[arg(long, env = "ANTHILL_ADMIN", global = true)]
    admin: Option<String>,
    /// Admin token [default: from DATA/admin.token]
    #[arg(long, env = "ANTHILL_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// The node's data dir, to find the address and token of a local node
    /// [default: the nearest `anthill-data` in this directory or a parent]
    #[arg(long, env = "ANTHILL_DATA", global = true)]
    data: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
