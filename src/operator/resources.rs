//! Pure builders of the Kubernetes objects one `ZookeeperCluster` owns: zoo.cfg ConfigMap,
//! headless and client Services, StatefulSet, PodDisruptionBudget, ServiceAccount, the
//! admin Secret and the optional ServiceMonitor.
//!
//! No API calls, no clocks and no randomness: everything is a function of the cluster
//! object and what the caller passes in (the membership, the super user's digest, the
//! admin password), so the output can be golden-tested and applied by the reconciler.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, Secret, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use sha1::{Digest, Sha1};

use super::crd::{RESTART_ANNOTATION, ZookeeperCluster};

/// Pod-template annotation carrying the hash of everything whose change needs a restart.
pub const HASH_ANNOTATION: &str = "rzk.dev/config-hash";
/// Where zoo.cfg is mounted in the server container.
pub const CONFIG_DIR: &str = "/conf";
/// The server's data directory (the PVC).
pub const DATA_DIR: &str = "/data";
/// Name of the PVC template (PVCs are `data-<cluster>-<ordinal>`).
pub const DATA_VOLUME: &str = "data";
/// The container's name in the server pods.
pub const CONTAINER: &str = "rzk";
/// ZooKeeper's super user: the only identity allowed to `reconfig` (`/zookeeper/config` is
/// world-readable and writable by nobody else).
pub const SUPER_USER: &str = "super";
/// Key of the super user's password in the admin Secret (`<cluster>-admin`).
pub const ADMIN_PASSWORD_KEY: &str = "password";
/// zoo.cfg key of the super user's digest (ZooKeeper's
/// `zookeeper.DigestAuthenticationProvider.superDigest`; Apache ZooKeeper turns unknown zoo.cfg
/// keys into `zookeeper.`-prefixed system properties, rzk reads the key itself).
pub const SUPER_DIGEST_KEY: &str = "DigestAuthenticationProvider.superDigest";

/// A member's role in the ensemble configuration (`server.N=...:<role>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigRole {
    Participant,
    Observer,
}

impl ConfigRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigRole::Participant => "participant",
            ConfigRole::Observer => "observer",
        }
    }
}

/// One entry of the ensemble configuration: server id (= ordinal + 1) and role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub id: u32,
    pub role: ConfigRole,
}

/// The membership the spec asks for: participants 1..=replicas, then observers.
pub fn desired_members(zk: &ZookeeperCluster) -> Vec<Member> {
    let participants = zk.spec.replicas.max(0) as u32;
    let observers = zk.spec.observers.max(0) as u32;
    (1..=participants + observers)
        .map(|id| Member {
            id,
            role: if id <= participants {
                ConfigRole::Participant
            } else {
                ConfigRole::Observer
            },
        })
        .collect()
}

/// Names of the objects, derived from the cluster name.
pub struct Names;

impl Names {
    pub fn headless(cluster: &str) -> String {
        format!("{cluster}-headless")
    }
    pub fn client(cluster: &str) -> String {
        format!("{cluster}-client")
    }
    pub fn config(cluster: &str) -> String {
        format!("{cluster}-config")
    }
    /// The Secret holding the super user's password.
    pub fn admin_secret(cluster: &str) -> String {
        format!("{cluster}-admin")
    }
    pub fn pod(cluster: &str, ordinal: u32) -> String {
        format!("{cluster}-{ordinal}")
    }
    pub fn pvc(cluster: &str, ordinal: u32) -> String {
        format!("{DATA_VOLUME}-{cluster}-{ordinal}")
    }
}

/// Fully qualified DNS name of one server pod (through the headless Service).
pub fn pod_fqdn(zk: &ZookeeperCluster, ordinal: u32) -> String {
    let name = zk.name_any();
    format!(
        "{}.{}.{}.svc.cluster.local",
        Names::pod(&name, ordinal),
        Names::headless(&name),
        namespace(zk)
    )
}

fn namespace(zk: &ZookeeperCluster) -> String {
    zk.namespace().unwrap_or_else(|| "default".to_string())
}

/// Labels that select the server pods of one cluster (stable: used in selectors).
pub fn selector_labels(zk: &ZookeeperCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "rzk".to_string()),
        ("app.kubernetes.io/instance".to_string(), zk.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            "server".to_string(),
        ),
    ])
}

fn object_labels(zk: &ZookeeperCluster) -> BTreeMap<String, String> {
    let mut labels = selector_labels(zk);
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "rzk-operator".to_string(),
    );
    labels
}

fn owner_reference(zk: &ZookeeperCluster) -> Vec<OwnerReference> {
    // Without a uid (an object never stored by the API server) there is nothing to own by.
    zk.controller_owner_ref(&()).into_iter().collect()
}

fn meta(zk: &ZookeeperCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace(zk)),
        labels: Some(object_labels(zk)),
        owner_references: Some(owner_reference(zk)),
        ..ObjectMeta::default()
    }
}

/// The super user's digest for `password`: `super:base64(sha1("super:<password>"))`, the value
/// of [`SUPER_DIGEST_KEY`]. A one-way hash, so zoo.cfg (a ConfigMap) may carry it, as
/// ZooKeeper's own documentation does; the password itself only lives in the admin Secret.
pub fn super_digest(password: &str) -> String {
    crate::tree::acl::digest(&format!("{SUPER_USER}:{password}"))
}

/// zoo.cfg keys set by the operator before user overrides (ZooKeeper's own names).
fn base_config(zk: &ZookeeperCluster) -> BTreeMap<String, String> {
    let ports = &zk.spec.ports;
    let mut cfg: BTreeMap<String, String> = [
        ("tickTime", "2000".to_string()),
        ("initLimit", "10".to_string()),
        ("syncLimit", "5".to_string()),
        ("dataDir", DATA_DIR.to_string()),
        ("clientPort", ports.client.to_string()),
        // Membership changes go through reconfig; a one-member ensemble must stay in
        // quorum mode so it can grow without a restart.
        ("standaloneEnabled", "false".to_string()),
        ("reconfigEnabled", "true".to_string()),
        // Peers bind on all addresses: the pod IP is not known when zoo.cfg is written.
        ("quorumListenOnAllIPs", "true".to_string()),
        // ZooKeeper's default (purge off) fills disks; keep 3 snapshots, purge hourly.
        ("autopurge.snapRetainCount", "3".to_string()),
        ("autopurge.purgeInterval", "1".to_string()),
        (
            "4lw.commands.whitelist",
            "srvr,stat,ruok,mntr,conf,isro,envi,cons,wchs,dirs".to_string(),
        ),
        ("admin.enableServer", "true".to_string()),
        ("admin.serverPort", ports.admin.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if zk.spec.metrics.enabled {
        cfg.insert(
            "metricsProvider.className".to_string(),
            "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider".to_string(),
        );
        cfg.insert(
            "metricsProvider.httpPort".to_string(),
            ports.metrics.to_string(),
        );
    }
    cfg
}

/// The part of zoo.cfg that does not depend on membership: defaults, user overrides and the
/// super user's digest (see [`super_digest`]; the operator authenticates as the super user to
/// reconfig). Changing it needs a rolling restart; changing membership goes through reconfig
/// instead.
pub fn static_zoo_cfg(zk: &ZookeeperCluster, super_digest: &str) -> String {
    let mut cfg = base_config(zk);
    for (key, value) in &zk.spec.config {
        // The CRD's CEL rule rejects these; an object that slipped past (old CRD) is not
        // allowed to break membership (or lock the operator out) either.
        if is_reserved_key(key) {
            continue;
        }
        cfg.insert(key.clone(), value.clone());
    }
    cfg.insert(SUPER_DIGEST_KEY.to_string(), super_digest.to_string());
    let mut out = String::from("# Generated by rzk-operator; edits are overwritten.\n");
    for (key, value) in cfg {
        let _ = writeln!(out, "{key}={}", sanitize_value(&value));
    }
    out
}

fn is_reserved_key(key: &str) -> bool {
    super::crd::RESERVED_CONFIG_KEYS.contains(&key)
        || key.starts_with("server.")
        || key.starts_with("group.")
        || key.starts_with("weight.")
}

/// A value must stay on its own line, or it could inject other keys.
fn sanitize_value(value: &str) -> String {
    value.replace(['\n', '\r'], " ")
}

/// One `server.N` line in ZooKeeper's dynamic-config syntax.
pub fn server_line(zk: &ZookeeperCluster, member: Member) -> String {
    let ports = &zk.spec.ports;
    format!(
        "server.{}={}:{}:{}:{};0.0.0.0:{}",
        member.id,
        pod_fqdn(zk, member.id - 1),
        ports.quorum,
        ports.election,
        member.role.as_str(),
        ports.client
    )
}

/// The full zoo.cfg for the given membership.
pub fn zoo_cfg(zk: &ZookeeperCluster, members: &[Member], super_digest: &str) -> String {
    let mut out = static_zoo_cfg(zk, super_digest);
    let mut members = members.to_vec();
    members.sort();
    for member in members {
        out.push_str(&server_line(zk, member));
        out.push('\n');
    }
    out
}

/// ConfigMap holding `zoo.cfg` (with the super user's digest, not the password).
pub fn config_map(zk: &ZookeeperCluster, members: &[Member], super_digest: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(zk, Names::config(&zk.name_any())),
        data: Some(BTreeMap::from([(
            "zoo.cfg".to_string(),
            zoo_cfg(zk, members, super_digest),
        )])),
        ..ConfigMap::default()
    }
}

/// The admin Secret `<cluster>-admin`: the super user's password under
/// [`ADMIN_PASSWORD_KEY`]. The reconciler creates it once with a random password and never
/// applies it again; it is immutable, owned by the cluster (deleted with it), and deleting
/// it by hand rotates the password (a new one is created, and the digest change rolls the
/// servers).
pub fn admin_secret(zk: &ZookeeperCluster, password: &str) -> Secret {
    Secret {
        metadata: meta(zk, Names::admin_secret(&zk.name_any())),
        type_: Some("Opaque".to_string()),
        immutable: Some(true),
        data: Some(BTreeMap::from([(
            ADMIN_PASSWORD_KEY.to_string(),
            ByteString(password.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// The password stored in an admin Secret, if it holds a usable one.
pub fn admin_password(secret: &Secret) -> Option<String> {
    let bytes = &secret.data.as_ref()?.get(ADMIN_PASSWORD_KEY)?.0;
    let password = String::from_utf8(bytes.clone()).ok()?;
    (!password.is_empty()).then_some(password)
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        ..ServicePort::default()
    }
}

/// Headless Service giving every pod a DNS name, published before the pod is ready:
/// peers must find each other to form the quorum that makes them ready.
pub fn headless_service(zk: &ZookeeperCluster) -> Service {
    let ports = &zk.spec.ports;
    Service {
        metadata: meta(zk, Names::headless(&zk.name_any())),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(zk)),
            ports: Some(vec![
                service_port("client", ports.client),
                service_port("quorum", ports.quorum),
                service_port("election", ports.election),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Client Service: only ready (in-quorum, synced) servers receive clients.
pub fn client_service(zk: &ZookeeperCluster) -> Service {
    let ports = &zk.spec.ports;
    let mut service_ports = vec![service_port("client", ports.client)];
    if zk.spec.metrics.enabled {
        service_ports.push(service_port("metrics", ports.metrics));
    }
    Service {
        metadata: meta(zk, Names::client(&zk.name_any())),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector_labels(zk)),
            ports: Some(service_ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// ServiceAccount of the server pods (no API access needed; the token is not mounted).
pub fn service_account(zk: &ZookeeperCluster) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(zk, zk.name_any()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// At most one server voluntarily disrupted at a time (node drains, evictions).
pub fn pod_disruption_budget(zk: &ZookeeperCluster) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(zk, zk.name_any()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(zk)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: port,
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    }
}

fn http_probe(path: &str, port: i32, period: i32, failures: i32, initial: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::Int(port),
            scheme: Some("HTTP".to_string()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        success_threshold: Some(1),
        ..Probe::default()
    }
}

/// The server pod template without the hash annotation.
fn pod_template_unhashed(zk: &ZookeeperCluster) -> PodTemplateSpec {
    let spec = &zk.spec;
    let ports = &spec.ports;
    let name = zk.name_any();

    let mut labels = spec.pod.labels.clone();
    labels.extend(object_labels(zk));
    let mut annotations = spec.pod.annotations.clone();
    if let Some(token) = zk.annotations().get(RESTART_ANNOTATION) {
        annotations.insert(RESTART_ANNOTATION.to_string(), token.clone());
    }

    let container = Container {
        name: CONTAINER.to_string(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        args: Some(vec![
            "server".to_string(),
            format!("{CONFIG_DIR}/zoo.cfg"),
            "--myid-from-hostname".to_string(),
        ]),
        ports: Some(vec![
            container_port("client", ports.client),
            container_port("quorum", ports.quorum),
            container_port("election", ports.election),
            container_port("metrics", ports.metrics),
            container_port("admin", ports.admin),
        ]),
        readiness_probe: Some(http_probe("/health/ready", ports.admin, 5, 3, 5)),
        liveness_probe: Some(http_probe("/health/live", ports.admin, 10, 6, 10)),
        resources: spec.resources.clone(),
        volume_mounts: Some(vec![
            VolumeMount {
                name: DATA_VOLUME.to_string(),
                mount_path: DATA_DIR.to_string(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "config".to_string(),
                mount_path: CONFIG_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        security_context: Some(spec.pod.container_security_context.clone().unwrap_or(
            SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".to_string()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            },
        )),
        ..Container::default()
    };

    // Spread members over nodes unless the user said otherwise: losing one node should
    // cost at most one member.
    let affinity = spec.pod.affinity.clone().or_else(|| {
        Some(k8s_openapi::api::core::v1::Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            topology_key: "kubernetes.io/hostname".to_string(),
                            label_selector: Some(LabelSelector {
                                match_labels: Some(selector_labels(zk)),
                                ..LabelSelector::default()
                            }),
                            ..PodAffinityTerm::default()
                        },
                    },
                ]),
                ..PodAntiAffinity::default()
            }),
            ..Default::default()
        })
    });

    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(name.clone()),
            automount_service_account_token: Some(false),
            containers: vec![container],
            volumes: Some(vec![Volume {
                name: "config".to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: Names::config(&name),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            affinity,
            tolerations: (!spec.pod.tolerations.is_empty()).then(|| spec.pod.tolerations.clone()),
            node_selector: (!spec.pod.node_selector.is_empty())
                .then(|| spec.pod.node_selector.clone()),
            topology_spread_constraints: (!spec.pod.topology_spread_constraints.is_empty())
                .then(|| spec.pod.topology_spread_constraints.clone()),
            priority_class_name: spec.pod.priority_class_name.clone(),
            security_context: Some(spec.pod.security_context.clone().unwrap_or(
                PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(1000),
                    run_as_group: Some(1000),
                    fs_group: Some(1000),
                    ..PodSecurityContext::default()
                },
            )),
            termination_grace_period_seconds: Some(
                spec.pod.termination_grace_period_seconds.unwrap_or(60),
            ),
            ..PodSpec::default()
        }),
    }
}

/// Hash of everything that needs a restart to take effect: the pod template and the static
/// part of zoo.cfg (the super user's digest included: servers read it at start). Membership
/// (`server.N` lines) is left out: it changes through reconfig.
pub fn desired_hash(zk: &ZookeeperCluster, super_digest: &str) -> String {
    let template = pod_template_unhashed(zk);
    let mut hasher = Sha1::new();
    // serde_json of k8s-openapi types is deterministic (struct field order, BTreeMaps).
    hasher.update(serde_json::to_vec(&template).unwrap_or_default());
    hasher.update(b"\0");
    hasher.update(static_zoo_cfg(zk, super_digest).as_bytes());
    let digest = hasher.finalize();
    digest.iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The server pod template, with the hash annotation the rollout planner compares.
pub fn pod_template(zk: &ZookeeperCluster, super_digest: &str) -> PodTemplateSpec {
    let mut template = pod_template_unhashed(zk);
    let hash = desired_hash(zk, super_digest);
    if let Some(meta) = template.metadata.as_mut() {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_ANNOTATION.to_string(), hash);
    }
    template
}

/// The StatefulSet with `replicas` pods. Pods are created in parallel (a member needs its
/// peers to become ready) and never replaced by the StatefulSet controller (OnDelete): the
/// operator picks which pod restarts.
pub fn stateful_set(zk: &ZookeeperCluster, replicas: u32, super_digest: &str) -> StatefulSet {
    let name = zk.name_any();
    let storage = &zk.spec.storage;
    StatefulSet {
        metadata: meta(zk, name.clone()),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas as i32),
            service_name: Some(Names::headless(&name)),
            pod_management_policy: Some("Parallel".to_string()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_string()),
                ..StatefulSetUpdateStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(zk)),
                ..LabelSelector::default()
            },
            template: pod_template(zk, super_digest),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(DATA_VOLUME.to_string()),
                    labels: Some(selector_labels(zk)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                    storage_class_name: storage.storage_class_name.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(storage.size.clone()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// prometheus-operator ServiceMonitor scraping the client Service's `metrics` port.
pub fn service_monitor(zk: &ZookeeperCluster) -> DynamicObject {
    let sm = &zk.spec.metrics.service_monitor;
    let mut labels = object_labels(zk);
    labels.extend(sm.labels.clone());
    let mut endpoint = serde_json::json!({ "port": "metrics", "path": "/metrics" });
    if let Some(interval) = &sm.interval {
        endpoint["interval"] = serde_json::Value::String(interval.clone());
    }
    let mut metadata = meta(zk, zk.name_any());
    metadata.labels = Some(labels);
    DynamicObject {
        types: Some(kube::api::TypeMeta {
            api_version: "monitoring.coreos.com/v1".to_string(),
            kind: "ServiceMonitor".to_string(),
        }),
        metadata,
        data: serde_json::json!({
            "spec": {
                "selector": { "matchLabels": selector_labels(zk) },
                "namespaceSelector": { "matchNames": [namespace(zk)] },
                "endpoints": [endpoint],
            }
        }),
    }
}

/// Client connection string listing every member (what clients put in their connect string).
pub fn connection_string(zk: &ZookeeperCluster, members: u32) -> String {
    (0..members)
        .map(|ordinal| format!("{}:{}", pod_fqdn(zk, ordinal), zk.spec.ports.client))
        .collect::<Vec<_>>()
        .join(",")
}
