//! The request processor: the pure heart of a standalone server.
//!
//! It takes what arrives from clients (a connect, a request frame, a closed
//! connection, the passing of time) and returns effects: frames to send,
//! connections to close, transactions to log, snapshots to take. It owns the
//! data tree, the session table and the watches; it never touches a socket,
//! a file or a clock, so it can be driven by tests and simulations directly.
//!
//! Writes are validated against the current tree (as ZooKeeper's
//! PrepRequestProcessor does), turned into a transaction, and applied at
//! once. Nothing applied may be seen before it is durable: every frame
//! carries a `tag`, the zxid that must be on disk before the frame may go
//! out, and the shell holds frames back until then.

pub mod fourlw;
mod reconfig;
pub mod replica;

pub use replica::Submission;

use crate::jute::{Reader, Record, Writer};
use crate::proto::txn::*;
use crate::proto::*;
use crate::session::{self, SessionTable};
use crate::tree::watch::{self, ConnId, Watches};
use crate::tree::{self, Change, DataTree, NodeKind, acl, path};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// What the processor needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server_id: u8,
    pub min_session_timeout: u32,
    pub max_session_timeout: u32,
    pub tick_time: u32,
    pub extended_types: bool,
    pub super_digest: Option<String>,
    pub skip_acl: bool,
    pub reconfig_enabled: bool,
    pub snap_count: u64,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
}

impl Settings {
    pub fn from_config(c: &crate::config::Config, server_id: u8) -> Settings {
        Settings {
            server_id,
            min_session_timeout: c.min_session_timeout,
            max_session_timeout: c.max_session_timeout,
            tick_time: c.tick_time,
            extended_types: c.extended_types_enabled,
            super_digest: c.super_digest.clone(),
            skip_acl: c.skip_acl,
            reconfig_enabled: c.reconfig_enabled,
            snap_count: c.snap_count,
            container_check_interval_ms: c.container_check_interval_ms,
            container_max_per_minute: c.container_max_per_minute,
        }
    }
}

/// Time as the shell reads it: wall clock for transaction times, a
/// monotonic clock for expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub wall_ms: i64,
    pub mono_ms: u64,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `frame` once every transaction up to `tag` is durable.
    Send {
        conn: ConnId,
        tag: i64,
        frame: Vec<u8>,
    },
    /// Close the connection after what was queued before it.
    Close { conn: ConnId, tag: i64 },
    /// Append to the transaction log.
    Log { header: TxnHeader, txn: Txn },
    /// Time for a snapshot: the shell takes one now (see `Processor::tree`).
    Snapshot,
    /// Replicated mode: a write for the leader to prepare and propose; its
    /// reply goes out when the txn commits (see [`replica`]).
    Submit(Submission),
}

/// Per-connection counters, for `cons` and `stat`.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub established_wall_ms: i64,
}

#[derive(Debug, Clone)]
struct Conn {
    /// The highest tag sent on this connection: later frames never carry a
    /// lower one, so replies stay in order and reads never go back in time.
    last_tag: i64,
    session: i64,
    timeout: u32,
    auth: Vec<Id>,
    addr: String,
    stats: ConnStats,
    /// Replicated mode: submitted writes awaiting their commit and the
    /// requests queued behind them, oldest first.
    pending: std::collections::VecDeque<replica::Pending>,
}

/// Server-wide counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub packets_received: u64,
    pub packets_sent: u64,
}

pub struct Processor {
    pub tree: DataTree,
    pub sessions: SessionTable,
    pub watches: Watches,
    conns: BTreeMap<ConnId, Conn>,
    session_conn: HashMap<i64, ConnId>,
    pub settings: Settings,
    pub counters: Counters,
    txns_since_snapshot: u64,
    snapshot_after: u64,
    last_reap_ms: u64,
    /// The highest zxid the shell has told us is durable.
    durable_hint: i64,
    /// path -> zxid of the last transaction that changed what reading the
    /// path returns, for transactions that may not be durable yet. A read
    /// only has to wait for these, not for every write in flight.
    dirty: HashMap<String, i64>,
    /// Set while answering a read: the tag its frames carry.
    read_tag: Option<i64>,
    /// Replicated mode: this processor serves clients from committed txns
    /// only; writes are submitted, never applied here first.
    replica: bool,
    /// The lowest zxid the next txn may have (a new leader's epoch start).
    zxid_floor: i64,
    /// On a leader's preparing processor: who is synced (for reconfig).
    synced: Option<std::collections::BTreeSet<u64>>,
    /// Replicated mode, cut off from the quorum with read-only mode on:
    /// only read-only clients, local sessions, writes refused.
    read_only: bool,
    /// Replicated mode: sessions that saw client activity since the last
    /// [`Processor::take_touched`] (the leader owns expiry).
    touched: HashMap<i64, u32>,
}

type Res<T> = Result<T, ErrorCode>;

fn fail<T>(code: ErrorCode) -> Res<T> {
    Err(code)
}

impl Processor {
    /// A processor over a recovered tree and the sessions it held.
    pub fn new(
        settings: Settings,
        tree: DataTree,
        sessions: &[(i64, i32)],
        now: Clock,
    ) -> Processor {
        let recovered_zxid = tree.last_zxid;
        let first = session::initial_session_id(settings.server_id, now.wall_ms);
        let mut table = SessionTable::new(settings.tick_time, first);
        for (id, timeout) in sessions {
            table.add(*id, (*timeout).max(0) as u32, now.mono_ms);
        }
        let snapshot_after =
            Self::next_snapshot_threshold(settings.snap_count, tree.last_zxid, settings.server_id);
        Processor {
            tree,
            sessions: table,
            watches: Watches::default(),
            conns: BTreeMap::new(),
            session_conn: HashMap::new(),
            settings,
            counters: Counters::default(),
            txns_since_snapshot: 0,
            snapshot_after,
            last_reap_ms: now.mono_ms,
            durable_hint: recovered_zxid,
            dirty: HashMap::new(),
            read_tag: None,
            replica: false,
            zxid_floor: 0,
            synced: None,
            read_only: false,
            touched: HashMap::new(),
        }
    }

    /// ZooKeeper spreads snapshots over [snapCount/2+1, snapCount] so servers
    /// of an ensemble don't all snapshot (and roll their logs) at once. The
    /// servers of an ensemble share every zxid, so the server id goes into
    /// the pick too: with the zxid alone all three chose the same point.
    fn next_snapshot_threshold(snap_count: u64, zxid: i64, server_id: u8) -> u64 {
        let half = (snap_count / 2).max(1);
        let seed = zxid.unsigned_abs() ^ (u64::from(server_id) << 40) ^ u64::from(server_id);
        half + 1 + (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) % half
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// (connection, address, session, stats) for `cons`/`stat`.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &str, i64, u32, &ConnStats)> {
        self.conns
            .iter()
            .map(|(id, c)| (*id, c.addr.as_str(), c.session, c.timeout, &c.stats))
    }

    pub fn reset_connection_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats.received = 0;
            c.stats.sent = 0;
        }
    }

    /// The sessions to store in a snapshot.
    pub fn session_list(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .map(|s| (s.id, s.timeout_ms as i32))
            .collect();
        v.sort();
        v
    }

    // ---- output helpers -------------------------------------------------

    fn reply(
        &mut self,
        out: &mut Vec<Effect>,
        conn: ConnId,
        xid: i32,
        err: ErrorCode,
        body: &Response,
    ) {
        let zxid = self.current_tag();
        let mut frame = Vec::new();
        encode_reply(
            &ReplyHeader {
                xid,
                zxid,
                err: err as i32,
            },
            body,
            &mut frame,
        );
        self.send(out, conn, frame);
    }

    /// The zxid the frame being built must wait for: the whole tree's for
    /// writes and global reads, the read's own paths' for path reads.
    fn current_tag(&self) -> i64 {
        self.read_tag.unwrap_or(self.tree.last_zxid)
    }

    fn send(&mut self, out: &mut Vec<Effect>, conn: ConnId, frame: Vec<u8>) {
        self.counters.packets_sent += 1;
        let mut tag = self.current_tag();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.sent += 1;
            tag = tag.max(c.last_tag);
            c.last_tag = tag;
        }
        out.push(Effect::Send { conn, tag, frame });
    }

    /// Tells the processor how far the log is durable (cheap; call often).
    pub fn set_durable(&mut self, zxid: i64) {
        self.durable_hint = self.durable_hint.max(zxid);
        if self.dirty.len() > 4096 {
            self.prune_dirty();
        }
    }

    fn prune_dirty(&mut self) {
        let durable = self.durable_hint;
        self.dirty.retain(|_, z| *z > durable);
    }

    /// The tag for a read of `paths` by `conn`: after anything the
    /// connection was already sent, and after the last change to those paths.
    fn path_tag(&self, conn: ConnId, paths: &[&str]) -> i64 {
        let mut tag = self
            .conns
            .get(&conn)
            .map_or(0, |c| c.last_tag)
            .max(self.durable_hint);
        for p in paths {
            let p = read_path(p);
            // Quota stats change in place; everything there waits for all.
            if p.starts_with(tree::ZOOKEEPER) {
                return self.tree.last_zxid;
            }
            if let Some(z) = self.dirty.get(p) {
                tag = tag.max(*z);
            }
        }
        tag.min(self.tree.last_zxid)
    }

    fn mark_dirty(&mut self, changes: &[Change], txn: &Txn, zxid: i64) {
        let mut mark = |p: &str| {
            self.dirty.insert(p.to_string(), zxid);
        };
        for ch in changes {
            match ch {
                Change::Created(p) | Change::Deleted(p) => {
                    mark(p);
                    mark(path::parent(p));
                }
                Change::DataChanged(p) => mark(p),
            }
        }
        if let Txn::SetAcl(t) = txn {
            mark(&t.path);
        }
    }

    fn notify(&mut self, out: &mut Vec<Effect>, conn: ConnId, event_type: i32, path: &str) {
        let mut frame = Vec::new();
        frame.write_i32(0);
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: self.current_tag(),
            err: 0,
        }
        .write(&mut frame);
        WatcherEvent {
            event_type,
            state: keeper_state::SYNC_CONNECTED,
            path: path.to_string(),
        }
        .write(&mut frame);
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.send(out, conn, frame);
    }

    fn fire(&mut self, out: &mut Vec<Effect>, changes: &[Change]) {
        for ch in changes {
            for n in self.watches.on_change(ch) {
                self.notify(out, n.conn, n.event_type, &n.path);
            }
        }
    }

    fn close(&mut self, out: &mut Vec<Effect>, conn: ConnId) {
        out.push(Effect::Close {
            conn,
            tag: self.tree.last_zxid,
        });
    }

    // ---- connections ----------------------------------------------------

    /// A new connection's first frame (a ConnectRequest).
    pub fn connect(&mut self, conn: ConnId, addr: &str, frame: &[u8], now: Clock) -> Vec<Effect> {
        let mut out = Vec::new();
        let Ok(req) = ConnectRequest::decode(frame) else {
            tracing::info!(conn, addr, "malformed connect request; closing");
            self.close(&mut out, conn);
            return out;
        };
        if self.read_only && !req.read_only {
            tracing::info!(
                addr,
                "refusing a read-write client: this server is read-only (cut off from the quorum)"
            );
            self.close(&mut out, conn);
            return out;
        }
        if req.last_zxid_seen > self.tree.last_zxid {
            tracing::info!(
                addr,
                "refusing session: client has seen zxid {:#x}, ours is {:#x}; it must try another server",
                req.last_zxid_seen,
                self.tree.last_zxid
            );
            self.close(&mut out, conn);
            return out;
        }
        let timeout = (req.time_out.max(0) as u32).clamp(
            self.settings.min_session_timeout,
            self.settings.max_session_timeout,
        );
        let ip = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(addr)
            .to_string();
        let stats = ConnStats {
            established_wall_ms: now.wall_ms,
            received: 1,
            ..Default::default()
        };
        self.counters.packets_received += 1;
        let mut c = Conn {
            last_tag: 0,
            session: 0,
            timeout,
            auth: vec![Id {
                scheme: "ip".into(),
                id: ip,
            }],
            addr: addr.to_string(),
            stats,
            pending: Default::default(),
        };
        if req.session_id != 0 {
            // ZooKeeper drops the session's current connection as soon as a
            // reconnect for it arrives, before checking the password.
            if let Some(old) = self.session_conn.remove(&req.session_id)
                && old != conn
            {
                if let Some(oc) = self.conns.get_mut(&old) {
                    oc.session = 0;
                }
                self.close(&mut out, old);
            }
            let valid = req.passwd.as_ref() == session::password(req.session_id)
                && self.sessions.touch(req.session_id, now.mono_ms);
            if !valid {
                // Expired or wrong password: ZooKeeper answers with timeout 0.
                self.conns.insert(conn, c);
                let resp = ConnectResponse {
                    protocol_version: 0,
                    time_out: 0,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0u8; 16]),
                    read_only: false,
                };
                let mut frame = Vec::new();
                encode_framed(&resp, &mut frame);
                self.send(&mut out, conn, frame);
                self.close(&mut out, conn);
                return out;
            }
            c.session = req.session_id;
            let old_timeout = self.sessions.get(req.session_id).map(|s| s.timeout_ms);
            c.timeout = old_timeout.unwrap_or(timeout);
            self.session_conn.insert(req.session_id, conn);
        } else if self.read_only {
            // A local session: nothing is replicated while cut off.
            let id = self.sessions.next_id();
            c.session = id;
            self.sessions.add(id, timeout, now.mono_ms);
            self.session_conn.insert(id, conn);
        } else if self.replica {
            // The session exists once its createSession txn commits; the
            // connect response goes out then.
            let id = self.sessions.next_id();
            c.session = id;
            c.pending.push_back(replica::Pending::Connect);
            self.conns.insert(conn, c);
            self.session_conn.insert(id, conn);
            out.push(Effect::Submit(Submission {
                session: id,
                cxid: 0,
                op: OpCode::CreateSession as i32,
                body: Bytes::copy_from_slice(&(timeout as i32).to_be_bytes()),
                auth: Vec::new(),
            }));
            return out;
        } else {
            let id = self.sessions.next_id();
            c.session = id;
            self.sessions.add(id, timeout, now.mono_ms);
            self.session_conn.insert(id, conn);
            let hdr = self.next_header(id, 0, OpCode::CreateSession, now);
            self.commit(
                &mut out,
                hdr,
                Txn::CreateSession(CreateSessionTxn {
                    time_out: timeout as i32,
                }),
            );
        }
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: c.timeout as i32,
            session_id: c.session,
            passwd: Bytes::copy_from_slice(&session::password(c.session)),
            read_only: self.read_only,
        };
        self.conns.insert(conn, c);
        let mut frame = Vec::new();
        encode_framed(&resp, &mut frame);
        self.send(&mut out, conn, frame);
        out
    }

    /// The connection went away (client closed, network, or we closed it).
    pub fn disconnected(&mut self, conn: ConnId) {
        self.watches.remove_conn(conn);
        if let Some(c) = self.conns.remove(&conn)
            && self.session_conn.get(&c.session) == Some(&conn)
        {
            self.session_conn.remove(&c.session);
        }
    }

    // ---- transactions ---------------------------------------------------

    fn next_header(&self, session: i64, cxid: i32, op: OpCode, now: Clock) -> TxnHeader {
        TxnHeader {
            client_id: session,
            cxid,
            zxid: (self.tree.last_zxid + 1).max(self.zxid_floor),
            time: now.wall_ms,
            txn_type: op as i32,
        }
    }

    /// Applies a transaction, logs it, fires its watches.
    fn commit(&mut self, out: &mut Vec<Effect>, header: TxnHeader, txn: Txn) -> tree::Applied {
        let mut changes = Vec::new();
        let applied = self.tree.apply(&header, &txn, &mut changes);
        self.mark_dirty(&changes, &txn, header.zxid);
        if let Txn::CloseSession(_) = &txn {
            self.sessions.remove(header.client_id);
        }
        out.push(Effect::Log { header, txn });
        self.fire(out, &changes);
        self.count_txn(out);
        applied
    }

    /// Counts a txn towards the next snapshot.
    fn count_txn(&mut self, out: &mut Vec<Effect>) {
        self.txns_since_snapshot += 1;
        if self.txns_since_snapshot >= self.snapshot_after {
            self.txns_since_snapshot = 0;
            self.snapshot_after = Self::next_snapshot_threshold(
                self.settings.snap_count,
                self.tree.last_zxid,
                self.settings.server_id,
            );
            out.push(Effect::Snapshot);
        }
    }

    // ---- requests -------------------------------------------------------

    /// One request frame (header + body) from an established connection.
    pub fn request(&mut self, conn: ConnId, frame: &[u8], now: Clock) -> Vec<Effect> {
        if self.replica {
            return self.replica_request(conn, frame, now);
        }
        let mut out = Vec::new();
        if let Some((session, h, req)) = self.admit(&mut out, conn, frame, now) {
            self.dispatch(&mut out, conn, session, h.xid, req, now);
            self.note_last_zxid(conn);
        }
        out
    }

    /// What every request goes through first, standalone or replicated:
    /// counters, the header, a live session, the body. Answers and returns
    /// None when the request goes no further (ZooKeeper's answers: session
    /// expired, Unimplemented then close for an unknown type,
    /// MarshallingError for a body that does not decode).
    fn admit(
        &mut self,
        out: &mut Vec<Effect>,
        conn: ConnId,
        frame: &[u8],
        now: Clock,
    ) -> Option<(i64, RequestHeader, Request)> {
        let c = self.conns.get_mut(&conn)?;
        c.stats.received += 1;
        self.counters.packets_received += 1;
        let session = c.session;
        let mut r = Reader::new(frame);
        let Ok(h) = RequestHeader::read(&mut r) else {
            tracing::info!(conn, "malformed request header; closing connection");
            self.close(out, conn);
            return None;
        };
        if session == 0 || !self.sessions.touch(session, now.mono_ms) {
            // The session is gone (expired or closing): the client must learn it.
            self.reply(
                out,
                conn,
                h.xid,
                ErrorCode::SessionExpired,
                &Response::Empty,
            );
            self.close(out, conn);
            return None;
        }
        let req = match Request::decode(h.op, &mut r) {
            Ok(Some(req)) => req,
            Ok(None) => {
                // As ZooKeeper: answer Unimplemented, then drop the connection.
                tracing::warn!(
                    conn,
                    op = h.op,
                    "request of unknown type; closing connection"
                );
                self.reply(out, conn, h.xid, ErrorCode::Unimplemented, &Response::Empty);
                self.close(out, conn);
                return None;
            }
            Err(e) => {
                // As ZooKeeper: a body that does not decode is answered with
                // MarshallingError; the connection stays usable.
                tracing::info!(conn, op = h.op, error = %e, "malformed request");
                self.reply(
                    out,
                    conn,
                    h.xid,
                    ErrorCode::MarshallingError,
                    &Response::Empty,
                );
                return None;
            }
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.last_op = op_name(h.op);
            c.stats.last_cxid = h.xid;
        }
        Some((session, h, req))
    }

    /// For `cons`: the zxid the connection last saw.
    fn note_last_zxid(&mut self, conn: ConnId) {
        let last = self.tree.last_zxid;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.last_zxid = last;
        }
    }

    fn auth_of(&self, conn: ConnId) -> Vec<Id> {
        self.conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default()
    }

    fn dispatch(
        &mut self,
        out: &mut Vec<Effect>,
        conn: ConnId,
        session: i64,
        xid: i32,
        req: Request,
        now: Clock,
    ) {
        // Reads of particular paths wait only for those paths' changes;
        // writes and whole-tree reads (sync, setWatches, counts) wait for all.
        let paths: Option<Vec<&str>> = match &req {
            Request::Exists(r) => Some(vec![&r.path]),
            Request::GetData(r) => Some(vec![&r.path]),
            Request::GetChildren(r) => Some(vec![&r.path]),
            Request::GetChildren2(r) => Some(vec![&r.path]),
            Request::GetAcl(r) => Some(vec![&r.path]),
            Request::MultiRead(ops) => Some(
                ops.iter()
                    .map(|op| match op {
                        MultiOp::GetData(g) => g.path.as_str(),
                        MultiOp::GetChildren(g) => g.path.as_str(),
                        _ => "/zookeeper",
                    })
                    .collect(),
            ),
            Request::Ping
            | Request::WhoAmI
            | Request::Auth(_)
            | Request::AddWatch(_)
            | Request::CheckWatches(_)
            | Request::RemoveWatches(_) => Some(Vec::new()),
            _ => None,
        };
        self.read_tag = paths.map(|p| self.path_tag(conn, &p));
        self.dispatch_inner(out, conn, session, xid, req, now);
        self.read_tag = None;
    }

    fn dispatch_inner(
        &mut self,
        out: &mut Vec<Effect>,
        conn: ConnId,
        session: i64,
        xid: i32,
        req: Request,
        now: Clock,
    ) {
        let auth = self.auth_of(conn);
        match req {
            Request::Ping => self.reply(out, conn, xid::PING, ErrorCode::Ok, &Response::Empty),
            Request::Auth(a) => self.authenticate(out, conn, xid, a),
            Request::SetWatches(w) => {
                self.set_watches(out, conn, w);
                self.reply(out, conn, xid, ErrorCode::Ok, &Response::Empty);
            }
            Request::CloseSession => {
                let hdr = self.next_header(session, xid, OpCode::CloseSession, now);
                let paths = self.tree.ephemerals_of(session);
                self.sessions.set_closing(session);
                self.commit(
                    out,
                    hdr,
                    Txn::CloseSession(CloseSessionTxn {
                        paths_to_delete: paths,
                    }),
                );
                self.session_conn.remove(&session);
                self.reply(out, conn, xid, ErrorCode::Ok, &Response::Empty);
                self.close(out, conn);
            }
            Request::Sasl(_) => {
                self.reply(out, conn, xid, ErrorCode::AuthFailed, &Response::Empty);
                self.close(out, conn);
            }
            Request::Sync(s) => self.reply(out, conn, xid, ErrorCode::Ok, &Response::Sync(s.path)),
            Request::Exists(e) => {
                let res = self.exists(conn, &auth, &e.path, e.watch);
                self.answer(out, conn, xid, res.map(Response::Stat));
            }
            Request::GetData(g) => {
                let res = self
                    .get_data(conn, &auth, &g.path, g.watch)
                    .map(|(d, s)| Response::Data(d, s));
                self.answer(out, conn, xid, res);
            }
            Request::GetChildren(g) => {
                let res = self
                    .get_children(conn, &auth, &g.path, g.watch)
                    .map(|(c, _)| Response::Children(c));
                self.answer(out, conn, xid, res);
            }
            Request::GetChildren2(g) => {
                let res = self
                    .get_children(conn, &auth, &g.path, g.watch)
                    .map(|(c, s)| Response::Children2(c, s));
                self.answer(out, conn, xid, res);
            }
            Request::GetAcl(g) => {
                let res = self.get_acl(&auth, &g.path);
                self.answer(out, conn, xid, res);
            }
            Request::GetAllChildrenNumber(g) => {
                let res = self
                    .node_for_read(&auth, &g.path)
                    .map(|_| Response::Number(self.tree.all_children_number(&g.path)));
                self.answer(out, conn, xid, res);
            }
            Request::GetEphemerals(g) => {
                let prefix = g.prefix_path.trim();
                let mut paths = self.tree.ephemerals_of(session);
                if !(prefix.is_empty() || prefix == "/") {
                    paths.retain(|p| p.starts_with(prefix));
                }
                self.reply(out, conn, xid, ErrorCode::Ok, &Response::Paths(paths));
            }
            Request::WhoAmI => {
                let infos = auth
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: acl::user_name(id),
                    })
                    .collect();
                self.reply(out, conn, xid, ErrorCode::Ok, &Response::WhoAmI(infos));
            }
            Request::AddWatch(a) => {
                let res = match a.mode {
                    0 | 1 if path::validate(&a.path).is_ok() => {
                        self.watches.add_persistent(&a.path, conn, a.mode == 1);
                        // ZooKeeper answers addWatch with an ErrorResponse body
                        // (err 0), and the Java client reads it.
                        Ok(Response::Number(0))
                    }
                    _ => Err(ErrorCode::BadArguments),
                };
                self.answer(out, conn, xid, res);
            }
            Request::CheckWatches(w) => {
                let found = self.watch_op(conn, &w.path, w.watcher_type, false);
                self.answer(out, conn, xid, found.map(|_| Response::Empty));
            }
            Request::RemoveWatches(w) => {
                let found = self.watch_op(conn, &w.path, w.watcher_type, true);
                self.answer(out, conn, xid, found.map(|_| Response::Empty));
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    let r = match op {
                        MultiOp::GetData(g) => self
                            .get_data(conn, &auth, &g.path, g.watch)
                            .map(|(d, s)| MultiResult::GetData(d, s)),
                        MultiOp::GetChildren(g) => self
                            .get_children(conn, &auth, &g.path, g.watch)
                            .map(|(c, _)| MultiResult::GetChildren(c)),
                        _ => Err(ErrorCode::BadArguments),
                    };
                    results.push(r.unwrap_or_else(MultiResult::Error));
                }
                self.reply(out, conn, xid, ErrorCode::Ok, &Response::Multi(results));
            }
            write => self.write(out, conn, session, xid, &auth, write, now),
        }
    }

    fn answer(&mut self, out: &mut Vec<Effect>, conn: ConnId, xid: i32, res: Res<Response>) {
        match res {
            Ok(body) => self.reply(out, conn, xid, ErrorCode::Ok, &body),
            Err(e) => self.reply(out, conn, xid, e, &Response::Empty),
        }
    }

    fn authenticate(&mut self, out: &mut Vec<Effect>, conn: ConnId, xid: i32, a: AuthPacket) {
        let ids = match a.scheme.as_str() {
            "digest" => match std::str::from_utf8(&a.auth) {
                Ok(up) => {
                    let d = acl::digest(up);
                    let mut ids = Vec::new();
                    if self.settings.super_digest.as_deref() == Some(d.as_str()) {
                        ids.push(Id {
                            scheme: "super".into(),
                            id: String::new(),
                        });
                    }
                    ids.push(Id {
                        scheme: "digest".into(),
                        id: d,
                    });
                    Some(ids)
                }
                Err(_) => None,
            },
            "ip" => Some(Vec::new()),
            _ => None,
        };
        match ids {
            Some(ids) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    for id in ids {
                        if !c.auth.contains(&id) {
                            c.auth.push(id);
                        }
                    }
                }
                self.reply_zxid0(out, conn, xid, ErrorCode::Ok);
            }
            None => {
                tracing::warn!(conn, scheme = %a.scheme, "authentication failed");
                self.reply_zxid0(out, conn, xid, ErrorCode::AuthFailed);
                self.close(out, conn);
            }
        }
    }

    /// Auth replies carry zxid 0, as ZooKeeper's do.
    fn reply_zxid0(&mut self, out: &mut Vec<Effect>, conn: ConnId, xid: i32, err: ErrorCode) {
        let mut frame = Vec::new();
        encode_reply(
            &ReplyHeader {
                xid,
                zxid: 0,
                err: err as i32,
            },
            &Response::Empty,
            &mut frame,
        );
        self.send(out, conn, frame);
    }

    fn set_watches(&mut self, out: &mut Vec<Effect>, conn: ConnId, w: SetWatches2) {
        use event_type::*;
        let rel = w.relative_zxid;
        for p in &w.data_watches {
            match self.tree.get(p) {
                None => self.notify(out, conn, NODE_DELETED, p),
                Some(n) if n.stat.mzxid > rel => self.notify(out, conn, NODE_DATA_CHANGED, p),
                Some(_) => self.watches.data.add(p, conn, watch::STANDARD),
            }
        }
        for p in &w.exist_watches {
            if self.tree.get(p).is_some() {
                self.notify(out, conn, NODE_CREATED, p);
            } else {
                self.watches.data.add(p, conn, watch::STANDARD);
            }
        }
        for p in &w.child_watches {
            match self.tree.get(p) {
                None => self.notify(out, conn, NODE_DELETED, p),
                Some(n) if n.stat.pzxid > rel => self.notify(out, conn, NODE_CHILDREN_CHANGED, p),
                Some(_) => self.watches.child.add(p, conn, watch::STANDARD),
            }
        }
        for p in &w.persistent_watches {
            self.watches.add_persistent(p, conn, false);
        }
        for p in &w.persistent_recursive_watches {
            self.watches.add_persistent(p, conn, true);
        }
    }

    /// checkWatches / removeWatches. Types: 1 children, 2 data, 3 any,
    /// 4 persistent, 5 persistent recursive.
    fn watch_op(&mut self, conn: ConnId, p: &str, kind: i32, remove: bool) -> Res<()> {
        use watch::{PERSISTENT, RECURSIVE, STANDARD};
        let (child_mask, data_mask) = match kind {
            1 => (STANDARD | PERSISTENT, 0),
            2 => (0, STANDARD | PERSISTENT | RECURSIVE),
            3 => (
                STANDARD | PERSISTENT | RECURSIVE,
                STANDARD | PERSISTENT | RECURSIVE,
            ),
            4 => (PERSISTENT, PERSISTENT),
            5 => (RECURSIVE, RECURSIVE),
            _ => return fail(ErrorCode::BadArguments),
        };
        let found = if remove {
            let a = child_mask != 0 && self.watches.child.remove(p, conn, child_mask);
            let b = data_mask != 0 && self.watches.data.remove(p, conn, data_mask);
            a || b
        } else {
            (child_mask != 0 && self.watches.child.contains(p, conn, child_mask))
                || (data_mask != 0 && self.watches.data.contains(p, conn, data_mask))
        };
        if found {
            Ok(())
        } else {
            fail(ErrorCode::NoWatcher)
        }
    }

    // ---- reads ----------------------------------------------------------

    fn node_for_read(&self, auth: &[Id], p: &str) -> Res<&tree::Node> {
        let n = self.tree.get(read_path(p)).ok_or(ErrorCode::NoNode)?;
        if !acl::allowed(&self.tree.acl_of(n), perms::READ, auth) {
            return fail(ErrorCode::NoAuth);
        }
        Ok(n)
    }

    fn exists(&mut self, conn: ConnId, auth: &[Id], p: &str, watch: bool) -> Res<Stat> {
        if p.contains('\0') {
            return fail(ErrorCode::BadArguments);
        }
        let p = read_path(p);
        if let Some(n) = self.tree.get(p)
            && !acl::allowed(&self.tree.acl_of(n), perms::READ, auth)
        {
            return fail(ErrorCode::NoAuth);
        }
        if watch {
            self.watches.data.add(p, conn, watch::STANDARD);
        }
        self.tree.stat(p).ok_or(ErrorCode::NoNode)
    }

    fn get_data(&mut self, conn: ConnId, auth: &[Id], p: &str, watch: bool) -> Res<(Bytes, Stat)> {
        let n = self.node_for_read(auth, p)?;
        let r = (n.data.clone(), n.stat());
        let p = read_path(p);
        if watch {
            self.watches.data.add(p, conn, watch::STANDARD);
        }
        Ok(r)
    }

    fn get_children(
        &mut self,
        conn: ConnId,
        auth: &[Id],
        p: &str,
        watch: bool,
    ) -> Res<(Vec<String>, Stat)> {
        let n = self.node_for_read(auth, p)?;
        let r = (n.children.iter().cloned().collect(), n.stat());
        let p = read_path(p);
        if watch {
            self.watches.child.add(p, conn, watch::STANDARD);
        }
        Ok(r)
    }

    fn get_acl(&self, auth: &[Id], p: &str) -> Res<Response> {
        let n = self.tree.get(read_path(p)).ok_or(ErrorCode::NoNode)?;
        let list = self.tree.acl_of(n);
        if !acl::allowed(&list, perms::READ | perms::ADMIN, auth) {
            return fail(ErrorCode::NoAuth);
        }
        let shown = if acl::allowed(&list, perms::ADMIN, auth) {
            list
        } else {
            acl::mask_digests(list)
        };
        Ok(Response::Acl(shown, n.stat()))
    }

    // ---- writes ---------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        out: &mut Vec<Effect>,
        conn: ConnId,
        session: i64,
        xid: i32,
        auth: &[Id],
        req: Request,
        now: Clock,
    ) {
        let op = match &req {
            Request::Create(op, _) => *op,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::SetData(_) => OpCode::SetData,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Reconfig(_) => OpCode::Reconfig,
            _ => OpCode::Error,
        };
        let hdr = self.next_header(session, xid, op, now);
        let prepared: Res<Txn> = match &req {
            Request::Create(op, c) => self.prep_op(auth, &MultiOpRef::Create(*op, c)),
            Request::CreateTtl(c) => self.prep_op(auth, &MultiOpRef::CreateTtl(c)),
            Request::Delete(d) => self.prep_op(auth, &MultiOpRef::Delete(d)),
            Request::SetData(d) => self.prep_op(auth, &MultiOpRef::SetData(d)),
            Request::SetAcl(d) => self.prep_set_acl(auth, &d.path, &d.acl, d.version),
            Request::Check(c) => self.prep_op(auth, &MultiOpRef::Check(c)),
            Request::Reconfig(r) => self.prep_reconfig(auth, r, hdr.zxid),
            Request::Multi(ops) => Ok(self.prep_multi(&hdr, auth, ops)),
            _ => fail(ErrorCode::Unimplemented),
        };
        match prepared {
            Err(e) => {
                let mut h = hdr;
                h.txn_type = OpCode::Error as i32;
                self.commit(out, h, Txn::error(e));
                self.reply(out, conn, xid, e, &Response::Empty);
            }
            Ok(txn) => {
                let mut h = hdr;
                h.txn_type = txn.op() as i32;
                let config = match &txn {
                    Txn::Reconfig(t) => Some(t.data.clone()),
                    _ => None,
                };
                let applied = self.commit(out, h, txn);
                match write_result(op, applied, config) {
                    Ok(body) => self.reply(out, conn, xid, ErrorCode::Ok, &body),
                    Err(e) => {
                        // Prep said yes and apply said no: cannot happen with a
                        // single writer, but never answer with a lie.
                        tracing::error!(?e, "transaction failed after validation");
                        self.reply(out, conn, xid, e, &Response::Empty);
                    }
                }
            }
        }
    }

    fn require(&self, auth: &[Id], node: &tree::Node, perm: i32) -> Res<()> {
        if self.settings.skip_acl || acl::allowed(&self.tree.acl_of(node), perm, auth) {
            Ok(())
        } else {
            fail(ErrorCode::NoAuth)
        }
    }

    fn valid_path(p: &str) -> Res<()> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)
    }

    fn check_version(current: i32, expected: i32) -> Res<i32> {
        if expected != -1 && expected != current {
            return fail(ErrorCode::BadVersion);
        }
        Ok(current.wrapping_add(1))
    }

    #[allow(clippy::too_many_arguments)]
    fn prep_create(
        &self,
        op: OpCode,
        auth: &[Id],
        p: &str,
        data: &Bytes,
        acl_in: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Res<Txn> {
        let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl && !self.settings.extended_types {
            return fail(ErrorCode::Unimplemented);
        }
        if mode.ttl {
            if ttl <= 0 || ttl > tree::MAX_TTL {
                return fail(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 {
            return fail(ErrorCode::BadArguments);
        }
        let Some(slash) = p.rfind('/') else {
            return fail(ErrorCode::BadArguments);
        };
        if p.contains('\0') {
            return fail(ErrorCode::BadArguments);
        }
        let parent_path = if slash == 0 { "/" } else { &p[..slash] };
        let acl_list = acl::fixup(acl_in, auth).ok_or(ErrorCode::InvalidAcl)?;
        let parent = self.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
        self.require(auth, parent, perms::CREATE)?;
        let cversion = parent.stat.cversion;
        let full = if mode.sequential {
            format!("{p}{cversion:010}")
        } else {
            p.to_string()
        };
        Self::valid_path(&full)?;
        if full == "/" || self.tree.get(&full).is_some() {
            return fail(ErrorCode::NodeExists);
        }
        if matches!(
            NodeKind::of(parent.stat.ephemeral_owner),
            NodeKind::Ephemeral(_)
        ) {
            return fail(ErrorCode::NoChildrenForEphemerals);
        }
        let parent_cversion = cversion.wrapping_add(1);
        Ok(if op == OpCode::CreateContainer || mode.container {
            Txn::CreateContainer(CreateContainerTxn {
                path: full,
                data: data.clone(),
                acl: acl_list,
                parent_cversion,
            })
        } else if mode.ttl {
            Txn::CreateTtl(CreateTtlTxn {
                path: full,
                data: data.clone(),
                acl: acl_list,
                parent_cversion,
                ttl,
            })
        } else {
            Txn::Create(
                if op == OpCode::CreateTtl {
                    OpCode::Create2
                } else {
                    op
                },
                CreateTxn {
                    path: full,
                    data: data.clone(),
                    acl: acl_list,
                    ephemeral: mode.ephemeral,
                    parent_cversion,
                },
            )
        })
    }

    /// Validates one write that may stand alone or inside a multi.
    fn prep_op(&self, auth: &[Id], op: &MultiOpRef<'_>) -> Res<Txn> {
        match *op {
            MultiOpRef::Create(o, c) => {
                self.prep_create(o, auth, &c.path, &c.data, &c.acl, c.flags, -1)
            }
            MultiOpRef::CreateTtl(c) => self.prep_create(
                OpCode::CreateTtl,
                auth,
                &c.path,
                &c.data,
                &c.acl,
                c.flags,
                c.ttl,
            ),
            MultiOpRef::Delete(d) => self.prep_delete(auth, &d.path, d.version),
            MultiOpRef::SetData(d) => self.prep_set_data(auth, &d.path, &d.data, d.version),
            MultiOpRef::Check(c) => self.prep_check(auth, &c.path, c.version),
        }
    }

    fn prep_delete(&self, auth: &[Id], p: &str, version: i32) -> Res<Txn> {
        let Some(slash) = p.rfind('/') else {
            return fail(ErrorCode::BadArguments);
        };
        if p.contains('\0') || tree::is_special(p) {
            return fail(ErrorCode::BadArguments);
        }
        let parent_path = if slash == 0 { "/" } else { &p[..slash] };
        let parent = self.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
        self.require(auth, parent, perms::DELETE)?;
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        Self::check_version(node.stat.version, version)?;
        if !node.children.is_empty() {
            return fail(ErrorCode::NotEmpty);
        }
        Ok(Txn::Delete(
            OpCode::Delete,
            DeleteTxn {
                path: p.to_string(),
            },
        ))
    }

    fn prep_set_data(&self, auth: &[Id], p: &str, data: &Bytes, version: i32) -> Res<Txn> {
        Self::valid_path(p)?;
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        self.require(auth, node, perms::WRITE)?;
        let version = Self::check_version(node.stat.version, version)?;
        Ok(Txn::SetData(SetDataTxn {
            path: p.to_string(),
            data: data.clone(),
            version,
        }))
    }

    fn prep_set_acl(&self, auth: &[Id], p: &str, acl_in: &[Acl], version: i32) -> Res<Txn> {
        Self::valid_path(p)?;
        let acl_list = acl::fixup(acl_in, auth).ok_or(ErrorCode::InvalidAcl)?;
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        self.require(auth, node, perms::ADMIN)?;
        let version = Self::check_version(node.stat.aversion, version)?;
        Ok(Txn::SetAcl(SetAclTxn {
            path: p.to_string(),
            acl: acl_list,
            version,
        }))
    }

    fn prep_check(&self, auth: &[Id], p: &str, version: i32) -> Res<Txn> {
        Self::valid_path(p)?;
        let node = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        self.require(auth, node, perms::READ)?;
        let version = Self::check_version(node.stat.version, version)?;
        Ok(Txn::Check(CheckVersionTxn {
            path: p.to_string(),
            version,
        }))
    }

    /// Validates a multi op by op, each against the tree as the ops before
    /// it left it (applied speculatively, then undone), as ZooKeeper does
    /// with its outstanding changes. The result is the transaction to log:
    /// the real ops, or, on a failure, the ops up to the failing one and
    /// error markers after it.
    fn prep_multi(&mut self, hdr: &TxnHeader, auth: &[Id], ops: &[MultiOp]) -> Txn {
        let mut txns = Vec::with_capacity(ops.len());
        let mut undos = Vec::new();
        let mut failed = false;
        let mut scratch = Vec::new();
        for op in ops {
            if failed {
                txns.push(Txn::error(ErrorCode::RuntimeInconsistency));
                continue;
            }
            let prepared = match MultiOpRef::of(op) {
                Some(w) => self.prep_op(auth, &w),
                None => fail(ErrorCode::BadArguments),
            };
            match prepared {
                Ok(txn) => {
                    match self.speculate(hdr, &txn, &mut scratch) {
                        Ok(u) => undos.push(u),
                        Err(e) => {
                            failed = true;
                            txns.push(Txn::error(e));
                            continue;
                        }
                    }
                    txns.push(txn);
                }
                Err(e) => {
                    failed = true;
                    txns.push(Txn::error(e));
                }
            }
        }
        for u in undos.into_iter().rev() {
            self.tree.undo(u);
        }
        Txn::Multi(txns)
    }

    fn speculate(&mut self, hdr: &TxnHeader, txn: &Txn, ch: &mut Vec<Change>) -> Res<tree::Undo> {
        let (z, t) = (hdr.zxid, hdr.time);
        match txn {
            Txn::Create(_, c) => {
                let owner = if c.ephemeral { hdr.client_id } else { 0 };
                self.tree
                    .create_node(
                        &c.path,
                        c.data.clone(),
                        &c.acl,
                        owner,
                        c.parent_cversion,
                        z,
                        t,
                        ch,
                    )
                    .map(|(_, u)| u)
            }
            Txn::CreateContainer(c) => self
                .tree
                .create_node(
                    &c.path,
                    c.data.clone(),
                    &c.acl,
                    tree::CONTAINER_OWNER,
                    c.parent_cversion,
                    z,
                    t,
                    ch,
                )
                .map(|(_, u)| u),
            Txn::CreateTtl(c) => self
                .tree
                .create_node(
                    &c.path,
                    c.data.clone(),
                    &c.acl,
                    NodeKind::ttl_owner(c.ttl),
                    c.parent_cversion,
                    z,
                    t,
                    ch,
                )
                .map(|(_, u)| u),
            Txn::Delete(_, d) => self.tree.delete_node(&d.path, z, ch),
            Txn::SetData(s) => self
                .tree
                .set_data(&s.path, s.data.clone(), s.version, z, t, ch)
                .map(|(_, u)| u),
            _ => Ok(tree::Undo::Nothing),
        }
    }

    // ---- time -----------------------------------------------------------

    /// Expires sessions and reaps empty containers and expired TTL nodes.
    pub fn tick(&mut self, now: Clock) -> Vec<Effect> {
        let mut out = Vec::new();
        self.prune_dirty();
        if self.replica {
            // Expiry and reaping are the leader's (its preparing processor).
            return out;
        }
        for id in self.sessions.expired(now.mono_ms) {
            tracing::info!("expiring session 0x{:x}", id);
            let hdr = self.next_header(id, 0, OpCode::CloseSession, now);
            let paths = self.tree.ephemerals_of(id);
            self.commit(
                &mut out,
                hdr,
                Txn::CloseSession(CloseSessionTxn {
                    paths_to_delete: paths,
                }),
            );
            if let Some(conn) = self.session_conn.remove(&id) {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = 0;
                }
                self.close(&mut out, conn);
            }
        }
        let interval = self.settings.container_check_interval_ms.max(1);
        if now.mono_ms.saturating_sub(self.last_reap_ms) >= interval {
            self.last_reap_ms = now.mono_ms;
            let budget = ((self.settings.container_max_per_minute as u64 * interval) / 60_000)
                .max(1) as usize;
            for p in self.reapable(now.wall_ms).into_iter().take(budget) {
                let hdr = self.next_header(0, 0, OpCode::DeleteContainer, now);
                self.commit(
                    &mut out,
                    hdr,
                    Txn::Delete(OpCode::DeleteContainer, DeleteTxn { path: p }),
                );
            }
        }
        out
    }

    /// Containers that had children and have none now; TTL nodes with no
    /// children whose TTL has passed since their last change.
    fn reapable(&self, wall_ms: i64) -> Vec<String> {
        let mut v = Vec::new();
        for p in self.tree.containers() {
            if let Some(n) = self.tree.get(p)
                && n.stat.cversion > 0
                && n.children.is_empty()
            {
                v.push(p.clone());
            }
        }
        for p in self.tree.ttls() {
            if let Some(n) = self.tree.get(p)
                && let NodeKind::Ttl(ttl) = NodeKind::of(n.stat.ephemeral_owner)
                && n.children.is_empty()
                && ttl != 0
                && wall_ms - n.stat.mtime > ttl
            {
                v.push(p.clone());
            }
        }
        v
    }
}

/// A write, borrowed from a request or from a multi.
enum MultiOpRef<'a> {
    Create(OpCode, &'a CreateRequest),
    CreateTtl(&'a CreateTtlRequest),
    Delete(&'a DeleteRequest),
    SetData(&'a SetDataRequest),
    Check(&'a CheckVersionRequest),
}

impl<'a> MultiOpRef<'a> {
    /// The write inside a multi op; None for reads.
    fn of(op: &'a MultiOp) -> Option<MultiOpRef<'a>> {
        Some(match op {
            MultiOp::Create(o, c) => MultiOpRef::Create(*o, c),
            MultiOp::CreateTtl(c) => MultiOpRef::CreateTtl(c),
            MultiOp::Delete(d) => MultiOpRef::Delete(d),
            MultiOp::SetData(d) => MultiOpRef::SetData(d),
            MultiOp::Check(c) => MultiOpRef::Check(c),
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => return None,
        })
    }
}

/// Reads take paths as given, unvalidated, as ZooKeeper does; "" is its
/// alias of the root.
/// The reply to a write of type `op` (the request's type) from what
/// applying its txn did.
fn write_result(op: OpCode, applied: tree::Applied, config: Option<Bytes>) -> Res<Response> {
    if applied.err != ErrorCode::Ok && op != OpCode::Multi {
        return Err(applied.err);
    }
    Ok(match op {
        // The new configuration and its node's stat, as a getData reply.
        OpCode::Reconfig => {
            Response::Data(config.unwrap_or_default(), applied.stat.unwrap_or_default())
        }
        OpCode::Create => Response::Create(applied.path),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Response::Create2(applied.path, applied.stat.unwrap_or_default())
        }
        OpCode::SetData | OpCode::SetAcl => Response::Stat(applied.stat.unwrap_or_default()),
        OpCode::Multi => Response::Multi(
            applied
                .multi
                .into_iter()
                .map(|a| match (a.err, a.op) {
                    (ErrorCode::Ok, OpCode::Create) => MultiResult::Create(a.path),
                    (
                        ErrorCode::Ok,
                        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl,
                    ) => MultiResult::Create2(a.path, a.stat.unwrap_or_default()),
                    (ErrorCode::Ok, OpCode::Delete) => MultiResult::Delete,
                    (ErrorCode::Ok, OpCode::SetData) => {
                        MultiResult::SetData(a.stat.unwrap_or_default())
                    }
                    (ErrorCode::Ok, OpCode::Check) => MultiResult::Check,
                    (e, _) => MultiResult::Error(e),
                })
                .collect(),
        ),
        _ => Response::Empty,
    })
}

fn read_path(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

/// The short op names `cons` shows as the last operation.
pub fn op_name(op: i32) -> &'static str {
    match OpCode::from_i32(op) {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            "CREA"
        }
        Some(OpCode::Delete) => "DELE",
        Some(OpCode::Exists) => "EXIS",
        Some(OpCode::GetData) => "GETD",
        Some(OpCode::SetData) => "SETD",
        Some(OpCode::GetAcl) => "GACL",
        Some(OpCode::SetAcl) => "SACL",
        Some(OpCode::GetChildren | OpCode::GetChildren2) => "GETC",
        Some(OpCode::Sync) => "SYNC",
        Some(OpCode::Ping) => "PING",
        Some(OpCode::Check) => "CHEC",
        Some(OpCode::Multi) => "MULT",
        Some(OpCode::MultiRead) => "MLTR",
        Some(OpCode::Auth) => "AUTH",
        Some(OpCode::SetWatches | OpCode::SetWatches2) => "SETW",
        Some(OpCode::CloseSession) => "CLOS",
        Some(OpCode::AddWatch) => "ADDW",
        Some(OpCode::WhoAmI) => "HOMI",
        _ => "NA",
    }
}

#[cfg(test)]
mod tests;

/// Helpers for fuzzing and property tests: drive a processor with bytes.
pub mod fuzzing {
    use super::*;

    /// Connects one client, then splits `data` into frames (a length byte,
    /// then that many bytes) and feeds each as a request.
    pub fn drive(data: &[u8]) {
        let settings = Settings {
            server_id: 1,
            min_session_timeout: 4000,
            max_session_timeout: 40000,
            tick_time: 2000,
            extended_types: true,
            super_digest: None,
            skip_acl: false,
            reconfig_enabled: false,
            snap_count: 100,
            container_check_interval_ms: 10,
            container_max_per_minute: 10_000,
        };
        let now = |ms: u64| Clock {
            wall_ms: ms as i64,
            mono_ms: ms,
        };
        let mut p = Processor::new(settings, DataTree::new(), &[], now(0));
        let connect = ConnectRequest {
            time_out: 10_000,
            ..Default::default()
        };
        p.connect(1, "127.0.0.1:1", &connect.to_bytes(), now(0));
        let mut rest = data;
        let mut t = 0;
        while let Some((&len, tail)) = rest.split_first() {
            let n = (len as usize).min(tail.len());
            let (frame, next) = tail.split_at(n);
            t += 7;
            let _ = p.request(1, frame, now(t));
            let _ = p.tick(now(t));
            rest = next;
        }
    }
}
