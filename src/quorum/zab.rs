//! ZAB (ZooKeeper Atomic Broadcast) roles as pure state machines, in the
//! style of raft-rs: call a method with an input, get ordered [`Action`]s.
//!
//! * [`History`] — the server's in-memory view of its log and epoch files
//!   (ZooKeeper's ZKDatabase + `acceptedEpoch`/`currentEpoch`), which turns
//!   every change into a `Persist` action with a sequence number.
//! * [`Leader`] — discovery (a quorum of FOLLOWERINFO fixes the new epoch,
//!   a quorum of ACKEPOCH confirms it; a learner ahead of the leader makes
//!   it step down), synchronisation of each learner (DIFF, TRUNC or SNAP
//!   from the learner's last zxid against the committed log, then NEWLEADER;
//!   UPTODATE once a quorum acked NEWLEADER) and broadcast (PROPOSAL, ACK,
//!   COMMIT on a quorum, strictly in zxid order, INFORM to observers, PING,
//!   syncLimit).
//! * [`Learner`] — a follower or an observer: FOLLOWERINFO/OBSERVERINFO,
//!   LEADERINFO → ACKEPOCH, applying DIFF/TRUNC/SNAP, NEWLEADER → ACK,
//!   UPTODATE → serving, then PROPOSAL → ACK and COMMIT/INFORM → apply.
//!
//! Durability: an acknowledgement (ACKEPOCH after a new acceptedEpoch, ACK
//! of NEWLEADER, ACK of a proposal, and the leader's own votes) is sent only
//! once the shell reported the `Persist` actions before it durable.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::wire::{LEARNER_PROTOCOL_VERSION, LearnerInfo, ZabMessage};
use super::{Membership, ServerId, Zxid, counter_of, epoch_of, make_zxid};

/// One logged transaction; `txn` is opaque (TxnHeader + Txn bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub zxid: Zxid,
    pub txn: Bytes,
}

/// A write to stable storage. The shell applies them in order and reports
/// `Persisted { seq }` once everything up to `seq` is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    AcceptedEpoch(i64),
    CurrentEpoch(i64),
    Append(Entry),
    /// Drop every logged txn after `zxid` and rebuild the applied state at
    /// `zxid` (ZooKeeper's truncateLog + reload).
    Truncate(Zxid),
    /// Replace the state with the snapshot that followed the SNAP packet;
    /// the log is empty after it.
    InstallSnapshot(Zxid),
}

/// What a role asks its server to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: ServerId,
        msg: ZabMessage,
    },
    Persist {
        seq: u64,
        op: PersistOp,
    },
    /// A committed txn to apply to the data tree, in zxid order.
    Apply(Entry),
    /// Close the quorum connection with this peer.
    Disconnect(ServerId),
}

/// Why a role ended; the server then looks for a leader again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDown {
    /// An ordinary reason: timeouts, lost quorum, lost connection, a
    /// learner ahead of the leader, an epoch refused.
    Normal(String),
    /// The peer broke the protocol (a bug somewhere); the simulation fails
    /// on these.
    Violation(String),
}

pub type Control = Result<(), StepDown>;

fn normal<T>(why: impl Into<String>) -> Result<T, StepDown> {
    Err(StepDown::Normal(why.into()))
}

fn violation<T>(why: impl Into<String>) -> Result<T, StepDown> {
    Err(StepDown::Violation(why.into()))
}

/// What is on disk when a server starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistentState {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// Zxid of the snapshot the log starts after.
    pub snapshot_zxid: Zxid,
    pub log: Vec<Entry>,
}

/// Names of the epoch files in the snapshot directory (`version-2`).
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";

/// An epoch file's content: the decimal number, no newline (ZooKeeper's
/// `writeLongToFile`, written atomically by a rename).
pub fn format_epoch_file(epoch: i64) -> String {
    epoch.to_string()
}

/// Reads an epoch file as ZooKeeper does: the first line, a decimal long.
pub fn parse_epoch_file(text: &str) -> Result<i64, String> {
    let line = text.lines().next().unwrap_or("");
    line.parse::<i64>()
        .map_err(|_| format!("found {line:?} in an epoch file"))
}

/// The epochs to start with, from the files (None when missing) and the
/// last logged zxid. Missing files default to the epoch of the last zxid,
/// as ZooKeeper does; a current epoch behind the log is refused (unless an
/// epoch update was under way, ZooKeeper's `updatingEpoch` file).
pub fn recover_epochs(
    current: Option<i64>,
    accepted: Option<i64>,
    last_zxid: Zxid,
    updating_epoch: bool,
) -> Result<(i64, i64), String> {
    let from_log = epoch_of(last_zxid);
    let mut current = current.unwrap_or(from_log);
    if current < from_log {
        if updating_epoch {
            current = from_log;
        } else {
            return Err(format!(
                "the current epoch {current} is older than the last zxid {last_zxid:#x}"
            ));
        }
    }
    let accepted = accepted.unwrap_or(from_log);
    if accepted < current {
        return Err(format!(
            "the accepted epoch {accepted} is less than the current epoch {current}"
        ));
    }
    Ok((current, accepted))
}

/// The in-memory view of the log and epochs.
#[derive(Debug, Clone)]
pub struct History {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// State before the first in-memory entry (a snapshot, or compacted).
    base: Zxid,
    entries: VecDeque<Entry>,
    /// Last applied zxid.
    committed: Zxid,
    /// How many committed entries to keep for DIFF; older ones need SNAP.
    window: usize,
    next_seq: u64,
    durable_seq: u64,
}

impl History {
    /// After a restart everything on disk has been applied (ZooKeeper
    /// replays its whole log), so the committed point is the last zxid.
    pub fn new(p: PersistentState, window: usize) -> Self {
        let mut entries: VecDeque<Entry> = p
            .log
            .into_iter()
            .filter(|e| e.zxid > p.snapshot_zxid)
            .collect();
        let mut base = p.snapshot_zxid;
        while entries.len() > window {
            base = entries.pop_front().map(|e| e.zxid).unwrap_or(base);
        }
        let committed = entries.back().map(|e| e.zxid).unwrap_or(base);
        History {
            accepted_epoch: p.accepted_epoch,
            current_epoch: p.current_epoch,
            base,
            entries,
            committed,
            window: window.max(1),
            next_seq: 1,
            durable_seq: 0,
        }
    }

    pub fn last_logged(&self) -> Zxid {
        self.entries.back().map(|e| e.zxid).unwrap_or(self.base)
    }

    pub fn committed(&self) -> Zxid {
        self.committed
    }

    pub fn base(&self) -> Zxid {
        self.base
    }

    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The sequence number of the last persist issued (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    fn entry(&self, zxid: Zxid) -> Option<&Entry> {
        let i = self.entries.binary_search_by_key(&zxid, |e| e.zxid).ok()?;
        self.entries.get(i)
    }

    pub(crate) fn persisted(&mut self, seq: u64) {
        self.durable_seq = self.durable_seq.max(seq.min(self.last_seq()));
    }

    fn persist(&mut self, op: PersistOp, out: &mut Vec<Action>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        out.push(Action::Persist { seq, op });
        seq
    }

    fn set_accepted_epoch(&mut self, e: i64, out: &mut Vec<Action>) -> u64 {
        self.accepted_epoch = e;
        self.persist(PersistOp::AcceptedEpoch(e), out)
    }

    fn set_current_epoch(&mut self, e: i64, out: &mut Vec<Action>) -> u64 {
        self.current_epoch = e;
        self.persist(PersistOp::CurrentEpoch(e), out)
    }

    fn append(&mut self, e: Entry, out: &mut Vec<Action>) -> Result<u64, StepDown> {
        if e.zxid <= self.last_logged() {
            return violation(format!(
                "append of {:#x} after {:#x}",
                e.zxid,
                self.last_logged()
            ));
        }
        self.entries.push_back(e.clone());
        Ok(self.persist(PersistOp::Append(e), out))
    }

    /// Truncation may reach below the in-memory window (entries compacted
    /// from memory, or applied by fast-forward, are still in the txn log on
    /// disk); the shell truncates its log and reloads.
    fn truncate(&mut self, zxid: Zxid, out: &mut Vec<Action>) -> Result<(), StepDown> {
        while self.entries.back().is_some_and(|e| e.zxid > zxid) {
            self.entries.pop_back();
        }
        if zxid < self.base {
            self.base = zxid;
        }
        self.committed = self.committed.min(zxid);
        self.persist(PersistOp::Truncate(zxid), out);
        Ok(())
    }

    fn install_snapshot(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        self.entries.clear();
        self.base = zxid;
        self.committed = zxid;
        self.persist(PersistOp::InstallSnapshot(zxid), out);
    }

    /// Commits the next logged txn, which must be `zxid`.
    fn commit_next(&mut self, zxid: Zxid, out: &mut Vec<Action>) -> Control {
        // Entries are in zxid order: a binary search, not a scan of the
        // whole window on every commit (it showed in profiles).
        let committed = self.committed;
        let next = self
            .entries
            .get(self.entries.partition_point(|e| e.zxid <= committed));
        match next {
            Some(e) if e.zxid == zxid => {
                out.push(Action::Apply(e.clone()));
                self.committed = zxid;
                self.compact();
                Ok(())
            }
            Some(e) => violation(format!("commit of {zxid:#x} but next is {:#x}", e.zxid)),
            None => violation(format!("commit of {zxid:#x} which is not logged")),
        }
    }

    /// Applies every logged but uncommitted txn: what ZooKeeper does when a
    /// server leaves a role (`fastForwardDataBase`). Sync fixes it later.
    pub(crate) fn fast_forward(&mut self, out: &mut Vec<Action>) {
        let pending: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| e.zxid > self.committed)
            .cloned()
            .collect();
        for e in pending {
            self.committed = e.zxid;
            out.push(Action::Apply(e));
        }
        self.compact();
    }

    fn compact(&mut self) {
        while self.entries.len() > self.window
            && self
                .entries
                .front()
                .is_some_and(|e| e.zxid <= self.committed)
        {
            if let Some(e) = self.entries.pop_front() {
                self.base = e.zxid;
            }
        }
    }
}

/// Limits, in ticks, as zoo.cfg's `initLimit` and `syncLimit`.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    pub me: ServerId,
    pub membership: Membership,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// Config text sent with NEWLEADER.
    pub config_text: Bytes,
    pub config_version: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaderPhase {
    Discovery,
    Synchronization,
    Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandleStage {
    /// FOLLOWERINFO received; LEADERINFO sent or waiting for the epoch.
    AwaitAckEpoch,
    /// ACKEPOCH received; waiting for a quorum of them to sync.
    AwaitSync { peer_last: Zxid },
    /// Sync and NEWLEADER sent.
    AwaitNewLeaderAck,
    /// NEWLEADER acked.
    Synced,
}

#[derive(Debug, Clone)]
struct LearnerHandle {
    observer: bool,
    accepted_epoch: i64,
    stage: HandleStage,
    /// Part of the broadcast: gets new proposals and commits.
    forwarding: bool,
    last_heard: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelfWait {
    EpochAck,
    NewLeaderAck,
    Proposal(Zxid),
}

/// The leader of one epoch.
#[derive(Debug, Clone)]
pub struct Leader {
    cfg: ZabConfig,
    phase: LeaderPhase,
    epoch: Option<i64>,
    handles: BTreeMap<ServerId, LearnerHandle>,
    epoch_acks: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    /// Proposals not yet committed, with the voters that acked them.
    outstanding: BTreeMap<Zxid, BTreeSet<ServerId>>,
    /// Proposals that change the membership: they need a quorum of the
    /// new voters too (non-voting learners' acks count there).
    new_configs: BTreeMap<Zxid, Membership>,
    last_proposed: Zxid,
    self_waits: Vec<(u64, SelfWait)>,
    tick: u64,
    deadline: u64,
}

impl Leader {
    pub fn new(cfg: ZabConfig) -> Self {
        Leader {
            cfg,
            phase: LeaderPhase::Discovery,
            epoch: None,
            handles: BTreeMap::new(),
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            new_configs: BTreeMap::new(),
            last_proposed: 0,
            self_waits: Vec::new(),
            tick: 0,
            deadline: 0,
        }
    }

    /// The new epoch once a quorum of followers fixed it.
    pub fn epoch(&self) -> Option<i64> {
        self.epoch
    }

    /// True once a quorum acked NEWLEADER: the leader serves writes.
    pub fn is_established(&self) -> bool {
        self.phase == LeaderPhase::Broadcast
    }

    pub fn start(&mut self, hist: &mut History, out: &mut Vec<Action>) -> Control {
        self.deadline = self.tick + self.cfg.init_limit;
        self.try_fix_epoch(hist, out)
    }

    fn voters_connected(&self) -> impl Iterator<Item = ServerId> + '_ {
        std::iter::once(self.cfg.me).chain(
            self.handles
                .iter()
                .filter(|(_, h)| !h.observer)
                .map(|(id, _)| *id),
        )
    }

    /// `getEpochToPropose`: once a quorum of voters connected, the new epoch
    /// is one more than the highest accepted epoch among them.
    fn try_fix_epoch(&mut self, hist: &mut History, out: &mut Vec<Action>) -> Control {
        if self.epoch.is_some() || !self.cfg.membership.is_quorum(self.voters_connected()) {
            return Ok(());
        }
        let max = self
            .handles
            .values()
            .map(|h| h.accepted_epoch)
            .chain(std::iter::once(hist.accepted_epoch))
            .max()
            .unwrap_or(0);
        let epoch = max + 1;
        self.epoch = Some(epoch);
        self.last_proposed = make_zxid(epoch, 0);
        // LEADERINFO goes out only once our own accepted epoch is durable
        // (ZooKeeper writes the file before sending it): a learner that
        // accepted an epoch its leader then lost in a crash would refuse
        // every later leader of a lower epoch, for as long as one leads.
        let seq = hist.set_accepted_epoch(epoch, out);
        self.self_waits.push((seq, SelfWait::EpochAck));
        self.on_persisted(hist, out)
    }

    /// Our accepted epoch is durable: LEADERINFO to every learner waiting.
    fn send_leader_infos(&self, epoch: i64, out: &mut Vec<Action>) {
        for (id, h) in &self.handles {
            if h.stage == HandleStage::AwaitAckEpoch {
                self.send_leader_info(*id, epoch, out);
            }
        }
    }

    fn send_leader_info(&self, to: ServerId, epoch: i64, out: &mut Vec<Action>) {
        out.push(Action::Send {
            to,
            msg: ZabMessage::LeaderInfo {
                new_epoch: epoch,
                protocol_version: LEARNER_PROTOCOL_VERSION,
            },
        });
    }

    /// The shell made everything up to `hist.durable_seq()` durable.
    pub fn on_persisted(&mut self, hist: &mut History, out: &mut Vec<Action>) -> Control {
        let durable = hist.durable_seq();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            self.self_waits.drain(..).partition(|(s, _)| *s <= durable);
        self.self_waits = waiting;
        let me = self.cfg.me;
        for (_, w) in ready {
            match w {
                SelfWait::EpochAck => {
                    self.epoch_acks.insert(me);
                    if let Some(epoch) = self.epoch {
                        self.send_leader_infos(epoch, out);
                    }
                    self.try_start_sync(hist, out)?;
                }
                SelfWait::NewLeaderAck => {
                    self.newleader_acks.insert(me);
                    self.try_establish(out);
                }
                SelfWait::Proposal(z) => {
                    if let Some(acks) = self.outstanding.get_mut(&z) {
                        acks.insert(me);
                    }
                    self.try_commit(hist, out);
                }
            }
        }
        Ok(())
    }

    pub fn on_message(
        &mut self,
        hist: &mut History,
        from: ServerId,
        msg: ZabMessage,
        out: &mut Vec<Action>,
    ) -> Control {
        if let Some(h) = self.handles.get_mut(&from) {
            h.last_heard = self.tick;
        }
        match msg {
            ZabMessage::FollowerInfo {
                accepted_epoch,
                info,
            }
            | ZabMessage::ObserverInfo {
                accepted_epoch,
                info,
            } if info.server_id as u64 != from => {
                let _ = accepted_epoch;
                out.push(Action::Disconnect(from));
                Ok(())
            }
            ZabMessage::FollowerInfo { accepted_epoch, .. } => {
                self.on_learner_info(hist, from, accepted_epoch, false, out)
            }
            ZabMessage::ObserverInfo { accepted_epoch, .. } => {
                self.on_learner_info(hist, from, accepted_epoch, true, out)
            }
            ZabMessage::AckEpoch {
                current_epoch,
                last_zxid,
            } => {
                let Some(h) = self.handles.get_mut(&from) else {
                    return Ok(());
                };
                if h.stage != HandleStage::AwaitAckEpoch {
                    out.push(Action::Disconnect(from));
                    self.handles.remove(&from);
                    return Ok(());
                }
                h.stage = HandleStage::AwaitSync {
                    peer_last: last_zxid,
                };
                let observer = h.observer;
                if current_epoch != -1 {
                    if (current_epoch, last_zxid) > (hist.current_epoch, hist.last_logged()) {
                        return normal(format!("learner {from} is ahead of the leader"));
                    }
                    if !observer {
                        self.epoch_acks.insert(from);
                    }
                }
                if self.phase == LeaderPhase::Discovery {
                    self.try_start_sync(hist, out)
                } else {
                    self.sync_learner(hist, from, out);
                    Ok(())
                }
            }
            ZabMessage::Ack { zxid } => {
                let Some(h) = self.handles.get_mut(&from) else {
                    return Ok(());
                };
                if h.stage == HandleStage::AwaitNewLeaderAck {
                    if Some(zxid) != self.epoch.map(|e| make_zxid(e, 0)) {
                        out.push(Action::Disconnect(from));
                        self.handles.remove(&from);
                        return Ok(());
                    }
                    h.stage = HandleStage::Synced;
                    if !h.observer {
                        self.newleader_acks.insert(from);
                    }
                    if self.phase == LeaderPhase::Broadcast {
                        out.push(Action::Send {
                            to: from,
                            msg: ZabMessage::UpToDate { zxid: -1 },
                        });
                    } else {
                        self.try_establish(out);
                    }
                    return Ok(());
                }
                if counter_of(zxid) == 0 || h.stage != HandleStage::Synced || h.observer {
                    return Ok(());
                }
                if let Some(acks) = self.outstanding.get_mut(&zxid) {
                    acks.insert(from);
                    self.try_commit(hist, out);
                }
                Ok(())
            }
            ZabMessage::Ping { .. } => Ok(()),
            _ => Ok(()),
        }
    }

    fn on_learner_info(
        &mut self,
        hist: &mut History,
        from: ServerId,
        accepted_epoch: i64,
        observer: bool,
        out: &mut Vec<Action>,
    ) -> Control {
        if let Some(e) = self.epoch
            && accepted_epoch > e
        {
            // The learner accepted a higher epoch (from a would-be leader
            // that failed before anyone else got it) and will refuse ours
            // for as long as we lead. ZooKeeper leaves it out for that long;
            // a new election makes the epoch at least one higher each time.
            return normal(format!(
                "server {from} accepted epoch {accepted_epoch}, above ours ({e}): electing again"
            ));
        }
        // A reconnecting learner replaces its old connection.
        self.handles.insert(
            from,
            LearnerHandle {
                observer,
                accepted_epoch,
                stage: HandleStage::AwaitAckEpoch,
                forwarding: false,
                last_heard: self.tick,
            },
        );
        self.newleader_acks.remove(&from);
        match self.epoch {
            // Not before our accepted epoch is durable (`send_leader_infos`).
            Some(e) if self.epoch_acks.contains(&self.cfg.me) => {
                self.send_leader_info(from, e, out);
                Ok(())
            }
            Some(_) => Ok(()),
            None => self.try_fix_epoch(hist, out),
        }
    }

    /// `waitForEpochAck`: once a quorum confirmed the epoch, it becomes our
    /// current epoch and every learner that acked is synchronised.
    fn try_start_sync(&mut self, hist: &mut History, out: &mut Vec<Action>) -> Control {
        if self.phase != LeaderPhase::Discovery
            || !self
                .cfg
                .membership
                .is_quorum(self.epoch_acks.iter().copied())
        {
            return Ok(());
        }
        let Some(epoch) = self.epoch else {
            return Ok(());
        };
        self.phase = LeaderPhase::Synchronization;
        let seq = hist.set_current_epoch(epoch, out);
        self.self_waits.push((seq, SelfWait::NewLeaderAck));
        let ready: Vec<ServerId> = self
            .handles
            .iter()
            .filter(|(_, h)| matches!(h.stage, HandleStage::AwaitSync { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.sync_learner(hist, id, out);
        }
        Ok(())
    }

    /// `syncFollower`: DIFF when the learner's last zxid is in our committed
    /// log, TRUNC (then DIFF) when it has txns we do not, SNAP when it is
    /// older than our in-memory log; then outstanding proposals and
    /// NEWLEADER. From here on it receives the broadcast.
    fn sync_learner(&mut self, hist: &History, to: ServerId, out: &mut Vec<Action>) {
        let Some(h) = self.handles.get_mut(&to) else {
            return;
        };
        let HandleStage::AwaitSync { peer_last } = h.stage else {
            return;
        };
        let Some(epoch) = self.epoch else {
            return;
        };
        let observer = h.observer;
        let committed = hist.committed();
        let send = |msg, out: &mut Vec<Action>| out.push(Action::Send { to, msg });
        let from_zxid = if peer_last == committed {
            send(ZabMessage::Diff { zxid: committed }, out);
            committed
        } else if peer_last > committed {
            send(ZabMessage::Trunc { zxid: committed }, out);
            committed
        } else if peer_last >= hist.base() {
            if peer_last == hist.base() || hist.entry(peer_last).is_some() {
                send(ZabMessage::Diff { zxid: committed }, out);
                peer_last
            } else {
                // The learner holds a txn we never committed: cut it back
                // to the last zxid we share, then send what follows.
                let prev = hist
                    .entries()
                    .map(|e| e.zxid)
                    .take_while(|z| *z < peer_last)
                    .last()
                    .unwrap_or(hist.base());
                send(ZabMessage::Trunc { zxid: prev }, out);
                prev
            }
        } else {
            send(ZabMessage::Snap { zxid: committed }, out);
            committed
        };
        for e in hist
            .entries()
            .filter(|e| e.zxid > from_zxid && e.zxid <= committed)
        {
            send(
                ZabMessage::Proposal {
                    zxid: e.zxid,
                    txn: e.txn.clone(),
                },
                out,
            );
            send(ZabMessage::Commit { zxid: e.zxid }, out);
        }
        if !observer {
            for e in hist.entries().filter(|e| e.zxid > committed) {
                send(
                    ZabMessage::Proposal {
                        zxid: e.zxid,
                        txn: e.txn.clone(),
                    },
                    out,
                );
            }
        }
        send(
            ZabMessage::NewLeader {
                zxid: make_zxid(epoch, 0),
                config: self.cfg.config_text.clone(),
            },
            out,
        );
        h.stage = HandleStage::AwaitNewLeaderAck;
        h.forwarding = true;
    }

    /// `waitForNewLeaderAck`: a quorum holds our history; start serving.
    fn try_establish(&mut self, out: &mut Vec<Action>) {
        if self.phase != LeaderPhase::Synchronization
            || !self
                .cfg
                .membership
                .is_quorum(self.newleader_acks.iter().copied())
        {
            return;
        }
        self.phase = LeaderPhase::Broadcast;
        for (id, h) in &self.handles {
            if h.stage == HandleStage::Synced {
                out.push(Action::Send {
                    to: *id,
                    msg: ZabMessage::UpToDate { zxid: -1 },
                });
            }
        }
    }

    /// Proposes a txn; returns its zxid. Only an established leader accepts.
    pub fn propose(
        &mut self,
        hist: &mut History,
        txn: Bytes,
        out: &mut Vec<Action>,
    ) -> Result<Zxid, StepDown> {
        self.propose_with(hist, txn, None, out)
    }

    /// Proposes a txn; `new_config` when it changes the membership (it then
    /// commits on a quorum of the old voters and of the new ones).
    pub fn propose_with(
        &mut self,
        hist: &mut History,
        txn: Bytes,
        new_config: Option<Membership>,
        out: &mut Vec<Action>,
    ) -> Result<Zxid, StepDown> {
        if self.phase != LeaderPhase::Broadcast {
            return normal("not established");
        }
        if counter_of(self.last_proposed) >= 0xffff_fffe {
            // ZooKeeper forces a new epoch when the counter would roll over.
            return normal("zxid counter exhausted");
        }
        let zxid = self.last_proposed + 1;
        self.last_proposed = zxid;
        let seq = hist.append(
            Entry {
                zxid,
                txn: txn.clone(),
            },
            out,
        )?;
        self.outstanding.insert(zxid, BTreeSet::new());
        if let Some(m) = new_config {
            self.new_configs.insert(zxid, m);
        }
        self.self_waits.push((seq, SelfWait::Proposal(zxid)));
        for (id, h) in &self.handles {
            if h.forwarding && !h.observer {
                out.push(Action::Send {
                    to: *id,
                    msg: ZabMessage::Proposal {
                        zxid,
                        txn: txn.clone(),
                    },
                });
            }
        }
        Ok(zxid)
    }

    /// Commits the lowest outstanding proposals while each has a quorum.
    fn try_commit(&mut self, hist: &mut History, out: &mut Vec<Action>) {
        while let Some((&zxid, acks)) = self.outstanding.first_key_value() {
            if !self.cfg.membership.is_quorum(acks.iter().copied())
                || self
                    .new_configs
                    .get(&zxid)
                    .is_some_and(|m| !m.is_quorum(acks.iter().copied()))
            {
                break;
            }
            self.outstanding.remove(&zxid);
            self.new_configs.remove(&zxid);
            let txn = hist.entry(zxid).map(|e| e.txn.clone()).unwrap_or_default();
            if hist.commit_next(zxid, out).is_err() {
                break;
            }
            for (id, h) in &self.handles {
                if !h.forwarding {
                    continue;
                }
                let msg = if h.observer {
                    ZabMessage::Inform {
                        zxid,
                        txn: txn.clone(),
                    }
                } else {
                    ZabMessage::Commit { zxid }
                };
                out.push(Action::Send { to: *id, msg });
            }
        }
    }

    pub fn on_disconnected(&mut self, peer: ServerId) {
        self.handles.remove(&peer);
    }

    /// One tick: initLimit while establishing; in broadcast, PINGs and the
    /// check that a quorum of voters was heard from within syncLimit.
    pub fn on_tick(&mut self, out: &mut Vec<Action>) -> Control {
        self.tick += 1;
        let tick = self.tick;
        let (init, sync) = (self.cfg.init_limit, self.cfg.sync_limit);
        let stale: Vec<ServerId> = self
            .handles
            .iter()
            .filter(|(_, h)| {
                let limit = if h.stage == HandleStage::Synced {
                    sync
                } else {
                    init
                };
                tick > h.last_heard + limit
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.handles.remove(&id);
            out.push(Action::Disconnect(id));
        }
        if self.phase != LeaderPhase::Broadcast {
            if tick > self.deadline {
                return normal("no quorum established within initLimit");
            }
            return Ok(());
        }
        for (id, h) in &self.handles {
            if h.stage == HandleStage::Synced {
                out.push(Action::Send {
                    to: *id,
                    msg: ZabMessage::Ping {
                        zxid: self.last_proposed,
                        data: Bytes::new(),
                    },
                });
            }
        }
        let synced = std::iter::once(self.cfg.me).chain(
            self.handles
                .iter()
                .filter(|(_, h)| h.stage == HandleStage::Synced && !h.observer)
                .map(|(id, _)| *id),
        );
        if !self.cfg.membership.is_quorum(synced) {
            return normal("lost the quorum of synced followers");
        }
        Ok(())
    }

    /// This server and the learners synced with it.
    pub fn synced(&self) -> BTreeSet<ServerId> {
        std::iter::once(self.cfg.me)
            .chain(
                self.handles
                    .iter()
                    .filter(|(_, h)| h.stage == HandleStage::Synced)
                    .map(|(id, _)| *id),
            )
            .collect()
    }

    /// A committed membership change: from now on quorums are counted in
    /// `m`. Returns the learners connected in a role `m` no longer gives
    /// them (they must reconnect in the new one).
    pub fn set_membership(&mut self, m: Membership) -> Vec<ServerId> {
        let stale: Vec<ServerId> = self
            .handles
            .iter()
            .filter(|(id, h)| m.is_member(**id) && h.observer != m.observers().contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            self.handles.remove(id);
        }
        self.cfg.membership = m;
        stale
    }

    /// (learners connected, followers synced, observers synced).
    pub fn learner_counts(&self) -> (usize, usize, usize) {
        let synced = |obs: bool| {
            self.handles
                .values()
                .filter(|h| h.observer == obs && h.stage == HandleStage::Synced)
                .count()
        };
        (self.handles.len(), synced(false), synced(true))
    }

    pub fn learners(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.handles.keys().copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerPhase {
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    Connecting,
    /// ACKEPOCH sent (or about to be), waiting for DIFF/TRUNC/SNAP.
    AwaitSync,
    /// Applying the sync stream until NEWLEADER.
    Syncing,
    /// NEWLEADER received; acked once durable; waiting for UPTODATE.
    AwaitUpToDate,
    /// Up to date: serving clients, following the broadcast.
    Serving,
}

/// A follower, or an observer (which never votes: no ACKs of proposals, and
/// commits arrive as INFORM).
#[derive(Debug, Clone)]
pub struct Learner {
    cfg: ZabConfig,
    leader: ServerId,
    observer: bool,
    phase: LearnerPhase,
    new_epoch: i64,
    /// Acks to send once their persist is durable, in order.
    pending: VecDeque<(u64, ZabMessage)>,
    /// Set once NEWLEADER is acked; proposals before it are acked after it.
    acks_open: bool,
    held_acks: Vec<(u64, Zxid)>,
    /// The connection to the leader was refused or lost before LEADERINFO:
    /// try again on the next tick (ZooKeeper retries `connectToLeader`).
    reconnect: bool,
    tick: u64,
    last_heard: u64,
}

impl Learner {
    pub fn set_membership(&mut self, m: Membership) {
        self.cfg.membership = m;
    }

    pub fn new(cfg: ZabConfig, leader: ServerId, observer: bool) -> Self {
        Learner {
            cfg,
            leader,
            observer,
            phase: LearnerPhase::Connecting,
            new_epoch: 0,
            pending: VecDeque::new(),
            acks_open: false,
            held_acks: Vec::new(),
            reconnect: false,
            tick: 0,
            last_heard: 0,
        }
    }

    pub fn leader(&self) -> ServerId {
        self.leader
    }

    /// The epoch the leader announced (0 before LEADERINFO).
    pub fn epoch(&self) -> i64 {
        self.new_epoch
    }

    pub fn is_observer(&self) -> bool {
        self.observer
    }

    /// True once UPTODATE arrived: the server may serve clients.
    pub fn is_serving(&self) -> bool {
        self.phase == LearnerPhase::Serving
    }

    /// The quorum connection to the leader closed. Before the leader
    /// answered, we retry on the next tick (within initLimit); after, the
    /// server must look for a leader again.
    pub fn on_disconnected(&mut self) -> Control {
        if self.phase == LearnerPhase::Connecting {
            self.reconnect = true;
            return Ok(());
        }
        normal("lost the leader")
    }

    pub fn start(&mut self, hist: &History, out: &mut Vec<Action>) {
        let info = LearnerInfo {
            server_id: self.cfg.me as i64,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: self.cfg.config_version,
        };
        let accepted_epoch = hist.accepted_epoch;
        let msg = if self.observer {
            ZabMessage::ObserverInfo {
                accepted_epoch,
                info,
            }
        } else {
            ZabMessage::FollowerInfo {
                accepted_epoch,
                info,
            }
        };
        self.send(msg, out);
    }

    fn send(&self, msg: ZabMessage, out: &mut Vec<Action>) {
        out.push(Action::Send {
            to: self.leader,
            msg,
        });
    }

    fn queue_ack(&mut self, hist: &History, seq: u64, msg: ZabMessage, out: &mut Vec<Action>) {
        self.pending.push_back((seq, msg));
        self.flush(hist, out);
    }

    /// Sends the acks whose writes are durable, in order.
    fn flush(&mut self, hist: &History, out: &mut Vec<Action>) {
        while let Some((seq, _)) = self.pending.front() {
            if *seq > hist.durable_seq() {
                break;
            }
            let (_, msg) = self.pending.pop_front().expect("front exists");
            if let ZabMessage::Ack { zxid } = msg
                && counter_of(zxid) == 0
                && self.phase != LearnerPhase::Serving
            {
                // The NEWLEADER ack: proposals received during sync follow.
                self.send(msg, out);
                self.acks_open = true;
                let held = std::mem::take(&mut self.held_acks);
                for (s, z) in held.into_iter().rev() {
                    self.pending.push_front((s, ZabMessage::Ack { zxid: z }));
                }
                continue;
            }
            self.send(msg, out);
        }
    }

    pub fn on_persisted(&mut self, hist: &History, out: &mut Vec<Action>) {
        self.flush(hist, out);
    }

    pub fn on_message(
        &mut self,
        hist: &mut History,
        from: ServerId,
        msg: ZabMessage,
        out: &mut Vec<Action>,
    ) -> Control {
        if from != self.leader {
            out.push(Action::Disconnect(from));
            return Ok(());
        }
        self.last_heard = self.tick;
        match (self.phase, msg) {
            (LearnerPhase::Connecting, ZabMessage::LeaderInfo { new_epoch, .. }) => {
                self.new_epoch = new_epoch;
                self.phase = LearnerPhase::AwaitSync;
                if new_epoch > hist.accepted_epoch {
                    let current_epoch = hist.current_epoch;
                    let seq = hist.set_accepted_epoch(new_epoch, out);
                    let last_zxid = hist.last_logged();
                    self.queue_ack(
                        hist,
                        seq,
                        ZabMessage::AckEpoch {
                            current_epoch,
                            last_zxid,
                        },
                        out,
                    );
                } else if new_epoch == hist.accepted_epoch {
                    let last_zxid = hist.last_logged();
                    self.send(
                        ZabMessage::AckEpoch {
                            current_epoch: -1,
                            last_zxid,
                        },
                        out,
                    );
                } else {
                    return normal(format!(
                        "leader's epoch {new_epoch} is below our accepted epoch {}",
                        hist.accepted_epoch
                    ));
                }
                Ok(())
            }
            (LearnerPhase::AwaitSync, ZabMessage::Diff { .. }) => {
                self.phase = LearnerPhase::Syncing;
                Ok(())
            }
            (LearnerPhase::AwaitSync, ZabMessage::Trunc { zxid }) => {
                self.phase = LearnerPhase::Syncing;
                hist.truncate(zxid, out)
            }
            (LearnerPhase::AwaitSync, ZabMessage::Snap { zxid }) => {
                self.phase = LearnerPhase::Syncing;
                hist.install_snapshot(zxid, out);
                Ok(())
            }
            (
                LearnerPhase::Syncing | LearnerPhase::AwaitUpToDate | LearnerPhase::Serving,
                ZabMessage::Proposal { zxid, txn },
            ) => {
                if self.observer && self.phase == LearnerPhase::Serving {
                    return violation("observer got a PROPOSAL");
                }
                let seq = hist.append(Entry { zxid, txn }, out)?;
                if !self.observer {
                    if self.acks_open {
                        self.queue_ack(hist, seq, ZabMessage::Ack { zxid }, out);
                    } else {
                        self.held_acks.push((seq, zxid));
                    }
                }
                Ok(())
            }
            (
                LearnerPhase::Syncing | LearnerPhase::AwaitUpToDate | LearnerPhase::Serving,
                ZabMessage::Commit { zxid },
            ) => hist.commit_next(zxid, out),
            (
                LearnerPhase::Syncing | LearnerPhase::AwaitUpToDate | LearnerPhase::Serving,
                ZabMessage::Inform { zxid, txn },
            ) if self.observer => {
                hist.append(Entry { zxid, txn }, out)?;
                hist.commit_next(zxid, out)
            }
            (LearnerPhase::Syncing, ZabMessage::NewLeader { zxid, .. }) => {
                if epoch_of(zxid) != self.new_epoch {
                    return violation("NEWLEADER for another epoch");
                }
                self.phase = LearnerPhase::AwaitUpToDate;
                let seq = hist.set_current_epoch(self.new_epoch, out);
                self.queue_ack(hist, seq, ZabMessage::Ack { zxid }, out);
                Ok(())
            }
            (LearnerPhase::AwaitUpToDate, ZabMessage::UpToDate { .. }) => {
                if !self.acks_open {
                    return violation("UPTODATE before our NEWLEADER ack");
                }
                self.phase = LearnerPhase::Serving;
                self.send(
                    ZabMessage::Ack {
                        zxid: make_zxid(self.new_epoch, 0),
                    },
                    out,
                );
                Ok(())
            }
            (_, ZabMessage::Ping { zxid, data }) => {
                self.send(ZabMessage::Ping { zxid, data }, out);
                Ok(())
            }
            (phase, msg) => violation(format!("unexpected {msg:?} in {phase:?}")),
        }
    }

    /// One tick: the leader must be heard within initLimit while syncing and
    /// syncLimit while serving.
    pub fn on_tick(&mut self, hist: &History, out: &mut Vec<Action>) -> Control {
        self.tick += 1;
        if self.reconnect && self.phase == LearnerPhase::Connecting {
            self.reconnect = false;
            self.start(hist, out);
        }
        let limit = if self.phase == LearnerPhase::Serving {
            self.cfg.sync_limit
        } else {
            self.cfg.init_limit
        };
        if self.tick > self.last_heard + limit {
            return normal("leader silent");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(e: i64, c: i64) -> Zxid {
        make_zxid(e, c)
    }

    fn log(zs: &[Zxid]) -> Vec<Entry> {
        zs.iter()
            .map(|&zxid| Entry {
                zxid,
                txn: Bytes::from(format!("t{zxid:x}")),
            })
            .collect()
    }

    fn cfg(me: ServerId) -> ZabConfig {
        ZabConfig {
            me,
            membership: Membership::new([1, 2, 3].into(), [4].into()),
            init_limit: 10,
            sync_limit: 5,
            config_text: Bytes::new(),
            config_version: 0,
        }
    }

    fn durable(h: &mut History) {
        let s = h.last_seq();
        h.persisted(s);
    }

    /// Server 1 started as leader on a log `zs` with both epochs at `epoch`.
    fn started_leader(epoch: i64, zs: &[Zxid]) -> (History, Leader, Vec<Action>) {
        let mut h = History::new(
            PersistentState {
                accepted_epoch: epoch,
                current_epoch: epoch,
                snapshot_zxid: 0,
                log: log(zs),
            },
            10,
        );
        let mut l = Leader::new(cfg(1));
        let mut out = Vec::new();
        l.start(&mut h, &mut out).unwrap();
        (h, l, out)
    }

    fn follower_info(id: ServerId, accepted_epoch: i64) -> ZabMessage {
        ZabMessage::FollowerInfo {
            accepted_epoch,
            info: LearnerInfo {
                server_id: id as i64,
                ..Default::default()
            },
        }
    }

    fn sent_to(out: &[Action], to: ServerId) -> Vec<ZabMessage> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { to: t, msg } if *t == to => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    /// Leader 1 (log `leader_log`, current epoch `epoch`) syncs follower 2
    /// whose last zxid is `peer_last`; returns what 2 receives after
    /// LEADERINFO.
    fn sync(
        leader_log: &[Zxid],
        epoch: i64,
        peer_last: Zxid,
        window: usize,
    ) -> Result<Vec<ZabMessage>, StepDown> {
        let mut h = History::new(
            PersistentState {
                accepted_epoch: epoch,
                current_epoch: epoch,
                snapshot_zxid: 0,
                log: log(leader_log),
            },
            window,
        );
        let mut l = Leader::new(cfg(1));
        let mut out = Vec::new();
        l.start(&mut h, &mut out)?;
        let info = LearnerInfo {
            server_id: 2,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: 0,
        };
        l.on_message(
            &mut h,
            2,
            ZabMessage::FollowerInfo {
                accepted_epoch: epoch,
                info,
            },
            &mut out,
        )?;
        assert_eq!(l.epoch(), Some(epoch + 1));
        durable(&mut h);
        l.on_persisted(&mut h, &mut out)?;
        out.clear();
        l.on_message(
            &mut h,
            2,
            ZabMessage::AckEpoch {
                current_epoch: epoch_of(peer_last).min(epoch),
                last_zxid: peer_last,
            },
            &mut out,
        )?;
        // NEWLEADER acked by 2 and by the leader itself: established.
        l.on_message(
            &mut h,
            2,
            ZabMessage::Ack {
                zxid: z(epoch + 1, 0),
            },
            &mut out,
        )?;
        assert!(
            !l.is_established(),
            "the leader's own ack waits for its disk"
        );
        durable(&mut h);
        l.on_persisted(&mut h, &mut out)?;
        assert!(l.is_established());
        Ok(sent_to(&out, 2))
    }

    fn newleader(epoch: i64) -> ZabMessage {
        ZabMessage::NewLeader {
            zxid: z(epoch, 0),
            config: Bytes::new(),
        }
    }

    #[test]
    fn up_to_date_follower_gets_an_empty_diff() {
        let m = sync(&[z(1, 1), z(1, 2)], 1, z(1, 2), 100).unwrap();
        assert_eq!(
            m,
            vec![
                ZabMessage::Diff { zxid: z(1, 2) },
                newleader(2),
                ZabMessage::UpToDate { zxid: -1 }
            ]
        );
    }

    #[test]
    fn lagging_follower_gets_the_missing_txns() {
        let m = sync(&[z(1, 1), z(1, 2), z(1, 3)], 1, z(1, 1), 100).unwrap();
        assert_eq!(m[0], ZabMessage::Diff { zxid: z(1, 3) });
        assert!(matches!(m[1], ZabMessage::Proposal { zxid, .. } if zxid == z(1, 2)));
        assert_eq!(m[2], ZabMessage::Commit { zxid: z(1, 2) });
        assert!(matches!(m[3], ZabMessage::Proposal { zxid, .. } if zxid == z(1, 3)));
        assert_eq!(m[4], ZabMessage::Commit { zxid: z(1, 3) });
        assert_eq!(m[5], newleader(2));
    }

    #[test]
    fn follower_with_an_uncommitted_old_proposal_is_truncated() {
        // The follower logged 1.3, which never reached a quorum; the leader
        // (current epoch 2) never saw it.
        let m = sync(&[z(1, 1), z(1, 2)], 2, z(1, 3), 100).unwrap();
        assert_eq!(m[0], ZabMessage::Trunc { zxid: z(1, 2) });
        assert_eq!(m[1], newleader(3));
        // A follower more recent than the leader makes it step down.
        assert!(matches!(
            sync(&[z(1, 1), z(1, 2)], 1, z(1, 3), 100),
            Err(StepDown::Normal(_))
        ));
        // Same when the leader has moved on in a later epoch: cut back to
        // the last shared zxid, then the new epoch's txns.
        let m = sync(&[z(1, 1), z(1, 2), z(2, 1)], 2, z(1, 3), 100).unwrap();
        assert_eq!(m[0], ZabMessage::Trunc { zxid: z(1, 2) });
        assert!(matches!(m[1], ZabMessage::Proposal { zxid, .. } if zxid == z(2, 1)));
        assert_eq!(m[2], ZabMessage::Commit { zxid: z(2, 1) });
        assert_eq!(m[3], newleader(3));
    }

    #[test]
    fn follower_behind_the_window_gets_a_snapshot() {
        let leader: Vec<Zxid> = (1..=10).map(|c| z(1, c)).collect();
        let m = sync(&leader, 1, z(1, 2), 4).unwrap();
        assert_eq!(m[0], ZabMessage::Snap { zxid: z(1, 10) });
        assert_eq!(m[1], newleader(2));
    }

    #[test]
    fn leader_behind_a_follower_steps_down() {
        let (mut h, mut l, mut out) = started_leader(1, &[z(1, 1)]);
        l.on_message(&mut h, 2, follower_info(2, 2), &mut out)
            .unwrap();
        assert_eq!(l.epoch(), Some(3));
        let r = l.on_message(
            &mut h,
            2,
            ZabMessage::AckEpoch {
                current_epoch: 2,
                last_zxid: z(2, 5),
            },
            &mut out,
        );
        assert!(matches!(r, Err(StepDown::Normal(_))));
    }

    #[test]
    fn leader_info_waits_for_our_accepted_epoch_to_be_durable() {
        let (mut h, mut l, mut out) = started_leader(1, &[z(1, 1)]);
        out.clear();
        l.on_message(&mut h, 2, follower_info(2, 1), &mut out)
            .unwrap();
        assert_eq!(l.epoch(), Some(2));
        let leader_infos = |out: &[Action]| {
            out.iter()
                .filter(|a| {
                    matches!(
                        a,
                        Action::Send {
                            msg: ZabMessage::LeaderInfo { .. },
                            ..
                        }
                    )
                })
                .count()
        };
        assert_eq!(leader_infos(&out), 0, "sent before the epoch was durable");
        durable(&mut h);
        l.on_persisted(&mut h, &mut out).unwrap();
        assert_eq!(leader_infos(&out), 1);
    }

    #[test]
    fn a_learner_that_accepted_a_higher_epoch_makes_the_leader_elect_again() {
        // A leader that fixed epoch 3 meets a learner that accepted epoch 5
        // from a would-be leader that failed.
        let (mut h, mut l, mut out) = started_leader(2, &[z(1, 1)]);
        l.on_message(&mut h, 2, follower_info(2, 2), &mut out)
            .unwrap();
        assert_eq!(l.epoch(), Some(3));
        let r = l.on_message(&mut h, 3, follower_info(3, 5), &mut out);
        assert!(matches!(r, Err(StepDown::Normal(_))), "{r:?}");
    }

    #[test]
    fn commits_wait_for_a_quorum_and_go_in_order() {
        let m = sync(&[], 0, 0, 10);
        assert!(m.is_ok());
        // Drive a fresh established leader by hand.
        let mut h = History::new(PersistentState::default(), 10);
        let mut l = Leader::new(cfg(1));
        let mut out = Vec::new();
        l.start(&mut h, &mut out).unwrap();
        let info = LearnerInfo {
            server_id: 2,
            ..Default::default()
        };
        l.on_message(
            &mut h,
            2,
            ZabMessage::FollowerInfo {
                accepted_epoch: 0,
                info,
            },
            &mut out,
        )
        .unwrap();
        durable(&mut h);
        l.on_persisted(&mut h, &mut out).unwrap();
        l.on_message(
            &mut h,
            2,
            ZabMessage::AckEpoch {
                current_epoch: 0,
                last_zxid: 0,
            },
            &mut out,
        )
        .unwrap();
        l.on_message(&mut h, 2, ZabMessage::Ack { zxid: z(1, 0) }, &mut out)
            .unwrap();
        durable(&mut h);
        l.on_persisted(&mut h, &mut out).unwrap();
        assert!(l.is_established());
        out.clear();
        let a = l
            .propose(&mut h, Bytes::from_static(b"a"), &mut out)
            .unwrap();
        let b = l
            .propose(&mut h, Bytes::from_static(b"b"), &mut out)
            .unwrap();
        assert_eq!((a, b), (z(1, 1), z(1, 2)));
        // The follower acks b first: nothing commits before a.
        l.on_message(&mut h, 2, ZabMessage::Ack { zxid: b }, &mut out)
            .unwrap();
        assert!(!out.iter().any(|x| matches!(x, Action::Apply(_))));
        // The leader's own disk catches up: a and b commit, in order.
        durable(&mut h);
        l.on_persisted(&mut h, &mut out).unwrap();
        assert!(
            !out.iter().any(|x| matches!(x, Action::Apply(_))),
            "a has only the leader's ack"
        );
        l.on_message(&mut h, 2, ZabMessage::Ack { zxid: a }, &mut out)
            .unwrap();
        let applied: Vec<Zxid> = out
            .iter()
            .filter_map(|x| match x {
                Action::Apply(e) => Some(e.zxid),
                _ => None,
            })
            .collect();
        assert_eq!(applied, vec![a, b]);
        assert_eq!(
            sent_to(&out, 2)
                .into_iter()
                .filter(|m| matches!(m, ZabMessage::Commit { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn follower_acks_only_durable_proposals_and_truncates() {
        let mut h = History::new(
            PersistentState {
                accepted_epoch: 1,
                current_epoch: 1,
                snapshot_zxid: 0,
                log: log(&[z(1, 1), z(1, 2), z(1, 3)]),
            },
            10,
        );
        let mut f = Learner::new(cfg(2), 1, false);
        let mut out = Vec::new();
        f.start(&h, &mut out);
        assert!(matches!(
            sent_to(&out, 1)[..],
            [ZabMessage::FollowerInfo {
                accepted_epoch: 1,
                ..
            }]
        ));
        out.clear();
        f.on_message(
            &mut h,
            1,
            ZabMessage::LeaderInfo {
                new_epoch: 2,
                protocol_version: LEARNER_PROTOCOL_VERSION,
            },
            &mut out,
        )
        .unwrap();
        assert!(
            sent_to(&out, 1).is_empty(),
            "ACKEPOCH waits for acceptedEpoch on disk"
        );
        durable(&mut h);
        f.on_persisted(&h, &mut out);
        assert_eq!(
            sent_to(&out, 1),
            vec![ZabMessage::AckEpoch {
                current_epoch: 1,
                last_zxid: z(1, 3)
            }]
        );
        out.clear();
        f.on_message(&mut h, 1, ZabMessage::Trunc { zxid: z(1, 2) }, &mut out)
            .unwrap();
        assert!(out.contains(&Action::Persist {
            seq: 2,
            op: PersistOp::Truncate(z(1, 2))
        }));
        assert_eq!(h.last_logged(), z(1, 2));
        f.on_message(&mut h, 1, newleader(2), &mut out).unwrap();
        durable(&mut h);
        f.on_persisted(&h, &mut out);
        f.on_message(&mut h, 1, ZabMessage::UpToDate { zxid: -1 }, &mut out)
            .unwrap();
        assert!(f.is_serving());
        assert_eq!(h.current_epoch, 2);
        out.clear();
        f.on_message(
            &mut h,
            1,
            ZabMessage::Proposal {
                zxid: z(2, 1),
                txn: Bytes::new(),
            },
            &mut out,
        )
        .unwrap();
        assert!(sent_to(&out, 1).is_empty());
        durable(&mut h);
        f.on_persisted(&h, &mut out);
        assert_eq!(sent_to(&out, 1), vec![ZabMessage::Ack { zxid: z(2, 1) }]);
        // A commit out of order is a protocol violation.
        assert!(matches!(
            f.on_message(&mut h, 1, ZabMessage::Commit { zxid: z(2, 5) }, &mut out),
            Err(StepDown::Violation(_))
        ));
    }

    #[test]
    fn epoch_files_as_zookeeper_writes_them() {
        assert_eq!(format_epoch_file(7), "7");
        assert_eq!(parse_epoch_file("12"), Ok(12));
        assert_eq!(parse_epoch_file("12\n"), Ok(12));
        assert!(parse_epoch_file("").is_err());
        assert!(parse_epoch_file("x1").is_err());
        assert_eq!(recover_epochs(None, None, z(3, 4), false), Ok((3, 3)));
        assert_eq!(recover_epochs(Some(4), Some(5), z(3, 4), false), Ok((4, 5)));
        assert!(recover_epochs(Some(2), Some(5), z(3, 4), false).is_err());
        assert_eq!(recover_epochs(Some(2), Some(5), z(3, 4), true), Ok((3, 5)));
        assert!(recover_epochs(Some(4), Some(3), z(3, 4), false).is_err());
    }

    #[test]
    fn learner_retries_a_refused_connection_then_gives_up_after_sync() {
        let h = History::new(PersistentState::default(), 10);
        let mut f = Learner::new(cfg(2), 1, false);
        let mut out = Vec::new();
        f.start(&h, &mut out);
        out.clear();
        assert!(f.on_disconnected().is_ok());
        f.on_tick(&h, &mut out).unwrap();
        assert!(matches!(
            sent_to(&out, 1)[..],
            [ZabMessage::FollowerInfo { .. }]
        ));
        // Nobody answers within initLimit: look for a leader again.
        let mut r = Ok(());
        for _ in 0..20 {
            r = r.and_then(|_| f.on_tick(&h, &mut out));
        }
        assert!(matches!(r, Err(StepDown::Normal(_))));
    }
}
