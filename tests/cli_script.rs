//! Scripted `rzk cli` runs against a real server (Apache ZooKeeper 3.8 by default,
//! `RZK_TEST_TARGET=rzk` for `rzk server`): every command, single-command mode and its
//! exit status, an unreachable server, and a connection loss with reconnection.

mod cli;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cli::{Server, assert_in_order, rzk_bin, rzk_cli};

#[test]
fn every_command_in_one_script() {
    let server = Server::start();
    let script = "\
create /app
help
version
create /app/cfg v1
create -e /app/lock me
create -s /app/job- j
create -c /box
create -t 60000 /lease l
ls /app
ls -s /app
ls2 /app
ls -R /app
get -s /app/cfg
set -s -v 0 /app/cfg v2
get /app/cfg
stat /app/cfg
getAcl -s /app/cfg
setAcl -s /app/cfg world:anyone:cdrwa
setAcl -R /app world:anyone:cdrwa
sync /app
addWatch /app
set /app/cfg v3
removewatches /app
get -w /app/cfg
set /app/cfg v4
getEphemerals /app
getAllChildrenNumber /app
whoami
addauth digest alice:secret
whoami
config -c
reconfig -remove 3
reconfig -file /nonexistent/dyn.cfg
setquota -n 5 /app
listquota /app
delquota /app
printwatches off
printwatches
printwatches on
delete /app/cfg
delete /app/cfg
deleteall -b 2 /app
create /tree
create /tree/leaf
rmr /tree
history
redo 0
connect
close
get /app
connect
ls /
quit
ls /never
";
    let run = rzk_cli(&server.addr(), &[], script);
    let (out, err) = (&run.stdout, &run.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_in_order(
        out,
        &[
            "Connecting to 127.0.0.1:",
            "WatchedEvent state:SyncConnected type:None path:null",
            "\taddWatch [-m mode] path",
            "\twhoami \n",
            "ZooKeeper CLI version: rzk ",
            "[cfg, job-0000000002, lock]\n",
            "[cfg, job-0000000002, lock]\ncZxid = 0x",
            "numChildren = 3\n",
            "[cfg, job-0000000002, lock]\ncZxid = 0x",
            "/app\n/app/cfg\n/app/job-0000000002\n/app/lock\n",
            "v1\ncZxid = 0x",
            "dataVersion = 1\n",
            "v2\n",
            "dataLength = 2\n",
            "'world,'anyone\n: cdrwa\ncZxid = 0x",
            "aclVersion = 1\n",
            "Sync is OK\n",
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:/app/cfg",
            "WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/app",
            "v3\n",
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:/app/cfg",
            "[/app/lock]\n",
            "3\n",
            "Auth scheme: User\nip: 127.0.0.1\n",
            "Auth scheme: User\n",
            "Output quota for /app count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1\n",
            "Output stat for /app count=4,bytes=",
            "printwatches is off\n",
            " - history\n",
            "WatchedEvent state:Closed type:None path:null",
            "WatchedEvent state:SyncConnected type:None path:null",
            "WatchedEvent state:Closed type:None path:null",
            "Not connected\n",
            "WatchedEvent state:SyncConnected type:None path:null",
            "[app, box, lease, zookeeper]\n",
        ],
    );
    assert!(!out.contains("/never"), "quit must stop the script:\n{out}");
    let after_addauth = &out[out.rfind("Auth scheme: User\n").unwrap()..];
    assert!(
        after_addauth.contains("\ndigest: alice\n") && after_addauth.contains("\nip: 127.0.0.1\n"),
        "{out}"
    );
    assert_in_order(
        err,
        &[
            "Created /app\n",
            "Created /app/cfg\n",
            "Created /app/lock\n",
            "Created /app/job-0000000002\n",
            "Created /box\n",
            "Created /lease\n",
            "KeeperErrorCode = Reconfig is disabled\n",
            "Error processing /nonexistent/dyn.cfg: ",
            "absolute path is /zookeeper/quota/app/zookeeper_limits\n",
            "Node does not exist: /app/cfg\n",
            "Created /tree\n",
            "Created /tree/leaf\n",
            "Created /app\n",
        ],
    );
    assert_eq!(run.code, Some(1), "a script with failed commands exits 1");
}

#[test]
fn clean_script_exits_zero_and_history_redo_work() {
    let server = Server::start();
    let run = rzk_cli(
        &server.addr(),
        &["-timeout", "20000"],
        "create /h 1\nset /h 2\nredo 1\nget -s /h\nhistory\n",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_in_order(
        &run.stdout,
        &[
            "2\ncZxid",
            "dataVersion = 2\n",
            "0 - create /h 1\n1 - set /h 2\n2 - set /h 2\n",
        ],
    );
    assert_in_order(&run.stdout, &["3 - get -s /h\n4 - history\n"]);
    let run = rzk_cli(&server.addr(), &[], "redo 5\nredo 0\n");
    assert_in_order(
        &run.stderr,
        &["Command index out of range\n", "No redoing redos\n"],
    );
}

#[test]
fn single_command_mode_exit_status() {
    let server = Server::start();
    let addr = server.addr();
    let ok = rzk_cli(&addr, &["create", "/s", "hello world"], "");
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert_eq!(ok.stderr, "Created /s\n");
    let get = rzk_cli(&addr, &["get", "/s"], "");
    assert_eq!(get.code, Some(0));
    assert!(get.stdout.ends_with("\nhello world\n"), "{get:?}");

    let missing = rzk_cli(&addr, &["get", "/nope"], "");
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr, "Node does not exist: /nope\n");

    let not_empty = rzk_cli(&addr, &["create", "/s/c"], "");
    assert_eq!(not_empty.code, Some(0));
    let run = rzk_cli(&addr, &["delete", "/s"], "");
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(1), "Node not empty: /s\n")
    );
    let run = rzk_cli(&addr, &["create", "/s"], "");
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(1), "Node already exists: /s\n")
    );
    let run = rzk_cli(&addr, &["create", "-q", "/z"], "");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "Unrecognized option: -q\ncreate [-s] [-e] [-c] [-t ttl] path [data] [acl]\n"
    );
    let run = rzk_cli(&addr, &["get", "s"], "");
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(1), "Path must start with / character\n")
    );
    let run = rzk_cli(&addr, &["frobnicate"], "");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.starts_with("Command not found: frobnicate"),
        "{run:?}"
    );

    // The session is closed on exit, so its ephemeral node is gone at once (not after the
    // session timeout).
    let run = rzk_cli(&addr, &["create", "-e", "/s/eph"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = rzk_cli(&addr, &["ls", "/s"], "");
    assert!(
        run.stdout.ends_with("\n[c]\n"),
        "ephemeral outlived its session: {run:?}"
    );
    let run = rzk_cli(&addr, &[], "create -e /s/eph2\nquit\n");
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = rzk_cli(&addr, &["ls", "/s"], "");
    assert!(
        run.stdout.ends_with("\n[c]\n"),
        "ephemeral outlived quit: {run:?}"
    );

    // Double-dash options and -r (read-only allowed) work too.
    let mut cmd = Command::new(rzk_bin());
    cmd.args([
        "cli",
        "--server",
        &addr,
        "--timeout",
        "15000",
        "-r",
        "ls",
        "/s",
    ]);
    let run = cli::run_with_input(cmd, "", Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.ends_with("[c]\n"), "{run:?}");
    for r in [&ok, &get, &missing] {
        assert!(!r.stderr.contains("panicked"));
    }
}

#[test]
fn unreachable_server_fails_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let run = rzk_cli(
        &format!("127.0.0.1:{port}"),
        &["-timeout", "2000", "ls", "/"],
        "",
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "Could not connect to 127.0.0.1:{port} within 2000 ms"
        )),
        "{run:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let mut cmd = Command::new(rzk_bin());
    cmd.args(["cli", "-server"]);
    let run = cli::run_with_input(cmd, "", Duration::from_secs(30));
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("no argument found for option -server"),
        "{run:?}"
    );
}

/// Live stdout of a running `rzk cli`, collected by a reader thread.
struct LiveCli {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: Arc<Mutex<String>>,
}

impl LiveCli {
    fn start(addr: &str, args: &[&str]) -> LiveCli {
        let mut child = Command::new(rzk_bin())
            .args(["cli", "-server", addr])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut s = sink.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        LiveCli {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn text(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits until `needle` occurs `times` times in the output.
    fn wait_for(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if self.text().matches(needle).count() >= times {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {times} x {needle:?}; output:\n{}",
            self.text()
        );
    }
}

impl Drop for LiveCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn connection_loss_and_reconnection_are_shown() {
    let mut server = Server::start();
    let mut cli = LiveCli::start(&server.addr(), &["-timeout", "30000"]);
    cli.send("create /x one");
    cli.send("get -w /x");
    cli.wait_for("\none\n", 1);
    server.stop();
    cli.wait_for("WatchedEvent state:Disconnected type:None path:null", 1);
    server.restart();
    cli.wait_for("WatchedEvent state:SyncConnected type:None path:null", 2);
    // The session and its watch survived: a change still fires the watch.
    cli.send("set /x two");
    cli.wait_for(
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/x",
        1,
    );
    cli.send("get /x");
    cli.wait_for("\ntwo\n", 1);
    cli.send("quit");
    let status = cli.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", cli.text());
    assert!(!cli.text().contains("panicked"));
}

#[test]
fn watch_set_by_another_client_fires_in_a_script() {
    let server = Server::start();
    let mut cli = LiveCli::start(&server.addr(), &[]);
    cli.send("create /other");
    cli.send("ls -w /other");
    cli.wait_for("[]\n", 1);
    let run = rzk_cli(&server.addr(), &["create", "/other/child"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    cli.wait_for(
        "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/other",
        1,
    );
    cli.send("quit");
    assert_eq!(cli.child.wait().unwrap().code(), Some(0));
}
