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
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr")
}

struct Ensemble {
    configs: BTreeMap<ServerId, NetConfig>,
    disks: BTreeMap<ServerId, MemoryStorage>,
    servers: BTreeMap<ServerId, QuorumServer>,
}

impl Ensemble {
    async fn start(n: u64, log_window: usize) -> Self {
        let ids: Vec<ServerId> = (1..=n).collect();
        let peers: BTreeMap<ServerId, PeerAddrs> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    PeerAddrs {
                        quorum: free_addr(),
                        election: free_addr(),
                    },
                )
            })
            .collect();
        let membership = Membership::new(ids.iter().copied().collect(), [].into());
        let mut e = Ensemble {
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
                    init_limit: 40,
                    sync_limit: 20,
                    log_window,
                },
                peers: peers.clone(),
            };
            e.configs.insert(id, cfg);
            e.disks.insert(id, MemoryStorage::default());
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

    fn statuses(&self) -> BTreeMap<ServerId, Status> {
        self.servers.iter().map(|(id, s)| (*id, s.status())).collect()
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

    /// Proposes each txn to `leader`; all must be accepted.
    async fn commit(&self, leader: ServerId, txns: &[Bytes]) {
        let s = &self.servers[&leader];
        for t in txns {
            let zxid = s.propose(t.clone()).await;
            assert!(
                zxid.is_some(),
                "leader {leader} refused a proposal; statuses {:?}",
                self.statuses()
            );
        }
    }

    /// Waits until every running server applied exactly the same txns and
    /// those include `expected` (in order, as a subsequence).
    async fn wait_converged(&self, expected: &[Bytes], what: &str) -> Vec<Entry> {
        wait_for(
            what,
            || {
                let applied: Vec<Vec<Entry>> = self.servers.values().map(|s| s.applied()).collect();
                let first = applied[0].clone();
                let same = applied.iter().all(|a| *a == first);
                let txns: Vec<&Bytes> = first.iter().map(|e| &e.txn).collect();
                (same && is_subsequence(expected, &txns)).then_some(first)
            },
            || {
                self.servers
                    .iter()
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
    (0..n).map(|i| Bytes::from(format!("{prefix}-{i}"))).collect()
}

fn zxids_strictly_increase(applied: &[Entry]) {
    for w in applied.windows(2) {
        assert!(w[0].zxid < w[1].zxid, "applied out of order: {w:?}");
    }
}

/// Elect, commit, kill the leader, re-elect in a higher epoch, commit, bring
/// the old leader back and check it catches up.
async fn failover_scenario(n: u64, log_window: usize) -> QuorumRun {
    init_tracing();
    let mut e = Ensemble::start(n, log_window).await;
    let (leader, epoch) = e.wait_settled("the first leader").await;

    let first = txns("a", 20);
    e.commit(leader, &first).await;
    let applied = e.wait_converged(&first, "the first batch on all").await;
    zxids_strictly_increase(&applied);
    assert_eq!(applied.len(), first.len());

    e.kill(leader);
    let (leader2, epoch2) = e.wait_settled("a new leader").await;
    assert_ne!(leader2, leader);
    assert!(epoch2 > epoch, "new epoch {epoch2} after {epoch}");
    // Nothing committed is lost.
    let applied = e.wait_converged(&first, "the survivors keeping the first batch").await;
    assert!(applied.len() >= first.len());

    let second = txns("b", 30);
    e.commit(leader2, &second).await;
    let all: Vec<Bytes> = first.iter().chain(&second).cloned().collect();
    e.wait_converged(&all, "the second batch on the survivors").await;

    e.boot(leader).await;
    wait_for(
        "the old leader to follow",
        || e.settled().filter(|(l, _)| *l == leader2),
        || format!("{:?}", e.statuses()),
    )
    .await;
    let applied = e.wait_converged(&all, "the old leader catching up").await;
    zxids_strictly_increase(&applied);
    let syncs = e.servers[&leader].syncs();

    let third = txns("c", 5);
    e.commit(leader2, &third).await;
    let everything: Vec<Bytes> = all.iter().chain(&third).cloned().collect();
    let applied = e.wait_converged(&everything, "the third batch on all").await;
    zxids_strictly_increase(&applied);
    assert_eq!(applied.len(), everything.len(), "exactly the proposed txns");
    QuorumRun { syncs }
}

struct QuorumRun {
    syncs: rzk::quorum::net::SyncCounts,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_commit_fail_over_and_catch_up_by_diff() {
    let run = failover_scenario(3, 1000).await;
    assert!(run.syncs.diff >= 1, "the old leader synced by DIFF: {:?}", run.syncs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_fail_over_and_the_old_leader_catches_up_by_snap() {
    let run = failover_scenario(5, 4).await;
    assert!(run.syncs.snap >= 1, "the old leader synced by SNAP: {:?}", run.syncs);
}
