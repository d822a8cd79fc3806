//! The file-system shell around [`super::format`]: the `version-2`
//! directories, their lock, recovery, snapshot writing, retention and sizes.
//! Touches only `<dataDir>` and `<dataLogDir>`.

use super::format::{
    self, LOG_PREFIX, SNAP_PREFIX, TEMP_SNAP_PREFIX, Tail, parse_file_name, snapshot_file_name,
    temp_snapshot_file_name,
};
use super::{LogEntry, Recovered, Snapshot, StorageError};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// ZooKeeper's data layout version directory.
pub const VERSION_DIR: &str = "version-2";
/// The lock file, outside `version-2` so ZooKeeper never looks at it.
pub const LOCK_FILE: &str = "rzk.lock";
/// ZooKeeper keeps at least this many snapshots when purging.
pub const MIN_RETAIN: usize = 3;

/// The two ZooKeeper data directories, locked for this process.
#[derive(Debug)]
pub struct DataDir {
    snap_dir: PathBuf,
    log_dir: PathBuf,
    _locks: Vec<File>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |e| StorageError::io(context, e)
}

/// Fsyncs a directory so a created, renamed or removed entry is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("fsync directory {}", dir.display())))
}

/// (zxid, path) of every file named `<prefix>.<hex>` in `dir`, ascending.
fn list(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).map_err(io_err(format!("list {}", dir.display())))? {
        let ent = ent.map_err(io_err(format!("list {}", dir.display())))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(zxid) = parse_file_name(name, prefix) {
            out.push((zxid, ent.path()));
        } else if name.starts_with(&format!("{prefix}.")) {
            tracing::warn!(file = %ent.path().display(), "ignoring file with an unsupported name");
        }
    }
    out.sort();
    Ok(out)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut f = File::create(path).map_err(io_err(format!("create {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("write {}", path.display())))
}

fn read(path: &Path) -> Result<Vec<u8>, StorageError> {
    fs::read(path).map_err(io_err(format!("read {}", path.display())))
}

/// Scans a log file, reading only as much of it as holds records: a
/// preallocated file is mostly zeros, so reading stops at the first empty
/// record. Returns the scan and the file's length.
fn scan_log_file(
    path: &Path,
) -> Result<(Result<format::LogScan, format::FormatError>, u64), StorageError> {
    use std::io::Read;
    let mut f = File::open(path).map_err(io_err(format!("open {}", path.display())))?;
    let file_len = f
        .metadata()
        .map_err(io_err(format!("stat {}", path.display())))?
        .len();
    let mut buf = Vec::new();
    let mut want: u64 = 1 << 20;
    loop {
        let target = want.min(file_len);
        (&mut f)
            .take(target.saturating_sub(buf.len() as u64))
            .read_to_end(&mut buf)
            .map_err(io_err(format!("read {}", path.display())))?;
        let at_eof = buf.len() as u64 >= file_len || (buf.len() as u64) < target;
        let scan = format::scan_log(&buf);
        let done = match &scan {
            Err(_) => true,
            // A zero length with room for a whole record header is the
            // definite end; fewer bytes may just be the end of this read.
            Ok(s) => s.tail == Tail::Clean && s.valid_len + 12 <= buf.len(),
        };
        if done || at_eof {
            return Ok((scan, file_len));
        }
        want = want.saturating_mul(4);
    }
}

/// Which log files may hold txns after `snap_zxid`: the newest one starting
/// at or before it and every later one (ZooKeeper's `getLogFiles`).
pub fn logs_needed(logs: &[(i64, PathBuf)], snap_zxid: i64) -> &[(i64, PathBuf)] {
    let first = logs.iter().rposition(|(z, _)| *z <= snap_zxid).unwrap_or(0);
    &logs[first..]
}

/// True if `next` may follow `prev` without a missing txn: the next
/// counter in the same epoch, or any zxid of a later epoch.
fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || (next >> 32) > (prev >> 32)
}

impl DataDir {
    /// Creates `version-2/` in both directories if missing and takes an
    /// exclusive lock so two servers cannot share them.
    pub fn open(data_dir: &Path, data_log_dir: &Path) -> Result<DataDir, StorageError> {
        let mut locks = Vec::new();
        let mut locked: Vec<PathBuf> = Vec::new();
        for dir in [data_dir, data_log_dir] {
            let v2 = dir.join(VERSION_DIR);
            fs::create_dir_all(&v2).map_err(io_err(format!("create {}", v2.display())))?;
            let canonical =
                fs::canonicalize(dir).map_err(io_err(format!("resolve {}", dir.display())))?;
            if locked.contains(&canonical) {
                continue;
            }
            let lock_path = canonical.join(LOCK_FILE);
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err(format!("open {}", lock_path.display())))?;
            match f.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(StorageError::Locked(canonical)),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(StorageError::io(format!("lock {}", lock_path.display()), e));
                }
            }
            locks.push(f);
            locked.push(canonical);
        }
        Ok(DataDir {
            snap_dir: data_dir.join(VERSION_DIR),
            log_dir: data_log_dir.join(VERSION_DIR),
            _locks: locks,
        })
    }

    /// `<dataDir>/version-2`
    pub fn snap_dir(&self) -> &Path {
        &self.snap_dir
    }

    /// `<dataLogDir>/version-2`
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Loads the newest valid snapshot (older ones if newer are corrupt) and
    /// every later logged txn. A torn or corrupt tail of the last log file is
    /// cut off (the file is truncated, with a warning); damage anywhere that
    /// would lose txns after it is an error.
    pub fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.remove_temp_snapshots()?;
        let snaps = list(&self.snap_dir, SNAP_PREFIX)?;
        let mut snapshot = None;
        for (zxid, path) in snaps.iter().rev() {
            match format::decode_snapshot(&read(path)?) {
                Ok(d) => {
                    tracing::info!(file = %path.display(), zxid = format_args!("{zxid:#x}"), nodes = d.snapshot.nodes.len(), "loaded snapshot");
                    snapshot = Some((*zxid, d.snapshot));
                    break;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping invalid snapshot")
                }
            }
        }
        if snapshot.is_none() && !snaps.is_empty() {
            return Err(StorageError::Corrupt(format!(
                "none of the {} snapshots in {} is valid",
                snaps.len(),
                self.snap_dir.display()
            )));
        }
        let snap_zxid = snapshot.as_ref().map_or(0, |(z, _)| *z);

        let logs = list(&self.log_dir, LOG_PREFIX)?;
        let needed = logs_needed(&logs, snap_zxid).to_vec();
        let mut entries: Vec<LogEntry> = Vec::new();
        let mut last_logged: Option<i64> = None;
        for (i, (_, path)) in needed.iter().enumerate() {
            let is_last = i + 1 == needed.len();
            let (scan, file_len) = scan_log_file(path)?;
            let scan = match scan {
                Ok(scan) => scan,
                // A crash while creating the newest file leaves it empty or
                // with a partial header: nothing in it was ever acknowledged.
                Err(format::FormatError::ShortHeader(_)) if is_last => {
                    tracing::warn!(file = %path.display(), "removing log file with an incomplete header");
                    fs::remove_file(path).map_err(io_err(format!("remove {}", path.display())))?;
                    sync_dir(&self.log_dir)?;
                    continue;
                }
                Err(error) => {
                    return Err(StorageError::Format {
                        file: path.clone(),
                        error,
                    });
                }
            };
            if let Tail::Torn { offset, reason } = &scan.tail {
                let next_first = needed.get(i + 1).map(|(z, _)| *z);
                let last_good = scan.entries.last().map(|e| e.header.zxid).or(last_logged);
                let harmless = match (next_first, last_good) {
                    (None, _) => true,
                    (Some(next), Some(prev)) => follows(prev, next),
                    (Some(_), None) => false,
                };
                if !harmless {
                    return Err(StorageError::Corrupt(format!(
                        "{} is damaged at offset {offset} ({reason}) and later log files do not continue after it",
                        path.display()
                    )));
                }
                tracing::warn!(
                    file = %path.display(), offset, reason = %reason,
                    dropped_bytes = file_len.saturating_sub(*offset as u64),
                    "cutting a torn or corrupt log tail"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(format!("open {}", path.display())))?;
                f.set_len(*offset as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(io_err(format!("truncate {}", path.display())))?;
            }
            for e in scan.entries {
                let z = e.header.zxid;
                if let Some(prev) = last_logged {
                    if z <= prev {
                        tracing::warn!(zxid = format_args!("{z:#x}"), prev = format_args!("{prev:#x}"), file = %path.display(), "zxid does not increase");
                    } else if !follows(prev, z) {
                        tracing::warn!(zxid = format_args!("{z:#x}"), prev = format_args!("{prev:#x}"), file = %path.display(), "gap in logged zxids");
                    }
                }
                last_logged = Some(z);
                if z > snap_zxid {
                    entries.push(e);
                }
            }
        }
        match (&snapshot, entries.first()) {
            (None, Some(first)) if first.header.zxid & 0xffff_ffff > 1 => {
                return Err(StorageError::Corrupt(format!(
                    "no snapshot, but the logs start at zxid {:#x}: earlier transactions are missing",
                    first.header.zxid
                )));
            }
            (Some((sz, _)), Some(first)) if !follows(*sz, first.header.zxid) => {
                tracing::warn!(
                    snapshot = format_args!("{sz:#x}"),
                    first = format_args!("{:#x}", first.header.zxid),
                    "gap between the snapshot and the first logged txn after it"
                );
            }
            _ => {}
        }
        let last_zxid = entries
            .last()
            .map_or(snap_zxid, |e| e.header.zxid.max(snap_zxid));
        Ok(Recovered {
            snapshot,
            entries,
            last_zxid,
        })
    }

    fn remove_temp_snapshots(&self) -> Result<(), StorageError> {
        let dir = &self.snap_dir;
        for ent in fs::read_dir(dir).map_err(io_err(format!("list {}", dir.display())))? {
            let ent = ent.map_err(io_err(format!("list {}", dir.display())))?;
            if ent
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&format!("{TEMP_SNAP_PREFIX}.")))
            {
                tracing::warn!(file = %ent.path().display(), "removing unfinished snapshot");
                fs::remove_file(ent.path())
                    .map_err(io_err(format!("remove {}", ent.path().display())))?;
            }
        }
        Ok(())
    }

    /// Writes `snapshot.<zxid>` atomically: a temp file, fsync, rename, fsync
    /// of the directory. Blocking; call it from a blocking thread.
    pub fn write_snapshot(&self, zxid: i64, snap: &Snapshot) -> Result<u64, StorageError> {
        if snap.nodes.first().is_none_or(|n| !n.path.is_empty()) {
            return Err(StorageError::Corrupt(
                "a snapshot must start with the root node (path \"\")".into(),
            ));
        }
        let tmp = self.snap_dir.join(temp_snapshot_file_name(zxid));
        let dest = self.snap_dir.join(snapshot_file_name(zxid));
        let result = (|| {
            let f = File::create(&tmp).map_err(io_err(format!("create {}", tmp.display())))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let n = format::encode_snapshot(snap, zxid, &mut w)
                .map_err(io_err(format!("write {}", tmp.display())))?;
            let f = w.into_inner().map_err(|e| {
                StorageError::io(format!("write {}", tmp.display()), e.into_error())
            })?;
            f.sync_all()
                .map_err(io_err(format!("fsync {}", tmp.display())))?;
            fs::rename(&tmp, &dest).map_err(io_err(format!("rename to {}", dest.display())))?;
            sync_dir(&self.snap_dir)?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Drops every logged txn after `zxid` (ZooKeeper's truncateLog): later
    /// log files are deleted, the one holding `zxid` is cut after it, and
    /// snapshots past it go too.
    pub fn truncate_after(&self, zxid: i64) -> Result<(), StorageError> {
        for (start, path) in list(&self.log_dir, LOG_PREFIX)?.into_iter().rev() {
            if start > zxid {
                tracing::info!(file = %path.display(), "truncation removes log file");
                fs::remove_file(&path).map_err(io_err(format!("remove {}", path.display())))?;
                continue;
            }
            let bytes = read(&path)?;
            let scan = format::scan_log(&bytes).map_err(|error| StorageError::Format {
                file: path.clone(),
                error,
            })?;
            let keep = scan
                .entries
                .iter()
                .zip(&scan.ends)
                .take_while(|(e, _)| e.header.zxid <= zxid)
                .last()
                .map_or(format::FILE_HEADER_LEN, |(_, end)| *end);
            if keep < scan.valid_len {
                tracing::info!(file = %path.display(), zxid = format_args!("{zxid:#x}"), "truncating log file");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(format!("open {}", path.display())))?;
                f.set_len(keep as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(io_err(format!("truncate {}", path.display())))?;
            }
            break;
        }
        for (z, path) in list(&self.snap_dir, SNAP_PREFIX)? {
            if z > zxid {
                fs::remove_file(&path).map_err(io_err(format!("remove {}", path.display())))?;
            }
        }
        sync_dir(&self.log_dir)?;
        sync_dir(&self.snap_dir)
    }

    /// Deletes every log file (after installing a leader's snapshot, which
    /// supersedes them).
    pub fn remove_logs(&self) -> Result<(), StorageError> {
        for (_, path) in list(&self.log_dir, LOG_PREFIX)? {
            fs::remove_file(&path).map_err(io_err(format!("remove {}", path.display())))?;
        }
        sync_dir(&self.log_dir)
    }

    /// Reads an epoch file (`currentEpoch`, `acceptedEpoch`) of the
    /// snapshot directory; None when it does not exist.
    pub fn read_epoch(&self, name: &str) -> Result<Option<i64>, StorageError> {
        let path = self.snap_dir.join(name);
        match fs::read_to_string(&path) {
            Ok(t) => crate::quorum::zab::parse_epoch_file(&t)
                .map(Some)
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Writes an epoch file atomically (temp file, fsync, rename).
    pub fn write_epoch(&self, name: &str, epoch: i64) -> Result<(), StorageError> {
        let tmp = self.snap_dir.join(format!("{name}.tmp"));
        write_synced(
            &tmp,
            crate::quorum::zab::format_epoch_file(epoch).as_bytes(),
        )?;
        let dest = self.snap_dir.join(name);
        fs::rename(&tmp, &dest).map_err(io_err(format!("rename to {}", dest.display())))?;
        sync_dir(&self.snap_dir)
    }

    /// Keeps the newest `retain` snapshots (at least 3) and the log files
    /// still needed to replay from the oldest of them; deletes the rest.
    pub fn purge(&self, retain: usize) -> Result<(), StorageError> {
        let retain = retain.max(MIN_RETAIN);
        let snaps = list(&self.snap_dir, SNAP_PREFIX)?;
        if snaps.len() <= retain {
            return Ok(());
        }
        let oldest_kept = snaps[snaps.len() - retain].0;
        let logs = list(&self.log_dir, LOG_PREFIX)?;
        let kept_logs = logs_needed(&logs, oldest_kept).len();
        let doomed_logs = &logs[..logs.len() - kept_logs];
        let doomed_snaps = &snaps[..snaps.len() - retain];
        for (_, path) in doomed_snaps.iter().chain(doomed_logs) {
            tracing::info!(file = %path.display(), "purging");
            fs::remove_file(path).map_err(io_err(format!("remove {}", path.display())))?;
        }
        sync_dir(&self.snap_dir)?;
        if self.log_dir != self.snap_dir {
            sync_dir(&self.log_dir)?;
        }
        Ok(())
    }

    /// Total bytes of the files in the snapshot directory and in the log
    /// directory (ZooKeeper's `dirs` command reports the same sums).
    pub fn sizes(&self) -> (u64, u64) {
        let size = |dir: &Path| -> u64 {
            fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok()?.metadata().ok())
                        .filter(|m| m.is_file())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0)
        };
        (size(&self.snap_dir), size(&self.log_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::format::tests::{sample_entries, sample_snapshot};
    use crate::storage::format::{
        LOG_DBID, LOG_MAGIC, encode_file_header, encode_record, log_file_name,
    };

    fn write_log(dir: &Path, entries: &[LogEntry], padding: usize) -> PathBuf {
        let path = dir
            .join(VERSION_DIR)
            .join(log_file_name(entries[0].header.zxid));
        let mut b = encode_file_header(LOG_MAGIC, LOG_DBID).to_vec();
        for e in entries {
            encode_record(e, &mut b);
        }
        b.resize(b.len() + padding, 0);
        fs::write(&path, b).unwrap();
        path
    }

    #[test]
    fn empty_dir_recovers_nothing_and_is_locked() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        assert!(tmp.path().join("version-2").is_dir());
        assert!(matches!(
            DataDir::open(tmp.path(), tmp.path()),
            Err(StorageError::Locked(_))
        ));
        assert_eq!(d.recover().unwrap(), Recovered::default());
        drop(d);
        DataDir::open(tmp.path(), tmp.path()).unwrap();
    }

    #[test]
    fn snapshot_and_logs_recover_and_torn_tail_is_truncated() {
        let tmp = tempfile::tempdir().unwrap();
        let (data, logs) = (tmp.path().join("data"), tmp.path().join("logs"));
        let mut d = DataDir::open(&data, &logs).unwrap();
        let all = sample_entries(30);
        write_log(&logs, &all[..10], 0);
        d.write_snapshot(8, &sample_snapshot()).unwrap();
        let last = write_log(&logs, &all[10..], 4096);
        // Tear the last record: keep half of it, then zeros.
        let bytes = fs::read(&last).unwrap();
        let mut rec = Vec::new();
        encode_record(&all[29], &mut rec);
        let end = bytes.len() - 4096;
        let start = end - rec.len();
        let mut torn = bytes[..start + rec.len() / 2].to_vec();
        torn.resize(bytes.len(), 0);
        fs::write(&last, &torn).unwrap();

        let r = d.recover().unwrap();
        assert_eq!(r.snapshot, Some((8, sample_snapshot())));
        assert_eq!(r.entries, all[8..29]);
        assert_eq!(r.last_zxid, 29);
        assert_eq!(fs::metadata(&last).unwrap().len(), start as u64);
        // A second recovery finds a clean file.
        assert_eq!(d.recover().unwrap().entries, all[8..29]);
    }

    #[test]
    fn corrupt_newest_snapshot_falls_back_to_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let all = sample_entries(20);
        write_log(tmp.path(), &all, 100);
        let mut older = sample_snapshot();
        older.sessions.clear();
        d.write_snapshot(5, &older).unwrap();
        d.write_snapshot(12, &sample_snapshot()).unwrap();
        let newest = tmp.path().join("version-2/snapshot.c");
        let mut b = fs::read(&newest).unwrap();
        b[40] ^= 0xff;
        fs::write(&newest, b).unwrap();
        let r = d.recover().unwrap();
        assert_eq!(r.snapshot, Some((5, older)));
        assert_eq!(r.entries, all[5..]);
        assert_eq!(r.last_zxid, 20);
    }

    #[test]
    fn damage_in_an_older_log_is_an_error_not_a_silent_loss() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let all = sample_entries(20);
        let first = write_log(tmp.path(), &all[..10], 0);
        write_log(tmp.path(), &all[10..], 0);
        let mut b = fs::read(&first).unwrap();
        b[100] ^= 1;
        fs::write(&first, b).unwrap();
        assert!(matches!(d.recover(), Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn logs_without_their_beginning_and_without_a_snapshot_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        write_log(tmp.path(), &sample_entries(20)[5..], 0);
        assert!(matches!(d.recover(), Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn leftovers_of_a_crash_are_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let all = sample_entries(5);
        write_log(tmp.path(), &all, 0);
        let v2 = tmp.path().join("version-2");
        fs::write(v2.join("log.6"), b"ZKL").unwrap();
        fs::write(v2.join("tmp.snapshot.3"), b"partial").unwrap();
        let r = d.recover().unwrap();
        assert_eq!(r.entries, all);
        assert!(!v2.join("log.6").exists());
        assert!(!v2.join("tmp.snapshot.3").exists());
    }

    #[test]
    fn large_padded_log_is_read_past_the_first_chunk() {
        use crate::proto::txn::{SetDataTxn, Txn, TxnHeader};
        let tmp = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let big: Vec<LogEntry> = (1..=3000)
            .map(|z| LogEntry {
                header: TxnHeader {
                    client_id: 1,
                    cxid: 1,
                    zxid: z,
                    time: 0,
                    txn_type: 5,
                },
                txn: Txn::SetData(SetDataTxn {
                    path: "/big".into(),
                    data: vec![z as u8; 1000].into(),
                    version: z as i32,
                }),
            })
            .collect();
        let path = write_log(tmp.path(), &big, 3 << 20);
        assert!(fs::metadata(&path).unwrap().len() > 5 << 20);
        assert_eq!(d.recover().unwrap().entries, big);
        // Tear the last record, which lies past the first 1 MiB read.
        let mut b = fs::read(&path).unwrap();
        let end = b.len() - (3 << 20);
        b[end - 20] ^= 0xff;
        fs::write(&path, b).unwrap();
        assert_eq!(d.recover().unwrap().entries, big[..2999]);
        assert!(fs::metadata(&path).unwrap().len() < end as u64);
    }

    #[test]
    fn purge_keeps_newest_snapshots_and_the_logs_they_need() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let all = sample_entries(60);
        for chunk in all.chunks(10) {
            write_log(tmp.path(), chunk, 0);
        }
        for z in [5, 15, 25, 35, 45] {
            d.write_snapshot(z, &sample_snapshot()).unwrap();
        }
        d.purge(1).unwrap(); // at least 3 are kept
        let names = |p: &str| -> Vec<i64> {
            list(&tmp.path().join("version-2"), p)
                .unwrap()
                .into_iter()
                .map(|(z, _)| z)
                .collect()
        };
        assert_eq!(names(SNAP_PREFIX), vec![25, 35, 45]);
        // The log starting at zxid 21 holds 21..=30, needed to replay from snapshot 25.
        assert_eq!(names(LOG_PREFIX), vec![21, 31, 41, 51]);
        let (s, l) = d.sizes();
        assert!(s > 0 && l > 0);
    }
}
