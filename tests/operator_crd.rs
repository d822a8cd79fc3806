//! The ZookeeperCluster CRD: the checked-in YAML equals what `rzk crd` prints, and the CEL
//! rules accept and reject what they should, evaluated offline with kube's `cel` feature
//! (kube-cel, the same Kubernetes CEL library functions as the API server: quantity(), etc.).

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use rzk::operator::crd::{ZookeeperCluster, crd_yaml};
use serde_json::{Value, json};

fn schema() -> Value {
    let crd = ZookeeperCluster::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("json")
}

fn cluster(spec: Value) -> Value {
    json!({
        "apiVersion": "rzk.dev/v1alpha1",
        "kind": "ZookeeperCluster",
        "metadata": {"name": "zk", "namespace": "default"},
        "spec": spec,
    })
}

fn errors(spec: Value, old: Option<Value>) -> Vec<String> {
    let old = old.map(cluster);
    match Validator::new().validate(&schema(), &cluster(spec), old.as_ref()) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn checked_in_crd_matches_generated() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/zookeepercluster.yaml");
    let generated = crd_yaml().expect("yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &generated).expect("write");
    }
    let on_disk = std::fs::read_to_string(path).expect("read crds/zookeepercluster.yaml");
    assert!(
        on_disk == generated,
        "crds/zookeepercluster.yaml is stale: run `rzk crd > crds/zookeepercluster.yaml` (or UPDATE_GOLDEN=1 cargo test --test operator_crd)"
    );
}

#[test]
fn crd_names_scope_subresources_and_columns() {
    let crd = ZookeeperCluster::crd();
    assert_eq!(crd.spec.group, "rzk.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["zk".to_string()]));
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    let sub = v.subresources.as_ref().expect("subresources");
    assert!(sub.status.is_some());
    assert!(sub.scale.is_some());
    let cols: Vec<&str> = v
        .additional_printer_columns
        .as_ref()
        .expect("columns")
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Replicas", "Ready", "Leader", "Phase", "Age"]);
    // The YAML parses back into the same CRD.
    let back: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_saphyr::from_str(&crd_yaml().unwrap()).expect("parse back");
    assert_eq!(back, crd);
}

#[test]
fn defaults_and_odd_replicas_are_valid() {
    assert_eq!(errors(json!({}), None), Vec::<String>::new());
    for n in [1, 3, 5, 7] {
        assert!(
            errors(json!({"replicas": n}), None).is_empty(),
            "replicas {n}"
        );
    }
}

#[test]
fn even_replicas_rejected_unless_allowed() {
    let errs = errors(json!({"replicas": 4}), None);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("replicas must be odd"), "{errs:?}");
    assert!(errors(json!({"replicas": 4, "allowEvenReplicas": true}), None).is_empty());
    assert!(!errors(json!({"replicas": 2, "allowEvenReplicas": false}), None).is_empty());
}

#[test]
fn too_many_servers_rejected() {
    let errs = errors(json!({"replicas": 201, "observers": 60}), None);
    assert!(
        errs.iter().any(|e| e.contains("must not exceed 255")),
        "{errs:?}"
    );
    assert!(errors(json!({"replicas": 201, "observers": 54}), None).is_empty());
}

#[test]
fn reserved_config_keys_rejected() {
    for key in [
        "server.1",
        "dataDir",
        "clientPort",
        "group.1",
        "weight.2",
        "reconfigEnabled",
        // The operator's super user digest: overriding it would lock reconfig out.
        "DigestAuthenticationProvider.superDigest",
        "superDigest",
    ] {
        let errs = errors(json!({"config": {key: "x"}}), None);
        assert!(
            errs.iter().any(|e| e.contains("config may not set")),
            "{key}: {errs:?}"
        );
    }
    assert!(
        errors(
            json!({"config": {"tickTime": "3000", "maxClientCnxns": "100"}}),
            None
        )
        .is_empty()
    );
}

#[test]
fn storage_size_must_be_quantity_and_may_not_shrink() {
    let errs = errors(json!({"storage": {"size": "lots"}}), None);
    assert!(
        errs.iter().any(|e| e.contains("Kubernetes quantity")),
        "{errs:?}"
    );

    let grow = errors(
        json!({"storage": {"size": "20Gi"}}),
        Some(json!({"storage": {"size": "10Gi"}})),
    );
    assert!(grow.is_empty(), "{grow:?}");
    let same_in_other_units = errors(
        json!({"storage": {"size": "1Gi"}}),
        Some(json!({"storage": {"size": "1024Mi"}})),
    );
    assert!(same_in_other_units.is_empty(), "{same_in_other_units:?}");
    let shrink = errors(
        json!({"storage": {"size": "5Gi"}}),
        Some(json!({"storage": {"size": "10Gi"}})),
    );
    assert!(
        shrink.iter().any(|e| e.contains("may not shrink")),
        "{shrink:?}"
    );
    let shrink_units = errors(
        json!({"storage": {"size": "1000Mi"}}),
        Some(json!({"storage": {"size": "1Gi"}})),
    );
    assert!(
        shrink_units.iter().any(|e| e.contains("may not shrink")),
        "{shrink_units:?}"
    );
}

#[test]
fn storage_class_is_immutable() {
    let errs = errors(
        json!({"storage": {"storageClassName": "fast"}}),
        Some(json!({"storage": {"storageClassName": "slow"}})),
    );
    assert!(errs.iter().any(|e| e.contains("immutable")), "{errs:?}");
    assert!(
        errors(
            json!({"storage": {"storageClassName": "fast"}}),
            Some(json!({"storage": {"storageClassName": "fast"}})),
        )
        .is_empty()
    );
}

#[test]
fn ports_must_be_distinct() {
    let errs = errors(json!({"ports": {"metrics": 8080}}), None);
    assert!(errs.iter().any(|e| e.contains("distinct")), "{errs:?}");
    assert!(errors(json!({"ports": {"metrics": 9141}}), None).is_empty());
}

#[test]
fn empty_image_rejected() {
    let errs = errors(json!({"image": ""}), None);
    assert!(
        errs.iter().any(|e| e.contains("image must not be empty")),
        "{errs:?}"
    );
}

#[test]
fn example_manifest_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/examples/zookeepercluster.yaml"
    );
    let text = std::fs::read_to_string(path).expect("example");
    let zk: ZookeeperCluster =
        serde_saphyr::from_str(&text).expect("example parses as a ZookeeperCluster");
    let value = serde_json::to_value(&zk).unwrap();
    let result = Validator::new().validate(&schema(), &value, None);
    assert!(result.is_ok(), "{result:?}");
}
