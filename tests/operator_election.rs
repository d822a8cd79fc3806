//! Leader election of the operator (kube-lease-manager under `operator::election`) against an
//! in-memory Lease API that behaves like the API server where the lock depends on it:
//! create/get, strategic-merge patches, and server-side apply that fails with 409 Conflict
//! when another field manager owns `spec.holderIdentity` and the apply is not forced.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use rzk::operator::election::Election;
use serde_json::{Value, json};

#[derive(Default)]
struct LeaseStore {
    lease: Option<Value>,
    holder_owner: Option<String>,
    version: u64,
}

fn reply(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn status(code: u16, reason: &str) -> Response<Body> {
    reply(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
    )
}

fn query_param(uri: &http::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

async fn handle(store: Arc<Mutex<LeaseStore>>, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let mut s = store.lock().unwrap();
    let path = uri.path();
    assert!(
        path.starts_with("/apis/coordination.k8s.io/v1/namespaces/ops/leases"),
        "{path}"
    );
    match method.as_str() {
        "GET" => match &s.lease {
            Some(l) => reply(200, l.clone()),
            None => status(404, "NotFound"),
        },
        "POST" => {
            if s.lease.is_some() {
                return status(409, "AlreadyExists");
            }
            let mut lease: Value = serde_json::from_slice(&bytes).unwrap();
            s.version += 1;
            lease["metadata"]["namespace"] = json!("ops");
            lease["metadata"]["resourceVersion"] = json!(s.version.to_string());
            s.lease = Some(lease.clone());
            reply(201, lease)
        }
        "PATCH" => {
            let Some(mut lease) = s.lease.clone() else {
                return status(404, "NotFound");
            };
            let patch: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_saphyr::from_str(std::str::from_utf8(&bytes).unwrap()).unwrap()
            });
            let manager = query_param(&uri, "fieldManager").unwrap_or_default();
            let force = query_param(&uri, "force").as_deref() == Some("true");
            let apply = content_type.starts_with("application/apply-patch");
            let spec_patch = patch["spec"].as_object().cloned().unwrap_or_default();
            if let Some(new_holder) = spec_patch.get("holderIdentity") {
                let current = &lease["spec"]["holderIdentity"];
                let owned_by_other = s.holder_owner.as_deref().is_some_and(|o| o != manager);
                if apply && !force && owned_by_other && current != new_holder {
                    return status(409, "Conflict");
                }
                s.holder_owner = if new_holder.is_null() {
                    None
                } else {
                    Some(manager.clone())
                };
            }
            if !lease["spec"].is_object() {
                lease["spec"] = json!({});
            }
            for (k, v) in spec_patch {
                if v.is_null() {
                    lease["spec"].as_object_mut().unwrap().remove(&k);
                } else {
                    lease["spec"][&k] = v;
                }
            }
            s.version += 1;
            lease["metadata"]["resourceVersion"] = json!(s.version.to_string());
            s.lease = Some(lease.clone());
            reply(200, lease)
        }
        other => panic!("unexpected {other} {path}"),
    }
}

fn client(store: Arc<Mutex<LeaseStore>>) -> Client {
    let service = tower::service_fn(move |req: Request<Body>| {
        let store = store.clone();
        async move { Ok::<_, Infallible>(handle(store, req).await) }
    });
    Client::new(service, "ops")
}

fn holder(store: &Arc<Mutex<LeaseStore>>) -> Option<String> {
    let s = store.lock().unwrap();
    s.lease.as_ref()?["spec"]["holderIdentity"]
        .as_str()
        .map(String::from)
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_replicas_leads_and_the_other_takes_over() {
    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let mut a = Election::start_with(
        client(store.clone()),
        "ops",
        "rzk-operator",
        "replica-a",
        3,
        1,
    )
    .await
    .expect("start a");
    let mut b = Election::start_with(
        client(store.clone()),
        "ops",
        "rzk-operator",
        "replica-b",
        3,
        1,
    )
    .await
    .expect("start b");

    // Exactly one acquires.
    let first = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::select! {
            r = a.acquired() => { r.unwrap(); "replica-a" }
            r = b.acquired() => { r.unwrap(); "replica-b" }
        }
    })
    .await
    .expect("someone leads");
    assert_eq!(holder(&store).as_deref(), Some(first));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leaders = [*a.is_leader.borrow(), *b.is_leader.borrow()];
    assert_eq!(leaders.iter().filter(|l| **l).count(), 1, "{leaders:?}");
    assert_eq!(
        holder(&store).as_deref(),
        Some(first),
        "the leader keeps its lease"
    );

    // The leader shuts down and releases; the other takes over.
    let (leader, mut follower, next) = if first == "replica-a" {
        (a, b, "replica-b")
    } else {
        (b, a, "replica-a")
    };
    leader.release().await;
    tokio::time::timeout(Duration::from_secs(15), follower.acquired())
        .await
        .expect("takeover in time")
        .unwrap();
    eventually("lease holder switch", Duration::from_secs(5), || {
        holder(&store).as_deref() == Some(next)
    })
    .await;

    // Someone else takes the lease by force: the current leader notices it lost.
    {
        let mut s = store.lock().unwrap();
        let lease = s.lease.as_mut().unwrap();
        lease["spec"]["holderIdentity"] = json!("intruder");
        lease["spec"]["renewTime"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
        lease["spec"]["leaseDurationSeconds"] = json!(3600);
        s.holder_owner = Some("intruder-manager".into());
    }
    tokio::time::timeout(
        Duration::from_secs(15),
        Election::lost(follower.is_leader.clone()),
    )
    .await
    .expect("loss noticed in time");
    follower.release().await;
    assert_eq!(
        holder(&store).as_deref(),
        Some("intruder"),
        "a non-holder does not clear the lease"
    );
}
