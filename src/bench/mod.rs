//! `rzk bench`: a closed- or open-loop load generator for any
//! ZooKeeper-compatible server.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Servers to connect to, host:port[,host:port...].
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub servers: String,
}

pub fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rzk bench is not implemented yet")
}
