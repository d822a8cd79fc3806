//! `rzk server` against the `zookeeper-client` crate, a real Rust client
//! that speaks the whole 3.9 protocol (persistent watches, TTL, containers,
//! multi, multiRead, getEphemerals, whoAmI).

mod common;
use common::RzkServer;
use std::time::Duration;
use zookeeper_client as zk;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn all() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

#[test]
fn crud_sequential_ephemeral_and_errors() {
    let server = RzkServer::start("");
    runtime().block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        let (stat, _) = c.create("/app", b"v1", &all()).await.unwrap();
        assert_eq!(stat.version, 0);
        assert_eq!(
            c.create("/app", b"", &all()).await.unwrap_err(),
            zk::Error::NodeExists
        );
        assert_eq!(
            c.create("/none/x", b"", &all()).await.unwrap_err(),
            zk::Error::NoNode
        );
        let (data, stat) = c.get_data("/app").await.unwrap();
        assert_eq!((data.as_slice(), stat.data_length), (&b"v1"[..], 2));
        let stat = c.set_data("/app", b"v2", Some(0)).await.unwrap();
        assert_eq!(stat.version, 1);
        assert_eq!(
            c.set_data("/app", b"v3", Some(0)).await.unwrap_err(),
            zk::Error::BadVersion
        );
        let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        let (_, s1) = c.create("/app/job-", b"", &seq).await.unwrap();
        let (_, s2) = c.create("/app/job-", b"", &seq).await.unwrap();
        assert_eq!((s1.into_i64(), s2.into_i64()), (0, 1));
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        c.create("/app/lease", b"", &eph).await.unwrap();
        assert_eq!(
            c.list_ephemerals("/").await.unwrap(),
            vec!["/app/lease".to_string()]
        );
        assert_eq!(c.count_descendants_number("/app").await.unwrap(), 3);
        assert_eq!(
            c.delete("/app", None).await.unwrap_err(),
            zk::Error::NotEmpty
        );
        let mut children = c.list_children("/app").await.unwrap();
        children.sort();
        assert_eq!(children, vec!["job-0000000000", "job-0000000001", "lease"]);
        drop(c);
        // A second session sees the ephemeral gone once the first closed.
        let c2 = zk::Client::connect(&server.addr()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while c2.check_stat("/app/lease").await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ephemeral outlived its session"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn watches_oneshot_persistent_and_recursive() {
    let server = RzkServer::start("");
    runtime().block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        let w = zk::Client::connect(&server.addr()).await.unwrap();
        c.create("/w", b"", &all()).await.unwrap();
        let (_, _, once) = w.get_and_watch_data("/w").await.unwrap();
        let mut recursive = w
            .watch("/w", zk::AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        c.set_data("/w", b"x", None).await.unwrap();
        let ev = once.changed().await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeDataChanged, "/w")
        );
        let ev = recursive.changed().await;
        assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
        c.create("/w/a", b"", &all()).await.unwrap();
        c.create("/w/a/b", b"", &all()).await.unwrap();
        let ev = recursive.changed().await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeCreated, "/w/a")
        );
        let ev = recursive.changed().await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeCreated, "/w/a/b")
        );
        c.delete("/w/a/b", None).await.unwrap();
        let ev = recursive.changed().await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeDeleted, "/w/a/b")
        );
    });
}

#[test]
fn multi_containers_ttl_and_whoami() {
    let server = RzkServer::start("extendedTypesEnabled=true\nznode.container.checkIntervalMs=100");
    runtime().block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        let mut m = c.new_multi_writer();
        m.add_create("/m", b"", &all()).unwrap();
        m.add_create("/m/1", b"one", &all()).unwrap();
        m.add_set_data("/m", b"top", None).unwrap();
        let results = m.commit().await.unwrap();
        assert_eq!(results.len(), 3);
        let mut m = c.new_multi_writer();
        m.add_create("/m/2", b"", &all()).unwrap();
        m.add_delete("/nope", None).unwrap();
        let err = m.commit().await.unwrap_err();
        assert!(
            matches!(
                err,
                zk::MultiWriteError::OperationFailed {
                    index: 1,
                    source: zk::Error::NoNode
                }
            ),
            "{err:?}"
        );
        assert!(
            c.check_stat("/m/2").await.unwrap().is_none(),
            "failed multi left a trace"
        );
        let mut r = c.new_multi_reader();
        r.add_get_data("/m/1").unwrap();
        r.add_get_data("/missing").unwrap();
        let res = r.commit().await.unwrap();
        assert_eq!(res.len(), 2);

        let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
        c.create("/box", b"", &container).await.unwrap();
        c.create("/box/item", b"", &all()).await.unwrap();
        c.delete("/box/item", None).await.unwrap();
        let ttl = zk::CreateMode::Persistent
            .with_acls(zk::Acls::anyone_all())
            .with_ttl(Duration::from_millis(200));
        c.create("/ttl", b"", &ttl).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let gone = c.check_stat("/box").await.unwrap().is_none()
                && c.check_stat("/ttl").await.unwrap().is_none();
            if gone {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "container or TTL node not reaped"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let users = c.list_auth_users().await.unwrap();
        assert!(
            users
                .iter()
                .any(|u| u.scheme() == "ip" && u.user() == "127.0.0.1"),
            "{users:?}"
        );
    });
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut server = RzkServer::start("snapCount=50");
    let rt = runtime();
    let acked = rt.block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        let mut acked = Vec::new();
        for i in 0..200 {
            let path = format!("/k{i}");
            c.create(&path, path.as_bytes(), &all()).await.unwrap();
            acked.push(path);
        }
        acked
    });
    server.kill9();
    server.restart();
    rt.block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        for p in &acked {
            let (data, _) = c
                .get_data(p)
                .await
                .unwrap_or_else(|e| panic!("{p} lost: {e}"));
            assert_eq!(data, p.as_bytes());
        }
    });
    let snaps = std::fs::read_dir(server.dir.join("data/version-2"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snapshot.")
        })
        .count();
    assert!(snaps >= 2, "snapshots every ~snapCount txns");
}

#[test]
fn session_resumes_on_a_new_connection_with_its_ephemerals() {
    let server = RzkServer::start("minSessionTimeout=400\nmaxSessionTimeout=2000");
    runtime().block_on(async {
        // A detached client leaves its session open when it goes away, as a
        // client whose connection broke would.
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(2000))
            .with_detached()
            .connect(&server.addr())
            .await
            .unwrap();
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        c.create("/mine", b"", &eph).await.unwrap();
        let session = c.session().clone();
        let id = c.session_id();
        drop(c);
        // Resume the same session on a new connection: its ephemeral is still there.
        let resumed = zk::Client::connector()
            .with_session(session)
            .connect(&server.addr())
            .await
            .unwrap();
        assert_eq!(resumed.session_id(), id);
        assert!(resumed.check_stat("/mine").await.unwrap().is_some());
        drop(resumed);
        // Closed now: the ephemeral goes with it.
        let other = zk::Client::connect(&server.addr()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while other.check_stat("/mine").await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ephemeral outlived its session"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// A client that pipelines thousands of requests gets every reply, in
/// order, even though the server stops reading it while 1000 are unanswered.
#[test]
fn pipelined_requests_are_all_answered_in_order() {
    use rzk::jute::{Reader, Record};
    use rzk::proto::*;
    use std::io::{Read, Write};
    let server = RzkServer::start("");
    let mut s = common::send_connect(server.port);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let read_frame = |s: &mut std::net::TcpStream| {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).unwrap();
        buf
    };
    read_frame(&mut s);
    const N: i32 = 5000;
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut all = Vec::new();
        for xid in 1..=N {
            let mut body = RequestHeader {
                xid,
                op: OpCode::Exists as i32,
            }
            .to_bytes();
            ExistsRequest {
                path: "/zookeeper".into(),
                watch: false,
            }
            .write(&mut body);
            all.extend((body.len() as i32).to_be_bytes());
            all.extend(body);
        }
        w.write_all(&all).unwrap();
    });
    for xid in 1..=N {
        let f = read_frame(&mut s);
        let h = ReplyHeader::read(&mut Reader::new(&f)).unwrap();
        assert_eq!((h.xid, h.err), (xid, 0));
    }
    writer.join().unwrap();
}
