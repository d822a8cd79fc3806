//! The group-commit transaction log writer: one dedicated OS thread fed by
//! a channel. It takes every entry queued meanwhile, writes them, makes them
//! durable with ONE fdatasync for the batch, then publishes the highest
//! durable zxid on a `tokio::sync::watch` channel.
//!
//! Files are ZooKeeper's `log.<hex zxid>` and are preallocated with zeros in
//! 4 MiB steps, so appends do not change the file size and fdatasync does
//! not have to write size metadata. (ZooKeeper's `preAllocSize` is 64 MiB,
//! but sparse; we allocate real blocks with fallocate, so a smaller step
//! keeps the space a rolled, barely used log file holds small.)
//!
//! Blocks that fallocate reserves are *unwritten* extents: the first write
//! into each one changes the extent tree, and the fdatasync after it has to
//! write that metadata too — one more synchronous disk write on most
//! fsyncs (measured on ext4: 3 writes per fdatasync instead of 2 for 8 KiB
//! batches, 0.35 ms instead of 0.23). So with fsync on, the writer also
//! writes real zeros 1 MiB ahead of the records ([`ZERO_AHEAD`]): that
//! metadata is paid once per MiB, on the fsync that carries the zeros.
//!
//! The writer thread runs under `SCHED_BATCH` ([`no_wakeup_preemption`]):
//! it is woken by the runtime thread for every batch, and on a busy machine
//! a freshly woken thread of the normal policy preempts whatever runs on
//! its CPU — often the runtime thread that woke it, in the middle of sending
//! the proposals, ACKs and replies of that very batch. A batch thread waits
//! for a free CPU or the next scheduling point instead, collecting more
//! entries meanwhile. Measured on a 3-node ensemble on two shared cores
//! (side runs, BENCHMARKS.md "Wake-up preemption"): writes +0–20 %, write
//! p99 lower in most sets, reads unchanged. An idle CPU still picks it up
//! at once.
//!
//! An IO error stops the writer for good (ZooKeeper exits too): the watch
//! channel closes, [`TxnLog::failure`] tells why, later appends are dropped.
//!
//! A [`DurableHook`] ([`TxnLog::set_durable_hook`]) is told the same news
//! from the writer thread itself: a replicated server's node task gets the
//! durable zxid in its own event channel, with no task between that wakes
//! on the watch and forwards it (each such hop waits its turn behind every
//! ready client task of the runtime).

use super::datadir::{DataDir, sync_dir};
use super::format::{self, LOG_DBID, LOG_MAGIC};
use super::{LogEntry, StorageError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The preallocation step: real blocks, so kept well below ZooKeeper's
/// sparse 64 MiB (every snapshot rolls to a new log file).
pub const DEFAULT_PREALLOC: u64 = 4 * 1024 * 1024;
/// With fsync on, the file is kept written with zeros at least this far
/// beyond the last record (see the module doc), in steps of this size.
pub const ZERO_AHEAD: u64 = 1024 * 1024;
/// At most this many entries go into one batch, so a flood of appends still
/// gets published in steps.
const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// fdatasync each batch (ZooKeeper's `forceSync`, default yes).
    pub force_sync: bool,
    /// Preallocation step in bytes (0 = none).
    pub prealloc: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            force_sync: true,
            prealloc: DEFAULT_PREALLOC,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub fsync_count: u64,
    pub last_fsync_micros: u64,
    pub total_fsync_micros: u64,
    pub max_fsync_micros: u64,
    /// Batches written (one fsync each when `force_sync`).
    pub batches: u64,
    pub entries: u64,
    pub last_batch_size: u64,
    pub max_batch_size: u64,
    pub bytes_written: u64,
    /// Log files created.
    pub files: u64,
}

enum Command {
    Append(LogEntry),
    /// A txn already encoded (header + body), with its zxid.
    AppendRaw(i64, bytes::Bytes),
    Roll,
}

/// Called on the writer thread after every group commit with the highest
/// durable zxid, or once with why the writer stopped. It must not block.
pub type DurableHook = Arc<dyn Fn(Result<i64, &str>) + Send + Sync>;

#[derive(Default)]
struct Shared {
    stats: Mutex<LogStats>,
    failure: Mutex<Option<String>>,
    on_durable: Mutex<Option<DurableHook>>,
}

impl Shared {
    /// Calls the durable hook, if one is set, outside the hook's lock.
    fn tell_hook(&self, news: Result<i64, &str>) {
        let hook = self.on_durable.lock().expect("hook lock").clone();
        if let Some(hook) = hook {
            hook(news);
        }
    }
}

/// Handle to the log writer thread. Dropping it finishes the queued entries
/// and joins the thread.
pub struct TxnLog {
    tx: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl TxnLog {
    /// Starts the writer for `dir`'s log directory. `last_zxid` is the
    /// highest zxid already durable (from recovery); the watch channel starts
    /// there.
    pub fn start(
        dir: &DataDir,
        last_zxid: i64,
        force_sync: bool,
    ) -> Result<(TxnLog, watch::Receiver<i64>), StorageError> {
        Self::start_with(
            dir,
            last_zxid,
            LogOptions {
                force_sync,
                ..LogOptions::default()
            },
        )
    }

    pub fn start_with(
        dir: &DataDir,
        last_zxid: i64,
        options: LogOptions,
    ) -> Result<(TxnLog, watch::Receiver<i64>), StorageError> {
        let (tx, rx) = mpsc::channel();
        let (durable_tx, durable_rx) = watch::channel(last_zxid);
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            dir: dir.log_dir().to_path_buf(),
            options,
            current: None,
            to_sync: Vec::new(),
            dir_dirty: false,
            last_zxid,
            buf: Vec::with_capacity(1 << 16),
            files_created: 0,
        };
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rzk-txnlog".into())
            .spawn(move || {
                no_wakeup_preemption();
                run(writer, rx, durable_tx, thread_shared)
            })
            .map_err(|e| StorageError::io("start the txn log thread", e))?;
        Ok((
            TxnLog {
                tx: Some(tx),
                thread: Some(thread),
                shared,
            },
            durable_rx,
        ))
    }

    /// Queues an entry; never blocks. Entries must come in zxid order.
    pub fn append(&self, entry: LogEntry) {
        if let Some(tx) = &self.tx {
            // A send error means the writer failed; `failure` says why.
            let _ = tx.send(Command::Append(entry));
        }
    }

    /// Queues an entry already encoded as a log payload (TxnHeader + txn
    /// body, as replicated txns travel); never blocks; zxid order.
    pub fn append_payload(&self, zxid: i64, payload: bytes::Bytes) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::AppendRaw(zxid, payload));
        }
    }

    /// Has `hook` told of every group commit from now on (and of a failure),
    /// besides the watch channel. Set it before appending what it must
    /// report.
    pub fn set_durable_hook(&self, hook: DurableHook) {
        *self.shared.on_durable.lock().expect("hook lock") = Some(hook);
    }

    /// The next entry starts a new `log.<zxid>` file.
    pub fn roll(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Roll);
        }
    }

    pub fn stats(&self) -> LogStats {
        *self.shared.stats.lock().expect("stats lock")
    }

    /// Why the writer stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("failure lock").clone()
    }

    /// Writes what is queued, stops the thread, and reports a failure.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.shutdown();
        match self.failure() {
            Some(f) => Err(StorageError::LogFailed(f)),
            None => Ok(()),
        }
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for TxnLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnLog")
            .field("stats", &self.stats())
            .field("failure", &self.failure())
            .finish()
    }
}

impl Drop for TxnLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct OpenLog {
    path: PathBuf,
    file: File,
    /// Bytes of real content (header + records).
    len: u64,
    /// File size after preallocation.
    allocated: u64,
    /// Bytes from the start written for real (records or zeros): appends
    /// below this overwrite initialized blocks.
    zeroed: u64,
}

struct Writer {
    dir: PathBuf,
    options: LogOptions,
    current: Option<OpenLog>,
    /// Files closed by a roll in this batch that still need their fsync.
    to_sync: Vec<OpenLog>,
    dir_dirty: bool,
    last_zxid: i64,
    buf: Vec<u8>,
    files_created: u64,
}

/// Puts the calling thread under `SCHED_BATCH`: it no longer preempts a
/// running thread when it wakes up (see the module doc). Any user may
/// choose it; where it is refused (a seccomp profile, say) the thread keeps
/// the normal policy and only the log says so.
fn no_wakeup_preemption() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler only reads `param`; pid 0 is this thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "txn log thread keeps the normal scheduling policy");
    }
}

fn run(
    mut w: Writer,
    rx: mpsc::Receiver<Command>,
    durable: watch::Sender<i64>,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        match w.write_batch(&mut batch, &shared) {
            Ok(Some(zxid)) => {
                durable.send_replace(zxid);
                shared.tell_hook(Ok(zxid));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "transaction log write failed; the log is stopped");
                let why = e.to_string();
                *shared.failure.lock().expect("failure lock") = Some(why.clone());
                shared.tell_hook(Err(&why));
                // Dropping the sender closes every receiver's channel.
                return;
            }
        }
    }
    if let Some(cur) = w.current.take() {
        tracing::debug!(file = %cur.path.display(), "txn log closed");
    }
}

impl Writer {
    /// Writes a batch and syncs it; returns the highest zxid made durable.
    fn write_batch(
        &mut self,
        batch: &mut Vec<Command>,
        shared: &Shared,
    ) -> Result<Option<i64>, StorageError> {
        let mut newest = None;
        let mut count = 0u64;
        let mut bytes = 0u64;
        self.buf.clear();
        for cmd in batch.drain(..) {
            match cmd {
                Command::Roll => {
                    bytes += self.flush_buf()?;
                    if let Some(cur) = self.current.take() {
                        self.to_sync.push(cur);
                    }
                }
                Command::Append(_) | Command::AppendRaw(..) => {
                    let zxid = match &cmd {
                        Command::Append(entry) => entry.header.zxid,
                        Command::AppendRaw(zxid, _) => *zxid,
                        Command::Roll => unreachable!("matched above"),
                    };
                    if zxid <= self.last_zxid {
                        tracing::warn!(
                            zxid = format_args!("{zxid:#x}"),
                            last = format_args!("{:#x}", self.last_zxid),
                            "appending a zxid that does not increase"
                        );
                    }
                    self.last_zxid = self.last_zxid.max(zxid);
                    if self.current.is_none() {
                        self.current = Some(self.create(zxid)?);
                    }
                    match &cmd {
                        Command::Append(entry) => format::encode_record(entry, &mut self.buf),
                        Command::AppendRaw(_, payload) => {
                            format::encode_raw_record(payload, &mut self.buf)
                        }
                        Command::Roll => {}
                    }
                    newest = Some(zxid);
                    count += 1;
                }
            }
        }
        bytes += self.flush_buf()?;
        let mut fsyncs = Vec::new();
        if self.options.force_sync {
            for log in self.to_sync.iter().chain(self.current.iter()) {
                let started = Instant::now();
                log.file.sync_data().map_err(|e| {
                    StorageError::io(format!("fdatasync {}", log.path.display()), e)
                })?;
                fsyncs.push(started.elapsed().as_micros() as u64);
            }
            if self.dir_dirty {
                sync_dir(&self.dir)?;
            }
        }
        self.dir_dirty = false;
        self.to_sync.clear();
        let mut s = shared.stats.lock().expect("stats lock");
        for us in fsyncs {
            s.fsync_count += 1;
            s.last_fsync_micros = us;
            s.total_fsync_micros += us;
            s.max_fsync_micros = s.max_fsync_micros.max(us);
        }
        if count > 0 {
            s.batches += 1;
            s.entries += count;
            s.last_batch_size = count;
            s.max_batch_size = s.max_batch_size.max(count);
        }
        s.bytes_written += bytes;
        s.files = self.files_created;
        Ok(newest)
    }

    /// Writes the encoded records to the current file, preallocating first.
    fn flush_buf(&mut self) -> Result<u64, StorageError> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        let cur = self.current.as_mut().expect("records imply an open file");
        let n = self.buf.len() as u64;
        preallocate(cur, n, self.options.prealloc)?;
        if self.options.force_sync && self.options.prealloc > 0 {
            zero_ahead(cur, n)?;
        }
        cur.file
            .write_all(&self.buf)
            .map_err(|e| StorageError::io(format!("write {}", cur.path.display()), e))?;
        cur.len += n;
        cur.zeroed = cur.zeroed.max(cur.len);
        self.buf.clear();
        Ok(n)
    }

    fn create(&mut self, zxid: i64) -> Result<OpenLog, StorageError> {
        let path = self.dir.join(format::log_file_name(zxid));
        tracing::info!(file = %path.display(), "creating new log file");
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            // Only a file without records (a crash right after creating it)
            // may be replaced; anything else means zxids went backwards.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let old = std::fs::read(&path)
                    .map_err(|e| StorageError::io(format!("read {}", path.display()), e))?;
                if format::scan_log(&old).is_ok_and(|s| !s.entries.is_empty()) {
                    return Err(StorageError::Corrupt(format!(
                        "{} already exists and holds transactions",
                        path.display()
                    )));
                }
                OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| StorageError::io(format!("create {}", path.display()), e))?
            }
            Err(e) => return Err(StorageError::io(format!("create {}", path.display()), e)),
        };
        let header = format::encode_file_header(LOG_MAGIC, LOG_DBID);
        file.write_all(&header)
            .map_err(|e| StorageError::io(format!("write {}", path.display()), e))?;
        self.dir_dirty = true;
        self.files_created += 1;
        Ok(OpenLog {
            path,
            file,
            len: header.len() as u64,
            allocated: header.len() as u64,
            zeroed: header.len() as u64,
        })
    }
}

/// Grows the file with zeros in `step` increments so that `extra` more bytes
/// (plus ZooKeeper's 4 KiB slack) fit. Uses fallocate where the file system
/// has it, else extends the size (a sparse file, as ZooKeeper does).
fn preallocate(log: &mut OpenLog, extra: u64, step: u64) -> Result<(), StorageError> {
    if step == 0 {
        return Ok(());
    }
    let needed = log.len + extra + 4096;
    if needed <= log.allocated {
        return Ok(());
    }
    let new_size = needed.div_ceil(step) * step;
    let grow = new_size - log.allocated;
    // SAFETY: fallocate only reads its integer arguments; the descriptor is
    // owned by `log.file` and open for writing.
    let rc = unsafe {
        libc::fallocate(
            log.file.as_raw_fd(),
            0,
            log.allocated as libc::off_t,
            grow as libc::off_t,
        )
    };
    if rc != 0 {
        log.file
            .set_len(new_size)
            .map_err(|e| StorageError::io(format!("preallocate {}", log.path.display()), e))?;
    }
    log.allocated = new_size;
    Ok(())
}

/// Before `extra` bytes are appended: if fewer than half of [`ZERO_AHEAD`]
/// initialized bytes would remain after them, writes zeros up to
/// [`ZERO_AHEAD`] beyond them, but not past the preallocated size (so the
/// file size stays as [`preallocate`] set it). The zeros go to disk with
/// the batch's fdatasync.
fn zero_ahead(log: &mut OpenLog, extra: u64) -> Result<(), StorageError> {
    use std::os::unix::fs::FileExt;
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let end = log.len + extra;
    if log.zeroed >= end + ZERO_AHEAD / 2 {
        return Ok(());
    }
    let mut at = log.zeroed.max(end);
    let target = (end + ZERO_AHEAD).min(log.allocated.max(end));
    while at < target {
        let n = (target - at).min(ZEROS.len() as u64) as usize;
        log.file
            .write_all_at(&ZEROS[..n], at)
            .map_err(|e| StorageError::io(format!("zero-fill {}", log.path.display()), e))?;
        at += n as u64;
    }
    log.zeroed = log.zeroed.max(target);
    Ok(())
}

/// Reads back the durable zxid without an async runtime (for tests and
/// blocking callers): waits until it reaches `zxid`, the channel closes, or
/// `timeout` passes; returns the last value seen.
pub fn wait_durable(rx: &mut watch::Receiver<i64>, zxid: i64, timeout: std::time::Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let now = *rx.borrow_and_update();
        if now >= zxid || Instant::now() >= deadline || rx.has_changed().is_err() {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::format::tests::sample_entries;
    use std::time::Duration;

    #[test]
    fn handle_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TxnLog>();
    }

    /// Extents of `path` in `[0, len)` as (offset, length, unwritten), via
    /// FIEMAP; None where the file system does not answer it.
    fn extents(path: &std::path::Path, len: u64) -> Option<Vec<(u64, u64, bool)>> {
        const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
        const FIEMAP_FLAG_SYNC: u32 = 1;
        const FIEMAP_EXTENT_UNWRITTEN: u32 = 0x800;
        const MAX: usize = 64;
        // struct fiemap (32 bytes) then MAX struct fiemap_extent (56 bytes).
        let mut buf = vec![0u64; (32 + 56 * MAX) / 8];
        buf[1] = len; // fm_length
        let words = buf.as_mut_ptr() as *mut u32;
        // SAFETY: in bounds of `buf`: fm_flags at byte 16, fm_extent_count at 24.
        unsafe {
            *words.add(4) = FIEMAP_FLAG_SYNC;
            *words.add(6) = MAX as u32;
        }
        let file = File::open(path).ok()?;
        // SAFETY: FS_IOC_FIEMAP fills at most MAX extents into `buf`, sized for them.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP, buf.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: fm_mapped_extents at byte 20, written by the kernel.
        let mapped = unsafe { *words.add(5) } as usize;
        Some(
            (0..mapped.min(MAX))
                .map(|i| {
                    let at = (32 + 56 * i) / 8;
                    // SAFETY: fe_flags at byte 40 of extent i, within `buf`.
                    let flags = unsafe { *words.add((32 + 56 * i + 40) / 4) };
                    (buf[at], buf[at + 2], flags & FIEMAP_EXTENT_UNWRITTEN != 0)
                })
                .collect(),
        )
    }

    #[test]
    fn fsynced_appends_land_on_blocks_written_ahead() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let (log, mut durable) = TxnLog::start(&dir, 0, true).unwrap();
        for e in sample_entries(200) {
            log.append(e);
        }
        assert_eq!(
            wait_durable(&mut durable, 200, Duration::from_secs(60)),
            200
        );
        let path = tmp.path().join("version-2/log.1");
        let records = format::scan_log(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(records.entries.len(), 200);
        let Some(extents) = extents(&path, ZERO_AHEAD) else {
            eprintln!("no FIEMAP on this file system; nothing to check");
            return;
        };
        // Everything up to ZERO_AHEAD/2 past the records is written for real:
        // no unwritten extent whose first write would cost an fsync metadata.
        let must_be_written = std::fs::metadata(&path).unwrap().len().min(ZERO_AHEAD / 2);
        for (offset, length, unwritten) in extents {
            assert!(
                !(unwritten && offset < must_be_written),
                "unwritten extent at {offset} (+{length}) below {must_be_written}"
            );
        }
        log.close().unwrap();
    }

    #[test]
    fn the_writer_thread_does_not_preempt_on_wakeup() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let (log, mut durable) = TxnLog::start(&dir, 0, false).unwrap();
        log.append(sample_entries(1).remove(0));
        // Once it has written an entry the thread has long set its policy.
        assert_eq!(wait_durable(&mut durable, 1, Duration::from_secs(30)), 1);
        // This log's own thread, not every rzk-txnlog thread of the process:
        // another test's may have just started and not set its policy yet.
        use std::os::unix::thread::JoinHandleExt;
        let thread = log.thread.as_ref().expect("writer thread").as_pthread_t();
        let mut policy = -1;
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: the thread is alive (not joined); both out-pointers are valid.
        let rc = unsafe { libc::pthread_getschedparam(thread, &mut policy, &mut param) };
        assert_eq!(rc, 0, "pthread_getschedparam");
        assert_eq!(
            policy,
            libc::SCHED_BATCH,
            "the writer thread's policy (SCHED_BATCH is {})",
            libc::SCHED_BATCH
        );
        log.close().unwrap();
    }

    #[test]
    fn group_commit_reaches_the_last_zxid_with_fewer_fsyncs() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let entries = sample_entries(3000);
        let (log, mut durable) = TxnLog::start(&dir, 0, true).unwrap();
        let log = Arc::new(log);
        let appender = {
            let log = log.clone();
            let entries = entries.clone();
            std::thread::spawn(move || {
                for e in entries {
                    log.append(e);
                }
            })
        };
        appender.join().unwrap();
        assert_eq!(
            wait_durable(&mut durable, 3000, Duration::from_secs(120)),
            3000
        );
        let stats = log.stats();
        eprintln!("{stats:?}");
        assert_eq!(stats.entries, 3000);
        assert!(stats.fsync_count >= 1);
        assert!(
            stats.fsync_count < 3000,
            "{} fsyncs for 3000 entries: no batching",
            stats.fsync_count
        );
        assert!(stats.max_batch_size > 1);
        assert_eq!(stats.files, 1);
        Arc::try_unwrap(log).ok().unwrap().close().unwrap();
        // The file is preallocated and everything is there.
        let path = tmp.path().join("version-2/log.1");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() % DEFAULT_PREALLOC,
            0
        );
        let r = dir.recover().unwrap();
        assert_eq!(r.entries, entries);
        assert_eq!(r.last_zxid, 3000);
    }

    #[test]
    fn roll_starts_a_new_file_and_restart_continues() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let entries = sample_entries(30);
        let opts = LogOptions {
            force_sync: false,
            prealloc: 4096,
        };
        let (log, mut durable) = TxnLog::start_with(&dir, 0, opts).unwrap();
        for e in &entries[..10] {
            log.append(e.clone());
        }
        log.roll();
        for e in &entries[10..20] {
            log.append(e.clone());
        }
        assert_eq!(wait_durable(&mut durable, 20, Duration::from_secs(60)), 20);
        log.close().unwrap();
        let v2 = tmp.path().join("version-2");
        assert!(v2.join("log.1").exists() && v2.join("log.b").exists());

        let r = dir.recover().unwrap();
        assert_eq!(r.entries, entries[..20]);
        let (log, mut durable) = TxnLog::start_with(&dir, r.last_zxid, opts).unwrap();
        for e in &entries[20..] {
            log.append(e.clone());
        }
        assert_eq!(wait_durable(&mut durable, 30, Duration::from_secs(60)), 30);
        drop(log);
        assert!(v2.join("log.15").exists());
        assert_eq!(dir.recover().unwrap().entries, entries);
    }

    #[test]
    fn io_failure_closes_the_durable_channel() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let (log, mut durable) = TxnLog::start(&dir, 0, true).unwrap();
        // A directory where the log file should go makes its creation fail.
        std::fs::create_dir(tmp.path().join("version-2/log.1")).unwrap();
        log.append(sample_entries(1).remove(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let closed = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), durable.changed()).await
        });
        assert!(matches!(closed, Ok(Err(_))), "channel should close");
        assert!(log.failure().unwrap().contains("log.1"));
        assert!(matches!(log.close(), Err(StorageError::LogFailed(_))));
    }

    /// What the hook heard: each group commit's durable zxid, or a failure.
    fn recording_hook() -> (DurableHook, std::sync::mpsc::Receiver<Result<i64, String>>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let hook: DurableHook = Arc::new(move |r: Result<i64, &str>| {
            let _ = tx.lock().unwrap().send(r.map_err(str::to_string));
        });
        (hook, rx)
    }

    #[test]
    fn the_durable_hook_hears_every_commit_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let (log, mut durable) = TxnLog::start(&dir, 0, false).unwrap();
        let (hook, heard) = recording_hook();
        log.set_durable_hook(hook);
        for e in sample_entries(50) {
            log.append(e);
        }
        assert_eq!(wait_durable(&mut durable, 50, Duration::from_secs(60)), 50);
        let mut last = 0;
        while last < 50 {
            let z = heard
                .recv_timeout(Duration::from_secs(60))
                .expect("a report per commit")
                .expect("no failure");
            assert!(z > last, "reports rise: {z} after {last}");
            last = z;
        }
        log.close().unwrap();
    }

    #[test]
    fn the_durable_hook_hears_the_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path(), tmp.path()).unwrap();
        let (log, _durable) = TxnLog::start(&dir, 0, true).unwrap();
        let (hook, heard) = recording_hook();
        log.set_durable_hook(hook);
        std::fs::create_dir(tmp.path().join("version-2/log.1")).unwrap();
        log.append(sample_entries(1).remove(0));
        let why = heard
            .recv_timeout(Duration::from_secs(60))
            .expect("a report")
            .expect_err("the write failed");
        assert!(why.contains("log.1"), "{why}");
    }
}
