//! `zoo.cfg`: ZooKeeper's Java-properties configuration, read the way
//! ZooKeeper reads it, with rzk's safer defaults where ZooKeeper's bite.
//!
//! Pure parsing of text into a validated `Config`; the caller reads files.
//! Unknown keys are warnings (ZooKeeper turns them into system properties);
//! a bad value is an error that names the key.

use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Participant,
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: Role,
    pub client_addr: Option<String>,
    pub client_port: Option<u16>,
}

/// Which four-letter words may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    All,
    Only(BTreeSet<String>),
}

impl Whitelist {
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(s) => s.contains(cmd),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    pub client_port_address: String,
    pub max_client_cnxns: u32,
    pub min_session_timeout: u32,
    pub max_session_timeout: u32,
    pub snap_count: u64,
    pub snap_retain_count: usize,
    pub purge_interval_hours: u32,
    pub four_letter_words: Whitelist,
    pub extended_types_enabled: bool,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub jute_max_buffer: usize,
    /// `user:base64(sha1(user:password))` of the super user.
    pub super_digest: Option<String>,
    /// skipACL=yes: no ACL checks at all (ZooKeeper's zookeeper.skipACL).
    pub skip_acl: bool,
    pub servers: Vec<ServerSpec>,
    pub reconfig_enabled: bool,
    pub standalone_enabled: bool,
    pub force_sync: bool,
    pub metrics_host: String,
    pub metrics_port: u16,
    pub admin_enabled: bool,
    pub admin_address: String,
    pub admin_port: u16,
    /// `admin.snapshot.enabled`: may the admin API stream a snapshot.
    pub admin_snapshot_enabled: bool,
    pub readonly_mode_enabled: bool,
    /// Keys we did not know, for warnings.
    pub unknown_keys: Vec<String>,
}

const DEFAULT_TICK: u32 = 2000;

impl Default for Config {
    /// The embedded defaults `rzk server` runs on with no file: localhost,
    /// a data dir under the working directory.
    fn default() -> Config {
        Config {
            tick_time: DEFAULT_TICK,
            init_limit: 10,
            sync_limit: 5,
            data_dir: PathBuf::from("data"),
            data_log_dir: PathBuf::from("data"),
            client_port: 2181,
            client_port_address: "127.0.0.1".into(),
            max_client_cnxns: 60,
            min_session_timeout: DEFAULT_TICK * 2,
            max_session_timeout: DEFAULT_TICK * 20,
            snap_count: 100_000,
            snap_retain_count: 3,
            purge_interval_hours: 1,
            four_letter_words: default_whitelist(),
            extended_types_enabled: false,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            jute_max_buffer: 0xfffff,
            super_digest: None,
            skip_acl: false,
            servers: Vec::new(),
            reconfig_enabled: false,
            standalone_enabled: true,
            force_sync: true,
            metrics_host: "0.0.0.0".into(),
            metrics_port: 7000,
            admin_enabled: true,
            admin_address: "0.0.0.0".into(),
            admin_port: 8080,
            admin_snapshot_enabled: false,
            readonly_mode_enabled: false,
            unknown_keys: Vec::new(),
        }
    }
}

fn default_whitelist() -> Whitelist {
    Whitelist::Only(
        ["ruok", "srvr", "stat", "mntr", "conf", "isro"]
            .into_iter()
            .map(String::from)
            .collect(),
    )
}

/// A configuration error that names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {key}: {value:?} ({reason})")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.parse()
        .map_err(|_| bad(key, v, "expected a non-negative whole number"))
}

fn boolean(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(bad(key, v, "expected true/false or yes/no")),
    }
}

fn port(key: &str, v: &str) -> Result<u16, ConfigError> {
    v.parse()
        .map_err(|_| bad(key, v, "expected a port number 0-65535"))
}

/// Parses the value of a `server.N` line.
/// `server.N=...` lines and `version=<hex>`, as in `/zookeeper/config`.
pub fn format_membership(specs: &[ServerSpec], version: i64) -> String {
    let mut out = String::new();
    for s in specs {
        let role = match s.role {
            Role::Participant => "participant",
            Role::Observer => "observer",
        };
        let host = if s.host.contains(':') {
            format!("[{}]", s.host)
        } else {
            s.host.clone()
        };
        out.push_str(&format!(
            "server.{}={host}:{}:{}:{role}",
            s.id, s.quorum_port, s.election_port
        ));
        match (&s.client_addr, s.client_port) {
            (Some(a), Some(p)) => out.push_str(&format!(";{a}:{p}")),
            (None, Some(p)) => out.push_str(&format!(";{p}")),
            _ => {}
        }
        out.push('\n');
    }
    out.push_str(&format!("version={version:x}"));
    out
}

/// Reads membership text (`/zookeeper/config`, a dynamic config file, or
/// a reconfig's member list): `server.N=...` entries separated by new
/// lines or commas, and an optional `version=<hex>` (0 if absent).
pub fn parse_membership(text: &str) -> Result<(Vec<ServerSpec>, i64), ConfigError> {
    let mut specs: Vec<ServerSpec> = Vec::new();
    let mut version = 0;
    for entry in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| bad(entry, entry, "expected key=value"))?;
        let key = key.trim();
        if key == "version" {
            version = i64::from_str_radix(value.trim(), 16)
                .map_err(|_| bad(key, value, "expected a hex version"))?;
            continue;
        }
        let id = key
            .strip_prefix("server.")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad(key, value, "expected server.N"))?;
        specs.retain(|s| s.id != id);
        specs.push(parse_server(id, key, value.trim())?);
    }
    specs.sort_by_key(|s| s.id);
    Ok((specs, version))
}

pub fn parse_server(id: u64, key: &str, v: &str) -> Result<ServerSpec, ConfigError> {
    let (addr, client) = match v.split_once(';') {
        Some((a, c)) => (a, Some(c)),
        None => (v, None),
    };
    // IPv6 hosts come in brackets: [::1]:2888:3888
    let (host, rest) = if let Some(stripped) = addr.strip_prefix('[') {
        let (h, r) = stripped
            .split_once(']')
            .ok_or_else(|| bad(key, v, "unclosed [ in IPv6 address"))?;
        (h.to_string(), r.trim_start_matches(':').to_string())
    } else {
        let (h, r) = addr
            .split_once(':')
            .ok_or_else(|| bad(key, v, "expected host:quorumPort:electionPort"))?;
        (h.to_string(), r.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 || host.is_empty() {
        return Err(bad(key, v, "expected host:quorumPort:electionPort[:role]"));
    }
    let role = match parts.get(2).map(|s| s.to_ascii_lowercase()) {
        None => Role::Participant,
        Some(r) if r == "participant" => Role::Participant,
        Some(r) if r == "observer" => Role::Observer,
        Some(_) => return Err(bad(key, v, "role must be participant or observer")),
    };
    let (client_addr, client_port) = match client {
        None => (None, None),
        Some(c) => match c.rsplit_once(':') {
            Some((a, p)) => (Some(a.to_string()), Some(port(key, p)?)),
            None => (None, Some(port(key, c)?)),
        },
    };
    Ok(ServerSpec {
        id,
        host,
        quorum_port: port(key, parts[0])?,
        election_port: port(key, parts[1])?,
        role,
        client_addr,
        client_port,
    })
}

impl Config {
    /// Parses zoo.cfg text. Relative paths stay relative to the caller's
    /// working directory, as in ZooKeeper.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut c = Config {
            // A file that names no address listens on all, as ZooKeeper does.
            client_port_address: "0.0.0.0".into(),
            ..Config::default()
        };
        let mut min_set = false;
        let mut max_set = false;
        let mut log_dir_set = false;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line
                .split_once(['=', ':'])
                .map(|(k, v)| (k.trim(), v.trim()))
            else {
                return Err(bad(line, "", "expected key=value"));
            };
            let k = key.strip_prefix("zookeeper.").unwrap_or(key);
            match k {
                "tickTime" => c.tick_time = num(key, value)?,
                "initLimit" => c.init_limit = num(key, value)?,
                "syncLimit" => c.sync_limit = num(key, value)?,
                "dataDir" => c.data_dir = PathBuf::from(value),
                "dataLogDir" => {
                    c.data_log_dir = PathBuf::from(value);
                    log_dir_set = true;
                }
                "clientPort" => c.client_port = port(key, value)?,
                "clientPortAddress" => c.client_port_address = value.to_string(),
                "maxClientCnxns" => c.max_client_cnxns = num(key, value)?,
                "minSessionTimeout" => {
                    c.min_session_timeout = num(key, value)?;
                    min_set = true;
                }
                "maxSessionTimeout" => {
                    c.max_session_timeout = num(key, value)?;
                    max_set = true;
                }
                "snapCount" => c.snap_count = num(key, value)?,
                "autopurge.snapRetainCount" => c.snap_retain_count = num(key, value)?,
                "autopurge.purgeInterval" => c.purge_interval_hours = num(key, value)?,
                "4lw.commands.whitelist" => {
                    let words: BTreeSet<String> = value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    c.four_letter_words = if words.contains("*") {
                        Whitelist::All
                    } else {
                        Whitelist::Only(words)
                    };
                }
                "extendedTypesEnabled" => c.extended_types_enabled = boolean(key, value)?,
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval_ms = num(key, value)?
                }
                "znode.container.maxPerMinute" => c.container_max_per_minute = num(key, value)?,
                "jute.maxbuffer" => {
                    let n: usize = if let Some(hex) = value.strip_prefix("0x") {
                        usize::from_str_radix(hex, 16).map_err(|_| bad(key, value, "bad hex"))?
                    } else {
                        num(key, value)?
                    };
                    c.jute_max_buffer = n;
                }
                "DigestAuthenticationProvider.superDigest" | "superDigest" => {
                    if !value.contains(':') {
                        return Err(bad(key, value, "expected user:base64digest"));
                    }
                    c.super_digest = Some(value.to_string());
                }
                "reconfigEnabled" => c.reconfig_enabled = boolean(key, value)?,
                "standaloneEnabled" => c.standalone_enabled = boolean(key, value)?,
                "forceSync" => c.force_sync = boolean(key, value)?,
                "readonlymode.enabled" => c.readonly_mode_enabled = boolean(key, value)?,
                "metricsProvider.className" => {}
                "metricsProvider.httpHost" => c.metrics_host = value.to_string(),
                "metricsProvider.httpPort" => c.metrics_port = port(key, value)?,
                "admin.enableServer" => c.admin_enabled = boolean(key, value)?,
                // ZooKeeper's zookeeper.skipACL: "yes" turns every ACL check off.
                "skipACL" => {
                    c.skip_acl = value.trim().eq_ignore_ascii_case("yes")
                        || boolean(key, value).unwrap_or(false)
                }
                "admin.serverAddress" => c.admin_address = value.to_string(),
                "admin.serverPort" => c.admin_port = port(key, value)?,
                "admin.snapshot.enabled" => c.admin_snapshot_enabled = boolean(key, value)?,
                // Accepted and meaningless for rzk (or not yet used).
                "electionAlg"
                | "quorumListenOnAllIPs"
                | "preAllocSize"
                | "globalOutstandingLimit"
                | "syncEnabled"
                | "peerType"
                | "dynamicConfigFile"
                | "secureClientPort"
                | "fsync.warningthresholdms"
                | "maxCnxns"
                | "localSessionsEnabled"
                | "localSessionsUpgradingEnabled"
                | "digest.enabled"
                | "admin.idleTimeout"
                | "admin.commandURL"
                | "metricsProvider.exportJvmInfo"
                | "clientPortListenBacklog"
                | "leaderServes"
                | "snapshot.trust.empty" => {}
                _ if k.starts_with("server.") => {
                    let id: u64 = k["server.".len()..]
                        .parse()
                        .map_err(|_| bad(key, value, "server id must be a number"))?;
                    c.servers.push(parse_server(id, key, value)?);
                }
                _ if k.starts_with("ssl.")
                    || k.starts_with("quorum.")
                    || k.starts_with("group.")
                    || k.starts_with("weight.") =>
                {
                    c.unknown_keys.push(key.to_string())
                }
                _ => c.unknown_keys.push(key.to_string()),
            }
        }
        if !log_dir_set {
            c.data_log_dir = c.data_dir.clone();
        }
        if c.tick_time == 0 {
            return Err(bad("tickTime", "0", "must be positive"));
        }
        if !min_set {
            c.min_session_timeout = c.tick_time * 2;
        }
        if !max_set {
            c.max_session_timeout = c.tick_time * 20;
        }
        if c.min_session_timeout > c.max_session_timeout {
            return Err(bad(
                "minSessionTimeout",
                &c.min_session_timeout.to_string(),
                "must not be larger than maxSessionTimeout",
            ));
        }
        if c.snap_retain_count < 3 {
            c.snap_retain_count = 3;
        }
        if c.snap_count < 2 {
            return Err(bad(
                "snapCount",
                &c.snap_count.to_string(),
                "must be at least 2",
            ));
        }
        if c.jute_max_buffer < 1024 {
            return Err(bad(
                "jute.maxbuffer",
                &c.jute_max_buffer.to_string(),
                "must be at least 1024",
            ));
        }
        let mut ids = BTreeSet::new();
        for s in &c.servers {
            if !ids.insert(s.id) {
                return Err(bad(
                    &format!("server.{}", s.id),
                    &s.host,
                    "duplicate server id",
                ));
            }
        }
        Ok(c)
    }

    /// Replicated whenever more than one participant is configured.
    pub fn is_replicated(&self) -> bool {
        self.servers
            .iter()
            .filter(|s| s.role == Role::Participant)
            .count()
            > 1
            || (!self.standalone_enabled && !self.servers.is_empty())
    }

    /// The lines `conf` prints.
    /// The membership as ZooKeeper shows it in `/zookeeper/config` and
    /// dynamic config files: `server.N=host:q:e:role;clientAddr:clientPort`
    /// lines, then `version=<hex>`. Lines without a client address get
    /// clientPortAddress/clientPort.
    pub fn membership_text(&self, version: i64) -> String {
        let specs: Vec<ServerSpec> = self
            .servers
            .iter()
            .map(|s| ServerSpec {
                client_port: Some(s.client_port.unwrap_or(self.client_port)),
                client_addr: Some(
                    s.client_addr
                        .clone()
                        .unwrap_or_else(|| self.client_port_address.clone()),
                ),
                ..s.clone()
            })
            .collect();
        format_membership(&specs, version)
    }

    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("clientPort".into(), self.client_port.to_string()),
            ("secureClientPort".into(), "-1".into()),
            (
                "dataDir".into(),
                self.data_dir.join("version-2").display().to_string(),
            ),
            (
                "dataLogDir".into(),
                self.data_log_dir.join("version-2").display().to_string(),
            ),
            ("tickTime".into(), self.tick_time.to_string()),
            ("maxClientCnxns".into(), self.max_client_cnxns.to_string()),
            (
                "minSessionTimeout".into(),
                self.min_session_timeout.to_string(),
            ),
            (
                "maxSessionTimeout".into(),
                self.max_session_timeout.to_string(),
            ),
            ("clientPortListenBacklog".into(), "-1".into()),
            ("serverId".into(), "0".into()),
        ]
    }
}

/// Reads the `myid` file contents.
pub fn parse_myid(text: &str) -> Result<u64, ConfigError> {
    text.trim()
        .parse()
        .map_err(|_| bad("myid", text.trim(), "expected a server id number"))
}

/// The id a pod named `<name>-<ordinal>` takes: ordinal + 1.
pub fn myid_from_hostname(hostname: &str) -> Option<u64> {
    let ordinal: u64 = hostname
        .split('.')
        .next()?
        .rsplit_once('-')?
        .1
        .parse()
        .ok()?;
    Some(ordinal + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_typical_file() {
        let c = Config::parse(
            "# comment\ntickTime=2000\ndataDir=/var/zk\nclientPort=2182\ninitLimit=5\nsyncLimit=2\n\
             server.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer;0.0.0.0:2181\n\
             4lw.commands.whitelist=srvr, ruok\nfoo.bar=1\n",
        )
        .unwrap();
        assert_eq!(c.client_port, 2182);
        assert_eq!(c.data_log_dir, PathBuf::from("/var/zk"));
        assert_eq!(c.max_session_timeout, 40000);
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].role, Role::Observer);
        assert_eq!(c.servers[1].client_port, Some(2181));
        assert!(c.four_letter_words.allows("ruok"));
        assert!(!c.four_letter_words.allows("dump"));
        assert_eq!(c.unknown_keys, vec!["foo.bar".to_string()]);
        assert!(!c.is_replicated());
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::parse("clientPort=abc").unwrap_err();
        assert_eq!(e.key, "clientPort");
        let e = Config::parse("server.1=zk1").unwrap_err();
        assert_eq!(e.key, "server.1");
        let e = Config::parse("minSessionTimeout=50000\nmaxSessionTimeout=4000").unwrap_err();
        assert_eq!(e.key, "minSessionTimeout");
        assert!(Config::parse("tickTime=0").is_err());
    }

    #[test]
    fn safe_defaults() {
        let c = Config::default();
        assert_eq!(c.snap_retain_count, 3);
        assert_eq!(c.purge_interval_hours, 1);
        for w in ["ruok", "srvr", "stat", "mntr", "conf", "isro"] {
            assert!(c.four_letter_words.allows(w));
        }
    }

    #[test]
    fn myid_from_pod_hostname() {
        assert_eq!(myid_from_hostname("zk-0"), Some(1));
        assert_eq!(
            myid_from_hostname("my-zk-12.my-zk-headless.ns.svc"),
            Some(13)
        );
        assert_eq!(myid_from_hostname("nohyphen"), None);
    }
}
