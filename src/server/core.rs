//! The core task: owns the processor, turns its effects into IO.

use super::conn::{self, Out};
use super::metrics::Recorder;
use super::recovery;
use crate::config::Config;
use crate::processor::fourlw::{self, ShellInfo};
use crate::processor::{Clock, Effect, Processor, Settings};
use crate::proto::OpCode;
use crate::storage::{DataDir, LogEntry, TxnLog};
use crate::tree::watch::ConnId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// What connection tasks tell the core.
pub enum CoreMsg {
    Connect {
        conn: ConnId,
        addr: String,
        frame: Vec<u8>,
        out: mpsc::UnboundedSender<Out>,
    },
    Request {
        conn: ConnId,
        frame: Vec<u8>,
    },
    Disconnected {
        conn: ConnId,
    },
    FourLetter {
        word: &'static str,
        reply: oneshot::Sender<String>,
    },
    /// A question from the admin or metrics server, run inside the core
    /// task (the processor's only owner); the closure sends its own reply.
    Inspect(Box<dyn FnOnce(View<'_>) + Send>),
}

/// What an `Inspect` closure may look at.
pub struct View<'a> {
    pub p: &'a mut Processor,
    pub info: ShellInfo,
    pub cfg: &'a Config,
    pub log: crate::storage::LogStats,
    pub server_id: u64,
    pub stats: &'a Stats,
}

/// Latency and load counters shared by the connection tasks.
pub struct Stats {
    pub latency_count: AtomicU64,
    pub latency_total_ms: AtomicU64,
    pub latency_min_ms: AtomicU64,
    pub latency_max_ms: AtomicU64,
    pub outstanding: AtomicI64,
    /// Histograms for `/metrics`.
    pub recorder: Recorder,
}

impl Stats {
    pub(super) fn new() -> Stats {
        Stats {
            latency_count: AtomicU64::new(0),
            latency_total_ms: AtomicU64::new(0),
            latency_min_ms: AtomicU64::new(u64::MAX),
            latency_max_ms: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            recorder: Recorder::default(),
        }
    }

    /// One request of type `op` answered `took` after it arrived.
    pub fn record_op(&self, op: i32, took: Duration) {
        self.record(took.as_millis() as u64);
        self.recorder.request(op, took);
    }

    pub fn record(&self, ms: u64) {
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_total_ms.fetch_add(ms, Ordering::Relaxed);
        self.latency_min_ms.fetch_min(ms, Ordering::Relaxed);
        self.latency_max_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.latency_count.store(0, Ordering::Relaxed);
        self.latency_total_ms.store(0, Ordering::Relaxed);
        self.latency_min_ms.store(u64::MAX, Ordering::Relaxed);
        self.latency_max_ms.store(0, Ordering::Relaxed);
    }
}

/// The txn log writer, shared with the replicated server's storage (which
/// replaces it after a truncation).
pub(super) type SharedLog = Arc<Mutex<TxnLog>>;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) struct Core {
    pub(super) p: Processor,
    pub(super) cfg: Config,
    pub(super) writers: HashMap<ConnId, mpsc::UnboundedSender<Out>>,
    pub(super) log: SharedLog,
    pub(super) dir: Arc<DataDir>,
    pub(super) start: Instant,
    pub(super) snapshot_busy: Arc<AtomicBool>,
    pub(super) stats: Arc<Stats>,
    pub(super) server_id: u64,
    pub(super) durable: watch::Receiver<i64>,
    /// Replicated mode's state (None for a standalone server).
    pub(super) repl: Option<super::ensemble::Repl>,
}

pub(super) fn clock(start: Instant) -> Clock {
    Clock {
        wall_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        mono_ms: start.elapsed().as_millis() as u64,
    }
}

impl Core {
    /// One message from a connection or an inspector; the processor's
    /// effects are returned for the caller to carry out.
    pub(super) fn handle(&mut self, msg: CoreMsg) -> Vec<Effect> {
        let now = clock(self.start);
        self.p.set_durable(*self.durable.borrow());
        match msg {
            CoreMsg::Connect {
                conn,
                addr,
                frame,
                out,
            } => {
                self.writers.insert(conn, out);
                let effects = self.p.connect(conn, &addr, &frame, now);
                if let Some((session, timeout)) = self.session_of(conn) {
                    tracing::info!(
                        session = format_args!("0x{session:x}"),
                        timeout_ms = timeout,
                        client = %addr,
                        "session established"
                    );
                }
                effects
            }
            CoreMsg::Request { conn, frame } => {
                let closing = frame.get(4..8) == Some(&(OpCode::CloseSession as i32).to_be_bytes());
                if closing && let Some((session, _)) = self.session_of(conn) {
                    tracing::info!(
                        session = format_args!("0x{session:x}"),
                        "session closed by its client"
                    );
                }
                self.p.request(conn, &frame, now)
            }
            CoreMsg::Disconnected { conn } => {
                self.writers.remove(&conn);
                self.p.disconnected(conn);
                Vec::new()
            }
            CoreMsg::FourLetter { word, reply } => {
                let info = self.shell_info();
                if word == "srst" {
                    self.stats.reset();
                }
                let _ = reply.send(fourlw::answer(
                    &mut self.p,
                    word,
                    &self.cfg.four_letter_words,
                    &info,
                ));
                Vec::new()
            }
            CoreMsg::Inspect(f) => {
                let log = lock(&self.log).stats();
                f(View {
                    info: self.shell_info(),
                    p: &mut self.p,
                    cfg: &self.cfg,
                    log,
                    server_id: self.server_id,
                    stats: &self.stats,
                });
                Vec::new()
            }
        }
    }

    /// Carries out effects: frames to connections, log appends, snapshots;
    /// in replicated mode, submissions go to the leader through `ctx`.
    pub(super) fn apply(
        &mut self,
        effects: Vec<Effect>,
        mut ctx: Option<&mut crate::quorum::net::Ctx>,
    ) {
        for e in effects {
            match e {
                Effect::Send { conn, tag, frame } => {
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(Out::Frame { tag, frame });
                    }
                }
                Effect::Close { conn, tag } => {
                    if let Some(w) = self.writers.remove(&conn) {
                        let _ = w.send(Out::Close { tag });
                    }
                }
                Effect::Log { header, txn } => lock(&self.log).append(LogEntry { header, txn }),
                Effect::Snapshot => self.snapshot(),
                Effect::Submit(sub) => match ctx.as_deref_mut() {
                    Some(ctx) => self.submit(sub, ctx),
                    None => tracing::error!("a submission outside replicated mode"),
                },
            }
        }
    }

    /// A snapshot of the tree as it is now. Building it is the only pause
    /// writes see; encoding and fsync run on a blocking thread.
    pub(super) fn snapshot(&mut self) {
        if self.snapshot_busy.swap(true, Ordering::SeqCst) {
            tracing::warn!("too busy to snapshot, skipping");
            return;
        }
        let zxid = self.p.last_zxid();
        // O(1): the frozen tree shares structure with the live one, which
        // goes on taking writes while the copy is walked and written.
        let frozen = self.p.tree.freeze();
        let sessions = self.p.session_list();
        lock(&self.log).roll();
        let dir = self.dir.clone();
        let busy = self.snapshot_busy.clone();
        let stats = self.stats.clone();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let snap = recovery::snapshot_of_frozen(&frozen, sessions);
            match dir.write_snapshot(zxid, &snap) {
                Ok(bytes) => {
                    stats.recorder.snapshot_written(t.elapsed());
                    tracing::info!(
                        zxid = format_args!("0x{zxid:x}"),
                        bytes,
                        ms = t.elapsed().as_millis() as u64,
                        "snapshot written"
                    )
                }
                Err(e) => tracing::error!(error = %e, "snapshot failed"),
            }
            busy.store(false, Ordering::SeqCst);
        });
    }

    /// The session (id, timeout) a connection has, once established.
    fn session_of(&self, conn: ConnId) -> Option<(i64, u32)> {
        self.p
            .connections()
            .find(|(id, ..)| *id == conn)
            .map(|(_, _, session, timeout, _)| (session, timeout))
            .filter(|(session, _)| *session != 0)
    }

    pub(super) fn shell_info(&self) -> ShellInfo {
        let s = &self.stats;
        let count = s.latency_count.load(Ordering::Relaxed);
        let (data, logs) = self.dir.sizes();
        let min = s.latency_min_ms.load(Ordering::Relaxed);
        ShellInfo {
            latency_min_ms: if min == u64::MAX { 0 } else { min },
            latency_avg_ms: if count == 0 {
                0.0
            } else {
                s.latency_total_ms.load(Ordering::Relaxed) as f64 / count as f64
            },
            latency_max_ms: s.latency_max_ms.load(Ordering::Relaxed),
            outstanding: s.outstanding.load(Ordering::Relaxed).max(0) as u64,
            data_dir_size: data,
            log_dir_size: logs,
            config: self.cfg.describe(),
            mode: self
                .repl
                .as_ref()
                .map_or_else(|| "standalone".into(), |r| r.mode().into()),
            uptime_ms: self.start.elapsed().as_millis() as u64,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            max_fds: max_fds(),
            fsync_threshold_exceeded: 0,
            extra_mntr: self
                .repl
                .as_ref()
                .map(|r| r.extra_mntr())
                .unwrap_or_default(),
            environment: environment(),
        }
    }
}

/// What `envi` reports of the process's surroundings.
pub(super) fn environment() -> Vec<(String, String)> {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_else(|| "localhost".into());
    vec![
        ("zookeeper.version".into(), fourlw::VERSION.into()),
        ("host.name".into(), host.trim().to_string()),
        ("rzk.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("os.name".into(), std::env::consts::OS.into()),
        ("os.arch".into(), std::env::consts::ARCH.into()),
        (
            "user.dir".into(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
    ]
}

fn max_fds() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0 {
        l.rlim_cur
    } else {
        0
    }
}

/// Recovers, then serves clients until SIGINT/SIGTERM.
pub async fn serve(cfg: Config, id: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    // Up before recovery, so liveness probes pass while a big tree loads.
    let observe = super::admin::start(&cfg).await?;
    let mut dir = DataDir::open(&cfg.data_dir, &cfg.data_log_dir)?;
    let rec = dir.recover()?;
    let snapshot_zxid = rec.snapshot.as_ref().map(|(z, _)| *z);
    let replayed = rec.entries.len();
    let (tree, sessions) = recovery::rebuild(rec)?;
    tracing::info!(
        zxid = format_args!("0x{:x}", tree.last_zxid),
        nodes = tree.node_count(),
        sessions = sessions.len(),
        replayed,
        "recovered data tree"
    );
    // As ZooKeeper does at start-up: a snapshot of what was recovered, so
    // the data dir always has one (Apache ZooKeeper refuses logs without).
    if snapshot_zxid != Some(tree.last_zxid) {
        dir.write_snapshot(
            tree.last_zxid,
            &recovery::snapshot_of(&tree, sessions.clone()),
        )?;
    }
    let (log, durable) = TxnLog::start(&dir, tree.last_zxid, cfg.force_sync)?;
    let log = Arc::new(Mutex::new(log));
    let settings = Settings::from_config(&cfg, id.min(255) as u8);
    let processor = Processor::new(settings, tree, &sessions, clock(start));

    let addr = format!("{}:{}", cfg.client_port_address, cfg.client_port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    // The bound address, so `clientPort=0` says which port it got.
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
    tracing::info!(%addr, server_id = id, mode = "standalone", "serving clients");

    let dir = Arc::new(dir);
    let stats = Arc::new(Stats::new());
    let (core_tx, mut core_rx) = mpsc::unbounded_channel::<CoreMsg>();
    let tick_ms = (cfg.tick_time / 2).clamp(10, 250) as u64;
    let purge_every = Duration::from_secs(cfg.purge_interval_hours as u64 * 3600);
    let retain = cfg.snap_retain_count;
    let max_buffer = cfg.jute_max_buffer;
    let max_per_ip = cfg.max_client_cnxns;
    let mut core = Core {
        p: processor,
        cfg,
        writers: HashMap::new(),
        log,
        dir: dir.clone(),
        start,
        snapshot_busy: Arc::new(AtomicBool::new(false)),
        stats: stats.clone(),
        server_id: id,
        durable: durable.clone(),
        repl: None,
    };
    observe.attach(core_tx.clone(), stats.clone());

    // A log that can no longer write is fatal: nothing more may be acknowledged.
    // (Unless we are stopping: then closing the log ends the writer.)
    let stopping = Arc::new(AtomicBool::new(false));
    let mut watch_log = durable.clone();
    let log_stopping = stopping.clone();
    tokio::spawn(async move {
        while watch_log.changed().await.is_ok() {}
        if !log_stopping.load(Ordering::SeqCst) {
            tracing::error!("the transaction log writer stopped; exiting");
            std::process::exit(1);
        }
    });

    spawn_purge(dir.clone(), purge_every, retain);

    let accept = accept_loop(
        listener,
        core_tx.clone(),
        durable,
        stats,
        max_buffer,
        max_per_ip,
    );
    let core_loop = async move {
        let mut tick = tokio::time::interval(Duration::from_millis(tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = core_rx.recv() => match msg {
                    Some(m) => {
                        let effects = core.handle(m);
                        core.apply(effects, None);
                        // Drain what else is queued before ticking again.
                        while let Ok(m) = core_rx.try_recv() {
                            let effects = core.handle(m);
                            core.apply(effects, None);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    core.p.set_durable(*core.durable.borrow());
                    let effects = core.p.tick(clock(core.start));
                    core.apply(effects, None);
                    let log = lock(&core.log).stats();
                    core.stats.recorder.log_progress(log);
                }
            }
        }
        core
    };
    tokio::select! {
        r = accept => r?,
        _ = core_loop => {},
        // Flagged inside the branch: select! drops the core (and so the
        // log) before running a branch's handler.
        _ = async {
            shutdown_signal().await;
            stopping.store(true, Ordering::SeqCst);
            tracing::info!("shutting down");
        } => {}
    }
    // Dropping the core drops the log handle, which writes and syncs what is queued.
    Ok(())
}

/// autopurge: every `every` (none when zero), keep the newest `retain`
/// snapshots and the logs they need, on a blocking thread.
pub(super) fn spawn_purge(dir: Arc<DataDir>, every: Duration, retain: usize) {
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.tick().await;
        loop {
            t.tick().await;
            let d = dir.clone();
            match tokio::task::spawn_blocking(move || d.purge(retain)).await {
                Ok(Ok(())) => tracing::info!(retain, "purged old snapshots and logs"),
                Ok(Err(e)) => tracing::warn!(error = %e, "purge failed"),
                Err(_) => {}
            }
        }
    });
}

pub(super) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    core: mpsc::UnboundedSender<CoreMsg>,
    durable: watch::Receiver<i64>,
    stats: Arc<Stats>,
    max_buffer: usize,
    max_per_ip: u32,
) -> anyhow::Result<()> {
    let per_ip: Arc<Mutex<HashMap<IpAddr, u32>>> = Arc::default();
    let mut next_conn: ConnId = 1;
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = addr.ip();
        {
            let mut m = per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(ip).or_insert(0);
            if max_per_ip > 0 && *n >= max_per_ip {
                tracing::warn!(%ip, max = max_per_ip, "too many connections from this address; closing the new one");
                continue;
            }
            *n += 1;
        }
        let _ = stream.set_nodelay(true);
        let conn = next_conn;
        next_conn += 1;
        let ctx = conn::Ctx {
            conn,
            addr,
            core: core.clone(),
            durable: durable.clone(),
            stats: stats.clone(),
            max_buffer,
        };
        let per_ip = per_ip.clone();
        tokio::spawn(async move {
            conn::run(stream, ctx).await;
            let mut m = per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        });
    }
}
