//! The rollout planner: given what the operator observes of an ensemble and what the spec
//! wants, decide the single next step that moves towards the spec without losing quorum.
//!
//! Pure: no API calls, no sockets, no clocks. The reconciler gathers an [`Observed`] (pods,
//! readiness, roles from `srvr`, the ensemble's committed configuration), calls [`plan`],
//! carries out the one [`Action`] it returns and plans again on the next reconcile.
//!
//! Rules (issue 4 §4–5):
//! - one member at a time: nothing happens while any pod is missing, terminating, starting
//!   or not synced, except replacing an outdated pod that is not serving anyway;
//! - a voting member is only restarted or removed when the voters that remain still form a
//!   synced quorum of the current configuration;
//! - restarts go observers first, then followers, the leader last;
//! - scale down removes a member with reconfig before its pod goes; scale up starts the new
//!   pod as an observer and promotes it with reconfig once it has synced;
//! - when the ensemble is unhealthy the answer is [`Action::Wait`] with the reason.

use std::collections::BTreeMap;
use std::fmt;

use super::resources::{ConfigRole, Member};

/// A server's role as it reports it (`srvr` "Mode:").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Observer,
    Standalone,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::Standalone => "standalone",
            Role::Unknown => "unknown",
        }
    }
}

/// What the operator sees of one server pod (ordinal `o` runs server id `o + 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberState {
    pub ordinal: u32,
    /// The pod object exists.
    pub pod_exists: bool,
    /// The pod has a deletion timestamp.
    pub terminating: bool,
    /// The pod's readiness condition (the server's `/health/ready`: serving, in quorum, synced).
    pub ready: bool,
    pub role: Role,
    /// The server reports that it is synced with the leader (leaders are synced by definition).
    pub synced: bool,
    /// The pod's `rzk.dev/config-hash` annotation.
    pub template_hash: Option<String>,
}

impl MemberState {
    pub fn id(&self) -> u32 {
        self.ordinal + 1
    }
}

/// Everything the planner needs, gathered by the reconciler.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// Hash of the desired pod template and static zoo.cfg.
    pub desired_hash: String,
    /// The membership the spec asks for.
    pub target: Vec<Member>,
    /// The ensemble's committed configuration (from the leader); `None` when unknown.
    pub config: Option<Vec<Member>>,
    /// The StatefulSet's current `spec.replicas` (0 when it does not exist yet).
    pub sts_replicas: u32,
    /// One entry per ordinal the operator knows about (at least `0..sts_replicas`).
    pub members: Vec<MemberState>,
    /// Ordinals that have a data PVC.
    pub pvc_ordinals: Vec<u32>,
    /// The reclaim policy is Delete: PVCs of members that are gone for good are deleted.
    pub delete_pvcs: bool,
}

/// The single next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Do nothing now, for this reason (reported in status and events).
    Wait { reason: String },
    /// Delete this pod so the StatefulSet recreates it from the current template.
    RestartPod { ordinal: u32 },
    /// `reconfig -add server.<id>=...:<role>` (a new member, or a role change in place).
    AddMember { id: u32, role: ConfigRole },
    /// `reconfig -remove <id>`.
    RemoveMember { id: u32 },
    /// Set the StatefulSet's replicas.
    ScaleStatefulSet { replicas: u32 },
    /// Delete the data PVC of a member that is gone for good.
    DeletePvc { ordinal: u32 },
    /// Everything matches the spec.
    Done,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Wait { reason } => write!(f, "waiting: {reason}"),
            Action::RestartPod { ordinal } => write!(f, "restart pod ordinal {ordinal}"),
            Action::AddMember { id, role } => {
                write!(f, "reconfig: add server {id} as {}", role.as_str())
            }
            Action::RemoveMember { id } => write!(f, "reconfig: remove server {id}"),
            Action::ScaleStatefulSet { replicas } => {
                write!(f, "scale StatefulSet to {replicas}")
            }
            Action::DeletePvc { ordinal } => write!(f, "delete PVC of ordinal {ordinal}"),
            Action::Done => write!(f, "up to date"),
        }
    }
}

fn wait(reason: impl Into<String>) -> Action {
    Action::Wait {
        reason: reason.into(),
    }
}

/// True when this member serves as a synced voter right now.
fn serving_voter(m: &MemberState) -> bool {
    m.pod_exists
        && !m.terminating
        && m.ready
        && m.synced
        && matches!(m.role, Role::Leader | Role::Follower)
}

/// Does a set of `healthy` serving voters out of `voters` form a majority?
fn is_quorum(healthy: usize, voters: usize) -> bool {
    voters > 0 && healthy * 2 > voters
}

/// The next step. See the module doc for the rules.
pub fn plan(obs: &Observed) -> Action {
    let by_ordinal: BTreeMap<u32, &MemberState> =
        obs.members.iter().map(|m| (m.ordinal, m)).collect();
    let running: Vec<&MemberState> = (0..obs.sts_replicas)
        .map(|o| by_ordinal.get(&o).copied())
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();

    // Bootstrap: a new cluster starts all members at once with the full configuration
    // (a fresh ensemble has no quorum to preserve yet).
    if obs.sts_replicas == 0 && obs.config.is_none() {
        let existing = obs.members.iter().any(|m| m.pod_exists);
        if existing {
            return wait("StatefulSet has 0 replicas but server pods still exist");
        }
        if obs.target.is_empty() {
            return Action::Done;
        }
        return Action::ScaleStatefulSet {
            replicas: obs.target.len() as u32,
        };
    }

    // One member at a time: a pod on its way down or up blocks everything else.
    for o in 0..obs.sts_replicas {
        let Some(m) = by_ordinal.get(&o) else {
            return wait(format!(
                "pod ordinal {o} is missing; waiting for the StatefulSet"
            ));
        };
        if !m.pod_exists {
            return wait(format!(
                "pod ordinal {o} is missing; waiting for the StatefulSet"
            ));
        }
        if m.terminating {
            return wait(format!("pod ordinal {o} is terminating"));
        }
    }
    // Unready members on the current template are starting (or stuck): wait for them.
    if let Some(m) = running
        .iter()
        .find(|m| !m.ready && m.template_hash.as_deref() == Some(obs.desired_hash.as_str()))
    {
        return wait(format!(
            "server {} (ordinal {}) is not ready: not yet serving in quorum",
            m.id(),
            m.ordinal
        ));
    }
    // Unready members on an old template are not serving anyway: replacing them first can
    // only help (a bad old config or image is what may keep them down).
    if let Some(m) = running.iter().find(|m| !m.ready) {
        return Action::RestartPod { ordinal: m.ordinal };
    }
    if let Some(m) = running.iter().find(|m| !m.synced) {
        return wait(format!("server {} is not synced with the leader", m.id()));
    }

    let Some(config) = obs.config.as_ref() else {
        return wait("ensemble configuration unknown: no leader reachable");
    };
    let leaders: Vec<&&MemberState> = running.iter().filter(|m| m.role == Role::Leader).collect();
    match leaders.len() {
        0 => return wait("no leader: the ensemble is electing or has lost quorum"),
        1 => {}
        n => return wait(format!("{n} servers claim to be leader")),
    }

    let config_role: BTreeMap<u32, ConfigRole> = config.iter().map(|m| (m.id, m.role)).collect();
    let target_role: BTreeMap<u32, ConfigRole> =
        obs.target.iter().map(|m| (m.id, m.role)).collect();
    let voters: Vec<u32> = config
        .iter()
        .filter(|m| m.role == ConfigRole::Participant)
        .map(|m| m.id)
        .collect();
    let voter_is_serving = |id: u32| {
        id >= 1
            && id <= obs.sts_replicas
            && by_ordinal.get(&(id - 1)).is_some_and(|m| serving_voter(m))
    };
    let healthy = voters.iter().filter(|id| voter_is_serving(**id)).count();
    if !is_quorum(healthy, voters.len()) {
        return wait(format!(
            "only {healthy} of {} voters are serving and synced: no quorum margin",
            voters.len()
        ));
    }

    // Scale down: remove members the spec no longer has, highest id first, via reconfig
    // before their pods go.
    if let Some((&id, &role)) = config_role
        .iter()
        .rev()
        .find(|(id, _)| !target_role.contains_key(id))
    {
        if role == ConfigRole::Participant {
            let remaining = voters.len() - 1;
            let remaining_healthy = healthy - usize::from(voter_is_serving(id));
            if !is_quorum(remaining_healthy, remaining) {
                return wait(format!(
                    "removing server {id} would leave {remaining_healthy} of {remaining} voters serving"
                ));
            }
        }
        return Action::RemoveMember { id };
    }

    // Demotions (participant -> observer) count as removing a voter.
    if let Some((&id, _)) = config_role.iter().rev().find(|(id, role)| {
        **role == ConfigRole::Participant && target_role.get(id) == Some(&ConfigRole::Observer)
    }) {
        let remaining = voters.len() - 1;
        let remaining_healthy = healthy - usize::from(voter_is_serving(id));
        if !is_quorum(remaining_healthy, remaining) {
            return wait(format!(
                "demoting server {id} would leave {remaining_healthy} of {remaining} voters serving"
            ));
        }
        return Action::AddMember {
            id,
            role: ConfigRole::Observer,
        };
    }

    // Pods of removed members go, highest ordinal first (the StatefulSet only shrinks from
    // the top, so a gap waits until the members above it are gone too).
    let highest_needed = config_role
        .keys()
        .chain(target_role.keys())
        .copied()
        .max()
        .unwrap_or(0);
    if obs.sts_replicas > highest_needed {
        return Action::ScaleStatefulSet {
            replicas: obs.sts_replicas - 1,
        };
    }

    if obs.delete_pvcs
        && let Some(&ordinal) = obs
            .pvc_ordinals
            .iter()
            .find(|o| **o >= obs.sts_replicas && !target_role.contains_key(&(*o + 1)))
    {
        return Action::DeletePvc { ordinal };
    }

    // A configured member whose pod is beyond the StatefulSet (scaled down by hand, or a
    // scale-down that stopped half way): bring its pod back before anything else.
    if config_role
        .keys()
        .any(|id| *id > obs.sts_replicas && target_role.contains_key(id))
    {
        return Action::ScaleStatefulSet {
            replicas: obs.sts_replicas + 1,
        };
    }

    // Scale up: lowest missing id first. Its pod starts as an observer (the ConfigMap lists
    // joiners as observers) and is promoted once it serves and is synced.
    if let Some((&id, &role)) = target_role
        .iter()
        .find(|(id, role)| config_role.get(id) != Some(role))
    {
        let ordinal = id - 1;
        if ordinal >= obs.sts_replicas {
            return Action::ScaleStatefulSet {
                replicas: obs.sts_replicas + 1,
            };
        }
        let Some(m) = by_ordinal.get(&ordinal) else {
            return wait(format!("server {id} has no pod yet"));
        };
        match (config_role.get(&id), role) {
            // A joiner: it must already follow the leader as a synced observer.
            (None, _)
                if !(m.ready && m.synced && matches!(m.role, Role::Observer | Role::Follower)) =>
            {
                return wait(format!("server {id} is not yet a synced observer"));
            }
            // Promotion of an existing observer.
            (Some(ConfigRole::Observer), ConfigRole::Participant) if !(m.ready && m.synced) => {
                return wait(format!("server {id} is not synced"));
            }
            _ => {}
        }
        if role == ConfigRole::Participant {
            let new_voters = voters.len() + 1;
            let new_healthy = healthy + 1;
            if !is_quorum(new_healthy, new_voters) {
                return wait(format!(
                    "adding server {id} would leave {new_healthy} of {new_voters} voters serving"
                ));
            }
        }
        return Action::AddMember { id, role };
    }

    // Rolling restart of outdated pods: observers, then followers (highest ordinal first),
    // the leader last.
    let outdated: Vec<&&MemberState> = running
        .iter()
        .filter(|m| m.template_hash.as_deref() != Some(obs.desired_hash.as_str()))
        .collect();
    let rank = |m: &MemberState| match (config_role.get(&m.id()), m.role) {
        (_, Role::Leader) => 3,
        (Some(ConfigRole::Participant), _) => 2,
        _ => 1,
    };
    if let Some(m) = outdated
        .iter()
        .min_by_key(|m| (rank(m), std::cmp::Reverse(m.ordinal)))
    {
        let is_voter = config_role.get(&m.id()) == Some(&ConfigRole::Participant);
        if is_voter {
            let remaining_healthy = healthy - usize::from(voter_is_serving(m.id()));
            // A one-voter ensemble cannot restart without an outage; it has no availability
            // to protect, and refusing would leave it on the old template forever.
            if voters.len() > 1 && !is_quorum(remaining_healthy, voters.len()) {
                return wait(format!(
                    "restarting server {} would leave {remaining_healthy} of {} voters serving",
                    m.id(),
                    voters.len()
                ));
            }
        }
        return Action::RestartPod { ordinal: m.ordinal };
    }

    Action::Done
}

/// The membership zoo.cfg should list for pods started now: the committed configuration,
/// plus every pod of the StatefulSet (after `sts_replicas` is applied) that is not in it yet,
/// as an observer. A new cluster (no StatefulSet yet) starts with the target membership.
/// `None` means: keep the current ConfigMap (configuration unknown, e.g. no leader).
pub fn config_map_members(
    config: Option<&[Member]>,
    target: &[Member],
    sts_exists: bool,
    sts_replicas: u32,
) -> Option<Vec<Member>> {
    let Some(config) = config else {
        return (!sts_exists).then(|| target.to_vec());
    };
    let mut members: BTreeMap<u32, ConfigRole> = config.iter().map(|m| (m.id, m.role)).collect();
    for id in 1..=sts_replicas {
        members.entry(id).or_insert(ConfigRole::Observer);
    }
    Some(
        members
            .into_iter()
            .map(|(id, role)| Member { id, role })
            .collect(),
    )
}
