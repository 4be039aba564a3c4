//! The `anthill` binary: `anthill serve` runs a node (its parts wired in
//! [`node`], its config composed in [`config`]); the other subcommands talk
//! to a running node's admin API ([`cli`]).

mod cli;
mod config;
mod node;
mod play;
mod process_metrics;
mod telemetry;
mod web;

fn main() -> std::process::ExitCode {
    // Guest traps and refusals are routine here: their error values must not
    // capture backtraces (tens of microseconds each) because RUST_BACKTRACE is
    // set for panics. Set RUST_LIB_BACKTRACE=1 to get them anyway.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in main, before any thread exists.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0")
        };
    }
    cli::main()
}
