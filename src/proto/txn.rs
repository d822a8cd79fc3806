//! Transaction records: what the transaction log stores and the data tree
//! applies. Field for field as Apache ZooKeeper's `zookeeper.jute` module
//! `txn`, so our log files are Apache ZooKeeper's.

use super::records::Acl;
use super::{ErrorCode, OpCode};
use crate::jute::{JuteError, Reader, Record, Writer};
use crate::jute_record;
use bytes::Bytes;

jute_record! {
    /// Precedes every transaction: who issued it, when, and its zxid.
    pub struct TxnHeader { pub client_id: i64, pub cxid: i32, pub zxid: i64, pub time: i64, pub txn_type: i32 }
}
jute_record! { pub struct TxnDigest { pub version: i32, pub tree_digest: i64 } }
jute_record! {
    pub struct CreateTxn {
        pub path: String, pub data: Bytes, pub acl: Vec<Acl>, pub ephemeral: bool, pub parent_cversion: i32,
    }
}
jute_record! {
    pub struct CreateTtlTxn {
        pub path: String, pub data: Bytes, pub acl: Vec<Acl>, pub parent_cversion: i32, pub ttl: i64,
    }
}
jute_record! {
    pub struct CreateContainerTxn { pub path: String, pub data: Bytes, pub acl: Vec<Acl>, pub parent_cversion: i32 }
}
jute_record! { pub struct DeleteTxn { pub path: String } }
jute_record! { pub struct SetDataTxn { pub path: String, pub data: Bytes, pub version: i32 } }
jute_record! { pub struct CheckVersionTxn { pub path: String, pub version: i32 } }
jute_record! { pub struct SetAclTxn { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct CreateSessionTxn { pub time_out: i32 } }
jute_record! { pub struct CloseSessionTxn { pub paths_to_delete: Vec<String> } }
jute_record! { pub struct ErrorTxn { pub err: i32 } }
jute_record! {
    /// One member of a multi transaction: its type and its encoded body.
    pub struct SubTxn { pub txn_type: i32, pub data: Bytes }
}
jute_record! { pub struct MultiTxn { pub txns: Vec<SubTxn> } }

/// A decoded transaction body. The variant is chosen by the header's type;
/// some types share a body (create and create2 both carry `CreateTxn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// Types create (1) and create2 (15); `ephemeral` may be set.
    Create(OpCode, CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    /// Types delete (2) and deleteContainer (20).
    Delete(OpCode, DeleteTxn),
    SetData(SetDataTxn),
    /// reconfig (16) carries the new config as a SetDataTxn on /zookeeper/config.
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
    Error(ErrorTxn),
    Multi(Vec<Txn>),
}

impl Txn {
    pub fn op(&self) -> OpCode {
        match self {
            Txn::Create(op, _) | Txn::Delete(op, _) => *op,
            Txn::CreateContainer(_) => OpCode::CreateContainer,
            Txn::CreateTtl(_) => OpCode::CreateTtl,
            Txn::SetData(_) => OpCode::SetData,
            Txn::Reconfig(_) => OpCode::Reconfig,
            Txn::SetAcl(_) => OpCode::SetAcl,
            Txn::Check(_) => OpCode::Check,
            Txn::CreateSession(_) => OpCode::CreateSession,
            Txn::CloseSession(_) => OpCode::CloseSession,
            Txn::Error(_) => OpCode::Error,
            Txn::Multi(_) => OpCode::Multi,
        }
    }

    pub fn write_body<W: Writer>(&self, w: &mut W) {
        match self {
            Txn::Create(_, t) => t.write(w),
            Txn::CreateContainer(t) => t.write(w),
            Txn::CreateTtl(t) => t.write(w),
            Txn::Delete(_, t) => t.write(w),
            Txn::SetData(t) | Txn::Reconfig(t) => t.write(w),
            Txn::SetAcl(t) => t.write(w),
            Txn::Check(t) => t.write(w),
            Txn::CreateSession(t) => t.write(w),
            Txn::CloseSession(t) => t.write(w),
            Txn::Error(t) => t.write(w),
            Txn::Multi(txns) => {
                let subs: Vec<SubTxn> = txns
                    .iter()
                    .map(|t| {
                        let mut body = Vec::new();
                        t.write_body(&mut body);
                        SubTxn {
                            txn_type: t.op() as i32,
                            data: body.into(),
                        }
                    })
                    .collect();
                MultiTxn { txns: subs }.write(w)
            }
        }
    }

    pub fn body_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_body(&mut v);
        v
    }

    /// Decodes a body of the given header type.
    pub fn read_body(txn_type: i32, r: &mut Reader<'_>) -> crate::jute::Result<Txn> {
        let op = OpCode::from_i32(txn_type)
            .ok_or_else(|| JuteError::Invalid(format!("unknown txn type {txn_type}")))?;
        Ok(match op {
            OpCode::Create | OpCode::Create2 => Txn::Create(op, CreateTxn::read(r)?),
            OpCode::CreateContainer => Txn::CreateContainer(Record::read(r)?),
            OpCode::CreateTtl => Txn::CreateTtl(Record::read(r)?),
            OpCode::Delete | OpCode::DeleteContainer => Txn::Delete(op, DeleteTxn::read(r)?),
            OpCode::SetData => Txn::SetData(Record::read(r)?),
            OpCode::Reconfig => Txn::Reconfig(Record::read(r)?),
            OpCode::SetAcl => Txn::SetAcl(Record::read(r)?),
            OpCode::Check => Txn::Check(Record::read(r)?),
            OpCode::CreateSession => Txn::CreateSession(Record::read(r)?),
            // Logs written with closeSessionTxnEnabled=false carry no body.
            OpCode::CloseSession if r.is_empty() => Txn::CloseSession(CloseSessionTxn::default()),
            OpCode::CloseSession => Txn::CloseSession(Record::read(r)?),
            OpCode::Error => Txn::Error(Record::read(r)?),
            OpCode::Multi => {
                let m = MultiTxn::read(r)?;
                let mut txns = Vec::with_capacity(m.txns.len());
                for sub in m.txns {
                    // A multi never nests; refusing it bounds the recursion.
                    if sub.txn_type == OpCode::Multi as i32 {
                        return Err(JuteError::Invalid("nested multi transaction".into()));
                    }
                    txns.push(Txn::read_body(sub.txn_type, &mut Reader::new(&sub.data))?);
                }
                Txn::Multi(txns)
            }
            other => {
                return Err(JuteError::Invalid(format!(
                    "{other:?} is not a transaction type"
                )));
            }
        })
    }

    pub fn error(code: ErrorCode) -> Txn {
        Txn::Error(ErrorTxn { err: code as i32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::Id;

    #[test]
    fn multi_round_trip() {
        let t = Txn::Multi(vec![
            Txn::Create(
                OpCode::Create2,
                CreateTxn {
                    path: "/a".into(),
                    data: Bytes::from_static(b"x"),
                    acl: vec![Acl {
                        perms: 31,
                        id: Id {
                            scheme: "world".into(),
                            id: "anyone".into(),
                        },
                    }],
                    ephemeral: false,
                    parent_cversion: 3,
                },
            ),
            Txn::Delete(OpCode::Delete, DeleteTxn { path: "/b".into() }),
            Txn::error(ErrorCode::Ok),
        ]);
        let body = t.body_bytes();
        let back = Txn::read_body(OpCode::Multi as i32, &mut Reader::new(&body)).unwrap();
        assert_eq!(back, t);
    }
}
