//! The processor in a replicated server.
//!
//! Every server of an ensemble runs one *serving* processor in replica mode
//! (`set_replica(true)`): its tree holds committed txns only, it answers
//! reads at once, and it turns each write (and sync and closeSession, and
//! the createSession behind a new connection) into an [`Effect::Submit`]
//! instead of applying it. The shell hands the submission to the leader,
//! which prepares it and proposes the txn; when the txn commits, every
//! server applies it with [`Processor::apply_committed`], and the server
//! the client is connected to answers it then, built from what applying
//! did. Watches fire on apply, before that reply.
//!
//! Per-connection order (ZooKeeper's FIFO client order): a connection's
//! requests are answered in the order they came. Writes may follow writes
//! without waiting (commits come in zxid order, which is submission order),
//! but a read behind a pending write waits in the connection's queue until
//! the write is answered — so a client also reads its own writes.
//!
//! The leader additionally runs a *preparing* processor: an ordinary
//! processor over its own copy of the tree, with no connections, fed with
//! [`Processor::forwarded`]. It validates against everything already
//! proposed (it applies at prep time, as a standalone server does), and its
//! `Effect::Log`s are the txns to propose. It owns session expiry: its
//! `tick` produces the closeSession txns, kept from expiring by the
//! sessions the followers report in their pings ([`Processor::touch_sessions`]).
//!
//! Sessions on a reconnect are checked against the committed session table
//! and the password (derived from the id on every server); a session the
//! leader has just expired is closed when its closeSession commits.

use super::*;

/// A client request a server hands to the leader: what ZooKeeper's
/// learners put in a REQUEST packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub session: i64,
    pub cxid: i32,
    /// The request type (`OpCode`).
    pub op: i32,
    /// The request body, as the client sent it (after xid and type).
    pub body: Bytes,
    /// The connection's identities, for ACL checks on the leader.
    pub auth: Vec<Id>,
}

impl Submission {
    /// The REQUEST packet data: session id, cxid, type, then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(16 + self.body.len());
        w.write_i64(self.session);
        w.write_i32(self.cxid);
        w.write_i32(self.op);
        w.extend_from_slice(&self.body);
        w
    }

    pub fn decode(data: &[u8], auth: Vec<Id>) -> Option<Submission> {
        let mut r = Reader::new(data);
        let session = r.read_i64().ok()?;
        let cxid = r.read_i32().ok()?;
        let op = r.read_i32().ok()?;
        Some(Submission {
            session,
            cxid,
            op,
            body: Bytes::copy_from_slice(data.get(16..)?),
            auth,
        })
    }

    pub fn is_sync(&self) -> bool {
        self.op == OpCode::Sync as i32
    }
}

/// What a connection waits for, oldest first.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    /// Its createSession txn.
    Connect,
    /// A submitted write with this xid and request type.
    Write { xid: i32, op: OpCode },
    /// A submitted sync.
    Sync { xid: i32, path: String },
    /// A submitted closeSession.
    Close { xid: i32 },
    /// A request that arrived behind a pending one.
    Queued(Vec<u8>),
}

/// Requests that change state and so go through the leader.
fn is_write(op: i32) -> bool {
    matches!(
        OpCode::from_i32(op),
        Some(
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
        )
    )
}

impl Processor {
    /// Switches to replicated serving (see the module doc).
    pub fn set_replica(&mut self, on: bool) {
        self.replica = on;
        self.durable_hint = self.durable_hint.max(self.tree.last_zxid);
    }

    /// Read-only mode (ZooKeeper's, for a server cut off from the quorum):
    /// read-only clients only, local sessions, writes and syncs refused
    /// with NotReadOnly.
    pub fn set_read_only(&mut self, on: bool) {
        self.read_only = on;
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The next txn gets at least this zxid (a new leader's epoch start).
    pub fn set_zxid_floor(&mut self, zxid: i64) {
        self.zxid_floor = zxid;
    }

    /// Sessions with client activity since the last call, with timeouts.
    pub fn take_touched(&mut self) -> Vec<(i64, u32)> {
        self.touched.drain().collect()
    }

    /// Keeps sessions alive (the leader hears of them from learners).
    pub fn touch_sessions(&mut self, sessions: &[(i64, u32)], now: Clock) {
        for (id, _) in sessions {
            self.sessions.touch(*id, now.mono_ms);
        }
    }

    /// Closes every client connection (the server stopped serving: its
    /// clients must find a server that is).
    pub fn close_all(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending.clear();
            }
            self.close(&mut out, conn);
        }
        out
    }

    pub(super) fn replica_request(
        &mut self,
        conn: ConnId,
        frame: &[u8],
        now: Clock,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(c) = self.conns.get_mut(&conn) else {
            return out;
        };
        if !c.pending.is_empty() {
            let op = frame
                .get(4..8)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            let only_writes = c.pending.iter().all(|p| matches!(p, Pending::Write { .. }));
            if !(only_writes && is_write(op)) {
                c.pending.push_back(Pending::Queued(frame.to_vec()));
                return out;
            }
        }
        self.process(&mut out, conn, frame, now);
        out
    }

    /// One request that may run now: reads are answered, writes submitted.
    fn process(&mut self, out: &mut Vec<Effect>, conn: ConnId, frame: &[u8], now: Clock) {
        let Some((session, h, req)) = self.admit(out, conn, frame, now) else {
            return;
        };
        if let Some(c) = self.conns.get(&conn) {
            self.touched.insert(session, c.timeout);
        }
        let marker = match &req {
            Request::Sync(s) => Some(Pending::Sync {
                xid: h.xid,
                path: s.path.clone(),
            }),
            Request::CloseSession => Some(Pending::Close { xid: h.xid }),
            _ if is_write(h.op) => {
                OpCode::from_i32(h.op).map(|op| Pending::Write { xid: h.xid, op })
            }
            _ => None,
        };
        match marker {
            Some(Pending::Close { xid }) if self.read_only => {
                self.sessions.remove(session);
                self.session_conn.remove(&session);
                self.reply(out, conn, xid, ErrorCode::Ok, &Response::Empty);
                self.close(out, conn);
            }
            Some(_) if self.read_only => {
                self.reply(out, conn, h.xid, ErrorCode::NotReadOnly, &Response::Empty);
            }
            Some(marker) => {
                let auth = self.auth_of(conn);
                if let Some(c) = self.conns.get_mut(&conn) {
                    // After the submitted ones, before the queued ones.
                    let at = c
                        .pending
                        .iter()
                        .position(|p| matches!(p, Pending::Queued(_)))
                        .unwrap_or(c.pending.len());
                    c.pending.insert(at, marker);
                }
                out.push(Effect::Submit(Submission {
                    session,
                    cxid: h.xid,
                    op: h.op,
                    body: Bytes::copy_from_slice(frame.get(8..).unwrap_or_default()),
                    auth,
                }));
            }
            None => self.dispatch(out, conn, session, h.xid, req, now),
        }
        self.note_last_zxid(conn);
    }

    /// Runs the requests queued at the head of a connection's queue until
    /// one has to wait again.
    fn drain(&mut self, out: &mut Vec<Effect>, conn: ConnId, now: Clock) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if !matches!(c.pending.front(), Some(Pending::Queued(_))) {
                return;
            }
            let Some(Pending::Queued(frame)) = c.pending.pop_front() else {
                return;
            };
            self.process(out, conn, &frame, now);
        }
    }

    /// A committed txn: applied, watches fired, and answered if one of our
    /// connections submitted it.
    pub fn apply_committed(&mut self, hdr: &TxnHeader, txn: &Txn, now: Clock) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut changes = Vec::new();
        let applied = self.tree.apply(hdr, txn, &mut changes);
        self.durable_hint = self.tree.last_zxid;
        match txn {
            Txn::CreateSession(t) => {
                self.sessions
                    .add(hdr.client_id, t.time_out.max(0) as u32, now.mono_ms)
            }
            Txn::CloseSession(_) => {
                self.sessions.remove(hdr.client_id);
            }
            _ => {}
        }
        self.fire(&mut out, &changes);
        self.count_txn(&mut out);
        if let Some(&conn) = self.session_conn.get(&hdr.client_id) {
            self.complete(&mut out, conn, hdr, txn, applied, now);
        }
        out
    }

    fn complete(
        &mut self,
        out: &mut Vec<Effect>,
        conn: ConnId,
        hdr: &TxnHeader,
        txn: &Txn,
        applied: tree::Applied,
        now: Clock,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match (c.pending.front(), txn) {
            (Some(Pending::Connect), Txn::CreateSession(t)) => {
                c.pending.pop_front();
                c.timeout = t.time_out.max(0) as u32;
                let resp = ConnectResponse {
                    protocol_version: 0,
                    time_out: t.time_out,
                    session_id: hdr.client_id,
                    passwd: Bytes::copy_from_slice(&session::password(hdr.client_id)),
                    read_only: false,
                };
                let mut frame = Vec::new();
                encode_framed(&resp, &mut frame);
                self.send(out, conn, frame);
            }
            (Some(Pending::Close { xid }), Txn::CloseSession(_)) if *xid == hdr.cxid => {
                c.pending.clear();
                self.session_conn.remove(&hdr.client_id);
                self.reply(out, conn, hdr.cxid, ErrorCode::Ok, &Response::Empty);
                self.close(out, conn);
                return;
            }
            (_, Txn::CloseSession(_)) => {
                // Expired by the leader (or closed through another server).
                c.pending.clear();
                c.session = 0;
                self.session_conn.remove(&hdr.client_id);
                self.close(out, conn);
                return;
            }
            (Some(Pending::Write { xid, op }), _) if *xid == hdr.cxid => {
                let op = *op;
                c.pending.pop_front();
                let result = match txn {
                    Txn::Error(e) => {
                        Err(ErrorCode::from_i32(e.err).unwrap_or(ErrorCode::SystemError))
                    }
                    Txn::Reconfig(t) => write_result(op, applied, Some(t.data.clone())),
                    _ => write_result(op, applied, None),
                };
                match result {
                    Ok(body) => self.reply(out, conn, hdr.cxid, ErrorCode::Ok, &body),
                    Err(e) => self.reply(out, conn, hdr.cxid, e, &Response::Empty),
                }
            }
            // A txn of this session submitted before it reconnected here.
            _ => return,
        }
        self.drain(out, conn, now);
    }

    /// The leader answered the oldest sync `session` submitted: everything
    /// committed before it was asked is applied here now.
    pub fn sync_done(&mut self, session: i64, now: Clock) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(&conn) = self.session_conn.get(&session) else {
            return out;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return out;
        };
        if let Some(Pending::Sync { xid, path }) = c.pending.front().cloned() {
            c.pending.pop_front();
            self.reply(&mut out, conn, xid, ErrorCode::Ok, &Response::Sync(path));
            self.drain(&mut out, conn, now);
        }
        out
    }

    /// The leader's preparing processor: a submission from any server,
    /// validated against everything proposed so far; the txn comes out as
    /// an `Effect::Log` (replies, to no connection, are dropped).
    pub fn forwarded(&mut self, s: &Submission, now: Clock) -> Vec<Effect> {
        let mut out = Vec::new();
        match OpCode::from_i32(s.op) {
            Some(OpCode::CreateSession) => {
                let time_out = Reader::new(&s.body).read_i32().unwrap_or(0);
                self.sessions
                    .add(s.session, time_out.max(0) as u32, now.mono_ms);
                let hdr = self.next_header(s.session, s.cxid, OpCode::CreateSession, now);
                self.commit(
                    &mut out,
                    hdr,
                    Txn::CreateSession(CreateSessionTxn { time_out }),
                );
            }
            Some(OpCode::CloseSession) => {
                let hdr = self.next_header(s.session, s.cxid, OpCode::CloseSession, now);
                let paths = self.tree.ephemerals_of(s.session);
                self.sessions.set_closing(s.session);
                self.commit(
                    &mut out,
                    hdr,
                    Txn::CloseSession(CloseSessionTxn {
                        paths_to_delete: paths,
                    }),
                );
            }
            _ if !self.sessions.touch(s.session, now.mono_ms) => {
                self.error_txn(&mut out, s, ErrorCode::SessionExpired, now);
            }
            _ => match Request::decode(s.op, &mut Reader::new(&s.body)) {
                Ok(Some(req)) if is_write(s.op) => {
                    self.write(&mut out, 0, s.session, s.cxid, &s.auth, req, now);
                    out.retain(|e| !matches!(e, Effect::Send { .. } | Effect::Close { .. }));
                }
                Ok(_) => self.error_txn(&mut out, s, ErrorCode::Unimplemented, now),
                Err(_) => self.error_txn(&mut out, s, ErrorCode::MarshallingError, now),
            },
        }
        out
    }

    fn error_txn(&mut self, out: &mut Vec<Effect>, s: &Submission, code: ErrorCode, now: Clock) {
        let hdr = self.next_header(s.session, s.cxid, OpCode::Error, now);
        self.commit(out, hdr, Txn::error(code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_round_trip() {
        let s = Submission {
            session: 0x1234_5678_9abc,
            cxid: 7,
            op: OpCode::SetData as i32,
            body: Bytes::from_static(b"\x00\x00\x00\x02/a"),
            auth: vec![Id {
                scheme: "ip".into(),
                id: "127.0.0.1".into(),
            }],
        };
        assert_eq!(Submission::decode(&s.encode(), s.auth.clone()), Some(s));
        assert_eq!(Submission::decode(&[0; 10], Vec::new()), None);
    }
}
