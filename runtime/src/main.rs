//! The `anthill` binary: `anthill serve` runs a node; the other subcommands talk
//! to a running node's admin API.

fn main() -> std::process::ExitCode {
    anthill::cli::main()
}
