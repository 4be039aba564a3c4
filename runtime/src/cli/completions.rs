//! `anthill completions SHELL`: the shell completion script, generated from
//! the same clap definitions the binary parses (clap_complete), so it never
//! drifts from the commands.

use clap::{Args, CommandFactory};

#[derive(Args, Debug)]
pub(super) struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    shell: clap_complete::Shell,
}

pub(super) fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "anthill", &mut std::io::stdout());
    Ok(())
}
