//! Pure parsing for the shell: splitting a typed line into words the way zkCli does,
//! zkCli-style option parsing (options may follow positionals, `-se` bursts), znode path
//! validation with ZooKeeper's messages, ACL strings and quota (`StatsTrack`) strings.
//! No IO here; everything is unit-tested directly.

use std::collections::BTreeMap;

/// Splits a command line into words like zkCli: whitespace separates words, a word that
/// *starts* with a quote runs to the matching quote and loses the quotes
/// (`create /a "hello world"` → `["create", "/a", "hello world"]`). A quote that is never
/// closed is skipped, as zkCli's pattern does.
pub fn split_words(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            if let Some(end) = chars[i + 1..].iter().position(|&x| x == c) {
                words.push(chars[i + 1..i + 1 + end].iter().collect());
                i += end + 2;
            } else {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        words.push(chars[start..i].iter().collect());
    }
    words
}

/// One option a command accepts: its name without the dash and whether it takes a value.
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    pub name: &'static str,
    pub takes_value: bool,
}

pub const fn flag(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        takes_value: false,
    }
}

pub const fn valued(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        takes_value: true,
    }
}

/// The result of option parsing: options seen (value for valued ones) and positionals in order.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub opts: BTreeMap<String, Option<String>>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.opts.contains_key(name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts.get(name).and_then(|v| v.as_deref())
    }
}

/// Parses `args` (without the command name) against `spec`, like commons-cli's parsers in
/// zkCli: options anywhere, `--` ends options, `-se` = `-s -e` for flags.
pub fn parse_opts(args: &[String], spec: &[OptSpec]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut it = args.iter();
    let mut only_positionals = false;
    while let Some(arg) = it.next() {
        if only_positionals || !arg.starts_with('-') || arg.len() == 1 {
            parsed.args.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        let name = &arg[1..];
        if let Some(opt) = spec.iter().find(|o| o.name == name) {
            let value = if opt.takes_value {
                match it.next() {
                    Some(v) => Some(v.clone()),
                    None => return Err(format!("Missing argument for option: {name}")),
                }
            } else {
                None
            };
            parsed.opts.insert(name.to_string(), value);
            continue;
        }
        // `-se`: a burst of single-letter flags.
        let burst: Option<Vec<&OptSpec>> = name
            .chars()
            .map(|c| {
                spec.iter()
                    .find(|o| !o.takes_value && o.name.len() == 1 && o.name.starts_with(c))
            })
            .collect();
        match burst {
            Some(flags) if name.chars().count() > 1 => {
                for f in flags {
                    parsed.opts.insert(f.name.to_string(), None);
                }
            }
            _ => return Err(format!("Unrecognized option: {arg}")),
        }
    }
    Ok(parsed)
}

/// Validates a znode path with ZooKeeper's client-side rules and messages
/// (`PathUtils.validatePath`). `sequential` allows the trailing `/` of a sequence prefix.
pub fn validate_path(path: &str, sequential: bool) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return Err("Path must not end with / character".into());
    }
    let chars: Vec<char> = path.chars().collect();
    let checked = if sequential && path.ends_with('/') {
        &chars[..chars.len() - 1]
    } else {
        &chars[..]
    };
    let mut last = '/';
    for (i, &c) in checked.iter().enumerate().skip(1) {
        if c == '\0' {
            return Err(format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            return Err(format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            let before = if i >= 2 { checked[i - 2] } else { '/' };
            let after_is_end = i + 1 == checked.len() || checked[i + 1] == '/';
            if before == '/' && after_is_end {
                return Err(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            let after_is_end = i + 1 == checked.len() || checked[i + 1] == '/';
            if checked[i - 1] == '/' && after_is_end {
                return Err(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            return Err(format!("invalid character @{i}"));
        }
        last = c;
    }
    Ok(())
}

/// Parent of a znode path (`/a/b` → `/a`, `/a` → `/`).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Joins a parent path and a child name.
pub fn join_path(parent: &str, child: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// ACL permission bits, as on the wire.
pub const PERM_READ: i32 = 1;
pub const PERM_WRITE: i32 = 2;
pub const PERM_CREATE: i32 = 4;
pub const PERM_DELETE: i32 = 8;
pub const PERM_ADMIN: i32 = 16;

/// One parsed ACL entry: scheme, id and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub scheme: String,
    pub id: String,
    pub perms: i32,
}

/// Parses zkCli's ACL syntax `scheme:id:perms[,scheme:id:perms...]`. The id is everything
/// between the first and last colon (so `digest:user:hash:cdrwa` works). Bad entries are
/// skipped with a warning, as zkCli does.
pub fn parse_acl(text: &str) -> (Vec<AclEntry>, Vec<String>) {
    let mut acl = Vec::new();
    let mut warnings = Vec::new();
    for entry in text.split(',') {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        }
        let mut perms = 0;
        for c in entry[last + 1..].chars() {
            match c {
                'r' => perms |= PERM_READ,
                'w' => perms |= PERM_WRITE,
                'c' => perms |= PERM_CREATE,
                'd' => perms |= PERM_DELETE,
                'a' => perms |= PERM_ADMIN,
                other => warnings.push(format!("Unknown perm type: {other}")),
            }
        }
        acl.push(AclEntry {
            scheme: entry[..first].to_string(),
            id: entry[first + 1..last].to_string(),
            perms,
        });
    }
    (acl, warnings)
}

/// Quota limits/usage as ZooKeeper stores them in `/zookeeper/quota/<path>/zookeeper_limits`
/// and `zookeeper_stats`: `count=N,bytes=N` optionally followed by `=;key=value...` for
/// the hard limits (that odd `=` keeps 3.4-era parsers working). Missing values are -1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

pub const QUOTA_COUNT: &str = "count";
pub const QUOTA_BYTES: &str = "bytes";
pub const QUOTA_COUNT_HARD: &str = "countHardLimit";
pub const QUOTA_BYTES_HARD: &str = "byteHardLimit";

impl StatsTrack {
    /// Parses a stored quota string; pairs are separated by `,` or `;`; an empty value is -1.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let key = kv.next().unwrap_or_default();
            let value = kv.next().unwrap_or_default();
            let value = if value.is_empty() {
                -1
            } else {
                value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("invalid quota value in {text:?}"))?
            };
            values.insert(key.to_string(), value);
        }
        Ok(Self { values })
    }

    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_string(), value);
    }
}

impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "count={},bytes={}",
            self.get(QUOTA_COUNT),
            self.get(QUOTA_BYTES)
        )?;
        let extra: Vec<_> = self
            .values
            .iter()
            .filter(|(k, _)| *k != QUOTA_COUNT && *k != QUOTA_BYTES)
            .collect();
        if !extra.is_empty() {
            f.write_str("=")?;
            for (k, v) in extra {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// The client-facing part of `/zookeeper/config`, as `config -c` prints it:
/// `<version> host:port,host:port` built from the `server.N=...;clientAddr` lines.
pub fn client_config_string(config: &str) -> String {
    let mut version = String::new();
    let mut servers = Vec::new();
    for line in config.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "version" {
            version = value.to_string();
        }
        if !key.starts_with("server.") {
            continue;
        }
        let Some((server, client)) = value.split_once(';') else {
            continue;
        };
        let server_host = server.split(':').next().unwrap_or_default();
        let client = client.trim();
        match client.rsplit_once(':') {
            Some((host, port)) => servers.push(format!("{host}:{port}")),
            None if !client.is_empty() => servers.push(format!("{server_host}:{client}")),
            None => {}
        }
    }
    format!("{version} {}", servers.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s)
    }

    #[test]
    fn splits_like_zkcli() {
        assert_eq!(
            words("create /a \"hello world\""),
            ["create", "/a", "hello world"]
        );
        assert_eq!(words("  ls   /  "), ["ls", "/"]);
        assert_eq!(words("set /a 'x y'"), ["set", "/a", "x y"]);
        assert_eq!(words("set /a a\"b c\""), ["set", "/a", "a\"b", "c\""]);
        assert_eq!(words("set /a \"unclosed"), ["set", "/a", "unclosed"]);
        assert_eq!(words("create /a \"\""), ["create", "/a", ""]);
        assert!(words("   ").is_empty());
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_anywhere_and_bursts() {
        let spec = [flag("s"), flag("e"), valued("t")];
        let p = parse_opts(&strings(&["-se", "/a", "data", "-t", "10"]), &spec).unwrap();
        assert!(p.has("s") && p.has("e"));
        assert_eq!(p.value("t"), Some("10"));
        assert_eq!(p.args, ["/a", "data"]);
        assert_eq!(
            parse_opts(&strings(&["-x", "/a"]), &spec).unwrap_err(),
            "Unrecognized option: -x"
        );
        assert!(parse_opts(&strings(&["/a", "-t"]), &spec).is_err());
        let p = parse_opts(&strings(&["--", "-1"]), &spec).unwrap();
        assert_eq!(p.args, ["-1"]);
        let p = parse_opts(
            &strings(&["-add", "x", "-remove", "1"]),
            &[valued("add"), valued("remove")],
        )
        .unwrap();
        assert_eq!(p.value("add"), Some("x"));
        assert_eq!(p.value("remove"), Some("1"));
    }

    #[test]
    fn path_rules() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b", false).is_ok());
        assert_eq!(
            validate_path("a", false).unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/", false).unwrap_err(),
            "Path must not end with / character"
        );
        assert!(validate_path("/a/", true).is_ok());
        assert_eq!(
            validate_path("/a//b", false).unwrap_err(),
            "empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/./b", false).unwrap_err(),
            "relative paths not allowed @3"
        );
        assert_eq!(
            validate_path("/a/..", false).unwrap_err(),
            "relative paths not allowed @4"
        );
        assert!(validate_path("/a/.b", false).is_ok());
        assert!(validate_path("/a/..b", false).is_ok());
        assert_eq!(
            validate_path("", false).unwrap_err(),
            "Path length must be > 0"
        );
        assert_eq!(
            validate_path("/a\u{1}", false).unwrap_err(),
            "invalid character @2"
        );
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(join_path("/", "a"), "/a");
        assert_eq!(join_path("/a", "b"), "/a/b");
    }

    #[test]
    fn acl_strings() {
        let (acl, warn) = parse_acl("world:anyone:cdrwa,digest:user:hash=:r,bad,ip:1.2.3.4:rx");
        assert_eq!(acl.len(), 3);
        assert_eq!(
            acl[0],
            AclEntry {
                scheme: "world".into(),
                id: "anyone".into(),
                perms: 31
            }
        );
        assert_eq!(acl[1].id, "user:hash=");
        assert_eq!(acl[1].perms, PERM_READ);
        assert_eq!(acl[2].perms, PERM_READ);
        assert_eq!(
            warn,
            [
                "bad does not have the form scheme:id:perm",
                "Unknown perm type: x"
            ]
        );
    }

    #[test]
    fn stats_track_round_trip() {
        let st = StatsTrack::parse("count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=5").unwrap();
        assert_eq!(st.get(QUOTA_COUNT), 10);
        assert_eq!(st.get(QUOTA_COUNT_HARD), 5);
        assert_eq!(
            st.to_string(),
            "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=5"
        );
        assert_eq!(
            StatsTrack::parse("count=2,bytes=0").unwrap().to_string(),
            "count=2,bytes=0"
        );
        assert_eq!(
            StatsTrack::parse("").unwrap().to_string(),
            "count=-1,bytes=-1"
        );
        assert!(StatsTrack::parse("count=x").is_err());
    }

    #[test]
    fn client_config() {
        let cfg = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=h2:2888:3888;2182\nversion=100000000";
        assert_eq!(client_config_string(cfg), "100000000 0.0.0.0:2181,h2:2182");
        assert_eq!(client_config_string(""), " ");
    }
}
