//! rzk's storage against Apache ZooKeeper 3.8 (Debian's `zookeeper`
//! package) as an oracle, both ways:
//! (a) Apache writes a data dir, `DataDir::recover` reads it;
//! (b) rzk writes a data dir, Apache serves it to `zkCli.sh`.
//!
//! Skips (with a message) only when /usr/share/zookeeper is absent.

mod common;

use bytes::Bytes;
use common::free_port;
use rzk::proto::OpCode;
use rzk::proto::records::{Acl, Id, StatPersisted};
use rzk::proto::txn::{CreateTxn, SetDataTxn, Txn, TxnHeader};
use rzk::storage::format::{self, tree_digest};
use rzk::storage::{DataDir, LogEntry, SnapNode, Snapshot, TxnLog};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ZK_SHARE: &str = "/usr/share/zookeeper";
const ZK_CLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// user `u`, password `p`: base64(sha1("u:p")).
const DIGEST_ID: &str = "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=";

fn zookeeper_missing() -> bool {
    if Path::new(ZK_SHARE).exists() {
        return false;
    }
    eprintln!(
        "SKIPPED: {ZK_SHARE} is absent; install Debian's `zookeeper` package to run the Apache ZooKeeper compatibility tests"
    );
    true
}

/// A running Apache ZooKeeper; killed (and reaped) when dropped, whatever
/// happens in the test.
struct ApacheZk {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ApacheZk {
    /// Starts ZooKeeper standalone from Debian's jars with a zoo.cfg in `work`.
    fn start(work: &Path, data_dir: &Path, data_log_dir: &Path) -> ApacheZk {
        let port = free_port();
        let cfg = work.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\ndataLogDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 snapCount=10\nadmin.enableServer=false\n",
                data_dir.display(),
                data_log_dir.display()
            ),
        )
        .unwrap();
        let mut classpath = "/usr/share/java/zookeeper.jar".to_string();
        // A logging binding, so the server's log can be checked.
        if Path::new("/usr/share/java/slf4j-simple.jar").exists() {
            classpath.push_str(":/usr/share/java/slf4j-simple.jar");
        }
        let log = work.join("zookeeper.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("java")
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start java");
        let mut zk = ApacheZk { child, port, log };
        zk.wait_ready();
        zk
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ZooKeeper exited ({status}):\n{}", self.log_text());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reply = String::new();
                if s.write_all(b"srvr").is_ok()
                    && s.read_to_string(&mut reply).is_ok()
                    && reply.contains("Mode: standalone")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs zkCli.sh commands read from stdin; returns stdout and stderr.
    fn cli(&self, commands: &str) -> String {
        let mut child = Command::new("timeout")
            .args([
                "120",
                ZK_CLI,
                "-server",
                &format!("127.0.0.1:{}", self.port),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run zkCli.sh");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{commands}\nquit\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Kills the server the hard way, as a crash would.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }
}

/// A data tree rebuilt the simple way: path -> (data, ACL, ephemeral owner).
#[derive(Default, Debug)]
struct Model {
    nodes: BTreeMap<String, (Bytes, Vec<Acl>, i64)>,
    ephemeral_creates: Vec<String>,
    closed_session_deletes: Vec<String>,
}

impl Model {
    fn from_snapshot(s: &Snapshot) -> Model {
        let mut m = Model::default();
        for n in &s.nodes {
            let acl = s
                .acls
                .iter()
                .find(|(id, _)| *id == n.acl)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
            if n.stat.ephemeral_owner != 0 {
                m.ephemeral_creates.push(n.path.clone());
            }
            m.nodes.insert(
                n.path.clone(),
                (n.data.clone(), acl, n.stat.ephemeral_owner),
            );
        }
        m
    }

    fn apply(&mut self, session: i64, txn: &Txn) {
        match txn {
            Txn::Create(_, c) => {
                let owner = if c.ephemeral {
                    self.ephemeral_creates.push(c.path.clone());
                    session
                } else {
                    0
                };
                self.nodes
                    .insert(c.path.clone(), (c.data.clone(), c.acl.clone(), owner));
            }
            Txn::CreateContainer(c) => {
                self.nodes
                    .insert(c.path.clone(), (c.data.clone(), c.acl.clone(), 0));
            }
            Txn::CreateTtl(c) => {
                self.nodes
                    .insert(c.path.clone(), (c.data.clone(), c.acl.clone(), 0));
            }
            Txn::Delete(_, d) => {
                self.nodes.remove(&d.path);
            }
            Txn::SetData(s) => {
                if let Some(n) = self.nodes.get_mut(&s.path) {
                    n.0 = s.data.clone();
                }
            }
            Txn::SetAcl(s) => {
                if let Some(n) = self.nodes.get_mut(&s.path) {
                    n.1 = s.acl.clone();
                }
            }
            Txn::CloseSession(c) => {
                for p in &c.paths_to_delete {
                    self.closed_session_deletes.push(p.clone());
                    self.nodes.remove(p);
                }
            }
            Txn::Multi(ts) => ts.iter().for_each(|t| self.apply(session, t)),
            _ => {}
        }
    }

    fn data(&self, path: &str) -> Option<&[u8]> {
        self.nodes.get(path).map(|n| &n.0[..])
    }
}

/// Every txn in every log file under `log_dir/version-2`, by zxid. Apache
/// never purges by default, so this is the whole history since start-up.
fn full_log_history(log_dir: &Path) -> Vec<LogEntry> {
    let mut all = Vec::new();
    for ent in std::fs::read_dir(log_dir.join("version-2")).unwrap() {
        let ent = ent.unwrap();
        let name = ent.file_name().into_string().unwrap();
        if format::parse_file_name(&name, format::LOG_PREFIX).is_none() {
            continue;
        }
        let scan = format::scan_log(&std::fs::read(ent.path()).unwrap()).unwrap();
        all.extend(scan.entries);
    }
    all.sort_by_key(|e| e.header.zxid);
    all
}

fn digest_acl() -> Vec<Acl> {
    vec![Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: DIGEST_ID.into(),
        },
    }]
}

fn world_acl() -> Vec<Acl> {
    vec![Acl {
        perms: 31,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

#[test]
fn apache_zookeeper_data_dir_is_recovered_by_rzk() {
    if zookeeper_missing() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (data, logs) = (tmp.path().join("data"), tmp.path().join("logs"));
    let zk = ApacheZk::start(tmp.path(), &data, &logs);
    let mut commands = vec![
        "create /a hello".to_string(),
        "create /a/b world".into(),
        "set /a hello2".into(),
        "create -e /eph ephemeral-data".into(),
        "create -s /seq- s".into(),
        format!("create /acl secret digest:{DIGEST_ID}:cdrwa"),
    ];
    for i in 1..=12 {
        commands.push(format!("create /c{i} x{i}"));
    }
    commands.push("set /c12 last".into());
    commands.push("delete /c11".into());
    let out = zk.cli(&commands.join("\n"));
    for p in ["/a", "/a/b", "/eph", "/acl", "/c12"] {
        assert!(
            out.contains(&format!("Created {p}")),
            "zkCli output:\n{out}"
        );
    }
    let server_log = zk.kill();

    let mut dir = DataDir::open(&data, &logs).unwrap();
    let rec = dir.recover().unwrap();
    let (snap_zxid, snap) = rec.snapshot.clone().expect("a snapshot");
    assert!(
        snap_zxid > 0,
        "snapCount=10 should have made a snapshot after zxid 0"
    );
    assert!(rec.entries.iter().all(|e| e.header.zxid > snap_zxid));
    // Every txn Apache logged after the snapshot is recovered, in order.
    let history = full_log_history(&logs);
    let logged_after: Vec<i64> = history
        .iter()
        .map(|e| e.header.zxid)
        .filter(|&z| z > snap_zxid)
        .collect();
    let recovered: Vec<i64> = rec.entries.iter().map(|e| e.header.zxid).collect();
    assert_eq!(recovered, logged_after);
    assert_eq!(
        rec.last_zxid,
        history
            .last()
            .map_or(snap_zxid, |e| e.header.zxid.max(snap_zxid))
    );

    let mut model = Model::from_snapshot(&snap);
    for e in &rec.entries {
        model.apply(e.header.client_id, &e.txn);
    }
    assert_eq!(model.data("/a"), Some(&b"hello2"[..]));
    assert_eq!(model.data("/a/b"), Some(&b"world"[..]));
    assert_eq!(model.data("/c12"), Some(&b"last"[..]));
    assert_eq!(model.data("/c11"), None);
    assert_eq!(model.data("/c1"), Some(&b"x1"[..]));
    let seq: Vec<_> = model
        .nodes
        .keys()
        .filter(|p| p.starts_with("/seq-"))
        .collect();
    assert_eq!(seq.len(), 1, "{seq:?}");
    assert_eq!(seq[0].len(), "/seq-".len() + 10);
    let (acl_data, acl, _) = &model.nodes["/acl"];
    assert_eq!(&acl_data[..], b"secret");
    assert_eq!(acl, &digest_acl());
    assert_eq!(model.nodes["/a"].1, world_acl());
    assert!(model.nodes.contains_key("/zookeeper"));
    assert!(model.nodes.contains_key(""));
    assert_eq!(model.data("/eph"), None);
    // The ephemeral node was created, then removed when zkCli's session
    // closed. Read off the whole log from the start: where the (fuzzy)
    // snapshot falls decides which of the two txns the recovered tail holds
    // (seen in CI: a snapshot named before the create, walked after the
    // close, so the tail held only the close).
    let mut whole = Model::default();
    for e in &history {
        whole.apply(e.header.client_id, &e.txn);
    }
    assert!(
        whole.ephemeral_creates.contains(&"/eph".to_string()),
        "{whole:?}"
    );
    assert!(
        whole.closed_session_deletes.contains(&"/eph".to_string()),
        "{whole:?}"
    );
    assert_eq!(whole.data("/eph"), None);
    assert_eq!(whole.data("/c12"), Some(&b"last"[..]));

    // Our digest calculation agrees with Apache's wherever the digest was
    // taken at the snapshot's own zxid (always true of snapshot.0).
    let mut checked = 0;
    for ent in std::fs::read_dir(data.join("version-2")).unwrap() {
        let ent = ent.unwrap();
        let name = ent.file_name().into_string().unwrap();
        let Some(zxid) = format::parse_file_name(&name, format::SNAP_PREFIX) else {
            continue;
        };
        let d = format::decode_snapshot(&std::fs::read(ent.path()).unwrap()).unwrap();
        let zd = d.digest.expect("ZooKeeper 3.8 writes a digest by default");
        // 0 means "no digest" to ZooKeeper (the one taken at startup).
        if zd.zxid == zxid && zd.digest != 0 {
            let ours = tree_digest(&d.snapshot.nodes);
            if zxid == 0 {
                // Taken at start-up, before any write: never fuzzy.
                assert_eq!(zd.digest, ours, "{name}");
            } else if zd.digest != ours {
                // Fuzzy: the digest is taken when the snapshot starts, and
                // the tree is walked while writes go on (seen on a loaded
                // machine for snapshot.5).
                eprintln!("note: {name}: digest differs (fuzzy snapshot); not compared");
                continue;
            }
            checked += 1;
        }
    }
    // Apache takes snapshots while it keeps applying (fuzzy): on a loaded
    // machine every digest may belong to a later zxid than its file. Then
    // there is nothing to compare here; the other test still checks that
    // Apache accepts the digests we write.
    if checked == 0 {
        eprintln!(
            "note: every Apache snapshot digest was taken at a later zxid than its file; digest not compared"
        );
    }
    let _ = &server_log;
}

fn stat(zxid: i64, cversion: i32) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: 1_700_000_000_000 + zxid,
        mtime: 1_700_000_000_000 + zxid,
        version: 0,
        cversion,
        aversion: 0,
        ephemeral_owner: 0,
        pzxid: zxid,
    }
}

fn node(path: &str, data: &'static [u8], acl: i64, stat: StatPersisted) -> SnapNode {
    SnapNode {
        path: path.into(),
        data: Bytes::from_static(data),
        acl,
        stat,
    }
}

fn entry(zxid: i64, txn: Txn) -> LogEntry {
    LogEntry {
        header: TxnHeader {
            client_id: 0x4242,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            txn_type: txn.op() as i32,
        },
        txn,
    }
}

#[test]
fn rzk_data_dir_is_served_by_apache_zookeeper() {
    if zookeeper_missing() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let snapshot_digest;
    {
        let dir = DataDir::open(&data, &data).unwrap();
        let snap = Snapshot {
            sessions: vec![],
            acls: vec![(1, world_acl()), (2, digest_acl())],
            nodes: vec![
                node("", b"", -1, stat(0, 3)),
                node("/zookeeper", b"", -1, stat(0, 0)),
                node("/zookeeper/quota", b"", -1, stat(0, 0)),
                node("/app", b"v1", 1, stat(1, 1)),
                node("/app/child", b"c", 1, stat(2, 0)),
                node("/locked", b"secret", 2, stat(3, 0)),
            ],
        };
        dir.write_snapshot(3, &snap).unwrap();
        snapshot_digest = tree_digest(&snap.nodes);
        let (log, mut durable) = TxnLog::start(&dir, 3, true).unwrap();
        let create = |path: &str, data: &'static [u8], acl: Vec<Acl>, pcv: i32| {
            Txn::Create(
                OpCode::Create,
                CreateTxn {
                    path: path.into(),
                    data: Bytes::from_static(data),
                    acl,
                    ephemeral: false,
                    parent_cversion: pcv,
                },
            )
        };
        log.append(entry(4, create("/app/later", b"from-log", world_acl(), 2)));
        log.append(entry(
            5,
            Txn::SetData(SetDataTxn {
                path: "/app".into(),
                data: Bytes::from_static(b"v2"),
                version: 1,
            }),
        ));
        log.roll();
        log.append(entry(6, create("/locked2", b"hidden", digest_acl(), 4)));
        log.append(entry(
            7,
            Txn::Multi(vec![
                create("/m1", b"multi", world_acl(), 5),
                Txn::SetData(SetDataTxn {
                    path: "/app/child".into(),
                    data: Bytes::from_static(b"c2"),
                    version: 1,
                }),
            ]),
        ));
        let durable_zxid =
            rzk::storage::txnlog::wait_durable(&mut durable, 7, Duration::from_secs(60));
        assert_eq!(durable_zxid, 7);
        log.close().unwrap();
    }
    assert!(data.join("version-2/log.4").exists() && data.join("version-2/log.6").exists());

    let zk = ApacheZk::start(tmp.path(), &data, &data);
    let out = zk.cli(
        "addauth digest u:p\nget /app\nget /app/later\nget /app/child\nls /app\nls /\ngetAcl /locked\ngetAcl /locked2\n\
         get /m1\nstat /app\nget /locked\ncreate /fromapache yes",
    );
    for want in [
        "v2\n",
        "from-log\n",
        "c2\n",
        "[child, later]",
        "multi\n",
        &format!("'digest,'{DIGEST_ID}"),
        "dataVersion = 1",
        "secret\n",
        "Created /fromapache",
    ] {
        assert!(
            out.contains(want),
            "missing {want:?} in zkCli output:\n{out}"
        );
    }
    let root_ls = out
        .lines()
        .find(|l| l.starts_with('[') && l.contains("zookeeper"))
        .unwrap_or_default();
    for child in ["app", "locked", "locked2", "m1", "zookeeper"] {
        assert!(root_ls.contains(child), "ls / = {root_ls:?}\n{out}");
    }
    assert_eq!(out.matches("'digest,'").count(), 2, "{out}");
    let server_log = zk.kill();
    if std::env::var_os("RZK_SHOW_ZK_LOG").is_some() {
        eprintln!("{server_log}");
    }
    assert!(
        !server_log.contains("not matching") && !server_log.contains("digest mismatch"),
        "ZooKeeper found a digest mismatch:\n{server_log}"
    );
    // With a logging binding, ZooKeeper's log shows it read our snapshot's
    // digest section and replayed our log up to its last zxid.
    if Path::new("/usr/share/java/slf4j-simple.jar").exists() {
        let want = format!(
            "The digest in the snapshot has digest version of 2, with zxid as 0x3, and digest value as {snapshot_digest}"
        );
        assert!(
            server_log.contains(&want),
            "missing {want:?}:\n{server_log}"
        );
        assert!(server_log.contains("highest zxid is 0x7"), "{server_log}");
    }

    // And back: rzk reads the directory Apache continued.
    let mut dir = DataDir::open(&data, &data).unwrap();
    let rec = dir.recover().unwrap();
    let mut model = Model::from_snapshot(&rec.snapshot.as_ref().unwrap().1);
    for e in &rec.entries {
        model.apply(e.header.client_id, &e.txn);
    }
    assert_eq!(model.data("/fromapache"), Some(&b"yes"[..]));
    assert_eq!(model.data("/app"), Some(&b"v2"[..]));
    assert_eq!(model.data("/m1"), Some(&b"multi"[..]));
}
