//! Peer wire formats, byte for byte as Apache ZooKeeper's, so that a mixed
//! ensemble needs no redesign later:
//!
//! * the election-port connection handshake ([`InitialMessage`]),
//! * fast-leader-election notifications ([`Notification`]),
//! * quorum-port packets ([`QuorumPacket`]) with their type numbers
//!   ([`PacketType`]), [`LearnerInfo`], and the typed view the ZAB cores use
//!   ([`ZabMessage`]).
//!
//! Facts (offsets, type numbers, versions) were read from Apache ZooKeeper's
//! `FastLeaderElection.java`, `QuorumCnxManager.java`, `Leader.java`,
//! `Learner.java` and `zookeeper.jute`. Pure code: bytes in, values out;
//! decoding never panics on any input.

use crate::jute::{JuteError, Reader, Record, Result, Writer};
use crate::jute_record;
use crate::proto::records::Id;
use bytes::Bytes;

use super::{Zxid, epoch_of};

/// First long of the election handshake since 3.5.0 (`PROTOCOL_VERSION_V1`):
/// then sid, then one `host:port`.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// Since 3.6.0 (`PROTOCOL_VERSION_V2`): the address field may list several
/// `host:port` separated by `|`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Largest address field a receiver accepts (`maxBuffer` in QuorumCnxManager).
pub const MAX_INITIAL_ADDRESS_LEN: usize = 2048;
/// Largest framed election message (`PACKETMAXSIZE`, 512 KiB).
pub const MAX_ELECTION_MESSAGE: usize = 512 * 1024;

/// What a connecting peer says first on the election port. The receiver keeps
/// a connection only when the connecting sid is higher than its own; a lower
/// sid's connection is closed and the receiver connects back itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub protocol_version: i64,
    pub sid: i64,
    /// `host:port`, or several joined by `|` with V2. Empty for the pre-3.5
    /// form, where the peer sent only its sid.
    pub addresses: Vec<String>,
}

impl InitialMessage {
    pub fn new(sid: i64, address: &str) -> Self {
        InitialMessage {
            protocol_version: PROTOCOL_VERSION_V2,
            sid,
            addresses: vec![address.to_string()],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        if self.protocol_version >= 0 {
            // Pre-3.5 peers sent just their sid.
            w.write_i64(self.sid);
            return w;
        }
        w.write_i64(self.protocol_version);
        w.write_i64(self.sid);
        w.write_string(&self.addresses.join("|"));
        w
    }

    /// Parses a handshake. A non-negative first long is the old form (the
    /// sid alone).
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let first = r.read_i64()?;
        if first >= 0 {
            return Ok(InitialMessage {
                protocol_version: first,
                sid: first,
                addresses: Vec::new(),
            });
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(JuteError::Invalid(format!(
                "unrecognized protocol version {first}"
            )));
        }
        let sid = r.read_i64()?;
        let len = r.clone().read_i32()?;
        if len <= 0 || len as usize > MAX_INITIAL_ADDRESS_LEN {
            return Err(JuteError::Invalid(format!(
                "unreasonable address length {len}"
            )));
        }
        let text = r.read_string()?;
        let addresses: Vec<String> = if first == PROTOCOL_VERSION_V1 {
            vec![text]
        } else {
            text.split('|').map(str::to_string).collect()
        };
        if addresses.iter().any(|a| !a.contains(':')) {
            return Err(JuteError::Invalid("address is not host:port".into()));
        }
        Ok(InitialMessage {
            protocol_version: first,
            sid,
            addresses,
        })
    }
}

/// The election-port duplicate-connection rule: a connection survives only
/// when it was opened by the higher sid. The acceptor closes a connection
/// from a lower sid and connects back; an initiator with the lower sid
/// closes its own connection after the handshake and waits.
pub fn election_connection_kept(initiator: i64, acceptor: i64) -> bool {
    initiator > acceptor
}

/// A peer's state as sent in notifications (`QuorumPeer.ServerState` ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }
}

/// Notification format version we send (`Notification.CURRENTVERSION`).
pub const NOTIFICATION_VERSION: i32 = 2;

/// A fast-leader-election notification: the sender's state and current vote.
///
/// Layout: state i32, leader i64, zxid i64, electionEpoch i64, peerEpoch i64,
/// version i32, config length i32, config bytes (44 + config). Receivers also
/// accept the old 28-byte form (no peerEpoch: taken from the zxid) and the
/// 40-byte form (no version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    pub leader: i64,
    pub zxid: Zxid,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub version: i32,
    /// The sender's dynamic configuration text (version 2 and later).
    pub config: Bytes,
}

impl Notification {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(44 + self.config.len());
        w.write_i32(self.state as i32);
        w.write_i64(self.leader);
        w.write_i64(self.zxid);
        w.write_i64(self.election_epoch);
        w.write_i64(self.peer_epoch);
        w.write_i32(self.version);
        if self.version > 1 {
            w.write_buffer(&self.config);
        }
        w
    }

    pub fn decode(buf: &[u8]) -> Result<Self> {
        if buf.len() < 28 {
            return Err(JuteError::Invalid(format!(
                "short notification: {} bytes",
                buf.len()
            )));
        }
        if buf.len() > MAX_ELECTION_MESSAGE {
            return Err(JuteError::Invalid("notification too large".into()));
        }
        let mut r = Reader::new(buf);
        let raw_state = r.read_i32()?;
        let state = ServerState::from_i32(raw_state)
            .ok_or_else(|| JuteError::Invalid(format!("unknown server state {raw_state}")))?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let (peer_epoch, version) = if buf.len() == 28 {
            (epoch_of(zxid), 0)
        } else if buf.len() == 40 {
            (r.read_i64()?, 0)
        } else {
            (r.read_i64()?, r.read_i32()?)
        };
        let config = if version > 1 {
            r.read_buffer()?
        } else {
            Bytes::new()
        };
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

/// Quorum packet type numbers (`Leader.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Request = 1,
    Proposal = 2,
    Ack = 3,
    Commit = 4,
    Ping = 5,
    Revalidate = 6,
    Sync = 7,
    Inform = 8,
    CommitAndActivate = 9,
    NewLeader = 10,
    FollowerInfo = 11,
    UpToDate = 12,
    Diff = 13,
    Trunc = 14,
    Snap = 15,
    ObserverInfo = 16,
    LeaderInfo = 17,
    AckEpoch = 18,
    InformAndActivate = 19,
}

impl PacketType {
    pub fn from_i32(v: i32) -> Option<Self> {
        use PacketType::*;
        Some(match v {
            1 => Request,
            2 => Proposal,
            3 => Ack,
            4 => Commit,
            5 => Ping,
            6 => Revalidate,
            7 => Sync,
            8 => Inform,
            9 => CommitAndActivate,
            10 => NewLeader,
            11 => FollowerInfo,
            12 => UpToDate,
            13 => Diff,
            14 => Trunc,
            15 => Snap,
            16 => ObserverInfo,
            17 => LeaderInfo,
            18 => AckEpoch,
            19 => InformAndActivate,
            _ => return None,
        })
    }
}

jute_record! {
    /// `QuorumPacket` from `zookeeper.jute`: every message on the quorum port.
    pub struct QuorumPacket { pub packet_type: i32, pub zxid: i64, pub data: Bytes, pub authinfo: Vec<Id> }
}

jute_record! {
    /// Data of FOLLOWERINFO / OBSERVERINFO (`LearnerInfo` in `zookeeper.jute`).
    pub struct LearnerInfo { pub server_id: i64, pub protocol_version: i32, pub config_version: i64 }
}

/// The learner protocol version rzk speaks (0x10000, as ZooKeeper 3.4+).
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;

/// The quorum-port messages the ZAB cores exchange, typed. Each converts to
/// and from a [`QuorumPacket`]; the txn payloads stay opaque (the bytes of
/// TxnHeader + Txn, as ZooKeeper puts in PROPOSAL and INFORM data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZabMessage {
    /// learner → leader; zxid = acceptedEpoch << 32.
    FollowerInfo {
        accepted_epoch: i64,
        info: LearnerInfo,
    },
    ObserverInfo {
        accepted_epoch: i64,
        info: LearnerInfo,
    },
    /// leader → learner; zxid = newEpoch << 32, data = protocol version (i32).
    LeaderInfo {
        new_epoch: i64,
        protocol_version: i32,
    },
    /// learner → leader; data = currentEpoch as i32 (-1 when the learner had
    /// already accepted this epoch), zxid = last logged zxid.
    AckEpoch {
        current_epoch: i64,
        last_zxid: Zxid,
    },
    /// Sync by proposals and commits after `zxid` (the leader's last zxid).
    Diff {
        zxid: Zxid,
    },
    /// Truncate the log to `zxid`, then proposals and commits follow.
    Trunc {
        zxid: Zxid,
    },
    /// A full snapshot at `zxid` follows the packet on the stream.
    Snap {
        zxid: Zxid,
    },
    Proposal {
        zxid: Zxid,
        txn: Bytes,
    },
    Commit {
        zxid: Zxid,
    },
    Inform {
        zxid: Zxid,
        txn: Bytes,
    },
    /// zxid = newEpoch << 32; data = the leader's config text.
    NewLeader {
        zxid: Zxid,
        config: Bytes,
    },
    UpToDate {
        zxid: Zxid,
    },
    Ack {
        zxid: Zxid,
    },
    Ping {
        zxid: Zxid,
        data: Bytes,
    },
    /// Anything else (REQUEST, SYNC, REVALIDATE, *ANDACTIVATE): kept raw for
    /// the layers above; the cores here do not interpret it yet.
    Other(QuorumPacket),
}

fn packet(t: PacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        packet_type: t as i32,
        zxid,
        data,
        authinfo: Vec::new(),
    }
}

fn int_bytes(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

fn read_int_data(data: &[u8]) -> Result<i32> {
    Reader::new(data).read_i32()
}

impl ZabMessage {
    pub fn to_packet(&self) -> QuorumPacket {
        use ZabMessage::*;
        match self {
            FollowerInfo {
                accepted_epoch,
                info,
            } => packet(
                PacketType::FollowerInfo,
                super::make_zxid(*accepted_epoch, 0),
                info.to_bytes().into(),
            ),
            ObserverInfo {
                accepted_epoch,
                info,
            } => packet(
                PacketType::ObserverInfo,
                super::make_zxid(*accepted_epoch, 0),
                info.to_bytes().into(),
            ),
            LeaderInfo {
                new_epoch,
                protocol_version,
            } => packet(
                PacketType::LeaderInfo,
                super::make_zxid(*new_epoch, 0),
                int_bytes(*protocol_version),
            ),
            AckEpoch {
                current_epoch,
                last_zxid,
            } => packet(
                PacketType::AckEpoch,
                *last_zxid,
                int_bytes(*current_epoch as i32),
            ),
            Diff { zxid } => packet(PacketType::Diff, *zxid, Bytes::new()),
            Trunc { zxid } => packet(PacketType::Trunc, *zxid, Bytes::new()),
            Snap { zxid } => packet(PacketType::Snap, *zxid, Bytes::new()),
            Proposal { zxid, txn } => packet(PacketType::Proposal, *zxid, txn.clone()),
            Commit { zxid } => packet(PacketType::Commit, *zxid, Bytes::new()),
            Inform { zxid, txn } => packet(PacketType::Inform, *zxid, txn.clone()),
            NewLeader { zxid, config } => packet(PacketType::NewLeader, *zxid, config.clone()),
            UpToDate { zxid } => packet(PacketType::UpToDate, *zxid, Bytes::new()),
            Ack { zxid } => packet(PacketType::Ack, *zxid, Bytes::new()),
            Ping { zxid, data } => packet(PacketType::Ping, *zxid, data.clone()),
            Other(p) => p.clone(),
        }
    }

    pub fn from_packet(p: QuorumPacket) -> Result<Self> {
        use ZabMessage::*;
        let Some(t) = PacketType::from_i32(p.packet_type) else {
            return Err(JuteError::Invalid(format!(
                "unknown quorum packet type {}",
                p.packet_type
            )));
        };
        Ok(match t {
            PacketType::FollowerInfo => FollowerInfo {
                accepted_epoch: epoch_of(p.zxid),
                info: LearnerInfo::decode(&p.data)?,
            },
            PacketType::ObserverInfo => ObserverInfo {
                accepted_epoch: epoch_of(p.zxid),
                info: LearnerInfo::decode(&p.data)?,
            },
            PacketType::LeaderInfo => LeaderInfo {
                new_epoch: epoch_of(p.zxid),
                protocol_version: read_int_data(&p.data)?,
            },
            PacketType::AckEpoch => AckEpoch {
                current_epoch: read_int_data(&p.data)? as i64,
                last_zxid: p.zxid,
            },
            PacketType::Diff => Diff { zxid: p.zxid },
            PacketType::Trunc => Trunc { zxid: p.zxid },
            PacketType::Snap => Snap { zxid: p.zxid },
            PacketType::Proposal => Proposal {
                zxid: p.zxid,
                txn: p.data,
            },
            PacketType::Commit => Commit { zxid: p.zxid },
            PacketType::Inform => Inform {
                zxid: p.zxid,
                txn: p.data,
            },
            PacketType::NewLeader => NewLeader {
                zxid: p.zxid,
                config: p.data,
            },
            PacketType::UpToDate => UpToDate { zxid: p.zxid },
            PacketType::Ack => Ack { zxid: p.zxid },
            PacketType::Ping => Ping {
                zxid: p.zxid,
                data: p.data,
            },
            PacketType::Request
            | PacketType::Revalidate
            | PacketType::Sync
            | PacketType::CommitAndActivate
            | PacketType::InformAndActivate => Other(p),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_packet().to_bytes()
    }

    pub fn decode(buf: &[u8]) -> Result<Self> {
        Self::from_packet(QuorumPacket::decode(buf)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::make_zxid;

    #[test]
    fn notification_layout_matches_zookeeper() {
        let n = Notification {
            state: ServerState::Following,
            leader: 3,
            zxid: make_zxid(2, 7),
            election_epoch: 5,
            peer_epoch: 2,
            version: NOTIFICATION_VERSION,
            config: Bytes::from_static(b"server.1=a:1:2\nversion=0"),
        };
        let b = n.encode();
        assert_eq!(b.len(), 44 + n.config.len());
        assert_eq!(&b[0..4], &1i32.to_be_bytes());
        assert_eq!(&b[4..12], &3i64.to_be_bytes());
        assert_eq!(&b[36..40], &2i32.to_be_bytes());
        assert_eq!(Notification::decode(&b).unwrap(), n);
    }

    #[test]
    fn old_notification_forms_decode() {
        let mut b = Vec::new();
        b.write_i32(0);
        b.write_i64(1);
        b.write_i64(make_zxid(4, 1));
        b.write_i64(9);
        let n = Notification::decode(&b).unwrap();
        assert_eq!((n.peer_epoch, n.version), (4, 0));
        b.write_i64(3);
        b.write_i32(1);
        // 40 bytes: peer epoch present, version field ignored (ZooKeeper reads it as 0).
        let n = Notification::decode(&b).unwrap();
        assert_eq!((n.peer_epoch, n.version), (3, 0));
        assert!(Notification::decode(&b[..27]).is_err());
    }

    #[test]
    fn initial_message_round_trip_and_rejects() {
        let m = InitialMessage::new(7, "127.0.0.1:3888");
        let b = m.encode();
        assert_eq!(&b[0..8], &(-65535i64).to_be_bytes());
        assert_eq!(InitialMessage::decode(&b).unwrap(), m);
        let mut v1 = m.clone();
        v1.protocol_version = PROTOCOL_VERSION_V1;
        assert_eq!(InitialMessage::decode(&v1.encode()).unwrap(), v1);
        let old = InitialMessage::decode(&5i64.to_be_bytes()).unwrap();
        assert_eq!((old.sid, old.addresses.len()), (5, 0));
        assert!(InitialMessage::decode(&(-3i64).to_be_bytes()).is_err());
        let mut huge = Vec::new();
        huge.write_i64(PROTOCOL_VERSION_V2);
        huge.write_i64(1);
        huge.write_i32(5000);
        assert!(InitialMessage::decode(&huge).is_err());
    }

    #[test]
    fn only_the_higher_sid_keeps_an_election_connection() {
        assert!(election_connection_kept(3, 1));
        assert!(!election_connection_kept(1, 3));
        assert!(!election_connection_kept(2, 2));
    }

    #[test]
    fn zab_messages_round_trip() {
        let info = LearnerInfo {
            server_id: 2,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: 0x100000000,
        };
        let msgs = vec![
            ZabMessage::FollowerInfo {
                accepted_epoch: 3,
                info: info.clone(),
            },
            ZabMessage::ObserverInfo {
                accepted_epoch: 0,
                info,
            },
            ZabMessage::LeaderInfo {
                new_epoch: 4,
                protocol_version: LEARNER_PROTOCOL_VERSION,
            },
            ZabMessage::AckEpoch {
                current_epoch: -1,
                last_zxid: make_zxid(3, 9),
            },
            ZabMessage::Diff { zxid: 1 },
            ZabMessage::Trunc { zxid: 2 },
            ZabMessage::Snap { zxid: 3 },
            ZabMessage::Proposal {
                zxid: 4,
                txn: Bytes::from_static(b"txn"),
            },
            ZabMessage::Commit { zxid: 4 },
            ZabMessage::Inform {
                zxid: 5,
                txn: Bytes::from_static(b"t"),
            },
            ZabMessage::NewLeader {
                zxid: make_zxid(4, 0),
                config: Bytes::new(),
            },
            ZabMessage::UpToDate { zxid: 0 },
            ZabMessage::Ack { zxid: 9 },
            ZabMessage::Ping {
                zxid: 9,
                data: Bytes::new(),
            },
        ];
        for m in msgs {
            assert_eq!(ZabMessage::decode(&m.encode()).unwrap(), m, "{m:?}");
        }
        // FOLLOWERINFO's zxid carries the accepted epoch.
        let p = QuorumPacket::decode(
            &ZabMessage::FollowerInfo {
                accepted_epoch: 3,
                info: LearnerInfo::default(),
            }
            .encode(),
        )
        .unwrap();
        assert_eq!((p.packet_type, p.zxid), (11, 3 << 32));
        assert!(ZabMessage::decode(&packet(PacketType::Sync, 0, Bytes::new()).to_bytes()).is_ok());
        let mut bad = packet(PacketType::Ack, 0, Bytes::new());
        bad.packet_type = 99;
        assert!(ZabMessage::decode(&bad.to_bytes()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = Notification::decode(&data);
            let _ = InitialMessage::decode(&data);
            let _ = ZabMessage::decode(&data);
            let _ = LearnerInfo::decode(&data);
        }

        #[test]
        fn notifications_round_trip(state in 0i32..4, leader: i64, zxid: i64, ee: i64, pe: i64,
                                    config in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let n = Notification {
                state: ServerState::from_i32(state).unwrap(), leader, zxid,
                election_epoch: ee, peer_epoch: pe, version: NOTIFICATION_VERSION, config: config.into(),
            };
            proptest::prop_assert_eq!(Notification::decode(&n.encode()).unwrap(), n);
        }
    }
}
