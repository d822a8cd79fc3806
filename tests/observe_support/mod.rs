//! Shared by the `observe_*` tests: start `rzk server` on loopback with
//! every port 0 and JSON logs (the bound addresses come from the log), a
//! minimal HTTP client, and Prometheus text parsing.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

/// A port that was free a moment ago (for configs that must name one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

pub struct Server {
    pub child: Child,
    _dir: tempfile::TempDir,
    pub log: PathBuf,
    pub client: String,
    pub metrics: Option<String>,
    pub admin: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `addr` field of the first JSON log line whose message starts with `msg`.
pub fn logged_addr(log: &str, msg: &str) -> Option<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(msg))
        })
        .and_then(|v| v["fields"]["addr"].as_str().map(String::from))
}

impl Server {
    /// Starts `rzk server` with `extra` zoo.cfg lines. `json_by_env` asks for
    /// JSON logs through RZK_LOG_FORMAT instead of --log-json.
    pub fn start(extra: &str, json_by_env: bool) -> Server {
        let expect_admin = !extra.contains("admin.enableServer=false");
        Server::start_with(extra, json_by_env, expect_admin)
    }

    /// As `start`; `expect_admin` says whether to wait for the admin server.
    pub fn start_with(extra: &str, json_by_env: bool, expect_admin: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=0\n\
             admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n{extra}",
            dir.path().join("data").display()
        );
        Server::launch(dir, &cfg, json_by_env, true, expect_admin)
    }

    /// Runs `rzk server` on `cfg` (written to `dir`/zoo.cfg) and waits for
    /// the metrics server, and the client port and admin server if asked.
    pub fn launch(
        dir: tempfile::TempDir,
        cfg: &str,
        json_by_env: bool,
        wait_client: bool,
        wait_admin: bool,
    ) -> Server {
        let cfg_path = dir.path().join("zoo.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.path().join("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rzk"));
        cmd.arg("server").arg(&cfg_path);
        if json_by_env {
            cmd.env("RZK_LOG_FORMAT", "json");
        } else {
            cmd.arg("--log-json");
        }
        let child = cmd
            .env_remove("RZK_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            _dir: dir,
            log,
            client: String::new(),
            metrics: None,
            admin: None,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = s.log_text();
            s.client = logged_addr(&text, "serving clients").unwrap_or_default();
            s.metrics = logged_addr(&text, "serving Prometheus metrics");
            s.admin = logged_addr(&text, "serving the admin API");
            if s.metrics.is_some()
                && (!s.client.is_empty() || !wait_client)
                && (s.admin.is_some() || !wait_admin)
            {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("rzk server exited with {status}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "rzk server did not come up:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn admin(&self) -> &str {
        self.admin.as_deref().expect("admin server is up")
    }

    pub fn scrape(&self) -> String {
        let r = http_get(self.metrics.as_deref().unwrap(), "/metrics");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/openmetrics-text")),
            "{:?}",
            r.headers
        );
        r.text()
    }

    pub fn command(&self, name: &str) -> Value {
        let r = http_get(self.admin(), &format!("/commands/{name}"));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{name}: {e}: {}", r.text()))
    }
}

pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 GET (the servers answer with Content-Length).
pub fn http_get(addr: &str, path: &str) -> HttpReply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Series name (with labels, as printed) -> value.
pub fn series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

pub fn value(text: &str, name: &str) -> f64 {
    *series(text)
        .get(name)
        .unwrap_or_else(|| panic!("no series {name} in:\n{text}"))
}

/// Metric family names from `# TYPE` lines, with the sample suffixes each
/// type adds (what a PromQL expression can name).
pub fn exported_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(name), Some(kind)) = (it.next(), it.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        for s in suffixes {
            out.insert(format!("{name}{s}"));
        }
    }
    out
}

pub async fn connect(addr: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

pub fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}
