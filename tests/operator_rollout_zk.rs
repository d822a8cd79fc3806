//! Local rollout simulation: the rollout planner drives REAL ZooKeeper server processes
//! through config changes (rolling restarts), a scale 3 → 5 → 3 (again 3 → 5 on the kept
//! PVCs of the removed members, then 5 → 3 deleting them) and leader losses, under a
//! continuous write load, and no acknowledged write may be lost. Config change and leader
//! loss run [`ROUNDS`] times, scaling once.
//!
//! The processes stand in for the StatefulSet's pods: "deleting a pod" stops the process
//! (SIGTERM) and starts it again with the current zoo.cfg (the ConfigMap) and template, a
//! "PVC" is the server's data directory, a process that exits on its own is restarted (the
//! kubelet) and the third such exit fails the test. Member roles come from `srvr` through
//! the operator's own parser, the committed membership from `/zookeeper/config` and
//! membership changes go through `reconfig`, both via the operator's production [`ZkAdmin`].
//! As in production, ACLs are on: zoo.cfg carries the super user's digest (the operator's
//! builder, of a random password) and `ZkAdmin` authenticates as the super user for every
//! reconfig; one made with a wrong password must be refused.
//!
//! Two targets share the harness, one test each (`RZK_TEST_TARGET=apache|rzk` runs only one;
//! unset runs both, one after the other):
//! - Apache ZooKeeper 3.8 from Debian's `zookeeper` package. Without
//!   `/usr/share/java/zookeeper.jar` that test says so and passes without checking;
//!   `RZK_REQUIRE_ZOOKEEPER=1` turns that into a failure (for CI).
//! - `rzk server` (this crate's binary). Readiness comes from each node's `/health/ready`
//!   on its own admin port, as the pod's readiness probe has it. What rzk cannot do yet is
//!   skipped with a `SKIP` line, one switch each (see [`Caps`]).
//!
//! Besides "no acknowledged write lost", the writer's history (creates, sets and reads) goes
//! through the ZooKeeper-aware checker in `tests/common/history.rs`, and every restart the
//! planner orders is checked against the leader's own `mntr` (`zk_synced_followers`): a
//! synced quorum must remain without the restarted member. Server logs of a failed run (or
//! of any run with `RZK_KEEP_LOGS=1`) are kept; the path is printed.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::history::{Entry, Op, Outcome, check};
use common::mntr_value;
use rzk::operator::controller::{AdminPassword, EnsembleAdmin, ZkAdmin};
use rzk::operator::planner::{Action, MemberState, Observed, Role, config_map_members, plan};
use rzk::operator::resources::{ConfigRole, Member};
use rzk::operator::srvr::{SrvrInfo, fetch_srvr, four_letter_word, parse_config};
use tokio::sync::Mutex;

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const MAX_SERVERS: u32 = 5;

/// What a server can do that the phases need. Each rzk entry is a one-line switch: set it to
/// true once rzk can, and the phase that needs it runs against rzk too.
struct Caps {
    /// Membership changes through `reconfig`: the scaling phase (3 → 5 → 3).
    reconfig: bool,
    /// A member removed by reconfig whose data dir is kept (reclaimPolicy Retain) rejoins
    /// when the spec grows again: its pod starts with a zoo.cfg listing it as an observer
    /// while its own log holds the newer reconfig that removed it (it rejoins as a
    /// non-voting learner until the reconfig adds it back).
    rejoin_on_stale_data: bool,
}

const APACHE: Caps = Caps {
    reconfig: true,
    rejoin_on_stale_data: true,
};

const RZK: Caps = Caps {
    reconfig: true,
    rejoin_on_stale_data: true,
};

/// The server the harness runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Apache,
    Rzk,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Apache => "apache",
            Target::Rzk => "rzk",
        }
    }

    fn caps(self) -> &'static Caps {
        match self {
            Target::Apache => &APACHE,
            Target::Rzk => &RZK,
        }
    }

    /// `RZK_TEST_TARGET` unset runs both; set, only the named one.
    fn selected(self) -> bool {
        match std::env::var("RZK_TEST_TARGET") {
            Ok(t) if !t.is_empty() => t == self.name(),
            _ => true,
        }
    }
}

/// Config change + leader loss rounds (the scaling phase runs once, in the first).
const ROUNDS: u32 = 2;

/// One test at a time: each runs up to five servers plus a write load on a small machine.
static SERIAL: Mutex<()> = Mutex::const_new(());

#[derive(Clone, Copy)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
    /// rzk's admin server (`/health/ready`); unused for Apache.
    admin: u16,
}

struct Proc {
    child: Child,
    hash: String,
}

/// One RestartPod the planner ordered.
#[derive(Debug, Clone)]
struct Restart {
    phase: String,
    ordinal: u32,
    was_leader: bool,
    /// Every other pod was already on the desired template.
    others_current: bool,
    /// Synced voters the leader's `mntr` reported right before the restart (itself included).
    synced_voters: usize,
    voters: usize,
}

struct Harness {
    target: Target,
    base: Option<tempfile::TempDir>,
    ports: Vec<Ports>,
    procs: BTreeMap<u32, Proc>,
    sts: u32,
    sts_exists: bool,
    pvcs: BTreeSet<u32>,
    desired: String,
    spec: Vec<Member>,
    admin: ZkAdmin,
    /// The super user's password (the admin Secret); zoo.cfg gets its digest.
    password: AdminPassword,
    restarts: Vec<Restart>,
    log: Vec<String>,
    /// reclaimPolicy Delete.
    delete_pvcs: bool,
    /// rzk: observations where `/health/ready` and `srvr` disagreed (they are read one after
    /// the other, so a transition may fall between them).
    ready_mismatches: Vec<String>,
    /// The longest a server took to exit on SIGTERM.
    slowest_stop: Duration,
    /// Exits nobody asked for, per ordinal.
    crashes: BTreeMap<u32, usize>,
}

fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| common::free_port()).collect()
}

fn participants(n: u32) -> Vec<Member> {
    (1..=n)
        .map(|id| Member {
            id,
            role: ConfigRole::Participant,
        })
        .collect()
}

/// `GET /health/ready` on an admin port: Some(true) for 200, Some(false) for another status,
/// None when nothing answers.
async fn health_ready(port: u16) -> Option<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
    };
    let reply = tokio::time::timeout(Duration::from_millis(800), exchange)
        .await
        .ok()?
        .ok()?;
    let status = reply.split_whitespace().nth(1)?;
    Some(status == "200")
}

impl Harness {
    fn new(target: Target) -> Self {
        let p = free_ports(4 * MAX_SERVERS as usize);
        let ports = (0..MAX_SERVERS as usize)
            .map(|i| Ports {
                client: p[4 * i],
                quorum: p[4 * i + 1],
                election: p[4 * i + 2],
                admin: p[4 * i + 3],
            })
            .collect();
        Self {
            target,
            base: Some(tempfile::tempdir().expect("tempdir")),
            ports,
            procs: BTreeMap::new(),
            sts: 0,
            sts_exists: false,
            pvcs: BTreeSet::new(),
            desired: "v1".into(),
            spec: participants(3),
            admin: ZkAdmin {
                timeout: Duration::from_secs(3),
            },
            password: AdminPassword::random(),
            restarts: vec![],
            log: vec![],
            delete_pvcs: true,
            ready_mismatches: vec![],
            slowest_stop: Duration::ZERO,
            crashes: BTreeMap::new(),
        }
    }

    fn base(&self) -> &Path {
        self.base.as_ref().expect("temp dir").path()
    }

    fn client_addr(&self, ordinal: u32) -> String {
        format!("127.0.0.1:{}", self.ports[ordinal as usize].client)
    }

    fn connect_string(&self) -> String {
        (0..MAX_SERVERS)
            .map(|o| self.client_addr(o))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn server_line(&self, m: Member) -> String {
        let p = self.ports[(m.id - 1) as usize];
        format!(
            "server.{}=127.0.0.1:{}:{}:{};127.0.0.1:{}",
            m.id,
            p.quorum,
            p.election,
            m.role.as_str(),
            p.client
        )
    }

    fn dir(&self, ordinal: u32) -> PathBuf {
        self.base().join(format!("data-{ordinal}"))
    }

    /// zoo.cfg as the operator would write it; the "template" (hash) decides one key. ACLs
    /// are checked (no skipACL): reconfig needs the super user, whose digest is here.
    fn zoo_cfg(&self, ordinal: u32, members: &[Member], hash: &str, dir: &Path) -> String {
        let mut cfg = format!(
            "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nstandaloneEnabled=false\nreconfigEnabled=true\n{}={}\n4lw.commands.whitelist=*\nmaxClientCnxns={}\n",
            dir.display(),
            rzk::operator::resources::SUPER_DIGEST_KEY,
            self.password.digest(),
            if hash == "v1" { 60 } else { 61 }
        );
        match self.target {
            Target::Apache => cfg.push_str("admin.enableServer=false\n"),
            Target::Rzk => cfg.push_str(&format!(
                "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={}\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=0\n",
                self.ports[ordinal as usize].admin
            )),
        }
        for m in members {
            cfg.push_str(&self.server_line(*m));
            cfg.push('\n');
        }
        cfg
    }

    fn start(&mut self, ordinal: u32, members: &[Member]) {
        let dir = self.dir(ordinal);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), format!("{}\n", ordinal + 1)).unwrap();
        let cfg_path = dir.join("zoo.cfg");
        std::fs::write(
            &cfg_path,
            self.zoo_cfg(ordinal, members, &self.desired, &dir),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let mut cmd = match self.target {
            Target::Apache => {
                let mut c = Command::new("java");
                c.args([
                    "-Xmx128m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    &format!("-Dzookeeper.log.dir={}", dir.display()),
                    "-cp",
                    &format!("/etc/zookeeper/conf:{ZK_JAR}"),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                ]);
                c
            }
            Target::Rzk => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_rzk"));
                c.arg("server");
                c
            }
        };
        let child = cmd
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} server: {e}", self.target.name()));
        self.pvcs.insert(ordinal);
        self.procs.insert(
            ordinal,
            Proc {
                child,
                hash: self.desired.clone(),
            },
        );
    }

    fn stop(&mut self, ordinal: u32) {
        if let Some(mut p) = self.procs.remove(&ordinal) {
            // SIGTERM like the kubelet, then SIGKILL after a grace period.
            unsafe {
                libc::kill(p.child.id() as i32, libc::SIGTERM);
            }
            let t = Instant::now();
            let deadline = t + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    self.slowest_stop = self.slowest_stop.max(t.elapsed());
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.log.push(format!(
                "ordinal {ordinal} ignored SIGTERM for 10 s: SIGKILL"
            ));
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    fn kill(&mut self, ordinal: u32) {
        if let Some(mut p) = self.procs.remove(&ordinal) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// The last lines of every server's log, for failure messages.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for o in 0..MAX_SERVERS {
            let Ok(text) = std::fs::read_to_string(self.dir(o).join("server.log")) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- ordinal {o} (last 8 lines)\n"));
            for l in &lines[lines.len().saturating_sub(8)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// A server that exited on its own is restarted like the kubelet restarts a container
    /// (the StatefulSet step below starts it again); the third exit fails the test.
    fn reap_crashed(&mut self) {
        let exited: Vec<(u32, String)> = self
            .procs
            .iter_mut()
            .filter_map(|(o, p)| {
                let status = p.child.try_wait().ok().flatten()?;
                Some((*o, status.to_string()))
            })
            .collect();
        for (o, status) in exited {
            self.procs.remove(&o);
            let text = std::fs::read_to_string(self.dir(o).join("server.log")).unwrap_or_default();
            let last = text.lines().last().unwrap_or("").to_string();
            self.log
                .push(format!("ordinal {o} exited on its own ({status}): {last}"));
            let n = self.crashes.entry(o).or_default();
            *n += 1;
            assert!(
                *n < 3,
                "{}: ordinal {o} keeps exiting (crash loop), last: {last}\nsteps: {:#?}\n{}",
                self.target.name(),
                &self.log[self.log.len().saturating_sub(15)..],
                self.log_tails()
            );
        }
    }

    async fn observe(&mut self) -> (Observed, Option<String>) {
        self.reap_crashed();
        let mut members = vec![];
        let mut leader = None;
        for (o, p) in &self.procs {
            let info: Option<SrvrInfo> =
                fetch_srvr(&self.client_addr(*o), Duration::from_millis(800))
                    .await
                    .ok();
            let role = info.as_ref().map(|i| i.role()).unwrap_or(Role::Unknown);
            let serving = matches!(role, Role::Leader | Role::Follower | Role::Observer);
            if let Some(i) = info.as_ref().filter(|_| serving) {
                // The rest of the operator reads these too (status, version checks).
                assert!(
                    i.version.is_some() && i.zxid.is_some() && i.node_count.is_some(),
                    "{}: srvr of serving ordinal {o} lacks version/zxid/node count: {i:?}",
                    self.target.name()
                );
            }
            if role == Role::Leader {
                leader = Some((*o, self.client_addr(*o)));
            }
            // The pod's readiness: rzk's `/health/ready` (the chart's readiness probe);
            // Apache 3.8 has no such endpoint, so there it is "srvr says serving".
            let ready = match self.target {
                Target::Apache => serving,
                Target::Rzk => {
                    let ready = health_ready(self.ports[*o as usize].admin)
                        .await
                        .unwrap_or(false);
                    if ready != serving {
                        self.ready_mismatches.push(format!(
                            "ordinal {o}: /health/ready {ready}, srvr mode {:?}",
                            info.as_ref().and_then(|i| i.mode.clone())
                        ));
                    }
                    ready
                }
            };
            members.push(MemberState {
                ordinal: *o,
                pod_exists: true,
                terminating: false,
                ready,
                role,
                synced: serving,
                template_hash: Some(p.hash.clone()),
            });
        }
        let config = match &leader {
            Some((_, addr)) => self
                .admin
                .config(addr.clone())
                .await
                .ok()
                .filter(|c| !c.is_empty()),
            None => None,
        };
        let observed = Observed {
            desired_hash: self.desired.clone(),
            target: self.spec.clone(),
            config,
            sts_replicas: self.sts,
            members,
            pvc_ordinals: self.pvcs.iter().copied().collect(),
            delete_pvcs: self.delete_pvcs,
        };
        (observed, leader.map(|(_, a)| a))
    }

    /// The StatefulSet controller: recreate missing pods below `sts`.
    fn recreate_missing(&mut self, config: Option<&[Member]>) {
        let missing: Vec<u32> = (0..self.sts)
            .filter(|o| !self.procs.contains_key(o))
            .collect();
        if missing.is_empty() {
            return;
        }
        let members = config_map_members(config, &self.spec, self.sts_exists, self.sts)
            .unwrap_or_else(|| self.spec.clone());
        for o in missing {
            self.log.push(format!("statefulset recreates ordinal {o}"));
            self.start(o, &members);
        }
    }

    /// Running voters of the given configuration (processes alive).
    fn alive_voters(&self, config: &[Member]) -> (usize, usize) {
        let voters: Vec<u32> = config
            .iter()
            .filter(|m| m.role == ConfigRole::Participant)
            .map(|m| m.id)
            .collect();
        let alive = voters
            .iter()
            .filter(|id| self.procs.contains_key(&(*id - 1)))
            .count();
        (alive, voters.len())
    }

    /// Before carrying out a restart: the leader itself must report enough synced followers
    /// that the voters left without `ordinal` are a majority. Read a few times (the planner
    /// read `srvr` a moment ago; `mntr` is a separate snapshot); returns (synced voters,
    /// voters) or panics.
    async fn synced_quorum_without(
        &self,
        phase: &str,
        leader: &str,
        config: &[Member],
        ordinal: u32,
        target_serving_voter: bool,
    ) -> (usize, usize) {
        let voters = config
            .iter()
            .filter(|m| m.role == ConfigRole::Participant)
            .count();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mntr = four_letter_word(leader, "mntr", Duration::from_secs(2))
                .await
                .unwrap_or_default();
            let state_ok = mntr.contains("zk_server_state\tleader");
            let synced_voters = mntr_value(&mntr, "synced_followers")
                .map(|f| f as usize + 1)
                .unwrap_or(0);
            let remaining = synced_voters - usize::from(target_serving_voter && synced_voters > 0);
            if voters <= 1 || (state_ok && remaining * 2 > voters) {
                return (synced_voters, voters);
            }
            assert!(
                Instant::now() < deadline,
                "{phase}: planner ordered a restart of ordinal {ordinal} but the leader ({leader}) \
                 reports {synced_voters} synced voters of {voters}, {remaining} without it; mntr:\n{mntr}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Follow the plan until Done.
    async fn converge(&mut self, phase: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if Instant::now() >= deadline {
                panic!(
                    "{}: {phase}: not converged in {limit:?}; last steps: {:#?}\n{}",
                    self.target.name(),
                    &self.log[self.log.len().saturating_sub(15)..],
                    self.log_tails()
                );
            }
            let (obs, leader) = self.observe().await;
            let action = plan(&obs);
            if !matches!(action, Action::Wait { .. })
                || self.log.last() != Some(&format!("{phase}: {action}"))
            {
                self.log.push(format!("{phase}: {action}"));
            }
            match &action {
                Action::Done => return,
                Action::Wait { .. } => {
                    self.recreate_missing(obs.config.as_deref());
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
                Action::RestartPod { ordinal } => {
                    let member = obs.members.iter().find(|m| m.ordinal == *ordinal);
                    let was_leader = member.is_some_and(|m| m.role == Role::Leader);
                    let others_current = obs.members.iter().all(|m| {
                        m.ordinal == *ordinal
                            || m.template_hash.as_deref() == Some(self.desired.as_str())
                    });
                    let is_voter = obs
                        .config
                        .iter()
                        .flatten()
                        .any(|m| m.id == ordinal + 1 && m.role == ConfigRole::Participant);
                    let serving_voter = is_voter
                        && member.is_some_and(|m| {
                            m.ready && matches!(m.role, Role::Leader | Role::Follower)
                        });
                    // A pod that is not serving (outdated and unready) may be replaced without
                    // a leader; a serving voter only with a synced quorum left.
                    let (synced_voters, voters) = match (&leader, &obs.config) {
                        (Some(addr), Some(config)) => {
                            self.synced_quorum_without(phase, addr, config, *ordinal, serving_voter)
                                .await
                        }
                        _ => {
                            assert!(
                                !serving_voter,
                                "{phase}: restart of serving voter {ordinal} without a known leader and configuration"
                            );
                            (0, 0)
                        }
                    };
                    self.restarts.push(Restart {
                        phase: phase.to_string(),
                        ordinal: *ordinal,
                        was_leader,
                        others_current,
                        synced_voters,
                        voters,
                    });
                    self.stop(*ordinal);
                    if let Some(c) = &obs.config {
                        let (alive, voters) = self.alive_voters(c);
                        assert!(
                            voters <= 1 || alive * 2 > voters,
                            "{phase}: restarting ordinal {ordinal} left {alive} of {voters} voters running"
                        );
                    }
                    self.recreate_missing(obs.config.as_deref());
                }
                Action::AddMember { id, role } => {
                    let line = self.server_line(Member {
                        id: *id,
                        role: *role,
                    });
                    let addr = leader.clone().expect("leader for reconfig");
                    self.admin
                        .reconfig(addr, self.password.clone(), vec![line], vec![])
                        .await
                        .unwrap_or_else(|e| panic!("{phase}: reconfig add {id}: {e}"));
                }
                Action::RemoveMember { id } => {
                    let addr = leader.clone().expect("leader for reconfig");
                    self.admin
                        .reconfig(addr, self.password.clone(), vec![], vec![*id])
                        .await
                        .unwrap_or_else(|e| panic!("{phase}: reconfig remove {id}: {e}"));
                }
                Action::ScaleStatefulSet { replicas } => {
                    let members = config_map_members(
                        obs.config.as_deref(),
                        &self.spec,
                        self.sts_exists,
                        *replicas,
                    )
                    .expect("membership known when scaling");
                    let old = self.sts;
                    self.sts = *replicas;
                    self.sts_exists = true;
                    for o in old..*replicas {
                        self.start(o, &members);
                    }
                    for o in *replicas..old {
                        if let Some(c) = &obs.config {
                            assert!(
                                !c.iter().any(|m| m.id == o + 1),
                                "{phase}: pod of member {} removed while still in the ensemble",
                                o + 1
                            );
                        }
                        self.stop(o);
                    }
                }
                Action::DeletePvc { ordinal } => {
                    assert!(!self.procs.contains_key(ordinal));
                    std::fs::remove_dir_all(self.dir(*ordinal)).unwrap();
                    self.pvcs.remove(ordinal);
                }
            }
        }
    }

    /// The rolling restart of one phase went followers first, the leader last, one restart
    /// per member.
    fn check_rolling_order(&self, phase: &str, members: usize) {
        let restarts: Vec<&Restart> = self.restarts.iter().filter(|r| r.phase == phase).collect();
        assert_eq!(
            restarts.len(),
            members,
            "{phase}: one restart per member: {restarts:#?}\n{:#?}",
            self.log
        );
        let ordinals: BTreeSet<u32> = restarts.iter().map(|r| r.ordinal).collect();
        assert_eq!(ordinals.len(), members, "{phase}: a member restarted twice");
        let leader_restarts: Vec<usize> = restarts
            .iter()
            .enumerate()
            .filter(|(_, r)| r.was_leader)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            leader_restarts,
            vec![members - 1],
            "{phase}: exactly one restart hit the leader, the last one: {restarts:#?}"
        );
        assert!(
            restarts[members - 1].others_current,
            "{phase}: the leader was restarted after every other member: {restarts:#?}"
        );
    }

    /// The raw `/zookeeper/config` as the leader serves it.
    async fn config_text(&self) -> Option<String> {
        let mut leader = None;
        for o in self.procs.keys() {
            if let Ok(i) = fetch_srvr(&self.client_addr(*o), Duration::from_millis(800)).await
                && i.role() == Role::Leader
            {
                leader = Some(self.client_addr(*o));
            }
        }
        let client = zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&leader?)
            .await
            .ok()?;
        let (data, _) = client.get_config().await.ok()?;
        Some(String::from_utf8_lossy(&data).into_owned())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let ordinals: Vec<u32> = self.procs.keys().copied().collect();
        for o in ordinals {
            self.kill(o);
        }
        if (std::thread::panicking() || std::env::var_os("RZK_KEEP_LOGS").is_some())
            && let Some(dir) = self.base.take()
        {
            eprintln!(
                "{}: server data and logs kept in {}",
                self.target.name(),
                dir.keep().display()
            );
        }
    }
}

fn outcome_of_error(e: &zookeeper_client::Error) -> Outcome {
    use zookeeper_client::Error as E;
    match e {
        E::NodeExists | E::NoNode | E::BadVersion => Outcome::Refused,
        _ => Outcome::Unknown,
    }
}

/// The write load, one session at a time: each round creates `/load/w-<n>` (a fresh key),
/// sets `/load/counter` to `n` and reads it back, recording every operation for the
/// history checker. A new session syncs before it reads, so its reads are never stale.
async fn writer(hosts: String, stop: Arc<AtomicBool>, entries: Arc<Mutex<Vec<Entry>>>) {
    use zookeeper_client::{Acls, Client, CreateMode};
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let mut n: u64 = 0;
    let mut client: Option<(Client, u64)> = None;
    let mut synced = false;
    while !stop.load(Ordering::Relaxed) {
        let (c, session) = match &client {
            Some(c) => c.clone(),
            None => match tokio::time::timeout(
                Duration::from_secs(5),
                Client::connector()
                    .with_session_timeout(Duration::from_secs(20))
                    .connect(&hosts),
            )
            .await
            {
                Ok(Ok(c)) => {
                    let _ = c.create("/load", &[], &options).await;
                    let session = c.session_id().0 as u64;
                    let invoked = Instant::now();
                    let op = Op::Create {
                        key: "/load/counter".into(),
                        value: b"init".to_vec(),
                    };
                    let outcome = match c.create("/load/counter", b"init", &options).await {
                        Ok((stat, _)) => Outcome::Wrote {
                            zxid: stat.czxid,
                            version: stat.version,
                        },
                        Err(e) => outcome_of_error(&e),
                    };
                    entries.lock().await.push(Entry {
                        session,
                        op,
                        invoked,
                        completed: Instant::now(),
                        outcome,
                    });
                    synced = false;
                    client = Some((c.clone(), session));
                    (c, session)
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let mut broken = false;

        let key = format!("/load/w-{n:08}");
        let value = n.to_string().into_bytes();
        let invoked = Instant::now();
        let res =
            tokio::time::timeout(Duration::from_secs(5), c.create(&key, &value, &options)).await;
        let outcome = match &res {
            Ok(Ok((stat, _))) => Outcome::Wrote {
                zxid: stat.czxid,
                version: stat.version,
            },
            Ok(Err(e)) => outcome_of_error(e),
            Err(_) => Outcome::Unknown,
        };
        broken |= outcome == Outcome::Unknown;
        let expired = matches!(
            res,
            Ok(Err(zookeeper_client::Error::SessionExpired))
                | Ok(Err(zookeeper_client::Error::ClientClosed))
        );
        entries.lock().await.push(Entry {
            session,
            op: Op::Create { key, value },
            invoked,
            completed: Instant::now(),
            outcome,
        });
        n += 1;

        if !broken {
            let value = n.to_string().into_bytes();
            let invoked = Instant::now();
            let res = tokio::time::timeout(
                Duration::from_secs(5),
                c.set_data("/load/counter", &value, None),
            )
            .await;
            let outcome = match &res {
                Ok(Ok(stat)) => Outcome::Wrote {
                    zxid: stat.mzxid,
                    version: stat.version,
                },
                Ok(Err(e)) => outcome_of_error(e),
                Err(_) => Outcome::Unknown,
            };
            broken |= outcome == Outcome::Unknown;
            entries.lock().await.push(Entry {
                session,
                op: Op::Set {
                    key: "/load/counter".into(),
                    value,
                },
                invoked,
                completed: Instant::now(),
                outcome,
            });
        }

        if !broken && !synced {
            synced = matches!(
                tokio::time::timeout(Duration::from_secs(5), c.sync("/load")).await,
                Ok(Ok(()))
            );
        }
        if !broken && synced {
            let invoked = Instant::now();
            let res =
                tokio::time::timeout(Duration::from_secs(5), c.get_data("/load/counter")).await;
            let outcome = match res {
                Ok(Ok((data, stat))) => Some(Outcome::Read(Some((data, stat.mzxid)))),
                Ok(Err(zookeeper_client::Error::NoNode)) => Some(Outcome::Read(None)),
                _ => None,
            };
            if let Some(outcome) = outcome {
                entries.lock().await.push(Entry {
                    session,
                    op: Op::Get {
                        key: "/load/counter".into(),
                    },
                    invoked,
                    completed: Instant::now(),
                    outcome,
                });
            }
        }

        if expired {
            client = None;
        } else if broken {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn acked_creates(entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|e| matches!(e.op, Op::Create { .. }) && matches!(e.outcome, Outcome::Wrote { .. }))
        .count()
}

/// Wait until the load has `more` further acknowledged creates.
async fn load_progresses(entries: &Mutex<Vec<Entry>>, more: usize, what: &str) {
    let before = acked_creates(&entries.lock().await);
    let t = Instant::now();
    while acked_creates(&entries.lock().await) < before + more {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no write progress {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every acknowledged create is there with its value, and the whole history passes the
/// ZooKeeper-aware checker.
async fn verify_history(h: &Harness, entries: &[Entry]) -> (usize, usize) {
    let client = zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(&h.connect_string())
        .await
        .expect("connect for checking");
    client.sync("/load").await.expect("sync");
    let keys: BTreeSet<String> = entries.iter().map(|e| e.op.key().to_string()).collect();
    let mut final_state: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    let keys: Vec<String> = keys.into_iter().collect();
    for chunk in keys.chunks(200) {
        let reads = futures::future::join_all(chunk.iter().map(|k| client.get_data(k))).await;
        for (k, r) in chunk.iter().zip(reads) {
            let v = match r {
                Ok((data, _)) => Some(data),
                Err(zookeeper_client::Error::NoNode) => None,
                Err(e) => panic!("{}: final read of {k}: {e}", h.target.name()),
            };
            final_state.insert(k.clone(), v);
        }
    }
    let mut missing = vec![];
    for e in entries {
        if let (Op::Create { key, value }, Outcome::Wrote { .. }) = (&e.op, &e.outcome)
            && key.starts_with("/load/w-")
            && final_state.get(key) != Some(&Some(value.clone()))
        {
            missing.push((key.clone(), final_state.get(key).cloned()));
        }
    }
    let acked = acked_creates(entries);
    assert!(
        missing.is_empty(),
        "{}: {} of {} acknowledged creates lost: {:?}",
        h.target.name(),
        missing.len(),
        acked,
        &missing[..missing.len().min(5)]
    );
    if let Err(e) = check(entries, &final_state) {
        panic!("{}: history check failed: {e}", h.target.name());
    }
    let writes = entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Wrote { .. }))
        .count();
    (writes, entries.len())
}

/// Scale 3 -> 5 -> 3 keeping the PVCs (reclaimPolicy Retain), then 3 -> 5 again on the stale
/// PVCs of the removed members, then 5 -> 3 deleting them (or, without the stale-PVC rejoin,
/// just deleting them). Needs `reconfig`.
async fn scaling(h: &mut Harness) {
    // Without the super user's password reconfig is refused: what the operator's
    // authentication is for. The membership stays as it was.
    let (obs, leader) = h.observe().await;
    let leader = leader.expect("a leader before scaling");
    let refused = h
        .admin
        .reconfig(
            leader,
            AdminPassword::new("not-the-password"),
            vec![],
            vec![3],
        )
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("not authorized")),
        "{}: reconfig with a wrong super password: {refused:?}",
        h.target.name()
    );
    let (after, _) = h.observe().await;
    assert_eq!(
        after.config, obs.config,
        "a refused reconfig changed nothing"
    );
    h.spec = participants(5);
    h.converge("scale up", Duration::from_secs(240)).await;
    let (obs, _) = h.observe().await;
    assert_eq!(obs.config.as_deref(), Some(&participants(5)[..]));
    h.delete_pvcs = false;
    h.spec = participants(3);
    h.converge("scale down (Retain)", Duration::from_secs(240))
        .await;
    assert!(
        h.dir(3).join("version-2").exists() && h.dir(4).join("version-2").exists(),
        "PVCs kept under Retain"
    );
    if h.target.caps().rejoin_on_stale_data {
        h.spec = participants(5);
        h.converge("scale up on stale PVCs", Duration::from_secs(240))
            .await;
        let (obs, _) = h.observe().await;
        assert_eq!(obs.config.as_deref(), Some(&participants(5)[..]));
    } else {
        eprintln!(
            "SKIP scale up on stale PVCs: {} does not rejoin on the data of a removed member",
            h.target.name()
        );
    }
    h.delete_pvcs = true;
    h.spec = participants(3);
    h.converge("scale down", Duration::from_secs(240)).await;
    let (obs, _) = h.observe().await;
    assert_eq!(obs.config.as_deref(), Some(&participants(3)[..]));
    assert_eq!(h.procs.len(), 3);
    assert!(
        !h.dir(3).exists() && !h.dir(4).exists(),
        "PVCs of removed members deleted"
    );
}

async fn rollout(target: Target) {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let name = target.name();
    let mut h = Harness::new(target);

    h.converge("bootstrap", Duration::from_secs(120)).await;
    assert_eq!(h.procs.len(), 3);

    // What the operator reads as the committed membership.
    let text = h.config_text().await;
    eprintln!("{name}: /zookeeper/config after bootstrap: {text:?}");
    let text = text.unwrap_or_default();
    assert_eq!(
        parse_config(&text),
        participants(3),
        "{name}: /zookeeper/config parses to the bootstrap membership"
    );
    assert!(
        text.lines().any(|l| l.starts_with("version=")),
        "{name}: /zookeeper/config has a version line: {text:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(writer(h.connect_string(), stop.clone(), entries.clone()));
    let t = Instant::now();
    while acked_creates(&entries.lock().await) < 20 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{name}: writer made no progress\n{}",
            h.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for round in 1..=ROUNDS {
        // 1. A config change rolls every member, one at a time, followers first, the leader
        //    last.
        let phase = format!("config change {round}");
        h.desired = format!("v{}", round + 1);
        h.converge(&phase, Duration::from_secs(240)).await;
        h.check_rolling_order(&phase, 3);
        assert!(h.procs.values().all(|p| p.hash == h.desired));
        load_progresses(&entries, 20, &format!("after {phase}")).await;

        // 2. Scaling, where the server has reconfig.
        if round == 1 {
            if target.caps().reconfig {
                scaling(&mut h).await;
            } else {
                eprintln!("SKIP scaling: {name} has no reconfig yet");
            }
        }

        // 3. Leader loss: the leader's process dies; the StatefulSet brings it back.
        let phase = format!("leader loss {round}");
        let (obs, _) = h.observe().await;
        let leader = obs
            .members
            .iter()
            .find(|m| m.role == Role::Leader)
            .expect("a leader")
            .ordinal;
        h.kill(leader);
        h.log.push(format!("killed leader ordinal {leader}"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        h.converge(&phase, Duration::from_secs(180)).await;
        assert!(
            !h.restarts.iter().any(|r| r.phase == phase),
            "{name}: nothing to restart after a leader loss: {:#?}",
            h.restarts
        );
        let (obs, _) = h.observe().await;
        let leaders: Vec<u32> = obs
            .members
            .iter()
            .filter(|m| m.role == Role::Leader)
            .map(|m| m.ordinal)
            .collect();
        assert_eq!(
            leaders.len(),
            1,
            "{name}: one leader after the leader loss: {obs:#?}"
        );
        h.log
            .push(format!("{phase}: leader now ordinal {}", leaders[0]));
        load_progresses(&entries, 20, &format!("after {phase}")).await;
    }

    // Verify every acknowledged write.
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let entries = entries.lock().await.clone();
    let (writes, ops) = verify_history(&h, &entries).await;

    eprintln!(
        "{name}: {} acknowledged creates ({writes} acknowledged writes, {ops} operations) \
         none lost, history consistent; {} restarts, each with a synced quorum left: {:?}; \
         /health/ready vs srvr mismatches: {} {:?}; slowest exit on SIGTERM {:.1?}; took {:.0?}\nsteps:\n{}",
        acked_creates(&entries),
        h.restarts.len(),
        h.restarts
            .iter()
            .map(|r| format!(
                "{}:{}{} ({}/{} synced)",
                r.phase,
                r.ordinal,
                if r.was_leader { " (leader)" } else { "" },
                r.synced_voters,
                r.voters
            ))
            .collect::<Vec<_>>(),
        h.ready_mismatches.len(),
        &h.ready_mismatches[..h.ready_mismatches.len().min(5)],
        h.slowest_stop,
        started.elapsed(),
        h.log.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_drives_apache_zookeeper_through_config_change_scaling_and_leader_loss() {
    if !Target::Apache.selected() {
        eprintln!("SKIPPED: RZK_TEST_TARGET selects another target");
        return;
    }
    if !Path::new(ZK_JAR).exists() || Command::new("java").arg("-version").output().is_err() {
        eprintln!("SKIPPED: Debian's zookeeper package (and java) are not installed");
        assert!(
            std::env::var_os("RZK_REQUIRE_ZOOKEEPER").is_none(),
            "RZK_REQUIRE_ZOOKEEPER is set but ZooKeeper is not installed"
        );
        return;
    }
    rollout(Target::Apache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_drives_rzk_through_config_change_scaling_and_leader_loss() {
    if !Target::Rzk.selected() {
        eprintln!("SKIPPED: RZK_TEST_TARGET selects another target");
        return;
    }
    rollout(Target::Rzk).await;
}
