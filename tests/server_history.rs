//! Clients record histories against a real `rzk server` that is SIGKILLed
//! and restarted under load; the ZooKeeper-aware checker in
//! `common/history.rs` verifies writes are linearizable in zxid order, reads
//! are never stale, sessions never go back in time, and no acknowledged
//! write is lost.

mod common;
use common::RzkServer;
use common::history::{Entry, Op, Outcome, check};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

const KEYS: usize = 5;
const CLIENTS: u64 = 4;

fn key(i: usize) -> String {
    format!("/h/k{i}")
}

fn outcome_of_error(e: &zk::Error) -> Outcome {
    match e {
        zk::Error::NodeExists | zk::Error::NoNode | zk::Error::BadVersion => Outcome::Refused,
        _ => Outcome::Unknown,
    }
}

async fn client_loop(
    addr: String,
    session: u64,
    until: Instant,
    seed: u64,
    log: Arc<Mutex<Vec<Entry>>>,
) {
    let Ok(c) = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(&addr)
        .await
    else {
        return;
    };
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut rng = seed;
    let mut n = 0u64;
    while Instant::now() < until {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = key((rng >> 33) as usize % KEYS);
        n += 1;
        let value = format!("c{session}-{n}").into_bytes();
        let invoked = Instant::now();
        let (op, outcome) = match (rng >> 20) % 3 {
            0 => {
                let r =
                    tokio::time::timeout(Duration::from_secs(3), c.create(&k, &value, &opts)).await;
                let o = match r {
                    Ok(Ok((stat, _))) => Outcome::Wrote {
                        zxid: stat.czxid,
                        version: stat.version,
                    },
                    Ok(Err(e)) => outcome_of_error(&e),
                    Err(_) => Outcome::Unknown,
                };
                (Op::Create { key: k, value }, o)
            }
            1 => {
                let r = tokio::time::timeout(Duration::from_secs(3), c.set_data(&k, &value, None))
                    .await;
                let o = match r {
                    Ok(Ok(stat)) => Outcome::Wrote {
                        zxid: stat.mzxid,
                        version: stat.version,
                    },
                    Ok(Err(e)) => outcome_of_error(&e),
                    Err(_) => Outcome::Unknown,
                };
                (Op::Set { key: k, value }, o)
            }
            _ => {
                let r = tokio::time::timeout(Duration::from_secs(3), c.get_data(&k)).await;
                let o = match r {
                    Ok(Ok((data, stat))) => Outcome::Read(Some((data, stat.mzxid))),
                    Ok(Err(zk::Error::NoNode)) => Outcome::Read(None),
                    _ => Outcome::Unknown,
                };
                (Op::Get { key: k }, o)
            }
        };
        let broken = outcome == Outcome::Unknown;
        log.lock().unwrap().push(Entry {
            session,
            op,
            invoked,
            completed: Instant::now(),
            outcome,
        });
        if broken {
            // The server is down or restarting: this session's view ends here.
            return;
        }
    }
}

#[test]
fn histories_under_kill_9_are_consistent() {
    let mut server = RzkServer::start("snapCount=40");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        c.create(
            "/h",
            b"",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
    });
    let log: Arc<Mutex<Vec<Entry>>> = Arc::default();
    for round in 0..3u64 {
        let until = Instant::now() + Duration::from_millis(1500);
        let handles: Vec<_> = (0..CLIENTS)
            .map(|s| {
                let session = round * 100 + s;
                rt.spawn(client_loop(
                    server.addr(),
                    session,
                    until,
                    0x9e37 * (session + 1),
                    log.clone(),
                ))
            })
            .collect();
        // Kill the server at a different moment each round, mid-load.
        std::thread::sleep(Duration::from_millis(300 + 400 * round));
        server.kill9();
        for h in handles {
            rt.block_on(h).unwrap();
        }
        server.restart();
    }
    let entries = log.lock().unwrap().clone();
    let writes = entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Wrote { .. }))
        .count();
    let reads = entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Read(_)))
        .count();
    assert!(
        writes > 20 && reads > 20,
        "too little load to judge: {writes} writes, {reads} reads"
    );
    let final_state: HashMap<String, Option<Vec<u8>>> = rt.block_on(async {
        let c = zk::Client::connect(&server.addr()).await.unwrap();
        let mut m = HashMap::new();
        for i in 0..KEYS {
            let v = match c.get_data(&key(i)).await {
                Ok((d, _)) => Some(d),
                Err(_) => None,
            };
            m.insert(key(i), v);
        }
        m
    });
    if let Err(e) = check(&entries, &final_state) {
        let path = server.dir.join("history.txt");
        let dump: String = entries.iter().map(|e| format!("{e:?}\n")).collect();
        std::fs::write(&path, dump).unwrap();
        panic!(
            "inconsistent history ({} entries): {e}\n{}",
            entries.len(),
            server.log()
        );
    }
}

/// The checker is not a rubber stamp: it rejects a stale read, a lost write
/// and writes out of real-time order.
#[test]
fn checker_rejects_bad_histories() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let w = |ms: u64, zxid: i64, value: &str, create: bool| Entry {
        session: 1,
        op: if create {
            Op::Create {
                key: "/k".into(),
                value: value.into(),
            }
        } else {
            Op::Set {
                key: "/k".into(),
                value: value.into(),
            }
        },
        invoked: at(ms),
        completed: at(ms + 1),
        outcome: Outcome::Wrote {
            zxid,
            version: if create { 0 } else { (zxid - 1) as i32 },
        },
    };
    let read = |ms: u64, value: &str, mzxid: i64| Entry {
        session: 2,
        op: Op::Get { key: "/k".into() },
        invoked: at(ms),
        completed: at(ms + 1),
        outcome: Outcome::Read(Some((value.into(), mzxid))),
    };
    let fin = |v: &str| HashMap::from([("/k".to_string(), Some(v.as_bytes().to_vec()))]);
    let good = vec![w(0, 1, "a", true), w(10, 2, "b", false), read(20, "b", 2)];
    check(&good, &fin("b")).unwrap();
    let stale = vec![w(0, 1, "a", true), w(10, 2, "b", false), read(20, "a", 1)];
    assert!(check(&stale, &fin("b")).unwrap_err().contains("stale"));
    assert!(check(&good, &fin("a")).unwrap_err().contains("final value"));
    let reordered = vec![w(10, 1, "a", true), w(0, 2, "b", false)];
    assert!(
        check(&reordered, &fin("b"))
            .unwrap_err()
            .contains("real-time")
    );
}
