//! `rzk cli`: a shell with zkCli's commands, interactive or scripted.
//! A client of any ZooKeeper-compatible server; shares no code with the server.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CliArgs {
    /// Command and arguments to run once (zkCli syntax); interactive without one.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(_args: CliArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rzk cli is not implemented yet")
}
