//! Prometheus metrics: what `/metrics` on `metricsProvider.httpPort` shows.
//!
//! Names follow Apache ZooKeeper's Prometheus provider wherever ZooKeeper has
//! the metric (`znode_count`, `packets_received`, `fsynctime`, ...), so
//! dashboards and alerts written for ZooKeeper keep working; rzk's own
//! metrics start with `rzk_` (and `process_` for the usual process ones).
//!
//! Two kinds of state live here, both free of sockets and the processor:
//! * [`Recorder`]: long-lived histograms that the connection tasks and the
//!   core feed as things happen (request latencies, snapshot times, the
//!   transaction log's fsyncs and group-commit batches).
//! * [`Sample`]: the gauges, read from the core at scrape time.
//!
//! [`encode`] turns both into the OpenMetrics text Prometheus scrapes.
//!
//! ZooKeeper exports its timings as summaries with quantiles; the
//! prometheus-client crate has no summary type, so rzk exports histograms
//! under the same names. `<name>_count` and `<name>_sum` are the same series
//! as ZooKeeper's; quantiles come from `histogram_quantile` over
//! `<name>_bucket` instead of a `quantile` label.

use crate::processor::Processor;
use crate::processor::fourlw::ShellInfo;
use crate::proto::OpCode;
use crate::storage::LogStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::Duration;

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in milliseconds, from 0.1 ms to 10 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
        5000.0, 10000.0,
    ]
    .into_iter()
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// Histograms fed as events happen. Shared by the connection tasks and the
/// core through `Arc<Stats>`.
#[derive(Debug)]
pub struct Recorder {
    per_op: Family<OpLabel, Histogram, fn() -> Histogram>,
    read_latency: Histogram,
    update_latency: Histogram,
    fsync_time: Histogram,
    snapshot_time: Histogram,
    election_time: Histogram,
    batch_size: Histogram,
    /// The log's counters when last looked at, to turn totals into events.
    seen_log: Mutex<LogStats>,
}

/// Request types whose latency series exist from the start, so dashboards
/// show zeros rather than gaps on an idle server.
const COMMON_OPS: &[OpCode] = &[
    OpCode::Create,
    OpCode::Create2,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetChildren,
    OpCode::GetChildren2,
    OpCode::Multi,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::CreateSession,
    OpCode::CloseSession,
];

impl Default for Recorder {
    fn default() -> Self {
        let rec = Recorder {
            per_op: Family::new_with_constructor(latency_histogram),
            read_latency: latency_histogram(),
            update_latency: latency_histogram(),
            fsync_time: latency_histogram(),
            snapshot_time: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            election_time: Histogram::new(exponential_buckets(10.0, 4.0, 8)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            seen_log: Mutex::new(LogStats::default()),
        };
        for op in COMMON_OPS {
            let _ = rec.per_op.get_or_create(&OpLabel {
                op: op_name(*op as i32),
            });
        }
        rec
    }
}

/// Apache ZooKeeper's name of a request type (as in its request traces).
pub fn op_name(op: i32) -> &'static str {
    use OpCode::*;
    match OpCode::from_i32(op) {
        Some(Notification) => "notification",
        Some(Create) => "create",
        Some(Delete) => "delete",
        Some(Exists) => "exists",
        Some(GetData) => "getData",
        Some(SetData) => "setData",
        Some(GetAcl) => "getACL",
        Some(SetAcl) => "setACL",
        Some(GetChildren) => "getChildren",
        Some(Sync) => "sync",
        Some(Ping) => "ping",
        Some(GetChildren2) => "getChildren2",
        Some(Check) => "check",
        Some(Multi) => "multi",
        Some(Create2) => "create2",
        Some(Reconfig) => "reconfig",
        Some(CheckWatches) => "checkWatches",
        Some(RemoveWatches) => "removeWatches",
        Some(CreateContainer) => "createContainer",
        Some(DeleteContainer) => "deleteContainer",
        Some(CreateTtl) => "createTTL",
        Some(MultiRead) => "multiRead",
        Some(Auth) => "auth",
        Some(SetWatches) => "setWatches",
        Some(Sasl) => "sasl",
        Some(GetEphemerals) => "getEphemerals",
        Some(GetAllChildrenNumber) => "getAllChildrenNumber",
        Some(SetWatches2) => "setWatches2",
        Some(AddWatch) => "addWatch",
        Some(WhoAmI) => "whoAmI",
        Some(CreateSession) => "createSession",
        Some(CloseSession) => "closeSession",
        Some(Error) => "error",
        None => "unknown",
    }
}

/// Reads that ZooKeeper's `readlatency` covers.
fn is_read(op: i32) -> bool {
    use OpCode::*;
    matches!(
        OpCode::from_i32(op),
        Some(
            Exists
                | GetData
                | GetAcl
                | GetChildren
                | GetChildren2
                | GetEphemerals
                | GetAllChildrenNumber
                | MultiRead
                | WhoAmI
        )
    )
}

impl Recorder {
    /// One request answered `took` after it arrived.
    pub fn request(&self, op: i32, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        self.per_op
            .get_or_create(&OpLabel { op: op_name(op) })
            .observe(ms);
        if is_read(op) {
            self.read_latency.observe(ms);
        } else if OpCode::from_i32(op).is_some_and(|c| c.is_write()) {
            self.update_latency.observe(ms);
        }
    }

    /// A leader election finished after `took` (for replication).
    pub fn election_finished(&self, took: Duration) {
        self.election_time.observe(took.as_secs_f64() * 1000.0);
    }

    /// A snapshot was written in `took`.
    pub fn snapshot_written(&self, took: Duration) {
        self.snapshot_time.observe(took.as_secs_f64() * 1000.0);
    }

    /// Turns the log's running totals into fsync and batch observations.
    /// The log keeps totals only, so each fsync since the last call counts
    /// with the average time of those fsyncs (exact when there was one), and
    /// each batch with the average batch size.
    pub fn log_progress(&self, now: LogStats) {
        let mut seen = self.seen_log.lock().unwrap_or_else(|e| e.into_inner());
        let syncs = now.fsync_count.saturating_sub(seen.fsync_count);
        if syncs > 0 {
            let micros = now
                .total_fsync_micros
                .saturating_sub(seen.total_fsync_micros);
            let avg_ms = micros as f64 / syncs as f64 / 1000.0;
            for _ in 0..syncs {
                self.fsync_time.observe(avg_ms);
            }
        }
        let batches = now.batches.saturating_sub(seen.batches);
        if batches > 0 {
            let entries = now.entries.saturating_sub(seen.entries);
            let avg = entries as f64 / batches as f64;
            for _ in 0..batches {
                self.batch_size.observe(avg);
            }
        }
        *seen = now;
    }
}

/// Process figures from /proc, as Prometheus' client libraries export them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessInfo {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub threads: u64,
}

impl ProcessInfo {
    /// Reads /proc/self; zeros where it cannot.
    pub fn read() -> ProcessInfo {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime ").map(|v| v.trim().parse().ok()))
                    .flatten()
            })
            .unwrap_or(0u64);
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        parse_proc_stat(&stat, ticks, page, boot)
    }
}

/// Parses /proc/self/stat (fields after the parenthesised command name).
pub fn parse_proc_stat(stat: &str, ticks: f64, page: u64, boot_time: u64) -> ProcessInfo {
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return ProcessInfo::default();
    };
    // rest starts with the state, field 3 of proc(5).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> u64 { f.get(i - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
    ProcessInfo {
        cpu_seconds: (num(14) + num(15)) as f64 / ticks,
        threads: num(20),
        start_time_seconds: boot_time as f64 + num(22) as f64 / ticks,
        virtual_bytes: num(23),
        resident_bytes: num(24) * page,
    }
}

/// Everything `/metrics` shows besides the histograms, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub server_id: u64,
    pub server_state: String,
    pub znode_count: u64,
    pub watch_count: u64,
    pub ephemerals_count: u64,
    pub approximate_data_size: u64,
    pub num_alive_connections: u64,
    pub outstanding_requests: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub avg_latency: f64,
    pub min_latency: u64,
    pub max_latency: u64,
    pub open_file_descriptor_count: u64,
    pub max_file_descriptor_count: u64,
    pub uptime_ms: u64,
    pub global_sessions: u64,
    pub last_zxid: i64,
    pub fsync_threshold_exceed_count: u64,
    pub data_dir_size: u64,
    pub log_dir_size: u64,
    pub quorum_size: u64,
    pub learners: u64,
    pub synced_followers: u64,
    pub pending_syncs: u64,
    pub leader_uptime_ms: u64,
    pub log: LogStats,
    pub process: ProcessInfo,
}

impl Sample {
    /// Reads the processor and what the shell measured. Runs in the core.
    pub fn gather(p: &Processor, info: &ShellInfo, log: LogStats, server_id: u64) -> Sample {
        let extra = |key: &str| -> Option<u64> {
            info.extra_mntr
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.parse().ok())
        };
        Sample {
            server_id,
            server_state: info.mode.clone(),
            znode_count: p.tree.znode_count() as u64,
            watch_count: p.watches.count() as u64,
            ephemerals_count: p.tree.ephemeral_count() as u64,
            approximate_data_size: p.tree.approximate_data_size(),
            num_alive_connections: p.connection_count() as u64,
            outstanding_requests: info.outstanding,
            packets_received: p.counters.packets_received,
            packets_sent: p.counters.packets_sent,
            avg_latency: info.latency_avg_ms,
            min_latency: info.latency_min_ms,
            max_latency: info.latency_max_ms,
            open_file_descriptor_count: info.open_fds,
            max_file_descriptor_count: info.max_fds,
            uptime_ms: info.uptime_ms,
            global_sessions: p.sessions.len() as u64,
            last_zxid: p.last_zxid(),
            fsync_threshold_exceed_count: info.fsync_threshold_exceeded,
            data_dir_size: info.data_dir_size,
            log_dir_size: info.log_dir_size,
            // The quorum figures come from the same place as `mntr`'s
            // leader-only keys; a standalone server has none: a quorum of one.
            quorum_size: extra("quorum_size").unwrap_or(1),
            learners: extra("learners").or(extra("followers")).unwrap_or(0),
            synced_followers: extra("synced_followers").unwrap_or(0),
            pending_syncs: extra("pending_syncs").unwrap_or(0),
            leader_uptime_ms: extra("leader_uptime").unwrap_or(0),
            log,
            process: ProcessInfo::default(),
        }
    }
}

fn gauge<N>(r: &mut Registry, name: &str, help: &str, v: N)
where
    N: prometheus_client::encoding::EncodeGaugeValue + Send + Sync + std::fmt::Debug + 'static,
{
    r.register(name, help, ConstGauge::new(v));
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    r.register(name, help, ConstCounter::new(v));
}

/// The registry a scrape shows: the sample's gauges and the recorder's
/// histograms. Built per scrape; the histograms are shared handles.
pub fn registry(s: &Sample, rec: &Recorder) -> Registry {
    let mut r = Registry::default();
    // ZooKeeper's gauges, same names and units.
    gauge(&mut r, "znode_count", "Number of znodes", s.znode_count);
    gauge(&mut r, "watch_count", "Number of watches", s.watch_count);
    gauge(
        &mut r,
        "ephemerals_count",
        "Number of ephemeral znodes",
        s.ephemerals_count,
    );
    gauge(
        &mut r,
        "approximate_data_size",
        "Approximate size of the data tree in bytes",
        s.approximate_data_size,
    );
    gauge(
        &mut r,
        "num_alive_connections",
        "Number of client connections",
        s.num_alive_connections,
    );
    gauge(
        &mut r,
        "outstanding_requests",
        "Requests received and not yet answered",
        s.outstanding_requests,
    );
    gauge(
        &mut r,
        "packets_received",
        "Client packets received",
        s.packets_received,
    );
    gauge(
        &mut r,
        "packets_sent",
        "Client packets sent",
        s.packets_sent,
    );
    gauge(
        &mut r,
        "avg_latency",
        "Average request latency in ms since the last stats reset",
        s.avg_latency,
    );
    gauge(
        &mut r,
        "min_latency",
        "Minimum request latency in ms",
        s.min_latency,
    );
    gauge(
        &mut r,
        "max_latency",
        "Maximum request latency in ms",
        s.max_latency,
    );
    gauge(
        &mut r,
        "open_file_descriptor_count",
        "Open file descriptors",
        s.open_file_descriptor_count,
    );
    gauge(
        &mut r,
        "max_file_descriptor_count",
        "File descriptor limit",
        s.max_file_descriptor_count,
    );
    gauge(&mut r, "uptime", "Server uptime in ms", s.uptime_ms);
    gauge(
        &mut r,
        "global_sessions",
        "Number of sessions",
        s.global_sessions,
    );
    gauge(&mut r, "local_sessions", "Number of local sessions", 0u64);
    gauge(
        &mut r,
        "fsync_threshold_exceed_count",
        "fsyncs slower than fsync.warningthresholdms",
        s.fsync_threshold_exceed_count,
    );
    // Quorum gauges (ZooKeeper registers them on the leader).
    gauge(
        &mut r,
        "quorum_size",
        "Voting members in the ensemble",
        s.quorum_size,
    );
    gauge(&mut r, "learners", "Learners connected", s.learners);
    gauge(
        &mut r,
        "synced_followers",
        "Followers in sync",
        s.synced_followers,
    );
    gauge(
        &mut r,
        "pending_syncs",
        "Learners being synced",
        s.pending_syncs,
    );
    gauge(
        &mut r,
        "leader_uptime",
        "Time this server has led, in ms",
        s.leader_uptime_ms,
    );
    // ZooKeeper's summaries, as histograms in ms.
    r.register(
        "fsynctime",
        "Transaction log fsync time in ms",
        rec.fsync_time.clone(),
    );
    r.register(
        "snapshottime",
        "Snapshot write time in ms",
        rec.snapshot_time.clone(),
    );
    r.register(
        "election_time",
        "Leader election time in ms",
        rec.election_time.clone(),
    );
    r.register(
        "readlatency",
        "Read request latency in ms",
        rec.read_latency.clone(),
    );
    r.register(
        "updatelatency",
        "Write request latency in ms",
        rec.update_latency.clone(),
    );
    r.register(
        "sync_processor_batch_size",
        "Transactions per group-committed log write",
        rec.batch_size.clone(),
    );
    // rzk's own.
    r.register(
        "rzk_request_latency_ms",
        "Request latency in ms by request type, from arrival to reply",
        rec.per_op.clone(),
    );
    let states: Family<StateLabel, Gauge> = Family::default();
    states
        .get_or_create(&StateLabel {
            state: s.server_state.clone(),
        })
        .set(1);
    r.register(
        "rzk_server_state",
        "1 for the state this server is in (standalone, leader, follower, observer, looking)",
        states,
    );
    gauge(
        &mut r,
        "rzk_server_id",
        "This server's id (myid)",
        s.server_id,
    );
    gauge(&mut r, "rzk_last_zxid", "Highest zxid applied", s.last_zxid);
    gauge(
        &mut r,
        "rzk_data_dir_size_bytes",
        "Bytes in the snapshot directory",
        s.data_dir_size,
    );
    gauge(
        &mut r,
        "rzk_log_dir_size_bytes",
        "Bytes in the transaction log directory",
        s.log_dir_size,
    );
    counter(
        &mut r,
        "rzk_txnlog_fsyncs",
        "Transaction log fsyncs",
        s.log.fsync_count,
    );
    counter(
        &mut r,
        "rzk_txnlog_batches",
        "Group-committed transaction log writes",
        s.log.batches,
    );
    counter(
        &mut r,
        "rzk_txnlog_entries",
        "Transactions written to the log",
        s.log.entries,
    );
    counter(
        &mut r,
        "rzk_txnlog_written_bytes",
        "Bytes written to the transaction log",
        s.log.bytes_written,
    );
    gauge(
        &mut r,
        "rzk_txnlog_max_batch_size",
        "Largest group-commit batch so far",
        s.log.max_batch_size,
    );
    gauge(
        &mut r,
        "rzk_txnlog_max_fsync_ms",
        "Slowest fsync so far, in ms",
        s.log.max_fsync_micros as f64 / 1000.0,
    );
    // The process, as Prometheus' client libraries name it.
    counter_f(
        &mut r,
        "process_cpu_seconds",
        "User and system CPU time in seconds",
        s.process.cpu_seconds,
    );
    gauge(
        &mut r,
        "process_resident_memory_bytes",
        "Resident memory in bytes",
        s.process.resident_bytes,
    );
    gauge(
        &mut r,
        "process_virtual_memory_bytes",
        "Virtual memory in bytes",
        s.process.virtual_bytes,
    );
    gauge(
        &mut r,
        "process_start_time_seconds",
        "Start time since the Unix epoch in seconds",
        s.process.start_time_seconds,
    );
    gauge(
        &mut r,
        "process_open_fds",
        "Open file descriptors",
        s.open_file_descriptor_count,
    );
    gauge(
        &mut r,
        "process_max_fds",
        "File descriptor limit",
        s.max_file_descriptor_count,
    );
    gauge(&mut r, "process_threads", "OS threads", s.process.threads);
    r
}

fn counter_f(r: &mut Registry, name: &str, help: &str, v: f64) {
    r.register(name, help, ConstCounter::new(v));
}

/// The OpenMetrics text of a scrape.
pub fn encode(s: &Sample, rec: &Recorder) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry(s, rec));
    out
}

/// The metric family names a scrape shows (`# TYPE` lines), for tests and
/// the dashboard check.
pub fn family_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn zookeeper_names_and_values() {
        let rec = Recorder::default();
        let s = Sample {
            znode_count: 7,
            packets_received: 3,
            server_state: "standalone".into(),
            log: LogStats {
                entries: 10,
                batches: 4,
                ..LogStats::default()
            },
            ..Sample::default()
        };
        let text = encode(&s, &rec);
        assert_eq!(value(&text, "znode_count"), Some(7.0), "{text}");
        assert_eq!(value(&text, "packets_received"), Some(3.0));
        assert_eq!(value(&text, "quorum_size"), Some(0.0));
        assert_eq!(
            value(&text, "rzk_server_state{state=\"standalone\"}"),
            Some(1.0)
        );
        assert_eq!(value(&text, "rzk_txnlog_entries_total"), Some(10.0));
        assert_eq!(value(&text, "fsynctime_count"), Some(0.0));
        assert!(text.ends_with("# EOF\n"));
        let names = family_names(&text);
        for n in [
            "znode_count",
            "watch_count",
            "ephemerals_count",
            "approximate_data_size",
            "num_alive_connections",
            "outstanding_requests",
            "packets_sent",
            "fsynctime",
            "snapshottime",
            "open_file_descriptor_count",
            "uptime",
            "global_sessions",
            "synced_followers",
            "pending_syncs",
            "learners",
            "leader_uptime",
            "election_time",
            "rzk_request_latency_ms",
            "sync_processor_batch_size",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn requests_are_split_by_type() {
        let rec = Recorder::default();
        rec.request(OpCode::GetData as i32, Duration::from_millis(2));
        rec.request(OpCode::Create as i32, Duration::from_millis(30));
        rec.request(OpCode::Ping as i32, Duration::from_micros(50));
        let text = encode(&Sample::default(), &rec);
        assert_eq!(value(&text, "readlatency_count"), Some(1.0), "{text}");
        assert_eq!(value(&text, "updatelatency_count"), Some(1.0));
        assert_eq!(value(&text, "updatelatency_sum"), Some(30.0));
        assert_eq!(
            value(&text, "rzk_request_latency_ms_count{op=\"ping\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "rzk_request_latency_ms_bucket{le=\"5.0\",op=\"getData\"}"
            )
            .or_else(|| value(
                &text,
                "rzk_request_latency_ms_bucket{op=\"getData\",le=\"5.0\"}"
            )),
            Some(1.0)
        );
    }

    #[test]
    fn log_totals_become_events() {
        let rec = Recorder::default();
        rec.log_progress(LogStats {
            fsync_count: 4,
            total_fsync_micros: 8000,
            batches: 4,
            entries: 40,
            ..LogStats::default()
        });
        rec.log_progress(LogStats {
            fsync_count: 5,
            total_fsync_micros: 9000,
            batches: 5,
            entries: 41,
            ..LogStats::default()
        });
        let text = encode(&Sample::default(), &rec);
        assert_eq!(value(&text, "fsynctime_count"), Some(5.0), "{text}");
        assert_eq!(value(&text, "fsynctime_sum"), Some(9.0));
        assert_eq!(value(&text, "sync_processor_batch_size_count"), Some(5.0));
        assert_eq!(value(&text, "sync_processor_batch_size_sum"), Some(41.0));
    }

    #[test]
    fn gather_reads_the_tree_and_the_quorum_keys_of_mntr() {
        use crate::processor::{Clock, Settings};
        let cfg = crate::config::Config::default();
        let p = Processor::new(
            Settings::from_config(&cfg, 1),
            crate::tree::DataTree::new(),
            &[],
            Clock {
                wall_ms: 0,
                mono_ms: 0,
            },
        );
        let mut info = ShellInfo {
            mode: "standalone".into(),
            ..ShellInfo::default()
        };
        let s = Sample::gather(&p, &info, LogStats::default(), 1);
        assert_eq!(s.znode_count, p.tree.znode_count() as u64);
        assert_eq!((s.quorum_size, s.synced_followers), (1, 0));
        // What a leader's mntr adds is what /metrics shows.
        info.mode = "leader".into();
        info.extra_mntr = vec![
            ("quorum_size".into(), "3".into()),
            ("followers".into(), "2".into()),
            ("synced_followers".into(), "2".into()),
            ("pending_syncs".into(), "0".into()),
        ];
        let s = Sample::gather(&p, &info, LogStats::default(), 1);
        assert_eq!((s.quorum_size, s.learners, s.synced_followers), (3, 2, 2));
        let text = encode(&s, &Recorder::default());
        assert_eq!(value(&text, "synced_followers"), Some(2.0));
        assert_eq!(
            value(&text, "rzk_server_state{state=\"leader\"}"),
            Some(1.0)
        );
    }

    #[test]
    fn proc_stat_parses() {
        // pid (comm with ) space) state ppid ... as proc(5) lays it out.
        let stat = "42 (rzk (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 123456789 2000 18446744073709551615";
        let p = parse_proc_stat(stat, 100.0, 4096, 1_700_000_000);
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.threads, 7);
        assert_eq!(p.start_time_seconds, 1_700_000_010.0);
        assert_eq!(p.virtual_bytes, 123456789);
        assert_eq!(p.resident_bytes, 2000 * 4096);
        assert_eq!(
            parse_proc_stat("garbage", 100.0, 4096, 0),
            ProcessInfo::default()
        );
    }
}
