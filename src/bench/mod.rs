//! `rzk bench`: a closed- or open-loop load generator for any
//! ZooKeeper-compatible server, built on the neutral `zookeeper-client` crate so
//! Apache ZooKeeper and rzk are measured the same way.
//!
//! - `workload`: the `--workload` grammar and znode layout (pure)
//! - `pacing`: open-loop send schedule (pure)
//! - `report`: histograms, table and JSON lines (pure)
//! - `runner`: sessions, setup/cleanup, the load loop, progress (IO)
//! - `probe`: "first served request" timing for start-up and fail-over (IO)
//! - `exec`: the one-thread runtime both run on (no tokio, see why there)
//!
//! This file parses and validates the arguments and writes the report.

pub mod exec;
pub mod pacing;
pub mod probe;
pub mod report;
pub mod runner;
pub mod workload;

use anyhow::Context as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workload::{Layout, Workload};

/// Largest `--value-size`: ZooKeeper's default `jute.maxbuffer` is just under 1 MiB.
pub const MAX_VALUE_SIZE: usize = 1_000_000;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Servers to connect to, host:port[,host:port...].
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub servers: String,
    /// Concurrent sessions, each with one request in flight.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Measured time (after the warm-up): seconds, or with a unit (500ms, 10s, 2m).
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured load before the measured window.
    #[arg(long, default_value = "1", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Bytes of data written by create and set (and pre-loaded into the keys).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// create | get | set | delete | exists | children | mixed[:READ%] | watch
    #[arg(long, default_value = "mixed:90")]
    pub workload: Workload,
    /// Open loop: total target requests per second over all clients; latency is
    /// measured from each request's intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Write the JSON lines to this file ("-" for stdout, the table then goes to stderr).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Znode under which the run creates (and finally deletes) its own directory.
    #[arg(long, default_value = "/rzk-bench")]
    pub root: String,
    /// Number of shared keys read and written by get/set/exists/children/mixed.
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Give up connecting after this long.
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// No per-second progress on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// How sessions pick their server: `even` puts session i on the i-th
    /// server (round robin), so every server carries the same number of
    /// sessions, as behind a balancing load balancer; `random` leaves the
    /// choice to the client library (a random server per session, and a
    /// session moves to another server if its own fails).
    #[arg(long, value_enum, default_value = "even")]
    pub spread: Spread,
    /// Instead of a load run: retry one fresh-session read or write until it
    /// succeeds and print when (start-up and fail-over timing).
    #[arg(long, value_enum)]
    pub probe: Option<probe::ProbeKind>,
    /// How long --probe keeps retrying.
    #[arg(long, default_value = "60", value_parser = parse_duration)]
    pub probe_timeout: Duration,
}

/// See [`BenchArgs::spread`].
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    Even,
    Random,
}

/// The connect string each session uses. With `Even` and several servers,
/// session i gets only server i mod n (and the chroot, if any): a session
/// given the whole list lands on a random server, and with 64 sessions over
/// three servers one of them typically carries a fifth more than its share,
/// which then decides the tail latency of a closed-loop run.
pub fn session_servers(servers: &str, clients: usize, spread: Spread) -> Vec<String> {
    let (hosts, chroot) = match servers.find('/') {
        Some(slash) => servers.split_at(slash),
        None => (servers, ""),
    };
    let hosts: Vec<&str> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    (0..clients)
        .map(|i| match spread {
            Spread::Even if hosts.len() > 1 => format!("{}{chroot}", hosts[i % hosts.len()]),
            _ => servers.to_string(),
        })
        .collect()
}

/// Parses `10`, `2.5`, `500ms`, `10s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10, 2.5s, 500ms)"))?;
    let seconds = value * scale;
    if !seconds.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Checks the arguments together and turns them into a run plan.
pub fn plan(args: &BenchArgs, run_id: &str) -> Result<runner::Plan, String> {
    if args.servers.trim().is_empty() {
        return Err("--servers must name at least one host:port".into());
    }
    if !(1..=10_000).contains(&args.clients) {
        return Err(format!(
            "--clients must be between 1 and 10000, got {}",
            args.clients
        ));
    }
    if args.duration.is_zero() {
        return Err("--duration must be greater than zero".into());
    }
    if args.connect_timeout.is_zero() {
        return Err("--connect-timeout must be greater than zero".into());
    }
    if args.value_size > MAX_VALUE_SIZE {
        return Err(format!(
            "--value-size must be at most {MAX_VALUE_SIZE} bytes, got {}",
            args.value_size
        ));
    }
    if !(1..=1_000_000).contains(&args.keys) {
        return Err(format!(
            "--keys must be between 1 and 1000000, got {}",
            args.keys
        ));
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(format!(
            "--rate must be a positive number of requests per second, got {rate}"
        ));
    }
    workload::validate_root(&args.root)?;
    let root = args.root.trim_end_matches('/').to_string();
    Ok(runner::Plan {
        servers: args.servers.trim().to_string(),
        session_servers: session_servers(args.servers.trim(), args.clients, args.spread),
        clients: args.clients,
        duration: args.duration,
        warmup: args.warmup,
        value: vec![b'x'; args.value_size],
        workload: args.workload,
        rate: args.rate,
        layout: Layout::new(&root, run_id),
        root,
        keys: args.keys,
        connect_timeout: args.connect_timeout,
        progress: !args.quiet,
    })
}

fn write_report(
    args: &BenchArgs,
    info: &report::RunInfo,
    lines: &[report::OpSummary],
) -> anyhow::Result<()> {
    let table = report::format_table(info, lines);
    let json = report::json_lines(info, lines);
    match &args.json {
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{table}");
            print!("{json}");
        }
        Some(path) => {
            print!("{table}");
            std::fs::write(path, &json)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => print!("{table}{json}"),
    }
    std::io::stdout()
        .flush()
        .context("cannot write to stdout")?;
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let run_id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let plan = plan(&args, &run_id).map_err(anyhow::Error::msg)?;
    if let Some(kind) = args.probe {
        let ok = exec::block_on(probe::run(&plan.servers, kind, args.probe_timeout));
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let info_base = report::RunInfo {
        servers: plan.servers.clone(),
        workload: plan.workload.to_string(),
        clients: plan.clients,
        value_size: plan.value.len(),
        target_rate: plan.rate,
        duration_s: 0.0,
    };
    // Tasks of the client crate still running after the run (a session
    // close slower than `execute` waits for) are dropped with the executor.
    let outcome = exec::block_on(runner::execute(plan))?;
    let info = report::RunInfo {
        duration_s: outcome.measured.as_secs_f64(),
        ..info_base
    };
    let lines = report::summarize(&outcome.recorder, info.duration_s);
    write_report(&args, &info, &lines)?;
    let total = lines.last().map(|line| line.ops).unwrap_or(0);
    if total == 0 {
        eprintln!("rzk bench: no request succeeded in the measured window");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        Harness::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map(|harness| harness.args)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn defaults_make_a_valid_plan() {
        let args = parse(&[]).unwrap();
        let plan = plan(&args, "t").unwrap();
        assert_eq!(plan.clients, 8);
        assert_eq!(plan.workload, Workload::Mixed { read_percent: 90 });
        assert_eq!(plan.layout.run_dir(), "/rzk-bench/run-t");
        assert_eq!(plan.value.len(), 100);
        assert!(plan.rate.is_none());
    }

    #[test]
    fn full_command_line() {
        let args = parse(&[
            "--servers",
            "127.0.0.1:1,127.0.0.1:2",
            "--clients",
            "4",
            "--duration",
            "3",
            "--value-size",
            "16",
            "--workload",
            "mixed:50",
            "--rate",
            "1000",
            "--json",
            "out.json",
            "--warmup",
            "0",
            "--root",
            "/b",
        ])
        .unwrap();
        let plan = plan(&args, "x").unwrap();
        assert_eq!(plan.workload, Workload::Mixed { read_percent: 50 });
        assert_eq!(plan.rate, Some(1000.0));
        assert_eq!(plan.warmup, Duration::ZERO);
        assert_eq!(plan.layout.key(0), "/b/run-x/keys/k000000");
        assert_eq!(
            plan.session_servers,
            ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"]
        );
    }

    #[test]
    fn sessions_spread_evenly_or_take_the_whole_list() {
        assert_eq!(
            session_servers("a:1, b:2,c:3/app", 4, Spread::Even),
            ["a:1/app", "b:2/app", "c:3/app", "a:1/app"]
        );
        assert_eq!(
            session_servers("a:1,b:2", 2, Spread::Random),
            ["a:1,b:2", "a:1,b:2"]
        );
        // One server: its string as given, chroot and all.
        assert_eq!(
            session_servers("a:1/x", 2, Spread::Even),
            ["a:1/x", "a:1/x"]
        );
        let args = parse(&["--spread", "random", "--servers", "a:1,b:2"]).unwrap();
        assert_eq!(plan(&args, "t").unwrap().session_servers[0], "a:1,b:2");
        assert!(parse(&["--spread", "sideways"]).is_err());
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&["--workload", "scan"]).is_err());
        assert!(parse(&["--duration", "x"]).is_err());
        for argv in [
            &["--clients", "0"][..],
            &["--duration", "0"],
            &["--rate", "0"],
            &["--rate=-3"],
            &["--value-size", "2000000"],
            &["--keys", "0"],
            &["--root", "/"],
            &["--root", "relative"],
            &["--servers", " "],
        ] {
            let args = parse(argv).unwrap();
            assert!(plan(&args, "t").is_err(), "{argv:?} accepted");
        }
    }
}
