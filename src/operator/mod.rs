//! `rzk operator`: reconciles ZookeeperCluster resources into StatefulSets.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct OperatorArgs {}

pub fn run(_args: OperatorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rzk operator is not implemented yet")
}

pub fn print_crd() -> anyhow::Result<ExitCode> {
    anyhow::bail!("rzk crd is not implemented yet")
}
