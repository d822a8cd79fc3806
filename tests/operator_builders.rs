//! The pure builders: golden YAML of every object for a sample cluster (regenerate with
//! `UPDATE_GOLDEN=1 cargo test --test operator_builders`), plus the properties that matter
//! checked one by one so a golden update cannot silently drop them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use rzk::operator::crd::{ReclaimPolicy, ZookeeperCluster, ZookeeperClusterSpec};
use rzk::operator::resources::{self, ConfigRole, HASH_ANNOTATION, Member};

fn sample() -> ZookeeperCluster {
    let mut spec = ZookeeperClusterSpec {
        image: "rzk:test".to_string(),
        ..ZookeeperClusterSpec::default()
    };
    spec.config.insert("maxClientCnxns".into(), "100".into());
    spec.storage.size = "2Gi".into();
    spec.storage.reclaim_policy = ReclaimPolicy::Delete;
    spec.pod.labels.insert("team".into(), "platform".into());
    spec.metrics.service_monitor.enabled = true;
    spec.metrics.service_monitor.interval = Some("30s".into());
    let mut zk = ZookeeperCluster::new("zk", spec);
    zk.metadata = ObjectMeta {
        name: Some("zk".into()),
        namespace: Some("data".into()),
        uid: Some("0b7f6c1e-1111-2222-3333-444455556666".into()),
        generation: Some(1),
        ..ObjectMeta::default()
    };
    zk
}

/// The super user's digest the sample cluster's zoo.cfg carries (of the password "pw").
fn digest() -> String {
    resources::super_digest("pw")
}

fn golden(name: &str, value: &impl serde::Serialize) {
    let path = format!(
        "{}/tests/operator/golden/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let yaml = serde_saphyr::to_string(value).expect("yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1)"));
    assert!(
        expected == yaml,
        "{name} differs from {path}:\n--- generated ---\n{yaml}"
    );
}

#[test]
fn golden_objects() {
    let zk = sample();
    let members = resources::desired_members(&zk);
    golden(
        "configmap",
        &resources::config_map(&zk, &members, &digest()),
    );
    golden("headless-service", &resources::headless_service(&zk));
    golden("client-service", &resources::client_service(&zk));
    golden("statefulset", &resources::stateful_set(&zk, 3, &digest()));
    golden("admin-secret", &resources::admin_secret(&zk, "pw"));
    golden("pdb", &resources::pod_disruption_budget(&zk));
    golden("serviceaccount", &resources::service_account(&zk));
    golden("servicemonitor", &resources::service_monitor(&zk));
}

#[test]
fn zoo_cfg_lists_one_server_line_per_member() {
    let zk = sample();
    let cfg = resources::zoo_cfg(&zk, &resources::desired_members(&zk), &digest());
    let servers: Vec<&str> = cfg.lines().filter(|l| l.starts_with("server.")).collect();
    assert_eq!(
        servers,
        [
            "server.1=zk-0.zk-headless.data.svc.cluster.local:2888:3888:participant;0.0.0.0:2181",
            "server.2=zk-1.zk-headless.data.svc.cluster.local:2888:3888:participant;0.0.0.0:2181",
            "server.3=zk-2.zk-headless.data.svc.cluster.local:2888:3888:participant;0.0.0.0:2181",
        ]
    );
    assert!(cfg.contains("\nmaxClientCnxns=100\n"));
    assert!(cfg.contains("\ndataDir=/data\n"));
    assert!(cfg.contains("\nreconfigEnabled=true\n"));
    assert!(cfg.contains("\nstandaloneEnabled=false\n"));
    assert!(cfg.contains("\nmetricsProvider.httpPort=7000\n"));
    assert!(cfg.contains("\nadmin.serverPort=8080\n"));
}

#[test]
fn observers_and_joiners_get_observer_lines() {
    let mut zk = sample();
    zk.spec.observers = 1;
    let members = resources::desired_members(&zk);
    assert_eq!(
        members[3],
        Member {
            id: 4,
            role: ConfigRole::Observer
        }
    );
    let cfg = resources::zoo_cfg(&zk, &members, &digest());
    assert!(cfg.contains(
        "server.4=zk-3.zk-headless.data.svc.cluster.local:2888:3888:observer;0.0.0.0:2181"
    ));
}

#[test]
fn reserved_keys_and_newlines_cannot_break_the_config() {
    let mut zk = sample();
    zk.spec.config.insert("server.9".into(), "evil:1:2".into());
    zk.spec.config.insert("dataDir".into(), "/tmp".into());
    zk.spec
        .config
        .insert("tickTime".into(), "3000\nserver.8=x:1:2".into());
    let cfg = resources::zoo_cfg(&zk, &resources::desired_members(&zk), &digest());
    assert!(!cfg.contains("server.9"));
    assert!(!cfg.lines().any(|l| l.starts_with("server.8")), "{cfg}");
    assert!(cfg.contains("\ndataDir=/data\n"));
    assert!(cfg.contains("\ntickTime=3000 server.8=x:1:2\n"), "{cfg}");
}

#[test]
fn hash_changes_with_template_and_config_but_not_with_membership() {
    let zk = sample();
    let base = resources::desired_hash(&zk, &digest());
    let mut scaled = zk.clone();
    scaled.spec.replicas = 5;
    assert_eq!(
        resources::desired_hash(&scaled, &digest()),
        base,
        "scaling goes through reconfig, not restarts"
    );
    let mut image = zk.clone();
    image.spec.image = "rzk:other".into();
    assert_ne!(resources::desired_hash(&image, &digest()), base);
    let mut cfg = zk.clone();
    cfg.spec.config.insert("tickTime".into(), "3000".into());
    assert_ne!(resources::desired_hash(&cfg, &digest()), base);
    let mut restart = zk.clone();
    restart
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert("rzk.dev/restart".into(), "now".into());
    assert_ne!(
        resources::desired_hash(&restart, &digest()),
        base,
        "restart annotation rolls the pods"
    );
    let sts = resources::stateful_set(&zk, 3, &digest());
    let annotations = sts
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(annotations.get(HASH_ANNOTATION), Some(&base));
}

#[test]
fn statefulset_policies_probes_and_ports() {
    let zk = sample();
    let sts = resources::stateful_set(&zk, 3, &digest());
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("OnDelete")
    );
    assert_eq!(spec.service_name.as_deref(), Some("zk-headless"));
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    assert_eq!(
        c.args.as_ref().unwrap(),
        &["server", "/conf/zoo.cfg", "--myid-from-hostname"]
    );
    let ports: Vec<i32> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [2181, 2888, 3888, 7000, 8080]);
    let ready = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(ready.path.as_deref(), Some("/health/ready"));
    assert_eq!(ready.port, IntOrString::Int(8080));
    let live = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(live.path.as_deref(), Some("/health/live"));
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/data", "/conf"]);
    let pvc = &spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(pvc.metadata.name.as_deref(), Some("data"));
    assert_eq!(
        pvc.spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "2Gi"
    );
}

#[test]
fn services_pdb_and_owner_references() {
    let zk = sample();
    let headless = resources::headless_service(&zk);
    let hs = headless.spec.as_ref().unwrap();
    assert_eq!(hs.cluster_ip.as_deref(), Some("None"));
    assert_eq!(hs.publish_not_ready_addresses, Some(true));
    let client = resources::client_service(&zk);
    assert_ne!(
        client.spec.as_ref().unwrap().publish_not_ready_addresses,
        Some(true)
    );
    let pdb = resources::pod_disruption_budget(&zk);
    assert_eq!(
        pdb.spec.as_ref().unwrap().max_unavailable,
        Some(IntOrString::Int(1))
    );
    let metas = [
        resources::config_map(&zk, &[], &digest()).metadata,
        headless.metadata,
        client.metadata,
        resources::stateful_set(&zk, 3, &digest()).metadata,
        pdb.metadata,
        resources::service_account(&zk).metadata,
        resources::service_monitor(&zk).metadata,
        resources::admin_secret(&zk, "pw").metadata,
    ];
    for meta in metas {
        let owners = meta.owner_references.unwrap();
        assert_eq!(owners.len(), 1, "{:?}", meta.name);
        assert_eq!(owners[0].kind, "ZookeeperCluster");
        assert_eq!(owners[0].uid, "0b7f6c1e-1111-2222-3333-444455556666");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(meta.namespace.as_deref(), Some("data"));
    }
}

#[test]
fn connection_string_lists_every_member() {
    let zk = sample();
    assert_eq!(
        resources::connection_string(&zk, 3),
        "zk-0.zk-headless.data.svc.cluster.local:2181,zk-1.zk-headless.data.svc.cluster.local:2181,zk-2.zk-headless.data.svc.cluster.local:2181"
    );
}

#[test]
fn zoo_cfg_carries_the_super_digest_not_the_password() {
    // ZooKeeper's digest of "super:pw": base64(sha1("super:pw")).
    assert_eq!(
        resources::super_digest("pw"),
        format!("super:{}", {
            use base64::Engine as _;
            use sha1::Digest as _;
            base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(b"super:pw"))
        })
    );
    let mut zk = sample();
    // A user override cannot replace it (the CRD refuses the key; an old CRD let it through).
    zk.spec.config.insert(
        "DigestAuthenticationProvider.superDigest".into(),
        "super:evil".into(),
    );
    zk.spec
        .config
        .insert("superDigest".into(), "super:evil".into());
    let cfg = resources::zoo_cfg(&zk, &resources::desired_members(&zk), &digest());
    let lines: Vec<&str> = cfg.lines().filter(|l| l.contains("uperDigest")).collect();
    assert_eq!(
        lines,
        [format!(
            "DigestAuthenticationProvider.superDigest={}",
            digest()
        )]
    );
    assert!(!cfg.contains("skipACL"));
    assert!(!cfg.contains("=pw\n"));
}

#[test]
fn a_new_password_rolls_the_servers() {
    // Servers read the digest at start: a new password (the Secret deleted and recreated)
    // changes the template hash, so the planner restarts them one by one.
    let zk = sample();
    assert_ne!(
        resources::desired_hash(&zk, &resources::super_digest("pw")),
        resources::desired_hash(&zk, &resources::super_digest("other"))
    );
}

#[test]
fn admin_secret_holds_the_password_and_is_immutable() {
    let zk = sample();
    let secret = resources::admin_secret(&zk, "pw");
    assert_eq!(secret.metadata.name.as_deref(), Some("zk-admin"));
    assert_eq!(secret.immutable, Some(true));
    assert_eq!(resources::admin_password(&secret).as_deref(), Some("pw"));
    let empty = resources::admin_secret(&zk, "");
    assert_eq!(resources::admin_password(&empty), None);
}
