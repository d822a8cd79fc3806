//! Quotas as ZooKeeper keeps them: a client marks a subtree `P` by creating
//! `/zookeeper/quota<P>/zookeeper_limits`; the server keeps the live node
//! count and byte total of `P` in `/zookeeper/quota<P>/zookeeper_stats`
//! (`count=N,bytes=M`), updated in place on every change below `P`.
//! Limits are advisory, as in ZooKeeper by default.

use super::{DataTree, QUOTA, path};
use bytes::Bytes;

pub const LIMITS: &str = "zookeeper_limits";
pub const STATS: &str = "zookeeper_stats";

/// "/zookeeper/quota/a/b" -> "/a/b".
fn quoted_path(quota_dir: &str) -> Option<&str> {
    quota_dir.strip_prefix(QUOTA).filter(|p| p.starts_with('/'))
}

fn parse(data: &[u8]) -> (i64, i64) {
    let text = String::from_utf8_lossy(data);
    let mut count = 0;
    let mut bytes = 0;
    for part in text.split([',', ';']) {
        match part.split_once('=') {
            Some(("count", v)) => count = v.parse().unwrap_or(0),
            Some(("bytes", v)) => bytes = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    (count, bytes)
}

impl DataTree {
    /// The deepest quota root at or above `p` (never "/").
    fn quota_root_of(&self, p: &str) -> Option<String> {
        let mut cur = p;
        loop {
            if cur != "/" && self.quota_roots.contains(cur) {
                return Some(cur.to_string());
            }
            if cur == "/" {
                return None;
            }
            cur = path::parent(cur);
        }
    }

    fn write_stats(&mut self, root: &str, count: i64, bytes: i64) {
        let stats_path = format!("{QUOTA}{root}/{STATS}");
        if let Some(n) = self.nodes.get_mut(&stats_path) {
            let data = Bytes::from(format!("count={count},bytes={bytes}"));
            self.data_size =
                (self.data_size + data.len() as u64).saturating_sub(n.data.len() as u64);
            n.data = data;
        }
    }

    /// Accounts a change of `count` nodes and `bytes` bytes at `p`.
    pub(super) fn quota_account(&mut self, p: &str, count: i64, bytes: i64) {
        if self.quota_roots.is_empty() {
            return;
        }
        let Some(root) = self.quota_root_of(p) else {
            return;
        };
        let stats_path = format!("{QUOTA}{root}/{STATS}");
        let Some(n) = self.nodes.get(&stats_path) else {
            return;
        };
        let (c, b) = parse(&n.data);
        self.write_stats(&root, c + count, b + bytes);
    }

    /// Called after a node is created or loaded: limits nodes make roots,
    /// stats nodes get the subtree's current totals.
    pub(super) fn quota_node_added(&mut self, p: &str, recount: bool) {
        let parent = path::parent(p);
        let Some(root) = quoted_path(parent) else {
            return;
        };
        match path::name(p) {
            LIMITS => {
                self.quota_roots.insert(root.to_string());
            }
            STATS if recount => {
                let root = root.to_string();
                let (mut count, mut bytes) = (0i64, 0i64);
                let mut stack = vec![root.clone()];
                while let Some(cur) = stack.pop() {
                    if let Some(n) = self.nodes.get(&cur) {
                        count += 1;
                        bytes += n.data.len() as i64;
                        stack.extend(n.children.iter().map(|c| path::join(&cur, c)));
                    }
                }
                self.write_stats(&root, count, bytes);
            }
            _ => {}
        }
    }

    pub(super) fn quota_node_removed(&mut self, p: &str) {
        if path::name(p) == LIMITS
            && let Some(root) = quoted_path(path::parent(p))
        {
            self.quota_roots.remove(root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DataTree, acl};
    use bytes::Bytes;

    #[test]
    fn stats_follow_the_subtree() {
        let mut t = DataTree::new();
        let mut ch = Vec::new();
        let a = acl::open_acl_unsafe();
        let mut z = 0;
        let mut mk = |t: &mut DataTree, p: &str, d: &'static [u8]| {
            z += 1;
            t.create_node(p, Bytes::from_static(d), &a, 0, -1, z, 0, &mut ch)
                .unwrap();
        };
        mk(&mut t, "/qq", b"x");
        mk(&mut t, "/qq/a", b"hello");
        mk(&mut t, "/zookeeper/quota/qq", b"");
        mk(
            &mut t,
            "/zookeeper/quota/qq/zookeeper_stats",
            b"count=0,bytes=0",
        );
        mk(
            &mut t,
            "/zookeeper/quota/qq/zookeeper_limits",
            b"count=10,bytes=-1",
        );
        mk(&mut t, "/qq/b", b"12345");
        let stats = |t: &DataTree| {
            t.get("/zookeeper/quota/qq/zookeeper_stats")
                .unwrap()
                .data
                .clone()
        };
        assert_eq!(&stats(&t)[..], b"count=3,bytes=11");
        let mut ch = Vec::new();
        t.set_data("/qq/b", Bytes::from_static(b"1"), 1, 9, 0, &mut ch)
            .unwrap();
        t.delete_node("/qq/a", 10, &mut ch).unwrap();
        assert_eq!(&stats(&t)[..], b"count=2,bytes=2");
        t.delete_node("/zookeeper/quota/qq/zookeeper_limits", 11, &mut ch)
            .unwrap();
        t.create_node(
            "/qq/c",
            Bytes::new(),
            &acl::open_acl_unsafe(),
            0,
            -1,
            12,
            0,
            &mut ch,
        )
        .unwrap();
        assert_eq!(&stats(&t)[..], b"count=2,bytes=2", "no longer a quota root");
    }
}
