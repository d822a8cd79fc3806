//! Reconcile tests against kube-rs's mocked API server (tower-test `mock::pair`, as kube's
//! controller-rs does) with a scripted ensemble in place of real ZooKeeper servers: every
//! API call the reconciler makes is checked in order, with its body, and answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::{Client, Resource, ResourceExt};
use rzk::operator::controller::{AdminPassword, Context, EnsembleAdmin, FINALIZER, reconcile};
use rzk::operator::crd::{ReclaimPolicy, ZookeeperCluster, ZookeeperClusterSpec};
use rzk::operator::resources::{self, ConfigRole, Member};
use rzk::operator::srvr::{SrvrInfo, parse_config, parse_srvr};
use rzk::operator::telemetry::Metrics;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A scripted ensemble: srvr answers by address, the committed config, and a log of reconfigs
/// (with the password each one authenticated with).
#[derive(Default)]
struct FakeEnsemble {
    srvr: BTreeMap<String, SrvrInfo>,
    config: Vec<Member>,
    reconfigs: Mutex<Vec<(Vec<String>, Vec<u32>)>>,
    passwords: Mutex<Vec<AdminPassword>>,
}

impl EnsembleAdmin for FakeEnsemble {
    fn srvr(&self, addr: String) -> BoxFuture<'static, Option<SrvrInfo>> {
        let info = self.srvr.get(&addr).cloned();
        Box::pin(async move { info })
    }
    fn config(&self, _addr: String) -> BoxFuture<'static, Result<Vec<Member>, String>> {
        let config = self.config.clone();
        Box::pin(async move { Ok(config) })
    }
    fn reconfig(
        &self,
        _addr: String,
        password: AdminPassword,
        add: Vec<String>,
        remove: Vec<u32>,
    ) -> BoxFuture<'static, Result<(), String>> {
        self.reconfigs.lock().unwrap().push((add, remove));
        self.passwords.lock().unwrap().push(password);
        Box::pin(async { Ok(()) })
    }
}

fn cluster(finalized: bool) -> ZookeeperCluster {
    let spec = ZookeeperClusterSpec {
        image: "rzk:test".into(),
        ..ZookeeperClusterSpec::default()
    };
    let mut zk = ZookeeperCluster::new("zk", spec);
    zk.metadata.namespace = Some("data".into());
    zk.metadata.uid = Some("uid-1".into());
    zk.metadata.generation = Some(2);
    zk.metadata.resource_version = Some("100".into());
    if finalized {
        zk.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    }
    zk
}

fn context(fake: Arc<FakeEnsemble>) -> (Arc<Context>, Handle, Arc<Metrics>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "data");
    let metrics = Arc::new(Metrics::new());
    let mut ctx = Context::new(client, metrics.clone(), fake);
    ctx.clock = Arc::new(|| Time("2026-01-01T00:00:00Z".parse().unwrap()));
    (Arc::new(ctx), handle, metrics)
}

/// One expected API call.
struct Expect {
    method: &'static str,
    path: String,
    /// Checks the request body (JSON) and returns the response (status, JSON body).
    respond: Box<dyn FnOnce(Value) -> (u16, Value) + Send>,
}

fn expect(
    method: &'static str,
    path: impl Into<String>,
    respond: impl FnOnce(Value) -> (u16, Value) + Send + 'static,
) -> Expect {
    Expect {
        method,
        path: path.into(),
        respond: Box::new(respond),
    }
}

/// Echo the applied object back (what the API server returns for an apply).
fn echo(method: &'static str, path: impl Into<String>) -> Expect {
    expect(method, path, |body| (200, body))
}

/// The API server answers a status apply with the whole object.
fn status_reply(body: Value) -> Value {
    let mut obj = serde_json::to_value(cluster(true)).unwrap();
    obj["status"] = body["status"].clone();
    obj
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// The chart's operator rules (`charts/rzk-operator/templates/rbac.yaml`, the first
/// document's `rules:`, plain YAML between the template lines): (apiGroups, resources, verbs).
fn chart_rules() -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/rzk-operator/templates/rbac.yaml"
    );
    let text = std::fs::read_to_string(path).expect("rbac.yaml");
    let rules: String = text
        .lines()
        .skip_while(|l| !l.starts_with("rules:"))
        .take_while(|l| !l.starts_with("---"))
        .map(|l| format!("{l}\n"))
        .collect();
    let doc: Value = serde_saphyr::from_str(&rules).expect("rules yaml");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    doc["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                strings(&r["apiGroups"]),
                strings(&r["resources"]),
                strings(&r["verbs"]),
            )
        })
        .collect()
}

/// The RBAC (group, resource, verb) a namespaced request needs.
fn rbac_of(method: &str, path: &str, query: &str) -> (String, String, String) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts[0] {
        "api" => (String::new(), &parts[2..]),
        _ => (parts[1].to_string(), &parts[3..]),
    };
    assert_eq!(rest[0], "namespaces", "{path}");
    let resource = match rest.len() {
        3 | 4 => rest[2].to_string(),
        5 => format!("{}/{}", rest[2], rest[4]),
        _ => panic!("unexpected path {path}"),
    };
    let named = rest.len() >= 4;
    let verb = match method {
        "GET" if query.contains("watch=true") => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        m => panic!("unexpected method {m}"),
    };
    (group, resource, verb.to_string())
}

async fn serve(mut handle: Handle, script: Vec<Expect>) {
    let rules = chart_rules();
    for (i, step) in script.into_iter().enumerate() {
        let (request, send) = handle.next_request().await.unwrap_or_else(|| {
            panic!(
                "step {i}: expected {} {}, got no request",
                step.method, step.path
            )
        });
        let path = request.uri().path().to_string();
        let full = request.uri().to_string();
        // Every call the reconciler makes is granted by the chart's (Cluster)Role.
        let (group, resource, verb) = rbac_of(
            request.method().as_str(),
            &path,
            request.uri().query().unwrap_or(""),
        );
        assert!(
            rules
                .iter()
                .any(|(g, r, v)| g.contains(&group) && r.contains(&resource) && v.contains(&verb)),
            "step {i}: {verb} {group}/{resource} ({full}) is not granted by charts/rzk-operator/templates/rbac.yaml"
        );
        assert_eq!(request.method().as_str(), step.method, "step {i}: {full}");
        assert_eq!(path, step.path, "step {i}: {full}");
        if step.method == "PATCH" && path != ZK && !full.contains("fieldManager=rzk-operator") {
            panic!("step {i}: apply without the rzk-operator field manager: {full}");
        }
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let (status, response) = (step.respond)(body);
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&response).unwrap()))
                .unwrap(),
        );
    }
}

async fn run(
    zk: ZookeeperCluster,
    ctx: Arc<Context>,
    handle: Handle,
    script: Vec<Expect>,
) -> Result<kube::runtime::controller::Action, rzk::operator::controller::Error> {
    let server = tokio::spawn(serve(handle, script));
    let result = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(zk), ctx))
        .await
        .expect("reconcile finished");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("all expected calls were made")
        .expect("mock server task");
    result
}

const NS: &str = "/api/v1/namespaces/data";
const APPS: &str = "/apis/apps/v1/namespaces/data";
const ZK: &str = "/apis/rzk.dev/v1alpha1/namespaces/data/zookeeperclusters/zk";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/data/events";
const SECRETS: &str = "/api/v1/namespaces/data/secrets";
/// The super password of the existing clusters' admin Secret.
const PASSWORD: &str = "s3cret-Pa55word";

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn admin_secret(password: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": true,
           "metadata": {"name": "zk-admin", "namespace": "data"},
           "data": {"password": b64(password)}})
}

/// The admin Secret exists: it is read, never written.
fn existing_secret() -> Expect {
    expect("GET", format!("{SECRETS}/zk-admin"), |_| {
        (200, admin_secret(PASSWORD))
    })
}

/// The zoo.cfg line the ConfigMap must carry for `password`.
fn digest_line(password: &str) -> String {
    format!(
        "\nDigestAuthenticationProvider.superDigest={}\n",
        rzk::tree::acl::digest(&format!("super:{password}"))
    )
}

fn hash_of(zk: &ZookeeperCluster) -> String {
    resources::desired_hash(zk, &resources::super_digest(PASSWORD))
}

/// The applies of every owned object, in the order the reconciler makes them.
fn applies(
    check_cm: impl FnOnce(&str) + Send + 'static,
    check_sts: impl FnOnce(&Value) + Send + 'static,
) -> Vec<Expect> {
    vec![
        echo("PATCH", format!("{NS}/serviceaccounts/zk")),
        expect("PATCH", format!("{NS}/configmaps/zk-config"), move |body| {
            check_cm(body["data"]["zoo.cfg"].as_str().expect("zoo.cfg"));
            (200, body)
        }),
        expect("PATCH", format!("{NS}/services/zk-headless"), |body| {
            assert_eq!(body["spec"]["publishNotReadyAddresses"], json!(true));
            assert_eq!(
                body["metadata"]["ownerReferences"][0]["uid"],
                json!("uid-1")
            );
            (200, body)
        }),
        echo("PATCH", format!("{NS}/services/zk-client")),
        echo(
            "PATCH",
            "/apis/policy/v1/namespaces/data/poddisruptionbudgets/zk",
        ),
        expect("PATCH", format!("{APPS}/statefulsets/zk"), move |body| {
            check_sts(&body);
            (200, body)
        }),
    ]
}

#[tokio::test]
async fn adds_the_finalizer_first() {
    let (ctx, handle, _) = context(Arc::new(FakeEnsemble::default()));
    let script = vec![expect("PATCH", ZK, |body| {
        let text = body.to_string();
        assert!(text.contains(FINALIZER), "{text}");
        let mut obj = serde_json::to_value(cluster(true)).unwrap();
        obj["metadata"]["finalizers"] = json!([FINALIZER]);
        (200, obj)
    })];
    run(cluster(false), ctx, handle, script)
        .await
        .expect("reconcile");
}

#[tokio::test]
async fn new_cluster_creates_everything_and_reports_creating() {
    let (ctx, handle, metrics) = context(Arc::new(FakeEnsemble::default()));
    let created: Arc<Mutex<Option<String>>> = Arc::default();
    let created_w = created.clone();
    let created_r = created.clone();
    let mut script = vec![
        expect("GET", format!("{SECRETS}/zk-admin"), |_| (404, not_found())),
        // Created (POST, not applied), with a random password, owned by the cluster.
        expect("POST", SECRETS, move |body| {
            assert_eq!(body["metadata"]["name"], json!("zk-admin"));
            assert_eq!(body["immutable"], json!(true));
            assert_eq!(body["type"], json!("Opaque"));
            assert_eq!(
                body["metadata"]["ownerReferences"][0]["uid"],
                json!("uid-1")
            );
            assert_eq!(
                body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                json!("rzk-operator")
            );
            use base64::Engine as _;
            let password = base64::engine::general_purpose::STANDARD
                .decode(body["data"]["password"].as_str().expect("data.password"))
                .unwrap();
            let password = String::from_utf8(password).unwrap();
            assert_eq!(password.len(), 32, "{password}");
            assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
            *created_w.lock().unwrap() = Some(password);
            (201, body)
        }),
        expect("POST", EVENTS, |body| {
            assert_eq!(body["reason"], json!("CreatedAdminSecret"));
            assert!(!body.to_string().contains("password\":"), "{body}");
            (201, body)
        }),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| {
            (404, not_found())
        }),
        expect("GET", format!("{NS}/pods"), |_| {
            (200, list("PodList", vec![]))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), |_| {
            (200, list("PersistentVolumeClaimList", vec![]))
        }),
    ];
    script.extend(applies(
        move |cfg| {
            assert!(cfg.contains("server.3=zk-2.zk-headless.data.svc.cluster.local:2888:3888:participant;0.0.0.0:2181"), "{cfg}");
            // zoo.cfg carries the digest of the password just created, never the password.
            let password = created_r.lock().unwrap().clone().expect("secret created first");
            assert!(cfg.contains(&digest_line(&password)), "{cfg}");
            assert!(!cfg.contains(&password), "{cfg}");
            assert!(!cfg.contains("skipACL"), "{cfg}");
        },
        |sts| {
            assert_eq!(sts["spec"]["replicas"], json!(3));
            assert_eq!(sts["spec"]["podManagementPolicy"], json!("Parallel"));
            assert_eq!(sts["spec"]["updateStrategy"]["type"], json!("OnDelete"));
        },
    ));
    script.push(expect("POST", EVENTS, |body| {
        assert_eq!(body["reason"], json!("Scaling"));
        (201, body)
    }));
    script.push(expect("PATCH", format!("{ZK}/status"), |body| {
        let status = &body["status"];
        assert_eq!(status["phase"], json!("Creating"));
        assert_eq!(status["observedGeneration"], json!(2));
        assert!(
            status["connectionString"]
                .as_str()
                .unwrap()
                .contains("zk-0.zk-headless.data.svc.cluster.local:2181")
        );
        (200, status_reply(body))
    }));
    run(cluster(true), ctx, handle, script)
        .await
        .expect("reconcile");
    let text = metrics.encode();
    assert!(
        text.contains("rzk_operator_reconciliations_total{action=\"ScaleStatefulSet\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rzk_operator_clusters{phase=\"Creating\"} 1"),
        "{text}"
    );
}

fn pod(zk: &ZookeeperCluster, ordinal: u32, hash: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("zk-{ordinal}"), "namespace": "data",
            "labels": resources::selector_labels(zk),
            "annotations": {"rzk.dev/config-hash": hash},
        },
        "status": {
            "podIP": format!("10.0.0.{}", ordinal + 1),
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    })
}

fn sts(replicas: u32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "zk", "namespace": "data"},
           "spec": {"replicas": replicas, "selector": {}, "serviceName": "zk-headless", "template": {},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "10Gi"}}}}]}})
}

fn fake_ensemble(leader_ordinal: u32, n: u32) -> FakeEnsemble {
    let mut fake = FakeEnsemble::default();
    for o in 0..n {
        let mode = if o == leader_ordinal {
            "leader"
        } else {
            "follower"
        };
        fake.srvr.insert(
            format!("10.0.0.{}:2181", o + 1),
            parse_srvr(&format!(
                "Zookeeper version: 3.8.0-rzk\nZxid: 0x100000005\nMode: {mode}\nNode count: 5\n"
            )),
        );
    }
    fake.config = (1..=n)
        .map(|id| Member {
            id,
            role: ConfigRole::Participant,
        })
        .collect();
    fake
}

#[tokio::test]
async fn outdated_follower_is_restarted_before_the_leader() {
    let fake = Arc::new(fake_ensemble(2, 3));
    let (ctx, handle, _) = context(fake.clone());
    let zk = cluster(true);
    let pods: Vec<Value> = (0..3).map(|o| pod(&zk, o, "stale", true)).collect();
    let mut script = vec![
        existing_secret(),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| (200, sts(3))),
        expect("GET", format!("{NS}/pods"), move |_| {
            (200, list("PodList", pods))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), |_| {
            (200, list("PersistentVolumeClaimList", vec![]))
        }),
    ];
    script.extend(applies(
        |cfg| {
            assert!(cfg.contains("server.3="));
            assert!(cfg.contains(&digest_line(PASSWORD)), "{cfg}");
        },
        |sts| {
            // The existing (immutable) volumeClaimTemplates are kept.
            assert_eq!(
                sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
                json!("10Gi")
            );
        },
    ));
    let zk_for_delete = zk.clone();
    script.push(expect("DELETE", format!("{NS}/pods/zk-1"), move |_| {
        (200, pod(&zk_for_delete, 1, "stale", true))
    }));
    script.push(expect("POST", EVENTS, |body| {
        assert_eq!(body["reason"], json!("RestartingPod"));
        assert!(body["note"].as_str().unwrap().contains("zk-1"));
        (201, body)
    }));
    script.push(expect("PATCH", format!("{ZK}/status"), |body| {
        let status = &body["status"];
        assert_eq!(status["phase"], json!("Rolling"));
        assert_eq!(status["leader"], json!("zk-2"));
        assert_eq!(status["readyReplicas"], json!(3));
        assert_eq!(status["zkVersion"], json!("3.8.0"));
        assert_eq!(status["members"][2]["role"], json!("leader"));
        let available = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Available")
            .unwrap();
        assert_eq!(available["status"], json!("True"));
        (200, status_reply(body))
    }));
    run(zk, ctx, handle, script).await.expect("reconcile");
}

#[tokio::test]
async fn scale_down_removes_the_member_by_reconfig() {
    let fake = Arc::new(fake_ensemble(0, 5));
    let (ctx, handle, _) = context(fake.clone());
    let zk = cluster(true);
    let hash = hash_of(&zk);
    let pods: Vec<Value> = (0..5).map(|o| pod(&zk, o, &hash, true)).collect();
    let mut script = vec![
        existing_secret(),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| (200, sts(5))),
        expect("GET", format!("{NS}/pods"), move |_| {
            (200, list("PodList", pods))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), |_| {
            (200, list("PersistentVolumeClaimList", vec![]))
        }),
    ];
    script.extend(applies(
        // The ConfigMap keeps the committed membership until the reconfig is done.
        |cfg| assert!(cfg.contains("server.5="), "{cfg}"),
        |sts| {
            assert_eq!(
                sts["spec"]["replicas"],
                json!(5),
                "pods stay until removed from the ensemble"
            )
        },
    ));
    script.push(expect("POST", EVENTS, |body| {
        assert_eq!(body["reason"], json!("RemovedMember"));
        (201, body)
    }));
    script.push(expect("PATCH", format!("{ZK}/status"), |body| {
        assert_eq!(body["status"]["phase"], json!("Scaling"));
        (200, status_reply(body))
    }));
    run(zk, ctx, handle, script).await.expect("reconcile");
    assert_eq!(*fake.reconfigs.lock().unwrap(), vec![(vec![], vec![5])]);
    // The reconfig authenticated as the super user with the Secret's password.
    assert_eq!(
        *fake.passwords.lock().unwrap(),
        vec![AdminPassword::new(PASSWORD)]
    );
}

#[tokio::test]
async fn unhealthy_ensemble_waits_and_says_why() {
    // Two of three pods unready on the current template: no quorum; nothing is deleted.
    let mut fake = fake_ensemble(0, 3);
    fake.srvr.clear();
    let fake = Arc::new(fake);
    let (ctx, handle, _) = context(fake.clone());
    let zk = cluster(true);
    let hash = hash_of(&zk);
    let pods: Vec<Value> = (0..3).map(|o| pod(&zk, o, &hash, o == 0)).collect();
    let mut script = vec![
        existing_secret(),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| (200, sts(3))),
        expect("GET", format!("{NS}/pods"), move |_| {
            (200, list("PodList", pods))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), |_| {
            (200, list("PersistentVolumeClaimList", vec![]))
        }),
    ];
    // Membership unknown (no leader): the ConfigMap is left alone.
    script.push(echo("PATCH", format!("{NS}/serviceaccounts/zk")));
    script.push(echo("PATCH", format!("{NS}/services/zk-headless")));
    script.push(echo("PATCH", format!("{NS}/services/zk-client")));
    script.push(echo(
        "PATCH",
        "/apis/policy/v1/namespaces/data/poddisruptionbudgets/zk",
    ));
    script.push(echo("PATCH", format!("{APPS}/statefulsets/zk")));
    script.push(expect("POST", EVENTS, |body| {
        assert_eq!(body["type"], json!("Warning"));
        assert_eq!(body["reason"], json!("Waiting"));
        assert!(
            body["note"].as_str().unwrap().contains("not ready"),
            "{body}"
        );
        (201, body)
    }));
    script.push(expect("PATCH", format!("{ZK}/status"), |body| {
        let status = &body["status"];
        assert_eq!(status["phase"], json!("Degraded"));
        let degraded = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Degraded")
            .unwrap();
        assert_eq!(degraded["status"], json!("True"));
        (200, status_reply(body))
    }));
    run(zk, ctx, handle, script).await.expect("reconcile");
    assert!(fake.reconfigs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deletion_with_reclaim_delete_removes_pvcs_then_the_finalizer() {
    let (ctx, handle, _) = context(Arc::new(FakeEnsemble::default()));
    let mut zk = cluster(true);
    zk.spec.storage.reclaim_policy = ReclaimPolicy::Delete;
    zk.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let pvc = |o: u32| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": format!("data-zk-{o}"), "namespace": "data"}});
    let pvcs = vec![pvc(0), pvc(1)];
    let script = vec![
        expect("GET", format!("{NS}/persistentvolumeclaims"), move |_| {
            (200, list("PersistentVolumeClaimList", pvcs))
        }),
        expect(
            "DELETE",
            format!("{NS}/persistentvolumeclaims/data-zk-0"),
            move |_| (200, pvc(0)),
        ),
        expect(
            "DELETE",
            format!("{NS}/persistentvolumeclaims/data-zk-1"),
            move |_| (200, pvc(1)),
        ),
        expect("POST", EVENTS, |body| (201, body)),
        expect("PATCH", ZK, |body| {
            let text = body.to_string();
            assert!(
                text.contains("remove") || text.contains("finalizers"),
                "{text}"
            );
            (200, serde_json::to_value(cluster(false)).unwrap())
        }),
    ];
    run(zk, ctx, handle, script).await.expect("reconcile");
}

#[tokio::test]
async fn deletion_with_retain_keeps_pvcs() {
    let (ctx, handle, _) = context(Arc::new(FakeEnsemble::default()));
    let mut zk = cluster(true);
    zk.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let script = vec![expect("PATCH", ZK, |_| {
        (200, serde_json::to_value(cluster(false)).unwrap())
    })];
    run(zk, ctx, handle, script).await.expect("reconcile");
}

#[test]
fn srvr_parsing_matches_apache_zookeeper_output() {
    let text = "Zookeeper version: 3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f, built on 2022-02-25 08:49 UTC\nLatency min/avg/max: 0/0.5/3\nReceived: 10\nSent: 9\nConnections: 1\nOutstanding: 0\nZxid: 0x200000003\nMode: follower\nNode count: 6\n";
    let info = parse_srvr(text);
    assert_eq!(info.version.as_deref(), Some("3.8.0"));
    assert_eq!(info.mode.as_deref(), Some("follower"));
    assert_eq!(info.zxid, Some(0x200000003));
    assert_eq!(info.node_count, Some(6));
    let down = parse_srvr("This ZooKeeper instance is not currently serving requests\n");
    assert_eq!(down.role(), rzk::operator::planner::Role::Unknown);
}

#[test]
fn config_node_parsing() {
    let text = "server.1=zk-0.zk-headless:2888:3888:participant;0.0.0.0:2181\nserver.2=zk-1.zk-headless:2888:3888;2181\nserver.4=zk-3.zk-headless:2888:3888:observer;0.0.0.0:2181\nversion=100000000\n";
    assert_eq!(
        parse_config(text),
        vec![
            Member {
                id: 1,
                role: ConfigRole::Participant
            },
            Member {
                id: 2,
                role: ConfigRole::Participant
            },
            Member {
                id: 4,
                role: ConfigRole::Observer
            },
        ]
    );
}

#[test]
fn owner_reference_points_at_the_cluster() {
    let zk = cluster(true);
    let owner = zk.controller_owner_ref(&()).unwrap();
    assert_eq!(owner.name, zk.name_any());
}

#[tokio::test]
async fn paused_cluster_is_observed_but_not_touched() {
    let fake = Arc::new(fake_ensemble(0, 3));
    let (ctx, handle, _) = context(fake.clone());
    let mut zk = cluster(true);
    zk.spec.paused = true;
    let pods: Vec<Value> = (0..3).map(|o| pod(&zk, o, "stale", true)).collect();
    let script = vec![
        // Read, but a paused cluster gets no Secret created.
        expect("GET", format!("{SECRETS}/zk-admin"), |_| (404, not_found())),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| (200, sts(3))),
        expect("GET", format!("{NS}/pods"), move |_| {
            (200, list("PodList", pods))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), |_| {
            (200, list("PersistentVolumeClaimList", vec![]))
        }),
        // No applies, no deletes, no reconfig: only the status.
        expect("PATCH", format!("{ZK}/status"), |body| {
            assert_eq!(body["status"]["phase"], json!("Paused"));
            assert!(
                body["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("paused")
            );
            (200, status_reply(body))
        }),
    ];
    run(zk, ctx, handle, script).await.expect("reconcile");
    assert!(fake.reconfigs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn storage_growth_resizes_the_pvcs() {
    let fake = Arc::new(fake_ensemble(0, 1));
    let (ctx, handle, _) = context(fake.clone());
    let mut zk = cluster(true);
    zk.spec.replicas = 1;
    zk.spec.storage.size = "20Gi".into();
    let hash = hash_of(&zk);
    let pods = vec![pod(&zk, 0, &hash, true)];
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-zk-0", "namespace": "data"},
        "spec": {"resources": {"requests": {"storage": "10Gi"}}}});
    let pvc_list = vec![pvc.clone()];
    let mut script = vec![
        existing_secret(),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| (200, sts(1))),
        expect("GET", format!("{NS}/pods"), move |_| {
            (200, list("PodList", pods))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), move |_| {
            (200, list("PersistentVolumeClaimList", pvc_list))
        }),
    ];
    script.extend(applies(|_| {}, |_| {}));
    script.push(expect(
        "PATCH",
        format!("{NS}/persistentvolumeclaims/data-zk-0"),
        move |body| {
            assert_eq!(
                body["spec"]["resources"]["requests"]["storage"],
                json!("20Gi")
            );
            (200, pvc)
        },
    ));
    script.push(expect("PATCH", format!("{ZK}/status"), |body| {
        assert_eq!(body["status"]["phase"], json!("Running"));
        (200, status_reply(body))
    }));
    run(zk, ctx, handle, script).await.expect("reconcile");
}

#[tokio::test]
async fn a_secret_created_concurrently_wins_and_is_used() {
    // Another writer (a previous leader finishing its reconcile) created the Secret between
    // our read and our create: the create fails with AlreadyExists, the stored password is
    // read back and is the one zoo.cfg and reconfig use.
    let fake = Arc::new(fake_ensemble(0, 5));
    let (ctx, handle, _) = context(fake.clone());
    let zk = cluster(true);
    let hash = hash_of(&zk);
    let pods: Vec<Value> = (0..5).map(|o| pod(&zk, o, &hash, true)).collect();
    let mut script = vec![
        expect("GET", format!("{SECRETS}/zk-admin"), |_| (404, not_found())),
        expect("POST", SECRETS, |_| {
            (
                409,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "secrets \"zk-admin\" already exists"}),
            )
        }),
        existing_secret(),
        expect("GET", format!("{APPS}/statefulsets/zk"), |_| (200, sts(5))),
        expect("GET", format!("{NS}/pods"), move |_| {
            (200, list("PodList", pods))
        }),
        expect("GET", format!("{NS}/persistentvolumeclaims"), |_| {
            (200, list("PersistentVolumeClaimList", vec![]))
        }),
    ];
    script.extend(applies(
        |cfg| assert!(cfg.contains(&digest_line(PASSWORD)), "{cfg}"),
        |_| {},
    ));
    script.push(expect("POST", EVENTS, |body| {
        assert_eq!(body["reason"], json!("RemovedMember"));
        (201, body)
    }));
    script.push(expect("PATCH", format!("{ZK}/status"), |body| {
        (200, status_reply(body))
    }));
    run(zk, ctx, handle, script).await.expect("reconcile");
    assert_eq!(
        *fake.passwords.lock().unwrap(),
        vec![AdminPassword::new(PASSWORD)]
    );
}

#[tokio::test]
async fn a_secret_without_a_password_is_an_error_not_a_rotation() {
    let (ctx, handle, _) = context(Arc::new(FakeEnsemble::default()));
    let script = vec![expect("GET", format!("{SECRETS}/zk-admin"), |_| {
        let mut secret = admin_secret(PASSWORD);
        secret["data"] = json!({"other": b64("x")});
        (200, secret)
    })];
    let err = run(cluster(true), ctx, handle, script)
        .await
        .expect_err("no usable password");
    assert!(err.to_string().contains("zk-admin"), "{err}");
}

#[test]
fn admin_password_debug_is_redacted() {
    let text = format!("{:?}", AdminPassword::new(PASSWORD));
    assert!(!text.contains(PASSWORD), "{text}");
    assert_ne!(AdminPassword::random(), AdminPassword::random());
}
