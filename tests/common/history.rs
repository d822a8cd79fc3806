//! A ZooKeeper-aware consistency checker for recorded client histories.
//!
//! Clients record every operation on single znodes (create, set, delete,
//! get) as invoked / ok / failed / indeterminate, with the zxids the server
//! returned in stats. Because ZooKeeper orders all writes by zxid, checking
//! is linear rather than a search:
//! 1. acknowledged writes have distinct zxids, and zxid order agrees with
//!    real time (a write acknowledged before another was invoked has the
//!    smaller zxid);
//! 2. replaying acknowledged writes in zxid order on a model reproduces each
//!    write's outcome (versions; creates of absent nodes only);
//! 3. every read returns the value the model had at the read's zxid, and
//!    a session never goes back in time: a read reflects every write to its
//!    key up to the newest zxid the session has seen (its own acknowledged
//!    writes and earlier reads). A `Get` (a standalone server, or a read
//!    preceded by `sync` in the same session, with `invoked` at the sync) is
//!    also never older than a write to that key acknowledged before it
//!    began; a `LocalGet` (a read on whatever server the session is on,
//!    without sync) may be stale in ZooKeeper, so only the session rule holds;
//! 4. the final state holds every acknowledged write not overwritten later.
//!
//! Writes that failed definitely are known not to have happened; writes
//! whose outcome is unknown (connection lost) may or may not have.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Set {
        key: String,
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
    /// A linearizable read: standalone, or sync + getData.
    Get {
        key: String,
    },
    /// A read without sync on a replica: may lag, never behind its session.
    LocalGet {
        key: String,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Create { key, .. }
            | Op::Set { key, .. }
            | Op::Delete { key }
            | Op::Get { key }
            | Op::LocalGet { key } => key,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. } | Op::LocalGet { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A write that took effect at `zxid`; `version` is the data version after it.
    Wrote { zxid: i64, version: i32 },
    /// A read: the value and the mzxid it carried, or None for no node.
    Read(Option<(Vec<u8>, i64)>),
    /// The server said no (node exists, no node, bad version...).
    Refused,
    /// Unknown: the connection broke before the reply.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub session: u64,
    pub op: Op,
    pub invoked: Instant,
    pub completed: Instant,
    pub outcome: Outcome,
}

/// One key's value history in zxid order: (zxid, value or None for deleted).
type KeyHistory = Vec<(i64, Option<Vec<u8>>)>;

/// Checks a history; Err says what is wrong with which entry.
pub fn check(
    entries: &[Entry],
    final_state: &HashMap<String, Option<Vec<u8>>>,
) -> Result<(), String> {
    // 1. distinct zxids, real-time order.
    let mut writes: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Wrote { .. }))
        .collect();
    writes.sort_by_key(|e| zxid_of(e));
    for pair in writes.windows(2) {
        if zxid_of(pair[0]) == zxid_of(pair[1]) {
            return Err(format!(
                "two writes share zxid {:#x}: {:?} and {:?}",
                zxid_of(pair[0]),
                pair[0].op,
                pair[1].op
            ));
        }
    }
    for (i, a) in writes.iter().enumerate() {
        for b in &writes[i + 1..] {
            // b has the larger zxid; it must not have completed before a began.
            if b.completed < a.invoked {
                return Err(format!(
                    "real-time order broken: {:?} (zxid {:#x}) finished before {:?} (zxid {:#x}) began",
                    b.op,
                    zxid_of(b),
                    a.op,
                    zxid_of(a)
                ));
            }
        }
    }
    // 2. replay in zxid order per key.
    let mut model: HashMap<String, (Option<Vec<u8>>, i32)> = HashMap::new();
    let mut history: HashMap<String, KeyHistory> = HashMap::new();
    for w in &writes {
        let Outcome::Wrote { zxid, version } = w.outcome else {
            unreachable!()
        };
        let key = w.op.key().to_string();
        // Writes whose reply was lost may have happened: they can explain a
        // node that exists, or a version further along, than replay says.
        let unknown_before = entries.iter().any(|e| {
            e.op.key() == key
                && e.outcome == Outcome::Unknown
                && !e.op.is_read()
                && e.invoked < w.completed
        });
        let (cur, cur_version) = model.entry(key.clone()).or_insert((None, -1));
        match &w.op {
            Op::Create { value, .. } => {
                // Only a delete whose reply was lost could explain this.
                let unknown_delete = entries.iter().any(|e| {
                    e.op == Op::Delete { key: key.clone() }
                        && e.outcome == Outcome::Unknown
                        && e.invoked < w.completed
                });
                if cur.is_some() && !unknown_delete {
                    return Err(format!(
                        "create of {key} at {zxid:#x} succeeded while it existed"
                    ));
                }
                *cur = Some(value.clone());
                *cur_version = 0;
            }
            Op::Set { value, .. } => {
                if cur.is_none() && !unknown_before {
                    return Err(format!(
                        "set of {key} at {zxid:#x} succeeded while it was absent"
                    ));
                }
                *cur_version += 1;
                if version > *cur_version && unknown_before {
                    *cur_version = version;
                }
                *cur = Some(value.clone());
            }
            Op::Delete { .. } => {
                if cur.is_none() {
                    return Err(format!(
                        "delete of {key} at {zxid:#x} succeeded while it was absent"
                    ));
                }
                *cur = None;
                *cur_version = -1;
            }
            Op::Get { .. } | Op::LocalGet { .. } => unreachable!(),
        }
        if !matches!(w.op, Op::Delete { .. }) && *cur_version != version {
            return Err(format!(
                "{:?} at {zxid:#x} reported version {version}, replay says {cur_version}",
                w.op
            ));
        }
        history.entry(key).or_default().push((zxid, cur.clone()));
    }
    // 3. reads. A session has seen every zxid up to the newest of its own
    //    acknowledged writes and the mzxids its reads returned.
    let mut session_seen: HashMap<u64, i64> = HashMap::new();
    let mut by_time: Vec<&Entry> = entries.iter().collect();
    by_time.sort_by_key(|e| e.invoked);
    for r in &by_time {
        if !r.op.is_read() {
            continue;
        }
        let Outcome::Read(got) = &r.outcome else {
            continue;
        };
        let key = r.op.key();
        let h = history.get(key).map(Vec::as_slice).unwrap_or(&[]);
        // What this session had seen when the read began.
        let seen = session_seen.get(&r.session).copied().unwrap_or(0).max(
            writes
                .iter()
                .filter(|w| w.session == r.session && w.completed <= r.invoked)
                .map(|w| zxid_of(w))
                .max()
                .unwrap_or(0),
        );
        // The newest write to this key the read must reflect.
        let session_floor = h
            .iter()
            .map(|(z, _)| *z)
            .filter(|z| *z <= seen)
            .max()
            .unwrap_or(0);
        let acked_floor = if matches!(r.op, Op::Get { .. }) {
            writes
                .iter()
                .filter(|w| w.op.key() == key && w.completed < r.invoked)
                .map(|w| zxid_of(w))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let floor = session_floor.max(acked_floor);
        match got {
            Some((value, mzxid)) => {
                let at = value_at(h, *mzxid);
                // A value written by an indeterminate write is not in the
                // model; accept it only if no acknowledged write explains it
                // and it is newer than the floor.
                if at.as_ref() != Some(value) && h.iter().any(|(z, _)| z == mzxid) {
                    return Err(format!(
                        "read of {key} saw {value:?} at {mzxid:#x}, the write there was {at:?}"
                    ));
                }
                if *mzxid < floor {
                    if floor == acked_floor {
                        return Err(format!(
                            "stale read of {key}: mzxid {mzxid:#x} older than acknowledged write {floor:#x}"
                        ));
                    }
                    return Err(format!(
                        "session {} went back in time on {key}: read mzxid {mzxid:#x}, but it had seen {seen:#x} (write {floor:#x})",
                        r.session
                    ));
                }
                let s = session_seen.entry(r.session).or_insert(0);
                *s = (*s).max(*mzxid);
            }
            None => {
                // Absent: the last acknowledged write at or before the floor
                // must not have left it present, unless a delete (acked or
                // unknown) may explain it.
                if let Some((z, Some(_))) = h.iter().rev().find(|(z, _)| *z <= floor).cloned()
                    && !entries.iter().any(|e| {
                        e.op == Op::Delete {
                            key: key.to_string(),
                        } && matches!(e.outcome, Outcome::Unknown | Outcome::Wrote { .. })
                            && e.invoked < r.completed
                    })
                {
                    return Err(format!(
                        "read of {key} found nothing after the write at {z:#x} that created it"
                    ));
                }
            }
        }
    }
    // 4. acknowledged writes survive: the final value is the last
    //    acknowledged one, or one an unknown write may have put there.
    for (key, h) in &history {
        let Some((z, last)) = h.last() else { continue };
        let fin = final_state.get(key).cloned().unwrap_or(None);
        if &fin != last {
            let unknown_explains = entries.iter().any(|e| {
                e.op.key() == key
                    && e.outcome == Outcome::Unknown
                    && match &e.op {
                        Op::Create { value, .. } | Op::Set { value, .. } => {
                            fin.as_ref() == Some(value)
                        }
                        Op::Delete { .. } => fin.is_none(),
                        Op::Get { .. } | Op::LocalGet { .. } => false,
                    }
            });
            if !unknown_explains {
                return Err(format!(
                    "{key}: final value {fin:?}, but the last acknowledged write ({z:#x}) left {last:?}"
                ));
            }
        }
    }
    Ok(())
}

fn zxid_of(e: &Entry) -> i64 {
    match e.outcome {
        Outcome::Wrote { zxid, .. } => zxid,
        _ => 0,
    }
}

fn value_at(h: &[(i64, Option<Vec<u8>>)], zxid: i64) -> Option<Vec<u8>> {
    let mut v: BTreeMap<i64, Option<Vec<u8>>> = BTreeMap::new();
    for (z, val) in h {
        v.insert(*z, val.clone());
    }
    v.range(..=zxid)
        .next_back()
        .and_then(|(_, val)| val.clone())
}
