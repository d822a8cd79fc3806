//! Linearizability of recorded histories with porcupine-rs (the Wing & Gong
//! / Lowe search of Porcupine, from crates.io), for a model of ZooKeeper
//! znodes as versioned registers, and the JSON files a failing history is
//! kept in.
//!
//! Unlike `history::check`, which leans on zxids, this search only uses
//! what clients saw and when: each key is a register holding
//! `Option<(value, version)>`; a create succeeds on an absent key and leaves
//! version 0, a set succeeds on a present key and bumps the version (the
//! version the server returned must be the bumped one), refusals
//! (NodeExists / NoNode) must match the state, and a write whose outcome is
//! unknown may take effect at any point after its invocation, or never
//! (its return is put after the end of the history). Reads preceded by a
//! sync can be included (`synced_reads`), and a final read of every key
//! (made after the load stopped) pins down that no acknowledged write was
//! lost.
#![allow(dead_code)]

use super::history::{Entry, Op, Outcome};
use porcupine_rs::{CheckResult, Model, Operation};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Res {
    /// Acknowledged; the version the server reported.
    Ok(i32),
    /// Definitely did not happen (NodeExists, NoNode).
    Refused,
    /// May or may not have happened.
    Unknown,
}

#[derive(Clone, Debug)]
pub enum KvOp {
    Create {
        key: String,
        value: Vec<u8>,
        res: Res,
    },
    Set {
        key: String,
        value: Vec<u8>,
        res: Res,
    },
    /// A linearizable read (sync + get, or the final read): the value seen.
    Read { key: String, value: Option<Vec<u8>> },
}

impl KvOp {
    fn key(&self) -> &str {
        match self {
            KvOp::Create { key, .. } | KvOp::Set { key, .. } | KvOp::Read { key, .. } => key,
        }
    }
}

/// One key's register: the value and data version, None when absent.
type Reg = Option<(Vec<u8>, i32)>;

#[derive(Clone)]
pub struct ZnodeModel;

impl Model for ZnodeModel {
    type State = Reg;
    type Op = KvOp;
    type Metadata = u64;

    fn partition_operations(history: &[Operation<Self>]) -> Vec<Vec<Operation<Self>>> {
        let mut by_key: BTreeMap<String, Vec<Operation<Self>>> = BTreeMap::new();
        for op in history {
            by_key
                .entry(op.op.key().to_string())
                .or_default()
                .push(op.clone());
        }
        by_key.into_values().collect()
    }

    fn init() -> Reg {
        None
    }

    fn step(state: &Reg, op: &KvOp) -> (bool, Reg) {
        match op {
            KvOp::Create { value, res, .. } => match (state, res) {
                (None, Res::Ok(0)) => (true, Some((value.clone(), 0))),
                (None, Res::Ok(_)) => (false, state.clone()),
                (Some(_), Res::Refused) => (true, state.clone()),
                (None, Res::Unknown) => (true, Some((value.clone(), 0))),
                // An unknown create of a present node failed, harmlessly.
                (Some(_), Res::Unknown) => (true, state.clone()),
                _ => (false, state.clone()),
            },
            KvOp::Set { value, res, .. } => match (state, res) {
                (Some((_, v)), Res::Ok(got)) if *got == v + 1 => {
                    (true, Some((value.clone(), *got)))
                }
                (None, Res::Refused) => (true, None),
                (Some((_, v)), Res::Unknown) => (true, Some((value.clone(), v + 1))),
                (None, Res::Unknown) => (true, None),
                _ => (false, state.clone()),
            },
            KvOp::Read { value, .. } => (
                state.as_ref().map(|(v, _)| v) == value.as_ref(),
                state.clone(),
            ),
        }
    }

    fn describe_operation(op: &KvOp) -> String {
        let s = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        match op {
            KvOp::Create { key, value, res } => format!("create({key}, {}) -> {res:?}", s(value)),
            KvOp::Set { key, value, res } => format!("set({key}, {}) -> {res:?}", s(value)),
            KvOp::Read { key, value } => format!("read({key}) -> {:?}", value.as_deref().map(s)),
        }
    }
}

/// Turns a recorded history into porcupine operations: every write, the
/// reads that were preceded by a sync when `synced_reads`, and one final
/// read per key of `final_state`, after everything else.
pub fn operations(
    entries: &[Entry],
    final_state: &HashMap<String, Option<Vec<u8>>>,
    synced_reads: bool,
) -> Vec<Operation<ZnodeModel>> {
    let Some(t0) = entries.iter().map(|e| e.invoked).min() else {
        return Vec::new();
    };
    let ns = |t: Instant| t.duration_since(t0).as_nanos() as i64;
    let end = entries.iter().map(|e| ns(e.completed)).max().unwrap_or(0) + 1_000;
    let mut ops = Vec::new();
    for e in entries {
        let res = match &e.outcome {
            Outcome::Wrote { version, .. } => Res::Ok(*version),
            Outcome::Refused => Res::Refused,
            Outcome::Unknown => Res::Unknown,
            Outcome::Read(_) => Res::Unknown,
        };
        let op = match (&e.op, &e.outcome) {
            (Op::Create { key, value }, _) => KvOp::Create {
                key: key.clone(),
                value: value.clone(),
                res: res.clone(),
            },
            (Op::Set { key, value }, _) => KvOp::Set {
                key: key.clone(),
                value: value.clone(),
                res: res.clone(),
            },
            (Op::Get { key }, Outcome::Read(got)) if synced_reads => KvOp::Read {
                key: key.clone(),
                value: got.as_ref().map(|(v, _)| v.clone()),
            },
            _ => continue,
        };
        let return_time = if res == Res::Unknown && !matches!(op, KvOp::Read { .. }) {
            // Pending forever: it may take effect at any later point.
            end + 1_000
        } else {
            ns(e.completed)
        };
        ops.push(Operation {
            client_id: Some(e.session as u32),
            call_time: ns(e.invoked),
            return_time,
            op,
            metadata: Some(e.session),
        });
    }
    for (key, value) in final_state {
        ops.push(Operation {
            client_id: Some(u32::MAX),
            call_time: end,
            return_time: end + 10,
            op: KvOp::Read {
                key: key.clone(),
                value: value.clone(),
            },
            metadata: None,
        });
    }
    ops
}

/// Checks linearizability; Err on a history that is not, Ok(false) when
/// the search ran out of time (undecided), Ok(true) when linearizable.
pub fn check_linearizable(
    entries: &[Entry],
    final_state: &HashMap<String, Option<Vec<u8>>>,
    synced_reads: bool,
) -> Result<bool, String> {
    let ops = operations(entries, final_state, synced_reads);
    match porcupine_rs::check_operations_timeout(&ops, Duration::from_secs(60)) {
        CheckResult::Ok => Ok(true),
        CheckResult::Unknown => Ok(false),
        CheckResult::Illegal => {
            // Name the first key whose sub-history is not linearizable.
            let parts = ZnodeModel::partition_operations(&ops);
            for part in parts {
                if porcupine_rs::check_operations_timeout(&part, Duration::from_secs(20))
                    == CheckResult::Illegal
                {
                    let key = part[0].op.key().to_string();
                    return Err(format!(
                        "the history of {key} ({} operations) is not linearizable (porcupine-rs)",
                        part.len()
                    ));
                }
            }
            Err("the history is not linearizable (porcupine-rs)".into())
        }
    }
}

/// Where failing histories go: $RZK_ARTIFACTS, else target/test-artifacts.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os("RZK_ARTIFACTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map(|p| p.join("test-artifacts"))
            .unwrap_or_else(|| PathBuf::from("target/test-artifacts")),
    }
}

/// The history as JSON: one object per operation (times in µs from the
/// first invocation), the final state, and why it was kept.
pub fn history_json(
    entries: &[Entry],
    final_state: &HashMap<String, Option<Vec<u8>>>,
    why: &str,
) -> serde_json::Value {
    use serde_json::json;
    let t0 = entries.iter().map(|e| e.invoked).min();
    let us = |t: Instant| {
        t0.map(|t0| t.duration_since(t0).as_micros() as u64)
            .unwrap_or(0)
    };
    let s = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.invoked);
    let ops: Vec<serde_json::Value> = sorted
        .iter()
        .map(|e| {
            let (f, value) = match &e.op {
                Op::Create { value, .. } => ("create", Some(s(value))),
                Op::Set { value, .. } => ("set", Some(s(value))),
                Op::Delete { .. } => ("delete", None),
                Op::Get { .. } => ("sync+get", None),
                Op::LocalGet { .. } => ("get", None),
            };
            let (kind, result) = match &e.outcome {
                Outcome::Wrote { zxid, version } => (
                    "ok",
                    json!({"zxid": format!("{zxid:#x}"), "version": version}),
                ),
                Outcome::Read(Some((v, mzxid))) => {
                    ("ok", json!({"value": s(v), "mzxid": format!("{mzxid:#x}")}))
                }
                Outcome::Read(None) => ("ok", json!({"value": null})),
                Outcome::Refused => ("fail", json!(null)),
                Outcome::Unknown => ("info", json!(null)),
            };
            json!({
                "session": e.session,
                "f": f,
                "key": e.op.key(),
                "value": value,
                "invoke_us": us(e.invoked),
                "complete_us": us(e.completed),
                "type": kind,
                "result": result,
            })
        })
        .collect();
    let fin: BTreeMap<&String, Option<String>> = final_state
        .iter()
        .map(|(k, v)| (k, v.as_deref().map(s)))
        .collect();
    json!({"why": why, "final_state": fin, "history": ops})
}

/// Writes `name`.json under the artifacts dir and returns its path.
pub fn write_history(
    name: &str,
    entries: &[Entry],
    final_state: &HashMap<String, Option<Vec<u8>>>,
    why: &str,
) -> PathBuf {
    let dir = artifacts_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{}.json", std::process::id()));
    let body =
        serde_json::to_string_pretty(&history_json(entries, final_state, why)).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, body) {
        eprintln!("could not write {}: {e}", path.display());
    }
    path
}

/// Runs both checkers; on failure writes the history as JSON and returns
/// an error that names the file.
pub fn verify(
    name: &str,
    entries: &[Entry],
    final_state: &HashMap<String, Option<Vec<u8>>>,
    synced_reads: bool,
) -> Result<(), String> {
    let failure = match super::history::check(entries, final_state) {
        Err(e) => Some(format!("zxid checker: {e}")),
        Ok(()) => match check_linearizable(entries, final_state, synced_reads) {
            Err(e) => Some(e),
            Ok(true) => None,
            Ok(false) => {
                eprintln!("{name}: porcupine-rs could not decide within its time limit");
                None
            }
        },
    };
    if std::env::var_os("RZK_KEEP_HISTORIES").is_some() || failure.is_some() {
        let why = failure
            .clone()
            .unwrap_or_else(|| "kept (RZK_KEEP_HISTORIES)".into());
        let path = write_history(name, entries, final_state, &why);
        eprintln!(
            "{name}: history ({} ops) written to {}",
            entries.len(),
            path.display()
        );
        if let Some(f) = failure {
            return Err(format!("{f}; history in {}", path.display()));
        }
    }
    Ok(())
}
