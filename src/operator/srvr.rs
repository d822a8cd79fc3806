//! Member discovery through ZooKeeper's `srvr` four-letter word and the `/zookeeper/config`
//! node. Parsing is pure (works on the text Apache ZooKeeper and rzk both print); the fetch
//! helpers at the bottom are the only IO, each bounded by a timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::planner::Role;
use super::resources::{ConfigRole, Member};

/// What `srvr` says about one server.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SrvrInfo {
    /// `Zookeeper version:` line, up to the first `-` or `,` (e.g. `3.8.0`).
    pub version: Option<String>,
    pub mode: Option<String>,
    pub zxid: Option<u64>,
    pub node_count: Option<u64>,
}

impl SrvrInfo {
    pub fn role(&self) -> Role {
        match self.mode.as_deref() {
            Some("leader") => Role::Leader,
            Some("follower") => Role::Follower,
            Some("observer") => Role::Observer,
            Some("standalone") => Role::Standalone,
            _ => Role::Unknown,
        }
    }
}

/// Parse the reply to `srvr`. A server that is not serving answers with a single sentence
/// ("This ZooKeeper instance is not currently serving requests"): that parses to no mode.
pub fn parse_srvr(text: &str) -> SrvrInfo {
    let mut info = SrvrInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Zookeeper version" => {
                let version = value
                    .split([',', '-'])
                    .next()
                    .unwrap_or(value)
                    .trim()
                    .to_string();
                info.version = (!version.is_empty()).then_some(version);
            }
            "Mode" => info.mode = Some(value.to_string()),
            "Zxid" => {
                let hex = value.trim_start_matches("0x").trim_start_matches("0X");
                info.zxid = u64::from_str_radix(hex, 16).ok();
            }
            "Node count" => info.node_count = value.parse().ok(),
            _ => {}
        }
    }
    info
}

/// Parse the data of `/zookeeper/config` (`server.N=host:q:e[:role][;client]` lines and a
/// `version=` line) into the membership it describes.
pub fn parse_config(text: &str) -> Vec<Member> {
    let mut members: Vec<Member> = text
        .lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once('=')?;
            let id: u32 = key.strip_prefix("server.")?.parse().ok()?;
            let addresses = value.split(';').next().unwrap_or(value);
            let role = if addresses.split(':').any(|part| part == "observer") {
                ConfigRole::Observer
            } else {
                ConfigRole::Participant
            };
            Some(Member { id, role })
        })
        .collect();
    members.sort();
    members.dedup_by_key(|m| m.id);
    members
}

/// Send a four-letter word and read the whole reply.
pub async fn four_letter_word(
    addr: &str,
    word: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut reply = Vec::new();
        // The server closes the connection after answering; cap what we keep.
        let mut limited = (&mut stream).take(64 * 1024);
        limited.read_to_end(&mut reply).await?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{word} to {addr} timed out"),
        )
    })?
}

/// `srvr` one server.
pub async fn fetch_srvr(addr: &str, timeout: Duration) -> std::io::Result<SrvrInfo> {
    Ok(parse_srvr(&four_letter_word(addr, "srvr", timeout).await?))
}
