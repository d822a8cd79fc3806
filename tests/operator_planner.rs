//! The rollout planner: scenario tests of the next action, and a property test in which the
//! plan drives a simulated ensemble from random healthy states to the spec without ever
//! losing quorum.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rzk::operator::planner::{Action, MemberState, Observed, Role, config_map_members, plan};
use rzk::operator::resources::{ConfigRole, Member};

const NEW: &str = "new";
const OLD: &str = "old";

fn participants(n: u32) -> Vec<Member> {
    (1..=n)
        .map(|id| Member {
            id,
            role: ConfigRole::Participant,
        })
        .collect()
}

fn member(ordinal: u32, role: Role, hash: &str) -> MemberState {
    MemberState {
        ordinal,
        pod_exists: true,
        terminating: false,
        ready: true,
        role,
        synced: true,
        template_hash: Some(hash.to_string()),
    }
}

/// A healthy ensemble of `n` participants, leader at `leader` (ordinal), all on `hash`.
fn healthy(n: u32, leader: u32, hash: &str) -> Observed {
    Observed {
        desired_hash: NEW.to_string(),
        target: participants(n),
        config: Some(participants(n)),
        sts_replicas: n,
        members: (0..n)
            .map(|o| {
                member(
                    o,
                    if o == leader {
                        Role::Leader
                    } else {
                        Role::Follower
                    },
                    hash,
                )
            })
            .collect(),
        pvc_ordinals: (0..n).collect(),
        delete_pvcs: false,
    }
}

fn is_wait(a: &Action) -> bool {
    matches!(a, Action::Wait { .. })
}

fn wait_reason(a: &Action) -> &str {
    match a {
        Action::Wait { reason } => reason,
        other => panic!("expected Wait, got {other:?}"),
    }
}

#[test]
fn new_cluster_starts_all_members_at_once() {
    let obs = Observed {
        desired_hash: NEW.into(),
        target: participants(3),
        config: None,
        sts_replicas: 0,
        members: vec![],
        pvc_ordinals: vec![],
        delete_pvcs: false,
    };
    assert_eq!(plan(&obs), Action::ScaleStatefulSet { replicas: 3 });
    assert_eq!(
        config_map_members(None, &obs.target, false, 3),
        Some(participants(3))
    );
}

#[test]
fn up_to_date_ensemble_is_done() {
    assert_eq!(plan(&healthy(3, 1, NEW)), Action::Done);
    assert_eq!(plan(&healthy(1, 0, NEW)), Action::Done);
}

#[test]
fn followers_restart_before_the_leader_highest_ordinal_first() {
    let mut obs = healthy(3, 2, OLD);
    assert_eq!(plan(&obs), Action::RestartPod { ordinal: 1 });
    obs.members[1].template_hash = Some(NEW.into());
    assert_eq!(plan(&obs), Action::RestartPod { ordinal: 0 });
    obs.members[0].template_hash = Some(NEW.into());
    assert_eq!(plan(&obs), Action::RestartPod { ordinal: 2 }, "leader last");
    obs.members[2].template_hash = Some(NEW.into());
    assert_eq!(plan(&obs), Action::Done);
}

#[test]
fn observers_restart_before_voters() {
    let mut obs = healthy(3, 0, OLD);
    obs.target.push(Member {
        id: 4,
        role: ConfigRole::Observer,
    });
    obs.config.as_mut().unwrap().push(Member {
        id: 4,
        role: ConfigRole::Observer,
    });
    obs.sts_replicas = 4;
    obs.members.push(member(3, Role::Observer, OLD));
    obs.pvc_ordinals.push(3);
    assert_eq!(plan(&obs), Action::RestartPod { ordinal: 3 });
}

#[test]
fn unready_outdated_pod_is_replaced_first() {
    let mut obs = healthy(5, 4, OLD);
    obs.members[1].ready = false;
    obs.members[1].synced = false;
    obs.members[1].role = Role::Unknown;
    assert_eq!(plan(&obs), Action::RestartPod { ordinal: 1 });
}

#[test]
fn waits_for_a_restarted_pod_before_touching_the_next() {
    let mut obs = healthy(3, 0, OLD);
    obs.members[2] = MemberState {
        ready: false,
        synced: false,
        role: Role::Unknown,
        ..member(2, Role::Unknown, NEW)
    };
    let a = plan(&obs);
    assert!(wait_reason(&a).contains("server 3"), "{a:?}");
    // Missing and terminating pods block too.
    let mut obs = healthy(3, 0, OLD);
    obs.members.remove(2);
    assert!(wait_reason(&plan(&obs)).contains("missing"));
    let mut obs = healthy(3, 0, OLD);
    obs.members[1].terminating = true;
    assert!(wait_reason(&plan(&obs)).contains("terminating"));
    let mut obs = healthy(3, 0, OLD);
    obs.members[1].pod_exists = false;
    assert!(wait_reason(&plan(&obs)).contains("missing"));
}

#[test]
fn unsynced_member_blocks_restarts() {
    let mut obs = healthy(3, 0, OLD);
    obs.members[1].synced = false;
    assert!(wait_reason(&plan(&obs)).contains("not synced"));
}

#[test]
fn no_leader_or_two_leaders_or_unknown_config_waits() {
    let mut obs = healthy(3, 0, OLD);
    obs.members[0].role = Role::Follower;
    assert!(wait_reason(&plan(&obs)).contains("no leader"));
    let mut obs = healthy(3, 0, OLD);
    obs.members[1].role = Role::Leader;
    assert!(wait_reason(&plan(&obs)).contains("claim to be leader"));
    let mut obs = healthy(3, 0, OLD);
    obs.config = None;
    assert!(wait_reason(&plan(&obs)).contains("configuration unknown"));
}

#[test]
fn refuses_when_voters_are_not_a_quorum() {
    // Five voters in the configuration but only two pods: nothing may be touched.
    let mut obs = healthy(2, 0, OLD);
    obs.config = Some(participants(5));
    obs.target = participants(5);
    let a = plan(&obs);
    assert!(wait_reason(&a).contains("only 2 of 5"), "{a:?}");
}

#[test]
fn restart_refused_when_remaining_voters_would_lack_quorum() {
    // Three voters; server 3 is in the configuration but its pod is beyond the StatefulSet
    // (so not serving): restarting any of the two serving voters would leave 1 of 3.
    let mut obs = healthy(2, 0, OLD);
    obs.config = Some(participants(3));
    obs.target = participants(3);
    obs.sts_replicas = 2;
    // The planner does not restart anything; it grows the StatefulSet back to the member
    // whose pod is missing.
    assert_eq!(plan(&obs), Action::ScaleStatefulSet { replicas: 3 });
    // A role change does not count as serving: observer-mode server 2 in a 3-voter config.
    let mut obs = healthy(3, 0, OLD);
    obs.members[1].role = Role::Observer;
    let a = plan(&obs);
    assert!(is_wait(&a), "{a:?}");
}

#[test]
fn scale_up_adds_one_observer_then_promotes_it() {
    let mut obs = healthy(3, 0, NEW);
    obs.target = participants(5);
    assert_eq!(plan(&obs), Action::ScaleStatefulSet { replicas: 4 });
    // The ConfigMap lists the joiner as an observer.
    let cm = config_map_members(obs.config.as_deref(), &obs.target, true, 4).unwrap();
    assert_eq!(
        cm[3],
        Member {
            id: 4,
            role: ConfigRole::Observer
        }
    );
    obs.sts_replicas = 4;
    obs.members.push(MemberState {
        ready: false,
        synced: false,
        ..member(3, Role::Unknown, NEW)
    });
    assert!(is_wait(&plan(&obs)));
    obs.members[3] = member(3, Role::Observer, NEW);
    assert_eq!(
        plan(&obs),
        Action::AddMember {
            id: 4,
            role: ConfigRole::Participant
        }
    );
    obs.config = Some(participants(4));
    obs.members[3].role = Role::Follower;
    assert_eq!(plan(&obs), Action::ScaleStatefulSet { replicas: 5 });
}

#[test]
fn scale_down_removes_by_reconfig_before_the_pod_goes() {
    let mut obs = healthy(5, 0, NEW);
    obs.target = participants(3);
    obs.delete_pvcs = true;
    assert_eq!(plan(&obs), Action::RemoveMember { id: 5 });
    obs.config = Some(participants(4));
    obs.members[4].role = Role::Observer; // a removed server lingers as non-voting
    assert_eq!(plan(&obs), Action::RemoveMember { id: 4 });
    obs.config = Some(participants(3));
    obs.members[3].role = Role::Observer;
    assert_eq!(plan(&obs), Action::ScaleStatefulSet { replicas: 4 });
    obs.sts_replicas = 4;
    obs.members.pop();
    assert_eq!(plan(&obs), Action::ScaleStatefulSet { replicas: 3 });
    obs.sts_replicas = 3;
    obs.members.pop();
    assert_eq!(plan(&obs), Action::DeletePvc { ordinal: 3 });
    obs.pvc_ordinals.retain(|o| *o != 3);
    assert_eq!(plan(&obs), Action::DeletePvc { ordinal: 4 });
    obs.pvc_ordinals.retain(|o| *o != 4);
    assert_eq!(plan(&obs), Action::Done);
    // With reclaimPolicy Retain the PVCs stay.
    obs.pvc_ordinals = (0..5).collect();
    obs.delete_pvcs = false;
    assert_eq!(plan(&obs), Action::Done);
}

#[test]
fn removal_refused_if_remaining_voters_lack_quorum() {
    // Config {1..5}; only servers 1 and 2 serve (3 is an observer-mode server). Removing 5
    // would leave 2 of 4 serving.
    let mut obs = healthy(5, 0, NEW);
    obs.target = participants(3);
    obs.members[2].role = Role::Observer;
    obs.members[3].role = Role::Observer;
    obs.members[4].role = Role::Observer;
    let a = plan(&obs);
    assert!(is_wait(&a), "{a:?}");
}

#[test]
fn demotion_to_observer_is_a_reconfig() {
    let mut obs = healthy(5, 0, NEW);
    obs.target = participants(3);
    obs.target.push(Member {
        id: 4,
        role: ConfigRole::Observer,
    });
    obs.target.push(Member {
        id: 5,
        role: ConfigRole::Observer,
    });
    assert_eq!(
        plan(&obs),
        Action::AddMember {
            id: 5,
            role: ConfigRole::Observer
        }
    );
}

// ---------------------------------------------------------------------------------------
// Simulation: the planner drives a model ensemble.

#[derive(Clone, Debug)]
struct SimPod {
    hash: String,
    up: bool,
}

#[derive(Clone, Debug)]
struct Sim {
    desired: String,
    target: Vec<Member>,
    config: BTreeMap<u32, ConfigRole>,
    sts: u32,
    pods: BTreeMap<u32, SimPod>,
    leader: Option<u32>,
    pvcs: BTreeSet<u32>,
    delete_pvcs: bool,
    formed: bool,
}

impl Sim {
    fn voters(&self) -> Vec<u32> {
        self.config
            .iter()
            .filter(|(_, r)| **r == ConfigRole::Participant)
            .map(|(id, _)| *id)
            .collect()
    }
    fn serving(&self, id: u32) -> bool {
        self.pods.get(&(id - 1)).is_some_and(|p| p.up)
    }
    fn serving_voters(&self) -> usize {
        self.voters().iter().filter(|id| self.serving(**id)).count()
    }
    fn has_quorum(&self) -> bool {
        let v = self.voters().len();
        v > 0 && self.serving_voters() * 2 > v
    }
    fn elect(&mut self) {
        if self.leader.is_none() && self.has_quorum() {
            self.leader = self
                .voters()
                .into_iter()
                .filter(|id| self.serving(*id))
                .max();
        }
    }
    fn observe(&self) -> Observed {
        let members = self
            .pods
            .iter()
            .map(|(o, p)| {
                let id = o + 1;
                let role = if !p.up {
                    Role::Unknown
                } else if Some(id) == self.leader {
                    Role::Leader
                } else if self.config.get(&id) == Some(&ConfigRole::Participant) {
                    Role::Follower
                } else {
                    Role::Observer
                };
                MemberState {
                    ordinal: *o,
                    pod_exists: true,
                    terminating: false,
                    ready: p.up,
                    role,
                    synced: p.up,
                    template_hash: Some(p.hash.clone()),
                }
            })
            .collect();
        Observed {
            desired_hash: self.desired.clone(),
            target: self.target.clone(),
            config: self.leader.map(|_| {
                self.config
                    .iter()
                    .map(|(id, role)| Member {
                        id: *id,
                        role: *role,
                    })
                    .collect()
            }),
            sts_replicas: self.sts,
            members,
            pvc_ordinals: self.pvcs.iter().copied().collect(),
            delete_pvcs: self.delete_pvcs,
        }
    }
    /// Time passes: one down pod comes back, if it can serve (a voter needs a quorum that
    /// includes it; anything else needs a leader).
    fn tick(&mut self) -> bool {
        if self.leader.is_none() {
            // No leader: every running pod takes part in the election; a majority of
            // voters with running pods forms a quorum and they all become ready together.
            let voters = self.voters();
            let running = voters
                .iter()
                .filter(|id| self.pods.contains_key(&(*id - 1)))
                .count();
            if !voters.is_empty() && running * 2 > voters.len() && self.pods.values().any(|p| !p.up)
            {
                for p in self.pods.values_mut() {
                    p.up = true;
                }
                self.elect();
                return true;
            }
        }
        let down: Option<u32> = self.pods.iter().find(|(_, p)| !p.up).map(|(o, _)| *o);
        let Some(o) = down else { return false };
        let id = o + 1;
        let mut trial = self.clone();
        trial.pods.get_mut(&o).unwrap().up = true;
        let is_voter = self.config.get(&id) == Some(&ConfigRole::Participant);
        let ok = if is_voter {
            trial.has_quorum()
        } else {
            self.leader.is_some()
        };
        if ok {
            *self = trial;
            self.elect();
        }
        ok
    }
    /// Apply one action. Returns Err on a violated rule.
    fn apply(&mut self, action: &Action) -> Result<(), String> {
        let voters_before = self.voters().len();
        match action {
            Action::Wait { .. } | Action::Done => return Ok(()),
            Action::RestartPod { ordinal } => {
                let pod = self
                    .pods
                    .get_mut(ordinal)
                    .ok_or("restart of a missing pod")?;
                pod.up = false;
                pod.hash = self.desired.clone();
                if self.leader == Some(ordinal + 1) {
                    self.leader = None;
                }
                self.elect();
            }
            Action::AddMember { id, role } => {
                if self.leader.is_none() {
                    return Err("reconfig without a leader".into());
                }
                if !self.serving(*id) {
                    return Err(format!("added server {id} that is not serving"));
                }
                self.config.insert(*id, *role);
            }
            Action::RemoveMember { id } => {
                self.config.remove(id);
                if self.leader == Some(*id) {
                    self.leader = None;
                }
                self.elect();
            }
            Action::ScaleStatefulSet { replicas } => {
                if self.sts == 0 {
                    // Bootstrap: the ConfigMap holds the target membership.
                    self.config = self.target.iter().map(|m| (m.id, m.role)).collect();
                }
                for o in self.sts..*replicas {
                    self.pods.insert(
                        o,
                        SimPod {
                            hash: self.desired.clone(),
                            up: false,
                        },
                    );
                    self.pvcs.insert(o);
                }
                for o in *replicas..self.sts {
                    if self.config.contains_key(&(o + 1)) {
                        return Err(format!("pod of member {} removed before reconfig", o + 1));
                    }
                    self.pods.remove(&o);
                }
                self.sts = *replicas;
            }
            Action::DeletePvc { ordinal } => {
                if self.pods.contains_key(ordinal) {
                    return Err(format!("PVC {ordinal} deleted while its pod exists"));
                }
                if !self.delete_pvcs {
                    return Err("PVC deleted under reclaimPolicy Retain".into());
                }
                self.pvcs.remove(ordinal);
            }
        }
        // A single-voter ensemble cannot restart without an outage; everything else must
        // keep a serving majority of the (new) configuration.
        if self.formed && voters_before > 1 && !self.has_quorum() {
            return Err(format!("quorum lost after {action:?}: {self:?}"));
        }
        Ok(())
    }
}

fn target_members(replicas: u32, observers: u32) -> Vec<Member> {
    (1..=replicas + observers)
        .map(|id| Member {
            id,
            role: if id <= replicas {
                ConfigRole::Participant
            } else {
                ConfigRole::Observer
            },
        })
        .collect()
}

fn run_to_done(mut sim: Sim) -> Result<Sim, String> {
    let mut idle_waits = 0;
    for _ in 0..2000 {
        let action = plan(&sim.observe());
        if action == Action::Done {
            return Ok(sim);
        }
        sim.apply(&action)?;
        if !sim.formed && sim.has_quorum() && sim.leader.is_some() {
            sim.formed = true;
        }
        if matches!(action, Action::Wait { .. }) {
            if sim.tick() {
                idle_waits = 0;
            } else {
                idle_waits += 1;
                if idle_waits > 3 {
                    return Err(format!("stuck: {action:?} in {sim:?}"));
                }
            }
        }
        // Time only passes on Wait: a restarted pod stays down while the planner is asked
        // again, so a planner that touched a second member too early would be caught.
        if sim.formed && sim.voters().len() > 1 && !sim.has_quorum() {
            return Err(format!("quorum lost: {sim:?}"));
        }
    }
    Err("did not converge in 2000 steps".into())
}

fn check_converged(sim: &Sim) {
    let want: BTreeMap<u32, ConfigRole> = sim.target.iter().map(|m| (m.id, m.role)).collect();
    assert_eq!(sim.config, want, "membership");
    assert_eq!(sim.sts as usize, sim.target.len(), "StatefulSet size");
    assert!(
        sim.pods.values().all(|p| p.up && p.hash == sim.desired),
        "all pods current and up"
    );
    assert!(sim.leader.is_some());
    if sim.delete_pvcs {
        assert!(
            sim.pvcs.iter().all(|o| (*o as usize) < sim.target.len()),
            "PVCs of removed members deleted"
        );
    }
}

#[test]
fn simulation_bootstraps_a_new_cluster() {
    let sim = Sim {
        desired: NEW.into(),
        target: target_members(3, 1),
        config: BTreeMap::new(),
        sts: 0,
        pods: BTreeMap::new(),
        leader: None,
        pvcs: BTreeSet::new(),
        delete_pvcs: false,
        formed: false,
    };
    let done = run_to_done(sim).expect("converges");
    check_converged(&done);
}

fn healthy_sim(
    start_replicas: u32,
    start_observers: u32,
    target_replicas: u32,
    target_observers: u32,
    outdated: Vec<bool>,
    leader_pick: usize,
    delete_pvcs: bool,
) -> Sim {
    let start = target_members(start_replicas, start_observers);
    let pods: BTreeMap<u32, SimPod> = start
        .iter()
        .map(|m| {
            let o = m.id - 1;
            let old = outdated.get(o as usize).copied().unwrap_or(false);
            (
                o,
                SimPod {
                    hash: if old { OLD.into() } else { NEW.into() },
                    up: true,
                },
            )
        })
        .collect();
    let leader = Some((leader_pick as u32 % start_replicas) + 1);
    let n = start.len() as u32;
    Sim {
        desired: NEW.into(),
        target: target_members(target_replicas, target_observers),
        config: start.iter().map(|m| (m.id, m.role)).collect(),
        sts: n,
        pods,
        leader,
        pvcs: (0..n).collect(),
        delete_pvcs,
        formed: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn following_the_plan_never_loses_quorum(
        start_replicas in prop::sample::select(vec![1u32, 3, 5, 7]),
        start_observers in 0u32..=2,
        target_replicas in prop::sample::select(vec![1u32, 3, 5, 7]),
        target_observers in 0u32..=2,
        outdated in prop::collection::vec(any::<bool>(), 9),
        leader_pick in 0usize..7,
        delete_pvcs in any::<bool>(),
    ) {
        let sim = healthy_sim(start_replicas, start_observers, target_replicas, target_observers, outdated, leader_pick, delete_pvcs);
        let done = run_to_done(sim);
        prop_assert!(done.is_ok(), "{:?}", done.err());
        check_converged(&done.unwrap());
    }
}

#[test]
fn three_to_five_to_three_with_a_config_change() {
    let sim = healthy_sim(3, 0, 5, 0, vec![true; 3], 0, true);
    let mut sim = run_to_done(sim).expect("3 -> 5");
    check_converged(&sim);
    sim.target = target_members(3, 0);
    sim.desired = "newer".into();
    let sim = run_to_done(sim).expect("5 -> 3 with a template change");
    check_converged(&sim);
}
