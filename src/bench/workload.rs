//! What `rzk bench` does per iteration: the `--workload` grammar, the operations
//! one iteration performs, and where its znodes live.
//!
//! Pure: no IO, no clocks. Randomness comes in as plain numbers so every choice
//! can be tested directly.

use std::fmt;
use std::str::FromStr;

/// Read share of `mixed` when no percentage is given.
pub const DEFAULT_READ_PERCENT: u8 = 90;

/// The load shape selected with `--workload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Create a fresh persistent znode per iteration.
    Create,
    /// Read the data of a random pre-created key.
    Get,
    /// Overwrite the data of a random pre-created key.
    Set,
    /// Create a znode, then delete it: a delete needs something to delete, and
    /// pre-creating an unknown number of nodes would distort the run.
    Delete,
    /// `exists` on a random pre-created key.
    Exists,
    /// List the children of the key directory.
    Children,
    /// `read_percent`% gets, the rest sets, on random pre-created keys.
    Mixed { read_percent: u8 },
    /// Set a watch on the client's own znode, change it, and time the
    /// notification.
    Watch,
}

impl Workload {
    /// The operations one iteration issues, in order. `roll` is a uniformly
    /// random number in `0..100`, used only by `mixed`.
    pub fn iteration(self, roll: u32) -> &'static [OpKind] {
        match self {
            Workload::Create => &[OpKind::Create],
            Workload::Get => &[OpKind::Get],
            Workload::Set => &[OpKind::Set],
            Workload::Delete => &[OpKind::Create, OpKind::Delete],
            Workload::Exists => &[OpKind::Exists],
            Workload::Children => &[OpKind::Children],
            Workload::Mixed { read_percent } => {
                if roll < u32::from(read_percent) {
                    &[OpKind::Get]
                } else {
                    &[OpKind::Set]
                }
            }
            Workload::Watch => &[OpKind::Get, OpKind::Set, OpKind::Watch],
        }
    }

    /// Whether the run needs the shared key directory populated first.
    pub fn needs_keys(self) -> bool {
        matches!(
            self,
            Workload::Get
                | Workload::Set
                | Workload::Exists
                | Workload::Children
                | Workload::Mixed { .. }
        )
    }
}

/// Why a `--workload` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadParseError {
    #[error(
        "unknown workload {0:?}: expected create, get, set, delete, exists, children, mixed[:READ%] or watch"
    )]
    Unknown(String),
    #[error("mixed read percentage {0:?} is not an integer from 0 to 100")]
    BadPercent(String),
}

impl FromStr for Workload {
    type Err = WorkloadParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let (name, argument) = match lower.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (lower.as_str(), None),
        };
        let simple = match name {
            "create" => Some(Workload::Create),
            "get" => Some(Workload::Get),
            "set" => Some(Workload::Set),
            "delete" => Some(Workload::Delete),
            "exists" => Some(Workload::Exists),
            "children" => Some(Workload::Children),
            "watch" => Some(Workload::Watch),
            _ => None,
        };
        match (simple, name, argument) {
            (Some(workload), _, None) => Ok(workload),
            (None, "mixed", None) => Ok(Workload::Mixed {
                read_percent: DEFAULT_READ_PERCENT,
            }),
            (None, "mixed", Some(percent)) => {
                let percent = percent.trim().trim_end_matches('%');
                match percent.parse::<u8>() {
                    Ok(read_percent) if read_percent <= 100 => Ok(Workload::Mixed { read_percent }),
                    _ => Err(WorkloadParseError::BadPercent(percent.to_string())),
                }
            }
            _ => Err(WorkloadParseError::Unknown(text.to_string())),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Create => f.write_str("create"),
            Workload::Get => f.write_str("get"),
            Workload::Set => f.write_str("set"),
            Workload::Delete => f.write_str("delete"),
            Workload::Exists => f.write_str("exists"),
            Workload::Children => f.write_str("children"),
            Workload::Mixed { read_percent } => write!(f, "mixed:{read_percent}"),
            Workload::Watch => f.write_str("watch"),
        }
    }
}

/// One kind of request whose latency is recorded separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Create,
    Get,
    Set,
    Delete,
    Exists,
    Children,
    /// Time from sending the set to receiving the data-changed notification.
    Watch,
}

impl OpKind {
    pub const ALL: [OpKind; 7] = [
        OpKind::Create,
        OpKind::Get,
        OpKind::Set,
        OpKind::Delete,
        OpKind::Exists,
        OpKind::Children,
        OpKind::Watch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Delete => "delete",
            OpKind::Exists => "exists",
            OpKind::Children => "children",
            OpKind::Watch => "watch",
        }
    }

    /// Position in [`OpKind::ALL`], for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where one run's znodes live. Every run gets its own directory under the
/// user's root so concurrent or crashed runs never collide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    run_dir: String,
}

impl Layout {
    /// `root` must be an absolute znode path other than `/`; `run_id` any
    /// token that is unique per run.
    pub fn new(root: &str, run_id: &str) -> Self {
        let root = root.trim_end_matches('/');
        Layout {
            run_dir: format!("{root}/run-{run_id}"),
        }
    }

    pub fn run_dir(&self) -> &str {
        &self.run_dir
    }

    /// Parent of the shared keys read and written by get/set/exists/children/mixed.
    pub fn keys_dir(&self) -> String {
        format!("{}/keys", self.run_dir)
    }

    pub fn key(&self, index: usize) -> String {
        format!("{}/keys/k{index:06}", self.run_dir)
    }

    /// Private directory of one client: its created znodes and watched znode.
    pub fn client_dir(&self, client: usize) -> String {
        format!("{}/c{client}", self.run_dir)
    }

    pub fn client_node(&self, client: usize, sequence: u64) -> String {
        format!("{}/c{client}/n{sequence}", self.run_dir)
    }

    pub fn watched_node(&self, client: usize) -> String {
        format!("{}/c{client}/watched", self.run_dir)
    }
}

/// Checks a `--root` value: absolute, not `/` itself, no empty or relative segments.
pub fn validate_root(root: &str) -> Result<(), String> {
    let trimmed = root.trim_end_matches('/');
    if !root.starts_with('/') {
        return Err(format!("--root {root:?} must be an absolute znode path"));
    }
    if trimmed.is_empty() {
        return Err(
            "--root must not be \"/\": the benchmark deletes what it creates under it".into(),
        );
    }
    for segment in trimmed[1..].split('/') {
        if segment.is_empty() || segment == "." || segment == ".." || segment == "zookeeper" {
            return Err(format!(
                "--root {root:?} has an invalid path segment {segment:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_workload_name() {
        let cases = [
            ("create", Workload::Create),
            ("GET", Workload::Get),
            ("set", Workload::Set),
            ("delete", Workload::Delete),
            ("exists", Workload::Exists),
            ("children", Workload::Children),
            ("watch", Workload::Watch),
            ("mixed", Workload::Mixed { read_percent: 90 }),
            ("mixed:50", Workload::Mixed { read_percent: 50 }),
            ("mixed:100%", Workload::Mixed { read_percent: 100 }),
            ("mixed:0", Workload::Mixed { read_percent: 0 }),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Workload>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_bad_workloads() {
        assert!(matches!(
            "mixed:101".parse::<Workload>(),
            Err(WorkloadParseError::BadPercent(_))
        ));
        assert!(matches!(
            "mixed:x".parse::<Workload>(),
            Err(WorkloadParseError::BadPercent(_))
        ));
        assert!(matches!(
            "mixed:-1".parse::<Workload>(),
            Err(WorkloadParseError::BadPercent(_))
        ));
        assert!(matches!(
            "get:5".parse::<Workload>(),
            Err(WorkloadParseError::Unknown(_))
        ));
        assert!(matches!(
            "scan".parse::<Workload>(),
            Err(WorkloadParseError::Unknown(_))
        ));
        assert!(matches!(
            "".parse::<Workload>(),
            Err(WorkloadParseError::Unknown(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "create", "get", "set", "delete", "exists", "children", "watch", "mixed:75",
        ] {
            let workload: Workload = text.parse().unwrap();
            assert_eq!(workload.to_string(), text);
        }
    }

    #[test]
    fn mixed_splits_by_roll() {
        let mixed = Workload::Mixed { read_percent: 90 };
        let reads = (0..100)
            .filter(|roll| mixed.iteration(*roll) == [OpKind::Get])
            .count();
        assert_eq!(reads, 90);
        assert_eq!(
            Workload::Mixed { read_percent: 0 }.iteration(0),
            [OpKind::Set]
        );
        assert_eq!(
            Workload::Mixed { read_percent: 100 }.iteration(99),
            [OpKind::Get]
        );
    }

    #[test]
    fn compound_iterations() {
        assert_eq!(
            Workload::Delete.iteration(0),
            [OpKind::Create, OpKind::Delete]
        );
        assert_eq!(
            Workload::Watch.iteration(0),
            [OpKind::Get, OpKind::Set, OpKind::Watch]
        );
        assert!(!Workload::Create.needs_keys());
        assert!(Workload::Mixed { read_percent: 1 }.needs_keys());
    }

    #[test]
    fn op_kind_indices_match_all() {
        for (position, kind) in OpKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position);
        }
    }

    #[test]
    fn layout_paths() {
        let layout = Layout::new("/rzk-bench/", "42");
        assert_eq!(layout.run_dir(), "/rzk-bench/run-42");
        assert_eq!(layout.key(7), "/rzk-bench/run-42/keys/k000007");
        assert_eq!(layout.client_node(3, 9), "/rzk-bench/run-42/c3/n9");
        assert_eq!(layout.watched_node(1), "/rzk-bench/run-42/c1/watched");
    }

    #[test]
    fn root_validation() {
        assert!(validate_root("/rzk-bench").is_ok());
        assert!(validate_root("/a/b/").is_ok());
        assert!(validate_root("/").is_err());
        assert!(validate_root("rzk").is_err());
        assert!(validate_root("/a//b").is_err());
        assert!(validate_root("/a/../b").is_err());
        assert!(validate_root("/zookeeper").is_err());
    }
}
