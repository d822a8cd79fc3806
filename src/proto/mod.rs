//! ZooKeeper's client protocol: op codes, error codes, the request and
//! response records, and the transaction records of the log.
//!
//! Pure code over the `jute` codec: it turns frames into typed requests and
//! typed responses into frames. No sockets, no clocks, no files.

pub mod records;
pub mod txn;

use crate::jute::{JuteError, Reader, Record, Writer};
use bytes::Bytes;
pub use records::*;

/// Request and transaction types (Apache ZooKeeper's `ZooDefs.OpCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum OpCode {
    Notification = 0,
    Create = 1,
    Delete = 2,
    Exists = 3,
    GetData = 4,
    SetData = 5,
    GetAcl = 6,
    SetAcl = 7,
    GetChildren = 8,
    Sync = 9,
    Ping = 11,
    GetChildren2 = 12,
    Check = 13,
    Multi = 14,
    Create2 = 15,
    Reconfig = 16,
    CheckWatches = 17,
    RemoveWatches = 18,
    CreateContainer = 19,
    DeleteContainer = 20,
    CreateTtl = 21,
    MultiRead = 22,
    Auth = 100,
    SetWatches = 101,
    Sasl = 102,
    GetEphemerals = 103,
    GetAllChildrenNumber = 104,
    SetWatches2 = 105,
    AddWatch = 106,
    WhoAmI = 107,
    CreateSession = -10,
    CloseSession = -11,
    Error = -1,
}

impl OpCode {
    pub fn from_i32(v: i32) -> Option<OpCode> {
        use OpCode::*;
        Some(match v {
            0 => Notification,
            1 => Create,
            2 => Delete,
            3 => Exists,
            4 => GetData,
            5 => SetData,
            6 => GetAcl,
            7 => SetAcl,
            8 => GetChildren,
            9 => Sync,
            11 => Ping,
            12 => GetChildren2,
            13 => Check,
            14 => Multi,
            15 => Create2,
            16 => Reconfig,
            17 => CheckWatches,
            18 => RemoveWatches,
            19 => CreateContainer,
            20 => DeleteContainer,
            21 => CreateTtl,
            22 => MultiRead,
            100 => Auth,
            101 => SetWatches,
            102 => Sasl,
            103 => GetEphemerals,
            104 => GetAllChildrenNumber,
            105 => SetWatches2,
            106 => AddWatch,
            107 => WhoAmI,
            -10 => CreateSession,
            -11 => CloseSession,
            -1 => Error,
            _ => return None,
        })
    }

    /// Requests that change state and so go through the transaction log.
    pub fn is_write(self) -> bool {
        use OpCode::*;
        matches!(
            self,
            Create
                | Create2
                | CreateContainer
                | CreateTtl
                | Delete
                | DeleteContainer
                | SetData
                | SetAcl
                | Check
                | Multi
                | Reconfig
                | CreateSession
                | CloseSession
        )
    }
}

/// Result codes (Apache ZooKeeper's `KeeperException.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

impl ErrorCode {
    pub fn from_i32(v: i32) -> Option<ErrorCode> {
        use ErrorCode::*;
        Some(match v {
            0 => Ok,
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -13 => NewConfigNoQuorum,
            -14 => ReconfigInProgress,
            -100 => ApiError,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -124 => SessionClosedRequireSaslAuth,
            -125 => QuotaExceeded,
            -127 => ThrottledOp,
            _ => return None,
        })
    }
}

/// Permission bits of an ACL entry (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// Watch event types (`Watcher.Event.EventType`).
pub mod event_type {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// Connection states carried by watch events (`Watcher.Event.KeeperState`).
pub mod keeper_state {
    pub const SYNC_CONNECTED: i32 = 3;
}

/// Special xids of the client protocol.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// The seven create modes (`CreateMode`), decoded from a create's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        let (ephemeral, sequential, container, ttl) = match flags {
            0 => (false, false, false, false),
            1 => (true, false, false, false),
            2 => (false, true, false, false),
            3 => (true, true, false, false),
            4 => (false, false, true, false),
            5 => (false, false, false, true),
            6 => (false, true, false, true),
            _ => return None,
        };
        Some(CreateMode {
            ephemeral,
            sequential,
            container,
            ttl,
        })
    }
}

/// One operation inside a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(OpCode, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

/// A decoded client request (after the request header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create, create2 and createContainer share a record.
    Create(OpCode, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches2),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
    Sasl(GetSaslRequest),
}

impl Request {
    /// Decodes the body of a request of type `op`. `Ok(None)` means the op
    /// code is not one a client may send.
    pub fn decode(op: i32, r: &mut Reader<'_>) -> crate::jute::Result<Option<Request>> {
        let Some(code) = OpCode::from_i32(op) else {
            return Ok(None);
        };
        use OpCode as O;
        Ok(Some(match code {
            O::Create | O::Create2 | O::CreateContainer => {
                Request::Create(code, CreateRequest::read(r)?)
            }
            O::CreateTtl => Request::CreateTtl(Record::read(r)?),
            O::Delete => Request::Delete(Record::read(r)?),
            O::Exists => Request::Exists(Record::read(r)?),
            O::GetData => Request::GetData(Record::read(r)?),
            O::SetData => Request::SetData(Record::read(r)?),
            O::GetAcl => Request::GetAcl(Record::read(r)?),
            O::SetAcl => Request::SetAcl(Record::read(r)?),
            O::GetChildren => Request::GetChildren(Record::read(r)?),
            O::GetChildren2 => Request::GetChildren2(Record::read(r)?),
            O::Sync => Request::Sync(Record::read(r)?),
            O::Ping => Request::Ping,
            O::Check => Request::Check(Record::read(r)?),
            O::Multi => Request::Multi(read_multi(r, false)?),
            O::MultiRead => Request::MultiRead(read_multi(r, true)?),
            O::Reconfig => Request::Reconfig(Record::read(r)?),
            O::CheckWatches => Request::CheckWatches(Record::read(r)?),
            O::RemoveWatches => Request::RemoveWatches(Record::read(r)?),
            O::Auth => Request::Auth(Record::read(r)?),
            O::SetWatches => {
                let w = SetWatches::read(r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    ..Default::default()
                })
            }
            O::SetWatches2 => Request::SetWatches(Record::read(r)?),
            O::GetEphemerals => Request::GetEphemerals(Record::read(r)?),
            O::GetAllChildrenNumber => Request::GetAllChildrenNumber(Record::read(r)?),
            O::AddWatch => Request::AddWatch(Record::read(r)?),
            O::WhoAmI => Request::WhoAmI,
            O::CloseSession => Request::CloseSession,
            O::Sasl => Request::Sasl(Record::read(r)?),
            O::Notification | O::DeleteContainer | O::CreateSession | O::Error => return Ok(None),
        }))
    }

    /// The path a request names, for logging and metrics.
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(_, c) => &c.path,
            Request::CreateTtl(c) => &c.path,
            Request::Delete(d) => &d.path,
            Request::Exists(e) => &e.path,
            Request::GetData(g) => &g.path,
            Request::SetData(s) => &s.path,
            Request::GetAcl(g) => &g.path,
            Request::SetAcl(s) => &s.path,
            Request::GetChildren(g) => &g.path,
            Request::GetChildren2(g) => &g.path,
            Request::Sync(s) => &s.path,
            Request::Check(c) => &c.path,
            _ => return None,
        })
    }
}

fn read_multi(r: &mut Reader<'_>, reads: bool) -> crate::jute::Result<Vec<MultiOp>> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = match (OpCode::from_i32(h.op), reads) {
            (Some(c @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer)), false) => {
                MultiOp::Create(c, Record::read(r)?)
            }
            (Some(OpCode::CreateTtl), false) => MultiOp::CreateTtl(Record::read(r)?),
            (Some(OpCode::Delete), false) => MultiOp::Delete(Record::read(r)?),
            (Some(OpCode::SetData), false) => MultiOp::SetData(Record::read(r)?),
            (Some(OpCode::Check), false) => MultiOp::Check(Record::read(r)?),
            (Some(OpCode::GetChildren), true) => MultiOp::GetChildren(Record::read(r)?),
            (Some(OpCode::GetData), true) => MultiOp::GetData(Record::read(r)?),
            _ => {
                return Err(JuteError::Invalid(format!(
                    "op {} is not allowed in a {}",
                    h.op,
                    if reads { "multiRead" } else { "multi" }
                )));
            }
        };
        ops.push(op);
    }
}

/// The result of one operation inside a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(Bytes, Stat),
    Error(ErrorCode),
}

/// A response body; the reply header is written separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Empty,
    Create(String),
    Create2(String, Stat),
    Stat(Stat),
    Data(Bytes, Stat),
    Children(Vec<String>),
    Children2(Vec<String>, Stat),
    Acl(Vec<Acl>, Stat),
    Sync(String),
    Multi(Vec<MultiResult>),
    Paths(Vec<String>),
    Number(i32),
    WhoAmI(Vec<ClientInfo>),
}

impl Response {
    pub fn write<W: Writer>(&self, w: &mut W) {
        match self {
            Response::Empty => {}
            Response::Create(p) | Response::Sync(p) => w.write_string(p),
            Response::Create2(p, s) => {
                w.write_string(p);
                s.write(w)
            }
            Response::Stat(s) => s.write(w),
            Response::Data(d, s) => {
                w.write_buffer(d);
                s.write(w)
            }
            Response::Children(c) | Response::Paths(c) => w.write_vec(c),
            Response::Children2(c, s) => {
                w.write_vec(c);
                s.write(w)
            }
            Response::Acl(a, s) => {
                w.write_vec(a);
                s.write(w)
            }
            Response::Number(n) => w.write_i32(*n),
            Response::WhoAmI(c) => w.write_vec(c),
            Response::Multi(results) => {
                for res in results {
                    let (op, err) = match res {
                        MultiResult::Create(_) => (OpCode::Create, 0),
                        MultiResult::Create2(..) => (OpCode::Create2, 0),
                        MultiResult::Delete => (OpCode::Delete, 0),
                        MultiResult::SetData(_) => (OpCode::SetData, 0),
                        MultiResult::Check => (OpCode::Check, 0),
                        MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
                        MultiResult::GetData(..) => (OpCode::GetData, 0),
                        MultiResult::Error(e) => (OpCode::Error, *e as i32),
                    };
                    MultiHeader {
                        op: op as i32,
                        done: false,
                        err,
                    }
                    .write(w);
                    match res {
                        MultiResult::Create(p) => w.write_string(p),
                        MultiResult::Create2(p, s) => {
                            w.write_string(p);
                            s.write(w)
                        }
                        MultiResult::SetData(s) => s.write(w),
                        MultiResult::GetChildren(c) => w.write_vec(c),
                        MultiResult::GetData(d, s) => {
                            w.write_buffer(d);
                            s.write(w)
                        }
                        MultiResult::Error(e) => w.write_i32(*e as i32),
                        MultiResult::Delete | MultiResult::Check => {}
                    }
                }
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .write(w);
            }
        }
    }
}

/// Encodes a whole reply frame: length prefix, header, body.
pub fn encode_reply(header: &ReplyHeader, body: &Response, out: &mut Vec<u8>) {
    let start = out.len();
    out.write_i32(0);
    header.write(out);
    if header.err == 0 {
        body.write(out);
    }
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Encodes a framed record (length prefix + record), e.g. a ConnectResponse.
pub fn encode_framed<R: Record>(rec: &R, out: &mut Vec<u8>) {
    let start = out.len();
    out.write_i32(0);
    rec.write(out);
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_request_decodes_until_done() {
        let mut b = Vec::new();
        MultiHeader {
            op: 1,
            done: false,
            err: -1,
        }
        .write(&mut b);
        CreateRequest {
            path: "/a".into(),
            ..Default::default()
        }
        .write(&mut b);
        MultiHeader {
            op: 13,
            done: false,
            err: -1,
        }
        .write(&mut b);
        CheckVersionRequest {
            path: "/a".into(),
            version: 0,
        }
        .write(&mut b);
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(&mut b);
        let req = Request::decode(14, &mut Reader::new(&b)).unwrap().unwrap();
        match req {
            Request::Multi(ops) => assert_eq!(ops.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_are_refused_inside_multi() {
        let mut b = Vec::new();
        MultiHeader {
            op: 4,
            done: false,
            err: -1,
        }
        .write(&mut b);
        GetDataRequest::default().write(&mut b);
        assert!(Request::decode(14, &mut Reader::new(&b)).is_err());
    }

    #[test]
    fn every_op_code_round_trips() {
        for v in -20..200 {
            if let Some(op) = OpCode::from_i32(v) {
                assert_eq!(op as i32, v);
            }
        }
        for v in -200..10 {
            if let Some(e) = ErrorCode::from_i32(v) {
                assert_eq!(e as i32, v);
            }
        }
    }
}
