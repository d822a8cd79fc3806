//! The quorum cores over real loopback TCP: election on the election port,
//! ZAB on the quorum port, through a leader crash and its return.
//!
//! Every wait polls a condition under a generous deadline (the machine is a
//! loaded 2-core box); nothing asserts on elapsed time.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use bytes::Bytes;
use rzk::quorum::Membership;
use rzk::quorum::ServerId;
use rzk::quorum::net::{MemoryStorage, NetConfig, PeerAddrs, QuorumServer};
use rzk::quorum::node::{Entry, NodeConfig, Status};

const WAIT: Duration = Duration::from_secs(60);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A free address for a server: a loopback address of this test process's
/// own (127.x.y.z, all of 127/8 is loopback on Linux) and a port below the
/// kernel's ephemeral range (32768 and up). Outgoing connections use
/// 127.0.0.1 as their source, and other processes' servers mostly listen on
/// 127.0.0.1 too, so nothing else takes the address between a server's
/// crash and its restart on it, even with suites running side by side.
fn free_addr() -> SocketAddr {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU16, Ordering};
    static IP: OnceLock<[u8; 4]> = OnceLock::new();
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ip = *IP.get_or_init(|| {
        let r: u32 = rand::random();
        [
            127,
            100 + (r % 100) as u8,
            (r >> 8) as u8,
            1 + ((r >> 16) % 254) as u8,
        ]
    });
    static SEED: OnceLock<u16> = OnceLock::new();
    let seed = *SEED.get_or_init(|| rand::random::<u16>() % 12_000);
    for _ in 0..12_000 {
        let port = 20_000 + (seed + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let addr: SocketAddr = (ip, port).into();
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port in 20000..32000 on {ip:?}");
}

struct Ensemble {
    /// Paused servers: running, but left out of every check.
    paused: std::collections::BTreeSet<ServerId>,
    configs: BTreeMap<ServerId, NetConfig>,
    disks: BTreeMap<ServerId, MemoryStorage>,
    servers: BTreeMap<ServerId, QuorumServer>,
}

/// The disks a test gives its servers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Disk {
    /// Every op through the shell's disk task.
    Plain,
    /// Appends straight from the node task into a group-commit log whose
    /// durability is reported later, from another thread.
    GroupCommit,
}

impl Ensemble {
    /// Every server but `id`.
    fn others_than(&self, id: ServerId) -> Vec<ServerId> {
        self.servers.keys().copied().filter(|s| *s != id).collect()
    }

    async fn start(n: u64, log_window: usize) -> Self {
        Self::start_with_observers(n, 0, log_window, Disk::Plain).await
    }

    /// Voters 1..=n, then observers.
    async fn start_with_observers(n: u64, observers: u64, log_window: usize, disk: Disk) -> Self {
        let ids: Vec<ServerId> = (1..=n + observers).collect();
        let peers: BTreeMap<ServerId, PeerAddrs> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    PeerAddrs {
                        quorum: free_addr().into(),
                        election: free_addr().into(),
                    },
                )
            })
            .collect();
        let membership = Membership::new((1..=n).collect(), (n + 1..=n + observers).collect());
        let mut e = Ensemble {
            paused: Default::default(),
            configs: BTreeMap::new(),
            disks: BTreeMap::new(),
            servers: BTreeMap::new(),
        };
        for &id in &ids {
            let cfg = NetConfig {
                node: NodeConfig {
                    me: id,
                    membership: membership.clone(),
                    tick_ms: 50,
                    // Generous limits: the machine is loaded.
                    init_limit: 100,
                    sync_limit: 60,
                    log_window,
                },
                peers: peers.clone(),
            };
            e.configs.insert(id, cfg);
            let storage = match disk {
                Disk::Plain => MemoryStorage::default(),
                Disk::GroupCommit => MemoryStorage::group_commit(),
            };
            e.disks.insert(id, storage);
            e.boot(id).await;
        }
        e
    }

    async fn boot(&mut self, id: ServerId) {
        let s = QuorumServer::start(self.configs[&id].clone(), self.disks[&id].clone())
            .await
            .expect("start a server");
        self.servers.insert(id, s);
    }

    fn kill(&mut self, id: ServerId) {
        let s = self.servers.remove(&id).expect("server is running");
        s.kill();
    }

    fn running(&self) -> impl Iterator<Item = (&ServerId, &QuorumServer)> {
        self.servers
            .iter()
            .filter(|(id, _)| !self.paused.contains(id))
    }

    fn statuses(&self) -> BTreeMap<ServerId, Status> {
        self.running().map(|(id, s)| (*id, s.status())).collect()
    }

    /// The established leader and its epoch, once every running server
    /// follows it.
    fn settled(&self) -> Option<(ServerId, i64)> {
        let st = self.statuses();
        let leaders: Vec<(ServerId, i64)> = st
            .iter()
            .filter_map(|(id, s)| match s {
                Status::Leading { epoch } => Some((*id, *epoch)),
                _ => None,
            })
            .collect();
        let [(leader, epoch)] = leaders[..] else {
            return None;
        };
        let all_follow = st.iter().all(|(id, s)| {
            *id == leader || matches!(s, Status::Serving { leader: l, .. } if *l == leader)
        });
        all_follow.then_some((leader, epoch))
    }

    async fn wait_settled(&self, what: &str) -> (ServerId, i64) {
        wait_for(what, || self.settled(), || format!("{:?}", self.statuses())).await
    }

    /// Proposes each txn to `leader` without waiting for commits; returns
    /// how many it accepted.
    async fn propose_only(&self, leader: ServerId, txns: &[Bytes]) -> usize {
        let mut n = 0;
        for t in txns {
            if self.servers[&leader].propose(t.clone()).await.is_some() {
                n += 1;
            }
        }
        n
    }

    /// Commits `txns` through whichever server leads, until every running
    /// server applied them all. A loaded machine can make a leader lose its
    /// quorum by timeouts; then, once a leader is settled again (everything
    /// logged is applied everywhere, nothing in flight), the txns no server
    /// applied are gone for good and are proposed again: never one that
    /// survived, so none is applied twice.
    async fn commit(&self, txns: &[Bytes]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (leader, _) = self.wait_settled("a leader to commit through").await;
            let applied = self.wait_converged(&[], "agreement before proposing").await;
            let done: std::collections::HashSet<&Bytes> = applied.iter().map(|e| &e.txn).collect();
            let todo: Vec<Bytes> = txns.iter().filter(|t| !done.contains(t)).cloned().collect();
            if todo.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "could not commit; statuses {:?}",
                self.statuses()
            );
            let accepted = self.propose_only(leader, &todo).await == todo.len();
            wait_for(
                "the txns to commit, or the leader to change",
                || {
                    let all_applied = self.running().all(|(_, s)| {
                        let a = s.applied();
                        todo.iter().all(|t| a.iter().any(|e| e.txn == *t))
                    });
                    let same_leader = self.settled().map(|(l, _)| l) == Some(leader);
                    (all_applied || !same_leader || !accepted).then_some(())
                },
                || format!("{:?}", self.statuses()),
            )
            .await;
        }
    }

    /// Waits until every running server applied exactly the same txns and
    /// those include `expected` (in order, as a subsequence).
    async fn wait_converged(&self, expected: &[Bytes], what: &str) -> Vec<Entry> {
        wait_for(
            what,
            || {
                let applied: Vec<Vec<Entry>> = self.running().map(|(_, s)| s.applied()).collect();
                let first = applied[0].clone();
                let same = applied.iter().all(|a| *a == first);
                let txns: Vec<&Bytes> = first.iter().map(|e| &e.txn).collect();
                (same && is_subsequence(expected, &txns)).then_some(first)
            },
            || {
                self.running()
                    .map(|(id, s)| {
                        let a = s.applied();
                        format!(
                            "{id}: {} applied, last {:?}; ",
                            a.len(),
                            a.last().map(|e| e.zxid)
                        )
                    })
                    .collect::<String>()
            },
        )
        .await
    }
}

fn is_subsequence(expected: &[Bytes], got: &[&Bytes]) -> bool {
    let mut it = got.iter();
    expected.iter().all(|e| it.any(|g| *g == e))
}

async fn wait_for<T>(
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}: {}", describe());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn txns(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{prefix}-{i}")))
        .collect()
}

fn zxids_strictly_increase(applied: &[Entry]) {
    for w in applied.windows(2) {
        assert!(w[0].zxid < w[1].zxid, "applied out of order: {w:?}");
    }
}

/// Elect, commit, kill the leader, re-elect in a higher epoch, commit, bring
/// the old leader back and check it catches up.
async fn failover_scenario(n: u64, log_window: usize, disk: Disk) -> QuorumRun {
    init_tracing();
    let mut e = Ensemble::start_with_observers(n, 0, log_window, disk).await;
    e.wait_settled("the first leader").await;

    let first = txns("a", 20);
    e.commit(&first).await;
    let applied = e.wait_converged(&first, "the first batch on all").await;
    zxids_strictly_increase(&applied);
    assert_eq!(applied.len(), first.len());

    // Crash the leader with proposals in flight: whatever it had committed
    // (applied) by then must survive; the rest may or may not.
    let (leader, epoch) = e.wait_settled("the leader").await;
    let in_flight = txns("f", 10);
    e.propose_only(leader, &in_flight).await;
    let committed_at_crash: Vec<Bytes> = e.servers[&leader]
        .applied()
        .into_iter()
        .map(|en| en.txn)
        .collect();
    let crashed_at = std::time::Instant::now();
    e.kill(leader);
    let (leader2, epoch2) = e.wait_settled("a new leader").await;
    // Reported, not asserted: the machine may be loaded.
    eprintln!(
        "{n} servers: leader {leader} crashed; {leader2} leads epoch {epoch2} with every \
         survivor following after {:?}",
        crashed_at.elapsed()
    );
    assert_ne!(leader2, leader);
    assert!(epoch2 > epoch, "new epoch {epoch2} after {epoch}");
    // Nothing committed is lost.
    let applied = e
        .wait_converged(
            &committed_at_crash,
            "the survivors keeping every committed txn",
        )
        .await;
    let survived: Vec<Bytes> = applied.iter().map(|en| en.txn.clone()).collect();

    let second = txns("b", 30);
    e.commit(&second).await;
    let all: Vec<Bytes> = survived.iter().chain(&second).cloned().collect();
    e.wait_converged(&all, "the second batch on the survivors")
        .await;

    e.boot(leader).await;
    e.wait_settled("the old leader following").await;
    let applied = e.wait_converged(&all, "the old leader catching up").await;
    zxids_strictly_increase(&applied);
    let syncs = e.servers[&leader].syncs();

    let third = txns("c", 5);
    e.commit(&third).await;
    let everything: Vec<Bytes> = all.iter().chain(&third).cloned().collect();
    let applied = e
        .wait_converged(&everything, "the third batch on all")
        .await;
    zxids_strictly_increase(&applied);
    assert_eq!(
        applied.len(),
        everything.len(),
        "exactly these txns, once each"
    );
    QuorumRun { syncs }
}

struct QuorumRun {
    syncs: rzk::quorum::net::SyncCounts,
}

/// Three servers: the old leader rejoins from the log. It may hold
/// proposals that never committed: TRUNC then; else DIFF.
async fn three_servers_catch_up_from_the_log(disk: Disk) {
    let run = failover_scenario(3, 1000, disk).await;
    assert!(
        run.syncs.diff + run.syncs.trunc >= 1 && run.syncs.snap == 0,
        "the old leader synced from the log: {:?}",
        run.syncs
    );
}

/// Five servers with a log window of 4: the old leader needs a SNAP.
async fn five_servers_catch_up_by_snap(disk: Disk) {
    let run = failover_scenario(5, 4, disk).await;
    assert!(
        run.syncs.snap >= 1,
        "the old leader synced by SNAP: {:?}",
        run.syncs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_commit_fail_over_and_catch_up_by_diff_or_trunc() {
    three_servers_catch_up_from_the_log(Disk::Plain).await;
}

/// The same over a group-commit log: appends skip the disk task, their
/// durability arrives from the log's thread, and epoch writes and TRUNC
/// still go through the disk task behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_fail_over_on_a_group_commit_log() {
    three_servers_catch_up_from_the_log(Disk::GroupCommit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_fail_over_and_the_old_leader_catches_up_by_snap() {
    five_servers_catch_up_by_snap(Disk::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_catch_up_by_snap_on_a_group_commit_log() {
    five_servers_catch_up_by_snap(Disk::GroupCommit).await;
}

// ---- Wire-level checks: one real server, its peers played by raw sockets
// speaking bytes written out by hand from ZooKeeper's formats.

mod raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub async fn read_handshake(s: &mut TcpStream) -> (i64, i64, String) {
        let version = s.read_i64().await.expect("handshake version");
        let sid = s.read_i64().await.expect("handshake sid");
        let len = s.read_i32().await.expect("handshake address length");
        let mut addr = vec![0; len as usize];
        s.read_exact(&mut addr).await.expect("handshake address");
        (
            version,
            sid,
            String::from_utf8(addr).expect("utf-8 address"),
        )
    }

    pub async fn write_handshake(s: &mut TcpStream, sid: i64, addr: &str) {
        let mut b = Vec::new();
        b.extend_from_slice(&(-65535i64).to_be_bytes());
        b.extend_from_slice(&sid.to_be_bytes());
        b.extend_from_slice(&(addr.len() as i32).to_be_bytes());
        b.extend_from_slice(addr.as_bytes());
        s.write_all(&b).await.expect("write handshake");
    }

    /// (state, leader, zxid, electionEpoch, peerEpoch) of a framed
    /// notification.
    pub async fn read_notification(s: &mut TcpStream) -> (i32, i64, i64, i64, i64) {
        let len = s.read_i32().await.expect("frame length");
        assert!(len >= 44, "notification of {len} bytes");
        let mut b = vec![0; len as usize];
        s.read_exact(&mut b).await.expect("frame");
        let i32_at = |o: usize| i32::from_be_bytes(b[o..o + 4].try_into().unwrap());
        let i64_at = |o: usize| i64::from_be_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(i32_at(36), 2, "notification version");
        (i32_at(0), i64_at(4), i64_at(12), i64_at(20), i64_at(28))
    }

    pub async fn write_notification(
        s: &mut TcpStream,
        state: i32,
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
    ) {
        let mut b = Vec::new();
        b.extend_from_slice(&state.to_be_bytes());
        b.extend_from_slice(&leader.to_be_bytes());
        b.extend_from_slice(&zxid.to_be_bytes());
        b.extend_from_slice(&election_epoch.to_be_bytes());
        b.extend_from_slice(&peer_epoch.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // empty config
        let mut frame = (b.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&b);
        s.write_all(&frame).await.expect("write notification");
    }

    /// A QuorumPacket: type, zxid, data buffer, empty authinfo vector.
    pub async fn write_packet(s: &mut TcpStream, packet_type: i32, zxid: i64, data: &[u8]) {
        let mut b = Vec::new();
        b.extend_from_slice(&packet_type.to_be_bytes());
        b.extend_from_slice(&zxid.to_be_bytes());
        b.extend_from_slice(&(data.len() as i32).to_be_bytes());
        b.extend_from_slice(data);
        b.extend_from_slice(&0i32.to_be_bytes());
        s.write_all(&b).await.expect("write packet");
    }

    pub async fn read_packet(s: &mut TcpStream) -> (i32, i64, Vec<u8>) {
        let t = s.read_i32().await.expect("packet type");
        let zxid = s.read_i64().await.expect("packet zxid");
        let len = s.read_i32().await.expect("packet data length");
        let mut data = vec![0; len.max(0) as usize];
        s.read_exact(&mut data).await.expect("packet data");
        let auth = s.read_i32().await.expect("authinfo count");
        assert!(auth <= 0, "no authinfo expected");
        (t, zxid, data)
    }

    /// Reads (and discards) until the peer closes the connection (EOF or
    /// reset); true then.
    pub async fn closed(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 256];
        loop {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    }
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Server 2 of {1, 2, 3}; 1 and 3 are raw sockets. Checks the handshake,
/// the higher-sid rule both ways, notification framing, garbage refused
/// without harm, and the start of the learner protocol on the quorum port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_level_election_and_quorum_ports() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    init_tracing();
    let peers: BTreeMap<ServerId, PeerAddrs> = (1..=3)
        .map(|id| {
            (
                id,
                PeerAddrs {
                    quorum: free_addr().into(),
                    election: free_addr().into(),
                },
            )
        })
        .collect();
    let fake1 = TcpListener::bind(peers[&1].election.bind_addr())
        .await
        .unwrap();
    let fake3 = TcpListener::bind(peers[&3].election.bind_addr())
        .await
        .unwrap();
    let cfg = NetConfig {
        node: NodeConfig {
            me: 2,
            membership: Membership::new([1, 2, 3].into(), [].into()),
            tick_ms: 50,
            init_limit: 200,
            sync_limit: 60,
            log_window: 100,
        },
        peers: peers.clone(),
    };
    let server = QuorumServer::start(cfg, MemoryStorage::default())
        .await
        .unwrap();
    let my_addr = peers[&2].election.to_string();

    // Garbage on both ports is refused without harm.
    for addr in [peers[&2].election.bind_addr(), peers[&2].quorum.bind_addr()] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0x7f; 64]).await.unwrap();
        assert!(timed("garbage refused", raw::closed(&mut s)).await);
    }

    // 2 > 1: server 2 connects to 1 and keeps the connection.
    let (mut to1, _) = timed("server 2 connecting to 1", fake1.accept())
        .await
        .unwrap();
    let (version, sid, addr) = timed("handshake to 1", raw::read_handshake(&mut to1)).await;
    assert_eq!((version, sid, addr.as_str()), (-65535, 2, my_addr.as_str()));
    let (state, leader, _, election_epoch, _) =
        timed("a vote to 1", raw::read_notification(&mut to1)).await;
    assert_eq!((state, leader), (0, 2), "LOOKING, voting for itself");

    // 2 < 3: server 2 knocks on 3 and closes; 3 must connect back.
    let (mut knock, _) = timed("server 2 knocking on 3", fake3.accept())
        .await
        .unwrap();
    let (_, sid, _) = timed("knock handshake", raw::read_handshake(&mut knock)).await;
    assert_eq!(sid, 2);
    assert!(timed("knock closed", raw::closed(&mut knock)).await);
    let mut from3 = TcpStream::connect(peers[&2].election.bind_addr())
        .await
        .unwrap();
    raw::write_handshake(&mut from3, 3, &peers[&3].election.to_string()).await;
    let (state, leader, ..) = timed("a vote to 3", raw::read_notification(&mut from3)).await;
    assert_eq!((state, leader), (0, 2));

    // 1 "restarts": its old connection closes, it connects to 2 as the
    // lower sid: closed, and 2 connects back.
    drop(to1);
    let mut from1 = TcpStream::connect(peers[&2].election.bind_addr())
        .await
        .unwrap();
    raw::write_handshake(&mut from1, 1, &peers[&1].election.to_string()).await;
    assert!(timed("lower-sid connection closed", raw::closed(&mut from1)).await);
    let (mut back, _) = timed("server 2 connecting back to 1", fake1.accept())
        .await
        .unwrap();
    let (_, sid, _) = timed("connect-back handshake", raw::read_handshake(&mut back)).await;
    assert_eq!(sid, 2);

    // A knock while 2 holds a connection that is not brand new means that
    // connection is half-open on 1's side: 2 replaces it.
    tokio::time::sleep(Duration::from_millis(1200)).await; // let it age
    let mut knock1 = TcpStream::connect(peers[&2].election.bind_addr())
        .await
        .unwrap();
    raw::write_handshake(&mut knock1, 1, &peers[&1].election.to_string()).await;
    assert!(timed("knock closed", raw::closed(&mut knock1)).await);
    let (mut back2, _) = timed("server 2 replacing its connection", fake1.accept())
        .await
        .unwrap();
    let (_, sid, _) = timed("replacement handshake", raw::read_handshake(&mut back2)).await;
    assert_eq!(sid, 2);
    assert!(timed("the old connection closed", raw::closed(&mut back)).await);

    // 3 votes for 2: with 2's own vote that is a quorum, so 2 leads.
    raw::write_notification(&mut from3, 0, 2, 0, election_epoch, 0).await;
    wait_for(
        "server 2 to lead",
        || matches!(server.status(), Status::LeaderElect { .. }).then_some(()),
        || format!("{:?}", server.status()),
    )
    .await;

    // 3 follows on the quorum port: FOLLOWERINFO (11) with LearnerInfo
    // {sid 3, protocol 0x10000, config version 0}; LEADERINFO (17) comes
    // back with the new epoch 1 and the protocol version.
    let mut q = TcpStream::connect(peers[&2].quorum.bind_addr())
        .await
        .unwrap();
    let mut info = Vec::new();
    info.extend_from_slice(&3i64.to_be_bytes());
    info.extend_from_slice(&0x10000i32.to_be_bytes());
    info.extend_from_slice(&0i64.to_be_bytes());
    raw::write_packet(&mut q, 11, 0, &info).await;
    let (t, zxid, data) = timed("LEADERINFO", raw::read_packet(&mut q)).await;
    assert_eq!(
        (t, zxid, data),
        (17, 1 << 32, 0x10000i32.to_be_bytes().to_vec())
    );
    // ACKEPOCH (18): data = our current epoch 0, zxid = our last zxid 0.
    raw::write_packet(&mut q, 18, 0, &0i32.to_be_bytes()).await;
    let (t, _, _) = timed("the sync packet", raw::read_packet(&mut q)).await;
    assert!([13, 14, 15].contains(&t), "DIFF, TRUNC or SNAP, got {t}");
    drop(server);
}

/// A follower crashes and returns; then both followers crash: the leader,
/// alone, loses its quorum (syncLimit), steps down and refuses writes; once
/// they are back, the ensemble serves again with nothing committed lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_follower_crashes_and_a_lone_leader_refuses_writes() {
    init_tracing();
    let mut e = Ensemble::start(3, 1000).await;
    e.wait_settled("the first leader").await;
    let first = txns("a", 10);
    e.commit(&first).await;
    e.wait_converged(&first, "the first batch").await;

    let (leader, _) = e.wait_settled("the leader").await;
    let followers = e.others_than(leader);

    // One follower down: two of three still commit.
    e.kill(followers[0]);
    let second = txns("b", 10);
    e.commit(&second).await;
    let all: Vec<Bytes> = first.iter().chain(&second).cloned().collect();
    e.wait_converged(&all, "the second batch with one follower down")
        .await;
    e.boot(followers[0]).await;
    e.wait_settled("the follower back").await;
    e.wait_converged(&all, "the follower catching up").await;

    // Both followers down: the leader cannot keep a quorum.
    let (leader, _) = e.wait_settled("the leader").await;
    let followers = e.others_than(leader);
    e.kill(followers[0]);
    e.kill(followers[1]);
    wait_for(
        "the lone leader to step down",
        || (!matches!(e.servers[&leader].status(), Status::Leading { .. })).then_some(()),
        || format!("{:?}", e.statuses()),
    )
    .await;
    assert_eq!(
        e.servers[&leader]
            .propose(Bytes::from_static(b"refused"))
            .await,
        None,
        "a server without a quorum takes no write"
    );

    e.boot(followers[0]).await;
    e.boot(followers[1]).await;
    e.wait_settled("a leader again").await;
    let third = txns("c", 5);
    e.commit(&third).await;
    let everything: Vec<Bytes> = all.iter().chain(&third).cloned().collect();
    let applied = e
        .wait_converged(&everything, "everything on all three")
        .await;
    assert_eq!(applied.len(), everything.len());
    assert!(applied.iter().all(|en| en.txn.as_ref() != b"refused"));
    zxids_strictly_increase(&applied);
}

/// Three voters and an observer: the observer applies every commit in the
/// same order, never votes, and follows the new leader after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_commits_and_fail_over() {
    init_tracing();
    let mut e = Ensemble::start_with_observers(3, 1, 1000, Disk::GroupCommit).await;
    let (leader, _) = e.wait_settled("the first leader").await;
    assert_ne!(leader, 4, "an observer never leads");
    assert!(matches!(
        e.servers[&4].status(),
        Status::Serving { observer: true, .. }
    ));
    let first = txns("a", 10);
    e.commit(&first).await;
    e.wait_converged(&first, "the first batch, observer included")
        .await;
    let (leader, epoch) = e.wait_settled("the leader").await;
    e.kill(leader);
    let (leader2, epoch2) = e.wait_settled("a new leader").await;
    assert!(leader2 != 4 && epoch2 > epoch);
    let second = txns("b", 10);
    e.commit(&second).await;
    let all: Vec<Bytes> = first.iter().chain(&second).cloned().collect();
    let applied = e
        .wait_converged(&all, "the second batch, observer included")
        .await;
    zxids_strictly_increase(&applied);
}

/// The leader's state machine freezes with its sockets open (as SIGSTOP
/// does): the followers notice only by their timeouts (syncLimit), elect a
/// new leader, and the old one, resumed, steps down and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_replaced_and_catches_up_when_resumed() {
    init_tracing();
    let mut e = Ensemble::start(3, 1000).await;
    e.wait_settled("the first leader").await;
    let first = txns("a", 10);
    e.commit(&first).await;
    e.wait_converged(&first, "the first batch").await;

    let (leader, epoch) = e.wait_settled("the leader").await;
    let paused_at = std::time::Instant::now();
    let resume = e.servers[&leader].pause();
    e.paused.insert(leader);
    let others = e.others_than(leader);
    let leader2 = wait_for(
        "the others to elect a new leader",
        || {
            let st = e.statuses();
            others.iter().find_map(|id| match st[id] {
                Status::Leading { epoch: e2 } if e2 > epoch => Some(*id),
                _ => None,
            })
        },
        || format!("{:?}", e.statuses()),
    )
    .await;
    eprintln!(
        "leader {leader} paused; {leader2} leads after {:?} (syncLimit = 60 ticks of 50 ms)",
        paused_at.elapsed()
    );
    let second = txns("b", 10);
    e.commit(&second).await;
    drop(resume);
    e.paused.remove(&leader);
    e.wait_settled("the resumed server following").await;
    let all: Vec<Bytes> = first.iter().chain(&second).cloned().collect();
    let applied = e.wait_converged(&all, "everything on all three").await;
    assert_eq!(applied.len(), all.len());
    zxids_strictly_increase(&applied);
}
