//! Pure output formatting in zkCli's exact text: stats (`cZxid = 0x...`), Java-style dates,
//! watch events (`WATCHER::` / `WatchedEvent state:... type:... path:...`), ACLs, the
//! usage list and error messages a user can act on. Only the local-time conversion for
//! dates touches the OS (the C library's time zone rules), everything else is plain text.

use zookeeper_client::{Error, Stat};

/// Command names with their argument syntax, as the usage list and completion show them.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "addWatch",
        "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    ),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("help", ""),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("ls2", "path [watch]"),
    ("printwatches", "on|off"),
    ("quit", ""),
    (
        "reconfig",
        "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
    ),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("rmr", "path [-b batch size]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

/// The usage line of one command (`create [-s] ... path [data] [acl]`).
pub fn usage_of(command: &str) -> String {
    let args = COMMANDS
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, a)| *a)
        .unwrap_or("");
    format!("{command} {args}")
}

/// The full usage list zkCli prints.
pub fn usage() -> String {
    let mut text =
        String::from("ZooKeeper -server host:port[,host:port...] [-timeout ms] [-r] cmd args\n");
    for (name, args) in COMMANDS {
        text.push_str(&format!("\t{name} {args}\n"));
    }
    text
}

/// Formats a stat exactly as zkCli's StatPrinter does; `date` renders epoch milliseconds.
pub fn format_stat_with(stat: &Stat, date: impl Fn(i64) -> String) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        date(stat.ctime),
        stat.mzxid,
        date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

/// [`format_stat_with`] using Java's `Date.toString()` in the local time zone.
pub fn format_stat(stat: &Stat) -> String {
    format_stat_with(stat, java_date)
}

/// Java's `Date.toString()`: `Sun Nov 22 05:22:17 UTC 2026`, in the local time zone.
pub fn java_date(millis: i64) -> String {
    let secs = millis.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r and strftime only write into the buffers we pass, sized here.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return millis.to_string();
        }
        let mut buf = [0u8; 128];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %b %d %H:%M:%S %Z %Y".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// A watch event block as zkCli's default watcher prints it (blank line before each line).
pub fn format_event(state: &str, event_type: &str, path: Option<&str>) -> String {
    format!(
        "\nWATCHER::\n\nWatchedEvent state:{state} type:{event_type} path:{}\n",
        path.unwrap_or("null")
    )
}

/// Permission bits as zkCli prints them (`cdrwa` order).
pub fn perm_string(perms: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')] {
        if perms & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// One ACL entry as `getAcl` prints it: `'world,'anyone` then `: cdrwa`.
pub fn format_acl_entry(scheme: &str, id: &str, perms: i32) -> String {
    format!("'{scheme},'{id}\n: {}\n", perm_string(perms))
}

/// A Java `List.toString()` of strings: `[a, b]`.
pub fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// ZooKeeper's name for an error code, as in `KeeperErrorCode = <name>`.
fn code_name(err: &Error) -> String {
    match err {
        Error::ConnectionLoss => "ConnectionLoss".into(),
        Error::MarshallingError => "MarshallingError".into(),
        Error::Unimplemented => "Unimplemented".into(),
        Error::Timeout => "OperationTimeout".into(),
        Error::BadArguments(_) => "BadArguments".into(),
        Error::NoNode => "NoNode".into(),
        Error::NoAuth => "NoAuth".into(),
        Error::BadVersion => "BadVersion".into(),
        Error::NoChildrenForEphemerals => "NoChildrenForEphemerals".into(),
        Error::NodeExists => "NodeExists".into(),
        Error::NotEmpty => "Directory not empty".into(),
        Error::SessionExpired => "Session expired".into(),
        Error::InvalidAcl => "InvalidACL".into(),
        Error::AuthFailed => "AuthFailed".into(),
        Error::SessionMoved => "Session moved".into(),
        Error::NotReadOnly => "Not a read-only call".into(),
        Error::NoWatcher => "No such watcher".into(),
        Error::ReconfigDisabled => "Reconfig is disabled".into(),
        Error::QuotaExceeded => "Quota has exceeded".into(),
        Error::Throttled => "Op throttled due to high load".into(),
        Error::RuntimeInconsistent => "RuntimeInconsistency".into(),
        Error::UnexpectedErrorCode(code) => match code {
            -1 => "SystemError".into(),
            -2 => "RuntimeInconsistency".into(),
            -3 => "DataInconsistency".into(),
            -7 => "OperationTimeout".into(),
            -13 => "NewConfigNoQuorum".into(),
            -14 => "ReconfigInProgress".into(),
            -100 => "APIError".into(),
            -113 => "Invalid callback".into(),
            -120 => "Ephemeral node on local session".into(),
            -124 => "Session closed because client failed to authenticate".into(),
            other => format!("Unknown error {other}"),
        },
        other => other.to_string(),
    }
}

/// ZooKeeper's numeric error code (for `Sync has failed. rc=<code>`).
pub fn error_code(err: &Error) -> i32 {
    match err {
        Error::ConnectionLoss => -4,
        Error::MarshallingError => -5,
        Error::Unimplemented => -6,
        Error::Timeout => -7,
        Error::BadArguments(_) => -8,
        Error::NoNode => -101,
        Error::NoAuth => -102,
        Error::BadVersion => -103,
        Error::NoChildrenForEphemerals => -108,
        Error::NodeExists => -110,
        Error::NotEmpty => -111,
        Error::SessionExpired => -112,
        Error::InvalidAcl => -114,
        Error::AuthFailed => -115,
        Error::SessionMoved => -118,
        Error::NotReadOnly => -119,
        Error::NoWatcher => -121,
        Error::ReconfigDisabled => -123,
        Error::QuotaExceeded => -125,
        Error::Throttled => -127,
        Error::UnexpectedErrorCode(code) => *code,
        _ => -1,
    }
}

/// The message zkCli prints for a failed operation on `path` (None for path-less calls).
pub fn error_message(err: &Error, path: Option<&str>) -> String {
    let p = path.unwrap_or("null");
    match err {
        Error::NoNode => format!("Node does not exist: {p}"),
        Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
        Error::NodeExists => format!("Node already exists: {p}"),
        Error::NotEmpty => format!("Node not empty: {p}"),
        Error::NotReadOnly => format!("Not a read-only call: {p}"),
        Error::InvalidAcl => format!("Acl is not valid : {p}"),
        Error::NoAuth => format!("Insufficient permission : {p}"),
        // The crate's reason for the server's BadArguments adds nothing; local reasons help.
        Error::BadArguments(reason) if **reason == "server error" => format!("Arguments are not valid : {p}"),
        Error::BadArguments(reason) => format!("Arguments are not valid : {p} ({reason})"),
        Error::BadVersion => format!("version No is not valid : {p}"),
        Error::QuotaExceeded => format!("Quota has exceeded : {p}"),
        Error::UnexpectedErrorCode(-14) => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".into()
        }
        Error::UnexpectedErrorCode(-13) => "No quorum of new config is connected and up-to-date with the leader of last \
             committed config - try invoking reconfiguration after new servers are connected and synced"
            .into(),
        Error::ClientClosed => "Not connected".into(),
        Error::NoHosts => "No server could be reached".into(),
        other => match path {
            Some(path) if !path.is_empty() => format!("KeeperErrorCode = {} for {path}", code_name(other)),
            _ => format!("KeeperErrorCode = {}", code_name(other)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_stat() -> Stat {
        Stat {
            czxid: 2,
            mzxid: 0x12,
            pzxid: 2,
            ctime: 0,
            mtime: 1000,
            version: 1,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0x1000a3e5b7c0000,
            data_length: 10,
            num_children: 0,
        }
    }

    #[test]
    fn stat_like_zkcli() {
        let text = format_stat_with(&sample_stat(), |ms| format!("T{ms}"));
        assert_eq!(
            text,
            "cZxid = 0x2\nctime = T0\nmZxid = 0x12\nmtime = T1000\npZxid = 0x2\ncversion = 0\ndataVersion = 1\n\
             aclVersion = 0\nephemeralOwner = 0x1000a3e5b7c0000\ndataLength = 10\nnumChildren = 0\n"
        );
        let mut negative = sample_stat();
        negative.czxid = -1;
        assert!(
            format_stat_with(&negative, |_| String::new())
                .starts_with("cZxid = 0xffffffffffffffff\n")
        );
    }

    #[test]
    fn java_date_shape() {
        // "Thu Jan 01 00:00:00 UTC 1970" in UTC; other zones keep the shape.
        let d = java_date(0);
        let parts: Vec<_> = d.split(' ').collect();
        assert_eq!(parts.len(), 6, "{d}");
        assert!(["Wed", "Thu"].contains(&parts[0]));
        assert!(parts[3].len() == 8 && parts[3].chars().filter(|c| *c == ':').count() == 2);
    }

    #[test]
    fn events_and_acls() {
        assert_eq!(
            format_event("SyncConnected", "NodeDataChanged", Some("/x")),
            "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/x\n"
        );
        assert_eq!(
            format_event("Closed", "None", None),
            "\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null\n"
        );
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(1 | 16), "ra");
        assert_eq!(
            format_acl_entry("world", "anyone", 31),
            "'world,'anyone\n: cdrwa\n"
        );
        assert_eq!(java_list(&["a".into(), "b".into()]), "[a, b]");
        assert_eq!(java_list(&[]), "[]");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(&Error::NoNode, Some("/x")),
            "Node does not exist: /x"
        );
        assert_eq!(
            error_message(&Error::NotEmpty, Some("/a")),
            "Node not empty: /a"
        );
        assert_eq!(
            error_message(&Error::ConnectionLoss, Some("/a")),
            "KeeperErrorCode = ConnectionLoss for /a"
        );
        assert_eq!(
            error_message(&Error::ReconfigDisabled, None),
            "KeeperErrorCode = Reconfig is disabled"
        );
        assert_eq!(
            error_message(&Error::NoWatcher, Some("/zz")),
            "KeeperErrorCode = No such watcher for /zz"
        );
        assert_eq!(error_code(&Error::NoNode), -101);
    }

    #[test]
    fn usage_lines() {
        assert_eq!(usage_of("stat"), "stat [-w] path");
        assert!(usage().contains("\tsetquota -n|-b|-N|-B val path\n"));
    }
}
