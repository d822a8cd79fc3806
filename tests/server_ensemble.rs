//! `rzk server` in an ensemble, as clients see it: real processes on
//! loopback, the `zookeeper-client` crate as the client. Writes through any
//! server, reads everywhere after a sync, watches fired by writes made on
//! another server, sessions moving between servers and expiring everywhere,
//! an observer, and read-only mode when a server is cut off.
//! (Fault schedules with histories are in `ensemble_faults.rs`; kazoo and
//! Curator through a failover in `tests/compat/test_ensemble.py`.)

mod common;

use common::{RzkServer, four_letter, free_port, send_connect};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zookeeper_client as zk;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

struct Node {
    server: Option<RzkServer>,
    dir: PathBuf,
    port: u16,
    extra: String,
}

struct Ensemble {
    nodes: Vec<Node>,
    _tmp: tempfile::TempDir,
}

impl Ensemble {
    /// `voters` participants and `observers` observers; `extra` zoo.cfg lines.
    fn start(voters: usize, observers: usize, extra: &str) -> Ensemble {
        let tmp = tempfile::tempdir().unwrap();
        let n = voters + observers;
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut lines = String::new();
        for (i, (c, q, e)) in ports.iter().enumerate() {
            let role = if i < voters {
                "participant"
            } else {
                "observer"
            };
            lines += &format!("server.{}=127.0.0.1:{q}:{e}:{role};127.0.0.1:{c}\n", i + 1);
        }
        let mut nodes = Vec::new();
        for (i, (c, _, _)) in ports.iter().enumerate() {
            let dir = tmp.path().join(format!("n{}", i + 1));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data/myid"), format!("{}\n", i + 1)).unwrap();
            let extra = format!("initLimit=10\nsyncLimit=5\n{lines}{extra}");
            nodes.push(Node {
                server: None,
                dir,
                port: *c,
                extra,
            });
        }
        let mut e = Ensemble { nodes, _tmp: tmp };
        for i in 0..n {
            e.start_node(i);
        }
        e
    }

    fn start_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.server = Some(RzkServer::start_in(&n.dir, n.port, &n.extra));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.nodes[i].server.take() {
            s.kill9();
        }
    }

    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    fn mode(&self, i: usize) -> String {
        four_letter(self.nodes[i].port, "srvr")
            .lines()
            .find_map(|l| l.strip_prefix("Mode: ").map(str::to_string))
            .unwrap_or_default()
    }

    /// Waits until the running nodes serve: one leader, the rest following.
    fn wait_serving(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let modes: Vec<(usize, String)> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].server.is_some())
                .map(|i| (i, self.mode(i)))
                .collect();
            let leaders: Vec<usize> = modes
                .iter()
                .filter(|(_, m)| m == "leader")
                .map(|(i, _)| *i)
                .collect();
            if leaders.len() == 1
                && modes
                    .iter()
                    .all(|(_, m)| ["leader", "follower", "observer"].contains(&m.as_str()))
            {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "no serving ensemble: {modes:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let log = std::fs::read_to_string(n.dir.join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                format!(
                    "--- node {} ---\n{}\n",
                    i + 1,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn writes_through_any_server_reads_and_watches_everywhere() {
    let e = Ensemble::start(3, 0, "");
    let leader = e.wait_serving();
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    runtime().block_on(async {
        let mut cs = Vec::new();
        for i in 0..3 {
            cs.push(zk::Client::connect(&e.addr(i)).await.unwrap());
        }
        // A watch on one server fires for a write made through another,
        // before that server shows the change.
        cs[other].create("/w", b"0", &persistent()).await.unwrap();
        cs[follower].sync("/w").await.unwrap();
        let (_, _, watcher) = cs[follower].get_and_watch_data("/w").await.unwrap();
        cs[other].set_data("/w", b"1", None).await.unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(10), watcher.changed())
            .await
            .expect("watch fired");
        assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
        assert_eq!(cs[follower].get_data("/w").await.unwrap().0, b"1");

        // Writes through each server, sequential names unique and ordered.
        cs[leader].create("/seq", b"", &persistent()).await.unwrap();
        let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        let mut names = Vec::new();
        for round in 0..3 {
            for c in &cs {
                let (_, s) = c
                    .create("/seq/n-", format!("{round}").as_bytes(), &seq)
                    .await
                    .unwrap();
                names.push(s.into_i64());
            }
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, names,
            "sequence numbers follow the order of the writes"
        );

        // After a sync, every server shows what was acknowledged anywhere.
        for c in &cs {
            c.sync("/seq").await.unwrap();
            assert_eq!(c.list_children("/seq").await.unwrap().len(), 9);
        }
        // Errors come back from the leader's checks to any server.
        assert_eq!(
            cs[follower]
                .create("/w", b"", &persistent())
                .await
                .unwrap_err(),
            zk::Error::NodeExists
        );
        assert_eq!(
            cs[other].set_data("/w", b"x", Some(7)).await.unwrap_err(),
            zk::Error::BadVersion
        );
        let (data, stat) = cs[follower].get_data("/w").await.unwrap();
        assert_eq!((data.as_slice(), stat.version), (&b"1"[..], 1));
        // A client reads its own writes on a follower without a sync.
        cs[follower].set_data("/w", b"2", None).await.unwrap();
        assert_eq!(cs[follower].get_data("/w").await.unwrap().0, b"2");
        // The membership is in /zookeeper/config.
        let (config, _) = cs[other].get_data("/zookeeper/config").await.unwrap();
        let config = String::from_utf8(config).unwrap();
        assert_eq!(
            config.lines().filter(|l| l.starts_with("server.")).count(),
            3,
            "{config}"
        );
        assert!(config.ends_with("version=0"), "{config}");
    });
}

/// Reads the server's answer: the ConnectResponse frame's length, or None
/// when the server closed the connection.
fn connect_answer(s: &mut std::net::TcpStream) -> Option<usize> {
    use std::io::Read;
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => Some(i32::from_be_bytes(len) as usize),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("no answer: {e}"),
    }
}

fn signal(server: &RzkServer, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, sig) }, 0);
}

/// A client that connects while its server elects a leader waits for the
/// election instead of being sent away (and backing off for hundreds of
/// ms); a server that cannot form a quorum closes it after the hold.
#[test]
fn a_client_connecting_during_an_election_waits_for_it() {
    let mut e = Ensemble::start(3, 0, "");
    e.wait_serving();
    e.kill(2);
    e.wait_serving();
    // Server 2 stopped: server 1 loses its quorum and looks for a leader.
    signal(e.nodes[1].server.as_ref().unwrap(), libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["leader", "follower"].contains(&e.mode(0).as_str()) {
        assert!(Instant::now() < deadline, "server 1 kept serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut waiting = send_connect(e.nodes[0].port);
    std::thread::sleep(Duration::from_millis(200));
    signal(e.nodes[1].server.as_ref().unwrap(), libc::SIGCONT);
    let answer = connect_answer(&mut waiting);
    assert!(
        answer.is_some_and(|len| len >= 36),
        "the waiting client got a session once the quorum was back: {answer:?}\n{}",
        e.logs()
    );
    e.wait_serving();

    // Alone, server 1 never serves: a client is closed after the hold.
    e.kill(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["leader", "follower"].contains(&e.mode(0).as_str()) {
        assert!(Instant::now() < deadline, "server 1 kept serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let mut refused = send_connect(e.nodes[0].port);
    assert_eq!(connect_answer(&mut refused), None);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[test]
fn sessions_move_between_servers_and_expire_everywhere() {
    let e = Ensemble::start(3, 0, "minSessionTimeout=1000\nmaxSessionTimeout=4000");
    let leader = e.wait_serving();
    let a = (leader + 1) % 3;
    let b = (leader + 2) % 3;
    runtime().block_on(async {
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(2000))
            .with_detached()
            .connect(&e.addr(a))
            .await
            .unwrap();
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        c.create("/mine", b"", &eph).await.unwrap();
        let (session, id) = (c.session().clone(), c.session_id());
        drop(c);
        // The session resumes on another server, ephemeral and all.
        let resumed = zk::Client::connector()
            .with_session(session)
            .with_detached()
            .connect(&e.addr(b))
            .await
            .unwrap();
        assert_eq!(resumed.session_id(), id);
        let st = resumed
            .check_stat("/mine")
            .await
            .unwrap()
            .expect("ephemeral kept");
        assert_eq!(st.ephemeral_owner, id.0);
        drop(resumed);
        // Left without a close: the leader expires it, and the ephemeral
        // goes on every server.
        let mut watchers = Vec::new();
        for i in 0..3 {
            watchers.push(zk::Client::connect(&e.addr(i)).await.unwrap());
        }
        for (i, w) in watchers.iter().enumerate() {
            eventually(&format!("ephemeral gone on server {}", i + 1), || async {
                w.sync("/").await.unwrap();
                w.check_stat("/mine").await.unwrap().is_none()
            })
            .await;
        }
    });
}

#[test]
fn an_observer_serves_and_forwards_but_does_not_vote() {
    let mut e = Ensemble::start(3, 1, "");
    let leader = e.wait_serving();
    assert_eq!(e.mode(3), "observer");
    runtime().block_on(async {
        let obs = zk::Client::connect(&e.addr(3)).await.unwrap();
        obs.create("/via-observer", b"o", &persistent())
            .await
            .unwrap();
        let voter = zk::Client::connect(&e.addr((leader + 1) % 3))
            .await
            .unwrap();
        voter.sync("/").await.unwrap();
        assert_eq!(voter.get_data("/via-observer").await.unwrap().0, b"o");
    });
    // Two voters down: the remaining voter and the observer are no quorum.
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    e.kill(f1);
    e.kill(f2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.mode(leader) == "leader" || e.mode(3) == "observer" {
        assert!(
            Instant::now() < deadline,
            "no quorum, yet still serving\n{}",
            e.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    e.start_node(f1);
    e.wait_serving();
}

#[test]
fn a_server_cut_off_serves_read_only_clients() {
    let mut e = Ensemble::start(3, 0, "readonlymode.enabled=true");
    let leader = e.wait_serving();
    let survivor = (leader + 1) % 3;
    runtime().block_on(async {
        let c = zk::Client::connect(&e.addr(leader)).await.unwrap();
        c.create("/ro", b"kept", &persistent()).await.unwrap();
    });
    assert_eq!(four_letter(e.nodes[survivor].port, "isro"), "rw");
    e.kill(leader);
    e.kill((leader + 2) % 3);
    let deadline = Instant::now() + Duration::from_secs(30);
    while four_letter(e.nodes[survivor].port, "isro") != "ro" {
        assert!(Instant::now() < deadline, "never read-only\n{}", e.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(e.mode(survivor), "read-only");
    runtime().block_on(async {
        let ro = zk::Client::connector()
            .with_readonly(true)
            .connect(&e.addr(survivor))
            .await
            .unwrap();
        ro.sync("/").await.unwrap_err();
        assert_eq!(ro.get_data("/ro").await.unwrap().0, b"kept");
        assert_eq!(
            ro.create("/nope", b"", &persistent()).await.unwrap_err(),
            zk::Error::NotReadOnly
        );
    });
    // Back in a quorum: read-write again.
    e.start_node(leader);
    let deadline = Instant::now() + Duration::from_secs(60);
    while four_letter(e.nodes[survivor].port, "isro") != "rw" {
        assert!(
            Instant::now() < deadline,
            "never read-write again\n{}",
            e.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A reconfig through a client authenticated as the super user.
async fn reconfig(
    addr: &str,
    joining: &[&str],
    leaving: &[&str],
    version: Option<i64>,
) -> Result<String, zk::Error> {
    let c = zk::Client::connector()
        .with_auth("digest", b"super:secret")
        .connect(addr)
        .await
        .unwrap();
    let update = if joining.is_empty() && leaving.is_empty() {
        zk::EnsembleUpdate::New {
            ensemble: [].iter().copied(),
        }
    } else {
        zk::EnsembleUpdate::Incremental {
            joinings: joining.iter().copied(),
            leavings: leaving.iter().copied(),
        }
    };
    c.update_ensemble(update, version)
        .await
        .map(|(data, _)| String::from_utf8(data).unwrap())
}

fn config_version(text: &str) -> i64 {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap();
    i64::from_str_radix(v, 16).unwrap()
}

#[test]
fn reconfig_promotes_a_new_observer_and_removes_the_leader() {
    let digest = rzk::tree::acl::digest("super:secret");
    let extra =
        format!("reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={digest}\n");
    let mut e = Ensemble::start(3, 0, &extra);
    let leader = e.wait_serving();
    // A fourth server starts as an observer the others do not know yet.
    let (c4, q4, e4) = (free_port(), free_port(), free_port());
    let line4 = format!("server.4=127.0.0.1:{q4}:{e4}:observer;127.0.0.1:{c4}");
    let dir4 = e._tmp.path().join("n4");
    std::fs::create_dir_all(dir4.join("data")).unwrap();
    std::fs::write(dir4.join("data/myid"), "4\n").unwrap();
    let extra4 = format!("{}{line4}\n", e.nodes[0].extra);
    e.nodes.push(Node {
        server: None,
        dir: dir4,
        port: c4,
        extra: extra4,
    });
    e.start_node(3);
    e.wait_serving();
    assert_eq!(e.mode(3), "observer");
    runtime().block_on(async {
        // Without the super user's identity: refused.
        let anon = zk::Client::connect(&e.addr(0)).await.unwrap();
        let denied = anon
            .update_ensemble(
                zk::EnsembleUpdate::Incremental {
                    joinings: [line4.as_str()].iter().copied(),
                    leavings: [].iter().copied(),
                },
                None,
            )
            .await;
        assert_eq!(denied.unwrap_err(), zk::Error::NoAuth);
        // A stale version is refused.
        let (config, _) = anon.get_data("/zookeeper/config").await.unwrap();
        let v0 = config_version(&String::from_utf8(config).unwrap());
        let participant = line4.replace(":observer", ":participant");
        assert_eq!(
            reconfig(&e.addr(1), &[&participant], &[], Some(v0 + 1))
                .await
                .unwrap_err(),
            zk::Error::BadVersion
        );
        // A configuration whose voters are nowhere to be seen: refused.
        assert_eq!(
            reconfig(
                &e.addr(1),
                &[
                    "server.9=127.0.0.1:1:2:participant;127.0.0.1:3",
                    "server.8=127.0.0.1:4:5:participant;127.0.0.1:6",
                    "server.7=127.0.0.1:7:8:participant;127.0.0.1:9",
                    "server.6=127.0.0.1:10:11:participant;127.0.0.1:12"
                ],
                &[],
                None
            )
            .await
            .unwrap_err(),
            zk::Error::UnexpectedErrorCode(-13) // NewConfigNoQuorum
        );
        // Promote the observer to a participant.
        let text = reconfig(&e.addr(1), &[&participant], &[], Some(v0))
            .await
            .unwrap();
        assert!(
            text.contains("server.4=") && text.contains(":participant;127.0.0.1"),
            "{text}"
        );
        assert!(config_version(&text) > v0);
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.mode(3) != "follower" {
        assert!(
            Instant::now() < deadline,
            "server 4 never became a follower\n{}",
            e.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mntr = four_letter(e.nodes[leader].port, "mntr");
    assert!(mntr.contains("zk_quorum_size\t4"), "{mntr}");
    // Remove the leader: the other three elect a new one and go on.
    let leader_id = (leader + 1).to_string();
    runtime().block_on(async {
        let other = (leader + 1) % 3;
        let text = reconfig(&e.addr(other), &[], &[&leader_id], None)
            .await
            .unwrap();
        assert!(!text.contains(&format!("server.{leader_id}=")), "{text}");
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let modes: Vec<String> = (0..4).filter(|i| *i != leader).map(|i| e.mode(i)).collect();
        if modes.iter().filter(|m| *m == "leader").count() == 1
            && modes.iter().all(|m| m == "leader" || m == "follower")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader among the rest: {modes:?}\n{}",
            e.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Server 4 restarts on its old zoo.cfg (observer) but its data holds
    // the newer membership: it comes back as a participant.
    e.kill(3);
    e.start_node(3);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !["leader", "follower"].contains(&e.mode(3).as_str()) {
        assert!(
            Instant::now() < deadline,
            "server 4 did not come back as a participant\n{}",
            e.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    runtime().block_on(async {
        let c = zk::Client::connect(&e.addr(3)).await.unwrap();
        c.create("/after-reconfig", b"", &persistent())
            .await
            .unwrap();
        let (config, _) = c.get_data("/zookeeper/config").await.unwrap();
        let config = String::from_utf8(config).unwrap();
        assert_eq!(
            config.lines().filter(|l| l.starts_with("server.")).count(),
            3,
            "{config}"
        );
        let dynamic: Vec<_> = std::fs::read_dir(e.nodes[3].dir.join("data"))
            .unwrap()
            .filter_map(|d| d.ok())
            .filter(|d| {
                d.file_name()
                    .to_string_lossy()
                    .starts_with("zoo.cfg.dynamic.")
            })
            .collect();
        assert!(!dynamic.is_empty(), "no dynamic config file written");
    });
}

#[test]
fn a_wiped_server_rejoins_through_a_snapshot_of_the_leader() {
    // Small snapCount: the servers snapshot often, so after a restart a
    // leader's in-memory log starts past zero and an empty server can only
    // be brought up to date with SNAP.
    let mut e = Ensemble::start(3, 0, "snapCount=20");
    e.wait_serving();
    runtime().block_on(async {
        let c = zk::Client::connect(&e.addr(0)).await.unwrap();
        c.create("/snap", b"", &persistent()).await.unwrap();
        for i in 0..120 {
            c.create(
                &format!("/snap/n{i}"),
                format!("{i}").as_bytes(),
                &persistent(),
            )
            .await
            .unwrap();
        }
    });
    for i in 0..3 {
        e.kill(i);
    }
    // Server 3 loses everything but its myid.
    let data = e.nodes[2].dir.join("data");
    for ent in std::fs::read_dir(&data).unwrap().flatten() {
        if ent.file_name() != "myid" {
            let p = ent.path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    for i in 0..3 {
        e.start_node(i);
    }
    e.wait_serving();
    runtime().block_on(async {
        let c = zk::Client::connect(&e.addr(2)).await.unwrap();
        c.sync("/snap").await.unwrap();
        assert_eq!(c.list_children("/snap").await.unwrap().len(), 120);
        assert_eq!(c.get_data("/snap/n119").await.unwrap().0, b"119");
    });
    let log = std::fs::read_to_string(e.nodes[2].dir.join("server.log")).unwrap();
    assert!(
        log.contains("installed the leader's snapshot"),
        "server 3 was not synced by SNAP:\n{}",
        e.logs()
    );
}
