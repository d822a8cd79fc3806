//! A replicated ensemble of real server processes for fault tests: N
//! participants (and optional observers), each with its own zoo.cfg, data
//! dir (with `myid`) and log file, either on 127.0.0.1 with free ports, or
//! each in its own network namespace (10.77.S.(10+id), hung on a bridge in
//! a hub namespace that the test's root namespace reaches through one veth)
//! so that nodes can be cut off from each other with iptables.
//!
//! The target is chosen by RZK_TEST_TARGET: `rzk` (default; this crate's
//! `rzk server zoo.cfg`) or `apache` (Apache ZooKeeper 3.8 from Debian's
//! `zookeeper` package, tests/install-deps.sh).
//!
//! On a panic the ensemble prints the tail of every node's log and copies
//! the logs under the artifacts dir (target/test-artifacts or
//! $RZK_ARTIFACTS); namespaces are removed on drop.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Rzk,
    Apache,
}

impl Target {
    pub fn from_env() -> Target {
        match std::env::var("RZK_TEST_TARGET").as_deref() {
            Ok("apache") => Target::Apache,
            Ok("rzk") | Ok("") | Err(_) => Target::Rzk,
            Ok(other) => panic!("RZK_TEST_TARGET={other}: expected apache or rzk"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Rzk => "rzk",
            Target::Apache => "apache",
        }
    }
}

pub const TICK_MS: u64 = 200;

#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub participants: usize,
    pub observers: usize,
    pub netns: bool,
    /// In ticks (of TICK_MS): how long a leader keeps going without its
    /// quorum's acks, and a follower without its leader.
    pub sync_limit: u32,
    /// Extra zoo.cfg lines for every node.
    pub extra: String,
}

impl Spec {
    pub fn new(name: &str, participants: usize) -> Spec {
        Spec {
            name: name.to_string(),
            participants,
            observers: 0,
            netns: false,
            sync_limit: 5,
            extra: String::new(),
        }
    }

    pub fn sync_limit(mut self, ticks: u32) -> Spec {
        self.sync_limit = ticks;
        self
    }

    pub fn observers(mut self, n: usize) -> Spec {
        self.observers = n;
        self
    }

    pub fn netns(mut self) -> Spec {
        self.netns = true;
        self
    }

    pub fn extra(mut self, lines: &str) -> Spec {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }
}

pub struct Node {
    /// The myid, 1-based.
    pub id: u32,
    pub observer: bool,
    /// Where it listens: 127.0.0.1 or its namespace's address.
    pub host: String,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    /// Holds zoo.cfg, data/ and node.log.
    pub dir: PathBuf,
    pub netns: Option<String>,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

pub struct Ensemble {
    pub target: Target,
    pub spec: Spec,
    pub nodes: Vec<Node>,
    /// Node ids cut off from the others by `partition`.
    cut: Vec<Vec<u32>>,
    net: Option<Net>,
    tmp: tempfile::TempDir,
}

/// The reply to a four-letter word ("" when the node did not answer).
pub fn four_letter_at(addr: &str, word: &str) -> String {
    let Ok(sa) = addr.parse() else {
        return String::new();
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sa, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
    let _ = s.write_all(word.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The `Mode:` of a `srvr` reply (leader, follower, observer, standalone),
/// or None when the node does not serve.
pub fn mode_of(srvr: &str) -> Option<String> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_string())
}

/// Whether netns-based tests must run (RZK_REQUIRE_NETNS=1) instead of
/// being skipped where namespaces cannot be made.
pub fn netns_required() -> bool {
    std::env::var("RZK_REQUIRE_NETNS").is_ok_and(|v| v == "1")
}

impl Ensemble {
    /// Starts every node and waits until they serve with one leader.
    pub fn start(spec: Spec) -> Ensemble {
        let mut e = Ensemble::create(spec).unwrap_or_else(|e| panic!("{e}"));
        e.wait_ready(Duration::from_secs(60));
        e
    }

    /// Like `start` for a netns ensemble, but None (after printing why)
    /// when namespaces cannot be made here and RZK_REQUIRE_NETNS is not 1.
    pub fn start_netns(spec: Spec) -> Option<Ensemble> {
        let spec = spec.netns();
        match Ensemble::create(spec.clone()) {
            Ok(mut e) => {
                e.wait_ready(Duration::from_secs(60));
                Some(e)
            }
            Err(e) if e.starts_with("netns:") && !netns_required() => {
                eprintln!(
                    "SKIP {}: network namespaces unavailable ({e}); set RZK_REQUIRE_NETNS=1 to fail instead",
                    spec.name
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn create(spec: Spec) -> Result<Ensemble, String> {
        let target = Target::from_env();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("ens-{}-", spec.name))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let total = spec.participants + spec.observers;
        let net = if spec.netns {
            Some(Net::create(total).map_err(|e| format!("netns: {e}"))?)
        } else {
            None
        };
        let mut nodes = Vec::new();
        let mut used = std::collections::HashSet::new();
        let mut port = || loop {
            let p = super::free_port();
            if used.insert(p) {
                return p;
            }
        };
        for i in 0..total {
            let id = i as u32 + 1;
            let dir = tmp.path().join(format!("node{id}"));
            std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("data/myid"), format!("{id}\n")).map_err(|e| e.to_string())?;
            let (host, client_port, quorum_port, election_port, netns) = match &net {
                Some(n) => (n.node_ip(id), 2181, 2888, 3888, Some(n.node_ns(id))),
                None => ("127.0.0.1".to_string(), port(), port(), port(), None),
            };
            nodes.push(Node {
                id,
                observer: i >= spec.participants,
                host,
                client_port,
                quorum_port,
                election_port,
                dir,
                netns,
                child: None,
                paused: false,
            });
        }
        let mut e = Ensemble {
            target,
            spec,
            nodes,
            cut: Vec::new(),
            net,
            tmp,
        };
        e.write_configs();
        for id in e.ids() {
            e.start_node(id);
        }
        Ok(e)
    }

    fn write_configs(&self) {
        let servers: String = self
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "server.{}={}:{}:{}:{};{}:{}\n",
                    n.id,
                    n.host,
                    n.quorum_port,
                    n.election_port,
                    if n.observer {
                        "observer"
                    } else {
                        "participant"
                    },
                    n.host,
                    n.client_port
                )
            })
            .collect();
        for n in &self.nodes {
            let mut cfg = format!(
                "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit={}\n\
                 dataDir={}\nclientPort={}\nclientPortAddress={}\n\
                 maxSessionTimeout=20000\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\n\
                 reconfigEnabled=false\nstandaloneEnabled=false\n",
                self.spec.sync_limit,
                n.data_dir().display(),
                n.client_port,
                n.host
            );
            if self.target == Target::Rzk {
                cfg.push_str("metricsProvider.httpPort=0\n");
            }
            if n.observer {
                cfg.push_str("peerType=observer\n");
            }
            cfg.push_str(&servers);
            cfg.push_str(&self.spec.extra);
            std::fs::write(n.dir.join("zoo.cfg"), cfg).unwrap();
        }
    }

    pub fn ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn participants(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|n| !n.observer)
            .map(|n| n.id)
            .collect()
    }

    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize - 1]
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    pub fn addr(&self, id: u32) -> String {
        self.node(id).addr()
    }

    /// The connect string of the given nodes.
    pub fn connect_string_of(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|id| self.addr(*id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The connect string of every node.
    pub fn connect_string(&self) -> String {
        self.connect_string_of(&self.ids())
    }

    /// Starts a node's process (it must not be running).
    pub fn start_node(&mut self, id: u32) {
        let target = self.target;
        let n = self.node_mut(id);
        assert!(n.child.is_none(), "node {id} is already running");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.log_path())
            .unwrap();
        let _ = writeln!(log, "==== test harness: starting node {id} ====");
        let cfg = n.dir.join("zoo.cfg");
        let mut cmd = match target {
            Target::Rzk => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_rzk"));
                c.arg("server").arg(&cfg);
                c
            }
            Target::Apache => {
                let mut c = Command::new("java");
                c.args([
                    "-Xmx256m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    "-Dzookeeper.admin.enableServer=false",
                    "-Dzookeeper.cnxTimeout=1000",
                    "-Dorg.slf4j.simpleLogger.showDateTime=true",
                    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                    "-cp",
                    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                ]);
                c.arg(&cfg);
                c
            }
        };
        cmd.current_dir(&n.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // Between fork and exec: die with the test thread that started it
        // (a killed test leaves no servers behind), and enter the node's
        // namespace.
        let ns_file = n.netns.as_ref().map(|ns| {
            File::open(format!("/run/netns/{ns}"))
                .unwrap_or_else(|e| panic!("open netns {ns}: {e}"))
        });
        let fd = ns_file.as_ref().map(|f| f.as_raw_fd());
        // SAFETY: prctl and setns are async-signal-safe; the fd stays open
        // until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = fd
                    && libc::setns(fd, libc::CLONE_NEWNET) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "start {} node {id}: {e} (is it installed? tests/install-deps.sh)",
                target.name()
            )
        });
        drop(ns_file);
        n.child = Some(child);
        n.paused = false;
    }

    fn signal(&self, id: u32, sig: i32) {
        if let Some(pid) = self.node(id).pid() {
            // SAFETY: plain kill(2) on our own child.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGTERM, and waits for the exit (SIGKILL after 15 s).
    pub fn stop(&mut self, id: u32) {
        self.signal(id, libc::SIGTERM);
        if self.node(id).paused {
            self.signal(id, libc::SIGCONT);
        }
        let n = self.node_mut(id);
        if let Some(mut c) = n.child.take() {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    eprintln!("node {id} ignored SIGTERM for 15 s; SIGKILL");
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        n.paused = false;
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self, id: u32) {
        let n = self.node_mut(id);
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        n.paused = false;
    }

    /// SIGSTOP: the process stays, silent.
    pub fn pause(&mut self, id: u32) {
        self.signal(id, libc::SIGSTOP);
        self.node_mut(id).paused = true;
        // kill(2) returns before the stop takes effect: wait until every
        // thread is stopped, or a "paused" server may still answer what
        // the test sends next.
        if let Some(pid) = self.node(id).pid() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !all_threads_stopped(pid) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: u32) {
        self.signal(id, libc::SIGCONT);
        self.node_mut(id).paused = false;
    }

    /// SIGTERM then start again on the same data dir.
    pub fn restart(&mut self, id: u32) {
        self.stop(id);
        self.start_node(id);
    }

    /// Empties a stopped node's data dir but keeps its myid.
    pub fn wipe(&mut self, id: u32) {
        let n = self.node(id);
        assert!(n.child.is_none(), "wipe node {id} while it runs");
        let data = n.data_dir();
        for entry in std::fs::read_dir(&data).unwrap().flatten() {
            if entry.file_name() == "myid" {
                continue;
            }
            let p = entry.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }

    pub fn srvr(&self, id: u32) -> String {
        four_letter_at(&self.addr(id), "srvr")
    }

    pub fn mntr(&self, id: u32) -> String {
        four_letter_at(&self.addr(id), "mntr")
    }

    /// The node's Mode, None when it does not serve (or does not answer).
    pub fn mode(&self, id: u32) -> Option<String> {
        let n = self.node(id);
        if n.child.is_none() || n.paused {
            return None;
        }
        mode_of(&self.srvr(id))
    }

    /// The running node that says it leads, if any.
    pub fn leader(&self) -> Option<u32> {
        self.ids()
            .into_iter()
            .find(|id| self.mode(*id).as_deref() == Some("leader"))
    }

    /// Panics if a node's process died by itself.
    pub fn assert_alive(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = &mut n.child
                && let Ok(Some(status)) = c.try_wait()
            {
                n.child = None;
                panic!("node {} exited by itself: {status}", n.id);
            }
        }
    }

    /// Waits until each of `ids` serves (leader/follower/observer) and
    /// exactly one of them leads; returns the leader.
    pub fn wait_serving(&mut self, ids: &[u32], timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_alive();
            let modes: Vec<(u32, Option<String>)> =
                ids.iter().map(|id| (*id, self.mode(*id))).collect();
            let leaders: Vec<u32> = modes
                .iter()
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(id, _)| *id)
                .collect();
            let all = modes.iter().all(|(id, m)| {
                matches!(m.as_deref(), Some("leader" | "follower" | "observer"))
                    && (m.as_deref() == Some("observer")) == self.node(*id).observer
            });
            if all && leaders.len() == 1 {
                return leaders[0];
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: nodes {ids:?} not all serving with one leader after {timeout:?}: {modes:?}",
                    self.spec.name
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running, unpaused node serves, with one leader.
    pub fn wait_ready(&mut self, timeout: Duration) -> u32 {
        let ids: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some() && !n.paused)
            .map(|n| n.id)
            .collect();
        self.wait_serving(&ids, timeout)
    }

    /// Waits until the node does not serve (e.g. it lost its quorum): its
    /// `srvr` has no `Mode: leader|follower|observer|standalone`.
    pub fn wait_not_serving(&mut self, id: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.mode(id).filter(|m| {
            matches!(
                m.as_str(),
                "leader" | "follower" | "observer" | "standalone"
            )
        }) {
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "node {id} still serves as {m} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // ---- partitions (netns ensembles only) ----

    /// Cuts every node of `a` off from every node of `b` (both ways);
    /// clients in the root namespace still reach all of them.
    pub fn partition(&mut self, a: &[u32], b: &[u32]) {
        let net = self
            .net
            .as_ref()
            .expect("partition needs Spec::netns / Ensemble::start_netns");
        for x in a {
            for y in b {
                net.drop_between(*x, &net.node_ip(*y));
                net.drop_between(*y, &net.node_ip(*x));
            }
        }
        self.cut.push(a.to_vec());
    }

    /// Cuts `ids` off from every other node.
    pub fn isolate(&mut self, ids: &[u32]) {
        let rest: Vec<u32> = self
            .ids()
            .into_iter()
            .filter(|i| !ids.contains(i))
            .collect();
        self.partition(ids, &rest);
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        if let Some(net) = &self.net {
            for id in self.ids() {
                net.flush(id);
            }
        }
        self.cut.clear();
    }

    // ---- logs ----

    pub fn log(&self, id: u32) -> String {
        std::fs::read_to_string(self.node(id).log_path()).unwrap_or_default()
    }

    /// Copies the logs under the artifacts dir and prints their tails.
    pub fn dump_logs(&self, why: &str) {
        let dir = super::linear::artifacts_dir().join(format!(
            "{}-{}-{}",
            self.spec.name,
            self.target.name(),
            std::process::id()
        ));
        let _ = std::fs::create_dir_all(&dir);
        eprintln!(
            "==== {} ({}) {why}; logs in {} ====",
            self.spec.name,
            self.target.name(),
            dir.display()
        );
        for n in &self.nodes {
            let log = self.log(n.id);
            let _ = std::fs::copy(n.log_path(), dir.join(format!("node{}.log", n.id)));
            let _ = std::fs::copy(n.dir.join("zoo.cfg"), dir.join(format!("node{}.cfg", n.id)));
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(40);
            eprintln!(
                "---- node {} log (last {} lines) ----",
                n.id,
                lines.len() - from
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
    }

    pub fn tmp_path(&self) -> &Path {
        self.tmp.path()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs("failed");
        }
        for id in self.ids() {
            if self.node(id).paused {
                self.signal(id, libc::SIGCONT);
            }
            self.kill9(id);
        }
        // Then `net` drops: namespaces go.
    }
}

// ---- network namespaces ----

static NET_SEQ: AtomicU32 = AtomicU32::new(0);

/// A hub namespace with a bridge, one namespace per node on it (address
/// 10.77.S.(10+id)), and a veth from the root namespace (10.77.S.1).
pub struct Net {
    tag: String,
    subnet: u8,
    nodes: usize,
    made_ns: Vec<String>,
    root_veth: Option<String>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn output(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Net {
    pub fn create(nodes: usize) -> Result<Net, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        Net::remove_stale();
        let pid = std::process::id();
        let seq = NET_SEQ.fetch_add(1, Ordering::SeqCst);
        let addrs = output(&["ip", "-o", "-4", "addr", "show"]);
        let subnet = (0..200u32)
            .map(|i| ((pid.wrapping_mul(7) + seq * 13 + i) % 200 + 20) as u8)
            .find(|s| !addrs.contains(&format!("10.77.{s}.")))
            .ok_or("no free 10.77.x.0/24")?;
        let mut net = Net {
            tag: format!("zk{:x}-{seq}", pid),
            subnet,
            nodes,
            made_ns: Vec::new(),
            root_veth: None,
        };
        net.build()?;
        Ok(net)
    }

    fn build(&mut self) -> Result<(), String> {
        let hub = format!("{}h", self.tag);
        run(&["ip", "netns", "add", &hub])?;
        self.made_ns.push(hub.clone());
        run(&["ip", "-n", &hub, "link", "set", "lo", "up"])?;
        run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &hub, "link", "set", "br0", "up"])?;
        // The root namespace's leg.
        let rv = format!("{}r", self.tag);
        let rvh = format!("{}q", self.tag);
        run(&[
            "ip", "link", "add", &rv, "type", "veth", "peer", "name", &rvh,
        ])?;
        self.root_veth = Some(rv.clone());
        run(&["ip", "link", "set", &rvh, "netns", &hub])?;
        run(&["ip", "-n", &hub, "link", "set", &rvh, "master", "br0", "up"])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.{}.1/24", self.subnet),
            "dev",
            &rv,
        ])?;
        run(&["ip", "link", "set", &rv, "up"])?;
        for id in 1..=self.nodes as u32 {
            let ns = self.node_ns(id);
            run(&["ip", "netns", "add", &ns])?;
            self.made_ns.push(ns.clone());
            let a = format!("{}a{id}", self.tag);
            let b = format!("{}b{id}", self.tag);
            run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])?;
            run(&["ip", "link", "set", &a, "netns", &hub])?;
            run(&["ip", "link", "set", &b, "netns", &ns])?;
            run(&["ip", "-n", &hub, "link", "set", &a, "master", "br0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.node_ip(id)),
                "dev",
                &b,
            ])?;
            run(&["ip", "-n", &ns, "link", "set", &b, "up"])?;
        }
        // iptables must work in a node's namespace, or partitions cannot.
        let ns1 = self.node_ns(1);
        run(&["ip", "netns", "exec", &ns1, "iptables", "-L", "-n"])
            .map_err(|e| format!("iptables in a namespace: {e}"))?;
        Ok(())
    }

    pub fn node_ns(&self, id: u32) -> String {
        format!("{}n{id}", self.tag)
    }

    pub fn node_ip(&self, id: u32) -> String {
        format!("10.77.{}.{}", self.subnet, 10 + id)
    }

    /// In node `id`'s namespace: drop everything to and from `ip`.
    fn drop_between(&self, id: u32, ip: &str) {
        let ns = self.node_ns(id);
        for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
            run(&[
                "ip", "netns", "exec", &ns, "iptables", "-A", chain, dir, ip, "-j", "DROP",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn flush(&self, id: u32) {
        let ns = self.node_ns(id);
        run(&["ip", "netns", "exec", &ns, "iptables", "-F"]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Removes namespaces and veths left by test processes that are gone.
    fn remove_stale() {
        for line in output(&["ip", "netns", "list"]).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix("zk") else {
                continue;
            };
            let Some((pid, _)) = rest.split_once('-') else {
                continue;
            };
            let Ok(pid) = u32::from_str_radix(pid, 16) else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
        for line in output(&["ip", "-o", "link", "show"]).lines() {
            let Some(name) = line.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or("");
            if let Some(rest) = name.strip_prefix("zk")
                && let Some((pid, _)) = rest.split_once('-')
                && let Ok(pid) = u32::from_str_radix(pid, 16)
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = run(&["ip", "link", "del", name]);
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(rv) = &self.root_veth {
            let _ = run(&["ip", "link", "del", rv]);
        }
        for ns in self.made_ns.iter().rev() {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// True when every thread of `pid` is in the stopped state ('T').
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|st| st.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
            .unwrap_or(true)
    })
}
