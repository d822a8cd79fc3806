//! One server of the ensemble: the election and the ZAB roles glued
//! together around the server's [`History`]. The shell feeds [`Input`]s and
//! executes the returned [`Action`]s in order:
//!
//! * `Send` — frame and send on the election port (`Message::Election`) or
//!   the quorum connection (`Message::Zab`). When sending `Snap`, the shell
//!   appends a snapshot of its data tree, which is then exactly at the SNAP
//!   zxid because every earlier `Apply` was executed.
//! * `Persist` — write to the txn log / epoch files, in order; report
//!   `Input::Persisted { seq }` when durable.
//! * `Apply` — apply a committed txn to the data tree.
//! * `Disconnect` — close the quorum connection with a peer.
//! * `Status` — the server's role changed (for `srvr`/`mntr`, and to know
//!   when to serve clients).
//!
//! Time arrives as `Input::Tick { now_ms }`; ZAB ticks every `tick_ms`.

use bytes::Bytes;

use super::election::{Election, ElectionConfig, ElectionOutput};
use super::wire::{Notification, ServerState, ZabMessage};
use super::zab::{self, History, Leader, Learner, PersistOp, PersistentState, StepDown, ZabConfig};
use super::{Membership, ServerId, Zxid};

pub use super::zab::Entry;

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub me: ServerId,
    pub membership: Membership,
    /// zoo.cfg `tickTime`.
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// Committed txns kept in memory for DIFF; a learner further behind
    /// gets a SNAP.
    pub log_window: usize,
}

/// A message between servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Election(Notification),
    Zab(ZabMessage),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Tick {
        now_ms: u64,
    },
    Message {
        from: ServerId,
        msg: Message,
    },
    Persisted {
        seq: u64,
    },
    /// The election connection with `peer` came up.
    Connected(ServerId),
    /// The election connection with `peer` broke or could not be made.
    Unreachable(ServerId),
    /// The quorum connection with `peer` closed.
    Disconnected(ServerId),
}

/// The server's role, as `srvr` would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Looking,
    /// Leading, not yet established (discovery or synchronisation).
    LeaderElect {
        epoch: Option<i64>,
    },
    /// Leading and established: a quorum acked NEWLEADER.
    Leading {
        epoch: i64,
    },
    /// Following or observing, not yet up to date.
    Syncing {
        leader: ServerId,
    },
    /// Following or observing and up to date: serving clients.
    Serving {
        leader: ServerId,
        observer: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: ServerId,
        msg: Message,
    },
    Persist {
        seq: u64,
        op: PersistOp,
    },
    Apply(Entry),
    /// A logged txn applied when the server leaves a role (ZooKeeper's
    /// fast-forward): it may not be committed, and a TRUNC may take it back.
    FastForward(Entry),
    Disconnect(ServerId),
    Status(Status),
    /// A role ended abnormally: the peer broke the protocol.
    Violation(String),
}

#[derive(Debug, Clone)]
enum Role {
    Looking,
    Leading(Leader),
    Learning(Learner),
}

#[derive(Debug, Clone)]
pub struct Node {
    cfg: NodeConfig,
    hist: History,
    election: Election,
    role: Role,
    now: u64,
    next_tick_at: u64,
    status: Status,
    /// The membership as text (ZooKeeper's QuorumVerifier string), sent in
    /// notifications and NEWLEADER, and its version.
    config_text: Bytes,
    config_version: i64,
}

impl Node {
    /// A server starting from what is on its disk. Call [`Node::start`].
    pub fn new(cfg: NodeConfig, disk: PersistentState) -> Self {
        let hist = History::new(disk, cfg.log_window);
        let election = Election::new(ElectionConfig::new(cfg.me, cfg.membership.clone()));
        Node {
            cfg,
            hist,
            election,
            role: Role::Looking,
            now: 0,
            next_tick_at: 0,
            status: Status::Looking,
            config_text: Bytes::new(),
            config_version: 0,
        }
    }

    /// The membership text and version this server announces.
    pub fn set_config_text(&mut self, text: Bytes, version: i64) {
        self.election.set_config_text(text.clone());
        self.config_text = text;
        self.config_version = version;
    }

    pub fn id(&self) -> ServerId {
        self.cfg.me
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn history(&self) -> &History {
        &self.hist
    }

    /// Learner counts while leading: (learners connected, followers synced,
    /// observers synced); None when not leading.
    pub fn leader_counts(&self) -> Option<(usize, usize, usize)> {
        match &self.role {
            Role::Leading(l) => Some(l.learner_counts()),
            _ => None,
        }
    }

    /// The highest zxid logged (a leader's last proposal).
    pub fn last_logged(&self) -> Zxid {
        self.hist.last_logged()
    }

    /// True when this server may serve client reads and writes.
    pub fn is_serving(&self) -> bool {
        matches!(self.status, Status::Leading { .. } | Status::Serving { .. })
    }

    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        self.now = now_ms;
        self.next_tick_at = now_ms + self.cfg.tick_ms;
        let mut out = Vec::new();
        self.look(&mut out);
        out
    }

    fn zab_config(&self) -> ZabConfig {
        ZabConfig {
            me: self.cfg.me,
            membership: self.cfg.membership.clone(),
            init_limit: self.cfg.init_limit,
            sync_limit: self.cfg.sync_limit,
            config_text: self.config_text.clone(),
            config_version: self.config_version,
        }
    }

    fn set_status(&mut self, s: Status, out: &mut Vec<Action>) {
        if s != self.status {
            self.status = s;
            out.push(Action::Status(s));
            let epoch = match (&self.role, s) {
                (_, Status::Leading { epoch }) => Some(epoch),
                (Role::Learning(l), Status::Serving { .. }) => Some(l.epoch()),
                _ => None,
            };
            if let Some(epoch) = epoch {
                self.election.update_peer_epoch(epoch);
            }
        }
    }

    fn refresh_status(&mut self, out: &mut Vec<Action>) {
        let s = match &self.role {
            Role::Looking => Status::Looking,
            Role::Leading(l) => match (l.is_established(), l.epoch()) {
                (true, Some(epoch)) => Status::Leading { epoch },
                (_, epoch) => Status::LeaderElect { epoch },
            },
            Role::Learning(l) if l.is_serving() => Status::Serving {
                leader: l.leader(),
                observer: l.is_observer(),
            },
            Role::Learning(l) => Status::Syncing { leader: l.leader() },
        };
        self.set_status(s, out);
    }

    /// Back to LOOKING: close quorum connections, apply what is logged
    /// (ZooKeeper's fast-forward), start an election round.
    fn look(&mut self, out: &mut Vec<Action>) {
        let mut zab_out = Vec::new();
        match std::mem::replace(&mut self.role, Role::Looking) {
            Role::Leading(l) => {
                for id in l.learners() {
                    zab_out.push(zab::Action::Disconnect(id));
                }
            }
            Role::Learning(l) => zab_out.push(zab::Action::Disconnect(l.leader())),
            Role::Looking => {}
        }
        self.push_zab(zab_out, out);
        let first_ff = out.len();
        let mut ff = Vec::new();
        self.hist.fast_forward(&mut ff);
        self.push_zab(ff, out);
        for a in &mut out[first_ff..] {
            if let Action::Apply(e) = a {
                *a = Action::FastForward(e.clone());
            }
        }
        self.set_status(Status::Looking, out);
        let eo = self
            .election
            .start(self.now, self.hist.last_logged(), self.hist.current_epoch);
        self.push_election(eo, out);
    }

    fn push_zab(&self, zab_out: Vec<zab::Action>, out: &mut Vec<Action>) {
        out.extend(zab_out.into_iter().map(|a| match a {
            zab::Action::Send { to, msg } => Action::Send {
                to,
                msg: Message::Zab(msg),
            },
            zab::Action::Persist { seq, op } => Action::Persist { seq, op },
            zab::Action::Apply(e) => Action::Apply(e),
            zab::Action::Disconnect(id) => Action::Disconnect(id),
        }));
    }

    fn push_election(&mut self, eo: Vec<ElectionOutput>, out: &mut Vec<Action>) {
        for o in eo {
            match o {
                ElectionOutput::Send { to, notification } => out.push(Action::Send {
                    to,
                    msg: Message::Election(notification),
                }),
                ElectionOutput::Decided(d) => {
                    let mut zo = Vec::new();
                    let result = if d.state == ServerState::Leading {
                        let mut l = Leader::new(self.zab_config());
                        let r = l.start(&mut self.hist, &mut zo);
                        self.role = Role::Leading(l);
                        r
                    } else {
                        let mut l = Learner::new(
                            self.zab_config(),
                            d.leader,
                            d.state == ServerState::Observing,
                        );
                        l.start(&self.hist, &mut zo);
                        self.role = Role::Learning(l);
                        Ok(())
                    };
                    self.push_zab(zo, out);
                    self.after(result, out);
                }
            }
        }
    }

    /// Handles a role's result: refresh the status, or step down.
    fn after(&mut self, result: Result<(), StepDown>, out: &mut Vec<Action>) {
        match result {
            Ok(()) => self.refresh_status(out),
            Err(why) => {
                if let StepDown::Violation(v) = why {
                    out.push(Action::Violation(format!("server {}: {v}", self.cfg.me)));
                }
                self.look(out);
            }
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let mut zo = Vec::new();
        let result = match input {
            Input::Tick { now_ms } => {
                self.now = now_ms.max(self.now);
                let eo = self.election.on_tick(self.now);
                self.push_election(eo, &mut out);
                let mut r = Ok(());
                while self.now >= self.next_tick_at && r.is_ok() {
                    self.next_tick_at += self.cfg.tick_ms;
                    r = match &mut self.role {
                        Role::Looking => Ok(()),
                        Role::Leading(l) => l.on_tick(&mut zo),
                        Role::Learning(l) => l.on_tick(&self.hist, &mut zo),
                    };
                }
                r
            }
            Input::Message {
                from,
                msg: Message::Election(n),
            } => {
                let eo = self.election.on_notification(self.now, from, &n);
                self.push_election(eo, &mut out);
                Ok(())
            }
            Input::Message {
                from,
                msg: Message::Zab(m),
            } => match &mut self.role {
                // Not leading or learning: refuse the connection.
                Role::Looking => {
                    zo.push(zab::Action::Disconnect(from));
                    Ok(())
                }
                Role::Leading(l) => l.on_message(&mut self.hist, from, m, &mut zo),
                // A server that elected us while we follow someone else (the
                // two elections raced): refuse it as a non-leader's quorum
                // port does; its initLimit runs out and it looks again.
                Role::Learning(_)
                    if matches!(
                        m,
                        ZabMessage::FollowerInfo { .. } | ZabMessage::ObserverInfo { .. }
                    ) =>
                {
                    zo.push(zab::Action::Disconnect(from));
                    Ok(())
                }
                Role::Learning(l) => l.on_message(&mut self.hist, from, m, &mut zo),
            },
            Input::Persisted { seq } => {
                self.hist.persisted(seq);
                match &mut self.role {
                    Role::Looking => Ok(()),
                    Role::Leading(l) => l.on_persisted(&mut self.hist, &mut zo),
                    Role::Learning(l) => {
                        l.on_persisted(&self.hist, &mut zo);
                        Ok(())
                    }
                }
            }
            Input::Connected(peer) => {
                let eo = self.election.on_connected(peer);
                self.push_election(eo, &mut out);
                Ok(())
            }
            Input::Unreachable(peer) => {
                let eo = self.election.on_unreachable(peer);
                self.push_election(eo, &mut out);
                Ok(())
            }
            Input::Disconnected(peer) => match &mut self.role {
                Role::Leading(l) => {
                    l.on_disconnected(peer);
                    Ok(())
                }
                Role::Learning(l) if l.leader() == peer => {
                    Err(StepDown::Normal("lost the leader".into()))
                }
                _ => Ok(()),
            },
        };
        self.push_zab(zo, &mut out);
        self.after(result, &mut out);
        out
    }

    /// Proposes a client write. Only an established leader accepts it (the
    /// zxid is returned); the actions must be executed either way.
    pub fn propose(&mut self, txn: Bytes) -> (Option<Zxid>, Vec<Action>) {
        self.propose_with(txn, None)
    }

    /// The membership in force.
    pub fn membership(&self) -> &Membership {
        &self.cfg.membership
    }

    /// While leading: this server and the learners synced with it.
    pub fn synced(&self) -> Option<std::collections::BTreeSet<ServerId>> {
        match &self.role {
            Role::Leading(l) => Some(l.synced()),
            _ => None,
        }
    }

    /// A committed membership change (a reconfig txn applied). A server
    /// whose own role changes, or a leader no longer among the voters,
    /// goes back to looking and rejoins in its new role.
    pub fn reconfigure(&mut self, m: Membership) -> Vec<Action> {
        let mut out = Vec::new();
        let me = self.cfg.me;
        let old = std::mem::replace(&mut self.cfg.membership, m.clone());
        self.election.set_membership(m.clone());
        let role_changed = old.is_voter(me) != m.is_voter(me)
            || old.observers().contains(&me) != m.observers().contains(&me);
        let mut look = false;
        match &mut self.role {
            Role::Leading(l) => {
                if m.is_voter(me) {
                    for id in l.set_membership(m) {
                        out.push(Action::Disconnect(id));
                    }
                } else {
                    look = true;
                }
            }
            Role::Learning(l) => {
                l.set_membership(m);
                look = role_changed;
            }
            Role::Looking => {}
        }
        if look {
            self.look(&mut out);
        }
        out
    }

    /// As `propose`; `new_config` for a txn that changes the membership.
    pub fn propose_with(
        &mut self,
        txn: Bytes,
        new_config: Option<Membership>,
    ) -> (Option<Zxid>, Vec<Action>) {
        let mut out = Vec::new();
        let Role::Leading(l) = &mut self.role else {
            return (None, out);
        };
        if !l.is_established() {
            return (None, out);
        }
        let mut zo = Vec::new();
        let r = l.propose_with(&mut self.hist, txn, new_config, &mut zo);
        self.push_zab(zo, &mut out);
        match r {
            Ok(z) => (Some(z), out),
            Err(e) => {
                self.after(Err(e), &mut out);
                (None, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::make_zxid;
    use crate::quorum::wire::{LearnerInfo, Notification};
    use proptest::prelude::*;

    fn node(me: ServerId) -> Node {
        let cfg = NodeConfig {
            me,
            membership: Membership::new([1, 2, 3].into(), [4].into()),
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            log_window: 4,
        };
        Node::new(cfg, PersistentState::default())
    }

    fn message(kind: u8, from: ServerId, e: i64, c: i64) -> Message {
        let zxid = make_zxid(e, c);
        let info = LearnerInfo {
            server_id: from as i64,
            ..Default::default()
        };
        let z = match kind % 16 {
            0 => ZabMessage::FollowerInfo {
                accepted_epoch: e,
                info,
            },
            1 => ZabMessage::ObserverInfo {
                accepted_epoch: e,
                info,
            },
            2 => ZabMessage::LeaderInfo {
                new_epoch: e,
                protocol_version: 0x10000,
            },
            3 => ZabMessage::AckEpoch {
                current_epoch: e - 1,
                last_zxid: zxid,
            },
            4 => ZabMessage::Diff { zxid },
            5 => ZabMessage::Trunc { zxid },
            6 => ZabMessage::Snap { zxid },
            7 => ZabMessage::Proposal {
                zxid,
                txn: Bytes::new(),
            },
            8 => ZabMessage::Commit { zxid },
            9 => ZabMessage::Inform {
                zxid,
                txn: Bytes::new(),
            },
            10 => ZabMessage::NewLeader {
                zxid,
                config: Bytes::new(),
            },
            11 => ZabMessage::UpToDate { zxid },
            12 => ZabMessage::Ack { zxid },
            13 => ZabMessage::Ping {
                zxid,
                data: Bytes::new(),
            },
            _ => {
                return Message::Election(Notification {
                    state: ServerState::from_i32((c % 4) as i32).unwrap_or(ServerState::Looking),
                    leader: (c % 5) + 1,
                    zxid,
                    election_epoch: e,
                    peer_epoch: e,
                    version: 2,
                    config: Bytes::new(),
                });
            }
        };
        Message::Zab(z)
    }

    proptest! {
        /// Whatever peers send, in whatever order, a server never panics and
        /// keeps its committed point within its log.
        #[test]
        fn arbitrary_peer_input_never_panics(
            me in 1u64..5,
            steps in proptest::collection::vec((0u8..41, 1u64..6, 0i64..4, 0i64..6), 0..80),
        ) {
            let mut n = node(me);
            let mut now = 0;
            n.start(now);
            for (kind, from, e, c) in steps {
                let input = match kind {
                    32..=35 => {
                        now += 60;
                        Input::Tick { now_ms: now }
                    }
                    36..=37 => Input::Persisted { seq: n.history().last_seq() },
                    38 => Input::Disconnected(from),
                    39 => Input::Connected(from),
                    40 => Input::Unreachable(from),
                    k => Input::Message { from, msg: message(k, from, e, c) },
                };
                n.step(input);
                if kind % 7 == 0 {
                    n.propose(Bytes::from_static(b"x"));
                }
                prop_assert!(n.history().committed() <= n.history().last_logged().max(n.history().base()));
            }
        }
    }
}
