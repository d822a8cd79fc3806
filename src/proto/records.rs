//! The records of ZooKeeper's client protocol, field for field as in
//! Apache ZooKeeper's `zookeeper.jute` (module `proto` and `data`).

use crate::jute_record;
use bytes::Bytes;

jute_record! {
    /// An identity: scheme (world, auth, digest, ip, super) and its id.
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    /// One access-control entry: permission bits for an identity.
    pub struct Acl { pub perms: i32, pub id: Id }
}

jute_record! {
    /// A znode's metadata as clients see it.
    pub struct Stat {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub data_length: i32, pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    /// A znode's metadata as snapshots store it (no derived fields).
    pub struct StatPersisted {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub pzxid: i64,
    }
}

jute_record! { pub struct ClientInfo { pub auth_scheme: String, pub user: String } }

jute_record! {
    pub struct ConnectResponse {
        pub protocol_version: i32, pub time_out: i32, pub session_id: i64,
        pub passwd: Bytes, pub read_only: bool,
    }
}

jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64, pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>, pub child_watches: Vec<String>,
    }
}

jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64, pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>, pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>, pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! { pub struct RequestHeader { pub xid: i32, pub op: i32 } }
jute_record! { pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 } }
jute_record! { pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Bytes } }
jute_record! { pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 } }

jute_record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct SetDataRequest { pub path: String, pub data: Bytes, pub version: i32 } }
jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: String, pub leaving_servers: String,
        pub new_members: String, pub cur_config_id: i64,
    }
}
jute_record! { pub struct SetDataResponse { pub stat: Stat } }
jute_record! { pub struct GetSaslRequest { pub token: Bytes } }
jute_record! { pub struct SetSaslResponse { pub token: Bytes } }
jute_record! {
    pub struct CreateRequest { pub path: String, pub data: Bytes, pub acl: Vec<Acl>, pub flags: i32 }
}
jute_record! {
    pub struct CreateTtlRequest {
        pub path: String, pub data: Bytes, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64,
    }
}
jute_record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
jute_record! { pub struct GetChildren2Request { pub path: String, pub watch: bool } }
jute_record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct SyncRequest { pub path: String } }
jute_record! { pub struct SyncResponse { pub path: String } }
jute_record! { pub struct GetAclRequest { pub path: String } }
jute_record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct SetAclResponse { pub stat: Stat } }
jute_record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
jute_record! { pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String } }
jute_record! { pub struct ErrorResponse { pub err: i32 } }
jute_record! { pub struct CreateResponse { pub path: String } }
jute_record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
jute_record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct ExistsResponse { pub stat: Stat } }
jute_record! { pub struct GetDataResponse { pub data: Bytes, pub stat: Stat } }
jute_record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
jute_record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
jute_record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
jute_record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
jute_record! { pub struct CheckWatchesRequest { pub path: String, pub watcher_type: i32 } }
jute_record! { pub struct RemoveWatchesRequest { pub path: String, pub watcher_type: i32 } }
jute_record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
jute_record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
jute_record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }

/// The first packet of a connection. `read_only` is a trailing byte that
/// clients before 3.9's jute may leave out, so it is decoded by hand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: bool,
}

impl crate::jute::Record for ConnectRequest {
    const MIN_SIZE: usize = 28;
    fn read(r: &mut crate::jute::Reader<'_>) -> crate::jute::Result<Self> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() { false } else { r.read_bool()? },
        })
    }
    fn write<W: crate::jute::Writer>(&self, w: &mut W) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        w.write_bool(self.read_only);
    }
}

impl From<&StatPersisted> for Stat {
    fn from(s: &StatPersisted) -> Stat {
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            data_length: 0,
            num_children: 0,
            pzxid: s.pzxid,
        }
    }
}
