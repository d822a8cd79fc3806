//! Pure bookkeeping of the shell's watches, so events print the way zkCli prints them.
//!
//! zkCli registers every watch with ONE default watcher, and the Java client keeps watchers
//! in sets, so one server notification prints once even when several watches (`get -w`
//! and `ls -w` on the same node, or a data watch plus a persistent one) are triggered by it.
//! `zookeeper-client` instead hands each watch its own receiver, so each would deliver the
//! same event. The book records which watches one notification consumes and swallows the
//! duplicates; it also answers `removewatches` with the `*WatchRemoved` events zkCli shows.
//! No IO: the shell feeds it registrations and delivered events.

use std::collections::BTreeMap;

/// What kind of watch was set, in the Java client's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    /// `get -w`, `stat -w` on an existing node, `config -w`.
    Data,
    /// `stat -w` on a missing node.
    Exist,
    /// `ls -w`.
    Child,
    /// `addWatch -m PERSISTENT`.
    Persistent,
    /// `addWatch` (default `PERSISTENT_RECURSIVE`).
    PersistentRecursive,
}

impl WatchKind {
    pub fn is_persistent(self) -> bool {
        matches!(self, WatchKind::Persistent | WatchKind::PersistentRecursive)
    }
}

/// Node event types a server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    Created,
    Deleted,
    DataChanged,
    ChildrenChanged,
}

impl NodeEvent {
    pub fn java_name(self) -> &'static str {
        match self {
            NodeEvent::Created => "NodeCreated",
            NodeEvent::Deleted => "NodeDeleted",
            NodeEvent::DataChanged => "NodeDataChanged",
            NodeEvent::ChildrenChanged => "NodeChildrenChanged",
        }
    }
}

/// Which watches `removewatches` targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveTarget {
    Children,
    Data,
    Any,
}

pub type WatchId = u64;

#[derive(Debug)]
struct Entry {
    path: String,
    kind: WatchKind,
    /// Notifications already printed on behalf of this watch, still to arrive from it.
    swallow: Vec<(NodeEvent, String)>,
}

/// The set of live watches and pending duplicate notifications.
#[derive(Debug, Default)]
pub struct WatchBook {
    next: WatchId,
    entries: BTreeMap<WatchId, Entry>,
}

/// Whether a watch of `kind` at `at` is triggered by `event` on `path` (Java's rules).
fn triggers(kind: WatchKind, at: &str, event: NodeEvent, path: &str) -> bool {
    match kind {
        WatchKind::Data | WatchKind::Exist => {
            at == path
                && matches!(
                    event,
                    NodeEvent::Created | NodeEvent::Deleted | NodeEvent::DataChanged
                )
        }
        WatchKind::Child => {
            at == path && matches!(event, NodeEvent::Deleted | NodeEvent::ChildrenChanged)
        }
        WatchKind::Persistent => at == path,
        WatchKind::PersistentRecursive => {
            event != NodeEvent::ChildrenChanged
                && (at == path
                    || at == "/"
                    || (path.starts_with(at) && path.as_bytes().get(at.len()) == Some(&b'/')))
        }
    }
}

impl WatchBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a new watch; its id goes with the receiver the shell listens on.
    pub fn register(&mut self, path: &str, kind: WatchKind) -> WatchId {
        self.next += 1;
        self.entries.insert(
            self.next,
            Entry {
                path: path.to_string(),
                kind,
                swallow: Vec::new(),
            },
        );
        self.next
    }

    /// Whether the watch is still live (not fired, not removed).
    pub fn contains(&self, id: WatchId) -> bool {
        self.entries.contains_key(&id)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A node event arrived on watch `id`. Returns true if it must be printed; false if it is
    /// a duplicate of one already printed (or the watch is gone). One-shot watches consumed by
    /// the notification are dropped from the book.
    pub fn deliver(&mut self, id: WatchId, event: NodeEvent, path: &str) -> bool {
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        if let Some(i) = entry
            .swallow
            .iter()
            .position(|(e, p)| *e == event && p == path)
        {
            entry.swallow.remove(i);
            if !entry.kind.is_persistent() && entry.swallow.is_empty() {
                self.entries.remove(&id);
            }
            return false;
        }
        // First delivery of this notification: every other watch it triggers will deliver it too.
        let others: Vec<WatchId> = self
            .entries
            .iter()
            .filter(|(other, e)| **other != id && triggers(e.kind, &e.path, event, path))
            .map(|(other, _)| *other)
            .collect();
        for other in others {
            if let Some(e) = self.entries.get_mut(&other) {
                e.swallow.push((event, path.to_string()));
            }
        }
        if let Some(entry) = self.entries.get(&id)
            && !entry.kind.is_persistent()
            && entry.swallow.is_empty()
        {
            self.entries.remove(&id);
        }
        true
    }

    /// A one-shot watch ended without a node event (session closed or expired).
    pub fn forget(&mut self, id: WatchId) {
        self.entries.remove(&id);
    }

    /// `removewatches path [-c|-d|-a]`: drops the matching watches and returns their ids with
    /// the event type zkCli prints for each kind removed (persistent, then child, then data),
    /// or an empty list when nothing matched (zkCli: "No such watcher").
    pub fn remove(
        &mut self,
        path: &str,
        target: RemoveTarget,
    ) -> (Vec<WatchId>, Vec<&'static str>) {
        let matches = |kind: WatchKind| match target {
            RemoveTarget::Children => kind == WatchKind::Child,
            RemoveTarget::Data => matches!(kind, WatchKind::Data | WatchKind::Exist),
            RemoveTarget::Any => true,
        };
        let ids: Vec<WatchId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.path == path && matches(e.kind))
            .map(|(id, _)| *id)
            .collect();
        let kinds: Vec<WatchKind> = ids.iter().map(|id| self.entries[id].kind).collect();
        let mut events = Vec::new();
        if kinds.iter().any(|k| k.is_persistent()) {
            events.push("PersistentWatchRemoved");
        }
        if kinds.contains(&WatchKind::Child) {
            events.push("ChildWatchRemoved");
        }
        if kinds
            .iter()
            .any(|k| matches!(k, WatchKind::Data | WatchKind::Exist))
        {
            events.push("DataWatchRemoved");
        }
        for id in &ids {
            self.entries.remove(id);
        }
        (ids, events)
    }

    /// Drops everything (the session is gone).
    pub fn clear(&mut self) -> Vec<WatchId> {
        let ids = self.entries.keys().copied().collect();
        self.entries.clear();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_print_for_data_and_child_watch_on_delete() {
        let mut book = WatchBook::new();
        let d = book.register("/x", WatchKind::Data);
        let c = book.register("/x", WatchKind::Child);
        assert!(book.deliver(c, NodeEvent::Deleted, "/x"));
        assert!(!book.deliver(d, NodeEvent::Deleted, "/x"));
        assert!(book.is_empty());
    }

    #[test]
    fn child_change_does_not_consume_data_watch() {
        let mut book = WatchBook::new();
        let d = book.register("/x", WatchKind::Data);
        let c = book.register("/x", WatchKind::Child);
        assert!(book.deliver(c, NodeEvent::ChildrenChanged, "/x"));
        assert!(book.contains(d));
        assert!(book.deliver(d, NodeEvent::DataChanged, "/x"));
        assert!(book.is_empty());
    }

    #[test]
    fn duplicate_get_w_prints_once() {
        let mut book = WatchBook::new();
        let a = book.register("/x", WatchKind::Data);
        let b = book.register("/x", WatchKind::Data);
        assert!(book.deliver(b, NodeEvent::DataChanged, "/x"));
        assert!(!book.deliver(a, NodeEvent::DataChanged, "/x"));
        assert!(book.is_empty());
    }

    #[test]
    fn persistent_recursive_stays_and_dedups_with_oneshot() {
        let mut book = WatchBook::new();
        let r = book.register("/a", WatchKind::PersistentRecursive);
        let d = book.register("/a/b", WatchKind::Data);
        assert!(book.deliver(d, NodeEvent::DataChanged, "/a/b"));
        assert!(!book.deliver(r, NodeEvent::DataChanged, "/a/b"));
        assert!(book.deliver(r, NodeEvent::Created, "/a/c"));
        assert!(
            book.deliver(r, NodeEvent::Created, "/a/c"),
            "a second real notification prints again"
        );
        assert!(book.contains(r));
        // Not a descendant: /ab is not under /a.
        assert!(!triggers(
            WatchKind::PersistentRecursive,
            "/a",
            NodeEvent::Created,
            "/ab"
        ));
        assert!(triggers(
            WatchKind::PersistentRecursive,
            "/",
            NodeEvent::Created,
            "/ab"
        ));
        assert!(!triggers(
            WatchKind::PersistentRecursive,
            "/a",
            NodeEvent::ChildrenChanged,
            "/a"
        ));
    }

    #[test]
    fn remove_reports_kinds_in_zkcli_order() {
        let mut book = WatchBook::new();
        book.register("/a", WatchKind::Data);
        book.register("/a", WatchKind::Child);
        book.register("/a", WatchKind::PersistentRecursive);
        book.register("/b", WatchKind::Persistent);
        let (ids, events) = book.remove("/b", RemoveTarget::Data);
        assert!(ids.is_empty() && events.is_empty());
        let (ids, events) = book.remove("/a", RemoveTarget::Any);
        assert_eq!(ids.len(), 3);
        assert_eq!(
            events,
            [
                "PersistentWatchRemoved",
                "ChildWatchRemoved",
                "DataWatchRemoved"
            ]
        );
        assert_eq!(book.len(), 1);
        let (_, events) = book.remove("/b", RemoveTarget::Any);
        assert_eq!(events, ["PersistentWatchRemoved"]);
    }

    #[test]
    fn unknown_or_forgotten_ids_never_print() {
        let mut book = WatchBook::new();
        let d = book.register("/x", WatchKind::Data);
        book.forget(d);
        assert!(!book.deliver(d, NodeEvent::DataChanged, "/x"));
        assert!(!book.deliver(99, NodeEvent::DataChanged, "/x"));
    }
}
