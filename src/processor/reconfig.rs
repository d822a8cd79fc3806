//! The `reconfig` request, prepared on the leader: the new membership is
//! computed from the one in `/zookeeper/config` (incremental joining and
//! leaving servers, or a whole new member list, with the version check),
//! and becomes a `Reconfig` txn that sets `/zookeeper/config` to the new
//! text, versioned by the txn's zxid, as ZooKeeper does. What the ensemble
//! does when it commits (quorums, elections, roles) is the server's part.

use super::*;
use crate::config::{self, Role, ServerSpec};
use std::collections::BTreeSet;

impl Processor {
    /// The leader's view for reconfig: itself and the learners synced with
    /// it (a new configuration needs a quorum of them, or it could never
    /// commit).
    pub fn set_synced(&mut self, synced: Option<BTreeSet<u64>>) {
        self.synced = synced;
    }

    pub(super) fn prep_reconfig(&self, auth: &[Id], r: &ReconfigRequest, zxid: i64) -> Res<Txn> {
        if !self.settings.reconfig_enabled {
            return fail(ErrorCode::ReconfigDisabled);
        }
        let node = self.tree.get(tree::CONFIG).ok_or(ErrorCode::NoNode)?;
        // As ZooKeeper: only who may write /zookeeper/config (a super user,
        // by its read-only ACL) may reconfigure.
        self.require(auth, node, perms::WRITE)?;
        let text = String::from_utf8_lossy(&node.data).to_string();
        let (current, version) =
            config::parse_membership(&text).map_err(|_| ErrorCode::SystemError)?;
        if current.is_empty() {
            // Standalone: nothing to reconfigure.
            return fail(ErrorCode::Unimplemented);
        }
        if r.cur_config_id != -1 && r.cur_config_id != version {
            return fail(ErrorCode::BadVersion);
        }
        let next = if !r.new_members.trim().is_empty() {
            config::parse_membership(&r.new_members)
                .map_err(|_| ErrorCode::BadArguments)?
                .0
        } else {
            let mut m: Vec<ServerSpec> = current.clone();
            for id in r
                .leaving_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let id: u64 = id.parse().map_err(|_| ErrorCode::BadArguments)?;
                m.retain(|s| s.id != id);
            }
            let (joining, _) = config::parse_membership(&r.joining_servers)
                .map_err(|_| ErrorCode::BadArguments)?;
            for j in joining {
                m.retain(|s| s.id != j.id);
                m.push(j);
            }
            m.sort_by_key(|s| s.id);
            m
        };
        let voters: BTreeSet<u64> = next
            .iter()
            .filter(|s| s.role == Role::Participant)
            .map(|s| s.id)
            .collect();
        if voters.is_empty() {
            return fail(ErrorCode::BadArguments);
        }
        if let Some(synced) = &self.synced {
            let have = voters.iter().filter(|v| synced.contains(v)).count();
            if have * 2 <= voters.len() {
                return fail(ErrorCode::NewConfigNoQuorum);
            }
        }
        Ok(Txn::Reconfig(SetDataTxn {
            path: tree::CONFIG.to_string(),
            data: Bytes::from(config::format_membership(&next, zxid)),
            version: node.stat.version.wrapping_add(1),
        }))
    }
}
