//! `rzk bench --probe read|write`: retry one fresh-session request until a
//! server serves it, and report when that happened. The benchmark script uses
//! it for start-up time (launch → first served read) and fail-over time
//! (leader SIGKILL → first successful write); the wall-clock timestamp lets the
//! script subtract its own recorded instant, independent of process start-up.
//! Touches the network, the clock and stdout.

use crate::bench::exec;
use crate::bench::runner::{connect, error_name};
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zookeeper_client::{Acls, CreateMode};

/// Which request must succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// Open a session and `exists /`.
    Read,
    /// Open a session and create (then delete) an ephemeral znode.
    Write,
}

/// Pause between failed attempts: short, so the measured time is tight.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Longest a single attempt (connect + request) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct ProbeLine {
    #[serde(rename = "type")]
    kind_tag: &'static str,
    kind: ProbeKind,
    servers: String,
    ok: bool,
    attempts: u64,
    /// From the probe's own start to the first success (or to giving up).
    elapsed_ms: f64,
    /// Wall clock of the first success (or of giving up), ms since the epoch.
    unix_ms: f64,
    last_error: Option<String>,
}

async fn attempt(servers: &str, kind: ProbeKind, number: u64) -> anyhow::Result<()> {
    let client = connect(servers, ATTEMPT_TIMEOUT).await?;
    match kind {
        ProbeKind::Read => {
            client.check_stat("/").await?;
        }
        ProbeKind::Write => {
            let path = format!("/rzk-bench-probe-{}-{number}", std::process::id());
            client
                .create(
                    &path,
                    b"",
                    &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
                )
                .await?;
            // The ephemeral would vanish with the session anyway; deleting it
            // keeps the tree clean right away.
            let _ = client.delete(&path, None).await;
        }
    }
    Ok(())
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Retries until success or `timeout`; prints one JSON line. Returns whether it succeeded.
pub async fn run(servers: &str, kind: ProbeKind, timeout: Duration) -> bool {
    let start = Instant::now();
    let mut attempts = 0u64;
    let mut last_error = None;
    let ok = loop {
        attempts += 1;
        match exec::timeout(ATTEMPT_TIMEOUT, attempt(servers, kind, attempts)).await {
            Some(Ok(())) => break true,
            Some(Err(error)) => {
                last_error = Some(match error.downcast_ref::<zookeeper_client::Error>() {
                    Some(zk) => error_name(zk),
                    None => format!("{error:#}"),
                })
            }
            None => last_error = Some("Timeout".to_string()),
        }
        if start.elapsed() >= timeout {
            break false;
        }
        exec::sleep(RETRY_PAUSE).await;
    };
    let line = ProbeLine {
        kind_tag: "probe",
        kind,
        servers: servers.to_string(),
        ok,
        attempts,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
        unix_ms: unix_ms(),
        last_error: if ok { None } else { last_error },
    };
    println!(
        "{}",
        serde_json::to_string(&line).expect("probe line serializes")
    );
    ok
}
