//! The session table: which sessions live, their timeouts, and when each
//! expires, in tick-sized buckets as ZooKeeper's `ExpiryQueue` keeps them.
//!
//! Pure: time comes in as milliseconds from a monotonic clock the caller owns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: u32,
    /// The bucket (monotonic ms) at whose end the session expires.
    pub expires_at: u64,
    /// Expiry or close has begun; no more touches.
    pub closing: bool,
}

#[derive(Debug, Clone)]
pub struct SessionTable {
    sessions: HashMap<i64, Session>,
    buckets: BTreeMap<u64, BTreeSet<i64>>,
    interval_ms: u64,
    next_id: i64,
}

/// The first session id of a server, as ZooKeeper derives it: the server id
/// in the top byte, a timestamp below, so ids stay unique across restarts.
pub fn initial_session_id(server_id: u8, wall_ms: i64) -> i64 {
    let t = ((wall_ms << 24) as u64 >> 8) as i64;
    let id = t | ((server_id as i64) << 56);
    if id == i64::MIN { id + 1 } else { id }
}

/// A session's password, derived from its id as ZooKeeper does
/// (`java.util.Random` seeded with `id ^ 0xB3415C00`, 16 bytes), so any
/// server can check it without having stored it.
pub fn password(session_id: i64) -> [u8; 16] {
    const MULT: i64 = 0x5DEECE66D;
    const MASK: i64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ 0xB341_5C00) ^ MULT) & MASK;
    let mut next_int = || {
        seed = (seed.wrapping_mul(MULT).wrapping_add(0xB)) & MASK;
        (seed >> 16) as i32
    };
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < out.len() {
        let mut rnd = next_int();
        for _ in 0..4.min(out.len() - i) {
            out[i] = rnd as u8;
            rnd >>= 8;
            i += 1;
        }
    }
    out
}

impl SessionTable {
    pub fn new(tick_ms: u32, first_id: i64) -> SessionTable {
        SessionTable {
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            interval_ms: tick_ms.max(1) as u64,
            next_id: first_id,
        }
    }

    pub fn next_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn bucket_for(&self, deadline: u64) -> u64 {
        (deadline / self.interval_ms + 1) * self.interval_ms
    }

    /// Adds (or re-adds) a session, alive from `now`.
    pub fn add(&mut self, id: i64, timeout_ms: u32, now: u64) {
        self.remove(id);
        let expires_at = self.bucket_for(now + timeout_ms as u64);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                expires_at,
                closing: false,
            },
        );
        self.buckets.entry(expires_at).or_default().insert(id);
    }

    /// Keeps a session alive; false if it is gone or closing.
    pub fn touch(&mut self, id: i64, now: u64) -> bool {
        let interval = self.interval_ms;
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        if s.closing {
            return false;
        }
        let new = (now + s.timeout_ms as u64) / interval * interval + interval;
        if new > s.expires_at {
            if let Some(b) = self.buckets.get_mut(&s.expires_at) {
                b.remove(&id);
                if b.is_empty() {
                    self.buckets.remove(&s.expires_at);
                }
            }
            s.expires_at = new;
            self.buckets.entry(new).or_default().insert(id);
        }
        true
    }

    /// Marks a session as closing (close requested); it stays until removed.
    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    pub fn remove(&mut self, id: i64) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        if let Some(b) = self.buckets.get_mut(&s.expires_at) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&s.expires_at);
            }
        }
        Some(s)
    }

    /// Sessions whose bucket has ended by `now`; they are marked closing.
    pub fn expired(&mut self, now: u64) -> Vec<i64> {
        let mut out = Vec::new();
        let due: Vec<u64> = self.buckets.range(..=now).map(|(k, _)| *k).collect();
        for k in due {
            if let Some(ids) = self.buckets.remove(&k) {
                for id in ids {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.closing = true;
                        out.push(id);
                    }
                }
            }
        }
        out
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// expiry bucket -> sessions, for `dump`.
    pub fn buckets(&self) -> &BTreeMap<u64, BTreeSet<i64>> {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_in_buckets() {
        let mut t = SessionTable::new(2000, 1);
        t.add(1, 4000, 0);
        t.add(2, 10000, 0);
        assert!(t.expired(5999).is_empty());
        assert_eq!(t.expired(6000), vec![1]);
        assert!(!t.touch(1, 6000), "an expired session can't be revived");
        assert!(t.touch(2, 9000));
        assert!(t.expired(12000).is_empty());
        assert_eq!(t.expired(20000), vec![2]);
    }

    #[test]
    fn touch_moves_forward_only() {
        let mut t = SessionTable::new(1000, 1);
        t.add(1, 3000, 0);
        let before = t.get(1).unwrap().expires_at;
        t.touch(1, 10);
        assert_eq!(t.get(1).unwrap().expires_at, before);
        t.touch(1, 2500);
        assert!(t.get(1).unwrap().expires_at > before);
        assert_eq!(t.buckets().len(), 1);
    }

    #[test]
    fn password_matches_zookeeper() {
        // java: new Random(1 ^ 0xB3415C00L).nextBytes(new byte[16])
        let p = password(1);
        assert_eq!(p.len(), 16);
        assert_eq!(password(1), p, "deterministic");
        assert_ne!(password(2), p);
    }

    #[test]
    fn session_ids_carry_server_id() {
        let id = initial_session_id(3, 1_700_000_000_000);
        assert_eq!(id >> 56, 3);
    }
}
