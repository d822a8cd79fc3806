//! `rzk server`: the network shell around the pure cores.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Path to a zoo.cfg; embedded defaults without one.
    pub config: Option<std::path::PathBuf>,
}

pub fn run(_args: ServerArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rzk server is not implemented yet")
}
