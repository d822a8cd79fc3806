#!/usr/bin/env bash
# The 3-node ensemble half of benches/compare.sh: Apache ZooKeeper 3.8 and rzk
# each as three nodes on 127.0.0.1 (same zoo.cfg settings, fsync on, same disk,
# same port scheme), the same `rzk bench` workloads (write, read, mixed 90/10)
# against all three servers' connect string, alternating between the two
# servers, plus peak RSS per node (max and sum), start-up to the first served
# request and leader fail-over (SIGKILL → first successful write; median of
# BENCH_FAILOVER_ROUNDS). Prints every figure with the rzk/ZooKeeper ratio and
# writes plots (report.py). All parameters of compare.sh apply, e.g.
#
#   benches/compare-ensemble.sh                                   # the real comparison
#   BENCH_RZK_STUB=apache BENCH_DURATION=2 BENCH_WARMUP=1 \
#     BENCH_CLIENTS="1 4" benches/compare-ensemble.sh             # Apache in both columns: a script check
set -euo pipefail
BENCH_MODES=${BENCH_MODES:-ensemble} exec "$(cd "$(dirname "$0")" && pwd)/compare.sh" "$@"
