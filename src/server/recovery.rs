//! Rebuilds the in-memory state from what `storage` recovered: the newest
//! snapshot, then every later transaction replayed in order.

use crate::storage::{Recovered, SnapNode, Snapshot};
use crate::tree::{DataTree, Frozen};
use std::collections::BTreeMap;

/// The tree and live sessions after replay.
pub fn rebuild(rec: Recovered) -> anyhow::Result<(DataTree, Vec<(i64, i32)>)> {
    let (mut tree, mut sessions): (DataTree, BTreeMap<i64, i32>) = match rec.snapshot {
        None => (DataTree::new(), BTreeMap::new()),
        Some((zxid, snap)) => {
            let mut t = DataTree::empty();
            for (r, acl) in snap.acls {
                t.acls.load(r, acl);
            }
            for n in snap.nodes {
                let path = if n.path.is_empty() {
                    "/".to_string()
                } else {
                    n.path
                };
                if !t.insert_raw(&path, n.data, n.acl, n.stat) {
                    anyhow::bail!("snapshot 0x{zxid:x} has {path} without its parent");
                }
            }
            t.acls.purge_unused();
            t.last_zxid = zxid;
            (t, snap.sessions.into_iter().collect())
        }
    };
    let mut ignored = Vec::new();
    for e in rec.entries {
        if e.header.zxid <= tree.last_zxid {
            continue;
        }
        tree.apply(&e.header, &e.txn, &mut ignored);
        ignored.clear();
        match &e.txn {
            crate::proto::txn::Txn::CreateSession(t) => {
                sessions.insert(e.header.client_id, t.time_out);
            }
            crate::proto::txn::Txn::CloseSession(_) => {
                sessions.remove(&e.header.client_id);
            }
            _ => {}
        }
    }
    Ok((tree, sessions.into_iter().collect()))
}

/// The tree as a snapshot stores it (the root's path is "" as in ZooKeeper).
pub fn snapshot_of(tree: &DataTree, sessions: Vec<(i64, i32)>) -> Snapshot {
    snapshot_of_frozen(&tree.freeze(), sessions)
}

/// The same from a frozen copy, on whatever thread holds it.
pub fn snapshot_of_frozen(tree: &Frozen, sessions: Vec<(i64, i32)>) -> Snapshot {
    Snapshot {
        sessions,
        acls: tree.acls.clone(),
        nodes: tree
            .preorder()
            .into_iter()
            .map(|(path, n)| SnapNode {
                path: if path == "/" { String::new() } else { path },
                data: n.data.clone(),
                acl: n.acl,
                stat: n.stat.clone(),
            })
            .collect(),
    }
}
