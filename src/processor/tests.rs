//! Drives the processor directly with protocol frames, as a client would.

use super::*;

fn settings() -> Settings {
    Settings {
        server_id: 0,
        min_session_timeout: 4000,
        max_session_timeout: 40000,
        tick_time: 2000,
        extended_types: true,
        super_digest: Some(acl::digest("super:test")),
        skip_acl: false,
        reconfig_enabled: false,
        snap_count: 100_000,
        container_check_interval_ms: 1000,
        container_max_per_minute: 10_000,
    }
}

fn clock(ms: u64) -> Clock {
    Clock {
        wall_ms: 1_700_000_000_000 + ms as i64,
        mono_ms: ms,
    }
}

struct Client {
    conn: ConnId,
    session: i64,
    xid: i32,
}

/// Frames sent to one connection: (header, body bytes).
fn frames_to(effects: &[Effect], conn: ConnId) -> Vec<(ReplyHeader, Vec<u8>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, frame, .. } if *c == conn => {
                let mut r = Reader::new(&frame[4..]);
                let h = ReplyHeader::read(&mut r).ok()?;
                Some((h, r.rest().to_vec()))
            }
            _ => None,
        })
        .collect()
}

fn connect(p: &mut Processor, conn: ConnId, now: u64) -> Client {
    let req = ConnectRequest {
        time_out: 10000,
        ..Default::default()
    };
    let eff = p.connect(conn, "127.0.0.1:5000", &req.to_bytes(), clock(now));
    let frame = eff
        .iter()
        .find_map(|e| match e {
            Effect::Send { frame, .. } => Some(frame.clone()),
            _ => None,
        })
        .unwrap();
    let resp = ConnectResponse::decode(&frame[4..]).unwrap();
    assert_eq!(resp.time_out, 10000);
    Client {
        conn,
        session: resp.session_id,
        xid: 0,
    }
}

fn call<R: Record>(
    p: &mut Processor,
    c: &mut Client,
    op: OpCode,
    body: &R,
    now: u64,
) -> (Vec<Effect>, ReplyHeader, Vec<u8>) {
    c.xid += 1;
    let mut frame = RequestHeader {
        xid: c.xid,
        op: op as i32,
    }
    .to_bytes();
    body.write(&mut frame);
    let eff = p.request(c.conn, &frame, clock(now));
    let (h, b) = frames_to(&eff, c.conn)
        .into_iter()
        .find(|(h, _)| h.xid == c.xid)
        .expect("a reply");
    (eff, h, b)
}

fn create(p: &mut Processor, c: &mut Client, path: &str, flags: i32) -> (i32, String) {
    let req = CreateRequest {
        path: path.into(),
        data: Bytes::from_static(b"v"),
        acl: acl::open_acl_unsafe(),
        flags,
    };
    let (_, h, b) = call(p, c, OpCode::Create, &req, 10);
    let name = if h.err == 0 {
        String::decode(&b).unwrap()
    } else {
        String::new()
    };
    (h.err, name)
}

fn new_processor() -> Processor {
    Processor::new(settings(), DataTree::new(), &[], clock(0))
}

#[test]
fn create_get_and_sequential_names() {
    let mut p = new_processor();
    let mut c = connect(&mut p, 1, 0);
    assert_eq!(create(&mut p, &mut c, "/a", 0), (0, "/a".into()));
    assert_eq!(
        create(&mut p, &mut c, "/a", 0).0,
        ErrorCode::NodeExists as i32
    );
    assert_eq!(
        create(&mut p, &mut c, "/a/s-", 2),
        (0, "/a/s-0000000000".into())
    );
    assert_eq!(
        create(&mut p, &mut c, "/a/s-", 2),
        (0, "/a/s-0000000001".into())
    );
    assert_eq!(
        create(&mut p, &mut c, "/b/c", 0).0,
        ErrorCode::NoNode as i32
    );
    assert_eq!(
        create(&mut p, &mut c, "/a/", 0).0,
        ErrorCode::BadArguments as i32
    );
    let (_, h, b) = call(
        &mut p,
        &mut c,
        OpCode::GetData,
        &GetDataRequest {
            path: "/a".into(),
            watch: false,
        },
        10,
    );
    assert_eq!(h.err, 0);
    let d = GetDataResponse::decode(&b).unwrap();
    assert_eq!(&d.data[..], b"v");
    assert_eq!(d.stat.num_children, 2);
    assert_eq!(d.stat.cversion, 2);
}

#[test]
fn notification_comes_before_the_reply_that_shows_the_change() {
    let mut p = new_processor();
    let mut a = connect(&mut p, 1, 0);
    let mut b = connect(&mut p, 2, 0);
    create(&mut p, &mut a, "/w", 0);
    call(
        &mut p,
        &mut a,
        OpCode::GetData,
        &GetDataRequest {
            path: "/w".into(),
            watch: true,
        },
        10,
    );
    let (eff, h, _) = call(
        &mut p,
        &mut b,
        OpCode::SetData,
        &SetDataRequest {
            path: "/w".into(),
            data: Bytes::new(),
            version: -1,
        },
        10,
    );
    assert_eq!(h.err, 0);
    let to_a = frames_to(&eff, 1);
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_a[0].0.xid, xid::NOTIFICATION);
    let ev = WatcherEvent::decode(&to_a[0].1).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (event_type::NODE_DATA_CHANGED, "/w")
    );
    // The notification's tag is the write's zxid: it can't overtake it.
    let tags: Vec<i64> = eff
        .iter()
        .filter_map(|e| match e {
            Effect::Send { tag, .. } => Some(*tag),
            _ => None,
        })
        .collect();
    assert!(tags.iter().all(|t| *t == h.zxid));
    // Fired once.
    let (eff, _, _) = call(
        &mut p,
        &mut b,
        OpCode::SetData,
        &SetDataRequest {
            path: "/w".into(),
            data: Bytes::new(),
            version: -1,
        },
        10,
    );
    assert!(frames_to(&eff, 1).is_empty());
}

#[test]
fn ephemerals_go_with_their_session_on_close_and_expiry() {
    let mut p = new_processor();
    let mut a = connect(&mut p, 1, 0);
    let mut b = connect(&mut p, 2, 0);
    assert_eq!(create(&mut p, &mut a, "/ea", 1).0, 0);
    assert_eq!(create(&mut p, &mut b, "/eb", 1).0, 0);
    assert_eq!(
        create(&mut p, &mut a, "/ea/x", 0).0,
        ErrorCode::NoChildrenForEphemerals as i32
    );
    call(&mut p, &mut a, OpCode::CloseSession, &0i32, 20);
    assert!(p.tree.get("/ea").is_none());
    assert!(p.tree.get("/eb").is_some());
    // b stops talking; its 10 s session ends at the next tick boundary after.
    let eff = p.tick(clock(11_000));
    assert!(eff.is_empty());
    let eff = p.tick(clock(14_000));
    assert!(
        eff.iter()
            .any(|e| matches!(e, Effect::Close { conn: 2, .. }))
    );
    assert!(p.tree.get("/eb").is_none());
    assert_eq!(p.sessions.len(), 0);
    let _ = b.session;
}

#[test]
fn failed_multi_is_all_or_nothing_with_per_op_results() {
    let mut p = new_processor();
    let mut c = connect(&mut p, 1, 0);
    create(&mut p, &mut c, "/m", 0);
    let mut body = Vec::new();
    for (op, rec) in [
        (
            OpCode::Create,
            CreateRequest {
                path: "/m/1".into(),
                acl: acl::open_acl_unsafe(),
                ..Default::default()
            }
            .to_bytes(),
        ),
        (
            OpCode::Create,
            CreateRequest {
                path: "/m/1/2".into(),
                acl: acl::open_acl_unsafe(),
                ..Default::default()
            }
            .to_bytes(),
        ),
        (
            OpCode::Delete,
            DeleteRequest {
                path: "/nope".into(),
                version: -1,
            }
            .to_bytes(),
        ),
        (
            OpCode::SetData,
            SetDataRequest {
                path: "/m".into(),
                data: Bytes::new(),
                version: -1,
            }
            .to_bytes(),
        ),
    ] {
        MultiHeader {
            op: op as i32,
            done: false,
            err: -1,
        }
        .write(&mut body);
        body.extend(rec);
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(&mut body);
    c.xid += 1;
    let mut frame = RequestHeader {
        xid: c.xid,
        op: OpCode::Multi as i32,
    }
    .to_bytes();
    frame.extend(body);
    let eff = p.request(1, &frame, clock(5));
    let (h, b) = frames_to(&eff, 1).pop().unwrap();
    assert_eq!(h.err, 0);
    let mut r = Reader::new(&b);
    let mut errs = Vec::new();
    loop {
        let mh = MultiHeader::read(&mut r).unwrap();
        if mh.done {
            break;
        }
        assert_eq!(mh.op, OpCode::Error as i32);
        errs.push(r.read_i32().unwrap());
    }
    assert_eq!(
        errs,
        vec![
            0,
            0,
            ErrorCode::NoNode as i32,
            ErrorCode::RuntimeInconsistency as i32
        ]
    );
    assert!(p.tree.get("/m/1").is_none());
    assert_eq!(p.tree.stat("/m").unwrap().cversion, 0);
}

#[test]
fn acl_checks_and_super_user() {
    let mut p = new_processor();
    let mut a = connect(&mut p, 1, 0);
    let auth = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"bob:pw"),
    };
    let mut frame = RequestHeader {
        xid: xid::AUTH,
        op: OpCode::Auth as i32,
    }
    .to_bytes();
    auth.write(&mut frame);
    let eff = p.request(1, &frame, clock(1));
    assert_eq!(frames_to(&eff, 1)[0].0.err, 0);
    let req = CreateRequest {
        path: "/secret".into(),
        data: Bytes::from_static(b"s"),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "auth".into(),
                id: "".into(),
            },
        }],
        flags: 0,
    };
    let (_, h, _) = call(&mut p, &mut a, OpCode::Create, &req, 2);
    assert_eq!(h.err, 0);
    let mut other = connect(&mut p, 2, 0);
    let (_, h, _) = call(
        &mut p,
        &mut other,
        OpCode::GetData,
        &GetDataRequest {
            path: "/secret".into(),
            watch: false,
        },
        3,
    );
    assert_eq!(h.err, ErrorCode::NoAuth as i32);
    let (_, h, b) = call(
        &mut p,
        &mut other,
        OpCode::GetAcl,
        &GetAclRequest {
            path: "/secret".into(),
        },
        3,
    );
    assert_eq!(h.err, ErrorCode::NoAuth as i32, "{b:?}");
    let sup = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"super:test"),
    };
    let mut frame = RequestHeader {
        xid: xid::AUTH,
        op: OpCode::Auth as i32,
    }
    .to_bytes();
    sup.write(&mut frame);
    p.request(2, &frame, clock(4));
    let (_, h, _) = call(
        &mut p,
        &mut other,
        OpCode::GetData,
        &GetDataRequest {
            path: "/secret".into(),
            watch: false,
        },
        5,
    );
    assert_eq!(h.err, 0);
    let bad = CreateRequest {
        path: "/x".into(),
        acl: vec![],
        ..Default::default()
    };
    let (_, h, _) = call(&mut p, &mut other, OpCode::Create, &bad, 6);
    assert_eq!(h.err, ErrorCode::InvalidAcl as i32);
}

#[test]
fn containers_and_ttl_nodes_are_reaped() {
    let mut p = new_processor();
    let mut c = connect(&mut p, 1, 0);
    let req = CreateRequest {
        path: "/c".into(),
        acl: acl::open_acl_unsafe(),
        flags: 4,
        ..Default::default()
    };
    assert_eq!(
        call(&mut p, &mut c, OpCode::CreateContainer, &req, 1).1.err,
        0
    );
    create(&mut p, &mut c, "/c/child", 0);
    let ttl = CreateTtlRequest {
        path: "/t".into(),
        acl: acl::open_acl_unsafe(),
        flags: 5,
        ttl: 500,
        ..Default::default()
    };
    assert_eq!(call(&mut p, &mut c, OpCode::CreateTtl, &ttl, 1).1.err, 0);
    call(
        &mut p,
        &mut c,
        OpCode::Delete,
        &DeleteRequest {
            path: "/c/child".into(),
            version: -1,
        },
        2,
    );
    p.sessions.touch(c.session, 1500);
    p.tick(clock(1500));
    assert!(p.tree.get("/c").is_none(), "empty container reaped");
    assert!(p.tree.get("/t").is_none(), "expired TTL node reaped");
}

#[test]
fn resume_with_password_and_refuse_bad_one() {
    let mut p = new_processor();
    let c = connect(&mut p, 1, 0);
    p.disconnected(1);
    let req = ConnectRequest {
        time_out: 10000,
        session_id: c.session,
        passwd: Bytes::copy_from_slice(&session::password(c.session)),
        ..Default::default()
    };
    let eff = p.connect(2, "127.0.0.1:5001", &req.to_bytes(), clock(100));
    let Effect::Send { frame, .. } = &eff[0] else {
        panic!()
    };
    assert_eq!(
        ConnectResponse::decode(&frame[4..]).unwrap().session_id,
        c.session
    );
    let bad = ConnectRequest {
        passwd: Bytes::from_static(&[1; 16]),
        ..req
    };
    let eff = p.connect(3, "127.0.0.1:5002", &bad.to_bytes(), clock(100));
    // As ZooKeeper: the session's current connection is dropped first.
    assert!(matches!(eff[0], Effect::Close { conn: 2, .. }));
    let (_, frame) = eff
        .iter()
        .find_map(|e| match e {
            Effect::Send { conn: 3, frame, .. } => Some(((), frame)),
            _ => None,
        })
        .unwrap();
    assert_eq!(ConnectResponse::decode(&frame[4..]).unwrap().time_out, 0);
    assert!(matches!(eff.last(), Some(Effect::Close { conn: 3, .. })));
}

#[test]
fn malformed_requests_close_the_connection_without_panicking() {
    let mut p = new_processor();
    let _c = connect(&mut p, 1, 0);
    for junk in [vec![], vec![0, 0, 0]] {
        let eff = p.request(1, &junk, clock(1));
        assert!(
            eff.iter().any(|e| matches!(e, Effect::Close { .. })),
            "{junk:?}"
        );
    }
    // A header with a body that does not decode: MarshallingError, still open.
    let eff = p.request(1, &[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff], clock(1));
    assert!(!eff.iter().any(|e| matches!(e, Effect::Close { .. })));
    let (h, _) = frames_to(&eff, 1).pop().unwrap();
    assert_eq!(h.err, ErrorCode::MarshallingError as i32);
    assert!(
        p.connect(9, "x", &[1, 2], clock(1))
            .iter()
            .any(|e| matches!(e, Effect::Close { .. }))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_frames_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        super::fuzzing::drive(&data);
    }

    /// Frames that start with a real header and op code reach deeper.
    #[test]
    fn arbitrary_bodies_never_panic(
        ops in proptest::collection::vec((proptest::sample::select(vec![1i32,2,3,4,5,6,7,8,9,11,12,13,14,15,16,17,18,19,21,22,100,101,103,104,105,106,107,-11]),
                                          proptest::collection::vec(proptest::num::u8::ANY, 0..64)), 1..8)
    ) {
        let mut data = Vec::new();
        for (op, body) in ops {
            let mut frame = RequestHeader { xid: 1, op }.to_bytes();
            frame.extend(body);
            frame.truncate(255);
            data.push(frame.len() as u8);
            data.extend(frame);
        }
        super::fuzzing::drive(&data);
    }
}

/// The tag a connection's last frame carried in these effects.
fn last_tag(effects: &[Effect], conn: ConnId) -> i64 {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, tag, .. } if *c == conn => Some(*tag),
            _ => None,
        })
        .next_back()
        .unwrap()
}

#[test]
fn reads_wait_only_for_the_writes_they_can_see() {
    let mut p = new_processor();
    let mut a = connect(&mut p, 1, 0);
    let mut b = connect(&mut p, 2, 0);
    create(&mut p, &mut a, "/x", 0);
    create(&mut p, &mut a, "/y", 0);
    p.set_durable(p.last_zxid());
    p.tick(clock(1));
    let durable = p.last_zxid();
    // a writes /x; it is not durable yet.
    let (eff, h, _) = call(
        &mut p,
        &mut a,
        OpCode::SetData,
        &SetDataRequest {
            path: "/x".into(),
            data: Bytes::new(),
            version: -1,
        },
        2,
    );
    let write_zxid = h.zxid;
    assert_eq!(last_tag(&eff, 1), write_zxid);
    // b reads /y: nothing it can see is pending, so it need not wait.
    let (eff, h, _) = call(
        &mut p,
        &mut b,
        OpCode::GetData,
        &GetDataRequest {
            path: "/y".into(),
            watch: false,
        },
        3,
    );
    assert_eq!(last_tag(&eff, 2), durable);
    assert_eq!(
        h.zxid, durable,
        "the reply claims no zxid that may not be durable"
    );
    // b reads /x: it sees the write, so it waits for it.
    let (eff, _, _) = call(
        &mut p,
        &mut b,
        OpCode::GetData,
        &GetDataRequest {
            path: "/x".into(),
            watch: false,
        },
        4,
    );
    assert_eq!(last_tag(&eff, 2), write_zxid);
    // ...and b's later reads never go back.
    let (eff, _, _) = call(
        &mut p,
        &mut b,
        OpCode::GetData,
        &GetDataRequest {
            path: "/y".into(),
            watch: false,
        },
        5,
    );
    assert_eq!(last_tag(&eff, 2), write_zxid);
    // The parent's children and stat changed with a create below it.
    let mut c = connect(&mut p, 3, 0);
    p.set_durable(p.last_zxid());
    call(
        &mut p,
        &mut a,
        OpCode::Create,
        &CreateRequest {
            path: "/y/c".into(),
            acl: acl::open_acl_unsafe(),
            ..Default::default()
        },
        6,
    );
    let created = p.last_zxid();
    let (eff, _, _) = call(
        &mut p,
        &mut c,
        OpCode::GetChildren,
        &GetChildrenRequest {
            path: "/y".into(),
            watch: false,
        },
        7,
    );
    assert_eq!(last_tag(&eff, 3), created);
    // Once durable, entries are pruned and reads go straight out.
    p.set_durable(created);
    p.tick(clock(8));
    let (eff, _, _) = call(
        &mut p,
        &mut c,
        OpCode::Sync,
        &SyncRequest { path: "/".into() },
        9,
    );
    assert_eq!(last_tag(&eff, 3), created);
}

#[test]
fn servers_of_an_ensemble_snapshot_at_different_points() {
    // They share every zxid: the pick must still differ between them, and
    // stay within ZooKeeper's [snapCount/2 + 1, snapCount].
    let zxid = 0x1_0000_0000;
    let picks: Vec<u64> = (1..=5)
        .map(|id| Processor::next_snapshot_threshold(100_000, zxid, id))
        .collect();
    assert!(
        picks.iter().all(|p| (50_001..=100_000).contains(p)),
        "{picks:?}"
    );
    let mut distinct = picks.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), picks.len(), "{picks:?}");
}
