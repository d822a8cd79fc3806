//! Clients for the fault tests: a recording load (several sessions doing
//! creates, sets and reads on a few keys, every operation logged as an
//! `history::Entry` with its zxid and version), and small helpers (connect,
//! write until it works, read a node's view after sync).
#![allow(dead_code)]

use super::history::{Entry, Op, Outcome};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

pub const SESSION_TIMEOUT: Duration = Duration::from_secs(8);
pub const OP_TIMEOUT: Duration = Duration::from_secs(4);

pub fn open_acl() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// Connects (the library tries each host of `cs` in turn).
pub async fn connect(cs: &str, session_timeout: Duration) -> Result<zk::Client, String> {
    match tokio::time::timeout(
        session_timeout + Duration::from_secs(2),
        zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(Duration::from_secs(2))
            .connect(cs),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("connect {cs}: {e}")),
        Err(_) => Err(format!("connect {cs}: timed out")),
    }
}

/// Connects, retrying until `within` has passed.
pub async fn connect_retry(cs: &str, within: Duration) -> zk::Client {
    let deadline = Instant::now() + within;
    loop {
        match connect(cs, SESSION_TIMEOUT).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("{e} (gave up after {within:?})"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Creates `path` (or sets it if it exists) until one attempt is
/// acknowledged, with fresh sessions as needed; returns when it was.
pub async fn write_until_ok(cs: &str, path: &str, value: &[u8], within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    let mut client: Option<zk::Client> = None;
    let mut last_err = String::new();
    while Instant::now() < deadline {
        if client.is_none() {
            match connect(cs, SESSION_TIMEOUT).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    last_err = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let c = client.as_ref().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(2), async {
            match c.create(path, value, &open_acl()).await {
                Err(zk::Error::NodeExists) => c.set_data(path, value, None).await.map(|_| ()),
                r => r.map(|_| ()),
            }
        })
        .await;
        match r {
            Ok(Ok(())) => return Instant::now(),
            Ok(Err(e)) => {
                last_err = e.to_string();
                if matches!(e, zk::Error::SessionExpired | zk::Error::ClientClosed) {
                    client = None;
                }
            }
            Err(_) => last_err = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no write to {path} via {cs} succeeded within {within:?}: {last_err}");
}

/// `sync` then getData of each key on one server (a connect string of one
/// host): that server's view after catching up with the leader.
pub async fn read_synced(addr: &str, keys: &[String]) -> HashMap<String, Option<Vec<u8>>> {
    let c = connect_retry(addr, Duration::from_secs(30)).await;
    let mut m = HashMap::new();
    for k in keys {
        let deadline = Instant::now() + Duration::from_secs(20);
        let v = loop {
            let r = tokio::time::timeout(OP_TIMEOUT, async {
                c.sync(k).await?;
                c.get_data(k).await
            })
            .await;
            match r {
                Ok(Ok((d, _))) => break Some(d),
                Ok(Err(zk::Error::NoNode)) => break None,
                other => {
                    assert!(Instant::now() < deadline, "read {k} on {addr}: {other:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        m.insert(k.clone(), v);
    }
    m
}

/// The children of `path` on one server, after sync.
pub async fn children_synced(addr: &str, path: &str) -> Vec<String> {
    let c = connect_retry(addr, Duration::from_secs(30)).await;
    c.sync(path).await.unwrap();
    let mut v = c.list_children(path).await.unwrap();
    v.sort();
    v
}

/// Creates `path` and its ancestors if absent (retries through failovers).
pub async fn ensure_path(cs: &str, path: &str) {
    let c = connect_retry(cs, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.mkdir(path, &open_acl()).await {
            Ok(()) | Err(zk::Error::NodeExists) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "mkdir {path}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct ClientStats {
    pub acked: u64,
    pub refused: u64,
    pub reads: u64,
    /// Outcome unknown: connection lost or no reply in time.
    pub unknown: u64,
    pub expired: u64,
    pub connect_failures: u64,
    /// Anything else: the fault tests say there must be none.
    pub other_errors: Vec<String>,
}

impl ClientStats {
    fn add(&mut self, o: &ClientStats) {
        self.acked += o.acked;
        self.refused += o.refused;
        self.reads += o.reads;
        self.unknown += o.unknown;
        self.expired += o.expired;
        self.connect_failures += o.connect_failures;
        self.other_errors.extend(o.other_errors.iter().cloned());
    }
}

#[derive(Clone)]
pub struct LoadSpec {
    pub connect: String,
    pub clients: usize,
    pub keys: Vec<String>,
    /// Reads as sync + getData (`Op::Get`) rather than plain getData
    /// (`Op::LocalGet`).
    pub synced_reads: bool,
    /// The first this many clients read without sync (`Op::LocalGet`)
    /// whatever `synced_reads` says: only session order holds for them.
    pub local_read_clients: usize,
    /// Pause between a client's operations.
    pub pace: Duration,
    pub seed: u64,
}

impl LoadSpec {
    pub fn new(connect: String, prefix: &str, keys: usize) -> LoadSpec {
        LoadSpec {
            connect,
            clients: 3,
            keys: (0..keys).map(|i| format!("{prefix}/k{i}")).collect(),
            synced_reads: true,
            local_read_clients: 0,
            pace: Duration::from_millis(5),
            seed: 0x5eed,
        }
    }
}

/// A running recording load; `finish` stops it and hands back the history.
pub struct Load {
    pub spec: LoadSpec,
    log: Arc<Mutex<Vec<Entry>>>,
    stop: Arc<AtomicBool>,
    handles: Vec<tokio::task::JoinHandle<ClientStats>>,
}

impl Load {
    pub fn start(rt: &tokio::runtime::Runtime, spec: LoadSpec) -> Load {
        let log: Arc<Mutex<Vec<Entry>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(AtomicU64::new(1));
        let handles = (0..spec.clients)
            .map(|i| {
                rt.spawn(client_loop(
                    spec.clone(),
                    i as u64,
                    sessions.clone(),
                    log.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        Load {
            spec,
            log,
            stop,
            handles,
        }
    }

    /// Acknowledged writes so far.
    pub fn acked(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Wrote { .. }))
            .count()
    }

    /// Stops the clients (each finishes its operation in flight).
    pub fn finish(self, rt: &tokio::runtime::Runtime) -> (Vec<Entry>, ClientStats) {
        self.stop.store(true, Ordering::SeqCst);
        let mut stats = ClientStats::default();
        for h in self.handles {
            stats.add(&rt.block_on(h).unwrap());
        }
        let entries = self.log.lock().unwrap().clone();
        (entries, stats)
    }
}

fn classify(e: &zk::Error, stats: &mut ClientStats) -> Outcome {
    match e {
        zk::Error::NodeExists | zk::Error::NoNode | zk::Error::BadVersion => {
            stats.refused += 1;
            Outcome::Refused
        }
        zk::Error::ConnectionLoss | zk::Error::Timeout => {
            stats.unknown += 1;
            Outcome::Unknown
        }
        // An I/O error on the connection (reset, broken pipe) or a server
        // that stopped answering (zookeeper-client's own detection): a
        // lost connection too.
        zk::Error::Custom(c)
            if c.to_string().contains("os error")
                || c.to_string().contains("no response from connection") =>
        {
            stats.unknown += 1;
            Outcome::Unknown
        }
        zk::Error::SessionExpired | zk::Error::ClientClosed => {
            stats.expired += 1;
            Outcome::Unknown
        }
        other => {
            stats.unknown += 1;
            stats.other_errors.push(other.to_string());
            Outcome::Unknown
        }
    }
}

async fn client_loop(
    spec: LoadSpec,
    client: u64,
    sessions: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<Entry>>>,
    stop: Arc<AtomicBool>,
) -> ClientStats {
    let mut stats = ClientStats::default();
    let mut rng = spec.seed ^ (client + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut n = 0u64;
    'sessions: while !stop.load(Ordering::SeqCst) {
        let c = match connect(&spec.connect, SESSION_TIMEOUT).await {
            Ok(c) => c,
            Err(_) => {
                stats.connect_failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let session = sessions.fetch_add(1, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = spec.keys[(rng >> 33) as usize % spec.keys.len()].clone();
            n += 1;
            let value = format!("c{client}-{n}").into_bytes();
            let invoked = Instant::now();
            let roll = (rng >> 20) % 10;
            let (op, outcome) = if roll < 2 {
                let r = tokio::time::timeout(OP_TIMEOUT, c.create(&key, &value, &open_acl())).await;
                let o = match r {
                    Ok(Ok((stat, _))) => {
                        stats.acked += 1;
                        Outcome::Wrote {
                            zxid: stat.czxid,
                            version: stat.version,
                        }
                    }
                    Ok(Err(e)) => classify(&e, &mut stats),
                    Err(_) => {
                        stats.unknown += 1;
                        Outcome::Unknown
                    }
                };
                (Op::Create { key, value }, o)
            } else if roll < 7 {
                let r = tokio::time::timeout(OP_TIMEOUT, c.set_data(&key, &value, None)).await;
                let o = match r {
                    Ok(Ok(stat)) => {
                        stats.acked += 1;
                        Outcome::Wrote {
                            zxid: stat.mzxid,
                            version: stat.version,
                        }
                    }
                    Ok(Err(e)) => classify(&e, &mut stats),
                    Err(_) => {
                        stats.unknown += 1;
                        Outcome::Unknown
                    }
                };
                (Op::Set { key, value }, o)
            } else {
                let synced = spec.synced_reads && client as usize >= spec.local_read_clients;
                let r = tokio::time::timeout(OP_TIMEOUT, async {
                    if synced {
                        c.sync(&key).await?;
                    }
                    c.get_data(&key).await
                })
                .await;
                let o = match r {
                    Ok(Ok((data, stat))) => {
                        stats.reads += 1;
                        Outcome::Read(Some((data, stat.mzxid)))
                    }
                    Ok(Err(zk::Error::NoNode)) => {
                        stats.reads += 1;
                        Outcome::Read(None)
                    }
                    Ok(Err(e)) => {
                        classify(&e, &mut stats);
                        Outcome::Unknown
                    }
                    Err(_) => {
                        stats.unknown += 1;
                        Outcome::Unknown
                    }
                };
                let op = if synced {
                    Op::Get { key }
                } else {
                    Op::LocalGet { key }
                };
                (op, o)
            };
            let unknown = outcome == Outcome::Unknown;
            log.lock().unwrap().push(Entry {
                session,
                op,
                invoked,
                completed: Instant::now(),
                outcome,
            });
            if unknown {
                if c.state().is_terminated() {
                    continue 'sessions;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(spec.pace).await;
        }
    }
    stats
}
