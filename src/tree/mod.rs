//! The data tree: znodes with their data, ACLs and stats, and the rules for
//! applying transactions to them. Also the watch tables (`watch`), ACL
//! handling (`acl`) and path rules (`path`).
//!
//! Pure and deterministic: applying the same transactions in the same order
//! gives the same tree on every server and after every restart. No IO, no
//! clock (transaction times come in the headers).

pub mod acl;
pub mod path;
mod quota;
pub mod watch;

use crate::proto::txn::{CreateTxn, Txn, TxnHeader};
use crate::proto::{Acl, ErrorCode, OpCode, Stat, StatPersisted};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};

/// The node table and child sets are persistent (structurally shared)
/// collections, so a snapshot can take the whole tree in O(1) and walk it on
/// another thread while writes go on.
type NodeMap = imbl::HashMap<String, Node>;
pub type Children = imbl::OrdSet<String>;
pub use watch::Change;

/// `ephemeralOwner` of container nodes.
pub const CONTAINER_OWNER: i64 = i64::MIN;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
const TTL_MASK: i64 = 0x0000_00ff_ffff_ffff;
/// The largest TTL a node may have (40 bits of milliseconds).
pub const MAX_TTL: i64 = TTL_MASK;

/// What a node's `ephemeralOwner` says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

impl NodeKind {
    pub fn of(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if owner & EXTENDED_MASK == EXTENDED_MASK && (owner >> 40) & 0xffff == 0 {
            NodeKind::Ttl(owner & TTL_MASK)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    pub fn ttl_owner(ttl: i64) -> i64 {
        EXTENDED_MASK | (ttl & TTL_MASK)
    }
}

pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// Paths a client may never delete.
pub fn is_special(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER | QUOTA | CONFIG)
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub data: Bytes,
    /// Reference into the tree's ACL cache.
    pub acl: i64,
    pub stat: StatPersisted,
    pub children: Children,
}

impl Node {
    /// The stat clients see. The stored cversion counts child creations
    /// (it numbers sequential children); clients see creations plus
    /// deletions, which is twice the creations less the children left.
    /// Container and TTL markers in ephemeralOwner are not shown.
    pub fn stat(&self) -> Stat {
        let mut s = Stat::from(&self.stat);
        s.data_length = self.data.len() as i32;
        s.num_children = self.children.len() as i32;
        s.cversion = self
            .stat
            .cversion
            .wrapping_mul(2)
            .wrapping_sub(s.num_children);
        if !matches!(
            NodeKind::of(self.stat.ephemeral_owner),
            NodeKind::Ephemeral(_)
        ) {
            s.ephemeral_owner = 0;
        }
        s
    }
}

/// How to put back what a speculative apply changed (used when a multi fails).
#[derive(Debug)]
pub enum Undo {
    Created {
        path: String,
        parent_cversion: i32,
        parent_pzxid: i64,
    },
    Deleted {
        path: String,
        node: Node,
        acl: Vec<Acl>,
        parent_pzxid: i64,
    },
    DataSet {
        path: String,
        data: Bytes,
        stat: StatPersisted,
    },
    AclSet {
        path: String,
        acl: Vec<Acl>,
        aversion: i32,
    },
    Nothing,
}

/// The outcome of applying one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub op: OpCode,
    pub err: ErrorCode,
    pub path: String,
    pub stat: Option<Stat>,
    pub multi: Vec<Applied>,
}

impl Applied {
    fn new(op: OpCode) -> Applied {
        Applied {
            op,
            err: ErrorCode::Ok,
            path: String::new(),
            stat: None,
            multi: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: NodeMap,
    pub acls: acl::AclCache,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    /// The zxid of the last transaction applied.
    pub last_zxid: i64,
    data_size: u64,
    /// Subtrees with a quota (see `quota`).
    quota_roots: BTreeSet<String>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`
    /// with the same stats and ACL references Apache ZooKeeper gives them.
    pub fn new() -> DataTree {
        let mut t = DataTree::empty();
        t.insert_raw(
            "/",
            Bytes::new(),
            acl::OPEN_UNSAFE_REF,
            StatPersisted::default(),
        );
        t.insert_raw(
            ZOOKEEPER,
            Bytes::new(),
            acl::OPEN_UNSAFE_REF,
            StatPersisted::default(),
        );
        t.insert_raw(
            QUOTA,
            Bytes::new(),
            acl::OPEN_UNSAFE_REF,
            StatPersisted::default(),
        );
        let config_acl = t.acls.intern(&acl::read_acl_unsafe());
        // ZooKeeper sets this ACL with version -1, which lands in aversion.
        let stat = StatPersisted {
            aversion: -1,
            ..Default::default()
        };
        t.insert_raw(CONFIG, Bytes::new(), config_acl, stat);
        t
    }

    /// Sets what `/zookeeper/config` holds: the ensemble's membership, as
    /// ZooKeeper writes it there from its configuration (not a txn).
    pub fn set_config(&mut self, data: Bytes) {
        if let Some(n) = self.nodes.get_mut(CONFIG) {
            let old = n.data.len() as u64;
            n.data = data;
            self.data_size = self.data_size + n.data.len() as u64 - old;
        }
    }

    /// A tree with no nodes at all, to be filled from a snapshot.
    pub fn empty() -> DataTree {
        DataTree {
            nodes: NodeMap::new(),
            acls: acl::AclCache::default(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            last_zxid: 0,
            data_size: 0,
            quota_roots: BTreeSet::new(),
        }
    }

    /// Inserts a node as stored (from a snapshot); its parent must exist
    /// unless it is the root. Returns false if the parent is missing.
    pub fn insert_raw(&mut self, path: &str, data: Bytes, acl: i64, stat: StatPersisted) -> bool {
        if path != "/" {
            let parent = path::parent(path).to_string();
            match self.nodes.get_mut(&parent) {
                Some(p) => {
                    p.children.insert(path::name(path).to_string());
                }
                None => return false,
            }
        }
        self.acls.add_use(acl);
        self.track(path, stat.ephemeral_owner);
        self.data_size += (path.len() + data.len()) as u64;
        let children = self
            .nodes
            .remove(path)
            .map(|n| n.children)
            .unwrap_or_default();
        self.nodes.insert(
            path.to_string(),
            Node {
                data,
                acl,
                stat,
                children,
            },
        );
        self.quota_node_added(path, false);
        true
    }

    fn track(&mut self, path: &str, owner: i64) {
        match NodeKind::of(owner) {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.insert(path.to_string());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.to_string());
            }
            NodeKind::Ephemeral(s) => {
                self.ephemerals
                    .entry(s)
                    .or_default()
                    .insert(path.to_string());
            }
        }
    }

    fn untrack(&mut self, path: &str, owner: i64) {
        match NodeKind::of(owner) {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(Node::stat)
    }

    pub fn acl_of(&self, node: &Node) -> Vec<Acl> {
        self.acls.get(node.acl)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node count ZooKeeper reports (srvr, mntr, metrics): its node table
    /// holds the root twice (as "" and "/"), so tools see one more than there
    /// are znodes; we report the same so dashboards and alerts carry over.
    pub fn znode_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// session -> its ephemeral paths, for `dump`.
    pub fn all_ephemerals(&self) -> impl Iterator<Item = (&i64, &BTreeSet<String>)> {
        self.ephemerals.iter()
    }

    pub fn containers(&self) -> impl Iterator<Item = &String> {
        self.containers.iter()
    }

    pub fn ttls(&self) -> impl Iterator<Item = &String> {
        self.ttls.iter()
    }

    /// Number of nodes below `path`. For "/" ZooKeeper counts its alias of
    /// the root too, so we add one there to answer the same.
    pub fn all_children_number(&self, path: &str) -> i32 {
        let mut n = 0i32;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(&p) {
                for c in &node.children {
                    n += 1;
                    stack.push(path::join(&p, c));
                }
            }
        }
        if path == "/" { n + 1 } else { n }
    }

    /// Every node, parents before children (the order snapshots use).
    pub fn preorder(&self) -> Vec<(String, &Node)> {
        preorder(&self.nodes)
    }

    /// The tree as it is now, in O(1): it shares structure with the live
    /// tree and stays unchanged while the live one moves on.
    pub fn freeze(&self) -> Frozen {
        Frozen {
            nodes: self.nodes.clone(),
            acls: self.acls.entries(),
            last_zxid: self.last_zxid,
        }
    }
}

/// A point-in-time copy of the tree for a snapshot, safe to walk on any thread.
#[derive(Debug, Clone)]
pub struct Frozen {
    nodes: NodeMap,
    pub acls: Vec<(i64, Vec<Acl>)>,
    pub last_zxid: i64,
}

impl Frozen {
    /// Every node, parents before children.
    pub fn preorder(&self) -> Vec<(String, &Node)> {
        preorder(&self.nodes)
    }
}

fn preorder(nodes: &NodeMap) -> Vec<(String, &Node)> {
    let mut out = Vec::with_capacity(nodes.len());
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        if let Some(node) = nodes.get(&p) {
            for c in node.children.iter().rev() {
                stack.push(path::join(&p, c));
            }
            out.push((p, node));
        }
    }
    out
}

impl DataTree {
    /// Creates a node; `parent_cversion` is the parent's cversion after the
    /// create (-1: one more than now).
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        path: &str,
        data: Bytes,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        changes: &mut Vec<Change>,
    ) -> Result<(Stat, Undo), ErrorCode> {
        let parent_path = path::parent(path);
        let name = path::name(path).to_string();
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        if parent.children.contains(&name) {
            return Err(ErrorCode::NodeExists);
        }
        let undo = Undo::Created {
            path: path.to_string(),
            parent_cversion: parent.stat.cversion,
            parent_pzxid: parent.stat.pzxid,
        };
        let cversion = if parent_cversion == -1 {
            parent.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        // A replay over a fuzzy snapshot may meet a newer parent: keep the newer.
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = zxid;
        }
        parent.children.insert(name);
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let acl_ref = self.acls.intern(acl);
        self.data_size += (path.len() + data.len()) as u64;
        self.track(path, owner);
        let node = Node {
            data,
            acl: acl_ref,
            stat,
            children: Children::new(),
        };
        let out = node.stat();
        let len = node.data.len() as i64;
        self.nodes.insert(path.to_string(), node);
        self.quota_node_added(path, true);
        self.quota_account(path, 1, len);
        changes.push(Change::Created(path.to_string()));
        Ok((out, undo))
    }

    pub fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Undo, ErrorCode> {
        if path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        let acl = self.acls.get(node.acl);
        self.acls.release(node.acl);
        self.data_size = self
            .data_size
            .saturating_sub((path.len() + node.data.len()) as u64);
        self.untrack(path, node.stat.ephemeral_owner);
        let parent = self
            .nodes
            .get_mut(path::parent(path))
            .ok_or(ErrorCode::NoNode)?;
        let parent_pzxid = parent.stat.pzxid;
        parent.children.remove(path::name(path));
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        self.quota_node_removed(path);
        self.quota_account(path, -1, -(node.data.len() as i64));
        changes.push(Change::Deleted(path.to_string()));
        Ok(Undo::Deleted {
            path: path.to_string(),
            node,
            acl,
            parent_pzxid,
        })
    }

    pub fn set_data(
        &mut self,
        path: &str,
        data: Bytes,
        version: i32,
        zxid: i64,
        time: i64,
        changes: &mut Vec<Change>,
    ) -> Result<(Stat, Undo), ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let undo = Undo::DataSet {
            path: path.to_string(),
            data: node.data.clone(),
            stat: node.stat.clone(),
        };
        self.data_size =
            (self.data_size + data.len() as u64).saturating_sub(node.data.len() as u64);
        let grew = data.len() as i64 - node.data.len() as i64;
        node.data = data;
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let stat = node.stat();
        self.quota_account(path, 0, grew);
        changes.push(Change::DataChanged(path.to_string()));
        Ok((stat, undo))
    }

    pub fn set_acl(
        &mut self,
        path: &str,
        acl: &[Acl],
        aversion: i32,
    ) -> Result<(Stat, Undo), ErrorCode> {
        let old_ref = self.nodes.get(path).ok_or(ErrorCode::NoNode)?.acl;
        let old_acl = self.acls.get(old_ref);
        self.acls.release(old_ref);
        let new_ref = self.acls.intern(acl);
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let undo = Undo::AclSet {
            path: path.to_string(),
            acl: old_acl,
            aversion: node.stat.aversion,
        };
        node.acl = new_ref;
        node.stat.aversion = aversion;
        Ok((node.stat(), undo))
    }

    /// Puts back what a speculative apply did.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Created {
                path,
                parent_cversion,
                parent_pzxid,
            } => {
                if let Some(node) = self.nodes.remove(&path) {
                    self.quota_node_removed(&path);
                    self.quota_account(&path, -1, -(node.data.len() as i64));
                    self.acls.release(node.acl);
                    self.data_size = self
                        .data_size
                        .saturating_sub((path.len() + node.data.len()) as u64);
                    self.untrack(&path, node.stat.ephemeral_owner);
                }
                if let Some(parent) = self.nodes.get_mut(path::parent(&path)) {
                    parent.children.remove(path::name(&path));
                    parent.stat.cversion = parent_cversion;
                    parent.stat.pzxid = parent_pzxid;
                }
            }
            Undo::Deleted {
                path,
                mut node,
                acl,
                parent_pzxid,
            } => {
                node.acl = self.acls.intern(&acl);
                self.data_size += (path.len() + node.data.len()) as u64;
                let len = node.data.len() as i64;
                self.track(&path, node.stat.ephemeral_owner);
                if let Some(parent) = self.nodes.get_mut(path::parent(&path)) {
                    parent.children.insert(path::name(&path).to_string());
                    parent.stat.pzxid = parent_pzxid;
                }
                self.nodes.insert(path.clone(), node);
                self.quota_node_added(&path, false);
                self.quota_account(&path, 1, len);
            }
            Undo::DataSet { path, data, stat } => {
                if let Some(node) = self.nodes.get_mut(&path) {
                    self.data_size =
                        (self.data_size + data.len() as u64).saturating_sub(node.data.len() as u64);
                    let grew = data.len() as i64 - node.data.len() as i64;
                    node.data = data;
                    node.stat = stat;
                    self.quota_account(&path, 0, grew);
                }
            }
            Undo::AclSet {
                path,
                acl,
                aversion,
            } => {
                let new_acl = self.acls.intern(&acl);
                if let Some(node) = self.nodes.get_mut(&path) {
                    let old = std::mem::replace(&mut node.acl, new_acl);
                    node.stat.aversion = aversion;
                    self.acls.release(old);
                }
            }
            Undo::Nothing => {}
        }
    }

    /// Applies a logged transaction, as every server does on commit and as
    /// recovery does on replay. Errors inside are part of the outcome, not
    /// failures: a replayed log must apply whatever it holds.
    pub fn apply(&mut self, hdr: &TxnHeader, txn: &Txn, changes: &mut Vec<Change>) -> Applied {
        let r = self.apply_one(hdr, txn, changes);
        if hdr.zxid > self.last_zxid {
            self.last_zxid = hdr.zxid;
        }
        r
    }

    fn apply_one(&mut self, hdr: &TxnHeader, txn: &Txn, changes: &mut Vec<Change>) -> Applied {
        let mut r = Applied::new(txn.op());
        let (zxid, time) = (hdr.zxid, hdr.time);
        let res: Result<(), ErrorCode> = match txn {
            Txn::Create(
                _,
                CreateTxn {
                    path,
                    data,
                    acl,
                    ephemeral,
                    parent_cversion,
                },
            ) => {
                r.path = path.clone();
                let owner = if *ephemeral { hdr.client_id } else { 0 };
                self.create_node(
                    path,
                    data.clone(),
                    acl,
                    owner,
                    *parent_cversion,
                    zxid,
                    time,
                    changes,
                )
                .map(|(s, _)| r.stat = Some(s))
            }
            Txn::CreateContainer(t) => {
                r.path = t.path.clone();
                self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    CONTAINER_OWNER,
                    t.parent_cversion,
                    zxid,
                    time,
                    changes,
                )
                .map(|(s, _)| r.stat = Some(s))
            }
            Txn::CreateTtl(t) => {
                r.path = t.path.clone();
                self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    NodeKind::ttl_owner(t.ttl),
                    t.parent_cversion,
                    zxid,
                    time,
                    changes,
                )
                .map(|(s, _)| r.stat = Some(s))
            }
            Txn::Delete(_, t) => {
                r.path = t.path.clone();
                self.delete_node(&t.path, zxid, changes).map(|_| ())
            }
            Txn::SetData(t) | Txn::Reconfig(t) => {
                r.path = t.path.clone();
                self.set_data(&t.path, t.data.clone(), t.version, zxid, time, changes)
                    .map(|(s, _)| r.stat = Some(s))
            }
            Txn::SetAcl(t) => {
                r.path = t.path.clone();
                self.set_acl(&t.path, &t.acl, t.version)
                    .map(|(s, _)| r.stat = Some(s))
            }
            Txn::Check(t) => {
                r.path = t.path.clone();
                Ok(())
            }
            Txn::CreateSession(_) => Ok(()),
            Txn::CloseSession(t) => {
                let mut paths: BTreeSet<String> =
                    self.ephemerals_of(hdr.client_id).into_iter().collect();
                paths.extend(t.paths_to_delete.iter().cloned());
                for p in paths {
                    let _ = self.delete_node(&p, zxid, changes);
                }
                Ok(())
            }
            Txn::Error(e) => Err(ErrorCode::from_i32(e.err).unwrap_or(ErrorCode::SystemError)),
            Txn::Multi(txns) => {
                let failed = txns.iter().any(|t| matches!(t, Txn::Error(_)));
                let mut post_failed = false;
                for sub in txns {
                    let sub = if failed && !matches!(sub, Txn::Error(_)) {
                        Txn::Error(crate::proto::txn::ErrorTxn {
                            err: if post_failed {
                                ErrorCode::RuntimeInconsistency as i32
                            } else {
                                ErrorCode::Ok as i32
                            },
                        })
                    } else {
                        if matches!(sub, Txn::Error(_)) {
                            post_failed = true;
                        }
                        sub.clone()
                    };
                    let sr = self.apply_one(hdr, &sub, changes);
                    if sr.err != ErrorCode::Ok && r.err == ErrorCode::Ok {
                        r.err = sr.err;
                    }
                    r.multi.push(sr);
                }
                return r;
            }
        };
        if let Err(e) = res {
            r.err = e;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::txn::*;

    fn hdr(zxid: i64, session: i64) -> TxnHeader {
        TxnHeader {
            client_id: session,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
            txn_type: 0,
        }
    }

    fn create(path: &str, eph: bool) -> Txn {
        Txn::Create(
            OpCode::Create,
            CreateTxn {
                path: path.into(),
                data: Bytes::from_static(b"d"),
                acl: acl::open_acl_unsafe(),
                ephemeral: eph,
                parent_cversion: -1,
            },
        )
    }

    #[test]
    fn fresh_tree_is_zookeepers() {
        let t = DataTree::new();
        assert_eq!(t.node_count(), 4);
        assert_eq!(t.get("/").unwrap().children.len(), 1);
        assert_eq!(t.stat(CONFIG).unwrap().aversion, -1);
        assert_eq!(t.all_children_number("/"), 4);
        assert_eq!(t.all_children_number(ZOOKEEPER), 2);
    }

    #[test]
    fn create_delete_and_stats() {
        let mut t = DataTree::new();
        let mut ch = Vec::new();
        let r = t.apply(&hdr(1, 5), &create("/a", false), &mut ch);
        assert_eq!(r.err, ErrorCode::Ok);
        assert_eq!(r.stat.as_ref().unwrap().czxid, 1);
        t.apply(&hdr(2, 5), &create("/a/e", true), &mut ch);
        let a = t.stat("/a").unwrap();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (1, 2, 1));
        assert_eq!(t.ephemerals_of(5), vec!["/a/e".to_string()]);
        let r = t.apply(&hdr(3, 5), &create("/a/e", true), &mut ch);
        assert_eq!(r.err, ErrorCode::NodeExists);
        t.apply(
            &hdr(4, 5),
            &Txn::CloseSession(CloseSessionTxn::default()),
            &mut ch,
        );
        assert!(t.get("/a/e").is_none());
        let a = t.stat("/a").unwrap();
        // One create and one delete: clients see two child changes.
        assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 4, 0));
        assert_eq!(t.get("/a").unwrap().stat.cversion, 1, "stored: creations");
        assert_eq!(t.last_zxid, 4);
        assert_eq!(
            ch,
            vec![
                Change::Created("/a".into()),
                Change::Created("/a/e".into()),
                Change::Deleted("/a/e".into())
            ]
        );
    }

    #[test]
    fn failed_multi_changes_nothing() {
        let mut t = DataTree::new();
        let mut ch = Vec::new();
        let m = Txn::Multi(vec![
            create("/x", false),
            Txn::error(ErrorCode::NodeExists),
            Txn::error(ErrorCode::RuntimeInconsistency),
        ]);
        let r = t.apply(&hdr(1, 5), &m, &mut ch);
        assert_eq!(r.err, ErrorCode::NodeExists);
        let errs: Vec<_> = r.multi.iter().map(|m| m.err).collect();
        assert_eq!(
            errs,
            vec![
                ErrorCode::Ok,
                ErrorCode::NodeExists,
                ErrorCode::RuntimeInconsistency
            ]
        );
        assert!(t.get("/x").is_none());
        assert!(ch.is_empty());
    }

    #[test]
    fn undo_restores_everything() {
        let mut t = DataTree::new();
        let mut ch = Vec::new();
        t.apply(&hdr(1, 5), &create("/a", false), &mut ch);
        t.apply(&hdr(2, 5), &create("/a/b", true), &mut ch);
        let view = |t: &DataTree| {
            t.preorder()
                .into_iter()
                .map(|(p, n)| {
                    (
                        p,
                        n.data.clone(),
                        n.stat.clone(),
                        n.children.clone(),
                        t.acl_of(n),
                    )
                })
                .collect::<Vec<_>>()
        };
        let before = view(&t);
        let size = t.approximate_data_size();
        let (_, u1) = t
            .create_node(
                "/a/c",
                Bytes::from_static(b"zz"),
                &acl::read_acl_unsafe(),
                0,
                -1,
                3,
                3,
                &mut ch,
            )
            .unwrap();
        let u2 = t.delete_node("/a/b", 3, &mut ch).unwrap();
        let (_, u3) = t
            .set_data("/a", Bytes::from_static(b"new"), 1, 3, 3, &mut ch)
            .unwrap();
        let (_, u4) = t.set_acl("/a", &acl::read_acl_unsafe(), 1).unwrap();
        for u in [u4, u3, u2, u1] {
            t.undo(u);
        }
        assert_eq!(view(&t), before);
        assert_eq!(t.approximate_data_size(), size);
        assert_eq!(t.ephemerals_of(5), vec!["/a/b".to_string()]);
    }

    #[test]
    fn node_kinds_from_owner() {
        assert_eq!(NodeKind::of(0), NodeKind::Persistent);
        assert_eq!(NodeKind::of(CONTAINER_OWNER), NodeKind::Container);
        assert_eq!(NodeKind::of(NodeKind::ttl_owner(5000)), NodeKind::Ttl(5000));
        assert_eq!(NodeKind::of(0x100), NodeKind::Ephemeral(0x100));
    }
}
