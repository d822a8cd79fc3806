//! `rzk server`: the IO shell around the pure cores.
//!
//! It reads zoo.cfg and myid, recovers the data tree from the data dir
//! (`storage`), then runs three kinds of tokio tasks: one core task that owns
//! the request `processor` and feeds its effects to sockets and the log; one
//! reader and one writer task per client connection; and timers. Sockets,
//! clocks and files live here and in `storage`, never in the cores.

mod admin;
mod conn;
mod core;
mod ensemble;
pub mod metrics;
mod recovery;

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Path to a zoo.cfg; embedded defaults (127.0.0.1:2181, ./data) without one.
    pub config: Option<PathBuf>,
    /// Take the server id from the hostname `<name>-<ordinal>` (id = ordinal + 1),
    /// as pods of a StatefulSet are named, instead of dataDir/myid.
    #[arg(long)]
    pub myid_from_hostname: bool,
    /// Log as JSON lines instead of human-readable text (also RZK_LOG_FORMAT=json).
    #[arg(long)]
    pub log_json: bool,
    /// Async runtime threads; 0 picks one per CPU, or a single one on one or
    /// two CPUs.
    #[arg(long, env = "RZK_WORKERS", default_value_t = 0)]
    pub workers: usize,
}

/// Threads of the async runtime (besides the txn log's own thread):
/// `requested`, or one per CPU this process may use — but a single thread on
/// one or two CPUs. Every write crosses between the connection tasks, the
/// core task and the log thread several times; on two CPUs a second worker
/// mostly adds cross-thread wake-ups (measured on two cores, a 3-server
/// ensemble in alternating runs: 9.5-10.6 k writes/s with one worker against
/// 8.1-8.6 k with two, reads the same; see BENCHMARKS.md).
fn runtime_workers(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus <= 2 { 1 } else { cpus }
}

pub fn init_logging(json: bool) {
    let json = json || std::env::var("RZK_LOG_FORMAT").is_ok_and(|v| v == "json");
    let filter = tracing_subscriber::EnvFilter::try_from_env("RZK_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: container and systemd logs get plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Reads the configuration the way `rzk server` is asked to.
pub fn load_config(args: &ServerArgs) -> anyhow::Result<Config> {
    let cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            Config::parse(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Config::default(),
    };
    for key in &cfg.unknown_keys {
        tracing::warn!(key = %key, "unknown configuration key ignored");
    }
    Ok(cfg)
}

/// The server id: myid file, or hostname ordinal with --myid-from-hostname.
fn server_id(cfg: &Config, args: &ServerArgs) -> anyhow::Result<u64> {
    let myid_path = cfg.data_dir.join("myid");
    let from_file = match std::fs::read_to_string(&myid_path) {
        Ok(t) => Some(crate::config::parse_myid(&t)?),
        Err(_) => None,
    };
    if args.myid_from_hostname {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .unwrap_or_default();
        let id = crate::config::myid_from_hostname(host.trim())
            .with_context(|| format!("hostname {:?} does not end in -<ordinal>", host.trim()))?;
        if let Some(existing) = from_file
            && existing != id
        {
            anyhow::bail!(
                "data dir {} belongs to server {existing} but this pod is server {id}; refusing to start on another member's data",
                cfg.data_dir.display()
            );
        }
        std::fs::create_dir_all(&cfg.data_dir)?;
        std::fs::write(&myid_path, format!("{id}\n"))?;
        return Ok(id);
    }
    if cfg.servers.is_empty() {
        return Ok(from_file.unwrap_or(0));
    }
    from_file.with_context(|| {
        format!(
            "{} is missing: a replicated server needs its id",
            myid_path.display()
        )
    })
}

pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let cfg = load_config(&args)?;
    let id = server_id(&cfg, &args)?;
    let workers = runtime_workers(args.workers);
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = builder.enable_all().thread_name("rzk").build()?;
    tracing::debug!(workers, "async runtime");
    if cfg.is_replicated() {
        runtime.block_on(ensemble::serve(cfg, id))?;
    } else {
        runtime.block_on(core::serve(cfg, id))?;
    }
    Ok(ExitCode::SUCCESS)
}
