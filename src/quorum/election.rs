//! Fast leader election (ZooKeeper's `FastLeaderElection`, electionAlg 3) as
//! a pure state machine: notifications in, notifications out, and a decision.
//!
//! Votes are ordered by (peer epoch, zxid, server id). A round ends when a
//! quorum of voters' notifications agree with our proposal and no better
//! notification arrives within `finalize_wait_ms`. A server that arrives late
//! learns the established leader from FOLLOWING/LEADING notifications (the
//! "out of election" set) instead of starting a round nobody else is in.
//! Time comes in as `now_ms`; nothing here reads a clock or a socket.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::wire::{NOTIFICATION_VERSION, Notification, ServerState};
use super::{Membership, ServerId, Zxid};

/// ZooKeeper's `finalizeWait`, also the first notification timeout.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// ZooKeeper's default `maxNotificationInterval`.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;

/// What a server proposes as leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: i64,
    pub zxid: Zxid,
    pub peer_epoch: i64,
}

impl Vote {
    /// `totalOrderPredicate`: does `self` beat `other`?
    pub fn beats(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// A vote as received, with what ZooKeeper compares votes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Received {
    vote: Vote,
    election_epoch: i64,
    state: ServerState,
    version: i32,
}

/// `Vote.equals`: LOOKING votes must match in full; votes of servers out of
/// election match on leader and peer epoch (only the leader when the two
/// sides speak different notification versions).
fn same_vote(a: &Received, b: &Received) -> bool {
    if a.state == ServerState::Looking || b.state == ServerState::Looking {
        a.vote == b.vote && a.election_epoch == b.election_epoch
    } else if (a.version > 0) != (b.version > 0) {
        a.vote.leader == b.vote.leader
    } else {
        a.vote.leader == b.vote.leader && a.vote.peer_epoch == b.vote.peer_epoch
    }
}

/// The end of an election round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub leader: ServerId,
    pub zxid: Zxid,
    pub peer_epoch: i64,
    pub election_epoch: i64,
    /// LEADING, FOLLOWING or OBSERVING.
    pub state: ServerState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionOutput {
    Send {
        to: ServerId,
        notification: Notification,
    },
    Decided(Decision),
}

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub me: ServerId,
    pub membership: Membership,
    pub finalize_wait_ms: u64,
    pub max_notification_interval_ms: u64,
    /// Our dynamic config text, sent in every notification (version 2).
    pub config_text: Bytes,
}

impl ElectionConfig {
    pub fn new(me: ServerId, membership: Membership) -> Self {
        ElectionConfig {
            me,
            membership,
            finalize_wait_ms: FINALIZE_WAIT_MS,
            max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
            config_text: Bytes::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Election {
    cfg: ElectionConfig,
    logical_clock: i64,
    /// Our own candidacy for this round: (id, last zxid, current epoch).
    init: Vote,
    proposal: Vote,
    /// Our state; LOOKING while a round runs.
    state: ServerState,
    /// The vote we report while not looking, with its election epoch.
    current: Option<(Vote, i64)>,
    recv_set: BTreeMap<ServerId, Received>,
    out_of_election: BTreeMap<ServerId, Received>,
    notification_timeout_ms: u64,
    next_timeout_at: u64,
    finalize_at: Option<u64>,
    /// Voters whose election connection broke or could not be made, until
    /// it comes back: no notification from them can arrive, so finalizeWait
    /// does not wait for them. Unknown peers count as reachable.
    unreachable: BTreeSet<ServerId>,
}

impl Election {
    /// A committed membership change.
    pub fn set_membership(&mut self, m: Membership) {
        self.cfg.membership = m;
    }

    /// The membership text sent in our notifications.
    pub fn set_config_text(&mut self, text: Bytes) {
        self.cfg.config_text = text;
    }

    pub fn new(cfg: ElectionConfig) -> Self {
        let init = Vote {
            leader: cfg.me as i64,
            zxid: -1,
            peer_epoch: -1,
        };
        let t = cfg.finalize_wait_ms;
        Election {
            cfg,
            logical_clock: 0,
            init,
            proposal: init,
            state: ServerState::Looking,
            current: None,
            recv_set: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            notification_timeout_ms: t,
            next_timeout_at: 0,
            finalize_at: None,
            unreachable: BTreeSet::new(),
        }
    }

    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    pub fn is_looking(&self) -> bool {
        self.state == ServerState::Looking
    }

    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    fn is_voter(&self, id: i64) -> bool {
        id >= 0 && self.cfg.membership.is_voter(id as ServerId)
    }

    /// Starts a round (`lookForLeader`) with our last logged zxid and
    /// current epoch. Observers propose nobody (`Long.MIN_VALUE`).
    pub fn start(&mut self, now: u64, last_zxid: Zxid, current_epoch: i64) -> Vec<ElectionOutput> {
        self.logical_clock += 1;
        self.state = ServerState::Looking;
        self.current = None;
        self.recv_set.clear();
        self.out_of_election.clear();
        self.finalize_at = None;
        self.init = if self.is_voter(self.cfg.me as i64) {
            Vote {
                leader: self.cfg.me as i64,
                zxid: last_zxid,
                peer_epoch: current_epoch,
            }
        } else {
            Vote {
                leader: i64::MIN,
                zxid: i64::MIN,
                peer_epoch: i64::MIN,
            }
        };
        self.proposal = self.init;
        self.notification_timeout_ms = self.cfg.finalize_wait_ms;
        self.next_timeout_at = now + self.notification_timeout_ms;
        let mut out = Vec::new();
        self.send_notifications(&mut out);
        // A one-voter ensemble: our own vote is the quorum.
        let target = Received {
            vote: self.proposal,
            election_epoch: self.logical_clock,
            state: ServerState::Looking,
            version: NOTIFICATION_VERSION,
        };
        if self.has_quorum(&self.recv_set, &target) {
            self.finalize_at = Some(now + self.cfg.finalize_wait_ms);
            self.decide_if_settled(&mut out);
        }
        out
    }

    /// Within finalizeWait: decide now if no other voter can still send a
    /// vote that matters — each one agrees with our proposal or is
    /// unreachable. Waiting only ever serves to hear a better vote; deciding
    /// early is as safe as deciding late (the quorum that agreed is what
    /// makes the leader's history complete).
    fn decide_if_settled(&mut self, out: &mut Vec<ElectionOutput>) {
        if self.finalize_at.is_none() {
            return;
        }
        let target = Received {
            vote: self.proposal,
            election_epoch: self.logical_clock,
            state: ServerState::Looking,
            version: NOTIFICATION_VERSION,
        };
        let me = self.cfg.me;
        let settled = self.cfg.membership.voters().iter().all(|v| {
            *v == me
                || self.unreachable.contains(v)
                || self.recv_set.get(v).is_some_and(|r| same_vote(r, &target))
        });
        if settled {
            self.finalize_at = None;
            out.push(self.decide(self.proposal, self.logical_clock));
        }
    }

    fn notification(&self, vote: Vote, election_epoch: i64, state: ServerState) -> Notification {
        Notification {
            state,
            leader: vote.leader,
            zxid: vote.zxid,
            election_epoch,
            peer_epoch: vote.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: self.cfg.config_text.clone(),
        }
    }

    /// Sends our proposal to every voter; our own copy goes straight into
    /// the received set (ZooKeeper loops it back through its queue).
    fn send_notifications(&mut self, out: &mut Vec<ElectionOutput>) {
        for &to in self.cfg.membership.voters() {
            if to == self.cfg.me {
                self.recv_set.insert(
                    to,
                    Received {
                        vote: self.proposal,
                        election_epoch: self.logical_clock,
                        state: ServerState::Looking,
                        version: NOTIFICATION_VERSION,
                    },
                );
                continue;
            }
            let notification =
                self.notification(self.proposal, self.logical_clock, ServerState::Looking);
            out.push(ElectionOutput::Send { to, notification });
        }
    }

    /// The election connection with `peer` broke or could not be made.
    pub fn on_unreachable(&mut self, peer: ServerId) -> Vec<ElectionOutput> {
        let mut out = Vec::new();
        if peer != self.cfg.me && self.unreachable.insert(peer) && self.is_looking() {
            self.decide_if_settled(&mut out);
        }
        out
    }

    /// A (re)established connection: a looking server tells the peer its vote.
    pub fn on_connected(&mut self, peer: ServerId) -> Vec<ElectionOutput> {
        self.unreachable.remove(&peer);
        if self.is_looking() && peer != self.cfg.me {
            let notification =
                self.notification(self.proposal, self.logical_clock, ServerState::Looking);
            return vec![ElectionOutput::Send {
                to: peer,
                notification,
            }];
        }
        Vec::new()
    }

    /// The node's role changed outside the election (for example it stopped
    /// leading): record what we report to others. `start` resumes looking.
    pub fn set_state(&mut self, state: ServerState) {
        self.state = state;
    }

    /// Once following or leading in a new epoch, report that epoch in our
    /// vote (ZooKeeper's `updateElectionVote`, ZOOKEEPER-1732): otherwise
    /// servers that joined at different times report different peer epochs
    /// for the same leader and a newcomer never sees a quorum agree.
    pub fn update_peer_epoch(&mut self, epoch: i64) {
        if let Some((vote, _)) = &mut self.current {
            vote.peer_epoch = epoch;
        }
    }

    fn proposal_to(&self, to: ServerId) -> ElectionOutput {
        ElectionOutput::Send {
            to,
            notification: self.notification(
                self.proposal,
                self.logical_clock,
                ServerState::Looking,
            ),
        }
    }

    fn current_vote_reply(&self, to: ServerId) -> ElectionOutput {
        let (vote, ee) = self.current.unwrap_or((self.proposal, self.logical_clock));
        ElectionOutput::Send {
            to,
            notification: self.notification(vote, ee, self.state),
        }
    }

    pub fn on_notification(
        &mut self,
        now: u64,
        from: ServerId,
        n: &Notification,
    ) -> Vec<ElectionOutput> {
        let mut out = Vec::new();
        // Non-voters (observers) get our current vote right away and are
        // otherwise ignored.
        if !self.is_voter(from as i64) {
            out.push(self.current_vote_reply(from));
            return out;
        }
        if !self.is_looking() {
            if n.state == ServerState::Looking {
                out.push(self.current_vote_reply(from));
            }
            return out;
        }
        if n.state == ServerState::Looking && n.election_epoch < self.logical_clock {
            let notification =
                self.notification(self.proposal, self.logical_clock, ServerState::Looking);
            out.push(ElectionOutput::Send {
                to: from,
                notification,
            });
        }
        let vote = Vote {
            leader: n.leader,
            zxid: n.zxid,
            peer_epoch: n.peer_epoch,
        };
        if self.finalize_at.is_some() {
            // Within finalizeWait only a better vote changes anything; it
            // reopens the round. A voter that agrees may let us decide
            // early; one behind us is told our vote.
            if self.is_voter(vote.leader) && vote.beats(&self.proposal) {
                self.finalize_at = None;
            } else {
                if n.state == ServerState::Looking && n.election_epoch == self.logical_clock {
                    if vote == self.proposal {
                        self.recv_set.insert(
                            from,
                            Received {
                                vote,
                                election_epoch: n.election_epoch,
                                state: n.state,
                                version: n.version,
                            },
                        );
                        self.decide_if_settled(&mut out);
                    } else {
                        out.push(self.proposal_to(from));
                    }
                }
                return out;
            }
        }
        self.next_timeout_at = now + self.notification_timeout_ms;
        if !self.is_voter(n.leader) {
            return out;
        }
        let received = Received {
            vote,
            election_epoch: n.election_epoch,
            state: n.state,
            version: n.version,
        };
        match n.state {
            ServerState::Looking => {
                if n.zxid == -1 {
                    return out;
                }
                if n.election_epoch > self.logical_clock {
                    self.logical_clock = n.election_epoch;
                    self.recv_set.clear();
                    self.proposal = if vote.beats(&self.init) {
                        vote
                    } else {
                        self.init
                    };
                    self.send_notifications(&mut out);
                } else if n.election_epoch < self.logical_clock {
                    return out;
                } else if vote.beats(&self.proposal) {
                    self.proposal = vote;
                    self.send_notifications(&mut out);
                } else if self.proposal.beats(&vote) {
                    // The peer has not heard our (better) vote: it started
                    // looking after we sent ours, or was not looking then.
                    // ZooKeeper stays silent and the peer waits a whole
                    // notification timeout (200 ms) for our resend.
                    out.push(self.proposal_to(from));
                }
                self.recv_set.insert(from, received);
                let target = Received {
                    vote: self.proposal,
                    election_epoch: self.logical_clock,
                    state: ServerState::Looking,
                    version: NOTIFICATION_VERSION,
                };
                if self.has_quorum(&self.recv_set, &target) && self.finalize_at.is_none() {
                    self.finalize_at = Some(now + self.cfg.finalize_wait_ms);
                    self.decide_if_settled(&mut out);
                }
            }
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == self.logical_clock {
                    self.recv_set.insert(from, received);
                    if self.has_quorum(&self.recv_set, &received)
                        && self.check_leader(&self.recv_set, n.leader, n.election_epoch)
                    {
                        out.push(self.decide(vote, n.election_epoch));
                        return out;
                    }
                }
                self.out_of_election.insert(from, received);
                if self.has_quorum(&self.out_of_election, &received)
                    && self.check_leader(&self.out_of_election, n.leader, n.election_epoch)
                {
                    self.logical_clock = n.election_epoch;
                    out.push(self.decide(vote, n.election_epoch));
                }
            }
        }
        out
    }

    /// Timers: the end of finalizeWait, or a notification timeout (resend
    /// and back off exponentially up to the maximum interval).
    pub fn on_tick(&mut self, now: u64) -> Vec<ElectionOutput> {
        let mut out = Vec::new();
        if !self.is_looking() {
            return out;
        }
        if let Some(deadline) = self.finalize_at
            && now >= deadline
        {
            self.finalize_at = None;
            out.push(self.decide(self.proposal, self.logical_clock));
            return out;
        }
        if self.finalize_at.is_none() && now >= self.next_timeout_at {
            self.send_notifications(&mut out);
            self.notification_timeout_ms =
                (self.notification_timeout_ms * 2).min(self.cfg.max_notification_interval_ms);
            self.next_timeout_at = now + self.notification_timeout_ms;
        }
        out
    }

    fn has_quorum(&self, votes: &BTreeMap<ServerId, Received>, target: &Received) -> bool {
        let acks = votes
            .iter()
            .filter(|(_, v)| same_vote(v, target))
            .map(|(id, _)| *id);
        self.cfg.membership.is_quorum(acks)
    }

    /// `checkLeader`: unless we are the one proposed, the proposed leader
    /// must itself say it is LEADING; if we are, it must be this round.
    fn check_leader(
        &self,
        votes: &BTreeMap<ServerId, Received>,
        leader: i64,
        election_epoch: i64,
    ) -> bool {
        if leader != self.cfg.me as i64 {
            votes
                .get(&(leader as ServerId))
                .is_some_and(|v| v.state == ServerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn decide(&mut self, vote: Vote, election_epoch: i64) -> ElectionOutput {
        let state = if vote.leader == self.cfg.me as i64 {
            ServerState::Leading
        } else if self.is_voter(self.cfg.me as i64) {
            ServerState::Following
        } else {
            ServerState::Observing
        };
        self.state = state;
        self.current = Some((vote, election_epoch));
        self.recv_set.clear();
        self.out_of_election.clear();
        ElectionOutput::Decided(Decision {
            leader: vote.leader as ServerId,
            zxid: vote.zxid,
            peer_epoch: vote.peer_epoch,
            election_epoch,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::make_zxid;

    fn members(n: u64) -> Membership {
        Membership::new((1..=n).collect(), Default::default())
    }

    /// Runs elections among `n` servers with perfect instant delivery.
    fn run(n: u64, last: &[(Zxid, i64)]) -> BTreeMap<ServerId, Decision> {
        let mut els: Vec<Election> = (1..=n)
            .map(|id| Election::new(ElectionConfig::new(id, members(n))))
            .collect();
        let mut queue = std::collections::VecDeque::new();
        for (i, e) in els.iter_mut().enumerate() {
            for o in e.start(0, last[i].0, last[i].1) {
                queue.push_back((i as u64 + 1, o));
            }
        }
        let mut decided = BTreeMap::new();
        let mut now = 0;
        for _ in 0..100 {
            while let Some((from, o)) = queue.pop_front() {
                match o {
                    ElectionOutput::Send { to, notification } => {
                        for o in els[to as usize - 1].on_notification(now, from, &notification) {
                            queue.push_back((to, o));
                        }
                    }
                    ElectionOutput::Decided(d) => {
                        decided.insert(from, d);
                    }
                }
            }
            now += 50;
            for (i, e) in els.iter_mut().enumerate() {
                for o in e.on_tick(now) {
                    queue.push_back((i as u64 + 1, o));
                }
            }
        }
        decided
    }

    #[test]
    fn highest_epoch_then_zxid_then_id_wins() {
        let d = run(
            3,
            &[
                (make_zxid(1, 5), 1),
                (make_zxid(1, 5), 1),
                (make_zxid(1, 3), 1),
            ],
        );
        assert_eq!(d.len(), 3);
        assert!(d.values().all(|d| d.leader == 2));
        assert_eq!(d[&2].state, ServerState::Leading);
        assert_eq!(d[&1].state, ServerState::Following);
        let d = run(
            3,
            &[
                (make_zxid(1, 9), 1),
                (make_zxid(2, 0), 2),
                (make_zxid(1, 9), 1),
            ],
        );
        assert!(d.values().all(|d| d.leader == 2));
    }

    #[test]
    fn late_joiner_learns_leader_from_followers() {
        let mut e = Election::new(ElectionConfig::new(3, members(3)));
        e.start(0, make_zxid(5, 0), 5);
        let leading = Notification {
            state: ServerState::Leading,
            leader: 1,
            zxid: make_zxid(6, 2),
            election_epoch: 9,
            peer_epoch: 6,
            version: 2,
            config: Bytes::new(),
        };
        let following = Notification {
            state: ServerState::Following,
            ..leading.clone()
        };
        assert!(
            e.on_notification(10, 1, &leading)
                .iter()
                .all(|o| !matches!(o, ElectionOutput::Decided(_)))
        );
        let out = e.on_notification(20, 2, &following);
        let d = out.iter().find_map(|o| match o {
            ElectionOutput::Decided(d) => Some(*d),
            _ => None,
        });
        assert_eq!(
            d.map(|d| (d.leader, d.state)),
            Some((1, ServerState::Following))
        );
        assert_eq!(e.logical_clock(), 9);
    }

    #[test]
    fn notification_timeout_backs_off_to_the_maximum() {
        let mut e = Election::new(ElectionConfig::new(1, members(3)));
        e.start(0, 0, 0);
        let mut now = 0;
        let mut sends_at = Vec::new();
        while now < 400_000 {
            now += 100;
            if !e.on_tick(now).is_empty() {
                sends_at.push(now);
            }
        }
        let gaps: Vec<u64> = sends_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[0], 400);
        assert!(
            gaps.iter()
                .all(|&g| g <= MAX_NOTIFICATION_INTERVAL_MS + 100)
        );
        assert!(gaps.iter().any(|&g| g >= MAX_NOTIFICATION_INTERVAL_MS));
    }

    #[test]
    fn observers_never_lead_and_get_answers() {
        let m = Membership::new([1, 2, 3].into(), [4].into());
        let mut obs = Election::new(ElectionConfig::new(4, m.clone()));
        let out = obs.start(0, make_zxid(9, 9), 9);
        // An observer proposes nobody and sends to voters only.
        assert_eq!(out.len(), 3);
        let mut voter = Election::new(ElectionConfig::new(1, m));
        voter.start(0, 0, 0);
        let n = match &out[0] {
            ElectionOutput::Send { notification, .. } => notification.clone(),
            _ => unreachable!(),
        };
        let reply = voter.on_notification(1, 4, &n);
        assert!(matches!(reply[..], [ElectionOutput::Send { to: 4, .. }]));
    }

    fn sent_to(out: &[ElectionOutput], to: ServerId) -> Option<&Notification> {
        out.iter().find_map(|o| match o {
            ElectionOutput::Send {
                to: t,
                notification,
            } if *t == to => Some(notification),
            _ => None,
        })
    }

    fn decided(out: &[ElectionOutput]) -> Option<Decision> {
        out.iter().find_map(|o| match o {
            ElectionOutput::Decided(d) => Some(*d),
            _ => None,
        })
    }

    /// The survivors of a killed leader: server 1 and 2 look, 3 is gone.
    fn survivors(three_unreachable: bool) -> (Election, Election, Vec<ElectionOutput>) {
        let mut one = Election::new(ElectionConfig::new(1, members(3)));
        let mut two = Election::new(ElectionConfig::new(2, members(3)));
        if three_unreachable {
            one.on_unreachable(3);
            two.on_unreachable(3);
        }
        let zxid = make_zxid(4, 7);
        one.start(0, zxid, 4);
        let from_two = two.start(0, zxid, 4);
        // 2's vote beats 1's: 1 adopts it and tells 2.
        let n = sent_to(&from_two, 1).expect("2 votes to 1").clone();
        let out = one.on_notification(1, 2, &n);
        let n = sent_to(&out, 2).expect("1 now votes 2").clone();
        let mut outs = out;
        outs.extend(two.on_notification(2, 1, &n));
        (one, two, outs)
    }

    #[test]
    fn survivors_decide_at_once_when_the_rest_is_unreachable() {
        let (_, _, outs) = survivors(true);
        let decisions: Vec<Decision> = outs
            .iter()
            .filter_map(|o| match o {
                ElectionOutput::Decided(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert_eq!(decisions.len(), 2, "both decided within 2 ms: {outs:?}");
        assert!(decisions.iter().all(|d| d.leader == 2));
    }

    #[test]
    fn survivors_wait_out_finalize_while_a_voter_may_still_answer() {
        let (mut one, mut two, outs) = survivors(false);
        assert!(decided(&outs).is_none());
        assert!(decided(&one.on_tick(150)).is_none());
        // The third voter's connection breaks: nothing left to wait for.
        let d = decided(&one.on_unreachable(3)).expect("1 decides");
        assert_eq!((d.leader, d.state), (2, ServerState::Following));
        let d = decided(&two.on_tick(FINALIZE_WAIT_MS + 2)).expect("2 decides");
        assert_eq!((d.leader, d.state), (2, ServerState::Leading));
    }

    #[test]
    fn a_worse_vote_is_answered_with_ours() {
        let mut two = Election::new(ElectionConfig::new(2, members(3)));
        let mut one = Election::new(ElectionConfig::new(1, members(3)));
        let zxid = make_zxid(4, 7);
        two.start(0, zxid, 4);
        // 1 started looking after 2's notification went by: 2 must not stay
        // silent until its notification timeout.
        let out = one.start(5, zxid, 4);
        let n = sent_to(&out, 2).expect("1 votes to 2").clone();
        let reply = two.on_notification(6, 1, &n);
        let back = sent_to(&reply, 1).expect("2 answers 1");
        assert_eq!(back.leader, 2);
        // Within finalizeWait too.
        let mut three = Election::new(ElectionConfig::new(3, members(3)));
        three.start(0, zxid, 4);
        let agree = Notification {
            leader: 3,
            ..n.clone()
        };
        three.on_notification(1, 2, &agree);
        let reply = three.on_notification(2, 1, &n);
        assert_eq!(sent_to(&reply, 1).expect("3 answers 1").leader, 3);
    }

    #[test]
    fn a_lone_voter_decides_at_once() {
        let mut e = Election::new(ElectionConfig::new(1, members(1)));
        let d = decided(&e.start(0, 0, 0)).expect("decided");
        assert_eq!(d.state, ServerState::Leading);
    }
}
