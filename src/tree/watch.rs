//! Watches: who is told when a znode changes, with ZooKeeper's trigger rules.
//!
//! Two tables as in ZooKeeper: data watches (set by getData and exists) and
//! child watches (set by getChildren). Persistent and persistent-recursive
//! watches (addWatch) sit in both. A one-shot watch fires once and is gone;
//! a persistent one stays. A recursive watch fires for its whole subtree but
//! never with NodeChildrenChanged. One change tells each connection once.
//! Watches belong to a connection and go with it.

use crate::proto::event_type;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A client connection, as the server numbers them.
pub type ConnId = u64;

pub const STANDARD: u8 = 1;
pub const PERSISTENT: u8 = 2;
pub const RECURSIVE: u8 = 4;

/// One table of watches: path -> connection -> modes.
#[derive(Debug, Default, Clone)]
pub struct WatchTable {
    by_path: HashMap<String, HashMap<ConnId, u8>>,
    by_conn: HashMap<ConnId, BTreeSet<String>>,
    recursive: usize,
}

impl WatchTable {
    pub fn add(&mut self, path: &str, conn: ConnId, mode: u8) {
        let modes = self
            .by_path
            .entry(path.to_string())
            .or_default()
            .entry(conn)
            .or_insert(0);
        if mode & RECURSIVE != 0 && *modes & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *modes |= mode;
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_string());
    }

    /// Removes the given modes of `conn` on `path`; true if any was there.
    pub fn remove(&mut self, path: &str, conn: ConnId, mode_mask: u8) -> bool {
        let Some(conns) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(modes) = conns.get_mut(&conn) else {
            return false;
        };
        let removed = *modes & mode_mask;
        if removed == 0 {
            return false;
        }
        if removed & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        *modes &= !mode_mask;
        if *modes == 0 {
            conns.remove(&conn);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
        true
    }

    pub fn contains(&self, path: &str, conn: ConnId, mode_mask: u8) -> bool {
        self.by_path
            .get(path)
            .and_then(|c| c.get(&conn))
            .is_some_and(|m| m & mode_mask != 0)
    }

    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(paths) = self.by_conn.remove(&conn) {
            for p in paths {
                if let Some(conns) = self.by_path.get_mut(&p) {
                    if let Some(m) = conns.remove(&conn)
                        && m & RECURSIVE != 0
                    {
                        self.recursive -= 1;
                    }
                    if conns.is_empty() {
                        self.by_path.remove(&p);
                    }
                }
            }
        }
    }

    /// The connections to tell about `event` on `path`; one-shot watches
    /// on `path` are consumed.
    fn trigger(&mut self, path: &str, event: i32, out: &mut BTreeSet<ConnId>) {
        let mut emptied = Vec::new();
        if let Some(conns) = self.by_path.get_mut(path) {
            for (conn, modes) in conns.iter_mut() {
                if *modes & (STANDARD | PERSISTENT) != 0
                    || (*modes & RECURSIVE != 0 && event != event_type::NODE_CHILDREN_CHANGED)
                {
                    out.insert(*conn);
                }
                if *modes & STANDARD != 0 {
                    *modes &= !STANDARD;
                    if *modes == 0 {
                        emptied.push(*conn);
                    }
                }
            }
            for c in &emptied {
                conns.remove(c);
            }
            if conns.is_empty() {
                self.by_path.remove(path);
            }
        }
        for c in emptied {
            if let Some(paths) = self.by_conn.get_mut(&c) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&c);
                }
            }
        }
        // Recursive watches on ancestors; skipped entirely when none exist.
        if self.recursive > 0 && event != event_type::NODE_CHILDREN_CHANGED {
            let mut p = path;
            while p != "/" {
                p = super::path::parent(p);
                if let Some(conns) = self.by_path.get(p) {
                    for (conn, modes) in conns {
                        if modes & RECURSIVE != 0 {
                            out.insert(*conn);
                        }
                    }
                }
            }
        }
    }

    pub fn count(&self) -> usize {
        self.by_path.values().map(|c| c.len()).sum()
    }

    pub fn paths(&self) -> usize {
        self.by_path.len()
    }
}

/// A change the data tree made that watches may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Deleted(String),
    DataChanged(String),
}

/// One notification to send: to whom, what, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub conn: ConnId,
    pub event_type: i32,
    pub path: String,
}

/// Both watch tables.
#[derive(Debug, Default, Clone)]
pub struct Watches {
    pub data: WatchTable,
    pub child: WatchTable,
}

impl Watches {
    /// The notifications a tree change causes, in ZooKeeper's order.
    pub fn on_change(&mut self, change: &Change) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut emit = |set: BTreeSet<ConnId>, t: i32, path: &str| {
            for conn in set {
                out.push(Notification {
                    conn,
                    event_type: t,
                    path: path.to_string(),
                });
            }
        };
        match change {
            Change::Created(p) => {
                let mut s = BTreeSet::new();
                self.data.trigger(p, event_type::NODE_CREATED, &mut s);
                emit(s, event_type::NODE_CREATED, p);
                let parent = super::path::parent(p);
                let mut s = BTreeSet::new();
                self.child
                    .trigger(parent, event_type::NODE_CHILDREN_CHANGED, &mut s);
                emit(s, event_type::NODE_CHILDREN_CHANGED, parent);
            }
            Change::Deleted(p) => {
                let mut told = BTreeSet::new();
                self.data.trigger(p, event_type::NODE_DELETED, &mut told);
                let mut s = BTreeSet::new();
                self.child.trigger(p, event_type::NODE_DELETED, &mut s);
                s.retain(|c| !told.contains(c));
                told.extend(s);
                emit(told, event_type::NODE_DELETED, p);
                let parent = super::path::parent(p);
                let mut s = BTreeSet::new();
                self.child
                    .trigger(parent, event_type::NODE_CHILDREN_CHANGED, &mut s);
                emit(s, event_type::NODE_CHILDREN_CHANGED, parent);
            }
            Change::DataChanged(p) => {
                let mut s = BTreeSet::new();
                self.data.trigger(p, event_type::NODE_DATA_CHANGED, &mut s);
                emit(s, event_type::NODE_DATA_CHANGED, p);
            }
        }
        out
    }

    pub fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        let mode = if recursive { RECURSIVE } else { PERSISTENT };
        self.data.add(path, conn, mode);
        self.child.add(path, conn, mode);
    }

    pub fn remove_conn(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    pub fn count(&self) -> usize {
        // Persistent watches sit in both tables but are one watch.
        let persistent_dupes: usize = self
            .child
            .by_path
            .values()
            .flat_map(|c| c.values())
            .filter(|m| **m & (PERSISTENT | RECURSIVE) != 0 && **m & STANDARD == 0)
            .count();
        self.data.count() + self.child.count() - persistent_dupes
    }

    /// connection -> watched paths, for `wchc`.
    pub fn by_conn(&self) -> BTreeMap<ConnId, BTreeSet<String>> {
        let mut m: BTreeMap<ConnId, BTreeSet<String>> = BTreeMap::new();
        for t in [&self.data, &self.child] {
            for (c, paths) in &t.by_conn {
                m.entry(*c).or_default().extend(paths.iter().cloned());
            }
        }
        m
    }

    /// path -> watching connections, for `wchp`.
    pub fn by_path(&self) -> BTreeMap<String, BTreeSet<ConnId>> {
        let mut m: BTreeMap<String, BTreeSet<ConnId>> = BTreeMap::new();
        for t in [&self.data, &self.child] {
            for (p, conns) in &t.by_path {
                m.entry(p.clone()).or_default().extend(conns.keys());
            }
        }
        m
    }

    pub fn paths(&self) -> usize {
        self.by_path().len()
    }

    pub fn conns(&self) -> usize {
        self.by_conn().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::event_type::*;

    fn n(conn: ConnId, t: i32, p: &str) -> Notification {
        Notification {
            conn,
            event_type: t,
            path: p.into(),
        }
    }

    #[test]
    fn one_shot_fires_once() {
        let mut w = Watches::default();
        w.data.add("/a", 1, STANDARD);
        let c = Change::DataChanged("/a".into());
        assert_eq!(w.on_change(&c), vec![n(1, NODE_DATA_CHANGED, "/a")]);
        assert!(w.on_change(&c).is_empty());
    }

    #[test]
    fn child_watch_on_create_and_delete() {
        let mut w = Watches::default();
        w.child.add("/", 1, STANDARD);
        w.child.add("/a", 2, STANDARD);
        w.data.add("/a", 2, STANDARD);
        // The data watch on /a was an exists watch: it sees the creation.
        assert_eq!(
            w.on_change(&Change::Created("/a".into())),
            vec![n(2, NODE_CREATED, "/a"), n(1, NODE_CHILDREN_CHANGED, "/")]
        );
        w.data.add("/a", 2, STANDARD);
        // Data and child watch of the same connection on the deleted node: one event.
        assert_eq!(
            w.on_change(&Change::Deleted("/a".into())),
            vec![n(2, NODE_DELETED, "/a")]
        );
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn persistent_stays_and_sees_children() {
        let mut w = Watches::default();
        w.add_persistent("/a", 7, false);
        assert_eq!(
            w.on_change(&Change::Created("/a/b".into())),
            vec![n(7, NODE_CHILDREN_CHANGED, "/a")]
        );
        assert_eq!(
            w.on_change(&Change::DataChanged("/a".into())),
            vec![n(7, NODE_DATA_CHANGED, "/a")]
        );
        assert_eq!(
            w.on_change(&Change::DataChanged("/a".into())),
            vec![n(7, NODE_DATA_CHANGED, "/a")]
        );
        assert!(w.on_change(&Change::DataChanged("/a/b".into())).is_empty());
    }

    #[test]
    fn recursive_sees_subtree_but_not_children_changed() {
        let mut w = Watches::default();
        w.add_persistent("/a", 7, true);
        assert_eq!(
            w.on_change(&Change::Created("/a/b/c".into())),
            vec![n(7, NODE_CREATED, "/a/b/c")]
        );
        assert_eq!(
            w.on_change(&Change::Deleted("/a/b/c".into())),
            vec![n(7, NODE_DELETED, "/a/b/c")]
        );
        assert!(w.on_change(&Change::DataChanged("/x".into())).is_empty());
        w.remove_conn(7);
        assert!(w.on_change(&Change::DataChanged("/a".into())).is_empty());
        assert_eq!(w.data.recursive, 0);
    }
}
