//! Access control: the ACL cache that znodes point into (as ZooKeeper's
//! `ReferenceCountedACLCache`, so snapshots carry the same references), the
//! auth schemes (world, auth, digest, ip, super) and the permission check.

use crate::proto::{Acl, Id, perms};
use base64::Engine;
use sha1::{Digest, Sha1};
use std::collections::HashMap;

/// The reference that stands for `world:anyone` with all permissions in
/// ZooKeeper's initial nodes.
pub const OPEN_UNSAFE_REF: i64 = -1;

pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: world_anyone(),
    }]
}

pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: world_anyone(),
    }]
}

fn world_anyone() -> Id {
    Id {
        scheme: "world".into(),
        id: "anyone".into(),
    }
}

/// ACL lists shared by reference number and counted by use.
#[derive(Debug, Default, Clone)]
pub struct AclCache {
    by_ref: HashMap<i64, (Vec<Acl>, u64)>,
    by_acl: HashMap<Vec<Acl>, i64>,
    last_ref: i64,
}

impl AclCache {
    /// The reference for `acl`, adding it if new, counting one more use.
    pub fn intern(&mut self, acl: &[Acl]) -> i64 {
        let r = match self.by_acl.get(acl) {
            Some(&r) => r,
            None => {
                self.last_ref += 1;
                let r = self.last_ref;
                self.by_acl.insert(acl.to_vec(), r);
                self.by_ref.insert(r, (acl.to_vec(), 0));
                r
            }
        };
        if let Some(e) = self.by_ref.get_mut(&r) {
            e.1 += 1;
        }
        r
    }

    /// One use fewer; the entry goes when no node uses it.
    pub fn release(&mut self, r: i64) {
        if let Some(e) = self.by_ref.get_mut(&r) {
            e.1 = e.1.saturating_sub(1);
            if e.1 == 0 {
                let (acl, _) = self.by_ref.remove(&r).unwrap_or_default();
                self.by_acl.remove(&acl);
            }
        }
    }

    pub fn get(&self, r: i64) -> Vec<Acl> {
        if r == OPEN_UNSAFE_REF {
            return open_acl_unsafe();
        }
        self.by_ref
            .get(&r)
            .map(|(a, _)| a.clone())
            .unwrap_or_default()
    }

    /// Loads an entry from a snapshot (usage counted as nodes are loaded).
    pub fn load(&mut self, r: i64, acl: Vec<Acl>) {
        self.last_ref = self.last_ref.max(r);
        self.by_acl.insert(acl.clone(), r);
        self.by_ref.insert(r, (acl, 0));
    }

    /// Counts a loaded node's use of `r`.
    pub fn add_use(&mut self, r: i64) {
        if let Some(e) = self.by_ref.get_mut(&r) {
            e.1 += 1;
        }
    }

    /// Drops entries no node uses (after loading a snapshot).
    pub fn purge_unused(&mut self) {
        let unused: Vec<i64> = self
            .by_ref
            .iter()
            .filter(|(_, (_, n))| *n == 0)
            .map(|(r, _)| *r)
            .collect();
        for r in unused {
            if let Some((acl, _)) = self.by_ref.remove(&r) {
                self.by_acl.remove(&acl);
            }
        }
    }

    /// Entries in reference order, for snapshots.
    pub fn entries(&self) -> Vec<(i64, Vec<Acl>)> {
        let mut v: Vec<_> = self
            .by_ref
            .iter()
            .map(|(r, (a, _))| (*r, a.clone()))
            .collect();
        v.sort_by_key(|(r, _)| *r);
        v
    }

    pub fn len(&self) -> usize {
        self.by_ref.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }
}

/// `user:base64(sha1("user:password"))`, the digest scheme's id.
pub fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Does the client address `addr` fall in the ip-scheme ACL id `spec`
/// ("10.0.0.1" or "10.0.0.0/8")?
fn ip_matches(spec: &str, addr: &str) -> bool {
    let (net, bits) = match spec.split_once('/') {
        Some((n, b)) => match b.parse::<u32>() {
            Ok(b) => (n, Some(b)),
            Err(_) => return false,
        },
        None => (spec, None),
    };
    let (Ok(net), Ok(addr)) = (
        net.parse::<std::net::IpAddr>(),
        addr.parse::<std::net::IpAddr>(),
    ) else {
        return false;
    };
    let (n, a, max) = match (net, addr) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
            (u32::from(n) as u128, u32::from(a) as u128, 32)
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        _ => return false,
    };
    let bits = bits.unwrap_or(max).min(max);
    if bits == 0 {
        return true;
    }
    let shift = max - bits;
    (n >> shift) == (a >> shift)
}

fn valid_ip_spec(spec: &str) -> bool {
    let (net, bits) = match spec.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (spec, Some(0)),
    };
    let max = match net.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    bits.is_some_and(|b| b <= max)
}

/// Is this ACL id one a known scheme accepts (ZooKeeper's `isValid`)?
fn valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        "world" => id.id == "anyone",
        "digest" => id.id.split(':').count() == 2,
        "ip" => valid_ip_spec(&id.id),
        _ => false,
    }
}

/// Checks and expands a client's ACL list as ZooKeeper's `fixupACL` does:
/// duplicates removed, `auth` expanded to the client's authenticated ids.
/// `None` means InvalidACL.
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Option<Vec<Acl>> {
    let mut uniq: Vec<Acl> = Vec::new();
    for a in acl {
        if !uniq.contains(a) {
            uniq.push(a.clone());
        }
    }
    if uniq.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for a in uniq {
        if a.id.scheme == "auth" {
            let mut any = false;
            for id in auth.iter().filter(|id| id.scheme == "digest") {
                any = true;
                out.push(Acl {
                    perms: a.perms,
                    id: id.clone(),
                });
            }
            if !any {
                return None;
            }
        } else if valid_id(&a.id) {
            out.push(a);
        } else {
            return None;
        }
    }
    Some(out)
}

/// Does a client with identities `auth` (and address `addr`) hold `perm` on a
/// node with ACL `acl`?
pub fn allowed(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        let id = &a.id;
        match id.scheme.as_str() {
            "world" => id.id == "anyone",
            "digest" => auth.iter().any(|c| c.scheme == "digest" && c.id == id.id),
            "ip" => auth
                .iter()
                .any(|c| c.scheme == "ip" && ip_matches(&id.id, &c.id)),
            _ => false,
        }
    })
}

/// The user name a scheme shows for an id (for whoAmI).
pub fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_string(),
        "super" => String::new(),
        _ => id.id.clone(),
    }
}

/// getACL without ADMIN permission hides digest hashes.
pub fn mask_digests(acl: Vec<Acl>) -> Vec<Acl> {
    acl.into_iter()
        .map(|mut a| {
            if a.id.scheme == "digest"
                && let Some((user, _)) = a.id.id.split_once(':')
            {
                a.id.id = format!("{user}:x");
            }
            a
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str, i: &str) -> Id {
        Id {
            scheme: s.into(),
            id: i.into(),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // The value zkCli and ZooKeeper's DigestAuthenticationProvider give for super:test.
        assert_eq!(digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn cache_counts_uses() {
        let mut c = AclCache::default();
        let a = open_acl_unsafe();
        let r1 = c.intern(&a);
        let r2 = c.intern(&a);
        assert_eq!(r1, r2);
        c.release(r1);
        assert_eq!(c.len(), 1);
        c.release(r1);
        assert!(c.is_empty());
        assert_eq!(c.intern(&a), r1 + 1, "references are never reused");
    }

    #[test]
    fn permission_checks() {
        let acl = vec![
            Acl {
                perms: perms::READ,
                id: id("ip", "127.0.0.0/8"),
            },
            Acl {
                perms: perms::ALL,
                id: id("digest", "bob:xyz"),
            },
        ];
        let local = [id("ip", "127.0.0.1")];
        assert!(allowed(&acl, perms::READ, &local));
        assert!(!allowed(&acl, perms::WRITE, &local));
        assert!(allowed(
            &acl,
            perms::WRITE,
            &[id("ip", "10.0.0.1"), id("digest", "bob:xyz")]
        ));
        assert!(allowed(&acl, perms::WRITE, &[id("super", "")]));
    }

    #[test]
    fn fixup_expands_auth_and_rejects_nonsense() {
        let auth = [id("ip", "127.0.0.1"), id("digest", "bob:h")];
        let acl = vec![Acl {
            perms: perms::ALL,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup(&acl, &auth).unwrap(),
            vec![Acl {
                perms: perms::ALL,
                id: id("digest", "bob:h")
            }]
        );
        assert!(fixup(&acl, &auth[..1]).is_none());
        assert!(fixup(&[], &auth).is_none());
        assert!(
            fixup(
                &[Acl {
                    perms: 1,
                    id: id("world", "someone")
                }],
                &auth
            )
            .is_none()
        );
        assert!(
            fixup(
                &[Acl {
                    perms: 1,
                    id: id("nope", "x")
                }],
                &auth
            )
            .is_none()
        );
    }
}
