//! CI smoke test of `rzk bench`: a short run against a real local server must
//! produce parseable JSON lines with successful requests, no errors, and leave
//! no znodes behind. Not a performance test: no figure is compared.
//!
//! The server under test is chosen with `RZK_TEST_TARGET`:
//! - `apache` (default): Apache ZooKeeper 3.8 from Debian's `zookeeper` package, run with java;
//! - `rzk`: this crate's own `rzk server`.

mod common;

use common::ensemble::{Ensemble, Spec};
use common::{free_port, mntr_value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RZK: &str = env!("CARGO_BIN_EXE_rzk");
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// A server process that is killed when the test ends, however it ends.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_zoo_cfg(dir: &Path, port: u16) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=srvr,ruok\n",
            data.display()
        ),
    )
    .unwrap();
    cfg
}

fn start_server() -> Server {
    let target = std::env::var("RZK_TEST_TARGET").unwrap_or_else(|_| "apache".to_string());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_zoo_cfg(dir.path(), port);
    let log = dir.path().join("server.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut command = match target.as_str() {
        "apache" => {
            assert!(
                Path::new(ZOOKEEPER_JAR).exists() && Path::new(SLF4J_SIMPLE_JAR).exists(),
                "RZK_TEST_TARGET=apache needs Debian's `zookeeper` and `libslf4j-java` packages \
                 ({ZOOKEEPER_JAR}, {SLF4J_SIMPLE_JAR})"
            );
            let mut command = Command::new("java");
            command
                .arg("-Xmx256m")
                .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                .arg("-cp")
                .arg(format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}"))
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(&cfg);
            command
        }
        "rzk" => {
            let mut command = Command::new(RZK);
            command.arg("server").arg(&cfg);
            command
        }
        other => panic!("RZK_TEST_TARGET must be `apache` or `rzk`, got {other:?}"),
    };
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start the {target} server: {error}"));
    let mut server = Server {
        child,
        port,
        log,
        _dir: dir,
    };
    wait_until_serving(&mut server);
    server
}

/// Waits until the server serves a request on a fresh session (`rzk bench
/// --probe read`), failing early with the server's log if it exits.
fn wait_until_serving(server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let servers = format!("127.0.0.1:{}", server.port);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "server exited with {status}; log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        if bench(&[
            "--servers",
            &servers,
            "--probe",
            "read",
            "--probe-timeout",
            "2",
        ])
        .status
        .success()
        {
            return;
        }
    }
    panic!(
        "server did not serve within 60s; log:\n{}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
}

fn bench(args: &[&str]) -> Output {
    Command::new(RZK)
        .arg("bench")
        .args(args)
        .output()
        .expect("run rzk bench")
}

/// Starts `rzk bench` with its output piped, for a test that acts while it runs.
fn spawn_bench(args: &[&str]) -> Child {
    Command::new(RZK)
        .arg("bench")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rzk bench")
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("bad JSON line {line:?}: {error}"))
        })
        .collect()
}

/// The `"type": "total"` line of a run's JSON output.
fn total_line(lines: &[serde_json::Value]) -> &serde_json::Value {
    lines
        .iter()
        .find(|line| line["type"] == "total")
        .expect("a total line")
}

fn root_exists(port: u16, path: &str) -> bool {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = zookeeper_client::Client::connect(&format!("127.0.0.1:{port}"))
            .await
            .expect("connect");
        client.check_stat(path).await.expect("exists").is_some()
    })
}

#[test]
fn bench_smoke_mixed_and_watch() {
    let server = start_server();
    let servers = format!("127.0.0.1:{}", server.port);
    let json = tempfile::NamedTempFile::new().unwrap();
    let json_path = json.path().to_str().unwrap();

    let output = bench(&[
        "--servers",
        &servers,
        "--clients",
        "3",
        "--duration",
        "3",
        "--warmup",
        "0.5",
        "--workload",
        "mixed:80",
        "--value-size",
        "64",
        "--json",
        json_path,
        "--root",
        "/rzk-bench-smoke",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rzk bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("p99.9"), "no table on stdout:\n{stdout}");
    assert!(stderr.contains("req/s"), "no progress on stderr:\n{stderr}");

    let lines = json_lines(&std::fs::read_to_string(json_path).unwrap());
    let total = total_line(&lines);
    assert!(total["ops"].as_u64().unwrap() > 0, "{total}");
    assert_eq!(total["errors"].as_u64(), Some(0), "{total}");
    assert_eq!(total["workload"], "mixed:80");
    for op in ["get", "set"] {
        let line = lines
            .iter()
            .find(|line| line["op"] == op)
            .unwrap_or_else(|| panic!("no {op} line"));
        assert!(line["ops"].as_u64().unwrap() > 0, "{line}");
        assert!(line["throughput"].as_f64().unwrap() > 0.0, "{line}");
        let p50 = line["p50_us"].as_u64().unwrap();
        let p99 = line["p99_us"].as_u64().unwrap();
        let max = line["max_us"].as_u64().unwrap();
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{line}");
    }
    assert!(
        !root_exists(server.port, "/rzk-bench-smoke"),
        "rzk bench left its znodes behind"
    );

    // Watch and create/delete pairs (closed loop), JSON on stdout with `--json -`.
    for workload in ["watch", "delete"] {
        let output = bench(&[
            "--servers",
            &servers,
            "--clients",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--workload",
            workload,
            "--json",
            "-",
            "--quiet",
            "--root",
            "/rzk-bench-smoke",
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{workload}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = json_lines(&stdout);
        let total = total_line(&lines);
        assert!(total["ops"].as_u64().unwrap() > 0, "{total}");
        assert_eq!(total["errors"].as_u64(), Some(0), "{total}");
        let expected_ops: &[&str] = if workload == "watch" {
            &["get", "set", "watch"]
        } else {
            &["create", "delete"]
        };
        for op in expected_ops {
            assert!(
                lines.iter().any(|line| line["op"] == *op),
                "{workload}: no {op} line in {stdout}"
            );
        }
    }

    // Open loop at a low fixed rate: it must not send more than scheduled. A
    // stall of this shared machine may leave scheduled requests unsent, which is
    // reported as NotSent (by design); any other error is a failure.
    let output = bench(&[
        "--servers",
        &servers,
        "--clients",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--workload",
        "get",
        "--rate",
        "100",
        "--json",
        "-",
        "--quiet",
        "--root",
        "/rzk-bench-smoke",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "open loop: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&stdout);
    let total = total_line(&lines);
    assert_eq!(total["target_rate"].as_f64(), Some(100.0), "{total}");
    let ops = total["ops"].as_u64().unwrap();
    assert!(ops > 0 && ops <= 100, "{total}");
    let error_kinds = total["error_kinds"].as_object().unwrap();
    assert!(error_kinds.keys().all(|kind| kind == "NotSent"), "{total}");
    assert_eq!(
        ops + total["errors"].as_u64().unwrap(),
        100,
        "every scheduled request is sent or reported: {total}"
    );
    assert!(
        !root_exists(server.port, "/rzk-bench-smoke"),
        "rzk bench left its znodes behind"
    );
}

#[test]
fn bench_reports_an_unreachable_server() {
    let port = free_port(); // bound then released: nothing listens there
    let output = bench(&[
        "--servers",
        &format!("127.0.0.1:{port}"),
        "--duration",
        "1",
        "--connect-timeout",
        "3",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bench_rejects_bad_arguments_without_panicking() {
    for args in [
        &["--workload", "mixed:150"][..],
        &["--clients", "0"],
        &["--root", "/"],
    ] {
        let output = bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.is_empty());
    }
}

/// Ctrl-C (SIGINT) in the middle of a run: the partial results are reported,
/// the run's znodes removed, and the exit is clean.
#[test]
fn bench_interrupted_reports_and_cleans_up() {
    let server = start_server();
    let servers = format!("127.0.0.1:{}", server.port);
    let started = Instant::now();
    let child = spawn_bench(&[
        "--servers",
        &servers,
        "--clients",
        "2",
        "--duration",
        "60",
        "--warmup",
        "0",
        "--workload",
        "set",
        "--json",
        "-",
        "--root",
        "/rzk-bench-interrupted",
    ]);
    // Past connecting and setting up: the load is running.
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let output = child.wait_with_output().expect("wait for rzk bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run went on after Ctrl-C"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let lines = json_lines(&stdout);
    let total = total_line(&lines);
    assert!(total["ops"].as_u64().unwrap() > 0, "{total}");
    assert!(total["duration_s"].as_f64().unwrap() < 30.0, "{total}");
    assert!(
        !root_exists(server.port, "/rzk-bench-interrupted"),
        "rzk bench left its znodes behind"
    );
}

/// Over several servers, `--spread even` (the default) puts the same number
/// of sessions on each; left to the client library, six sessions land 2/2/2
/// on three servers in only one run out of eight.
#[test]
fn bench_spreads_sessions_evenly_over_an_ensemble() {
    let ens = Ensemble::start(Spec::new("bench-spread", 3));
    let servers = ens.connect_string();
    let child = spawn_bench(&[
        "--servers",
        &servers,
        "--clients",
        "6",
        "--workload",
        "get",
        "--duration",
        "4",
        "--warmup",
        "0",
        "--quiet",
    ]);
    // Each server counts the two bench sessions; Apache ZooKeeper also counts
    // the connection that asks `mntr`, rzk does not.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen: Vec<Option<u64>> = ens
            .ids()
            .into_iter()
            .map(|id| mntr_value(&ens.mntr(id), "num_alive_connections"))
            .collect();
        if seen.iter().all(|&count| count == seen[0]) && matches!(seen[0], Some(2 | 3)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections per server never 2 each during the run: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait for rzk bench");
    assert!(
        out.status.success(),
        "rzk bench failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
