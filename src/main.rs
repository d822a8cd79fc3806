//! The `rzk` binary: one command per role, all in one image.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rzk", version, about = "A ZooKeeper-compatible coordination service and Kubernetes operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a ZooKeeper-compatible server (reads zoo.cfg and myid like ZooKeeper).
    Server(rzk::server::ServerArgs),
    /// Run the Kubernetes operator for ZookeeperCluster resources.
    Operator(rzk::operator::OperatorArgs),
    /// An interactive shell with zkCli's commands.
    Cli(rzk::cli::CliArgs),
    /// A load generator for ZooKeeper-compatible servers.
    Bench(rzk::bench::BenchArgs),
    /// Print the ZookeeperCluster CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => rzk::server::run(args),
        Command::Operator(args) => rzk::operator::run(args),
        Command::Cli(args) => rzk::cli::run(args),
        Command::Bench(args) => rzk::bench::run(args),
        Command::Crd => rzk::operator::print_crd(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rzk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
