//! The `ZookeeperCluster` custom resource (group `rzk.dev`, version `v1alpha1`).
//!
//! Pure types only: the spec users write, the status the operator reports, and the CEL
//! rules the API server enforces for what an OpenAPI schema alone cannot say. No IO here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, PodSecurityContext, ResourceRequirements, SecurityContext, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

/// API group of every rzk resource.
pub const GROUP: &str = "rzk.dev";
/// Annotation users set (to any new value) to request a rolling restart without other changes.
pub const RESTART_ANNOTATION: &str = "rzk.dev/restart";

/// zoo.cfg keys the operator owns; overriding them would break membership, storage, probes,
/// or lock the operator out of `reconfig` (the super user's digest).
pub const RESERVED_CONFIG_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "dynamicConfigFile",
    "standaloneEnabled",
    "reconfigEnabled",
    "metricsProvider.httpPort",
    "admin.serverPort",
    "DigestAuthenticationProvider.superDigest",
    "superDigest",
];

/// A ZooKeeper-compatible ensemble of `rzk server` pods, kept available through every change.
// clippy mistakes the repeated `type_ = ...` inside separate printcolumn(...) entries for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "rzk.dev",
    version = "v1alpha1",
    kind = "ZookeeperCluster",
    namespaced,
    status = "ZookeeperClusterStatus",
    shortname = "zk",
    derive = "PartialEq",
    doc = "A ZooKeeper-compatible ensemble of rzk servers",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.replicas % 2 == 1 || (has(self.allowEvenReplicas) && self.allowEvenReplicas)"
).message("replicas must be odd (an even ensemble tolerates no more failures than one member less); set allowEvenReplicas: true to override"))]
#[x_kube(validation = Rule::new(
    "self.replicas + (has(self.observers) ? self.observers : 0) <= 255"
).message("replicas + observers must not exceed 255 (server ids are 1..255)"))]
#[serde(rename_all = "camelCase")]
pub struct ZookeeperClusterSpec {
    /// Number of voting members (participants). Odd unless `allowEvenReplicas` is set.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 255))]
    pub replicas: i32,

    /// Allow an even number of voting members.
    #[serde(default)]
    pub allow_even_replicas: bool,

    /// Number of non-voting observers, placed after the participants (ids replicas+1 ...).
    #[serde(default)]
    #[schemars(range(min = 0, max = 254))]
    pub observers: i32,

    /// Container image running `rzk server`.
    #[serde(default = "default_image")]
    #[x_kube(validation = Rule::new("self != ''").message("image must not be empty"))]
    pub image: String,

    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Compute resources of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Persistent storage of each member (its data directory).
    #[serde(default)]
    pub storage: StorageSpec,

    /// zoo.cfg keys added to (or overriding) the operator's defaults. Keys that decide
    /// membership, storage, the probe/metrics ports or the super user's digest are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new(
        "self.all(k, !k.startsWith('server.') && !k.startsWith('group.') && !k.startsWith('weight.') && !(k in ['dataDir', 'dataLogDir', 'clientPort', 'dynamicConfigFile', 'standaloneEnabled', 'reconfigEnabled', 'metricsProvider.httpPort', 'admin.serverPort', 'DigestAuthenticationProvider.superDigest', 'superDigest']))"
    ).message("config may not set server.N, group.N, weight.N or the operator-managed keys dataDir, dataLogDir, clientPort, dynamicConfigFile, standaloneEnabled, reconfigEnabled, metricsProvider.httpPort, admin.serverPort, DigestAuthenticationProvider.superDigest, superDigest"))]
    pub config: BTreeMap<String, String>,

    /// Ports of each server.
    #[serde(default)]
    pub ports: PortsSpec,

    /// Overrides applied to every server pod.
    #[serde(default)]
    pub pod: PodOverrides,

    /// Prometheus metrics of the servers.
    #[serde(default)]
    pub metrics: MetricsSpec,

    /// Stop reconciling this cluster (nothing is created, changed or deleted while set).
    #[serde(default)]
    pub paused: bool,
}

fn default_replicas() -> i32 {
    3
}

fn default_image() -> String {
    format!("rzk:{}", env!("CARGO_PKG_VERSION"))
}

impl Default for ZookeeperClusterSpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            allow_even_replicas: false,
            observers: 0,
            image: default_image(),
            image_pull_policy: None,
            resources: None,
            storage: StorageSpec::default(),
            config: BTreeMap::new(),
            ports: PortsSpec::default(),
            pod: PodOverrides::default(),
            metrics: MetricsSpec::default(),
            paused: false,
        }
    }
}

/// Kubernetes image pull policy.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// What happens to a member's PersistentVolumeClaim when the member is removed.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum ReclaimPolicy {
    /// Keep the PVC (the data survives scale-down and cluster deletion).
    #[default]
    Retain,
    /// Delete the PVC when its member is scaled away or the cluster is deleted.
    Delete,
}

/// Storage of each member.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each member's volume (a Kubernetes quantity); it may grow but never shrink.
    #[serde(default = "default_storage_size")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("size must be a Kubernetes quantity such as 10Gi"))]
    #[x_kube(validation = Rule::new(
        "!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0"
    ).message("storage size may not shrink"))]
    pub size: String,

    /// StorageClass of the volumes; the cluster default when unset. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storageClassName is immutable"))]
    pub storage_class_name: Option<String>,

    /// Retain (default) or Delete the PVCs of removed members and of a deleted cluster.
    #[serde(default)]
    pub reclaim_policy: ReclaimPolicy,
}

fn default_storage_size() -> String {
    "10Gi".to_string()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
            reclaim_policy: ReclaimPolicy::Retain,
        }
    }
}

/// Ports each server listens on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new(
    "[self.client, self.quorum, self.election, self.metrics, self.admin].all(p, [self.client, self.quorum, self.election, self.metrics, self.admin].filter(q, q == p).size() == 1)"
).message("ports must be distinct"))]
#[serde(rename_all = "camelCase")]
pub struct PortsSpec {
    /// Client port (ZooKeeper protocol and four-letter words).
    #[serde(default = "default_client_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub client: i32,
    /// Quorum (follower to leader) port.
    #[serde(default = "default_quorum_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub quorum: i32,
    /// Leader election port.
    #[serde(default = "default_election_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub election: i32,
    /// Prometheus metrics port (`/metrics`).
    #[serde(default = "default_metrics_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub metrics: i32,
    /// Admin HTTP port (`/commands/*`, `/health/ready`, `/health/live`).
    #[serde(default = "default_admin_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub admin: i32,
}

fn default_client_port() -> i32 {
    2181
}
fn default_quorum_port() -> i32 {
    2888
}
fn default_election_port() -> i32 {
    3888
}
fn default_metrics_port() -> i32 {
    7000
}
fn default_admin_port() -> i32 {
    8080
}

impl Default for PortsSpec {
    fn default() -> Self {
        Self {
            client: default_client_port(),
            quorum: default_quorum_port(),
            election: default_election_port(),
            metrics: default_metrics_port(),
            admin: default_admin_port(),
        }
    }
}

/// Overrides applied to every server pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra pod labels (the operator's own `app.kubernetes.io/*` labels win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Pod-level security context. Defaults to running as non-root uid/gid 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Security context of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Grace period for a server to leave cleanly (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
}

/// Prometheus metrics of the servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Serve `/metrics` on the metrics port and expose it on the client Service.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Create a prometheus-operator ServiceMonitor for the servers.
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
}

fn default_true() -> bool {
    true
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            service_monitor: ServiceMonitorSpec::default(),
        }
    }
}

/// A prometheus-operator ServiceMonitor for the servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Extra labels on the ServiceMonitor (to match a Prometheus' serviceMonitorSelector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What the operator observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ZookeeperClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Server pods that exist.
    #[serde(default)]
    pub replicas: i32,
    /// Server pods that are serving in quorum and synced.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pod name of the current leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Running, Creating, Rolling, Scaling, Degraded or Paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// Version reported by the servers (`srvr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk_version: Option<String>,
    /// Client connection string (`host:port,...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// Hash of the desired pod template and static zoo.cfg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_hash: Option<String>,
    /// What the operator is doing or waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One server as the operator sees it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub id: i32,
    pub pod: String,
    /// leader, follower, observer, standalone or unknown.
    pub role: String,
    pub synced: bool,
    pub ready: bool,
}

/// The CRD as YAML, exactly what `rzk crd` prints and `crds/zookeepercluster.yaml` holds.
pub fn crd_yaml() -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(&ZookeeperCluster::crd())?)
}
