//! The admin API's JSON against Apache ZooKeeper 3.8's own AdminServer, as
//! the oracle: the same client actions on both servers, then every command's
//! field names (recursively) must match, so scripts written for ZooKeeper's
//! `/commands/<name>` read rzk's answers unchanged.
//!
//! Needs Debian's `zookeeper` package (ZooKeeper 3.8, Jetty) and
//! `libservlet-api-java` (Jetty's servlet API, which the AdminServer needs).

mod observe_support;
use observe_support::*;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/servlet-api.jar";

struct Apache {
    child: Child,
    _dir: tempfile::TempDir,
    client: String,
    admin: String,
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Apache {
    fn start() -> Apache {
        for jar in CLASSPATH.split(':') {
            assert!(
                std::path::Path::new(jar).exists(),
                "{jar} is missing: apt-get install zookeeper libservlet-api-java"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let (client_port, admin_port) = (free_port(), free_port());
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin_port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-cp", CLASSPATH])
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("zk.log")).unwrap())
            .spawn()
            .expect("java (apt-get install zookeeper)");
        let a = Apache {
            child,
            _dir: dir,
            client: format!("127.0.0.1:{client_port}"),
            admin: format!("127.0.0.1:{admin_port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while std::net::TcpStream::connect(&a.admin).is_err()
            || std::net::TcpStream::connect(&a.client).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "Apache ZooKeeper did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The AdminServer answers before the server behind it runs.
        while !a.command("monitor")["error"].is_null() {
            assert!(
                Instant::now() < deadline,
                "Apache ZooKeeper did not start serving"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        a
    }

    fn command(&self, name: &str) -> Value {
        let r = http_get(&self.admin, &format!("/commands/{name}"));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }
}

/// Every field path in a JSON value: `a.b`, arrays as `a[]`. Keys that are
/// data (session ids, paths, times) are replaced by `*`.
fn shape(v: &Value, prefix: &str, data_keys: bool, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if data_keys { "*" } else { k.as_str() };
                let p = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(p.clone());
                // Maps keyed by session id or path hold data, not fields.
                let nested_data = matches!(
                    k.as_str(),
                    "session_id_to_watched_paths"
                        | "path_to_session_ids"
                        | "expiry_time_to_session_ids"
                        | "session_id_to_ephemeral_paths"
                        | "current_config"
                );
                shape(x, &p, nested_data, out);
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                shape(first, &format!("{prefix}[]"), false, out);
            }
        }
        _ => {}
    }
}

fn shape_of(v: &Value) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    shape(v, "", false, &mut s);
    s
}

/// The same traffic on either server: a session with a persistent node, an
/// ephemeral node and a data watch, kept open while the commands run.
async fn traffic(addr: &str) -> (zk::Client, zk::OneshotWatcher) {
    let c = connect(addr).await;
    c.create("/shape", b"data", &persistent()).await.unwrap();
    c.create(
        "/shape-eph",
        b"",
        &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let (_, _, w) = c.get_and_watch_data("/shape").await.unwrap();
    (c, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_have_apache_zookeepers_fields() {
    let apache = Apache::start();
    let rzk = Server::start("", false);
    let (a0, r0) = (apache.command("monitor"), rzk.command("monitor"));
    let _a = traffic(&apache.client).await;
    let _r = traffic(&rzk.client).await;

    // Same field names, both ways.
    for cmd in [
        "ruok",
        "server_stats",
        "stats",
        "configuration",
        "connections",
        "watch_summary",
        "watches",
        "watches_by_path",
        "dump",
        "dirs",
        "is_read_only",
        "leader",
        "voting_view",
        "zabstate",
        "nosuch",
    ] {
        let (a, r) = (apache.command(cmd), rzk.command(cmd));
        assert_eq!(
            shape_of(&r),
            shape_of(&a),
            "{cmd}: fields differ\nApache: {a:#}\nrzk: {r:#}"
        );
        assert_eq!(r["command"], a["command"], "{cmd}");
        assert_eq!(r["error"], a["error"], "{cmd}");
    }

    // monitor and environment: every rzk field is one Apache has (Apache has
    // many more: JVM and processor-pipeline internals), and the ones
    // monitoring tools read are there.
    for cmd in ["monitor", "environment"] {
        let (a, r) = (shape_of(&apache.command(cmd)), shape_of(&rzk.command(cmd)));
        let own: BTreeSet<&str> = ["rzk.version", "process.id", "last_zxid"].into();
        let extra: Vec<&String> = r
            .iter()
            .filter(|k| !a.contains(*k) && !own.contains(k.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{cmd}: rzk fields Apache lacks: {extra:?}"
        );
    }
    let m = rzk.command("monitor");
    let am = apache.command("monitor");
    for key in [
        "znode_count",
        "watch_count",
        "ephemerals_count",
        "approximate_data_size",
        "num_alive_connections",
        "outstanding_requests",
        "packets_received",
        "packets_sent",
        "server_state",
        "avg_latency",
        "max_latency",
        "min_latency",
        "open_file_descriptor_count",
        "max_file_descriptor_count",
        "uptime",
        "global_sessions",
    ] {
        assert!(m.get(key).is_some(), "monitor lacks {key}: {m:#}");
        // Same JSON types (numbers stay numbers, strings strings).
        assert_eq!(
            std::mem::discriminant(&m[key]),
            std::mem::discriminant(&am[key]),
            "{key}: rzk {} vs Apache {}",
            m[key],
            am[key]
        );
    }
    // The same traffic changes the gauges alike, and the absolute znode
    // count agrees too (rzk reports the root twice, as Apache's table holds it).
    assert_eq!(m["znode_count"], am["znode_count"]);
    let delta = |after: &Value, before: &Value, k: &str| {
        after[k].as_i64().unwrap() - before[k].as_i64().unwrap()
    };
    assert_eq!(
        delta(&m, &r0, "znode_count"),
        delta(&am, &a0, "znode_count")
    );
    assert_eq!(m["ephemerals_count"], am["ephemerals_count"]);
    assert_eq!(m["watch_count"], am["watch_count"]);
}
