//! The reconcile shell: a kube-rs Controller on ZookeeperCluster that observes the cluster
//! (pods, PVCs, `srvr` of each server, the leader's `/zookeeper/config`), asks the pure
//! [`planner`](super::planner) for the next step, applies the owned objects from
//! [`resources`](super::resources) with server-side apply, carries the step out, records
//! events and writes the status.
//!
//! Everything that talks to ZooKeeper goes through [`EnsembleAdmin`], so reconcile tests run
//! against a mocked API server and a scripted ensemble.
//!
//! `reconfig` needs WRITE on `/zookeeper/config`, which only ZooKeeper's super user has (its
//! ACL is world:read). Each cluster has a super password in its `<name>-admin` Secret,
//! created once with a random value and never re-applied (see [`admin_password`]); zoo.cfg
//! carries its digest and [`ZkAdmin`] authenticates with it before every reconfig.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::crd::{ReclaimPolicy, ZookeeperCluster, ZookeeperClusterStatus};
use super::planner::{self, Action, MemberState, Observed, Role};
use super::resources::{self, ConfigRole, HASH_ANNOTATION, Member, Names, SUPER_USER};
use super::srvr::{self, SrvrInfo};
use super::status::{self, StatusInput};
use super::telemetry::Metrics;

/// Server-side apply field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "rzk-operator";
/// Finalizer that lets the operator delete PVCs when the reclaim policy is Delete.
pub const FINALIZER: &str = "rzk.dev/cleanup";

/// Errors of one reconcile (they are retried with a backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("ZooKeeper: {0}")]
    Ensemble(String),
    #[error("invalid object: {0}")]
    Invalid(String),
    #[error("finalizer: {0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
}

/// ZooKeeper's super user's password of one cluster (from its admin Secret). `Debug` does
/// not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminPassword(String);

impl AdminPassword {
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// A fresh random password: 32 alphanumerics (about 190 bits) from the thread's CSPRNG.
    pub fn random() -> Self {
        use rand::Rng as _;
        let password: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        Self(password)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest zoo.cfg carries (`super:<base64 sha1>`).
    pub fn digest(&self) -> String {
        resources::super_digest(&self.0)
    }

    /// The `digest` scheme's auth data: `super:<password>`.
    pub fn auth_data(&self) -> Vec<u8> {
        format!("{SUPER_USER}:{}", self.0).into_bytes()
    }
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminPassword(<redacted>)")
    }
}

/// Talks to the ZooKeeper ensemble (real servers in production, a script in tests).
pub trait EnsembleAdmin: Send + Sync {
    /// `srvr` of one server at `host:port`; `None` when it does not answer.
    fn srvr(&self, addr: String) -> BoxFuture<'static, Option<SrvrInfo>>;
    /// The committed membership, read from `/zookeeper/config` on the server at `addr`.
    fn config(&self, addr: String) -> BoxFuture<'static, Result<Vec<Member>, String>>;
    /// Incremental reconfig through the server at `addr`, authenticated as the super user
    /// with `password`: add `server.N=...` lines and/or remove ids.
    fn reconfig(
        &self,
        addr: String,
        password: AdminPassword,
        add: Vec<String>,
        remove: Vec<u32>,
    ) -> BoxFuture<'static, Result<(), String>>;
}

/// The production [`EnsembleAdmin`]: four-letter words and the `zookeeper-client` crate.
pub struct ZkAdmin {
    pub timeout: Duration,
}

impl EnsembleAdmin for ZkAdmin {
    fn srvr(&self, addr: String) -> BoxFuture<'static, Option<SrvrInfo>> {
        let timeout = self.timeout;
        Box::pin(async move { srvr::fetch_srvr(&addr, timeout).await.ok() })
    }

    fn config(&self, addr: String) -> BoxFuture<'static, Result<Vec<Member>, String>> {
        let timeout = self.timeout;
        Box::pin(async move {
            let work = async {
                let client = zookeeper_client::Client::connector()
                    .with_session_timeout(Duration::from_secs(10))
                    .connect(&addr)
                    .await
                    .map_err(|e| e.to_string())?;
                let (data, _) = client.get_config().await.map_err(|e| e.to_string())?;
                Ok(srvr::parse_config(&String::from_utf8_lossy(&data)))
            };
            tokio::time::timeout(timeout * 3, work)
                .await
                .map_err(|_| format!("reading /zookeeper/config from {addr} timed out"))?
        })
    }

    fn reconfig(
        &self,
        addr: String,
        password: AdminPassword,
        add: Vec<String>,
        remove: Vec<u32>,
    ) -> BoxFuture<'static, Result<(), String>> {
        let timeout = self.timeout;
        Box::pin(async move {
            let work = async {
                // Only the super user may write /zookeeper/config (world:read otherwise);
                // without this the server answers NoAuth.
                let client = zookeeper_client::Client::connector()
                    .with_session_timeout(Duration::from_secs(10))
                    .with_auth("digest", &password.auth_data())
                    .connect(&addr)
                    .await
                    .map_err(|e| e.to_string())?;
                let remove: Vec<String> = remove.iter().map(|id| id.to_string()).collect();
                let update = zookeeper_client::EnsembleUpdate::Incremental {
                    joinings: add.iter().map(String::as_str),
                    leavings: remove.iter().map(String::as_str),
                };
                client
                    .update_ensemble(update, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            };
            tokio::time::timeout(timeout * 10, work)
                .await
                .map_err(|_| format!("reconfig through {addr} timed out"))?
        })
    }
}

/// Shared state of the reconciler.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub admin: Arc<dyn EnsembleAdmin>,
    /// Source of "now" for condition times (fixed in tests).
    pub clock: Arc<dyn Fn() -> Time + Send + Sync>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, admin: Arc<dyn EnsembleAdmin>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            admin,
            clock: Arc::new(|| Time(k8s_openapi::jiff::Timestamp::now())),
        }
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or_else(|| Error::Invalid("object without a name".into()))?;
    Ok(api
        .patch(&name, &apply_params(), &Patch::Apply(obj))
        .await?)
}

/// Server-side apply of a typed object: SSA needs apiVersion and kind in the body, which the
/// k8s-openapi types only add when serialized through their `Resource` impl.
async fn apply_typed<K>(api: &Api<K>, obj: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    apply(api, obj).await.map(|_| ())
}

fn ordinal_of(pod: &str, cluster: &str) -> Option<u32> {
    pod.strip_prefix(cluster)?.strip_prefix('-')?.parse().ok()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One reconcile of one cluster (the Controller calls this).
pub async fn reconcile(zk: Arc<ZookeeperCluster>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let ns = zk
        .namespace()
        .ok_or_else(|| Error::Invalid("ZookeeperCluster without a namespace".into()))?;
    let api: Api<ZookeeperCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let ctx2 = ctx.clone();
    let result = finalizer(&api, FINALIZER, zk, |event| async move {
        match event {
            FinalizerEvent::Apply(zk) => apply_cluster(&zk, &ctx2).await,
            FinalizerEvent::Cleanup(zk) => cleanup(&zk, &ctx2).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    match &result {
        Ok(_) => {}
        Err(_) => ctx.metrics.failed(),
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reconciled"
    );
    result
}

/// Requeue policy on errors: retry soon, without hammering the API server.
pub fn error_policy(zk: Arc<ZookeeperCluster>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(cluster = %zk.name_any(), %error, "reconcile failed");
    Requeue::requeue(Duration::from_secs(10))
}

/// The super user's password of `zk`, from its admin Secret `<name>-admin`.
///
/// When the Secret is absent and `create` is set, it is created with a random password: a
/// plain create, never a server-side apply (re-applying a freshly generated value would
/// rotate it on every reconcile). Creation is atomic on the API server, so when another
/// writer got there first (a previous leader still finishing a reconcile, a restart racing
/// its predecessor) the create fails with AlreadyExists and the stored value is read back and
/// used; the password therefore survives operator restarts and leader changes. `Ok(None)`
/// only when the Secret is absent and `create` is not set (a paused cluster).
pub async fn admin_password(
    zk: &ZookeeperCluster,
    ctx: &Context,
    create: bool,
) -> Result<Option<AdminPassword>, Error> {
    let ns = zk.namespace().unwrap_or_default();
    let name = Names::admin_secret(&zk.name_any());
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &ns);
    let stored = |secret: &Secret| {
        resources::admin_password(secret)
            .map(AdminPassword::new)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "Secret {ns}/{name} has no usable `{}` key; delete it to have a new password generated",
                    resources::ADMIN_PASSWORD_KEY
                ))
            })
    };
    if let Some(secret) = api.get_opt(&name).await? {
        return stored(&secret).map(Some);
    }
    if !create {
        return Ok(None);
    }
    let password = AdminPassword::random();
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    match api
        .create(&params, &resources::admin_secret(zk, password.expose()))
        .await
    {
        Ok(_) => {
            publish(
                ctx,
                zk,
                EventType::Normal,
                "CreatedAdminSecret",
                format!("created Secret {name} with the super user's password"),
            )
            .await;
            Ok(Some(password))
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Someone else created it in between: theirs is the password the servers get.
            stored(&api.get(&name).await?).map(Some)
        }
        Err(e) => Err(e.into()),
    }
}

/// What the reconciler reads before planning.
struct Snapshot {
    sts: Option<StatefulSet>,
    pods: Vec<Pod>,
    pvcs: Vec<PersistentVolumeClaim>,
}

async fn read_snapshot(zk: &ZookeeperCluster, client: &Client) -> Result<Snapshot, Error> {
    let ns = zk.namespace().unwrap_or_default();
    let name = zk.name_any();
    let selector = resources::selector_labels(zk)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let lp = ListParams::default().labels(&selector);
    let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await?
        .items;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await?
        .items;
    Ok(Snapshot { sts, pods, pvcs })
}

/// Observe the ensemble: pods from the snapshot, roles by `srvr`, config from the leader.
async fn observe(
    zk: &ZookeeperCluster,
    snap: &Snapshot,
    admin: &dyn EnsembleAdmin,
    super_digest: &str,
) -> (Observed, Option<String>, Option<String>) {
    let name = zk.name_any();
    let client_port = zk.spec.ports.client;
    let sts_replicas = snap
        .sts
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(0)
        .max(0) as u32;

    let mut members = Vec::new();
    let mut leader_addr = None;
    let mut version = None;
    let mut pods: Vec<&Pod> = snap.pods.iter().collect();
    pods.sort_by_key(|p| ordinal_of(&p.name_any(), &name));
    for pod in pods {
        let Some(ordinal) = ordinal_of(&pod.name_any(), &name) else {
            continue;
        };
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let info = match (&ip, terminating) {
            (Some(ip), false) => admin.srvr(format!("{ip}:{client_port}")).await,
            _ => None,
        };
        let role = info.as_ref().map(SrvrInfo::role).unwrap_or(Role::Unknown);
        let ready = pod_ready(pod);
        if role == Role::Leader {
            leader_addr = ip.as_ref().map(|ip| format!("{ip}:{client_port}"));
        }
        if version.is_none() {
            version = info.as_ref().and_then(|i| i.version.clone());
        }
        members.push(MemberState {
            ordinal,
            pod_exists: true,
            terminating,
            ready,
            role,
            // The readiness probe is "serving in quorum and synced"; srvr only answers
            // with a mode while the server serves.
            synced: ready && role != Role::Unknown,
            template_hash: pod.annotations().get(HASH_ANNOTATION).cloned(),
        });
    }
    let config = match &leader_addr {
        Some(addr) => match admin.config(addr.clone()).await {
            Ok(c) if !c.is_empty() => Some(c),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(cluster = %name, error = %e, "reading the ensemble config failed");
                None
            }
        },
        None => None,
    };
    let pvc_ordinals = snap
        .pvcs
        .iter()
        .filter_map(|p| {
            p.name_any()
                .strip_prefix(&format!("{}-", resources::DATA_VOLUME))
                .and_then(|rest| ordinal_of(rest, &name))
        })
        .collect();
    let observed = Observed {
        desired_hash: resources::desired_hash(zk, super_digest),
        target: resources::desired_members(zk),
        config,
        sts_replicas,
        members,
        pvc_ordinals,
        delete_pvcs: zk.spec.storage.reclaim_policy == ReclaimPolicy::Delete,
    };
    (observed, leader_addr, version)
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Wait { .. } => "Wait",
        Action::RestartPod { .. } => "RestartPod",
        Action::AddMember { .. } => "AddMember",
        Action::RemoveMember { .. } => "RemoveMember",
        Action::ScaleStatefulSet { .. } => "ScaleStatefulSet",
        Action::DeletePvc { .. } => "DeletePvc",
        Action::Done => "Done",
    }
}

async fn publish(
    ctx: &Context,
    zk: &ZookeeperCluster,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &zk.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing an event failed");
    }
}

async fn apply_cluster(zk: &ZookeeperCluster, ctx: &Context) -> Result<Requeue, Error> {
    let started = Instant::now();
    let client = &ctx.client;
    let ns = zk.namespace().unwrap_or_default();
    let name = zk.name_any();

    // The credentials first: every zoo.cfg and pod template carries the digest. A paused
    // cluster is not touched, so its Secret is read but not created; without one its
    // reported template hash is that of an empty digest.
    let password = admin_password(zk, ctx, !zk.spec.paused).await?;
    let super_digest = password
        .as_ref()
        .map(AdminPassword::digest)
        .unwrap_or_default();

    let snap = read_snapshot(zk, client).await?;
    let (observed, leader_addr, version) =
        observe(zk, &snap, ctx.admin.as_ref(), &super_digest).await;

    let action = if zk.spec.paused {
        Action::Wait {
            reason: "reconciliation is paused (spec.paused)".to_string(),
        }
    } else {
        planner::plan(&observed)
    };

    if !zk.spec.paused {
        let password = password
            .as_ref()
            .ok_or_else(|| Error::Invalid("no admin password".into()))?;
        let sts_replicas = match action {
            Action::ScaleStatefulSet { replicas } => replicas,
            _ => observed.sts_replicas,
        };
        apply_children(zk, ctx, &snap, &observed, sts_replicas, &super_digest).await?;
        carry_out(zk, ctx, &action, leader_addr.as_deref(), password).await?;
    }

    let previous = zk.status.clone();
    let status = status::compute(StatusInput {
        cluster: &name,
        generation: zk.metadata.generation,
        paused: zk.spec.paused,
        observed: &observed,
        action: &action,
        zk_version: version,
        connection_string: resources::connection_string(zk, zk.spec.replicas.max(0) as u32),
        previous: previous.as_ref(),
        now: (ctx.clock)(),
    });
    ctx.metrics
        .set_phase(&format!("{ns}/{name}"), status.phase.as_deref());
    write_status(zk, ctx, &status).await?;
    ctx.metrics
        .reconciled(action_name(&action), started.elapsed());

    Ok(match action {
        Action::Done => Requeue::requeue(Duration::from_secs(60)),
        _ if zk.spec.paused => Requeue::await_change(),
        _ => Requeue::requeue(Duration::from_secs(5)),
    })
}

async fn apply_children(
    zk: &ZookeeperCluster,
    ctx: &Context,
    snap: &Snapshot,
    observed: &Observed,
    sts_replicas: u32,
    super_digest: &str,
) -> Result<(), Error> {
    let client = &ctx.client;
    let ns = zk.namespace().unwrap_or_default();
    apply_typed(
        &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        &resources::service_account(zk),
    )
    .await?;
    // The ConfigMap follows the committed membership (plus joiners as observers); when
    // the membership is unknown the current ConfigMap stays as it is.
    if let Some(members) = planner::config_map_members(
        observed.config.as_deref(),
        &observed.target,
        snap.sts.is_some(),
        sts_replicas,
    ) {
        apply_typed(
            &Api::<ConfigMap>::namespaced(client.clone(), &ns),
            &resources::config_map(zk, &members, super_digest),
        )
        .await?;
    }
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    apply_typed(&services, &resources::headless_service(zk)).await?;
    apply_typed(&services, &resources::client_service(zk)).await?;
    apply_typed(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns),
        &resources::pod_disruption_budget(zk),
    )
    .await?;
    let mut sts = resources::stateful_set(zk, sts_replicas, super_digest);
    // volumeClaimTemplates are immutable: keep the existing ones (volume growth is done on
    // the PVCs themselves, not through the template).
    if let (Some(existing), Some(spec)) = (
        snap.sts.as_ref().and_then(|s| s.spec.as_ref()),
        sts.spec.as_mut(),
    ) {
        spec.volume_claim_templates = existing.volume_claim_templates.clone();
    }
    apply_typed(&Api::<StatefulSet>::namespaced(client.clone(), &ns), &sts).await?;

    // Volume growth: the StatefulSet's claim templates are immutable, so the PVCs are
    // resized directly (the CRD's CEL rule already refuses shrinking; the StorageClass must
    // allow expansion).
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    for pvc in &snap.pvcs {
        let current = pvc
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.as_str());
        if current.is_some_and(|c| c != zk.spec.storage.size) {
            let patch = serde_json::json!({
                "spec": {"resources": {"requests": {"storage": zk.spec.storage.size}}}
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            };
            pvcs.patch(&pvc.name_any(), &params, &Patch::Merge(&patch))
                .await?;
        }
    }

    if zk.spec.metrics.enabled && zk.spec.metrics.service_monitor.enabled {
        let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
        let ar = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let sm = resources::service_monitor(zk);
        let name = zk.name_any();
        if let Err(e) = api.patch(&name, &apply_params(), &Patch::Apply(&sm)).await {
            // The prometheus-operator CRDs may not be installed: report, do not fail.
            tracing::warn!(error = %e, "applying the ServiceMonitor failed");
        }
    }
    Ok(())
}

async fn carry_out(
    zk: &ZookeeperCluster,
    ctx: &Context,
    action: &Action,
    leader_addr: Option<&str>,
    password: &AdminPassword,
) -> Result<(), Error> {
    let ns = zk.namespace().unwrap_or_default();
    let name = zk.name_any();
    match action {
        Action::Done => {}
        Action::Wait { reason } => {
            publish(ctx, zk, EventType::Warning, "Waiting", reason.clone()).await;
        }
        Action::ScaleStatefulSet { replicas } => {
            // Already applied with the StatefulSet.
            publish(
                ctx,
                zk,
                EventType::Normal,
                "Scaling",
                format!("StatefulSet {name} scaled to {replicas}"),
            )
            .await;
        }
        Action::RestartPod { ordinal } => {
            let pod = Names::pod(&name, *ordinal);
            Api::<Pod>::namespaced(ctx.client.clone(), &ns)
                .delete(&pod, &DeleteParams::default())
                .await?;
            publish(
                ctx,
                zk,
                EventType::Normal,
                "RestartingPod",
                format!("deleted pod {pod} to apply the current template"),
            )
            .await;
        }
        Action::DeletePvc { ordinal } => {
            let pvc = Names::pvc(&name, *ordinal);
            Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
                .delete(&pvc, &DeleteParams::default())
                .await?;
            publish(
                ctx,
                zk,
                EventType::Normal,
                "DeletedPvc",
                format!("deleted PVC {pvc} of a removed member (reclaimPolicy Delete)"),
            )
            .await;
        }
        Action::AddMember { id, role } => {
            let addr = leader_addr.ok_or_else(|| Error::Ensemble("no leader".into()))?;
            let line = resources::server_line(
                zk,
                Member {
                    id: *id,
                    role: *role,
                },
            );
            let line = line.trim_start_matches("server.").to_string();
            let line = format!("server.{line}");
            ctx.admin
                .reconfig(addr.to_string(), password.clone(), vec![line], vec![])
                .await
                .map_err(Error::Ensemble)?;
            publish(
                ctx,
                zk,
                EventType::Normal,
                "AddedMember",
                format!("reconfig: server {id} is now a {}", role.as_str()),
            )
            .await;
        }
        Action::RemoveMember { id } => {
            let addr = leader_addr.ok_or_else(|| Error::Ensemble("no leader".into()))?;
            ctx.admin
                .reconfig(addr.to_string(), password.clone(), vec![], vec![*id])
                .await
                .map_err(Error::Ensemble)?;
            publish(
                ctx,
                zk,
                EventType::Normal,
                "RemovedMember",
                format!("reconfig: removed server {id}"),
            )
            .await;
        }
    }
    Ok(())
}

async fn write_status(
    zk: &ZookeeperCluster,
    ctx: &Context,
    status: &ZookeeperClusterStatus,
) -> Result<(), Error> {
    let ns = zk.namespace().unwrap_or_default();
    let api: Api<ZookeeperCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let body = serde_json::json!({
        "apiVersion": "rzk.dev/v1alpha1",
        "kind": "ZookeeperCluster",
        "status": status,
    });
    api.patch_status(&zk.name_any(), &apply_params(), &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// The cluster is being deleted: owned objects go with it (owner references); PVCs are
/// not owned, so with reclaimPolicy Delete they are deleted here.
async fn cleanup(zk: &ZookeeperCluster, ctx: &Context) -> Result<Requeue, Error> {
    let ns = zk.namespace().unwrap_or_default();
    let name = zk.name_any();
    ctx.metrics.set_phase(&format!("{ns}/{name}"), None);
    if zk.spec.storage.reclaim_policy != ReclaimPolicy::Delete {
        return Ok(Requeue::await_change());
    }
    let selector = resources::selector_labels(zk)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns);
    let pvcs = api.list(&ListParams::default().labels(&selector)).await?;
    for pvc in pvcs.items {
        api.delete(&pvc.name_any(), &DeleteParams::default())
            .await?;
    }
    publish(
        ctx,
        zk,
        EventType::Normal,
        "DeletedPvcs",
        "deleted the data PVCs (reclaimPolicy Delete)".to_string(),
    )
    .await;
    Ok(Requeue::await_change())
}

/// Map a server pod to the cluster it belongs to (pods are owned by the StatefulSet, not
/// by the cluster, but their readiness changes must trigger a reconcile).
fn pod_to_cluster(pod: Pod) -> Option<ObjectRef<ZookeeperCluster>> {
    let labels = pod.labels();
    if labels.get("app.kubernetes.io/name").map(String::as_str) != Some("rzk") {
        return None;
    }
    let instance = labels.get("app.kubernetes.io/instance")?;
    Some(ObjectRef::new(instance).within(&pod.namespace()?))
}

/// How long the controller may take to drain after a stop signal (well
/// inside Kubernetes' default 30 s termination grace period).
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Run the operator: telemetry endpoint, optional leader election, the controller; stop
/// gracefully on SIGTERM/SIGINT or when leadership is lost.
pub async fn run(args: super::OperatorArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::new());
    let listener = super::telemetry::bind(args.metrics_addr).await?;
    tracing::info!(addr = %args.metrics_addr, "serving /metrics and /healthz");
    let telemetry = tokio::spawn(super::telemetry::serve(listener, metrics.clone()));

    let election = if args.leader_election {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("rzk-operator-{}", std::process::id()));
        let mut election = super::election::Election::start(
            client.clone(),
            &args.lease_namespace,
            &args.lease_name,
            &identity,
        )
        .await?;
        tracing::info!(%identity, lease = %args.lease_name, "waiting for leadership");
        tokio::select! {
            r = election.acquired() => r?,
            _ = shutdown_signal() => {
                election.release().await;
                return Ok(());
            }
        }
        tracing::info!(%identity, "acquired leadership");
        Some(election)
    } else {
        None
    };

    let admin: Arc<dyn EnsembleAdmin> = Arc::new(ZkAdmin {
        timeout: Duration::from_secs(3),
    });
    let ctx = Arc::new(Context::new(client.clone(), metrics, admin));
    let (clusters, stss, cms, svcs, pdbs, pods) = match &args.namespace {
        Some(ns) => (
            Api::<ZookeeperCluster>::namespaced(client.clone(), ns),
            Api::<StatefulSet>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=rzk-operator");
    let lost = election.as_ref().map(|e| e.is_leader.clone());
    // Set once a stop is asked for, to bound the controller's drain below.
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        match lost {
            Some(rx) => {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = super::election::Election::lost(rx) => {
                        tracing::warn!("lost leadership; shutting down");
                    }
                }
            }
            None => shutdown_signal().await,
        }
        let _ = stopping_tx.send(true);
    };
    let controller = Controller::new(clusters, watcher::Config::default())
        .owns(stss, owned.clone())
        .owns(cms, owned.clone())
        .owns(svcs, owned.clone())
        .owns(pdbs, owned)
        .watches(
            pods,
            watcher::Config::default().labels("app.kubernetes.io/name=rzk"),
            pod_to_cluster,
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, action)) => tracing::debug!(cluster = %obj, ?action, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "reconcile error"),
            }
        });
    // kube-runtime's graceful shutdown waits for the controller's streams to
    // drain, and with its watches in error backoff that wait sometimes never
    // ends (seen under CPU load: SIGTERM taken, the process still running
    // 15 s later). Kubernetes would SIGKILL it after the grace period; we
    // give the drain a bounded time and stop on our own.
    let drain_limit = async move {
        if stopping.wait_for(|stop| *stop).await.is_err() {
            // No stop was asked for: the controller ended on its own.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
    };
    tokio::select! {
        () = controller => {}
        () = drain_limit => tracing::warn!(
            limit = ?SHUTDOWN_DRAIN,
            "the controller did not drain in time after the stop signal; stopping anyway"
        ),
    }
    tracing::info!("controller stopped");
    if let Some(election) = election {
        election.release().await;
    }
    telemetry.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Members by id, for diagnostics.
pub fn members_by_id(members: &[Member]) -> BTreeMap<u32, ConfigRole> {
    members.iter().map(|m| (m.id, m.role)).collect()
}
