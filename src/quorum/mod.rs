//! Replication: fast leader election and ZAB, as pure, sans-IO state
//! machines, plus a deterministic simulation that checks them under faults.
//!
//! What lives where:
//! * [`wire`] — peer wire formats as Apache ZooKeeper's: the election-port
//!   handshake, FLE notifications, `QuorumPacket` and its type numbers,
//!   `LearnerInfo`, and the typed [`wire::ZabMessage`] the cores speak.
//! * [`election`] — [`election::Election`]: FLE rounds, votes ordered by
//!   (peer epoch, zxid, sid), quorum of matching votes, late joiners learning
//!   the leader from FOLLOWING/LEADING notifications, exponential
//!   notification timeout (200 ms doubling to 60 s); unlike ZooKeeper it
//!   answers a worse vote at once and ends a round without finalizeWait when
//!   no other voter can still send a vote (all agree or are unreachable).
//!   Leaders send LEADERINFO only once their new accepted epoch is durable,
//!   and step down for a learner that accepted a higher epoch.
//! * [`zab`] — [`zab::Leader`] and [`zab::Learner`] (follower or observer):
//!   discovery (FOLLOWERINFO / LEADERINFO / ACKEPOCH, new epoch agreed by a
//!   quorum), synchronisation (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE) and
//!   broadcast (PROPOSAL / ACK / COMMIT in zxid order, INFORM to observers,
//!   PING, initLimit/syncLimit in ticks).
//! * [`node`] — [`node::Node`]: one server gluing the election and the ZAB
//!   roles together, owning the in-memory view of its log and epochs. The
//!   shell drives it with [`node::Input`] and executes the ordered
//!   [`node::Action`]s it returns (send, persist, apply, disconnect).
//! * [`net`] — the TCP shell: [`net::QuorumServer`] runs a `Node` on real
//!   sockets (election port as QuorumCnxManager, quorum port with
//!   `QuorumPacket`s and the snapshot after SNAP), a tick task, and a disk
//!   task behind the [`net::Storage`] trait (appends go straight into a
//!   group-commit log when the storage has one, [`net::Storage::direct_log`]).
//!   The only module here doing IO.
//! * `sim` (tests only) — a seeded simulation of 3 and 5 nodes with a lossy,
//!   delaying, partitionable network and a disk that loses unsynced writes on
//!   crash, with an invariant checker after every step.
//!
//! May touch: `jute`, `proto::records` (the `Id` record), `config` types.
//! Nothing here but [`net`] opens sockets, reads clocks or touches files.
//!
//! ## The shell contract (what [`net`] does)
//! Execute a [`node::Node`]'s actions in order. `Persist` writes go to the
//! txn log and the `acceptedEpoch`/`currentEpoch` files (ASCII longs in the
//! snapshot dir, as ZooKeeper writes them) in the order given; report
//! `Persisted { seq }` when they are durable — the cores send every ACK only
//! after that. `Apply` goes to the data tree in order; when a `Snap` packet
//! is sent, the tree is exactly at its zxid, so the shell streams its
//! snapshot right after the packet (as ZooKeeper does). On receiving SNAP,
//! the shell reads that snapshot and installs it when the core says
//! `Persist(InstallSnapshot)`. `Truncate` means truncate the log and reload.
//! `Disconnected(peer)` reports the end of the current quorum connection.
//!
//! ## Done
//! Wire formats with round-trip and never-panic tests; the election core;
//! the ZAB cores (discovery, DIFF/TRUNC/SNAP sync, NEWLEADER/UPTODATE,
//! broadcast with in-order commits, INFORM to observers, PING, initLimit and
//! syncLimit, learner reconnect within initLimit, zxid-counter exhaustion);
//! scenario unit tests; the seeded simulation (`sim`) of 3 and 5 voters and
//! 3 voters + 2 observers with delays, reorders and drops of election
//! messages, broken quorum connections, partitions, pauses, crashes losing
//! unsynced writes, "power cuts" of a majority, and restarts.
//!
//! Choices to know about:
//! * Acks of proposals a follower receives during sync (before NEWLEADER)
//!   are sent right after its NEWLEADER ack, so a proposal in flight while a
//!   learner syncs can still gather a quorum.
//! * A leader's committed log for DIFF is the last `log_window` committed
//!   txns in memory (ZooKeeper's committedLog); further behind means SNAP.
//!   Syncing from the on-disk txn log is not done.
//! * Quorums are majorities of voters (no weights or groups).
//!
//! ## Found by the simulation so far
//! * Learners must be able to truncate below their in-memory window (txns
//!   compacted or applied by fast-forward are still in the log on disk).
//! * Observers get INFORM between NEWLEADER and UPTODATE.
//! * ZOOKEEPER-1732: servers must report the new epoch in their vote once
//!   following/leading, or a rebooted server never rejoins (seed 9000197).
//! * Mutations it catches: acks sent before the write is durable, an
//!   off-by-one quorum, DIFF where TRUNC is due.
//!
//! The networking shell, first slice ([`net`]): election connections with
//! the handshake, the higher-sid rule, one connection per pair, framed
//! notifications, capacity-one send queues and reconnect with backoff;
//! learner ↔ leader connections with `QuorumPacket` framing, connection ids
//! so a stale close is never reported as the current one's, learners that
//! arrive before the leader decided held for initLimit; ticks; `Persisted`
//! only after the storage synced; the applied txns and the snapshot sent
//! after SNAP are, for now, a list of txns. Tested over loopback TCP
//! (`tests/quorum_net.rs`): 3 and 5 servers elect one leader, commit in the
//! same order everywhere, survive the leader's crash with proposals in
//! flight (new leader in a higher epoch, nothing committed lost), and the
//! old leader rejoins by DIFF/TRUNC (3) or SNAP (5, small log window); and
//! a server's two ports checked byte by byte against raw sockets.
//!
//! The server ([`crate::server`]'s `ensemble.rs`) runs a [`net::QuorumServer`]
//! with its request core as the [`net::Replica`]: committed txns go into the
//! data tree, SNAP carries a real snapshot, followers forward client writes
//! in REQUEST packets, SYNC answers `sync`, learners report their sessions
//! in PINGs, and reconfig changes the membership ([`node::Node::reconfigure`],
//! a quorum of old and new voters for the reconfig proposal, peers added at
//! runtime, servers not in the configuration joining as non-voting learners).
//!
//! ## Not done yet (later work)
//! A mixed ensemble with Apache ZooKeeper servers (the snapshot after SNAP
//! is our snapshot file format in one buffer, where ZooKeeper streams its
//! serialized tree; ZooKeeper's config in NEWLEADER and in notifications is
//! not sent; REVALIDATE is not used: a reconnecting session is checked
//! against the committed session table), weighted/hierarchical quorums,
//! quorum SASL, syncing a learner from the on-disk log beyond the in-memory
//! window (it gets a SNAP instead), and a removed server stopping: it
//! rejoins as a non-voting observer of the new ensemble.

pub mod election;
pub mod net;
pub mod node;
pub mod wire;
pub mod zab;

#[cfg(test)]
mod sim;

use std::collections::BTreeSet;

/// A server id (`myid`).
pub type ServerId = u64;
/// A ZooKeeper transaction id: epoch in the high 32 bits, counter below.
pub type Zxid = i64;

pub fn make_zxid(epoch: i64, counter: i64) -> Zxid {
    (epoch << 32) | (counter & 0xffff_ffff)
}

pub fn epoch_of(zxid: Zxid) -> i64 {
    zxid >> 32
}

pub fn counter_of(zxid: Zxid) -> i64 {
    zxid & 0xffff_ffff
}

/// Who votes and who only observes. Quorums are majorities of voters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
}

impl Membership {
    pub fn new(voters: BTreeSet<ServerId>, observers: BTreeSet<ServerId>) -> Self {
        Membership { voters, observers }
    }

    /// From the `server.N` lines of zoo.cfg.
    pub fn from_specs(specs: &[crate::config::ServerSpec]) -> Self {
        let mut m = Membership::default();
        for s in specs {
            match s.role {
                crate::config::Role::Participant => m.voters.insert(s.id),
                crate::config::Role::Observer => m.observers.insert(s.id),
            };
        }
        m
    }

    pub fn voters(&self) -> &BTreeSet<ServerId> {
        &self.voters
    }

    pub fn observers(&self) -> &BTreeSet<ServerId> {
        &self.observers
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_member(&self, id: ServerId) -> bool {
        self.voters.contains(&id) || self.observers.contains(&id)
    }

    pub fn all(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().chain(self.observers.iter()).copied()
    }

    /// True when the voters among `ids` are more than half of all voters.
    pub fn is_quorum(&self, ids: impl IntoIterator<Item = ServerId>) -> bool {
        let set: BTreeSet<ServerId> = ids.into_iter().filter(|i| self.is_voter(*i)).collect();
        set.len() * 2 > self.voters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_parts() {
        let z = make_zxid(3, 7);
        assert_eq!((epoch_of(z), counter_of(z)), (3, 7));
        assert_eq!(make_zxid(1, 0), 1 << 32);
    }

    #[test]
    fn quorum_is_a_majority_of_voters() {
        let m = Membership::new([1, 2, 3].into(), [4].into());
        assert!(!m.is_quorum([1, 4]));
        assert!(m.is_quorum([1, 2]));
        assert!(m.is_quorum([1, 2, 2]));
        let m5 = Membership::new([1, 2, 3, 4, 5].into(), [].into());
        assert!(!m5.is_quorum([1, 2]));
        assert!(m5.is_quorum([1, 2, 5]));
    }
}
