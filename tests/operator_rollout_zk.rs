//! Local rollout simulation: the rollout planner drives REAL ZooKeeper server processes
//! through a config change (rolling restart), a scale 3 → 5 → 3 and a leader loss, under a
//! continuous write load, and no acknowledged write may be lost.
//!
//! The processes stand in for the StatefulSet's pods: "deleting a pod" stops the process
//! (SIGTERM) and starts it again with the current zoo.cfg (the ConfigMap) and template, a
//! "PVC" is the server's data directory. Member roles come from `srvr` through the
//! operator's own parser, the committed membership from `/zookeeper/config` and membership
//! changes go through `reconfig`, both via the operator's production [`ZkAdmin`].
//!
//! The servers are Apache ZooKeeper 3.8 from Debian's `zookeeper` package (rzk's own server
//! lives in another module; the same harness can drive `rzk server` by changing
//! `server_command`). Without `/usr/share/java/zookeeper.jar` the test says so and passes
//! without checking; `RZK_REQUIRE_ZOOKEEPER=1` turns that into a failure (for CI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rzk::operator::controller::{EnsembleAdmin, ZkAdmin};
use rzk::operator::planner::{Action, MemberState, Observed, Role, config_map_members, plan};
use rzk::operator::resources::{ConfigRole, Member};
use rzk::operator::srvr::fetch_srvr;
use tokio::sync::Mutex;

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const MAX_SERVERS: u32 = 5;

#[derive(Clone, Copy)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
}

struct Proc {
    child: Child,
    hash: String,
}

struct Harness {
    base: tempfile::TempDir,
    ports: Vec<Ports>,
    procs: BTreeMap<u32, Proc>,
    sts: u32,
    sts_exists: bool,
    pvcs: BTreeSet<u32>,
    desired: String,
    target: Vec<Member>,
    admin: ZkAdmin,
    /// (ordinal, was leader, other pods already current) of every RestartPod.
    restarts: Vec<(u32, bool, bool)>,
    log: Vec<String>,
    /// reclaimPolicy Delete.
    delete_pvcs: bool,
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn participants(n: u32) -> Vec<Member> {
    (1..=n)
        .map(|id| Member {
            id,
            role: ConfigRole::Participant,
        })
        .collect()
}

impl Harness {
    fn new() -> Self {
        let p = free_ports(3 * MAX_SERVERS as usize);
        let ports = (0..MAX_SERVERS as usize)
            .map(|i| Ports {
                client: p[3 * i],
                quorum: p[3 * i + 1],
                election: p[3 * i + 2],
            })
            .collect();
        Self {
            base: tempfile::tempdir().expect("tempdir"),
            ports,
            procs: BTreeMap::new(),
            sts: 0,
            sts_exists: false,
            pvcs: BTreeSet::new(),
            desired: "v1".into(),
            target: participants(3),
            admin: ZkAdmin {
                timeout: Duration::from_secs(3),
            },
            restarts: vec![],
            log: vec![],
            delete_pvcs: true,
        }
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
        self.base.path().join(format!("data-{ordinal}"))
    }

    /// zoo.cfg as the operator would write it; the "template" (hash) decides one key.
    fn zoo_cfg(&self, members: &[Member], hash: &str, dir: &Path) -> String {
        let mut cfg = format!(
            "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nstandaloneEnabled=false\nreconfigEnabled=true\nskipACL=yes\n4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns={}\n",
            dir.display(),
            if hash == "v1" { 60 } else { 61 }
        );
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
        std::fs::write(&cfg_path, self.zoo_cfg(members, &self.desired, &dir)).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let child = Command::new("java")
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                &format!("-Dzookeeper.log.dir={}", dir.display()),
                "-cp",
                &format!("/etc/zookeeper/conf:{ZK_JAR}"),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start java");
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
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
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

    async fn observe(&self) -> (Observed, Option<String>) {
        let mut members = vec![];
        let mut leader = None;
        for (o, p) in &self.procs {
            let info = fetch_srvr(&self.client_addr(*o), Duration::from_millis(800))
                .await
                .ok();
            let role = info.as_ref().map(|i| i.role()).unwrap_or(Role::Unknown);
            let serving = matches!(role, Role::Leader | Role::Follower | Role::Observer);
            if role == Role::Leader {
                leader = Some(self.client_addr(*o));
            }
            members.push(MemberState {
                ordinal: *o,
                pod_exists: true,
                terminating: false,
                ready: serving,
                role,
                synced: serving,
                template_hash: Some(p.hash.clone()),
            });
        }
        let config = match &leader {
            Some(addr) => self
                .admin
                .config(addr.clone())
                .await
                .ok()
                .filter(|c| !c.is_empty()),
            None => None,
        };
        let observed = Observed {
            desired_hash: self.desired.clone(),
            target: self.target.clone(),
            config,
            sts_replicas: self.sts,
            members,
            pvc_ordinals: self.pvcs.iter().copied().collect(),
            delete_pvcs: self.delete_pvcs,
        };
        (observed, leader)
    }

    /// The StatefulSet controller: recreate missing pods below `sts`.
    fn recreate_missing(&mut self, config: Option<&[Member]>) {
        let missing: Vec<u32> = (0..self.sts)
            .filter(|o| !self.procs.contains_key(o))
            .collect();
        if missing.is_empty() {
            return;
        }
        let members = config_map_members(config, &self.target, self.sts_exists, self.sts)
            .unwrap_or_else(|| self.target.clone());
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

    /// Follow the plan until Done.
    async fn converge(&mut self, phase: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            assert!(
                Instant::now() < deadline,
                "{phase}: not converged in {limit:?}; last steps: {:#?}",
                &self.log[self.log.len().saturating_sub(15)..]
            );
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
                    let was_leader = obs
                        .members
                        .iter()
                        .any(|m| m.ordinal == *ordinal && m.role == Role::Leader);
                    let others_current = obs.members.iter().all(|m| {
                        m.ordinal == *ordinal
                            || m.template_hash.as_deref() == Some(self.desired.as_str())
                    });
                    self.restarts.push((*ordinal, was_leader, others_current));
                    let config = obs.config.clone();
                    self.stop(*ordinal);
                    if let Some(c) = &config {
                        let (alive, voters) = self.alive_voters(c);
                        assert!(
                            voters <= 1 || alive * 2 > voters,
                            "{phase}: restarting ordinal {ordinal} left {alive} of {voters} voters running"
                        );
                    }
                    self.recreate_missing(config.as_deref());
                }
                Action::AddMember { id, role } => {
                    let line = self.server_line(Member {
                        id: *id,
                        role: *role,
                    });
                    let addr = leader.clone().expect("leader for reconfig");
                    self.admin
                        .reconfig(addr, vec![line], vec![])
                        .await
                        .unwrap_or_else(|e| panic!("{phase}: reconfig add {id}: {e}"));
                }
                Action::RemoveMember { id } => {
                    let addr = leader.clone().expect("leader for reconfig");
                    self.admin
                        .reconfig(addr, vec![], vec![*id])
                        .await
                        .unwrap_or_else(|e| panic!("{phase}: reconfig remove {id}: {e}"));
                }
                Action::ScaleStatefulSet { replicas } => {
                    let members = config_map_members(
                        obs.config.as_deref(),
                        &self.target,
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
}

impl Drop for Harness {
    fn drop(&mut self) {
        let ordinals: Vec<u32> = self.procs.keys().copied().collect();
        for o in ordinals {
            self.kill(o);
        }
    }
}

/// Writes `/load/w-<n>` continuously; returns the acknowledged `n`s.
async fn writer(hosts: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<u64>>>) {
    use zookeeper_client::{Acls, Client, CreateMode};
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let mut n: u64 = 0;
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        let c = match &client {
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
                    client = Some(c.clone());
                    c
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let path = format!("/load/w-{n:08}");
        match tokio::time::timeout(
            Duration::from_secs(5),
            c.create(&path, n.to_string().as_bytes(), &options),
        )
        .await
        {
            Ok(Ok(_)) | Ok(Err(zookeeper_client::Error::NodeExists)) => {
                acked.lock().await.push(n);
                n += 1;
            }
            Ok(Err(zookeeper_client::Error::SessionExpired))
            | Ok(Err(zookeeper_client::Error::ClientClosed)) => {
                client = None;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_drives_real_zookeeper_through_config_change_scaling_and_leader_loss() {
    if !Path::new(ZK_JAR).exists() || Command::new("java").arg("-version").output().is_err() {
        eprintln!("SKIPPED: Debian's zookeeper package (and java) are not installed");
        assert!(
            std::env::var_os("RZK_REQUIRE_ZOOKEEPER").is_none(),
            "RZK_REQUIRE_ZOOKEEPER is set but ZooKeeper is not installed"
        );
        return;
    }
    let mut h = Harness::new();

    h.converge("bootstrap", Duration::from_secs(120)).await;
    assert_eq!(h.procs.len(), 3);

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(writer(h.connect_string(), stop.clone(), acked.clone()));
    // Let the load get going.
    let started = Instant::now();
    while acked.lock().await.len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "writer made no progress"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1. A config change rolls every member, one at a time, the leader last.
    h.desired = "v2".into();
    h.converge("config change", Duration::from_secs(240)).await;
    assert_eq!(h.restarts.len(), 3, "{:#?}", h.log);
    let leader_restarts: Vec<_> = h.restarts.iter().filter(|r| r.1).collect();
    assert_eq!(
        leader_restarts.len(),
        1,
        "exactly one restart hit the leader: {:?}",
        h.restarts
    );
    assert!(
        leader_restarts[0].2,
        "the leader was restarted last: {:?}",
        h.restarts
    );
    assert!(h.procs.values().all(|p| p.hash == "v2"));

    // 2. Scale 3 -> 5 -> 3 keeping the PVCs (reclaimPolicy Retain), then 3 -> 5 again on
    //    the stale PVCs of the removed members, then 5 -> 3 deleting them.
    h.target = participants(5);
    h.converge("scale up", Duration::from_secs(240)).await;
    let (obs, _) = h.observe().await;
    assert_eq!(obs.config.as_deref(), Some(&participants(5)[..]));
    h.delete_pvcs = false;
    h.target = participants(3);
    h.converge("scale down (Retain)", Duration::from_secs(240))
        .await;
    assert!(
        h.dir(3).join("version-2").exists() && h.dir(4).join("version-2").exists(),
        "PVCs kept under Retain"
    );
    h.target = participants(5);
    h.converge("scale up on stale PVCs", Duration::from_secs(240))
        .await;
    let (obs, _) = h.observe().await;
    assert_eq!(obs.config.as_deref(), Some(&participants(5)[..]));
    h.delete_pvcs = true;
    h.target = participants(3);
    h.converge("scale down", Duration::from_secs(240)).await;
    let (obs, _) = h.observe().await;
    assert_eq!(obs.config.as_deref(), Some(&participants(3)[..]));
    assert_eq!(h.procs.len(), 3);
    assert!(
        !h.dir(3).exists() && !h.dir(4).exists(),
        "PVCs of removed members deleted"
    );

    // 3. Leader loss: the leader's process dies; the StatefulSet brings it back.
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
    h.converge("leader loss", Duration::from_secs(180)).await;

    // Keep writing a little on the final ensemble, then verify every acknowledged write.
    let before = acked.lock().await.len();
    let t = Instant::now();
    while acked.lock().await.len() < before + 20 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no writes after the leader loss"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let acked = acked.lock().await.clone();
    let client = zookeeper_client::Client::connect(&h.connect_string())
        .await
        .expect("connect for checking");
    client.sync("/load").await.expect("sync");
    let mut missing = vec![];
    for n in &acked {
        match client.get_data(&format!("/load/w-{n:08}")).await {
            Ok((data, _)) if data == n.to_string().as_bytes() => {}
            other => missing.push((*n, format!("{other:?}"))),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{} acknowledged writes, none lost; steps:\n{}",
        acked.len(),
        h.log.join("\n")
    );
}
