//! Packaging: the Helm chart lints, renders, and its rendering equals `manifests/`; the chart
//! ships the same CRD as `crds/`; the RBAC covers what the operator calls. Needs a `helm`
//! binary: `$RZK_HELM`, `.tools/bin/helm` (installed by `tests/operator/install-helm.sh`) or
//! `helm` on PATH. Without one these tests print a notice and pass without checking: CI runs the
//! install script first, so there they always run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("RZK_HELM").map(PathBuf::from),
        Some(root().join(".tools/bin/helm")),
        Some(PathBuf::from("helm")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn run_helm(helm: &Path, args: &[&str]) -> String {
    let out = Command::new(helm)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

macro_rules! require_helm {
    () => {
        match helm() {
            Some(h) => h,
            None => {
                eprintln!("SKIPPED: no helm binary (run tests/operator/install-helm.sh)");
                if std::env::var_os("RZK_REQUIRE_HELM").is_some() {
                    panic!("RZK_REQUIRE_HELM is set but no helm binary was found");
                }
                return;
            }
        }
    };
}

const CHART: &str = "charts/rzk-operator";

#[test]
fn chart_lints() {
    let helm = require_helm!();
    run_helm(&helm, &["lint", CHART, "--strict"]);
    run_helm(
        &helm,
        &[
            "lint",
            CHART,
            "--strict",
            "--set",
            "metrics.serviceMonitor.enabled=true,watchNamespace=zk,leaderElection.enabled=false",
        ],
    );
}

#[test]
fn manifests_equal_helm_template() {
    let helm = require_helm!();
    let rendered = run_helm(
        &helm,
        &[
            "template",
            "rzk-operator",
            CHART,
            "--namespace",
            "rzk-system",
        ],
    );
    let path = root().join("manifests/rzk-operator.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).expect("write");
    }
    let on_disk = std::fs::read_to_string(&path).expect("manifests/rzk-operator.yaml");
    assert!(
        on_disk == rendered,
        "manifests/rzk-operator.yaml differs from `helm template rzk-operator {CHART} --namespace rzk-system`; regenerate it"
    );
}

#[test]
fn chart_crd_equals_generated_crd() {
    let chart_crd = std::fs::read_to_string(root().join(CHART).join("crds/zookeepercluster.yaml"))
        .expect("chart crd");
    let crd = rzk::operator::crd::crd_yaml().expect("crd");
    assert!(
        chart_crd == crd,
        "charts/rzk-operator/crds/zookeepercluster.yaml is stale: copy crds/zookeepercluster.yaml"
    );
    // And helm really ships it.
    let helm = require_helm!();
    let rendered = run_helm(
        &helm,
        &["template", "rzk-operator", CHART, "--include-crds"],
    );
    assert!(rendered.contains("name: zookeeperclusters.rzk.dev"));
}

/// Parse helm's multi-document output into JSON values.
fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---")
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .map(|d| serde_saphyr::from_str::<serde_json::Value>(d).expect("yaml document"))
        .collect()
}

#[test]
fn rendered_objects_have_what_the_operator_needs() {
    let helm = require_helm!();
    let docs = documents(&run_helm(
        &helm,
        &[
            "template",
            "rzk-operator",
            CHART,
            "--namespace",
            "rzk-system",
        ],
    ));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deploy["spec"]["replicas"], 2);
    let args = deploy["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("operator") && args.contains("--leader-election"),
        "{args}"
    );

    // The ClusterRole grants each API call the reconciler makes, and no wildcard.
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let rules = role["rules"].as_array().unwrap();
    let allows = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r["apiGroups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == group)
                && r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == resource)
                && r["verbs"].as_array().unwrap().iter().any(|v| v == verb)
        })
    };
    assert!(!role.to_string().contains("\"*\""), "no wildcards");
    for (group, resource, verbs) in [
        (
            "rzk.dev",
            "zookeeperclusters",
            &["get", "list", "watch", "patch"][..],
        ),
        ("rzk.dev", "zookeeperclusters/status", &["patch"][..]),
        (
            "apps",
            "statefulsets",
            &["get", "list", "watch", "patch"][..],
        ),
        ("", "configmaps", &["list", "watch", "patch"][..]),
        ("", "services", &["list", "watch", "patch"][..]),
        ("", "serviceaccounts", &["patch"][..]),
        (
            "policy",
            "poddisruptionbudgets",
            &["list", "watch", "patch"][..],
        ),
        ("", "pods", &["list", "watch", "delete"][..]),
        (
            "",
            "persistentvolumeclaims",
            &["list", "patch", "delete"][..],
        ),
        ("events.k8s.io", "events", &["create"][..]),
        // The admin Secret (super password for reconfig): read, and created once.
        ("", "secrets", &["get", "create"][..]),
    ] {
        for verb in verbs {
            assert!(
                allows(group, resource, verb),
                "{verb} {group}/{resource} not granted"
            );
        }
    }
    // Least privilege on Secrets: only the named admin Secret is read; nothing enumerates,
    // watches, rewrites or deletes Secrets (garbage collection deletes it with its cluster).
    for verb in [
        "list",
        "watch",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        assert!(
            !allows("", "secrets", verb),
            "{verb} secrets must not be granted"
        );
    }
    let lease_role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    assert!(lease_role.to_string().contains("leases"));
}

#[test]
fn values_switch_features() {
    let helm = require_helm!();
    let docs = documents(&run_helm(
        &helm,
        &[
            "template",
            "r",
            CHART,
            "--namespace",
            "ops",
            "--set",
            "metrics.serviceMonitor.enabled=true,leaderElection.enabled=false,watchNamespace=zk,replicaCount=1",
        ],
    ));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"ServiceMonitor"), "{kinds:?}");
    assert!(
        !kinds.contains(&"ClusterRole"),
        "namespaced install uses a Role: {kinds:?}"
    );
    let roles: Vec<&serde_json::Value> = docs.iter().filter(|d| d["kind"] == "Role").collect();
    assert_eq!(
        roles.len(),
        1,
        "no leader-election Role without leader election"
    );
    assert_eq!(roles[0]["metadata"]["namespace"], "zk");
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let args = deploy["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        !args.contains("--leader-election") && args.contains("--namespace=zk"),
        "{args}"
    );
}

#[test]
fn e2e_scripts_parse() {
    let bash = Command::new("bash")
        .arg("-n")
        .arg(root().join("e2e/run.sh"))
        .status()
        .expect("bash");
    assert!(bash.success(), "e2e/run.sh has a syntax error");
    let tmp = tempfile::tempdir().expect("tmp");
    let py = Command::new("python3")
        .args(["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())"])
        .arg(root().join("e2e/writer.py"))
        .current_dir(tmp.path())
        .status();
    if let Ok(status) = py {
        assert!(status.success(), "e2e/writer.py does not parse");
    }
}
