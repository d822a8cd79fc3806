//! `rzk server` as a member of an ensemble: the core of [`super::core`]
//! becomes the [`Replica`] of a [`QuorumServer`], which runs the election
//! and ZAB on the peer ports and calls it on its one node task.
//!
//! How the pieces meet (see `processor::replica` for the client side):
//! * Every server's processor serves clients from committed txns only.
//!   Writes, syncs, closeSession and the createSession of a new connection
//!   are submitted: on the leader to its preparing processor, whose txns are
//!   proposed; on a follower or observer in a REQUEST packet to the leader.
//! * Committed txns arrive as `apply` (ZAB's COMMIT/INFORM), are applied
//!   to the tree, and answered by the server the client is connected to.
//! * Txns applied on leaving a role (fast-forward), and at start-up every
//!   logged txn after the snapshot, are *held*: they may not be committed.
//!   A TRUNC drops those above it; they are applied on the first commit, on
//!   becoming leader, or once synced with a leader. So the tree only ever
//!   holds committed txns, which is what snapshots (on disk and for SNAP)
//!   are taken from.
//! * Sessions: the leader's preparing processor tracks expiry; followers
//!   report the sessions their clients touched in their PING answers.
//! * `sync`: the leader answers once everything proposed before it is
//!   committed (a SYNC packet to a learner, after the COMMITs before it).
//! * A server that is not leading or synced serves no clients. A client
//!   that connects meanwhile waits (up to [`CONNECT_HOLD`]): elections take
//!   milliseconds, and a client sent away backs off for far longer before
//!   it tries again (ZooKeeper closes it at once). Clients of a server that
//!   stops serving are disconnected and find another server.
//!
//! Storage ([`DiskStorage`]): proposals go to the same txn log writer
//! (group commit) as standalone; `acceptedEpoch`/`currentEpoch` files as
//! ZooKeeper writes them; TRUNC cuts the log files; a snapshot received
//! with SNAP is written as a snapshot file and replaces the logs.
//!
//! May touch: sockets (through `quorum::net`), files (through `storage`).

use super::conn::Out;
use super::core::{Core, CoreMsg, SharedLog, clock, lock};
use super::recovery;
use crate::config::{self, Config, Role, ServerSpec};
use crate::processor::{Clock, Effect, Processor, Settings, Submission};
use crate::quorum::net::{
    self, Ctx, DirectLog, DurableHook, Endpoint, NetConfig, NodeInfo, PeerAddrs, QuorumServer,
    Replica, Storage,
};
use crate::quorum::node::{Entry, NodeConfig, Status};
use crate::quorum::wire::{PacketType, QuorumPacket};
use crate::quorum::zab::{ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE, PersistOp, PersistentState};
use crate::quorum::{Membership, ServerId, Zxid, make_zxid};
use crate::storage::{DataDir, LogEntry, Recovered, TxnLog, format};
use crate::tree::watch::ConnId;
use anyhow::Context;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Committed txns kept in memory for DIFF; a learner further behind gets a
/// SNAP (ZooKeeper keeps 500 and can also read its log files).
const LOG_WINDOW: usize = 5000;

/// How long a client connection that arrives while the server is not
/// serving (electing, syncing with a new leader) waits for it to serve
/// before it is closed. Short enough that a client of a server cut off from
/// the quorum soon tries another one.
const CONNECT_HOLD: Duration = Duration::from_millis(1000);
/// Connections waiting at once, at most; more are closed at once.
const MAX_WAITING_CONNECTIONS: usize = 1000;

/// Who asked the leader for a sync.
#[derive(Debug, Clone, Copy)]
enum SyncFrom {
    /// A session connected to the leader itself.
    Local(i64),
    Learner(ServerId),
}

/// Replicated mode's part of the core.
pub(crate) struct Repl {
    info: NodeInfo,
    settings: Settings,
    /// The leader's preparing processor (see `processor::replica`).
    preparer: Option<Processor>,
    /// Logged txns not known to be committed yet, in zxid order.
    held: Vec<Entry>,
    /// A learner's syncs sent to the leader, oldest first (by session).
    syncs_out: VecDeque<i64>,
    /// The leader's syncs waiting for everything proposed before them.
    syncs_in: VecDeque<(Zxid, SyncFrom)>,
    leading_since: Option<Instant>,
    /// When this server last started looking for a leader.
    looking_since: Option<Instant>,
    voters: usize,
    /// readonlymode.enabled: serve read-only clients while looking.
    read_only_allowed: bool,
    read_only: bool,
    /// The membership in force, as `/zookeeper/config` shows it.
    config_text: Bytes,
    config_version: i64,
    /// Client connections that arrived while not serving ([`CONNECT_HOLD`]),
    /// when each arrived, and everything they sent since, in order.
    waiting_since: HashMap<ConnId, Instant>,
    waiting: VecDeque<CoreMsg>,
}

impl Repl {
    pub(crate) fn mode(&self) -> &'static str {
        if self.read_only {
            return "read-only";
        }
        match self.info.status {
            Status::Leading { .. } => "leader",
            Status::Serving { observer: true, .. } => "observer",
            Status::Serving { .. } => "follower",
            // Not serving; ZooKeeper reports LOOKING meanwhile.
            _ => "looking",
        }
    }

    /// The quorum's figures for `mntr` (and so `/metrics` and the admin API).
    pub(crate) fn extra_mntr(&self) -> Vec<(String, String)> {
        let mut v = vec![("quorum_size".to_string(), self.voters.to_string())];
        match self.info.status {
            Status::Leading { .. } => {
                let (learners, followers, observers) = self.info.leader_counts.unwrap_or_default();
                v.push(("leader_id".into(), self.info.me.to_string()));
                v.push(("learners".into(), learners.to_string()));
                v.push(("synced_followers".into(), followers.to_string()));
                v.push(("synced_non_voting_followers".into(), "0".into()));
                v.push(("synced_observers".into(), observers.to_string()));
                v.push(("pending_syncs".into(), self.syncs_in.len().to_string()));
                let up = self
                    .leading_since
                    .map_or(0, |t| t.elapsed().as_millis() as u64);
                v.push(("leader_uptime".into(), up.to_string()));
            }
            Status::Serving { leader, .. } | Status::Syncing { leader } => {
                v.push(("leader_id".into(), leader.to_string()));
            }
            _ => {}
        }
        v
    }

    fn serving(&self) -> bool {
        matches!(
            self.info.status,
            Status::Leading { .. } | Status::Serving { .. }
        )
    }

    /// Accepting client connections: serving, or read-only.
    fn accepting(&self) -> bool {
        self.serving() || self.read_only
    }
}

/// The client connection a waiting message belongs to.
fn waiting_conn(m: &CoreMsg) -> Option<ConnId> {
    match m {
        CoreMsg::Connect { conn, .. }
        | CoreMsg::Request { conn, .. }
        | CoreMsg::Disconnected { conn } => Some(*conn),
        _ => None,
    }
}

/// Decodes a replicated txn (TxnHeader + body, as logged).
fn decode(e: &Entry) -> Result<LogEntry, String> {
    format::decode_payload(&e.txn)
}

impl Core {
    fn repl(&mut self) -> &mut Repl {
        self.repl.as_mut().expect("replicated mode")
    }

    fn now(&self) -> Clock {
        clock(self.start)
    }

    /// Carries out a client-facing submission (see `processor::replica`).
    pub(super) fn submit(&mut self, sub: Submission, ctx: &mut Ctx) {
        let info = ctx.info;
        match info.status {
            Status::Leading { .. } => {
                if sub.is_sync() {
                    self.leader_sync(SyncFrom::Local(sub.session), ctx);
                } else {
                    self.prepare(&sub, ctx);
                }
            }
            Status::Serving { leader, .. } => {
                if sub.is_sync() {
                    self.repl().syncs_out.push_back(sub.session);
                }
                let data = Bytes::from(sub.encode());
                ctx.send(leader, net::packet(PacketType::Request, -1, data, sub.auth));
            }
            // Not serving: the connection is being closed.
            _ => {}
        }
    }

    /// The leader prepares a submission and proposes its txn.
    fn prepare(&mut self, sub: &Submission, ctx: &mut Ctx) {
        let now = self.now();
        let Some(prep) = self.repl().preparer.as_mut() else {
            return;
        };
        if sub.op == crate::proto::OpCode::Reconfig as i32 {
            // Only a reconfig looks at who is synced.
            prep.set_synced(ctx.synced());
        }
        let effects = prep.forwarded(sub, now);
        propose_logs(effects, ctx);
    }

    fn leader_sync(&mut self, from: SyncFrom, ctx: &mut Ctx) {
        if ctx.info.committed >= ctx.info.last_logged {
            self.answer_sync(from, ctx);
        } else {
            let z = ctx.info.last_logged;
            self.repl().syncs_in.push_back((z, from));
        }
    }

    fn answer_sync(&mut self, from: SyncFrom, ctx: &mut Ctx) {
        match from {
            SyncFrom::Local(session) => {
                let effects = self.p.sync_done(session, self.now());
                self.apply(effects, Some(ctx));
            }
            SyncFrom::Learner(id) => ctx.send(
                id,
                net::packet(PacketType::Sync, 0, Bytes::new(), Vec::new()),
            ),
        }
    }

    /// Applies a committed txn to the tree.
    fn apply_entry(&mut self, e: &Entry, ctx: &mut Ctx) {
        if e.zxid <= self.p.last_zxid() {
            return; // already applied (held, then committed)
        }
        match decode(e) {
            Ok(LogEntry { header, txn }) => {
                let effects = self.p.apply_committed(&header, &txn, self.now());
                self.apply(effects, Some(ctx));
                if let crate::proto::txn::Txn::Reconfig(t) = &txn {
                    self.config_committed(t.data.clone(), ctx);
                }
            }
            Err(why) => ctx.fail(format!("cannot decode committed txn {:#x}: {why}", e.zxid)),
        }
    }

    /// A new membership is in force: the node follows it, and it is
    /// written as a dynamic config file (`zoo.cfg.dynamic.<version>` in the
    /// data dir) for operators to see.
    fn config_committed(&mut self, text: Bytes, ctx: &mut Ctx) {
        let Some((m, peers, version)) = membership_of(&text) else {
            tracing::error!("a committed reconfig without a usable membership");
            return;
        };
        if version <= self.repl().config_version {
            return;
        }
        if let Ok((specs, _)) = config::parse_membership(&String::from_utf8_lossy(&text)) {
            // What `conf` and the admin API's voting_view show.
            self.cfg.servers = specs;
        }
        let r = self.repl();
        r.config_text = text.clone();
        r.config_version = version;
        r.voters = m.voters().len();
        tracing::info!(
            version = format_args!("{version:#x}"),
            "new configuration committed"
        );
        let file = self
            .cfg
            .data_dir
            .join(format!("zoo.cfg.dynamic.{version:x}"));
        if let Err(e) = std::fs::write(&file, &text[..]) {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the dynamic config file");
        }
        ctx.reconfigure(m, peers, Some((text, version)));
    }

    /// Held txns are committed after all: apply them.
    fn flush_held(&mut self, ctx: &mut Ctx) {
        for e in std::mem::take(&mut self.repl().held) {
            self.apply_entry(&e, ctx);
        }
    }

    /// Keeps a connection that arrived while not serving, and what it sends
    /// after, until the server serves or [`CONNECT_HOLD`] runs out. Returns
    /// the message when it is to be handled now.
    fn wait_for_serving(&mut self, m: CoreMsg) -> Option<CoreMsg> {
        let r = self.repl();
        match &m {
            CoreMsg::Connect { conn, out, .. } if !r.accepting() => {
                if r.waiting_since.len() >= MAX_WAITING_CONNECTIONS {
                    let _ = out.send(Out::Close { tag: 0 });
                } else {
                    r.waiting_since.insert(*conn, Instant::now());
                    r.waiting.push_back(m);
                }
                None
            }
            CoreMsg::Request { conn, .. } if r.waiting_since.contains_key(conn) => {
                r.waiting.push_back(m);
                None
            }
            CoreMsg::Disconnected { conn } if r.waiting_since.remove(conn).is_some() => {
                let conn = *conn;
                r.waiting.retain(|w| waiting_conn(w) != Some(conn));
                None
            }
            _ => Some(m),
        }
    }

    /// The server serves (or gave up on some): handles what waited, in
    /// order, and closes connections that waited [`CONNECT_HOLD`].
    fn release_waiting(&mut self, ctx: &mut Ctx) {
        if self.repl().accepting() {
            let waiting = std::mem::take(&mut self.repl().waiting);
            self.repl().waiting_since.clear();
            for m in waiting {
                self.message(m, ctx);
            }
            return;
        }
        let r = self.repl();
        let expired: Vec<ConnId> = r
            .waiting_since
            .iter()
            .filter(|(_, since)| since.elapsed() >= CONNECT_HOLD)
            .map(|(c, _)| *c)
            .collect();
        for conn in expired {
            r.waiting_since.remove(&conn);
            r.waiting.retain(|w| {
                if waiting_conn(w) != Some(conn) {
                    return true;
                }
                if let CoreMsg::Connect { out, .. } = w {
                    // Not in a quorum: the client must try another server.
                    let _ = out.send(Out::Close { tag: 0 });
                }
                false
            });
        }
    }

    fn handle_message(&mut self, m: CoreMsg, ctx: &mut Ctx) {
        let effects = self.handle(m);
        self.apply(effects, Some(ctx));
        // A leader keeps its own clients' sessions alive at once; a learner
        // reports them with its next PING (`ping_data`).
        if self.repl().preparer.is_some() {
            let touched = self.p.take_touched();
            let now = self.now();
            if let Some(prep) = self.repl().preparer.as_mut() {
                prep.touch_sessions(&touched, now);
            }
        }
    }

    fn stop_serving(&mut self, ctx: &mut Ctx) {
        let effects = self.p.close_all();
        self.apply(effects, Some(ctx));
        let r = self.repl();
        r.preparer = None;
        r.syncs_in.clear();
        r.syncs_out.clear();
        r.leading_since = None;
    }

    fn become_leader(&mut self, epoch: i64) {
        let now = self.now();
        let settings = self.repl().settings.clone();
        let mut prep = Processor::new(settings, self.p.tree.clone(), &self.p.session_list(), now);
        prep.set_zxid_floor(make_zxid(epoch, 1));
        let r = self.repl();
        r.preparer = Some(prep);
        r.leading_since = Some(Instant::now());
        tracing::info!(epoch, "leading: serving clients");
    }

    /// Replaces the state with a snapshot (a leader's, after SNAP).
    fn install(&mut self, zxid: Zxid, bytes: &[u8], ctx: &mut Ctx) -> Result<(), String> {
        let snapshot = format::decode_stream_snapshot(bytes)
            .map_err(|e| format!("snapshot from the leader: {e}"))?;
        let (tree, sessions) = recovery::rebuild(Recovered {
            snapshot: Some((zxid, snapshot)),
            entries: Vec::new(),
            last_zxid: zxid,
        })
        .map_err(|e| e.to_string())?;
        let mut tree = tree;
        let theirs = tree
            .get(crate::tree::CONFIG)
            .map(|n| n.data.clone())
            .unwrap_or_default();
        let newer = membership_of(&theirs).is_some_and(|(_, _, v)| v > self.repl().config_version);
        if !newer {
            tree.set_config(self.repl().config_text.clone());
        }
        let settings = self.repl().settings.clone();
        let mut p = Processor::new(settings, tree, &sessions, self.now());
        p.set_replica(true);
        self.p = p;
        self.repl().held.clear();
        tracing::info!(
            zxid = format_args!("{zxid:#x}"),
            "installed the leader's snapshot"
        );
        if newer {
            self.config_committed(theirs, ctx);
        }
        Ok(())
    }
}

/// Proposes the txns a preparing processor logged.
fn propose_logs(effects: Vec<Effect>, ctx: &mut Ctx) {
    for e in effects {
        if let Effect::Log { header, txn } = e {
            let zxid = header.zxid;
            let new_config = match &txn {
                crate::proto::txn::Txn::Reconfig(t) => membership_of(&t.data),
                _ => None,
            };
            let payload = Bytes::from(format::encode_payload(&LogEntry { header, txn }));
            match new_config {
                Some((m, peers, _)) => ctx.propose_reconfig(payload, zxid, m, peers),
                None => ctx.propose(payload, zxid),
            }
        }
    }
}

impl Replica for Core {
    type Msg = CoreMsg;

    fn apply(&mut self, e: Entry, ctx: &mut Ctx) {
        self.repl().info = ctx.info;
        self.flush_held(ctx);
        self.apply_entry(&e, ctx);
        // Syncs on the leader wait for what was proposed before them.
        while let Some((z, from)) = self.repl().syncs_in.front().copied() {
            if z > e.zxid {
                break;
            }
            self.repl().syncs_in.pop_front();
            self.answer_sync(from, ctx);
        }
    }

    fn fast_forward(&mut self, e: Entry, _ctx: &mut Ctx) {
        if e.zxid > self.p.last_zxid() {
            self.repl().held.push(e);
        }
    }

    fn snapshot(&mut self, zxid: Zxid) -> Vec<u8> {
        if self.p.last_zxid() != zxid {
            tracing::error!(
                "SNAP at {zxid:#x} while the tree is at {:#x}",
                self.p.last_zxid()
            );
        }
        let snap = recovery::snapshot_of(&self.p.tree, self.p.session_list());
        format::encode_stream_snapshot(&snap)
    }

    fn install_snapshot(&mut self, zxid: Zxid, snap: &[u8], ctx: &mut Ctx) -> Result<(), String> {
        self.install(zxid, snap, ctx)
    }

    fn truncate(&mut self, zxid: Zxid, ctx: &mut Ctx) -> Result<(), String> {
        if self.p.last_zxid() > zxid {
            return Err(format!(
                "asked to truncate to {zxid:#x} below the committed {:#x}",
                self.p.last_zxid()
            ));
        }
        let r = self.repl();
        let dropped = r.held.iter().filter(|e| e.zxid > zxid).count();
        r.held.retain(|e| e.zxid <= zxid);
        if dropped > 0 {
            tracing::info!(
                dropped,
                to = format_args!("{zxid:#x}"),
                "truncated uncommitted txns"
            );
        }
        self.flush_held(ctx);
        Ok(())
    }

    fn status(&mut self, s: Status, ctx: &mut Ctx) {
        let was_accepting = self.repl().accepting();
        self.repl().info = ctx.info;
        if was_accepting {
            // Read-write clients find a server in the quorum; read-only
            // ones one that still is, or come back here once it is.
            self.stop_serving(ctx);
        }
        let read_only = s == Status::Looking && self.repl().read_only_allowed;
        self.repl().read_only = read_only;
        self.p.set_read_only(read_only);
        if read_only {
            tracing::info!("cut off from the quorum: serving read-only clients");
        }
        match s {
            Status::Looking => {
                self.repl().looking_since.get_or_insert_with(Instant::now);
            }
            Status::Leading { .. } | Status::Serving { .. } => {
                if let Some(t) = self.repl().looking_since.take() {
                    // election_time: from looking to serving in a quorum.
                    self.stats.recorder.election_finished(t.elapsed());
                    tracing::info!(
                        ms = t.elapsed().as_millis() as u64,
                        "election and sync done"
                    );
                }
            }
            _ => {}
        }
        match s {
            Status::LeaderElect { .. } => self.flush_held(ctx),
            Status::Leading { epoch } => {
                self.flush_held(ctx);
                self.become_leader(epoch);
            }
            Status::Serving { leader, observer } => {
                self.flush_held(ctx);
                tracing::info!(leader, observer, "synced with the leader: serving clients");
            }
            Status::Looking | Status::Syncing { .. } => {}
        }
        self.release_waiting(ctx);
    }

    fn message(&mut self, m: CoreMsg, ctx: &mut Ctx) {
        self.repl().info = ctx.info;
        if let Some(m) = self.wait_for_serving(m) {
            self.handle_message(m, ctx);
        }
    }

    fn packet(&mut self, from: ServerId, p: QuorumPacket, ctx: &mut Ctx) {
        self.repl().info = ctx.info;
        match PacketType::from_i32(p.packet_type) {
            Some(PacketType::Request) if matches!(ctx.info.status, Status::Leading { .. }) => {
                let Some(sub) = Submission::decode(&p.data, p.authinfo) else {
                    tracing::warn!(from, "malformed REQUEST packet");
                    return;
                };
                if sub.is_sync() {
                    self.leader_sync(SyncFrom::Learner(from), ctx);
                } else {
                    self.prepare(&sub, ctx);
                }
            }
            Some(PacketType::Sync) => {
                if let Some(session) = self.repl().syncs_out.pop_front() {
                    let effects = self.p.sync_done(session, self.now());
                    self.apply(effects, Some(ctx));
                }
            }
            other => tracing::debug!(from, ?other, "ignoring quorum packet"),
        }
    }

    fn ping_data(&mut self) -> Bytes {
        let mut w = Vec::new();
        for (id, timeout) in self.p.take_touched() {
            w.extend_from_slice(&id.to_be_bytes());
            w.extend_from_slice(&(timeout as i32).to_be_bytes());
        }
        Bytes::from(w)
    }

    fn pinged(&mut self, _from: ServerId, data: &[u8]) {
        let touched: Vec<(i64, u32)> = data
            .chunks_exact(12)
            .map(|c| {
                let id = i64::from_be_bytes(c[..8].try_into().expect("8 bytes"));
                let to = i32::from_be_bytes(c[8..].try_into().expect("4 bytes"));
                (id, to.max(0) as u32)
            })
            .collect();
        let now = self.now();
        if let Some(prep) = self.repl().preparer.as_mut() {
            prep.touch_sessions(&touched, now);
        }
    }

    fn config(&self) -> Option<(Bytes, i64)> {
        self.repl
            .as_ref()
            .map(|r| (r.config_text.clone(), r.config_version))
    }

    fn tick(&mut self, ctx: &mut Ctx) {
        self.repl().info = ctx.info;
        let now = self.now();
        let effects = self.p.tick(now);
        self.apply(effects, Some(ctx));
        if let Some(prep) = self.repl().preparer.as_mut() {
            prep.set_durable(prep.last_zxid());
            let effects = prep.tick(now);
            propose_logs(effects, ctx);
        }
        let log = lock(&self.log).stats();
        self.stats.recorder.log_progress(log);
        if !self.repl().waiting_since.is_empty() {
            self.release_waiting(ctx);
        }
    }
}

/// The storage of a replicated server: the txn log writer and the epoch
/// files of the data dir (see the module doc).
pub struct DiskStorage {
    dir: Arc<DataDir>,
    /// The log writer and the last zxid appended, shared with the node
    /// task's [`DirectLog`] handle (a clone): `sync` waits for that zxid
    /// whichever way it was appended.
    appends: DirectAppends,
    durable: watch::Receiver<i64>,
    force_sync: bool,
    /// Told of every group commit of the current log writer.
    on_durable: Option<DurableHook>,
    initial: Option<PersistentState>,
}

/// The way into the txn log: the disk task's appends and the node task's
/// (see [`Storage::direct_log`]).
#[derive(Clone)]
struct DirectAppends {
    log: SharedLog,
    last_appended: Arc<AtomicI64>,
}

impl DirectLog for DirectAppends {
    fn append(&self, e: &Entry) {
        lock(&self.log).append_payload(e.zxid, e.txn.clone());
        self.last_appended.store(e.zxid, Ordering::Release);
    }
}

impl DiskStorage {
    /// A new log writer after the files were changed under the old one.
    fn restart_log(
        &mut self,
        at: Zxid,
        change: impl FnOnce(&DataDir) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.sync()?;
        let mut guard = lock(&self.appends.log);
        let (new, durable) =
            TxnLog::start(&self.dir, at, self.force_sync).map_err(std::io::Error::other)?;
        if let Some(hook) = &self.on_durable {
            new.set_durable_hook(hook.clone());
        }
        // Dropping the old writer closes its file before the files change.
        drop(std::mem::replace(&mut *guard, new));
        change(&self.dir)?;
        self.durable = durable;
        self.appends.last_appended.store(at, Ordering::Release);
        Ok(())
    }
}

impl Storage for DiskStorage {
    fn load(&mut self) -> std::io::Result<PersistentState> {
        self.initial
            .take()
            .ok_or_else(|| std::io::Error::other("storage loaded twice"))
    }

    fn write(&mut self, op: &PersistOp, snapshot: Option<&[u8]>) -> std::io::Result<()> {
        match op {
            PersistOp::AcceptedEpoch(e) => self
                .dir
                .write_epoch(ACCEPTED_EPOCH_FILE, *e)
                .map_err(std::io::Error::other),
            PersistOp::CurrentEpoch(e) => self
                .dir
                .write_epoch(CURRENT_EPOCH_FILE, *e)
                .map_err(std::io::Error::other),
            PersistOp::Append(e) => {
                self.appends.append(e);
                Ok(())
            }
            PersistOp::Truncate(z) => self.restart_log(*z, |dir| {
                dir.truncate_after(*z).map_err(std::io::Error::other)
            }),
            PersistOp::InstallSnapshot(z) => {
                let bytes =
                    snapshot.ok_or_else(|| std::io::Error::other("no snapshot to install"))?;
                let snap = format::decode_stream_snapshot(bytes).map_err(std::io::Error::other)?;
                self.restart_log(*z, |dir| {
                    dir.write_snapshot(*z, &snap)
                        .and_then(|_| dir.remove_logs())
                        .map_err(std::io::Error::other)
                })
            }
        }
    }

    fn direct_log(&mut self, on_durable: DurableHook) -> Option<Box<dyn DirectLog>> {
        lock(&self.appends.log).set_durable_hook(on_durable.clone());
        self.on_durable = Some(on_durable);
        Some(Box::new(self.appends.clone()))
    }

    fn failure(&self) -> Option<String> {
        lock(&self.appends.log).failure()
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let target = self.appends.last_appended.load(Ordering::Acquire);
        // On the disk task's blocking thread: block until the group commit
        // made everything appended durable (or the writer died).
        let reached = futures::executor::block_on(self.durable.wait_for(|z| *z >= target)).is_ok();
        if !reached {
            let why = lock(&self.appends.log)
                .failure()
                .unwrap_or_else(|| "stopped".into());
            return Err(std::io::Error::other(format!(
                "the txn log writer failed: {why}"
            )));
        }
        Ok(())
    }
}

/// Where the peers listen, from `server.N` lines (host names are resolved
/// at each connect).
fn peers(specs: &[ServerSpec]) -> BTreeMap<ServerId, PeerAddrs> {
    specs
        .iter()
        .map(|s| {
            (
                s.id,
                PeerAddrs {
                    quorum: Endpoint::new(s.host.clone(), s.quorum_port),
                    election: Endpoint::new(s.host.clone(), s.election_port),
                },
            )
        })
        .collect()
}

/// A membership text's voters/observers and their addresses.
fn membership_of(text: &[u8]) -> Option<(Membership, BTreeMap<ServerId, PeerAddrs>, i64)> {
    let (specs, version) = config::parse_membership(&String::from_utf8_lossy(text)).ok()?;
    if specs.is_empty() {
        return None;
    }
    Some((Membership::from_specs(&specs), peers(&specs), version))
}

/// The newest membership a server knows at start-up: its zoo.cfg's, or
/// one a reconfig committed (kept in `/zookeeper/config` of the snapshot,
/// or a reconfig txn logged after it).
fn newest_membership(
    cfg: &Config,
    tree: &crate::tree::DataTree,
    logged: &[LogEntry],
) -> (Vec<ServerSpec>, i64) {
    let mut best = (cfg.servers.clone(), 0i64);
    let mut consider = |data: &[u8]| {
        if let Ok((specs, version)) = config::parse_membership(&String::from_utf8_lossy(data))
            && !specs.is_empty()
            && version > best.1
        {
            best = (specs, version);
        }
    };
    if let Some(n) = tree.get(crate::tree::CONFIG) {
        consider(&n.data);
    }
    for e in logged {
        if let crate::proto::txn::Txn::Reconfig(t) = &e.txn {
            consider(&t.data);
        }
    }
    best
}

/// The client address: from this server's line if it has one, else
/// clientPortAddress/clientPort.
fn client_addr(specs: &[ServerSpec], cfg: &Config, id: u64) -> String {
    let line = specs.iter().find(|s| s.id == id);
    match line.and_then(|s| s.client_port) {
        Some(port) => {
            let host = line
                .and_then(|s| s.client_addr.clone())
                .unwrap_or_else(|| cfg.client_port_address.clone());
            format!("{host}:{port}")
        }
        None => format!("{}:{}", cfg.client_port_address, cfg.client_port),
    }
}

/// Recovers, joins the ensemble, and serves clients until SIGINT/SIGTERM
/// (or until the replication layer stops on a fatal error).
pub async fn serve(cfg: Config, id: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    if !cfg.servers.iter().any(|s| s.id == id) {
        anyhow::bail!("myid is {id} but no server.{id} line names this server");
    }
    let observe = super::admin::start(&cfg).await?;
    let mut dir = DataDir::open(&cfg.data_dir, &cfg.data_log_dir)?;
    let rec = dir.recover()?;
    let snapshot_zxid = rec.snapshot.as_ref().map_or(0, |(z, _)| *z);
    let last_zxid = rec.last_zxid;
    // The tree starts at the snapshot; the logged txns after it are held
    // until the leader says they are committed.
    let held: Vec<Entry> = rec
        .entries
        .iter()
        .filter(|e| e.header.zxid > snapshot_zxid)
        .map(|e| Entry {
            zxid: e.header.zxid,
            txn: Bytes::from(format::encode_payload(e)),
        })
        .collect();
    let (mut tree, sessions) = recovery::rebuild(Recovered {
        snapshot: rec.snapshot,
        entries: Vec::new(),
        last_zxid: snapshot_zxid,
    })?;
    let mut cfg = cfg;
    let (specs, config_version) = newest_membership(&cfg, &tree, &rec.entries);
    // Our own ports: from the membership, or, for a server a reconfig
    // removed and that comes back, from its zoo.cfg line (it rejoins as a
    // non-voting learner until a reconfig adds it again).
    let mine = specs
        .iter()
        .chain(cfg.servers.iter())
        .find(|s| s.id == id)
        .cloned()
        .with_context(|| format!("myid is {id} but the configuration has no server.{id}"))?;
    if config_version > 0 {
        tracing::info!(
            version = format_args!("{config_version:#x}"),
            "using the membership a reconfig committed"
        );
        cfg.servers = specs;
    }
    let mut peer_specs = cfg.servers.clone();
    if !peer_specs.iter().any(|s| s.id == id) {
        tracing::info!(
            id,
            "not a member of the committed configuration: joining as a non-voting learner"
        );
        peer_specs.push(mine);
    }
    let config_text = Bytes::from(cfg.membership_text(config_version));
    tree.set_config(config_text.clone());
    let current = dir.read_epoch(CURRENT_EPOCH_FILE)?;
    let accepted = dir.read_epoch(ACCEPTED_EPOCH_FILE)?;
    let updating = dir.snap_dir().join("updatingEpoch").exists();
    let (current_epoch, accepted_epoch) =
        crate::quorum::zab::recover_epochs(current, accepted, last_zxid, updating)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.snap_dir().display()))?;
    tracing::info!(
        snapshot = format_args!("{snapshot_zxid:#x}"),
        last_logged = format_args!("{last_zxid:#x}"),
        logged_after_snapshot = held.len(),
        current_epoch,
        accepted_epoch,
        "recovered; joining the ensemble"
    );
    let disk_state = PersistentState {
        accepted_epoch,
        current_epoch,
        snapshot_zxid,
        log: held.clone(),
    };
    let mut held = held;
    let (log, durable) = TxnLog::start(&dir, last_zxid, cfg.force_sync)?;
    let log: SharedLog = Arc::new(Mutex::new(log));
    let dir = Arc::new(dir);
    let storage = DiskStorage {
        dir: dir.clone(),
        appends: DirectAppends {
            log: log.clone(),
            last_appended: Arc::new(AtomicI64::new(last_zxid)),
        },
        durable,
        force_sync: cfg.force_sync,
        on_durable: None,
        initial: Some(disk_state),
    };

    let settings = Settings::from_config(&cfg, id.min(255) as u8);
    let mut processor = Processor::new(settings.clone(), tree, &sessions, clock(start));
    processor.set_replica(true);
    processor.set_read_only(cfg.readonly_mode_enabled);
    let membership = Membership::from_specs(&cfg.servers);
    let voters = membership.voters().len();
    let net_cfg = NetConfig {
        node: NodeConfig {
            me: id,
            membership,
            tick_ms: cfg.tick_time as u64,
            init_limit: cfg.init_limit as u64,
            sync_limit: cfg.sync_limit as u64,
            log_window: LOG_WINDOW,
        },
        peers: peers(&peer_specs),
    };
    let observer = cfg
        .servers
        .iter()
        .any(|s| s.id == id && s.role == Role::Observer);

    let addr = client_addr(&peer_specs, &cfg, id);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);

    let stats = Arc::new(super::core::Stats::new());
    let max_buffer = cfg.jute_max_buffer;
    let max_per_ip = cfg.max_client_cnxns;
    let purge_every = Duration::from_secs(cfg.purge_interval_hours as u64 * 3600);
    let retain = cfg.snap_retain_count;
    let read_only_allowed = cfg.readonly_mode_enabled;
    // The tree only holds committed txns: replies may go out at once.
    let (_released_tx, released) = watch::channel(i64::MAX);
    let core = Core {
        p: processor,
        cfg,
        writers: HashMap::new(),
        log,
        dir: dir.clone(),
        start,
        snapshot_busy: Arc::new(AtomicBool::new(false)),
        stats: stats.clone(),
        server_id: id,
        durable: watch::channel(0).1,
        repl: Some(Repl {
            info: NodeInfo {
                me: id,
                status: Status::Looking,
                committed: last_zxid,
                last_logged: last_zxid,
                leader_counts: None,
            },
            settings,
            preparer: None,
            held: std::mem::take(&mut held),
            syncs_out: VecDeque::new(),
            syncs_in: VecDeque::new(),
            leading_since: None,
            looking_since: Some(Instant::now()),
            voters,
            config_text,
            config_version,
            waiting_since: HashMap::new(),
            waiting: VecDeque::new(),
            read_only_allowed,
            // Looking at first: read-only until in a quorum, if allowed.
            read_only: read_only_allowed,
        }),
    };
    let quorum = QuorumServer::start_replica(net_cfg, storage, core)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the quorum ports: {e}"))?;
    tracing::info!(%addr, server_id = id, observer, mode = "replicated", "serving clients");
    let core_tx: mpsc::UnboundedSender<CoreMsg> = quorum.replica_sender();
    observe.attach(core_tx.clone(), stats.clone());

    super::core::spawn_purge(dir.clone(), purge_every, retain);
    let accept =
        super::core::accept_loop(listener, core_tx, released, stats, max_buffer, max_per_ip);
    let stopping = Arc::new(AtomicBool::new(false));
    tokio::select! {
        r = accept => r?,
        _ = quorum.stopped() => {
            if !stopping.load(Ordering::SeqCst) {
                anyhow::bail!("the replication layer stopped (see the errors above)");
            }
        }
        _ = super::core::shutdown_signal() => {
            stopping.store(true, Ordering::SeqCst);
            tracing::info!("shutting down");
        }
    }
    // Stops the node task; dropping the core drops the log handle, which
    // writes and syncs what is queued.
    quorum.kill();
    drop(quorum);
    Ok(())
}
