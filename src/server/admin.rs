//! The HTTP side of `rzk server`: ZooKeeper's AdminServer commands
//! (`/commands/<name>`, JSON, on `admin.serverPort`), the Kubernetes health
//! probes (`/health/live`, `/health/ready`, same port), and Prometheus'
//! `/metrics` (on `metricsProvider.httpPort`).
//!
//! The command answers are built by [`run`], a pure function of what the
//! core shows (`View`); the HTTP tasks never touch the processor, they send
//! the core a closure (`CoreMsg::Inspect`) and wait for its reply. Both
//! listeners come up before recovery, so `/health/live` answers while a big
//! data tree loads; until the core is attached everything else answers that
//! the server is not serving yet.
//!
//! Like ZooKeeper, a port that cannot be bound is logged and the server goes
//! on without it; port 0 binds a free port, logged as `addr`.

use super::core::{CoreMsg, Stats, View};
use super::metrics::{self, ProcessInfo, Sample};
use super::recovery;
use crate::config::{Config, Whitelist};
use crate::processor::fourlw::{self, VERSION};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// How long an HTTP request waits for the core before giving up.
const CORE_TIMEOUT: Duration = Duration::from_secs(5);
/// Readiness must answer quickly: a probe has its own short timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Admin commands: primary name first, then the aliases (ZooKeeper's).
pub const COMMANDS: &[&[&str]] = &[
    &["configuration", "conf", "config"],
    &["connection_stat_reset", "crst"],
    &["connections", "cons"],
    &["dirs"],
    &["dump"],
    &["environment", "env", "envi"],
    &["is_read_only", "isro"],
    &["leader", "lead"],
    &["monitor", "mntr"],
    &["ruok"],
    &["server_stats", "srvr"],
    &["snapshot", "snap"],
    &["stat_reset", "srst"],
    &["stats", "stat"],
    &["voting_view"],
    &["watch_summary", "wchs"],
    &["watches", "wchc"],
    &["watches_by_path", "wchp"],
    &["zabstate"],
];

/// The primary name of a command or alias.
pub fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|names| names.contains(&name))
        .map(|names| names[0])
}

/// The core and the shared counters, once the server serves.
#[derive(Clone)]
struct Link {
    core: mpsc::UnboundedSender<CoreMsg>,
    stats: Arc<Stats>,
}

/// Hands the HTTP servers the core once recovery is done.
pub struct Observe {
    link: watch::Sender<Option<Link>>,
}

impl Observe {
    pub fn attach(&self, core: mpsc::UnboundedSender<CoreMsg>, stats: Arc<Stats>) {
        self.link.send_replace(Some(Link { core, stats }));
    }
}

#[derive(Clone)]
struct Shared {
    link: watch::Receiver<Option<Link>>,
    snapshot_enabled: bool,
}

impl Shared {
    fn link(&self) -> Option<Link> {
        self.link.borrow().clone()
    }
}

/// Binds and starts the metrics and admin servers.
pub async fn start(cfg: &Config) -> anyhow::Result<Observe> {
    let (tx, rx) = watch::channel(None);
    let shared = Shared {
        link: rx,
        snapshot_enabled: cfg.admin_snapshot_enabled,
    };
    if let Some(l) = bind_or_log(
        &cfg.metrics_host,
        cfg.metrics_port,
        "Prometheus metrics at /metrics",
        "metricsProvider.httpPort",
    )
    .await
    {
        let s = shared.clone();
        tokio::spawn(serve_http(l, move |req| metrics_route(s.clone(), req)));
    }
    if !cfg.admin_enabled {
        tracing::info!("admin server disabled (admin.enableServer=false)");
    } else if let Some(l) = bind_or_log(
        &cfg.admin_address,
        cfg.admin_port,
        "the admin API at /commands and /health",
        "admin.serverPort",
    )
    .await
    {
        let s = shared.clone();
        tokio::spawn(serve_http(l, move |req| admin_route(s.clone(), req)));
    }
    Ok(Observe { link: tx })
}

/// Binds an HTTP listener. A port that can't be bound is logged and the
/// server goes on without that listener, as ZooKeeper's AdminServer does.
async fn bind_or_log(host: &str, port: u16, what: &str, key: &str) -> Option<TcpListener> {
    match TcpListener::bind((host, port)).await {
        Ok(l) => {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(%addr, "serving {what}");
            }
            Some(l)
        }
        Err(e) => {
            tracing::error!(%host, port, error = %e, "cannot listen for {what} ({key}); it is not served");
            None
        }
    }
}

type Reply = Response<Full<Bytes>>;

async fn serve_http<F, Fut>(listener: TcpListener, route: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let route = route.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let route = route.clone();
                async move { Ok::<_, Infallible>(route(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Reply {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    reply(status, "application/json", text)
}

/// Runs `f` inside the core task and returns its result.
async fn ask<T, F>(core: &mpsc::UnboundedSender<CoreMsg>, timeout: Duration, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(View<'_>) -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    core.send(CoreMsg::Inspect(Box::new(move |v| {
        let _ = tx.send(f(v));
    })))
    .ok()?;
    tokio::time::timeout(timeout, rx).await.ok()?.ok()
}

async fn metrics_route(s: Shared, req: Request<Incoming>) -> Reply {
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "only /metrics here\n");
    }
    let Some(link) = s.link() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "recovering; not serving yet\n",
        );
    };
    let sample = ask(&link.core, CORE_TIMEOUT, |v| {
        v.stats.recorder.log_progress(v.log);
        Sample::gather(v.p, &v.info, v.log, v.server_id)
    })
    .await;
    let Some(mut sample) = sample else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the server core did not answer\n",
        );
    };
    sample.process = ProcessInfo::read();
    reply(
        StatusCode::OK,
        metrics::CONTENT_TYPE,
        metrics::encode(&sample, &link.stats.recorder),
    )
}

/// The states in which a server serves clients.
fn is_serving(mode: &str) -> bool {
    matches!(mode, "standalone" | "leader" | "follower" | "observer")
}

async fn admin_route(s: Shared, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().trim_end_matches('/').to_string();
    if req.method() != Method::GET && req.method() != Method::HEAD && req.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match path.as_str() {
        "/health/live" => json_reply(StatusCode::OK, &json!({"status": "live"})),
        "/health/ready" => ready(&s).await,
        "/commands" => {
            let mut html = String::new();
            for names in COMMANDS {
                html.push_str(&format!(
                    "<a href=\"/commands/{0}\">{0}</a>\n<br/>\n",
                    names[0]
                ));
            }
            reply(StatusCode::OK, "text/html", html)
        }
        p if p.starts_with("/commands/") => {
            let name = &p["/commands/".len()..];
            command(&s, name).await
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Ready when the core answers and is in a serving state (standalone now;
/// with replication: leading, or following and synced).
async fn ready(s: &Shared) -> Reply {
    let Some(link) = s.link() else {
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "reason": "recovering"}),
        );
    };
    match ask(&link.core, READY_TIMEOUT, |v| v.info.mode.clone()).await {
        Some(mode) if is_serving(&mode) => json_reply(
            StatusCode::OK,
            &json!({"status": "ready", "server_state": mode}),
        ),
        Some(mode) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "server_state": mode}),
        ),
        None => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "reason": "the server core did not answer"}),
        ),
    }
}

fn error_response(command: &str, error: &str) -> Value {
    json!({"command": command, "error": error})
}

async fn command(s: &Shared, name: &str) -> Reply {
    let Some(primary) = primary_name(name) else {
        return json_reply(
            StatusCode::OK,
            &error_response(name, &format!("Unknown command: {name}")),
        );
    };
    let Some(link) = s.link() else {
        return json_reply(
            StatusCode::OK,
            &error_response(
                primary,
                "This ZooKeeper instance is not currently serving requests",
            ),
        );
    };
    if primary == "snapshot" {
        return snapshot(s, &link).await;
    }
    match ask(&link.core, CORE_TIMEOUT, move |mut v| run(primary, &mut v)).await {
        Some(map) => json_reply(StatusCode::OK, &Value::Object(map)),
        None => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_response(primary, "the server core did not answer"),
        ),
    }
}

/// Streams a snapshot of the tree as it is now, in ZooKeeper's snapshot
/// file format, when `admin.snapshot.enabled=true`.
async fn snapshot(s: &Shared, link: &Link) -> Reply {
    if !s.snapshot_enabled {
        return json_reply(
            StatusCode::OK,
            &error_response(
                "snapshot",
                "snapshot command is disabled (set admin.snapshot.enabled=true)",
            ),
        );
    }
    let taken = ask(&link.core, CORE_TIMEOUT, |v| {
        let zxid = v.p.last_zxid();
        (zxid, v.p.tree.freeze(), v.p.session_list())
    })
    .await;
    let Some((zxid, frozen, sessions)) = taken else {
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &error_response("snapshot", "the server core did not answer"),
        );
    };
    let bytes = match tokio::task::spawn_blocking(move || {
        let snap = recovery::snapshot_of_frozen(&frozen, sessions);
        crate::storage::format::encode_snapshot_to_vec(&snap, zxid)
    })
    .await
    {
        Ok(b) => b,
        Err(e) => {
            return json_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &error_response("snapshot", &e.to_string()),
            );
        }
    };
    tracing::info!(
        zxid = format_args!("0x{zxid:x}"),
        bytes = bytes.len(),
        "snapshot sent to an admin client"
    );
    let mut r = reply(StatusCode::OK, "application/octet-stream", bytes.clone());
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{zxid:x}")) {
        h.insert("last_zxid", v);
    }
    h.insert("snapshot_size", HeaderValue::from(bytes.len()));
    r
}

/// A `mntr` value as JSON: numbers where it is one.
fn json_value(s: &str) -> Value {
    if let Ok(n) = s.parse::<i64>() {
        Value::from(n)
    } else if let Ok(f) = s.parse::<f64>() {
        Value::from(f)
    } else {
        Value::from(s)
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The answer to admin command `primary`, with ZooKeeper's field names.
/// Runs in the core task.
pub fn run(primary: &str, v: &mut View<'_>) -> Map<String, Value> {
    let info = &v.info;
    let p = &mut *v.p;
    let mut m = match primary {
        "ruok" => Map::new(),
        "server_stats" | "stats" => {
            let mut m = obj(json!({
                "version": VERSION,
                "read_only": p.is_read_only(),
                "server_stats": {
                    "packets_sent": p.counters.packets_sent,
                    "packets_received": p.counters.packets_received,
                    "fsync_threshold_exceed_count": info.fsync_threshold_exceeded,
                    "client_response_stats": no_response_stats(),
                    "data_dir_size": info.data_dir_size,
                    "log_dir_size": info.log_dir_size,
                    "provider_null": false,
                    "server_state": info.mode,
                    "last_processed_zxid": p.last_zxid(),
                    "outstanding_requests": info.outstanding,
                    "avg_latency": info.latency_avg_ms,
                    "max_latency": info.latency_max_ms,
                    "min_latency": info.latency_min_ms,
                    "num_alive_client_connections": p.connection_count(),
                    "uptime": info.uptime_ms,
                    "auth_failed_count": 0,
                    "non_mtlsremote_conn_count": 0,
                    "non_mtlslocal_conn_count": 0,
                },
                "client_response": no_response_stats(),
                "node_count": p.tree.znode_count(),
            }));
            if primary == "stats" {
                let conns: Vec<Value> = p
                    .connections()
                    .map(|(_, addr, _, _, st)| {
                        json!({
                            "remote_socket_address": addr,
                            "interest_ops": 1,
                            "outstanding_requests": 0,
                            "packets_received": st.received,
                            "packets_sent": st.sent,
                        })
                    })
                    .collect();
                m.insert("connections".into(), Value::Array(conns));
                m.insert("secure_connections".into(), json!([]));
            }
            m
        }
        "monitor" => fourlw::mntr(p, info)
            .into_iter()
            // The 4lw has it; ZooKeeper's admin `monitor` shows it only in server_stats.
            .filter(|(k, _)| k != "fsync_threshold_exceed_count")
            .map(|(k, val)| {
                let j = if k == "version" || k == "server_state" || k == "last_zxid" {
                    Value::from(val)
                } else {
                    json_value(&val)
                };
                (k, j)
            })
            .collect(),
        "configuration" => {
            let cfg = v.cfg;
            obj(json!({
                "client_port": cfg.client_port,
                "data_dir": cfg.data_dir.join("version-2").display().to_string(),
                "data_log_dir": cfg.data_log_dir.join("version-2").display().to_string(),
                "tick_time": cfg.tick_time,
                "max_client_cnxns": cfg.max_client_cnxns,
                "min_session_timeout": cfg.min_session_timeout,
                "max_session_timeout": cfg.max_session_timeout,
                "server_id": v.server_id,
                "client_port_listen_backlog": -1,
            }))
        }
        "connections" => {
            let conns: Vec<Value> = p
                .connections()
                .map(|(_, addr, session, timeout, st)| {
                    json!({
                        "remote_socket_address": addr,
                        "interest_ops": 1,
                        "outstanding_requests": 0,
                        "packets_received": st.received,
                        "packets_sent": st.sent,
                        "session_id": session,
                        "last_operation": if st.last_op.is_empty() { "NA" } else { st.last_op },
                        "established": st.established_wall_ms,
                        "session_timeout": timeout,
                        "last_cxid": st.last_cxid,
                        "last_zxid": st.last_zxid,
                        "last_response_time": 0,
                        "last_latency": 0,
                        "min_latency": 0,
                        "avg_latency": 0,
                        "max_latency": 0,
                    })
                })
                .collect();
            obj(json!({"connections": conns, "secure_connections": []}))
        }
        "environment" => {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_else(|| "localhost".into());
            obj(json!({
                "zookeeper.version": VERSION,
                "rzk.version": env!("CARGO_PKG_VERSION"),
                "host.name": host,
                "os.name": std::env::consts::OS,
                "os.arch": std::env::consts::ARCH,
                "user.dir": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
                "process.id": std::process::id(),
            }))
        }
        "watch_summary" => obj(json!({
            "num_connections": p.watches.conns(),
            "num_paths": p.watches.paths(),
            "num_total_watches": p.watches.count(),
        })),
        "watches" | "watches_by_path" => {
            let sessions: std::collections::HashMap<u64, i64> = p
                .connections()
                .map(|(id, _, sid, _, _)| (id, sid))
                .collect();
            let sid = |c: &u64| sessions.get(c).copied().unwrap_or(0);
            if primary == "watches" {
                let by: Map<String, Value> = p
                    .watches
                    .by_conn()
                    .into_iter()
                    .map(|(c, paths)| (sid(&c).to_string(), json!(paths)))
                    .collect();
                obj(json!({ "session_id_to_watched_paths": by }))
            } else {
                let by: Map<String, Value> = p
                    .watches
                    .by_path()
                    .into_iter()
                    .map(|(path, conns)| {
                        let ids: Vec<i64> = conns.iter().map(&sid).collect();
                        (path, json!(ids))
                    })
                    .collect();
                obj(json!({ "path_to_session_ids": by }))
            }
        }
        "dump" => {
            let expiry: Map<String, Value> = p
                .sessions
                .buckets()
                .iter()
                .map(|(at, ids)| (at.to_string(), json!(ids)))
                .collect();
            let eph: Map<String, Value> = p
                .tree
                .all_ephemerals()
                .map(|(sid, paths)| (sid.to_string(), json!(paths)))
                .collect();
            obj(json!({
                "expiry_time_to_session_ids": expiry,
                "session_id_to_ephemeral_paths": eph,
            }))
        }
        "dirs" => obj(json!({
            "datadir_size": info.data_dir_size,
            "logdir_size": info.log_dir_size,
        })),
        "is_read_only" => obj(json!({"read_only": p.is_read_only()})),
        // A standalone server has no leader; ZooKeeper says exactly this.
        "leader" if info.mode == "standalone" => obj(json!({"error": "server is not initialized"})),
        // In an ensemble the quorum code names the leader in mntr's extra keys.
        "leader" => {
            let extra = |k: &str| {
                info.extra_mntr
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            let is_leader = info.mode == "leader";
            let leader_id = extra("leader_id")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(if is_leader { v.server_id as i64 } else { -1 });
            obj(json!({
                "is_leader": is_leader,
                "leader_id": leader_id,
                "leader_ip": extra("leader_ip").unwrap_or_default(),
            }))
        }
        "voting_view" => {
            let view: Map<String, Value> = if info.mode == "standalone" {
                Map::new()
            } else {
                v.cfg
                    .servers
                    .iter()
                    .map(|s| {
                        let role = match s.role {
                            crate::config::Role::Participant => "participant",
                            crate::config::Role::Observer => "observer",
                        };
                        (
                            s.id.to_string(),
                            Value::from(format!(
                                "{}:{}:{}:{role}",
                                s.host, s.quorum_port, s.election_port
                            )),
                        )
                    })
                    .collect()
            };
            obj(json!({ "current_config": view }))
        }
        "zabstate" => obj(json!({"voting": false, "zabstate": ""})),
        "stat_reset" => {
            let _ = fourlw::answer(p, "srst", &Whitelist::All, info);
            v.stats.reset();
            Map::new()
        }
        "connection_stat_reset" => {
            p.reset_connection_stats();
            Map::new()
        }
        other => obj(error_response(other, &format!("Unknown command: {other}"))),
    };
    m.insert("command".into(), Value::from(primary));
    m.entry("error").or_insert(Value::Null);
    m
}

fn no_response_stats() -> Value {
    json!({"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_zookeeper_primary_names() {
        for (alias, primary) in [
            ("srvr", "server_stats"),
            ("stat", "stats"),
            ("mntr", "monitor"),
            ("conf", "configuration"),
            ("config", "configuration"),
            ("cons", "connections"),
            ("envi", "environment"),
            ("wchs", "watch_summary"),
            ("isro", "is_read_only"),
            ("ruok", "ruok"),
            ("dirs", "dirs"),
            ("voting_view", "voting_view"),
            ("leader", "leader"),
            ("snapshot", "snapshot"),
        ] {
            assert_eq!(primary_name(alias), Some(primary), "{alias}");
        }
        assert_eq!(primary_name("nosuch"), None);
        assert_eq!(primary_name(""), None);
    }

    #[test]
    fn mntr_values_become_json_numbers() {
        assert_eq!(json_value("42"), json!(42));
        assert_eq!(json_value("0.5"), json!(0.5));
        assert_eq!(json_value("standalone"), json!("standalone"));
    }

    #[test]
    fn only_serving_states_are_ready() {
        assert!(is_serving("standalone"));
        assert!(is_serving("follower"));
        assert!(!is_serving("looking"));
        assert!(!is_serving(""));
    }
}
