//! Apache ZooKeeper's on-disk formats as pure functions over bytes: file
//! names, file headers, transaction-log records, snapshots and the tree
//! digest. No files, no clocks; nothing here panics on any input.
//!
//! Facts (from Apache ZooKeeper 3.8's `FileTxnLog`, `FileSnap`, `SnapStream`,
//! `Util`, `DataTree`, `ReferenceCountedACLCache`, `DigestCalculator`):
//!
//! * Every file starts with `FileHeader{magic i32, version i32 = 2, dbid i64}`;
//!   magic `ZKLG` for logs (dbid 0), `ZKSN` for snapshots (dbid -1).
//! * A log record is `adler32(payload) as i64`, `payload` as a jute buffer
//!   (`i32 len` + bytes), then `'B'` (0x42). The payload is `TxnHeader`, the
//!   txn body and, when the writer had digests enabled, a `TxnDigest`. The
//!   checksum covers only the payload bytes. Logs are preallocated with
//!   zeros, so a zero length marks the end.
//! * A snapshot is the header, `i32 count` + `(i64 session, i32 timeout)*`,
//!   the ACL cache `i32 count` + `(i64 ref, vector<ACL>)*`, then nodes
//!   `(string path, buffer data, i64 acl, StatPersisted)*` ended by the path
//!   `"/"`, then a seal: `i64 adler32(all bytes so far)` + string `"/"`.
//!   With digests enabled a `ZxidDigest{i64 zxid, i32 version, i64 digest}`
//!   and a second seal (checksum over everything before it) follow.

use super::{LogEntry, SnapNode, Snapshot};
use crate::jute::{JuteError, Reader, Record, Writer};
use crate::proto::OpCode;
use crate::proto::records::{Acl, StatPersisted};
use crate::proto::txn::{CloseSessionTxn, CreateTxn, MultiTxn, Txn, TxnDigest, TxnHeader};
use std::collections::HashSet;
use std::io::{self, Write};

pub const LOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
pub const FORMAT_VERSION: i32 = 2;
pub const FILE_HEADER_LEN: usize = 16;
/// The dbid ZooKeeper writes in log headers (never set, so 0).
pub const LOG_DBID: i64 = 0;
/// The dbid ZooKeeper writes in snapshot headers.
pub const SNAP_DBID: i64 = -1;
pub const END_OF_RECORD: u8 = b'B';
/// `DigestCalculator.DIGEST_VERSION` in 3.6 - 3.9.
pub const DIGEST_VERSION: i32 = 2;

pub const LOG_PREFIX: &str = "log";
pub const SNAP_PREFIX: &str = "snapshot";
/// Snapshots are written under this prefix and renamed when complete. The
/// name's first dot-separated part is not `snapshot`, so Apache ZooKeeper's
/// `Util.getZxidFromName` ignores a leftover temp file too.
pub const TEMP_SNAP_PREFIX: &str = "tmp.snapshot";

/// Why bytes are not a valid ZooKeeper file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("too short for a file header ({0} bytes)")]
    ShortHeader(usize),
    #[error("bad magic {found:#010x}, expected {expected:#010x}")]
    BadMagic { found: i32, expected: i32 },
    #[error("record at offset {offset}: {reason}")]
    Record { offset: usize, reason: String },
    #[error("snapshot: {0}")]
    Snapshot(String),
}

fn snap_err(what: impl std::fmt::Display) -> FormatError {
    FormatError::Snapshot(what.to_string())
}

impl From<JuteError> for FormatError {
    fn from(e: JuteError) -> Self {
        snap_err(e)
    }
}

// ---------------------------------------------------------------- names

pub fn log_file_name(zxid: i64) -> String {
    format!("{LOG_PREFIX}.{zxid:x}")
}

pub fn snapshot_file_name(zxid: i64) -> String {
    format!("{SNAP_PREFIX}.{zxid:x}")
}

pub fn temp_snapshot_file_name(zxid: i64) -> String {
    format!("{TEMP_SNAP_PREFIX}.{zxid:x}")
}

/// The zxid of `<prefix>.<hex>`; `None` for any other name. Compressed
/// snapshots (`snapshot.<hex>.gz` / `.snappy`) are not supported and so not
/// recognised.
pub fn parse_file_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    if rest.is_empty() || rest.len() > 16 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(rest, 16).ok().map(|z| z as i64)
}

// ---------------------------------------------------------------- headers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub magic: i32,
    pub version: i32,
    pub dbid: i64,
}

pub fn encode_file_header(magic: i32, dbid: i64) -> [u8; FILE_HEADER_LEN] {
    let mut out = [0u8; FILE_HEADER_LEN];
    out[0..4].copy_from_slice(&magic.to_be_bytes());
    out[4..8].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    out[8..16].copy_from_slice(&dbid.to_be_bytes());
    out
}

/// Reads a header and checks its magic (ZooKeeper checks nothing else).
pub fn decode_file_header(bytes: &[u8], magic: i32) -> Result<FileHeader, FormatError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(FormatError::ShortHeader(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    let h = FileHeader {
        magic: r.read_i32().map_err(snap_err)?,
        version: r.read_i32().map_err(snap_err)?,
        dbid: r.read_i64().map_err(snap_err)?,
    };
    if h.magic != magic {
        return Err(FormatError::BadMagic {
            found: h.magic,
            expected: magic,
        });
    }
    Ok(h)
}

// ---------------------------------------------------------------- log records

/// The record payload: `TxnHeader` + body (no digest).
pub fn encode_payload(entry: &LogEntry) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    entry.header.write(&mut buf);
    entry.txn.write_body(&mut buf);
    buf
}

/// Appends one complete log record (checksum, length, payload, `'B'`).
pub fn encode_record(entry: &LogEntry, out: &mut Vec<u8>) {
    encode_raw_record(&encode_payload(entry), out);
}

/// The same for a payload already encoded (a replicated txn as proposed).
pub fn encode_raw_record(payload: &[u8], out: &mut Vec<u8>) {
    out.write_i64(adler2::adler32_slice(payload) as i64);
    out.write_buffer(payload);
    out.push(END_OF_RECORD);
}

/// Decodes a record payload: header, body, and an optional trailing
/// `TxnDigest`, which is ignored.
pub fn decode_payload(payload: &[u8]) -> Result<LogEntry, String> {
    let mut r = Reader::new(payload);
    let header = TxnHeader::read(&mut r).map_err(|e| format!("txn header: {e}"))?;
    let txn = decode_body(header.txn_type, &mut r).map_err(|e| {
        format!(
            "txn body of type {} at zxid {:#x}: {e}",
            header.txn_type, header.zxid
        )
    })?;
    Ok(LogEntry { header, txn })
}

fn decode_body(txn_type: i32, r: &mut Reader<'_>) -> crate::jute::Result<Txn> {
    let digest_len = TxnDigest::MIN_SIZE;
    match OpCode::from_i32(txn_type) {
        // ZooKeeper writes no body when closeSessionTxn is disabled, so the
        // rest may be empty, a body, or only a digest.
        Some(OpCode::CloseSession) => {
            let rest = r.rest();
            let mut attempt = Reader::new(rest);
            match CloseSessionTxn::read(&mut attempt) {
                Ok(body) if attempt.is_empty() || attempt.remaining() == digest_len => {
                    *r = attempt;
                    Ok(Txn::CloseSession(body))
                }
                _ if rest.is_empty() || rest.len() == digest_len => {
                    Ok(Txn::CloseSession(CloseSessionTxn::default()))
                }
                Ok(_) => Err(JuteError::Invalid(
                    "trailing bytes after closeSession".into(),
                )),
                Err(e) => Err(e),
            }
        }
        // Logs from before ZooKeeper 3.3 carry a create without parentCVersion.
        Some(OpCode::Create) => {
            let mut attempt = r.clone();
            match Txn::read_body(txn_type, &mut attempt) {
                Ok(t) => {
                    *r = attempt;
                    Ok(t)
                }
                Err(JuteError::Eof { .. }) => Ok(Txn::Create(
                    OpCode::Create,
                    CreateTxn {
                        path: r.read_string()?,
                        data: r.read_buffer()?,
                        acl: r.read_vec::<Acl>()?,
                        ephemeral: r.read_bool()?,
                        parent_cversion: -1,
                    },
                )),
                Err(e) => Err(e),
            }
        }
        // ZooKeeper never nests a multi in a multi; refusing it here also
        // bounds the recursion of `Txn::read_body`.
        Some(OpCode::Multi) => {
            let m = MultiTxn::read(&mut r.clone())?;
            if m.txns.iter().any(|s| s.txn_type == OpCode::Multi as i32) {
                return Err(JuteError::Invalid("nested multi".into()));
            }
            Txn::read_body(txn_type, r)
        }
        _ => Txn::read_body(txn_type, r),
    }
}

/// How a log file ends after its last complete record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// End of file or the zero padding of preallocation.
    Clean,
    /// A partial or corrupt record starts at `offset`; nothing from there on
    /// can be trusted.
    Torn { offset: usize, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    pub header: FileHeader,
    pub entries: Vec<LogEntry>,
    /// Offset just past each entry's record.
    pub ends: Vec<usize>,
    /// Offset just past the last complete record (or the header).
    pub valid_len: usize,
    pub tail: Tail,
}

/// Reads every complete record of a log file. A torn or corrupt record ends
/// the scan (reported in `tail`). Only a bad header, or a record whose
/// checksum is right but whose contents do not decode, is an error.
pub fn scan_log(bytes: &[u8]) -> Result<LogScan, FormatError> {
    let header = decode_file_header(bytes, LOG_MAGIC)?;
    let mut pos = FILE_HEADER_LEN;
    let mut entries = Vec::new();
    let mut ends = Vec::new();
    let torn = |offset: usize, reason: &str| Tail::Torn {
        offset,
        reason: reason.to_string(),
    };
    let tail = loop {
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            if rest.iter().all(|&b| b == 0) {
                break Tail::Clean;
            }
            break torn(pos, "short record header");
        }
        let crc = i64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        if len == 0 {
            if crc == 0 {
                break Tail::Clean;
            }
            break torn(pos, "checksum without a record");
        }
        if len < 0 {
            break torn(pos, "negative record length");
        }
        let len = len as usize;
        if rest.len() - 12 < len + 1 {
            break torn(pos, "record runs past the end of the file");
        }
        let payload = &rest[12..12 + len];
        if rest[12 + len] != END_OF_RECORD {
            break torn(pos, "missing end-of-record marker");
        }
        if crc != adler2::adler32_slice(payload) as i64 {
            break torn(pos, "checksum mismatch");
        }
        let entry = decode_payload(payload).map_err(|reason| FormatError::Record {
            offset: pos,
            reason,
        })?;
        entries.push(entry);
        pos += 12 + len + 1;
        ends.push(pos);
    };
    Ok(LogScan {
        header,
        entries,
        ends,
        valid_len: pos,
        tail,
    })
}

// ---------------------------------------------------------------- digest

/// ZooKeeper's per-node digest (`DigestCalculator.calculateDigest`): CRC-32
/// of the path (root as `""`), the data and the stat fields czxid, mzxid,
/// pzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner.
/// Nodes under `/zookeeper/` do not count.
pub fn node_digest(path: &str, data: &[u8], stat: &StatPersisted) -> i64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut fields = Vec::with_capacity(60);
    for v in [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime] {
        fields.extend_from_slice(&v.to_be_bytes());
    }
    for v in [stat.version, stat.cversion, stat.aversion] {
        fields.extend_from_slice(&v.to_be_bytes());
    }
    fields.extend_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    crc.update(data);
    crc.update(&fields);
    crc.finalize() as i64
}

/// The tree digest: the wrapping sum of the node digests (ZooKeeper's `AdHash`).
pub fn tree_digest(nodes: &[SnapNode]) -> i64 {
    nodes.iter().fold(0i64, |sum, n| {
        sum.wrapping_add(node_digest(&n.path, &n.data, &n.stat))
    })
}

// ---------------------------------------------------------------- snapshots

/// The optional digest section of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSnapshot {
    pub snapshot: Snapshot,
    pub digest: Option<ZxidDigest>,
}

/// A `Write` that keeps ZooKeeper's running Adler-32 over everything written.
struct CheckedWriter<W: Write> {
    inner: W,
    adler: adler2::Adler32,
    written: u64,
}

impl<W: Write> CheckedWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.adler.write_slice(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn seal(&mut self) -> io::Result<()> {
        let mut b = Vec::with_capacity(13);
        b.write_i64(self.adler.checksum() as i64);
        b.write_string("/");
        self.put(&b)
    }
}

/// Streams a snapshot in ZooKeeper's format, with a digest section labelled
/// `zxid` (the digest is computed from `snap.nodes`). Returns the bytes written.
pub fn encode_snapshot<W: Write>(snap: &Snapshot, zxid: i64, out: W) -> io::Result<u64> {
    let mut w = CheckedWriter {
        inner: out,
        adler: adler2::Adler32::new(),
        written: 0,
    };
    w.put(&encode_file_header(SNAP_MAGIC, SNAP_DBID))?;
    let mut b = Vec::with_capacity(4096);
    encode_tree(snap, |chunk| w.put(chunk), &mut b)?;
    w.seal()?;
    b.clear();
    b.write_i64(zxid);
    b.write_i32(DIGEST_VERSION);
    b.write_i64(tree_digest(&snap.nodes));
    w.put(&b)?;
    w.seal()?;
    w.inner.flush()?;
    Ok(w.written)
}

pub fn encode_snapshot_to_vec(snap: &Snapshot, zxid: i64) -> Vec<u8> {
    let mut v = Vec::new();
    encode_snapshot(snap, zxid, &mut v).expect("writing to a Vec cannot fail");
    v
}

/// Checks a seal at the reader's position against the checksum of
/// `bytes[..pos]`.
fn check_seal(
    bytes: &[u8],
    r: &mut Reader<'_>,
    adler: &mut adler2::Adler32,
    summed: &mut usize,
) -> Result<(), FormatError> {
    let pos = bytes.len() - r.remaining();
    adler.write_slice(&bytes[*summed..pos]);
    *summed = pos;
    let val = r.read_i64()?;
    let slash = r.read_string()?;
    if val != adler.checksum() as i64 {
        return Err(snap_err("checksum mismatch (CRC corruption)"));
    }
    if slash != "/" {
        return Err(snap_err("seal is not followed by \"/\""));
    }
    Ok(())
}

/// Decodes and verifies a whole snapshot file, as ZooKeeper 3.8 does: the
/// first seal must match; a digest section is optional, but if present its
/// seal must match too. Nodes must come parents first, root (`""`) first.
/// Sessions, the ACL cache, the nodes and the `/` end marker: what a
/// snapshot file holds after its header, and what a leader streams to a
/// learner after SNAP (ZooKeeper's `serializeSnapshot`). `put` gets it in
/// chunks (one per node), `b` is scratch space.
fn encode_tree<E>(
    snap: &Snapshot,
    mut put: impl FnMut(&[u8]) -> Result<(), E>,
    b: &mut Vec<u8>,
) -> Result<(), E> {
    b.clear();
    b.write_i32(snap.sessions.len() as i32);
    for (id, timeout) in &snap.sessions {
        b.write_i64(*id);
        b.write_i32(*timeout);
    }
    b.write_i32(snap.acls.len() as i32);
    for (id, acls) in &snap.acls {
        b.write_i64(*id);
        b.write_vec(acls);
    }
    put(b)?;
    for node in &snap.nodes {
        b.clear();
        b.write_string(&node.path);
        b.write_buffer(&node.data);
        b.write_i64(node.acl);
        node.stat.write(b);
        put(b)?;
    }
    b.clear();
    b.write_string("/");
    put(b)
}

/// The tree as a leader streams it after SNAP (no header, no digest, no
/// checksum; the stream's `BenWasHere` signature is the sender's part).
pub fn encode_stream_snapshot(snap: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    let mut b = Vec::with_capacity(4096);
    let _ = encode_tree::<()>(
        snap,
        |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        },
        &mut b,
    );
    out
}

/// Reads what [`encode_stream_snapshot`] wrote (a leader's SNAP stream).
pub fn decode_stream_snapshot(bytes: &[u8]) -> Result<Snapshot, FormatError> {
    let mut r = Reader::new(bytes);
    let snap = decode_tree(&mut r)?;
    if !r.is_empty() {
        return Err(snap_err("bytes after the end of the tree"));
    }
    Ok(snap)
}

/// Sessions, ACL cache and nodes up to the `/` end marker.
fn decode_tree(r: &mut Reader<'_>) -> Result<Snapshot, FormatError> {
    let count = r.read_i32()?;
    if count < 0 || (count as usize).saturating_mul(12) > r.remaining() {
        return Err(snap_err(format!("bad session count {count}")));
    }
    let mut sessions = Vec::with_capacity(count as usize);
    for _ in 0..count {
        sessions.push((r.read_i64()?, r.read_i32()?));
    }
    let count = r.read_i32()?;
    if count < 0 || (count as usize).saturating_mul(12) > r.remaining() {
        return Err(snap_err(format!("bad ACL cache size {count}")));
    }
    let mut acls = Vec::with_capacity(count as usize);
    for _ in 0..count {
        acls.push((r.read_i64()?, r.read_vec::<Acl>()?));
    }
    let mut nodes: Vec<SnapNode> = Vec::new();
    let mut paths: HashSet<String> = HashSet::new();
    loop {
        let path = r.read_string()?;
        if path == "/" {
            break;
        }
        let node = SnapNode {
            data: r.read_buffer()?,
            acl: r.read_i64()?,
            stat: StatPersisted::read(r)?,
            path,
        };
        match node.path.rfind('/') {
            None if nodes.is_empty() && node.path.is_empty() => {}
            None => return Err(snap_err(format!("bad node path {:?}", node.path))),
            Some(i) => {
                if !paths.contains(&node.path[..i]) {
                    return Err(snap_err(format!(
                        "node {} comes before its parent",
                        node.path
                    )));
                }
            }
        }
        if !paths.insert(node.path.clone()) {
            return Err(snap_err(format!("duplicate node {}", node.path)));
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(snap_err("no root node"));
    }
    Ok(Snapshot {
        sessions,
        acls,
        nodes,
    })
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<DecodedSnapshot, FormatError> {
    decode_file_header(bytes, SNAP_MAGIC)?;
    let mut r = Reader::new(&bytes[FILE_HEADER_LEN..]);
    let Snapshot {
        sessions,
        acls,
        nodes,
    } = decode_tree(&mut r)?;
    // The reader works on bytes[FILE_HEADER_LEN..]; seals cover the whole file.
    let body = bytes;
    let mut whole = Reader::new(&body[body.len() - r.remaining()..]);
    let mut adler = adler2::Adler32::new();
    let mut summed = 0;
    check_seal(body, &mut whole, &mut adler, &mut summed)?;
    let digest = if whole.is_empty() {
        None
    } else {
        let mut d = whole.clone();
        let parsed = (|| -> crate::jute::Result<ZxidDigest> {
            let zxid = d.read_i64()?;
            let version = d.read_i32()?;
            let digest = if version < 2 {
                let hex = d.read_string()?;
                i64::from_str_radix(&hex, 16).map_err(|_| JuteError::Invalid(hex))?
            } else {
                d.read_i64()?
            };
            Ok(ZxidDigest {
                zxid,
                version,
                digest,
            })
        })();
        match parsed {
            // Like ZooKeeper: a digest cut short means an older format; ignore it.
            Err(JuteError::Eof { .. }) => None,
            Err(e) => return Err(snap_err(format!("digest: {e}"))),
            Ok(zd) => {
                check_seal(body, &mut d, &mut adler, &mut summed)?;
                Some(zd)
            }
        }
    };
    Ok(DecodedSnapshot {
        snapshot: Snapshot {
            sessions,
            acls,
            nodes,
        },
        digest,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn stream_snapshot_round_trips_and_rejects_trailing_bytes() {
        let snap = Snapshot {
            sessions: vec![(7, 3000)],
            acls: vec![(1, vec![])],
            nodes: vec![
                SnapNode {
                    path: String::new(),
                    data: Bytes::new(),
                    acl: -1,
                    stat: StatPersisted::default(),
                },
                SnapNode {
                    path: "/a".into(),
                    data: Bytes::from_static(b"x"),
                    acl: 1,
                    stat: StatPersisted::default(),
                },
            ],
        };
        let bytes = encode_stream_snapshot(&snap);
        assert_eq!(decode_stream_snapshot(&bytes).unwrap(), snap);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_stream_snapshot(&longer).is_err());
        assert!(decode_stream_snapshot(&bytes[..bytes.len() - 1]).is_err());
    }

    use super::*;
    use crate::proto::records::Id;
    use crate::proto::txn::{CreateSessionTxn, DeleteTxn, SetDataTxn};
    use bytes::Bytes;

    fn entry(zxid: i64, txn: Txn) -> LogEntry {
        LogEntry {
            header: TxnHeader {
                client_id: 0x1000_0000_0000_0001,
                cxid: zxid as i32,
                zxid,
                time: 1_700_000_000_000 + zxid,
                txn_type: txn.op() as i32,
            },
            txn,
        }
    }

    fn world() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    pub(crate) fn sample_entries(n: i64) -> Vec<LogEntry> {
        (1..=n)
            .map(|z| match z % 4 {
                0 => entry(z, Txn::CreateSession(CreateSessionTxn { time_out: 30000 })),
                1 => entry(
                    z,
                    Txn::Create(
                        OpCode::Create,
                        CreateTxn {
                            path: format!("/n{z}"),
                            data: Bytes::from(vec![z as u8; (z % 7) as usize]),
                            acl: world(),
                            ephemeral: z % 3 == 0,
                            parent_cversion: z as i32,
                        },
                    ),
                ),
                2 => entry(
                    z,
                    Txn::SetData(SetDataTxn {
                        path: format!("/n{}", z - 1),
                        data: Bytes::from_static(b"new"),
                        version: 1,
                    }),
                ),
                _ => entry(
                    z,
                    Txn::Multi(vec![
                        Txn::Delete(OpCode::Delete, DeleteTxn { path: "/x".into() }),
                        Txn::SetData(SetDataTxn {
                            path: "/y".into(),
                            data: Bytes::new(),
                            version: -1,
                        }),
                    ]),
                ),
            })
            .collect()
    }

    fn log_bytes(entries: &[LogEntry], padding: usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = encode_file_header(LOG_MAGIC, LOG_DBID).to_vec();
        let mut starts = Vec::new();
        for e in entries {
            starts.push(out.len());
            encode_record(e, &mut out);
        }
        out.resize(out.len() + padding, 0);
        (out, starts)
    }

    pub(crate) fn sample_snapshot() -> Snapshot {
        let stat = |z: i64, owner: i64| StatPersisted {
            czxid: z,
            mzxid: z + 1,
            ctime: 1000 * z,
            mtime: 1000 * z + 5,
            version: 1,
            cversion: 2,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: z + 2,
        };
        let node = |path: &str, data: &'static [u8], acl: i64, st| SnapNode {
            path: path.into(),
            data: Bytes::from_static(data),
            acl,
            stat: st,
        };
        Snapshot {
            sessions: vec![(0x1000_0000_0000_0001, 30000), (7, 4000)],
            acls: vec![
                (1, world()),
                (
                    2,
                    vec![Acl {
                        perms: 1,
                        id: Id {
                            scheme: "digest".into(),
                            id: "u:hash=".into(),
                        },
                    }],
                ),
            ],
            nodes: vec![
                node("", b"", -1, StatPersisted::default()),
                node("/zookeeper", b"", -1, StatPersisted::default()),
                node("/zookeeper/quota", b"", -1, StatPersisted::default()),
                node("/a", b"hello", 1, stat(3, 0)),
                node("/a/b", b"\x00\x01", 2, stat(4, 0x1000_0000_0000_0001)),
            ],
        }
    }

    #[test]
    fn file_names_round_trip_like_zookeeper() {
        assert_eq!(log_file_name(0x1_0000_0001), "log.100000001");
        assert_eq!(snapshot_file_name(0), "snapshot.0");
        assert_eq!(parse_file_name("snapshot.1a", SNAP_PREFIX), Some(0x1a));
        assert_eq!(
            parse_file_name("log.ffffffffffffffff", LOG_PREFIX),
            Some(-1)
        );
        assert_eq!(parse_file_name("snapshot.1a.gz", SNAP_PREFIX), None);
        assert_eq!(parse_file_name("tmp.snapshot.1a", SNAP_PREFIX), None);
        assert_eq!(parse_file_name("log.", LOG_PREFIX), None);
        assert_eq!(parse_file_name("logs.1", LOG_PREFIX), None);
    }

    #[test]
    fn records_round_trip() {
        let entries = sample_entries(40);
        let (bytes, _) = log_bytes(&entries, 1000);
        let scan = scan_log(&bytes).unwrap();
        assert_eq!(scan.tail, Tail::Clean);
        assert_eq!(scan.entries, entries);
        assert_eq!(scan.header.dbid, 0);
        assert_eq!(scan.valid_len, bytes.len() - 1000);
    }

    #[test]
    fn trailing_txn_digest_is_ignored() {
        let e = &sample_entries(1)[0];
        let mut payload = encode_payload(e);
        TxnDigest {
            version: 2,
            tree_digest: 12345,
        }
        .write(&mut payload);
        assert_eq!(&decode_payload(&payload).unwrap(), e);
    }

    #[test]
    fn close_session_with_or_without_body_and_digest() {
        let hdr = TxnHeader {
            client_id: 5,
            cxid: 0,
            zxid: 9,
            time: 1,
            txn_type: OpCode::CloseSession as i32,
        };
        let digest = TxnDigest {
            version: 2,
            tree_digest: 77,
        }
        .to_bytes();
        let body = CloseSessionTxn {
            paths_to_delete: vec!["/e".into()],
        };
        for (with_body, with_digest) in [(false, false), (false, true), (true, false), (true, true)]
        {
            let mut p = hdr.to_bytes();
            if with_body {
                body.write(&mut p);
            }
            if with_digest {
                p.extend_from_slice(&digest);
            }
            let e = decode_payload(&p).unwrap();
            let want = if with_body {
                body.clone()
            } else {
                CloseSessionTxn::default()
            };
            assert_eq!(e.txn, Txn::CloseSession(want), "{with_body} {with_digest}");
        }
    }

    #[test]
    fn create_v0_without_parent_cversion() {
        let mut p = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 2,
            time: 3,
            txn_type: OpCode::Create as i32,
        }
        .to_bytes();
        p.write_string("/old");
        p.write_buffer(b"d");
        p.write_vec(&world());
        p.write_bool(false);
        match decode_payload(&p).unwrap().txn {
            Txn::Create(_, c) => {
                assert_eq!(c.path, "/old");
                assert_eq!(c.parent_cversion, -1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn torn_last_record_at_every_offset_recovers_the_complete_ones() {
        let entries = sample_entries(6);
        let (full, starts) = log_bytes(&entries, 0);
        let last = *starts.last().unwrap();
        for cut in last..full.len() {
            // Cut off, and cut off then zero-padded as a preallocated file is.
            for padding in [0usize, 64] {
                let mut b = full[..cut].to_vec();
                b.resize(cut + padding, 0);
                let scan = scan_log(&b).unwrap();
                assert_eq!(scan.entries, entries[..5], "cut at {cut} padding {padding}");
                assert_eq!(scan.valid_len, last);
                // The checksum's high bytes are zero, so a cut inside them
                // looks exactly like padding.
                if full[last..cut].iter().all(|&b| b == 0) {
                    assert_eq!(scan.tail, Tail::Clean, "cut at {cut}");
                } else {
                    assert!(
                        matches!(scan.tail, Tail::Torn { offset, .. } if offset == last),
                        "cut at {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn flipped_byte_in_last_record_is_detected() {
        let entries = sample_entries(5);
        let (full, starts) = log_bytes(&entries, 100);
        let last = *starts.last().unwrap();
        let end = full.len() - 100;
        for i in last..end {
            for bit in [0x01u8, 0x80] {
                let mut b = full.clone();
                b[i] ^= bit;
                let scan = scan_log(&b).unwrap();
                assert_eq!(scan.entries, entries[..4], "flip at {i}");
                assert!(matches!(scan.tail, Tail::Torn { offset, .. } if offset == last));
            }
        }
    }

    #[test]
    fn bad_log_header_is_an_error() {
        assert_eq!(scan_log(b"ZKLG"), Err(FormatError::ShortHeader(4)));
        let mut b = encode_file_header(SNAP_MAGIC, 0).to_vec();
        b.resize(100, 0);
        assert!(matches!(scan_log(&b), Err(FormatError::BadMagic { .. })));
    }

    #[test]
    fn snapshot_round_trip_with_digest() {
        let snap = sample_snapshot();
        let bytes = encode_snapshot_to_vec(&snap, 0x42);
        // ZooKeeper's quick validity check: the file ends with the "/" of a seal.
        assert_eq!(&bytes[bytes.len() - 5..], &[0, 0, 0, 1, b'/']);
        let d = decode_snapshot(&bytes).unwrap();
        assert_eq!(d.snapshot, snap);
        let zd = d.digest.unwrap();
        assert_eq!((zd.zxid, zd.version), (0x42, 2));
        assert_eq!(zd.digest, tree_digest(&snap.nodes));
    }

    #[test]
    fn snapshot_without_digest_section_is_accepted() {
        let snap = sample_snapshot();
        let bytes = encode_snapshot_to_vec(&snap, 1);
        // Cut after the first seal: header..nodes, "/", seal = 8 + 5 bytes.
        let digest_section = 8 + 4 + 8 + 8 + 5;
        let short = &bytes[..bytes.len() - digest_section];
        let d = decode_snapshot(short).unwrap();
        assert_eq!(d.snapshot, snap);
        assert_eq!(d.digest, None);
    }

    #[test]
    fn snapshot_corruption_is_detected_everywhere() {
        let bytes = encode_snapshot_to_vec(&sample_snapshot(), 1);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                decode_snapshot(&b).is_err(),
                "flip at {i} of {} not detected",
                bytes.len()
            );
        }
        for cut in 0..bytes.len() - 33 {
            assert!(decode_snapshot(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn snapshot_rejects_child_before_parent() {
        let mut snap = sample_snapshot();
        snap.nodes.swap(3, 4);
        let bytes = encode_snapshot_to_vec(&snap, 1);
        assert!(decode_snapshot(&bytes).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = scan_log(&data);
            let _ = decode_snapshot(&data);
            let _ = decode_payload(&data);
            let mut b = encode_file_header(LOG_MAGIC, 0).to_vec();
            b.extend_from_slice(&data);
            let _ = scan_log(&b);
            let mut s = encode_file_header(SNAP_MAGIC, -1).to_vec();
            s.extend_from_slice(&data);
            let _ = decode_snapshot(&s);
        }

        #[test]
        fn valid_records_with_garbage_payloads_never_panic(
            payload in proptest::collection::vec(proptest::num::u8::ANY, 32..300),
            txn_type in proptest::sample::select(vec![-11i32, -10, -1, 1, 2, 5, 7, 13, 14, 15, 16, 19, 20, 21]),
        ) {
            // A record whose checksum is right, so decoding reaches the body.
            let mut p = payload.clone();
            p[28..32].copy_from_slice(&txn_type.to_be_bytes());
            let mut b = encode_file_header(LOG_MAGIC, 0).to_vec();
            b.write_i64(adler2::adler32_slice(&p) as i64);
            b.write_buffer(&p);
            b.push(END_OF_RECORD);
            let _ = scan_log(&b);
        }
    }
}
