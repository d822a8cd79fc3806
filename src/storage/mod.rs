//! Durable storage for `rzk server`: the transaction log, snapshots,
//! recovery and retention, in Apache ZooKeeper's own on-disk format, so an
//! Apache ZooKeeper 3.8 server can start from an rzk data directory and the
//! other way round.
//!
//! Layout (as ZooKeeper's `FileTxnSnapLog`): `<dataDir>/version-2/snapshot.<hex zxid>`
//! and `<dataLogDir>/version-2/log.<hex zxid of the first txn>`.
//!
//! * [`format`] is the pure core: file names, record and snapshot encoding and
//!   decoding, torn-tail detection, ZooKeeper's tree digest. Bytes in, values
//!   out; no files, no clocks.
//! * [`datadir`] is the file-system shell: locking, recovery, snapshot
//!   writing, purging.
//! * [`txnlog`] is the group-commit log writer on its own OS thread.
//!
//! This module touches only the two data directories it is given.

pub mod datadir;
pub mod format;
pub mod txnlog;

pub use datadir::DataDir;
pub use format::FormatError;
pub use txnlog::{LogOptions, LogStats, TxnLog};

use crate::proto::records::{Acl, StatPersisted};
use crate::proto::txn::{Txn, TxnHeader};
use bytes::Bytes;
use std::path::PathBuf;

/// One logged transaction. A `TxnDigest` that Apache ZooKeeper appends to a
/// record is ignored on read and never written (it is optional in 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub header: TxnHeader,
    pub txn: Txn,
}

/// One znode as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapNode {
    /// Full path; the root is `""` as in ZooKeeper's snapshots.
    pub path: String,
    pub data: Bytes,
    /// Reference into [`Snapshot::acls`]. `-1` means world:anyone with all
    /// permissions and has no cache entry (ZooKeeper's `OPEN_ACL_UNSAFE`
    /// marker, used for the root and `/zookeeper`).
    pub acl: i64,
    pub stat: StatPersisted,
}

/// A whole data tree as a snapshot file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// (session id, timeout in ms)
    pub sessions: Vec<(i64, i32)>,
    /// The ACL cache: reference number -> ACL list.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// Parents before children; the root (path `""`) first.
    pub nodes: Vec<SnapNode>,
}

/// What [`DataDir::recover`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// (zxid from the file name, snapshot) of the newest valid snapshot.
    pub snapshot: Option<(i64, Snapshot)>,
    /// Every logged txn with zxid > the snapshot's zxid, in log order.
    pub entries: Vec<LogEntry>,
    /// The highest zxid of the snapshot and the entries (0 when empty).
    pub last_zxid: i64,
}

/// Why storage failed. IO errors are fatal for a server.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    #[error("{file}: {error}")]
    Format { file: PathBuf, error: FormatError },
    #[error("{0}")]
    Corrupt(String),
    #[error("the transaction log writer stopped: {0}")]
    LogFailed(String),
}

impl StorageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}
