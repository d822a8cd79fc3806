//! Four-letter words: the text commands ZooKeeper answers on its client
//! port (`ruok`, `srvr`, `mntr`, ...), in ZooKeeper's formats so the tools
//! that parse them keep working.
//!
//! Pure formatting of the processor's state plus what only the shell knows
//! (latencies, disk use, uptime), handed in as `ShellInfo`.

use super::Processor;
use crate::config::Whitelist;
use std::fmt::Write;

/// The version string rzk reports; it names the ZooKeeper release whose
/// protocol it speaks so version-sniffing tools behave.
pub const VERSION: &str = concat!(
    "3.9.3-rzk-",
    env!("CARGO_PKG_VERSION"),
    ", built on 2026-11-22 00:00 UTC"
);

/// Every word we know, as ZooKeeper lists them.
pub const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp", "dump", "dirs",
    "isro", "crst", "srst",
];

/// The integer a four-letter word reads as when taken for a frame length.
pub fn word_code(word: &[u8; 4]) -> i32 {
    i32::from_be_bytes(*word)
}

/// Is this frame length really a four-letter word?
pub fn word_of(len: i32) -> Option<&'static str> {
    let b = len.to_be_bytes();
    WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == b)
        .or(match &b {
            b"gtmk" => Some("gtmk"),
            b"stmk" => Some("stmk"),
            b"hash" => Some("hash"),
            _ => None,
        })
}

/// What the shell measures and the processor can't know.
#[derive(Debug, Clone, Default)]
pub struct ShellInfo {
    pub latency_min_ms: u64,
    pub latency_avg_ms: f64,
    pub latency_max_ms: u64,
    pub outstanding: u64,
    pub data_dir_size: u64,
    pub log_dir_size: u64,
    pub config: Vec<(String, String)>,
    pub mode: String,
    pub uptime_ms: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub fsync_threshold_exceeded: u64,
    pub extra_mntr: Vec<(String, String)>,
    /// What `envi` prints: host name, versions, directories.
    pub environment: Vec<(String, String)>,
}

fn java_double(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

/// The reply to `word`, or the whitelist refusal.
/// Words ZooKeeper answers only while serving (in a quorum, or standalone).
const NEEDS_SERVING: &[&str] = &[
    "srvr", "stat", "mntr", "cons", "crst", "dump", "wchs", "wchc", "wchp", "dirs",
];

pub fn answer(p: &mut Processor, word: &str, whitelist: &Whitelist, info: &ShellInfo) -> String {
    if !whitelist.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    if info.mode == "looking" && NEEDS_SERVING.contains(&word) {
        // As ZooKeeper: these words need a running (serving) server.
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    let mut s = String::new();
    match word {
        "ruok" => s.push_str("imok"),
        "isro" => s.push_str(if p.is_read_only() { "ro" } else { "rw" }),
        "srvr" => srvr(p, info, &mut s, false),
        "stat" => srvr(p, info, &mut s, true),
        "cons" => {
            for (id, addr, session, timeout, st) in p.connections() {
                let _ = writeln!(
                    s,
                    " /{addr}[1](queued=0,recved={},sent={},sid=0x{session:x},lop={},est={},to={timeout},lcxid=0x{:x},lzxid=0x{:x},lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)",
                    st.received,
                    st.sent,
                    if st.last_op.is_empty() {
                        "NA"
                    } else {
                        st.last_op
                    },
                    st.established_wall_ms,
                    st.last_cxid,
                    st.last_zxid,
                );
                let _ = id;
            }
            s.push('\n');
        }
        "crst" => {
            p.reset_connection_stats();
            s.push_str("Connection stats reset.\n");
        }
        "srst" => {
            p.counters = Default::default();
            s.push_str("Server stats reset.\n");
        }
        "conf" => {
            for (k, v) in &info.config {
                let _ = writeln!(s, "{k}={v}");
            }
        }
        "envi" => {
            s.push_str("Environment:\n");
            for (k, v) in &info.environment {
                let _ = writeln!(s, "{k}={v}");
            }
        }
        "wchs" => {
            let _ = writeln!(
                s,
                "{} connections watching {} paths\nTotal watches:{}",
                p.watches.conns(),
                p.watches.paths(),
                p.watches.count()
            );
        }
        "wchc" => {
            let sessions: std::collections::HashMap<u64, i64> = p
                .connections()
                .map(|(id, _, sid, _, _)| (id, sid))
                .collect();
            for (conn, paths) in p.watches.by_conn() {
                let _ = writeln!(s, "0x{:x}", sessions.get(&conn).copied().unwrap_or(0));
                for path in paths {
                    let _ = writeln!(s, "\t{path}");
                }
            }
            s.push('\n');
        }
        "wchp" => {
            let sessions: std::collections::HashMap<u64, i64> = p
                .connections()
                .map(|(id, _, sid, _, _)| (id, sid))
                .collect();
            for (path, conns) in p.watches.by_path() {
                let _ = writeln!(s, "{path}");
                for c in conns {
                    let _ = writeln!(s, "\t0x{:x}", sessions.get(&c).copied().unwrap_or(0));
                }
            }
            s.push('\n');
        }
        "dump" => {
            let _ = writeln!(s, "SessionTracker dump:");
            let buckets = p.sessions.buckets();
            let _ = writeln!(
                s,
                "Session Sets ({})/({}):",
                buckets.len(),
                p.sessions.len()
            );
            for (at, ids) in buckets {
                let _ = writeln!(s, "{} expire at {}:", ids.len(), at);
                for id in ids {
                    let _ = writeln!(s, "\t0x{id:x}");
                }
            }
            let _ = writeln!(s, "ephemeral nodes dump:");
            let mut eph: Vec<_> = p.tree.all_ephemerals().collect();
            eph.sort();
            let _ = writeln!(s, "Sessions with Ephemerals ({}):", eph.len());
            for (sid, paths) in eph {
                let _ = writeln!(s, "0x{sid:x}:");
                for path in paths {
                    let _ = writeln!(s, "\t{path}");
                }
            }
            let _ = writeln!(s, "Connections dump:");
            let _ = writeln!(s, "Connections Sets (0)/(0):");
        }
        "dirs" => {
            let _ = writeln!(s, "datadir_size: {}", info.data_dir_size);
            let _ = writeln!(s, "logdir_size: {}", info.log_dir_size);
        }
        "mntr" => {
            for (k, v) in mntr(p, info) {
                let _ = writeln!(s, "zk_{k}\t{v}");
            }
        }
        "gtmk" | "stmk" => s.push('0'),
        "hash" => s.push_str("Digest in the last 0 transactions is not available\n"),
        _ => {
            let _ = write!(s, "Unknown command {word}");
        }
    }
    s
}

fn srvr(p: &Processor, info: &ShellInfo, s: &mut String, with_clients: bool) {
    let _ = writeln!(s, "Zookeeper version: {VERSION}");
    if with_clients {
        let _ = writeln!(s, "Clients:");
        for (_, addr, _, _, st) in p.connections() {
            let _ = writeln!(
                s,
                " /{addr}[1](queued=0,recved={},sent={})",
                st.received, st.sent
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Latency min/avg/max: {}/{}/{}",
        info.latency_min_ms,
        java_double(info.latency_avg_ms),
        info.latency_max_ms
    );
    let _ = writeln!(s, "Received: {}", p.counters.packets_received);
    let _ = writeln!(s, "Sent: {}", p.counters.packets_sent);
    let _ = writeln!(s, "Connections: {}", p.connection_count());
    let _ = writeln!(s, "Outstanding: {}", info.outstanding);
    let _ = writeln!(s, "Zxid: 0x{:x}", p.last_zxid());
    let _ = writeln!(s, "Mode: {}", info.mode);
    let _ = writeln!(s, "Node count: {}", p.tree.znode_count());
}

/// The monitoring key/values (`mntr`, and the admin `monitor` command),
/// without the `zk_` prefix.
pub fn mntr(p: &Processor, info: &ShellInfo) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("version".into(), VERSION.into()),
        ("avg_latency".into(), java_double(info.latency_avg_ms)),
        ("max_latency".into(), info.latency_max_ms.to_string()),
        ("min_latency".into(), info.latency_min_ms.to_string()),
        (
            "packets_received".into(),
            p.counters.packets_received.to_string(),
        ),
        ("packets_sent".into(), p.counters.packets_sent.to_string()),
        (
            "num_alive_connections".into(),
            p.connection_count().to_string(),
        ),
        ("outstanding_requests".into(), info.outstanding.to_string()),
        ("server_state".into(), info.mode.clone()),
        ("znode_count".into(), p.tree.znode_count().to_string()),
        ("watch_count".into(), p.watches.count().to_string()),
        (
            "ephemerals_count".into(),
            p.tree.ephemeral_count().to_string(),
        ),
        (
            "approximate_data_size".into(),
            p.tree.approximate_data_size().to_string(),
        ),
        (
            "open_file_descriptor_count".into(),
            info.open_fds.to_string(),
        ),
        ("max_file_descriptor_count".into(), info.max_fds.to_string()),
        (
            "fsync_threshold_exceed_count".into(),
            info.fsync_threshold_exceeded.to_string(),
        ),
        ("uptime".into(), info.uptime_ms.to_string()),
        ("global_sessions".into(), p.sessions.len().to_string()),
        ("local_sessions".into(), "0".into()),
        ("last_zxid".into(), format!("0x{:x}", p.last_zxid())),
    ];
    v.extend(info.extra_mntr.iter().cloned());
    v
}
