//! Recording and reporting `rzk bench` results: per-operation latency
//! histograms (HdrHistogram, microseconds), error counts, and their rendering as
//! a text table and as JSON lines.
//!
//! Pure: callers hand in durations and error names; nothing here reads a clock
//! or writes a file.

use crate::bench::workload::OpKind;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Largest latency the histograms track exactly (one hour, in microseconds);
/// anything slower is clamped to it rather than dropped.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// Results of one operation kind.
#[derive(Clone, Debug)]
pub struct OpStats {
    pub latency_micros: Histogram<u64>,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
}

impl OpStats {
    fn new() -> Self {
        OpStats {
            latency_micros: Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
                .expect("static histogram bounds are valid"),
            errors: 0,
            error_kinds: BTreeMap::new(),
        }
    }

    pub fn successes(&self) -> u64 {
        self.latency_micros.len()
    }
}

/// Per-kind results of one client, or of all clients after [`Recorder::merge`].
#[derive(Clone, Debug)]
pub struct Recorder {
    per_kind: Vec<OpStats>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            per_kind: OpKind::ALL.iter().map(|_| OpStats::new()).collect(),
        }
    }
}

impl Recorder {
    pub fn record_success(&mut self, kind: OpKind, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, HIGHEST_MICROS);
        self.per_kind[kind.index()]
            .latency_micros
            .saturating_record(micros);
    }

    pub fn record_error(&mut self, kind: OpKind, error_name: &str) {
        self.record_errors(kind, error_name, 1);
    }

    pub fn record_errors(&mut self, kind: OpKind, error_name: &str, count: u64) {
        if count == 0 {
            return;
        }
        let stats = &mut self.per_kind[kind.index()];
        stats.errors += count;
        *stats.error_kinds.entry(error_name.to_string()).or_insert(0) += count;
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.per_kind.iter_mut().zip(&other.per_kind) {
            mine.latency_micros
                .add(&theirs.latency_micros)
                .expect("histograms share bounds");
            mine.errors += theirs.errors;
            for (name, count) in &theirs.error_kinds {
                *mine.error_kinds.entry(name.clone()).or_insert(0) += count;
            }
        }
    }

    pub fn stats(&self, kind: OpKind) -> &OpStats {
        &self.per_kind[kind.index()]
    }
}

/// Run parameters repeated on every JSON line so each line stands alone.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub servers: String,
    pub workload: String,
    pub clients: usize,
    pub value_size: usize,
    /// Target rate of an open-loop run; `None` for closed loop.
    pub target_rate: Option<f64>,
    /// Length of the measured window (warm-up excluded), seconds.
    pub duration_s: f64,
}

/// One line of the report: one operation kind, or `"total"` over all kinds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpSummary {
    pub op: String,
    pub ops: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Successful operations per second over the measured window.
    pub throughput: f64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

fn summarize_stats(op: &str, stats: &OpStats, duration_s: f64) -> OpSummary {
    let hist = &stats.latency_micros;
    let ops = hist.len();
    let (mean_us, p50_us, p90_us, p99_us, p999_us, max_us) = if ops == 0 {
        (0.0, 0, 0, 0, 0, 0)
    } else {
        (
            hist.mean(),
            hist.value_at_quantile(0.50),
            hist.value_at_quantile(0.90),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max(),
        )
    };
    let throughput = if duration_s > 0.0 {
        ops as f64 / duration_s
    } else {
        0.0
    };
    OpSummary {
        op: op.to_string(),
        ops,
        errors: stats.errors,
        error_kinds: stats.error_kinds.clone(),
        throughput,
        mean_us,
        p50_us,
        p90_us,
        p99_us,
        p999_us,
        max_us,
    }
}

/// One summary per operation kind that saw any traffic, then a `"total"` line
/// that merges them all.
pub fn summarize(recorder: &Recorder, duration_s: f64) -> Vec<OpSummary> {
    let mut lines = Vec::new();
    let mut total = OpStats::new();
    for kind in OpKind::ALL {
        let stats = recorder.stats(kind);
        if stats.successes() == 0 && stats.errors == 0 {
            continue;
        }
        lines.push(summarize_stats(kind.name(), stats, duration_s));
        total
            .latency_micros
            .add(&stats.latency_micros)
            .expect("histograms share bounds");
        total.errors += stats.errors;
        for (name, count) in &stats.error_kinds {
            *total.error_kinds.entry(name.clone()).or_insert(0) += count;
        }
    }
    lines.push(summarize_stats("total", &total, duration_s));
    lines
}

fn format_micros(micros: u64) -> String {
    if micros >= 10_000 {
        format!("{:.1}ms", micros as f64 / 1000.0)
    } else if micros >= 1000 {
        format!("{:.2}ms", micros as f64 / 1000.0)
    } else {
        format!("{micros}us")
    }
}

/// The human-readable report.
pub fn format_table(info: &RunInfo, lines: &[OpSummary]) -> String {
    let mut out = String::new();
    let mode = match info.target_rate {
        Some(rate) => format!("open loop at {rate} ops/s"),
        None => "closed loop".to_string(),
    };
    let _ = writeln!(
        out,
        "workload {} | {} clients | {} | value {} B | {:.1}s measured | {}",
        info.workload, info.clients, mode, info.value_size, info.duration_s, info.servers
    );
    let _ = writeln!(
        out,
        "{:<9} {:>10} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "ops", "errors", "ops/s", "p50", "p90", "p99", "p99.9", "max"
    );
    for line in lines {
        let _ = writeln!(
            out,
            "{:<9} {:>10} {:>7} {:>11.1} {:>9} {:>9} {:>9} {:>9} {:>9}",
            line.op,
            line.ops,
            line.errors,
            line.throughput,
            format_micros(line.p50_us),
            format_micros(line.p90_us),
            format_micros(line.p99_us),
            format_micros(line.p999_us),
            format_micros(line.max_us),
        );
    }
    for line in lines
        .iter()
        .filter(|line| line.op != "total" && !line.error_kinds.is_empty())
    {
        let kinds: Vec<String> = line
            .error_kinds
            .iter()
            .map(|(name, count)| format!("{name}×{count}"))
            .collect();
        let _ = writeln!(out, "errors in {}: {}", line.op, kinds.join(", "));
    }
    out
}

#[derive(Serialize)]
struct JsonLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    info: &'a RunInfo,
    #[serde(flatten)]
    summary: &'a OpSummary,
}

/// One JSON object per line: `"type":"op"` for each kind, `"type":"total"` last.
pub fn json_lines(info: &RunInfo, lines: &[OpSummary]) -> String {
    let mut out = String::new();
    for summary in lines {
        let kind = if summary.op == "total" { "total" } else { "op" };
        let line = JsonLine {
            kind,
            info,
            summary,
        };
        out.push_str(&serde_json::to_string(&line).expect("report serializes"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            servers: "127.0.0.1:2181".into(),
            workload: "mixed:90".into(),
            clients: 2,
            value_size: 10,
            target_rate: None,
            duration_s: 2.0,
        }
    }

    #[test]
    fn empty_recorder_reports_only_a_zero_total() {
        let lines = summarize(&Recorder::default(), 1.0);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].op, "total");
        assert_eq!(lines[0].ops, 0);
        assert_eq!(lines[0].p99_us, 0);
    }

    #[test]
    fn percentiles_and_throughput() {
        let mut recorder = Recorder::default();
        for micros in 1..=1000u64 {
            recorder.record_success(OpKind::Get, Duration::from_micros(micros));
        }
        recorder.record_success(OpKind::Set, Duration::from_millis(5));
        recorder.record_error(OpKind::Set, "ConnectionLoss");
        recorder.record_errors(OpKind::Get, "NotSent", 0);
        let lines = summarize(&recorder, 2.0);
        let ops: Vec<&str> = lines.iter().map(|line| line.op.as_str()).collect();
        assert_eq!(ops, ["get", "set", "total"]);
        let get = &lines[0];
        assert_eq!(get.ops, 1000);
        assert_eq!(get.throughput, 500.0);
        // HdrHistogram with 3 significant digits: exact below 2048.
        assert_eq!(get.p50_us, 500);
        assert_eq!(get.p90_us, 900);
        assert_eq!(get.p99_us, 990);
        assert_eq!(get.p999_us, 999);
        assert_eq!(get.max_us, 1000);
        let total = &lines[2];
        assert_eq!(total.ops, 1001);
        assert_eq!(total.errors, 1);
        assert_eq!(total.error_kinds.get("ConnectionLoss"), Some(&1));
        assert!((4995..=5005).contains(&total.max_us), "{}", total.max_us);
    }

    #[test]
    fn extreme_latencies_are_clamped_not_lost() {
        let mut recorder = Recorder::default();
        recorder.record_success(OpKind::Get, Duration::ZERO);
        recorder.record_success(OpKind::Get, Duration::from_secs(100_000));
        let get = &summarize(&recorder, 1.0)[0];
        assert_eq!(get.ops, 2);
        assert!(get.max_us >= HIGHEST_MICROS);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.record_success(OpKind::Create, Duration::from_micros(10));
        b.record_success(OpKind::Create, Duration::from_micros(20));
        b.record_error(OpKind::Create, "NodeExists");
        a.merge(&b);
        let create = a.stats(OpKind::Create);
        assert_eq!(create.successes(), 2);
        assert_eq!(create.errors, 1);
    }

    #[test]
    fn json_lines_parse_and_carry_run_info() {
        let mut recorder = Recorder::default();
        recorder.record_success(OpKind::Get, Duration::from_micros(100));
        let text = json_lines(&info(), &summarize(&recorder, 2.0));
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0]["type"], "op");
        assert_eq!(parsed[0]["op"], "get");
        assert_eq!(parsed[0]["workload"], "mixed:90");
        assert_eq!(parsed[0]["clients"], 2);
        assert_eq!(parsed[0]["p50_us"], 100);
        assert_eq!(parsed[1]["type"], "total");
        assert_eq!(parsed[1]["target_rate"], serde_json::Value::Null);
    }

    #[test]
    fn table_lists_every_line_and_errors() {
        let mut recorder = Recorder::default();
        recorder.record_success(OpKind::Set, Duration::from_micros(1500));
        recorder.record_error(OpKind::Set, "BadVersion");
        let table = format_table(&info(), &summarize(&recorder, 1.0));
        assert!(table.contains("closed loop"));
        assert!(
            table
                .lines()
                .any(|line| line.starts_with("set ") && line.contains("1.50ms"))
        );
        assert!(table.lines().any(|line| line.starts_with("total ")));
        assert!(table.contains("errors in set: BadVersion×1"));
    }
}
