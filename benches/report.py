#!/usr/bin/env python3
"""Summarise a benches/compare.sh result directory.

Reads runs/*.json (JSON lines from `rzk bench --json`), rate/*.json (the
equal-load open-loop runs), meta.jsonl (start-up, peak RSS, fail-over) and
params.json; prints, per mode, every figure for Apache
ZooKeeper and rzk with the rzk/ZooKeeper ratio, writes the same as summary.md,
and plots throughput and latency against client count (PNG, needs matplotlib).

Usage: report.py RESULT_DIR
"""

import glob
import json
import os
import statistics
import sys

TARGETS = ("apache", "rzk")
LABEL = {"apache": "ZooKeeper", "rzk": "rzk"}
WORKLOAD_LABEL = {"set": "write (set)", "get": "read (get)", "mixed90": "mixed 90/10"}
# One colour per workload, one line style per server, so the two are easy to pair.
COLOUR = {"set": "tab:red", "get": "tab:blue", "mixed90": "tab:green"}


def load_dir(result_dir, subdir):
    """{(mode, target, workload, N): {op: line}} for runs named
    MODE_TARGET_WORKLOAD_<letter>N.json (N: clients or offered rate); the
    "total" line is under "total"; runs without one are left out."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(result_dir, subdir, "*.json"))):
        mode, target, workload, number = os.path.basename(path)[:-5].split("_")
        with open(path) as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
        by_op = {line["op"]: line for line in lines if line.get("type") in ("op", "total")}
        if "total" in by_op:
            by_op["total"].update(load_cpu(path[:-5] + ".cpu", by_op["total"]))
            runs[(mode, target, workload, int(number[1:]))] = by_op
    return runs


def load_cpu(path, total):
    """CPU µs per request of the servers (all nodes) and of the load generator,
    from compare.sh's sample_cpu file ("servers_s bench_s window_s"), or {}."""
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        fields = handle.read().split()
    if len(fields) != 3 or float(fields[2]) <= 0 or not total.get("throughput"):
        return {}
    servers, bench, window = map(float, fields)
    ops = total["throughput"] * window
    return {"server_cpu_us": servers / ops * 1e6, "bench_cpu_us": bench / ops * 1e6}


def load_runs(result_dir):
    """{(mode, target, workload, clients): total-line dict} of the closed-loop runs."""
    return {key: by_op["total"] for key, by_op in load_dir(result_dir, "runs").items()}


def load_rate_runs(result_dir):
    """{(mode, target, workload, rate): {op: line}} of the equal-load runs."""
    return load_dir(result_dir, "rate")


def equal_load_table(mode, rate_runs):
    """Latency of both servers at the same offered rate, per workload and op."""
    keys = sorted({(w, r) for (m, _, w, r) in rate_runs if m == mode})
    if not keys:
        return ""
    out = [f"### {mode}: latency at equal offered load (open loop)", "",
           "| workload, offered rate | op | ZooKeeper p50 / p99 / p99.9 | rzk p50 / p99 / p99.9 | "
           "p99 rzk/ZooKeeper | served ops/s (ZooKeeper / rzk) |",
           "|---|---|---:|---:|---:|---:|"]
    for workload, rate in keys:
        lines = {t: rate_runs.get((mode, t, workload, rate)) for t in TARGETS}
        if any(v is None for v in lines.values()):
            continue
        ops = [op for op in lines["apache"] if op != "total"]
        for op in ops + ["total"]:
            cells, p99 = [], {}
            for t in TARGETS:
                line = lines[t].get(op)
                if line is None:
                    cells.append("n/a")
                    continue
                p99[t] = line["p99_us"] / 1000
                errors = f" ({line['errors']} errors)" if line.get("errors") else ""
                cells.append(f"{line['p50_us'] / 1000:.2f} / {line['p99_us'] / 1000:.2f} / "
                             f"{line['p999_us'] / 1000:.2f} ms{errors}")
            served = " / ".join(f"{lines[t][op]['throughput']:,.0f}" if op in lines[t] else "n/a"
                                for t in TARGETS)
            sessions = lines["apache"]["total"].get("clients", "?")
            out.append(f"| {WORKLOAD_LABEL.get(workload, workload)} at {rate:,} ops/s, {sessions} sessions | {op} | {cells[0]} | "
                       f"{cells[1]} | {ratio(p99.get('apache'), p99.get('rzk'))} | {served} |")
    return "\n".join(out) + "\n"


def load_meta(result_dir):
    """{(mode, target, metric): [values]} (None for n/a)"""
    meta = {}
    path = os.path.join(result_dir, "meta.jsonl")
    if os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    meta.setdefault((row["mode"], row["target"], row["metric"]), []).append(row["value"])
    return meta


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "ops/s":
        return f"{value:,.0f} ops/s"
    if unit == "ms":
        return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "µs":
        return f"{value:,.1f} µs"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value}"


def ratio(apache, rzk):
    if apache is None or rzk is None or apache == 0:
        return "n/a"
    return f"{rzk / apache:.2f}×"


def figures(mode, runs, meta, headline):
    """[(name, unit, better, apache value, rzk value)]"""
    rows = []

    def run_value(target, workload, field, scale=1.0):
        total = runs.get((mode, target, workload, headline))
        if total is None or total.get("errors") or field not in total:
            return None
        return total[field] * scale

    for workload, label in WORKLOAD_LABEL.items():
        rows.append((f"{label} throughput, {headline} clients", "ops/s", "higher",
                     *(run_value(t, workload, "throughput") for t in TARGETS)))
    for workload, label in WORKLOAD_LABEL.items():
        for pct in ("p50", "p99"):
            rows.append((f"{label} {pct} latency, {headline} clients", "ms", "lower",
                         *(run_value(t, workload, f"{pct}_us", 0.001) for t in TARGETS)))

    for workload, label in WORKLOAD_LABEL.items():
        rows.append((f"{label} server CPU per request (all nodes), {headline} clients", "µs", "lower",
                     *(run_value(t, workload, "server_cpu_us") for t in TARGETS)))

    def meta_value(target, metric, reduce, scale=1.0):
        values = meta.get((mode, target, metric), [])
        present = [v for v in values if v is not None]
        if not present or len(present) != len(values):
            return None
        return reduce(present) * scale

    rows.append(("peak RSS per server (largest node, VmHWM)", "MiB", "lower",
                 *(meta_value(t, "peak_rss_kib", max, 1 / 1024) for t in TARGETS)))
    if mode == "ensemble":
        rows.append(("peak RSS, all nodes together (sum of VmHWM)", "MiB", "lower",
                     *(meta_value(t, "peak_rss_kib", sum, 1 / 1024) for t in TARGETS)))
    rows.append(("start-up to first served request", "ms", "lower",
                 *(meta_value(t, "startup_ms", max) for t in TARGETS)))
    if mode == "ensemble":
        rows.append(("leader fail-over (SIGKILL → first write), median", "ms", "lower",
                     *(meta_value(t, "failover_ms", statistics.median) for t in TARGETS)))
    return rows


def table(mode, rows):
    out = [f"### {mode}", "", "| figure | ZooKeeper | rzk | rzk/ZooKeeper | better |",
           "|---|---:|---:|---:|---|"]
    for name, unit, better, apache, rzk in rows:
        out.append(f"| {name} | {fmt(apache, unit)} | {fmt(rzk, unit)} | {ratio(apache, rzk)} | {better} |")
    return "\n".join(out) + "\n"


def plot(result_dir, mode, runs, clients_list):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install matplotlib): no plots", file=sys.stderr)
        return []
    written = []
    styles = {"apache": "-o", "rzk": "--s"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for target in TARGETS:
        for workload, label in WORKLOAD_LABEL.items():
            points = [(c, runs[(mode, target, workload, c)]["throughput"]) for c in clients_list
                      if (mode, target, workload, c) in runs]
            if points:
                ax.plot(*zip(*points), styles[target], color=COLOUR[workload], label=f"{LABEL[target]} {label}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients_list, [str(c) for c in clients_list])
    ax.set_xlabel("concurrent clients (one request in flight each)")
    ax.set_ylabel("requests per second")
    ax.set_title(f"Throughput vs clients ({mode})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = os.path.join(result_dir, f"throughput-{mode}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, pct in zip(axes, ("p50", "p99")):
        for target in TARGETS:
            for workload, label in WORKLOAD_LABEL.items():
                points = [(c, runs[(mode, target, workload, c)][f"{pct}_us"] / 1000) for c in clients_list
                          if (mode, target, workload, c) in runs]
                if points:
                    ax.plot(*zip(*points), styles[target], color=COLOUR[workload], label=f"{LABEL[target]} {label}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(clients_list, [str(c) for c in clients_list])
        ax.set_xlabel("concurrent clients")
        ax.set_title(f"{pct} latency ({mode})")
        ax.grid(True, alpha=0.3, which="both")
    axes[0].set_ylabel("milliseconds")
    axes[1].legend(fontsize=8)
    path = os.path.join(result_dir, f"latency-{mode}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written


def all_runs_table(runs):
    out = ["| mode | server | workload | clients | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors "
           "| server CPU µs/op | bench CPU µs/op |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cpu(t, field):
        return f"{t[field]:.1f}" if field in t else "n/a"

    for (mode, target, workload, clients), t in sorted(runs.items()):
        out.append(f"| {mode} | {LABEL[target]} | {workload} | {clients} | {t['throughput']:,.0f} | "
                   f"{t['p50_us'] / 1000:.2f} | {t['p90_us'] / 1000:.2f} | {t['p99_us'] / 1000:.2f} | "
                   f"{t['p999_us'] / 1000:.2f} | {t['max_us'] / 1000:.2f} | {t['errors']} | "
                   f"{cpu(t, 'server_cpu_us')} | {cpu(t, 'bench_cpu_us')} |")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    result_dir = sys.argv[1]
    runs = load_runs(result_dir)
    meta = load_meta(result_dir)
    params_path = os.path.join(result_dir, "params.json")
    params = json.load(open(params_path)) if os.path.exists(params_path) else {}
    clients_list = sorted(params.get("clients") or {key[3] for key in runs} or [1])
    headline = max(clients_list)
    modes = [m for m in ("standalone", "ensemble") if any(key[0] == m for key in list(runs) + list(meta))]

    sections = [f"Parameters: {json.dumps(params)}\n"]
    if params.get("rzk_stub"):
        # A stub run (BENCH_RZK_STUB): the "rzk" column is another server.
        LABEL["rzk"] = f"rzk (stub: {params['rzk_stub']})"
        sections.append(f"**Stub run**: the rzk column ran {params['rzk_stub']} (BENCH_RZK_STUB), "
                        "not rzk; its figures and ratios only show that the script works.\n")
    if params.get("pinned"):
        pinned = params["pinned"]
        sections.append(f"**Pinned run** (BENCH_PIN): every server process on CPU {pinned['server_cpus']}, "
                        f"the load generator on CPU {pinned['bench_cpus']}.\n")
    rate_runs = load_rate_runs(result_dir)
    for mode in modes:
        sections.append(table(mode, figures(mode, runs, meta, headline)))
        equal = equal_load_table(mode, rate_runs)
        if equal:
            sections.append(equal)
    sections.append("### every run\n\n" + all_runs_table(runs))
    failover = {key: values for key, values in meta.items() if key[2] == "failover_ms"}
    if failover:
        lines = [f"- {LABEL[target]}: {', '.join('n/a' if v is None else f'{v:.0f} ms' for v in values)}"
                 for (_, target, _), values in sorted(failover.items())]
        sections.append("### fail-over rounds\n\n" + "\n".join(lines) + "\n")
    text = "\n".join(sections)
    with open(os.path.join(result_dir, "summary.md"), "w") as handle:
        handle.write(text)
    print(text)
    for mode in modes:
        for path in plot(result_dir, mode, runs, clients_list):
            print(f"plot: {path}")


if __name__ == "__main__":
    main()
