//! Real Prometheus (Debian's `prometheus` package) scrapes three rzk servers
//! on loopback; the test reads the series back through Prometheus' HTTP API.
//!
//! The three servers form one ensemble (`server.1..3` lines, myid files):
//! every server's znode_count rises by all writes, write-latency histograms
//! work in PromQL, exactly one reports leader, and the leader's
//! synced_followers is 2.

mod observe_support;
use observe_support::*;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(targets: &[String]) -> Prometheus {
        assert!(
            std::path::Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: apt-get install prometheus"
        );
        let dir = tempfile::tempdir().unwrap();
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: rzk\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            _dir: dir,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(&p.addr).is_ok()
                && http_get(&p.addr, "/-/ready").status == 200
            {
                return p;
            }
            assert!(Instant::now() < deadline, "Prometheus did not get ready");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An instant query: instance -> (labels, value) for each series.
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let q: String = promql
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let r = http_get(&self.addr, &format!("/api/v1/query?query={q}"));
        assert_eq!(r.status, 200, "{promql}: {}", r.text());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect();
                let val = s["value"][1].as_str().unwrap().parse().unwrap_or(f64::NAN);
                (labels, val)
            })
            .collect()
    }

    /// instance -> value.
    fn by_instance(&self, promql: &str) -> BTreeMap<String, f64> {
        self.query(promql)
            .into_iter()
            .map(|(l, v)| (l.get("instance").cloned().unwrap_or_default(), v))
            .collect()
    }

    /// Polls until `ok` holds for the query's result (scrapes are every 1 s).
    fn wait_for(
        &self,
        promql: &str,
        what: &str,
        ok: impl Fn(&BTreeMap<String, f64>) -> bool,
    ) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.by_instance(promql);
            if ok(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{what}: `{promql}` gave {r:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Three servers configured as one ensemble on loopback.
fn ensemble() -> Vec<Server> {
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (c, q, e))| format!("server.{}=127.0.0.1:{q}:{e};127.0.0.1:{c}\n", i + 1))
        .collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, (c, _, _))| {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={c}\n\
                 clientPortAddress=127.0.0.1\nmetricsProvider.httpHost=127.0.0.1\n\
                 metricsProvider.httpPort=0\nadmin.enableServer=false\n{servers}",
                data.display()
            );
            let mut s = Server::launch(dir, &cfg, false, true, false);
            s.client = format!("127.0.0.1:{c}");
            s
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_server() {
    let servers = ensemble();
    let targets: Vec<String> = servers.iter().map(|s| s.metrics.clone().unwrap()).collect();
    let prom = Prometheus::start(&targets);

    // Every server is scraped and up.
    let up = prom.wait_for("up{job=\"rzk\"}", "all targets up", |r| {
        r.len() == 3 && r.values().all(|v| *v == 1.0)
    });
    for t in &targets {
        assert!(up.contains_key(t), "{t} not scraped: {up:?}");
    }
    let before = prom.wait_for("znode_count", "znode_count for every server", |r| {
        r.len() == 3
    });
    for (instance, v) in &before {
        assert!(*v >= 4.0, "{instance}: implausible znode_count {v}");
    }
    for (name, min) in [
        ("uptime", 1.0),
        ("open_file_descriptor_count", 1.0),
        ("process_resident_memory_bytes", 1e6),
        ("quorum_size", 1.0),
    ] {
        let r = prom.by_instance(name);
        assert_eq!(r.len(), 3, "{name}: {r:?}");
        assert!(r.values().all(|v| *v >= min), "{name}: {r:?}");
    }

    // Writes to each server (different amounts) show up as rising znode_count.
    let mut writes = BTreeMap::new();
    for (i, s) in servers.iter().enumerate() {
        let c = connect(&s.client).await;
        let n = 3 * (i + 1);
        for k in 0..n {
            c.create(&format!("/p{i}-{k}"), b"v", &persistent())
                .await
                .unwrap();
        }
        writes.insert(s.metrics.clone().unwrap(), n as f64);
    }
    // One ensemble: every write is seen by all three servers.
    let total: f64 = writes.values().sum();
    prom.wait_for("znode_count", "znode_count rose on every server", |r| {
        r.len() == 3 && r.iter().all(|(inst, v)| *v == before[inst] + total)
    });
    // Latency histograms are usable from PromQL.
    let p99 = prom.wait_for(
        "histogram_quantile(0.99, sum by (le, instance) (rate(updatelatency_bucket[1m])))",
        "write latency p99 for every server",
        |r| r.len() == 3 && r.values().all(|v| v.is_finite() && *v > 0.0),
    );
    assert!(p99.values().all(|v| *v <= 10_000.0), "{p99:?}");
    let leaders = prom.wait_for(
        "rzk_server_state{state=\"leader\"}",
        "exactly one leader",
        |r| r.len() == 1,
    );
    let leader = leaders.keys().next().unwrap().clone();
    prom.wait_for("synced_followers", "the leader's synced_followers", |r| {
        r.get(&leader) == Some(&2.0)
    });
    let q = prom.by_instance("quorum_size");
    assert!(q.values().all(|v| *v == 3.0), "{q:?}");
}
