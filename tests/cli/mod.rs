//! Test harness for `rzk cli`: a real ZooKeeper server per test (Apache ZooKeeper 3.8 from
//! Debian by default, or `rzk server` with `RZK_TEST_TARGET=rzk`), running `rzk cli` and
//! Apache's `zkCli.sh` as processes, and normalizing their output for comparison.
//! Every process started here is killed when its handle drops.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server the tests talk to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    Apache,
    Rzk,
}

pub fn target() -> Target {
    match std::env::var("RZK_TEST_TARGET").as_deref() {
        Ok("rzk") => Target::Rzk,
        Ok("apache") | Err(_) => Target::Apache,
        Ok(other) => panic!("RZK_TEST_TARGET must be apache or rzk, not {other}"),
    }
}

/// Apache ZooKeeper's jar (Debian package `zookeeper`); its manifest pulls in the rest.
pub fn zookeeper_jar() -> String {
    std::env::var("ZOOKEEPER_JAR").unwrap_or_else(|_| "/usr/share/java/zookeeper.jar".into())
}

/// The server's classpath: ZooKeeper, plus slf4j-simple when present so the
/// server log says why a start failed.
fn classpath() -> String {
    let simple = "/usr/share/java/slf4j-simple.jar";
    if std::path::Path::new(simple).exists() {
        format!("{}:{simple}", zookeeper_jar())
    } else {
        zookeeper_jar()
    }
}

/// Apache's zkCli.sh (Debian package `zookeeper`).
pub fn zkcli_sh() -> String {
    std::env::var("ZKCLI_SH").unwrap_or_else(|_| "/usr/share/zookeeper/bin/zkCli.sh".into())
}

pub fn rzk_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rzk")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A standalone server on a temp dir and a free loopback port.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub target: Target,
    dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Self::start_target(target())
    }

    pub fn start_target(target: Target) -> Server {
        Self::start_with(target, false)
    }

    /// A one-member ensemble with dynamic reconfiguration on (`standaloneEnabled=false`,
    /// `reconfigEnabled=true`, `skipACL=yes` so no super user is needed for `reconfig`).
    pub fn start_reconfigurable() -> Server {
        Self::start_with(target(), true)
    }

    fn start_with(target: Target, reconfigurable: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nadmin.enableServer=false\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\n",
            data.display()
        );
        if reconfigurable {
            std::fs::write(data.join("myid"), "1\n").unwrap();
            let (quorum, election) = (free_port(), free_port());
            cfg.push_str(&format!(
                "reconfigEnabled=true\nstandaloneEnabled=false\nskipACL=yes\n\
                 server.1=127.0.0.1:{quorum}:{election}:participant;127.0.0.1:{port}\n"
            ));
        } else {
            cfg.push_str(&format!("clientPort={port}\nclientPortAddress=127.0.0.1\n"));
        }
        std::fs::write(dir.path().join("zoo.cfg"), cfg).unwrap();
        let mut server = Server {
            child: None,
            port,
            target,
            dir,
        };
        server.launch();
        server
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn cfg_path(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    /// The exact command used to start the server (for logs and the report).
    pub fn command(&self) -> Command {
        match self.target {
            Target::Apache => {
                let mut c = Command::new("java");
                c.args([
                    "-Xmx256m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    "-Dzookeeper.admin.enableServer=false",
                    "-cp",
                    &classpath(),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                ]);
                c.arg(self.cfg_path());
                c
            }
            Target::Rzk => {
                let mut c = Command::new(rzk_bin());
                c.arg("server").arg(self.cfg_path());
                c
            }
        }
    }

    /// Starts the server; a server that dies while starting (e.g. a port a
    /// concurrent test grabbed between our stop and start, or a JVM hiccup on
    /// a loaded machine) gets two more tries before the test fails.
    fn launch(&mut self) {
        for attempt in 1..=3 {
            self.spawn();
            match self.wait_ready() {
                Ok(()) => return,
                Err(e) if attempt < 3 => {
                    eprintln!("server start attempt {attempt} failed, retrying: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?} server: {e}", self.target));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!(
                    "{:?} server exited early ({status}); log:\n{}",
                    self.target,
                    self.log()
                ));
            }
            // `ruok` answers while the server is still starting; `srvr` reports a mode only
            // once requests are served (an rzk server without four-letter words: connectable).
            if let Ok(mut s) = TcpStream::connect(self.addr()) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"srvr");
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                if reply.contains("Mode: ") || (self.target == Target::Rzk && reply.is_empty()) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop();
        Err(format!(
            "{:?} server not ready on {} after 90s; log:\n{}",
            self.target,
            self.addr(),
            self.log()
        ))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kills the server (data stays for a restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Output of a finished client process.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// Runs a command with `stdin` fed and closed; kills it after `limit`.
pub fn run_with_input(cmd: Command, stdin: &str, limit: Duration) -> Run {
    run_until(cmd, stdin, None, limit)
}

/// Like [`run_with_input`], but keeps stdin open until stdout shows `marker` (zkCli exits at
/// end of input at once, possibly before its event thread printed the last events).
pub fn run_until(mut cmd: Command, stdin: &str, marker: Option<&str>, limit: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let deadline = Instant::now() + limit;
    let collect = |pipe: Box<dyn Read + Send>| {
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = sink.clone();
        let reader = std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                writer.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (sink, reader)
    };
    let (out, out_reader) = collect(Box::new(child.stdout.take().unwrap()));
    let (err, err_reader) = collect(Box::new(child.stderr.take().unwrap()));
    let text = |buf: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
    };
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    let _ = input.flush();
    if let Some(marker) = marker {
        while !text(&out).contains(marker)
            && Instant::now() < deadline
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(input);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "client did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                text(&out),
                text(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = out_reader.join();
    let _ = err_reader.join();
    Run {
        stdout: text(&out),
        stderr: text(&err),
        code: status.code(),
    }
}

/// `rzk cli -server <addr> <args...>` with `stdin`.
pub fn rzk_cli(addr: &str, args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new(rzk_bin());
    cmd.args(["cli", "-server", addr]).args(args);
    run_with_input(cmd, stdin, Duration::from_secs(120))
}

/// Apache's `zkCli.sh -server <addr>` reading the script from stdin; stdin stays open
/// until stdout shows `marker`.
pub fn zkcli(addr: &str, stdin: &str, marker: Option<&str>) -> Run {
    let mut cmd = Command::new(zkcli_sh());
    cmd.args(["-server", addr]);
    cmd.env(
        "CLIENT_JVMFLAGS",
        "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx128m",
    );
    run_until(cmd, stdin, marker, Duration::from_secs(180))
}

/// Output made comparable: banner and logging lines dropped, times, zxids and session ids
/// replaced, watch events taken out (they print from another thread in zkCli, so their
/// position relative to command output is not stable there) and returned sorted.
#[derive(Debug, PartialEq)]
pub struct Normalized {
    pub lines: Vec<String>,
    pub events: Vec<String>,
}

pub fn normalize(text: &str) -> Normalized {
    let mut lines = Vec::new();
    let mut events = Vec::new();
    for line in text.lines() {
        if line.starts_with("SLF4J:")
            || line.starts_with("Connecting to ")
            || line.starts_with("Welcome to ")
            || line.starts_with("JLine support")
            || line == "WATCHER::"
            || line.is_empty()
        {
            continue;
        }
        if line.starts_with("WatchedEvent ") {
            events.push(line.to_string());
            continue;
        }
        lines.push(normalize_line(line));
    }
    events.sort();
    Normalized { lines, events }
}

/// Masks loopback ports (each run has its own server on its own free ports).
fn mask_ports(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + "127.0.0.1:".len()]);
        rest = &rest[i + "127.0.0.1:".len()..];
        // host:port, and the further :port of quorum addresses (host:quorum:election).
        loop {
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                break;
            }
            out.push_str("<port>");
            rest = &rest[digits..];
            match rest.strip_prefix(':') {
                Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => {
                    out.push(':');
                    rest = after;
                }
                _ => break,
            }
        }
    }
    out.push_str(rest);
    out
}

fn normalize_line(line: &str) -> String {
    let line = &mask_ports(line);
    for key in ["ctime = ", "mtime = "] {
        if line.starts_with(key) {
            return format!("{key}<time>");
        }
    }
    for key in ["cZxid = 0x", "mZxid = 0x", "pZxid = 0x"] {
        if line.starts_with(key) {
            return format!("{key}<zxid>");
        }
    }
    if let Some(owner) = line.strip_prefix("ephemeralOwner = 0x")
        && owner != "0"
    {
        return "ephemeralOwner = 0x<session>".to_string();
    }
    line.to_string()
}

/// Asserts `haystack` contains every needle, in order.
pub fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut rest = haystack;
    for needle in needles {
        match rest.find(needle) {
            Some(i) => rest = &rest[i + needle.len()..],
            None => panic!("expected {needle:?} (in this order) in:\n{haystack}"),
        }
    }
}
