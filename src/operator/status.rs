//! The ZookeeperCluster status computed from what the reconciler observed and planned.
//! Pure: the caller passes the current time, so conditions keep their transition times
//! when nothing changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::crd::{MemberStatus, ZookeeperClusterStatus};
use super::planner::{Action, Observed, Role};

/// Inputs besides the planner's view.
pub struct StatusInput<'a> {
    pub cluster: &'a str,
    pub generation: Option<i64>,
    pub paused: bool,
    pub observed: &'a Observed,
    pub action: &'a Action,
    pub zk_version: Option<String>,
    pub connection_string: String,
    pub previous: Option<&'a ZookeeperClusterStatus>,
    pub now: Time,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: Option<&ZookeeperClusterStatus>,
    now: &Time,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // Keep the transition time while the condition's status stays the same.
    let last_transition_time = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

pub fn compute(input: StatusInput<'_>) -> ZookeeperClusterStatus {
    let obs = input.observed;
    let running = obs
        .members
        .iter()
        .filter(|m| m.ordinal < obs.sts_replicas && m.pod_exists);
    let members: Vec<MemberStatus> = running
        .clone()
        .map(|m| MemberStatus {
            id: m.id() as i32,
            pod: format!("{}-{}", input.cluster, m.ordinal),
            role: m.role.as_str().to_string(),
            synced: m.synced,
            ready: m.ready,
        })
        .collect();
    let ready = running.clone().filter(|m| m.ready).count() as i32;
    let leader = obs
        .members
        .iter()
        .find(|m| m.role == Role::Leader && m.pod_exists)
        .map(|m| format!("{}-{}", input.cluster, m.ordinal));
    let voters = obs
        .config
        .as_ref()
        .map(|c| {
            c.iter()
                .filter(|m| m.role == super::resources::ConfigRole::Participant)
                .count()
        })
        .unwrap_or(0);
    let serving_voters = obs
        .config
        .as_ref()
        .map(|c| {
            c.iter()
                .filter(|cm| {
                    cm.role == super::resources::ConfigRole::Participant
                        && obs.members.iter().any(|m| {
                            m.id() == cm.id
                                && m.ready
                                && matches!(m.role, Role::Leader | Role::Follower)
                        })
                })
                .count()
        })
        .unwrap_or(0);
    let available = leader.is_some() && voters > 0 && serving_voters * 2 > voters;

    let (progressing, progress_reason) = match input.action {
        Action::Done => (false, "UpToDate"),
        Action::RestartPod { .. } => (true, "RollingRestart"),
        Action::AddMember { .. }
        | Action::RemoveMember { .. }
        | Action::ScaleStatefulSet { .. }
        | Action::DeletePvc { .. } => (true, "Scaling"),
        Action::Wait { .. } => (true, "Waiting"),
    };
    let all_ready = ready as u32 == obs.sts_replicas && obs.sts_replicas > 0;
    let degraded = !available || !all_ready;
    let phase = if input.paused {
        "Paused"
    } else if leader.is_none() && ready == 0 && obs.config.is_none() {
        "Creating"
    } else if !available {
        "Degraded"
    } else {
        match input.action {
            Action::Done => "Running",
            Action::RestartPod { .. } => "Rolling",
            Action::Wait { .. } => {
                if all_ready {
                    "Running"
                } else {
                    "Rolling"
                }
            }
            _ => "Scaling",
        }
    };
    let message = input.action.to_string();
    let now = &input.now;
    let conditions = vec![
        condition(
            "Available",
            available,
            if available {
                "QuorumServing"
            } else {
                "NoQuorum"
            },
            format!("{serving_voters} of {voters} voters serving"),
            input.generation,
            input.previous,
            now,
        ),
        condition(
            "Progressing",
            progressing,
            progress_reason,
            message.clone(),
            input.generation,
            input.previous,
            now,
        ),
        condition(
            "Degraded",
            degraded,
            if degraded {
                "MembersNotReady"
            } else {
                "AllMembersReady"
            },
            format!("{ready} of {} servers ready", obs.sts_replicas),
            input.generation,
            input.previous,
            now,
        ),
    ];
    ZookeeperClusterStatus {
        observed_generation: input.generation,
        replicas: members.len() as i32,
        ready_replicas: ready,
        leader,
        phase: Some(phase.to_string()),
        members,
        zk_version: input.zk_version,
        connection_string: Some(input.connection_string),
        current_hash: Some(obs.desired_hash.clone()),
        message: Some(message),
        conditions,
    }
}
