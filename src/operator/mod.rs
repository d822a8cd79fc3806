//! `rzk operator`: reconciles ZookeeperCluster resources into StatefulSets, and `rzk crd`.
//!
//! Pure cores: [`crd`] (the resource types and CEL rules), [`resources`] (the owned objects
//! built from a cluster), [`planner`] (the next safe rollout step), [`srvr`] (parsing the
//! `srvr` four-letter word), [`status`] (status from observations). IO shells:
//! [`controller`] (kube-rs controller, server-side apply, events, finalizer),
//! [`telemetry`] (operator /metrics and /healthz), [`election`] (Lease leader election).

pub mod controller;
pub mod crd;
pub mod election;
pub mod planner;
pub mod resources;
pub mod srvr;
pub mod status;
pub mod telemetry;

use std::process::ExitCode;

/// Command-line options of `rzk operator`.
#[derive(clap::Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Address of the operator's /metrics and /healthz endpoint.
    #[arg(
        long,
        env = "RZK_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: std::net::SocketAddr,
    /// Only reconcile clusters in this namespace (all namespaces when unset).
    #[arg(long, env = "RZK_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// Run leader election on a Lease so that only one replica reconciles.
    #[arg(long, env = "RZK_OPERATOR_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "RZK_OPERATOR_LEASE_NAME", default_value = "rzk-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (defaults to the pod's namespace, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "RZK_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// Run the operator until SIGTERM/SIGINT.
pub fn run(args: OperatorArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(controller::run(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Ignore a second initialisation (tests may have set a subscriber already).
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Print the ZookeeperCluster CRD as YAML (`rzk crd`).
pub fn print_crd() -> anyhow::Result<ExitCode> {
    print!("{}", crd::crd_yaml()?);
    Ok(ExitCode::SUCCESS)
}
