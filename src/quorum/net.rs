//! The TCP shell around a [`Node`]: real sockets, timers and a disk stand-in
//! executing the shell contract of [`crate::quorum`].
//!
//! * `election_port` — QuorumCnxManager-style election connections (the
//!   handshake, the higher-sid rule, length-framed notifications, send
//!   queues of capacity one, reconnect with backoff).
//! * `quorum_port` — learner ↔ leader connections carrying `QuorumPacket`s,
//!   the snapshot streamed after SNAP.
//! * This file — [`QuorumServer`]: one task owns the `Node`, receives every
//!   input over one channel (ticks, notifications, quorum packets, disk
//!   completions, proposals) and executes the node's actions in order; a
//!   tick task feeds `Input::Tick`; a disk task writes [`Storage`] batches
//!   and reports `Persisted` only once the batch is durable. With a
//!   group-commit log ([`Storage::direct_log`]) the node task appends
//!   itself and the log's writer thread reports durability into the node
//!   task's channel: on a follower a PROPOSAL then reaches its ACK through
//!   the node task and the writer thread only, not also a disk task and a
//!   waiter task (on a runtime shared with busy client connections each
//!   task hop waits its turn behind all of them).
//!
//! The applied state is a [`Replica`]'s: `rzk server`'s core, or the list
//! of applied txns ([`ListReplica`]) in the tests of this layer, whose
//! "disk" [`MemoryStorage`] survives a simulated crash. Replicas exchange
//! their own packets (REQUEST, SYNC) through the [`Ctx`] they are handed,
//! propose txns, and report membership changes; peers named by a new
//! configuration, or connecting before we know them, get election
//! connections at runtime.
//!
//! May touch: sockets, clocks, the tokio runtime; `quorum::*` cores, `jute`.
//! Nothing from `server`, `processor` or `storage`: the replica and the
//! storage come in through the [`Replica`] and [`Storage`] traits.
//!
//! Quorum connections: the leader accepts on its quorum port; a learner
//! connects when its core sends FOLLOWERINFO/OBSERVERINFO to the elected
//! leader. A learner that connects before the leader has decided is parked
//! (its first packet held) for up to `initLimit` ticks, as ZooKeeper's
//! learners retry connecting while the leader comes up. Each connection has
//! an id so that the close of a replaced connection is not reported as the
//! close of the current one.
//!
//! Tested in `tests/quorum_net.rs` over loopback TCP (3 and 5 voters, an
//! observer, crashes with proposals in flight, a paused leader, a lone
//! leader refusing writes, and both ports checked byte by byte against raw
//! sockets), and by the unit tests below.
//!
//! Known limits: channels are unbounded (no backpressure from a slow disk
//! or peer); the snapshot after SNAP is one buffer (at most 2 GiB), built in
//! memory on the node task; no
//! quorum SASL.

mod election_port;
mod quorum_port;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use super::node::{Action, Entry, Input, Message, Node, NodeConfig, Status};
use super::wire::{PacketType, QuorumPacket, ZabMessage};
use super::zab::{PersistOp, PersistentState};
use super::{ServerId, Zxid};
use crate::jute::{Reader, Writer};
use quorum_port::QuorumConn;

/// A peer port as configured: a host name (resolved at every connect, so
/// a restarted pod with a new IP is found) or an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    /// Where to listen for this endpoint: its address if it is one, every
    /// interface for a host name (which may not resolve yet, or to another
    /// address later; ZooKeeper's quorumListenOnAllIPs).
    pub fn bind_addr(&self) -> SocketAddr {
        match self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
        {
            Ok(ip) => SocketAddr::new(ip, self.port),
            Err(_) => SocketAddr::from(([0, 0, 0, 0], self.port)),
        }
    }

    pub(crate) async fn connect(&self) -> std::io::Result<tokio::net::TcpStream> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        tokio::net::TcpStream::connect((host, self.port)).await
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Endpoint::new(a.ip().to_string(), a.port())
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') && !self.host.starts_with('[') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddrs {
    pub quorum: Endpoint,
    pub election: Endpoint,
}

#[derive(Debug, Clone)]
pub struct NetConfig {
    pub node: NodeConfig,
    /// Every member, this server included.
    pub peers: BTreeMap<ServerId, PeerAddrs>,
}

/// Stable storage for the epochs and the txn log. `write` calls arrive in
/// the node's order; `sync` makes everything written durable. Calls run on
/// a blocking thread.
pub trait Storage: Send + 'static {
    fn load(&mut self) -> std::io::Result<PersistentState>;
    /// `snapshot` is the received snapshot (as [`Replica::snapshot`] made
    /// it) for `InstallSnapshot`.
    fn write(&mut self, op: &PersistOp, snapshot: Option<&[u8]>) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;

    /// For a group-commit log whose appends never block: a handle through
    /// which the node task appends itself, and `on_durable` told from the
    /// log's writer of every commit (the highest durable zxid) or of why it
    /// stopped. Appends then skip the disk task and their durability news
    /// reaches the node task's channel directly (see `Shell::persist`).
    /// `sync` must also cover what was appended through the handle. None:
    /// every op goes through the disk task.
    fn direct_log(&mut self, _on_durable: DurableHook) -> Option<Box<dyn DirectLog>> {
        None
    }

    /// The storage's writer failed (why), if it did.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// Told by a log writer of each group commit (`Ok(highest durable zxid)`)
/// or of its failure; called on the writer's thread, must not block.
pub type DurableHook = Arc<dyn Fn(Result<Zxid, &str>) + Send + Sync>;

/// Appends straight into a group-commit log (see [`Storage::direct_log`]).
pub trait DirectLog: Send {
    /// Queues `e` behind everything appended before; never blocks.
    fn append(&self, e: &Entry);
}

/// A "disk" in memory that outlives the server using it, so a test can
/// crash a server (abort its tasks) and restart it on the same state. A
/// snapshot is kept as the log it stands for.
///
/// [`MemoryStorage::group_commit`] makes one that also stands in for a
/// group-commit log ([`Storage::direct_log`]): direct appends wait a
/// moment, then a writer thread makes them "durable" in a batch and reports
/// the batch, as the txn log does after its fsync; appends still waiting
/// when the server crashes are lost.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<PersistentState>>,
    group: Option<Arc<GroupCommit>>,
}

#[derive(Default)]
struct GroupCommit {
    /// Direct appends not yet durable; also the lock that orders them
    /// with every other write to the state.
    pending: Mutex<Vec<Entry>>,
    /// Bumped by each server that starts on this disk: an older writer
    /// thread stops.
    generation: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// How long a direct append waits for its "fsync" in [`MemoryStorage`].
const MEMORY_COMMIT_EVERY: Duration = Duration::from_millis(2);

impl MemoryStorage {
    pub fn group_commit() -> Self {
        MemoryStorage {
            state: Arc::default(),
            group: Some(Arc::default()),
        }
    }

    pub fn state(&self) -> PersistentState {
        lock(&self.state).clone()
    }

    /// Moves the waiting direct appends into the state (inside the lock of
    /// `pending`); the last zxid moved.
    fn commit_pending(&self, pending: &mut Vec<Entry>) -> Option<Zxid> {
        let last = pending.last().map(|e| e.zxid);
        lock(&self.state).log.append(pending);
        last
    }
}

struct MemoryAppends {
    group: Arc<GroupCommit>,
    /// Its writer thread stops once the server (this handle) is gone.
    _alive: Arc<()>,
}

impl DirectLog for MemoryAppends {
    fn append(&self, e: &Entry) {
        lock(&self.group.pending).push(e.clone());
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> std::io::Result<PersistentState> {
        if let Some(g) = &self.group {
            // A crash loses what was never made durable.
            lock(&g.pending).clear();
        }
        Ok(self.state())
    }

    fn write(&mut self, op: &PersistOp, snapshot: Option<&[u8]>) -> std::io::Result<()> {
        let mut pending = self.group.as_ref().map(|g| lock(&g.pending));
        if let Some(p) = pending.as_deref_mut() {
            // Everything appended before this op comes first.
            self.commit_pending(p);
        }
        let mut d = lock(&self.state);
        match op {
            PersistOp::AcceptedEpoch(e) => d.accepted_epoch = *e,
            PersistOp::CurrentEpoch(e) => d.current_epoch = *e,
            PersistOp::Append(e) => d.log.push(e.clone()),
            PersistOp::Truncate(z) => d.log.retain(|e| e.zxid <= *z),
            PersistOp::InstallSnapshot(_) => {
                d.snapshot_zxid = 0;
                d.log = match snapshot {
                    Some(b) => decode_snapshot(b).map_err(std::io::Error::other)?,
                    None => Vec::new(),
                };
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if let Some(g) = &self.group {
            self.commit_pending(&mut lock(&g.pending));
        }
        Ok(())
    }

    fn direct_log(&mut self, on_durable: DurableHook) -> Option<Box<dyn DirectLog>> {
        let group = self.group.clone()?;
        let generation = group.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let me = self.clone();
        let alive = Arc::new(());
        let server_alive = Arc::downgrade(&alive);
        std::thread::spawn(move || {
            let g = me.group.as_ref().expect("a group-commit storage");
            while g.generation.load(Ordering::SeqCst) == generation
                && server_alive.strong_count() > 0
            {
                std::thread::sleep(MEMORY_COMMIT_EVERY);
                let mut pending = lock(&g.pending);
                if g.generation.load(Ordering::SeqCst) != generation {
                    return;
                }
                if let Some(z) = me.commit_pending(&mut pending) {
                    drop(pending);
                    on_durable(Ok(z));
                }
            }
        });
        Some(Box::new(MemoryAppends {
            group,
            _alive: alive,
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The list of applied txns as a snapshot in ZooKeeper's stream shape
/// (no sessions, no ACLs, a root node, then one node per txn holding its
/// zxid and bytes, then the `/` end marker), so it crosses the wire as a
/// real tree does.
pub fn encode_snapshot(entries: &[Entry]) -> Vec<u8> {
    use crate::jute::Record;
    let mut w = Vec::new();
    w.write_i32(0);
    w.write_i32(0);
    let node = |w: &mut Vec<u8>, path: &str, data: &[u8]| {
        w.write_string(path);
        w.write_buffer(data);
        w.write_i64(-1);
        crate::proto::records::StatPersisted::default().write(w);
    };
    node(&mut w, "", &[]);
    for (i, e) in entries.iter().enumerate() {
        let mut data = e.zxid.to_be_bytes().to_vec();
        data.extend_from_slice(&e.txn);
        node(&mut w, &format!("/{i}"), &data);
    }
    w.write_string("/");
    w
}

pub fn decode_snapshot(buf: &[u8]) -> Result<Vec<Entry>, String> {
    use crate::jute::Record;
    let mut r = Reader::new(buf);
    let err = |e: crate::jute::JuteError| e.to_string();
    if r.read_i32().map_err(err)? != 0 || r.read_i32().map_err(err)? != 0 {
        return Err("a list snapshot has no sessions or ACLs".into());
    }
    let mut out = Vec::new();
    loop {
        let path = r.read_string().map_err(err)?;
        if path == "/" {
            break;
        }
        let data = r.read_buffer().map_err(err)?;
        r.read_i64().map_err(err)?;
        crate::proto::records::StatPersisted::read(&mut r).map_err(err)?;
        if path.is_empty() {
            continue;
        }
        if data.len() < 8 {
            return Err(format!("bad entry {path}"));
        }
        let zxid = i64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        out.push(Entry {
            zxid,
            txn: data.slice(8..),
        });
    }
    Ok(out)
}

/// The state machine replicated by a [`QuorumServer`]: it receives the
/// committed txns in order and the role changes, serializes its state for
/// SNAP, and may propose txns or exchange its own packets (REQUEST, SYNC...)
/// with the leader or learners through the [`Ctx`] it is handed. All calls
/// run on the node task, between the node's steps.
pub trait Replica: Send + 'static {
    /// What the rest of the program sends it (client work, questions).
    type Msg: Send + 'static;
    /// A committed txn, in zxid order.
    fn apply(&mut self, e: Entry, ctx: &mut Ctx);
    /// A logged txn applied on leaving a role: maybe not committed, and a
    /// later `truncate` may take it back.
    fn fast_forward(&mut self, e: Entry, ctx: &mut Ctx);
    /// The state at exactly `zxid` (everything applied), serialized; sent
    /// after a SNAP packet.
    fn snapshot(&mut self, zxid: Zxid) -> Vec<u8>;
    /// Replaces the state with a received snapshot taken at `zxid`.
    fn install_snapshot(&mut self, zxid: Zxid, snap: &[u8], ctx: &mut Ctx) -> Result<(), String>;
    /// Drops whatever was applied or fast-forwarded after `zxid`.
    fn truncate(&mut self, zxid: Zxid, ctx: &mut Ctx) -> Result<(), String>;
    fn status(&mut self, s: Status, ctx: &mut Ctx);
    fn message(&mut self, m: Self::Msg, ctx: &mut Ctx);
    /// A packet the ZAB cores do not handle (REQUEST, SYNC, REVALIDATE...).
    fn packet(&mut self, _from: ServerId, _p: QuorumPacket, _ctx: &mut Ctx) {}
    /// What a learner puts in the PING it answers the leader with.
    fn ping_data(&mut self) -> Bytes {
        Bytes::new()
    }
    /// The leader got a learner's PING with `data`.
    fn pinged(&mut self, _from: ServerId, _data: &[u8]) {}
    /// Called every node tick.
    fn tick(&mut self, _ctx: &mut Ctx) {}

    /// The membership as ZooKeeper's text and its version, announced in
    /// notifications and NEWLEADER (none by default).
    fn config(&self) -> Option<(Bytes, i64)> {
        None
    }
}

/// What the node is doing, for the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub me: ServerId,
    pub status: Status,
    /// Highest committed (applied) zxid.
    pub committed: Zxid,
    /// Highest logged zxid: a leader's last proposal.
    pub last_logged: Zxid,
    /// While leading: (learners, synced followers, synced observers).
    pub leader_counts: Option<(usize, usize, usize)>,
}

/// The replica's window on the node: what it is doing, and requests.
pub struct Ctx<'a> {
    pub info: NodeInfo,
    node: &'a Node,
    requests: Vec<CtxRequest>,
}

enum CtxRequest {
    Propose {
        txn: Bytes,
        zxid: Zxid,
        new_config: Option<(super::Membership, BTreeMap<ServerId, PeerAddrs>)>,
    },
    Reconfigure(
        super::Membership,
        BTreeMap<ServerId, PeerAddrs>,
        Option<(Bytes, i64)>,
    ),
    Send {
        to: ServerId,
        packet: QuorumPacket,
    },
    Fail(String),
}

impl Ctx<'_> {
    /// While leading: this server and the learners synced with it
    /// (computed on demand: only a reconfig needs it).
    pub fn synced(&self) -> Option<std::collections::BTreeSet<ServerId>> {
        self.node.synced()
    }

    /// Proposes a txn whose header says `zxid`; the leader must give it
    /// exactly that zxid (the server stops otherwise: a bug).
    pub fn propose(&mut self, txn: Bytes, zxid: Zxid) {
        self.requests.push(CtxRequest::Propose {
            txn,
            zxid,
            new_config: None,
        });
    }

    /// Proposes a txn that changes the membership to `m` (it commits on a
    /// quorum of the old and of the new voters).
    pub fn propose_reconfig(
        &mut self,
        txn: Bytes,
        zxid: Zxid,
        m: super::Membership,
        peers: BTreeMap<ServerId, PeerAddrs>,
    ) {
        self.requests.push(CtxRequest::Propose {
            txn,
            zxid,
            new_config: Some((m, peers)),
        });
    }

    /// A membership change committed: quorums, elections and peer
    /// connections follow `m` from now on.
    pub fn reconfigure(
        &mut self,
        m: super::Membership,
        peers: BTreeMap<ServerId, PeerAddrs>,
        text: Option<(Bytes, i64)>,
    ) {
        self.requests.push(CtxRequest::Reconfigure(m, peers, text));
    }

    /// Sends a packet on the quorum connection with `to` (the leader, or a
    /// learner when leading).
    pub fn send(&mut self, to: ServerId, packet: QuorumPacket) {
        self.requests.push(CtxRequest::Send { to, packet });
    }

    /// The replica cannot go on (storage or state broken): stop the server.
    pub fn fail(&mut self, why: String) {
        self.requests.push(CtxRequest::Fail(why));
    }
}

/// The replica of the tests: the applied state is the list of applied
/// txns, and the snapshot is that list.
#[derive(Debug, Clone, Default)]
pub struct ListReplica {
    applied: Arc<Mutex<Vec<Entry>>>,
}

impl ListReplica {
    fn push(&mut self, e: Entry) {
        let mut applied = lock(&self.applied);
        if applied.last().is_some_and(|l| l.zxid >= e.zxid) {
            tracing::error!(zxid = e.zxid, "apply out of order");
        }
        applied.push(e);
    }
}

impl Replica for ListReplica {
    type Msg = ();

    fn apply(&mut self, e: Entry, _ctx: &mut Ctx) {
        self.push(e);
    }

    fn fast_forward(&mut self, e: Entry, _ctx: &mut Ctx) {
        self.push(e);
    }

    fn snapshot(&mut self, zxid: Zxid) -> Vec<u8> {
        let applied = lock(&self.applied);
        let at = applied.last().map(|e| e.zxid).unwrap_or(0);
        if at != zxid {
            tracing::error!("SNAP {zxid:#x} with the state at {at:#x}");
        }
        encode_snapshot(&applied)
    }

    fn install_snapshot(&mut self, _zxid: Zxid, snap: &[u8], _ctx: &mut Ctx) -> Result<(), String> {
        *lock(&self.applied) = decode_snapshot(snap)?;
        Ok(())
    }

    fn truncate(&mut self, zxid: Zxid, _ctx: &mut Ctx) -> Result<(), String> {
        lock(&self.applied).retain(|e| e.zxid <= zxid);
        Ok(())
    }

    fn status(&mut self, _s: Status, _ctx: &mut Ctx) {}

    fn message(&mut self, _m: (), _ctx: &mut Ctx) {}
}

/// Every task of one server, so that it can be stopped at once (a crash,
/// from its peers' point of view: sockets close, nothing more is written).
#[derive(Clone, Default)]
struct Tasks {
    handles: Arc<Mutex<Vec<AbortHandle>>>,
    stopped: Arc<AtomicBool>,
}

impl Tasks {
    fn spawn<F>(&self, f: F) -> AbortHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let h = tokio::spawn(f).abort_handle();
        self.register(h.clone());
        h
    }

    fn register(&self, h: AbortHandle) {
        let mut v = lock(&self.handles);
        if self.stopped.load(Ordering::SeqCst) {
            h.abort();
            return;
        }
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    fn abort_all(&self) {
        let mut v = lock(&self.handles);
        self.stopped.store(true, Ordering::SeqCst);
        for h in v.drain(..) {
            h.abort();
        }
    }
}

/// Everything the node task hears about.
enum Event {
    Input(Input),
    /// A quorum packet on connection `conn`.
    Zab {
        conn: u64,
        from: ServerId,
        msg: ZabMessage,
        snapshot: Option<Bytes>,
    },
    /// A learner connected; `msg` is its first packet.
    Accepted {
        conn: QuorumConn,
        from: ServerId,
        msg: ZabMessage,
    },
    /// Our connection to the leader is up; its reader task.
    Reader {
        conn: u64,
        peer: ServerId,
        reader: AbortHandle,
    },
    QuorumClosed {
        conn: u64,
        peer: ServerId,
    },
    Propose(Bytes, oneshot::Sender<Option<Zxid>>),
    /// An election connection from a server not configured here; `addr` is
    /// the election address it announced.
    NewPeer {
        sid: ServerId,
        addr: String,
        stream: tokio::net::TcpStream,
    },
    Failed(String),
    /// The disk task made everything up to `seq` durable.
    DiskDone {
        seq: u64,
    },
    /// The direct log's writer made everything up to this zxid durable, or
    /// stopped (why).
    Durable(Result<Zxid, String>),
    /// Freeze the node task until resumed (tests: what SIGSTOP does).
    Pause(oneshot::Receiver<()>),
}

/// How a learner was synchronised, counted per SYNC packet received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub diff: u64,
    pub trunc: u64,
    pub snap: u64,
}

/// One running replicated server. Dropping it stops every task.
pub struct QuorumServer<R: Replica = ListReplica> {
    id: ServerId,
    syncs: Arc<Mutex<SyncCounts>>,
    events: mpsc::UnboundedSender<Event>,
    app: mpsc::UnboundedSender<R::Msg>,
    status: watch::Receiver<Status>,
    applied: Arc<Mutex<Vec<Entry>>>,
    tasks: Tasks,
}

impl QuorumServer<ListReplica> {
    /// Binds both ports, loads the storage and starts the server, with the
    /// list of applied txns as its state (tests).
    pub async fn start(cfg: NetConfig, storage: impl Storage) -> std::io::Result<Self> {
        let replica = ListReplica::default();
        let applied = replica.applied.clone();
        let disk = load(storage).await?;
        *lock(&applied) = disk
            .1
            .log
            .iter()
            .filter(|e| e.zxid > disk.1.snapshot_zxid)
            .cloned()
            .collect();
        let mut s = Self::start_loaded(cfg, disk, replica).await?;
        s.applied = applied;
        Ok(s)
    }

    /// The txns applied so far, in order.
    pub fn applied(&self) -> Vec<Entry> {
        lock(&self.applied).clone()
    }
}

async fn load<S: Storage>(mut storage: S) -> std::io::Result<(S, PersistentState)> {
    tokio::task::spawn_blocking(move || storage.load().map(|d| (storage, d)))
        .await
        .map_err(std::io::Error::other)?
}

impl<R: Replica> QuorumServer<R> {
    /// Binds both ports, loads the storage and starts the server with
    /// `replica` as its state machine. The replica must hold exactly the
    /// state the storage's snapshot stands for (its log is replayed by the
    /// node as fast-forwards).
    pub async fn start_replica(
        cfg: NetConfig,
        storage: impl Storage,
        replica: R,
    ) -> std::io::Result<Self> {
        let disk = load(storage).await?;
        Self::start_loaded(cfg, disk, replica).await
    }

    async fn start_loaded<S: Storage>(
        cfg: NetConfig,
        (storage, disk): (S, PersistentState),
        replica: R,
    ) -> std::io::Result<Self> {
        let me = cfg.node.me;
        let addrs = cfg.peers.get(&me).cloned().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("server {me} is not among the configured peers"),
            )
        })?;
        let election_listener = TcpListener::bind(addrs.election.bind_addr())
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("election port {}: {e}", addrs.election))
            })?;
        let quorum_listener = TcpListener::bind(addrs.quorum.bind_addr())
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("quorum port {}: {e}", addrs.quorum))
            })?;
        let tasks = Tasks::default();
        let (events, events_rx) = mpsc::unbounded_channel();
        let (app, app_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::Looking);
        let election_addrs: BTreeMap<ServerId, Endpoint> = cfg
            .peers
            .iter()
            .map(|(id, a)| (*id, a.election.clone()))
            .collect();
        let election = election_port::start(
            me,
            addrs.election.clone(),
            election_listener,
            &election_addrs,
            events.clone(),
            &tasks,
        );
        let next_conn = Arc::new(AtomicU64::new(1));
        tasks.spawn(quorum_port::accept_loop(
            me,
            quorum_listener,
            events.clone(),
            tasks.clone(),
            next_conn.clone(),
        ));
        let mut storage = storage;
        let hook_events = events.clone();
        let direct = storage.direct_log(Arc::new(move |r: Result<Zxid, &str>| {
            let _ = hook_events.send(Event::Durable(r.map_err(str::to_string)));
        }));
        let (disk_tx, disk_rx) = mpsc::unbounded_channel();
        tasks.spawn(disk_task(storage, disk_rx, events.clone()));
        let tick_every = Duration::from_millis((cfg.node.tick_ms / 2).clamp(5, 50));
        let started = tokio::time::Instant::now();
        let tick_events = events.clone();
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(tick_every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                let now_ms = started.elapsed().as_millis() as u64;
                if tick_events
                    .send(Event::Input(Input::Tick { now_ms }))
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut node = Node::new(cfg.node.clone(), disk);
        if let Some((text, version)) = replica.config() {
            node.set_config_text(text, version);
        }
        let syncs = Arc::new(Mutex::new(SyncCounts::default()));
        let shell = Shell {
            syncs: syncs.clone(),
            me,
            cfg,
            node,
            events: events.clone(),
            election,
            quorum: HashMap::new(),
            parked: Vec::new(),
            next_conn,
            disk: disk_tx,
            disk_busy_until: None,
            direct,
            awaiting_durable: Default::default(),
            replica,
            requests: Vec::new(),
            staged_snapshot: None,
            status: status_tx,
            tasks: tasks.clone(),
            started,
        };
        tasks.spawn(shell.run(events_rx, app_rx));
        Ok(QuorumServer {
            id: me,
            syncs,
            events,
            app,
            status,
            applied: Arc::default(),
            tasks,
        })
    }

    pub fn id(&self) -> ServerId {
        self.id
    }

    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Watches role changes.
    pub fn status_watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// A sender of messages to the replica (they run on the node task).
    pub fn replica_sender(&self) -> mpsc::UnboundedSender<R::Msg> {
        self.app.clone()
    }

    /// DIFF / TRUNC / SNAP packets this server received as a learner.
    pub fn syncs(&self) -> SyncCounts {
        *lock(&self.syncs)
    }

    /// Proposes a txn; `Some(zxid)` when this server is an established
    /// leader and took it (it commits once a quorum acks), `None` otherwise.
    pub async fn propose(&self, txn: Bytes) -> Option<Zxid> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Propose(txn, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Freezes the server's state machine (not its sockets) until the
    /// returned sender is dropped or used: a stopped process, as far as the
    /// peers can tell, for fault tests.
    pub fn pause(&self) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.events.send(Event::Pause(rx));
        tx
    }

    /// True while the server's tasks run (a storage failure stops them).
    pub fn is_running(&self) -> bool {
        !self.events.is_closed()
    }

    /// Waits until the server stops (a storage failure or a fatal error).
    pub async fn stopped(&self) {
        self.events.closed().await
    }

    /// Stops every task and closes every socket at once, as a crash looks
    /// to the peers (an in-memory storage keeps what was synced).
    pub fn kill(&self) {
        self.tasks.abort_all();
    }
}

impl<R: Replica> Drop for QuorumServer<R> {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Writes batches to storage on a blocking thread; reports the last
/// sequence number of a batch only after its sync.
async fn disk_task(
    storage: impl Storage,
    mut rx: mpsc::UnboundedReceiver<(u64, PersistOp, Option<Bytes>)>,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut storage = Some(storage);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let last = batch.last().map(|b| b.0).unwrap_or(0);
        let Some(mut st) = storage.take() else { return };
        let result = tokio::task::spawn_blocking(move || {
            let r = batch
                .iter()
                .try_for_each(|(_, op, snap)| st.write(op, snap.as_deref()))
                .and_then(|()| st.sync());
            (st, r)
        })
        .await;
        match result {
            Ok((st, Ok(()))) => {
                storage = Some(st);
                if events.send(Event::DiskDone { seq: last }).is_err() {
                    return;
                }
            }
            Ok((_, Err(e))) => {
                let _ = events.send(Event::Failed(format!("storage write failed: {e}")));
                return;
            }
            Err(e) => {
                let _ = events.send(Event::Failed(format!("storage task failed: {e}")));
                return;
            }
        }
    }
}

/// A learner connection that arrived before this server was leading.
struct Parked {
    conn: QuorumConn,
    from: ServerId,
    msg: ZabMessage,
    until_ms: u64,
}

/// The node task's state.
struct Shell<R: Replica> {
    me: ServerId,
    syncs: Arc<Mutex<SyncCounts>>,
    cfg: NetConfig,
    node: Node,
    events: mpsc::UnboundedSender<Event>,
    election: BTreeMap<ServerId, Arc<election_port::ElectionPeer>>,
    quorum: HashMap<ServerId, QuorumConn>,
    parked: Vec<Parked>,
    next_conn: Arc<AtomicU64>,
    disk: mpsc::UnboundedSender<(u64, PersistOp, Option<Bytes>)>,
    /// The last op handed to the disk task and not yet done: appends wait
    /// behind it in that task's queue rather than overtake it.
    disk_busy_until: Option<u64>,
    /// Appends go straight into a group-commit log when the storage has one.
    direct: Option<Box<dyn DirectLog>>,
    /// Direct appends (zxid, seq) not yet reported durable, in order.
    awaiting_durable: std::collections::VecDeque<(Zxid, u64)>,
    replica: R,
    /// What the replica asked for while being called; run after.
    requests: Vec<CtxRequest>,
    staged_snapshot: Option<(Zxid, Bytes)>,
    status: watch::Sender<Status>,
    tasks: Tasks,
    started: tokio::time::Instant,
}

impl<R: Replica> Shell<R> {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn info(&self) -> NodeInfo {
        NodeInfo {
            me: self.me,
            status: self.node.status(),
            committed: self.node.history().committed(),
            last_logged: self.node.last_logged(),
            leader_counts: self.node.leader_counts(),
        }
    }

    /// Calls the replica with a fresh context and keeps its requests.
    fn with_replica<T>(&mut self, f: impl FnOnce(&mut R, &mut Ctx) -> T) -> T {
        let mut ctx = Ctx {
            info: self.info(),
            node: &self.node,
            requests: Vec::new(),
        };
        let r = f(&mut self.replica, &mut ctx);
        let mut requests = ctx.requests;
        self.requests.append(&mut requests);
        r
    }

    /// Runs what the replica asked for, and what that leads to. False when
    /// the server must stop.
    fn run_requests(&mut self) -> bool {
        while !self.requests.is_empty() {
            for r in std::mem::take(&mut self.requests) {
                match r {
                    CtxRequest::Propose {
                        txn,
                        zxid,
                        new_config,
                    } => {
                        let m = new_config.map(|(m, peers)| {
                            // The leader talks to the joining servers too.
                            self.add_peers(&peers);
                            m
                        });
                        let (got, actions) = self.node.propose_with(txn, m);
                        self.execute(actions);
                        match got {
                            Some(z) if z != zxid => {
                                tracing::error!(
                                    server = self.me,
                                    "proposal got zxid {z:#x}, its header says {zxid:#x}; stopping"
                                );
                                return false;
                            }
                            Some(_) => {}
                            // Not (or no longer) leading: the status change
                            // tells the replica.
                            None => {}
                        }
                    }
                    CtxRequest::Send { to, packet } => {
                        self.send(to, Message::Zab(ZabMessage::Other(packet)))
                    }
                    CtxRequest::Reconfigure(m, peers, text) => {
                        if let Some((text, version)) = text {
                            self.node.set_config_text(text, version);
                        }
                        tracing::info!(server = self.me, voters = ?m.voters(), observers = ?m.observers(), "membership changed");
                        self.add_peers(&peers);
                        let actions = self.node.reconfigure(m);
                        self.execute(actions);
                    }
                    CtxRequest::Fail(why) => {
                        tracing::error!(server = self.me, "{why}; stopping");
                        return false;
                    }
                }
            }
        }
        true
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        mut app_rx: mpsc::UnboundedReceiver<R::Msg>,
    ) {
        let now = self.now_ms();
        let actions = self.node.start(now);
        self.execute(actions);
        let mut app_open = true;
        loop {
            let ev = tokio::select! {
                biased;
                ev = rx.recv() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                m = app_rx.recv(), if app_open => {
                    match m {
                        Some(m) => self.with_replica(|r, ctx| r.message(m, ctx)),
                        None => app_open = false,
                    }
                    if !self.run_requests() {
                        break;
                    }
                    continue;
                }
            };
            if !self.event(ev).await || !self.run_requests() {
                break;
            }
        }
        self.tasks.abort_all();
    }

    /// One event; false when the server must stop.
    async fn event(&mut self, ev: Event) -> bool {
        match ev {
            Event::Input(input) => {
                if let Input::Message {
                    from,
                    msg: Message::Election(n),
                } = &input
                {
                    tracing::trace!(server = self.me, from, ?n, "notification in");
                }
                let tick = matches!(input, Input::Tick { .. });
                let actions = self.node.step(input);
                self.execute(actions);
                if tick {
                    self.expire_parked();
                    self.with_replica(|r, ctx| r.tick(ctx));
                }
            }
            Event::Zab {
                conn,
                from,
                msg,
                snapshot,
            } => {
                if self.quorum.get(&from).map(|c| c.id) != Some(conn) {
                    return true; // from a connection already replaced or closed
                }
                match &msg {
                    ZabMessage::Diff { .. } => lock(&self.syncs).diff += 1,
                    ZabMessage::Trunc { .. } => lock(&self.syncs).trunc += 1,
                    ZabMessage::Snap { .. } => lock(&self.syncs).snap += 1,
                    ZabMessage::Ping { data, .. } if self.leading() && !data.is_empty() => {
                        let data = data.clone();
                        self.replica.pinged(from, &data);
                    }
                    _ => {}
                }
                if let ZabMessage::Other(p) = msg {
                    self.with_replica(|r, ctx| r.packet(from, p, ctx));
                    return true;
                }
                if let (ZabMessage::Snap { zxid }, Some(s)) = (&msg, snapshot) {
                    self.staged_snapshot = Some((*zxid, s));
                }
                let actions = self.node.step(Input::Message {
                    from,
                    msg: Message::Zab(msg),
                });
                self.execute(actions);
            }
            Event::Accepted { conn, from, msg } => {
                self.accepted(conn, from, msg);
            }
            Event::Reader { conn, peer, reader } => match self.quorum.get_mut(&peer) {
                Some(c) if c.id == conn => c.reader = Some(reader),
                _ => reader.abort(),
            },
            Event::QuorumClosed { conn, peer } => {
                self.parked.retain(|p| p.conn.id != conn);
                if self.quorum.get(&peer).map(|c| c.id) == Some(conn) {
                    self.quorum.remove(&peer);
                    let actions = self.node.step(Input::Disconnected(peer));
                    self.execute(actions);
                }
            }
            Event::Propose(txn, reply) => {
                let (zxid, actions) = self.node.propose(txn);
                self.execute(actions);
                let _ = reply.send(zxid);
            }
            Event::Pause(resume) => {
                // Sockets stay open and the kernel keeps buffering, as
                // for a stopped process; time jumps on resume.
                let _ = resume.await;
            }
            Event::NewPeer { sid, addr, stream } => {
                if !self.election.contains_key(&sid) {
                    let Some((host, port)) = addr
                        .rsplit_once(':')
                        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                    else {
                        tracing::info!(
                            server = self.me,
                            sid,
                            addr,
                            "unknown server announced no usable address"
                        );
                        return true;
                    };
                    tracing::info!(
                        server = self.me,
                        sid,
                        addr,
                        "election connection from a server not in our configuration"
                    );
                    self.add_election_peer(sid, Endpoint::new(host, port));
                }
                if let Some(p) = self.election.get(&sid) {
                    election_port::route(self.me, p, stream);
                }
            }
            Event::Failed(why) => {
                tracing::error!(server = self.me, "{why}; stopping");
                return false;
            }
            Event::DiskDone { seq } => {
                if self.disk_busy_until.is_some_and(|s| s <= seq) {
                    self.disk_busy_until = None;
                }
                // The disk task's sync covered the direct appends before.
                self.awaiting_durable.retain(|(_, s)| *s > seq);
                let actions = self.node.step(Input::Persisted { seq });
                self.execute(actions);
            }
            Event::Durable(Ok(zxid)) => {
                let mut done = None;
                while let Some(&(z, seq)) = self.awaiting_durable.front()
                    && z <= zxid
                {
                    done = Some(seq);
                    self.awaiting_durable.pop_front();
                }
                if let Some(seq) = done {
                    let actions = self.node.step(Input::Persisted { seq });
                    self.execute(actions);
                }
            }
            Event::Durable(Err(why)) => {
                tracing::error!(server = self.me, "storage write failed: {why}; stopping");
                return false;
            }
        }
        true
    }

    fn add_election_peer(&mut self, sid: ServerId, addr: Endpoint) {
        let my_addr = match self.cfg.peers.get(&self.me) {
            Some(a) => a.election.clone(),
            None => return,
        };
        let p = election_port::add_peer(self.me, &my_addr, sid, addr, &self.events, &self.tasks);
        self.election.insert(sid, p);
    }

    /// Peers a new configuration names: their quorum addresses, and an
    /// election connection to each.
    fn add_peers(&mut self, peers: &BTreeMap<ServerId, PeerAddrs>) {
        for (sid, a) in peers {
            if *sid == self.me {
                continue;
            }
            self.cfg.peers.insert(*sid, a.clone());
            if !self.election.contains_key(sid) {
                self.add_election_peer(*sid, a.election.clone());
            }
        }
    }

    fn leading(&self) -> bool {
        matches!(
            self.node.status(),
            Status::Leading { .. } | Status::LeaderElect { .. }
        )
    }

    fn accepted(&mut self, conn: QuorumConn, from: ServerId, msg: ZabMessage) {
        if self.leading() {
            // A learner reconnecting replaces its old connection.
            if self.quorum.insert(from, conn).is_some() {
                let actions = self.node.step(Input::Disconnected(from));
                self.execute(actions);
            }
            let actions = self.node.step(Input::Message {
                from,
                msg: Message::Zab(msg),
            });
            self.execute(actions);
        } else if self.node.status() == Status::Looking {
            let until_ms = self.now_ms() + self.cfg.node.tick_ms * self.cfg.node.init_limit;
            self.parked.push(Parked {
                conn,
                from,
                msg,
                until_ms,
            });
        }
        // Following or observing: refuse by dropping the connection.
    }

    fn expire_parked(&mut self) {
        let now = self.now_ms();
        self.parked.retain(|p| p.until_ms > now);
    }

    fn status_changed(&mut self, s: Status) {
        tracing::info!(server = self.me, status = ?s, "role changed");
        self.status.send_replace(s);
        self.with_replica(|r, ctx| r.status(s, ctx));
        match s {
            Status::LeaderElect { .. } | Status::Leading { .. } => {
                for p in std::mem::take(&mut self.parked) {
                    self.accepted(p.conn, p.from, p.msg);
                }
            }
            Status::Syncing { .. } | Status::Serving { .. } => self.parked.clear(),
            Status::Looking => {}
        }
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, msg } => self.send(to, msg),
                Action::Persist { seq, op } => self.persist(seq, op),
                Action::Apply(e) => self.with_replica(|r, ctx| r.apply(e, ctx)),
                Action::FastForward(e) => self.with_replica(|r, ctx| r.fast_forward(e, ctx)),
                Action::Disconnect(peer) => {
                    self.quorum.remove(&peer);
                }
                Action::Status(s) => self.status_changed(s),
                Action::Violation(v) => {
                    tracing::error!(server = self.me, "protocol violation: {v}")
                }
            }
        }
    }

    /// Hands `op` to the storage: an append straight into the direct log
    /// when there is one and the disk task has nothing in hand (else it
    /// would overtake an epoch write or a TRUNC); anything else to the disk
    /// task, in order.
    fn persist(&mut self, seq: u64, op: PersistOp) {
        let mut snapshot = None;
        let result = match &op {
            PersistOp::Truncate(z) => {
                let z = *z;
                self.with_replica(|r, ctx| r.truncate(z, ctx))
            }
            PersistOp::InstallSnapshot(z) => match self.staged_snapshot.take() {
                Some((sz, bytes)) if sz == *z => {
                    let z = *z;
                    let r = self.with_replica(|r, ctx| r.install_snapshot(z, &bytes, ctx));
                    snapshot = Some(bytes);
                    r
                }
                _ => Err(format!(
                    "asked to install snapshot {z:#x} that was never received"
                )),
            },
            _ => Ok(()),
        };
        if let Err(why) = result {
            let _ = self.events.send(Event::Failed(why));
            return;
        }
        if let (PersistOp::Append(e), Some(log), None) = (&op, &self.direct, self.disk_busy_until) {
            // Straight into the log: no disk-task hop, and the writer's
            // report comes back as `Event::Durable`.
            log.append(e);
            self.awaiting_durable.push_back((e.zxid, seq));
            return;
        }
        self.disk_busy_until = Some(seq);
        let _ = self.disk.send((seq, op, snapshot));
    }

    fn send(&mut self, to: ServerId, msg: Message) {
        match msg {
            Message::Election(n) => {
                tracing::trace!(server = self.me, to, ?n, "notification out");
                if let Some(p) = self.election.get(&to) {
                    p.send(&n);
                }
            }
            Message::Zab(mut z) => {
                if let ZabMessage::Ping { data, .. } = &mut z
                    && !self.leading()
                {
                    // A learner's answer to the leader's PING carries the
                    // replica's news (ZooKeeper: the sessions it touched).
                    *data = self.replica.ping_data();
                }
                let mut bytes = z.encode();
                if let ZabMessage::Snap { zxid } = &z {
                    // The state is exactly at the SNAP zxid: every earlier
                    // Apply has been executed.
                    // Streamed as ZooKeeper does: the serialized tree
                    // itself (no length prefix), then the signature.
                    bytes.extend_from_slice(&self.replica.snapshot(*zxid));
                    bytes.write_string(quorum_port::SNAPSHOT_SIGNATURE);
                }
                let starts_learning = matches!(
                    z,
                    ZabMessage::FollowerInfo { .. } | ZabMessage::ObserverInfo { .. }
                );
                if starts_learning {
                    // A new attempt to follow `to`: a fresh connection.
                    self.quorum.remove(&to);
                    let Some(addr) = self.cfg.peers.get(&to).map(|a| a.quorum.clone()) else {
                        return;
                    };
                    let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let _ = tx.send(Bytes::from(bytes));
                    let within = Duration::from_millis(
                        self.cfg.node.tick_ms * self.cfg.node.init_limit.max(1),
                    );
                    quorum_port::connect(
                        addr,
                        id,
                        to,
                        rx,
                        within,
                        self.events.clone(),
                        &self.tasks,
                    );
                    self.quorum.insert(
                        to,
                        QuorumConn {
                            id,
                            tx,
                            reader: None,
                        },
                    );
                } else if let Some(c) = self.quorum.get(&to) {
                    let _ = c.tx.send(Bytes::from(bytes));
                }
                // No connection: the message is lost, as on a closed socket;
                // the cores time out.
            }
        }
    }
}

/// A packet of a type the cores do not interpret, for replicas.
pub fn packet(
    t: PacketType,
    zxid: Zxid,
    data: Bytes,
    authinfo: Vec<crate::proto::Id>,
) -> QuorumPacket {
    QuorumPacket {
        packet_type: t as i32,
        zxid,
        data,
        authinfo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::make_zxid;
    use proptest::prelude::*;

    #[test]
    fn snapshot_round_trip() {
        let entries = vec![
            Entry {
                zxid: make_zxid(1, 1),
                txn: Bytes::from_static(b"a"),
            },
            Entry {
                zxid: make_zxid(1, 2),
                txn: Bytes::from_static(b""),
            },
        ];
        assert_eq!(decode_snapshot(&encode_snapshot(&entries)), Ok(entries));
        assert!(decode_snapshot(&[0, 0, 0, 9]).is_err());
        assert!(decode_snapshot(&[]).is_err());
    }

    #[tokio::test]
    async fn quorum_packets_read_off_a_stream() {
        let msgs = [
            ZabMessage::Proposal {
                zxid: make_zxid(2, 5),
                txn: Bytes::from_static(b"txn"),
            },
            ZabMessage::Commit {
                zxid: make_zxid(2, 5),
            },
            ZabMessage::UpToDate { zxid: 0 },
        ];
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&m.encode());
        }
        let mut r = &stream[..];
        for m in &msgs {
            assert_eq!(&quorum_port::read_packet(&mut r).await.unwrap(), m);
        }
        assert!(quorum_port::read_packet(&mut r).await.is_err());
        // Truncated in the middle of a packet.
        let mut short = &stream[..stream.len() - 3];
        for _ in 0..2 {
            quorum_port::read_packet(&mut short).await.unwrap();
        }
        assert!(quorum_port::read_packet(&mut short).await.is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_snapshot(&bytes);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut r = &bytes[..];
                while quorum_port::read_packet(&mut r).await.is_ok() {}
            });
        }
    }
}
