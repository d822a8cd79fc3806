#!/usr/bin/env bash
# Side-by-side benchmark of Apache ZooKeeper 3.8 (Debian's `zookeeper` package,
# run with java) and rzk, with the same zoo.cfg settings, the same disk, the same
# port scheme and the same load generator (`rzk bench`, built on the neutral
# zookeeper-client crate). Standalone and a 3-node ensemble on 127.0.0.1.
#
# Workloads run alternately against both servers (ZooKeeper first, then rzk, then
# rzk first, ...) so machine noise hits both alike. At the end it prints every
# figure with the rzk/ZooKeeper ratio and writes PNG plots (see BENCHMARKS.md).
#
# Needs: java 17, Debian packages `zookeeper` and `libslf4j-java`, python3, and
# matplotlib for the plots (`pip install matplotlib`; without it only the tables).
#
# Parameters (environment):
#   BENCH_DURATION=8          measured seconds per run
#   BENCH_WARMUP=2            warm-up seconds per run
#   BENCH_CLIENTS="1 4 16 64" client counts (the largest one is the headline)
#   BENCH_WORKLOADS="set get mixed:90"
#   BENCH_VALUE_SIZE=100      bytes per znode value
#   BENCH_TARGETS="apache rzk"
#   BENCH_MODES="standalone ensemble"
#   BENCH_FAILOVER_ROUNDS=3   leader kills per ensemble (the median is reported)
#   BENCH_EQUAL_LOAD_PCT=70   latency at equal load: after the closed-loop runs,
#                             each workload again open loop (--rate) at this
#                             percentage of the slower server's closed-loop
#                             throughput at the largest client count, the same
#                             rate for both servers (0: skip)
#   BENCH_EQUAL_LOAD_CLIENTS=64  sessions sharing that rate: each one has a
#                             request in flight at most, so with as few
#                             sessions as the closed loop had each would be a
#                             busy queue of its own and its backlog, not the
#                             server, would make the tail
#   BENCH_START_TIMEOUT=60    seconds a server gets to serve its first request
#   BENCH_ZK_HEAP=1000m       ZooKeeper's -Xmx (upstream zkEnv.sh's default)
#   BENCH_ZK_JVM_FLAGS=       more java flags for ZooKeeper (word-split)
#   BENCH_ZK_LOG=info         ZooKeeper's log level (slf4j-simple), logs/ in the results
#   BENCH_RZK_LOG=info        rzk's RUST_LOG, logs/ in the results
#   BENCH_BASE_PORT=31000     first port of the scheme (moved up if busy)
#   BENCH_OUT=benches/results/<UTC time>   where results and plots go
#   BENCH_DATA_DIR=$BENCH_OUT/data         server data (deleted at the end)
#   RZK_BIN=target/release/rzk             the rzk binary (server and bench)
#   BENCH_PIN="SERVER_CPUS BENCH_CPUS"     pin every server process (all
#                             nodes, both servers) to SERVER_CPUS and the load
#                             generator to BENCH_CPUS (taskset lists, e.g.
#                             "0 1"): the load generator then no longer takes
#                             CPU from the servers, which it otherwise does in
#                             proportion to the server's speed. Empty: no
#                             pinning (the default).
#   BENCH_RZK_STUB=apache     run Apache ZooKeeper in the rzk column too (same
#                             ports and settings as rzk would get): proves the
#                             script end to end before rzk can run a mode; the
#                             report then says so. `rzk bench` is still used.
# With the defaults a full run takes about 15 minutes (the ensemble half 7).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

duration=${BENCH_DURATION:-8}
warmup=${BENCH_WARMUP:-2}
clients_list=${BENCH_CLIENTS:-"1 4 16 64"}
workloads=${BENCH_WORKLOADS:-"set get mixed:90"}
value_size=${BENCH_VALUE_SIZE:-100}
targets=${BENCH_TARGETS:-"apache rzk"}
modes=${BENCH_MODES:-"standalone ensemble"}
failover_rounds=${BENCH_FAILOVER_ROUNDS:-3}
equal_load_pct=${BENCH_EQUAL_LOAD_PCT:-70}
equal_load_clients=${BENCH_EQUAL_LOAD_CLIENTS:-64}
start_timeout=${BENCH_START_TIMEOUT:-60}
zk_heap=${BENCH_ZK_HEAP:-1000m}
read -r -a zk_jvm_flags <<<"${BENCH_ZK_JVM_FLAGS:-}"
# Both servers log at info (role changes, elections; nothing per request) to
# $BENCH_OUT/logs/, so a fail-over can be read off the logs afterwards.
zk_log=${BENCH_ZK_LOG:-info}
rzk_log=${BENCH_RZK_LOG:-info}
base_port=${BENCH_BASE_PORT:-31000}
rzk_bin=${RZK_BIN:-$repo/target/release/rzk}
rzk_stub=${BENCH_RZK_STUB:-}
[[ -z $rzk_stub || $rzk_stub == apache ]] || { echo "BENCH_RZK_STUB must be empty or apache" >&2; exit 1; }
# Command prefixes that pin servers and the load generator (empty: no
# pinning). A prefix, not a function, so that `$!` is the server's own pid.
pin=${BENCH_PIN:-}
server_on_cpus=() bench_on_cpus=()
if [[ -n $pin ]]; then
    read -r server_cpus bench_cpus <<<"$pin"
    [[ -n $server_cpus && -n ${bench_cpus:-} ]] || { echo "BENCH_PIN must be \"SERVER_CPUS BENCH_CPUS\"" >&2; exit 1; }
    command -v taskset >/dev/null || { echo "BENCH_PIN needs taskset (util-linux)" >&2; exit 1; }
    server_on_cpus=(taskset -c "$server_cpus")
    bench_on_cpus=(taskset -c "$bench_cpus")
fi
out=${BENCH_OUT:-$repo/benches/results/$(date -u +%Y%m%dT%H%M%SZ)}
data_root=${BENCH_DATA_DIR:-$out/data}

zookeeper_jar=/usr/share/java/zookeeper.jar
slf4j_jar=/usr/share/java/slf4j-simple.jar

# Progress goes to fd 3 (a copy of stderr) so that bash's "Killed" job notices
# can be silenced around the deliberate SIGKILLs without hiding progress.
exec 3>&2
log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&3; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- preconditions
command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jre-headless)"
command -v python3 >/dev/null || die "python3 not found"
[[ -r $zookeeper_jar ]] || die "$zookeeper_jar missing (apt-get install zookeeper)"
[[ -r $slf4j_jar ]] || die "$slf4j_jar missing (apt-get install libslf4j-java)"
if [[ ! -x $rzk_bin ]]; then
    log "building $rzk_bin (cargo build --release)"
    (cd "$repo" && cargo build --release --bin rzk) || die "cannot build rzk"
fi
mkdir -p "$out/runs" "$out/rate" "$out/logs" "$data_root"
meta="$out/meta.jsonl"
: >"$meta"

# ---------------------------------------------------------------- processes
# Every server this script starts is recorded here and killed on exit, by pid.
declare -A server_pid=()   # "mode/target/node" -> pid
cleanup() {
    local key
    for key in "${!server_pid[@]}"; do
        kill -9 "${server_pid[$key]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ -z ${BENCH_KEEP_DATA:-} ]]; then rm -rf "$data_root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- port scheme
# target offset: apache +0, rzk +100. Standalone client port: base+off.
# Ensemble node i (1..3): client base+off+10+i, quorum base+off+20+i,
# election base+off+30+i.
target_offset() { case $1 in apache) echo 0 ;; rzk) echo 100 ;; esac; }
all_ports() {
    local b=$1 off p
    for off in 0 100; do
        echo $((b + off))
        for p in 1 2 3; do echo $((b + off + 10 + p)) $((b + off + 20 + p)) $((b + off + 30 + p)); done
    done
}
ports_free() {
    python3 - "$@" <<'EOF'
import socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}
for _ in $(seq 1 20); do
    # shellcheck disable=SC2046
    if ports_free $(all_ports "$base_port"); then break; fi
    base_port=$((base_port + 1000))
done
# shellcheck disable=SC2046
ports_free $(all_ports "$base_port") || die "no free port range found"
log "port base $base_port, results in $out"
[[ -z $rzk_stub ]] || log "BENCH_RZK_STUB=$rzk_stub: the rzk column runs Apache ZooKeeper (a stub run)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

client_ports() { # mode target -> client ports, one per node
    local off; off=$(target_offset "$2")
    if [[ $1 == standalone ]]; then
        echo $((base_port + off))
    else
        echo $((base_port + off + 11)) $((base_port + off + 12)) $((base_port + off + 13))
    fi
}
connect_string() { # mode target
    local p s=""
    for p in $(client_ports "$1" "$2"); do s+="${s:+,}127.0.0.1:$p"; done
    echo "$s"
}

# ---------------------------------------------------------------- configuration
write_config() { # mode target node -> path of zoo.cfg
    local mode=$1 target=$2 node=$3 off dir cfg i
    off=$(target_offset "$target")
    dir="$data_root/$mode/$target/n$node"
    mkdir -p "$dir/data"
    cfg="$dir/zoo.cfg"
    {
        echo "tickTime=2000"
        echo "initLimit=10"
        echo "syncLimit=5"
        echo "dataDir=$dir/data"
        echo "clientPortAddress=127.0.0.1"
        echo "forceSync=yes"
        echo "maxClientCnxns=0"
        echo "admin.enableServer=false"
        # rzk serves Prometheus metrics on this port (0: any free one; three
        # nodes on one host must not share 7000); Apache's default metrics
        # provider ignores it.
        echo "metricsProvider.httpPort=0"
        echo "4lw.commands.whitelist=srvr,ruok,mntr,stat"
        if [[ $mode == standalone ]]; then
            echo "clientPort=$((base_port + off))"
        else
            echo "clientPort=$((base_port + off + 10 + node))"
            for i in 1 2 3; do
                echo "server.$i=127.0.0.1:$((base_port + off + 20 + i)):$((base_port + off + 30 + i));127.0.0.1:$((base_port + off + 10 + i))"
            done
        fi
    } >"$cfg"
    [[ $mode == standalone ]] || echo "$node" >"$dir/data/myid"
    echo "$cfg"
}

start_node() { # mode target node  (records the pid)
    local mode=$1 target=$2 node=$3 cfg logf
    cfg=$(write_config "$mode" "$target" "$node")
    logf="$out/logs/$mode-$target-n$node.log"
    local impl=$target
    [[ $target == rzk && -n $rzk_stub ]] && impl=$rzk_stub
    case $impl in
        apache)
            ${server_on_cpus[@]+"${server_on_cpus[@]}"} java "-Xmx$zk_heap" ${zk_jvm_flags[@]+"${zk_jvm_flags[@]}"} -Dorg.slf4j.simpleLogger.defaultLogLevel="$zk_log" \
                -Dzookeeper.admin.enableServer=false \
                -cp "$zookeeper_jar:$slf4j_jar" \
                org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg" >>"$logf" 2>&1 </dev/null &
            ;;
        rzk)
            RUST_LOG=$rzk_log ${server_on_cpus[@]+"${server_on_cpus[@]}"} "$rzk_bin" server "$cfg" >>"$logf" 2>&1 </dev/null &
            ;;
    esac
    server_pid["$mode/$target/$node"]=$!
}

node_count() { [[ $1 == standalone ]] && echo 1 || echo 3; }

pids_of() { # mode target
    local n
    for n in $(seq 1 "$(node_count "$1")"); do
        [[ -n ${server_pid["$1/$2/$n"]:-} ]] && echo "${server_pid["$1/$2/$n"]}"
    done
}

any_alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

# Runs `rzk bench --probe KIND` until it succeeds; gives up early when every
# server process has died. Prints the probe's JSON line; fails if it did not succeed.
probe() { # kind servers timeout pids...
    local kind=$1 servers=$2 timeout=$3 tmp ppid rc
    shift 3
    tmp=$(mktemp)
    "$rzk_bin" bench --probe "$kind" --probe-timeout "$timeout" --servers "$servers" >"$tmp" 2>/dev/null &
    ppid=$!
    while kill -0 "$ppid" 2>/dev/null; do
        if ! any_alive "$@"; then
            kill "$ppid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rc=0
    wait "$ppid" || rc=$?
    cat "$tmp"
    rm -f "$tmp"
    return "$rc"
}

json_field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

record() { # mode target metric value [note]
    python3 - "$@" >>"$meta" <<'EOF'
import json, sys
mode, target, metric, value = sys.argv[1:5]
note = sys.argv[5] if len(sys.argv) > 5 else None
print(json.dumps({"mode": mode, "target": target, "metric": metric,
                  "value": None if value == "n/a" else float(value), "note": note}))
EOF
}

declare -A up=()   # "mode/target" -> 1 when serving

start_target() { # mode target: start all nodes, time to first served request
    local mode=$1 target=$2 t0 line n pids
    t0=$(now_ms)
    for n in $(seq 1 "$(node_count "$mode")"); do start_node "$mode" "$target" "$n"; done
    # shellcheck disable=SC2046
    if line=$(probe read "$(connect_string "$mode" "$target")" "$start_timeout" $(pids_of "$mode" "$target")); then
        local ms=$(($(json_field unix_ms <<<"$line" | cut -d. -f1) - t0))
        log "$mode/$target serving after ${ms} ms"
        record "$mode" "$target" startup_ms "$ms"
        up["$mode/$target"]=1
    else
        log "$mode/$target did not serve a request (see $out/logs/$mode-$target-n*.log): n/a"
        record "$mode" "$target" startup_ms n/a "did not start"
        stop_target "$mode" "$target"
    fi
}

stop_target() { # mode target
    local n key
    for n in 1 2 3; do
        key="$1/$2/$n"
        if [[ -n ${server_pid[$key]:-} ]]; then
            kill -9 "${server_pid[$key]}" 2>/dev/null || true
            wait "${server_pid[$key]}" 2>/dev/null || true
            unset "server_pid[$key]"
        fi
    done
}

record_rss() { # mode target: VmHWM of every node, in KiB
    local n pid kib
    for n in $(seq 1 "$(node_count "$1")"); do
        pid=${server_pid["$1/$2/$n"]:-}
        kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        record "$1" "$2" peak_rss_kib "${kib:-n/a}" "node $n"
    done
}

srvr_mode() { # port -> leader|follower|standalone|"" (4lw `srvr`)
    python3 - "$1" <<'EOF'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(b"srvr")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    for line in reply.decode(errors="replace").splitlines():
        if line.startswith("Mode:"):
            print(line.split(":", 1)[1].strip())
except OSError:
    pass
EOF
}

find_leader() { # mode target -> node number
    local n port
    for n in 1 2 3; do
        port=$(($(target_offset "$2") + base_port + 10 + n))
        if [[ $(srvr_mode "$port") == leader ]]; then echo "$n"; return 0; fi
    done
    return 1
}

failover() { # target: kill the ensemble leader, time the first successful write
    local target=$1 round leader pid t_kill line ms port deadline
    for round in $(seq 1 "$failover_rounds"); do
        if ! leader=$(find_leader ensemble "$target"); then
            log "ensemble/$target: no leader found with srvr: failover n/a"
            record ensemble "$target" failover_ms n/a "no leader reported by srvr"
            return
        fi
        pid=${server_pid["ensemble/$target/$leader"]}
        t_kill=$(now_ms)
        kill -9 "$pid"
        if line=$(probe write "$(connect_string ensemble "$target")" 60 $(pids_of ensemble "$target")); then
            ms=$(($(json_field unix_ms <<<"$line" | cut -d. -f1) - t_kill))
            log "ensemble/$target failover round $round (killed node $leader): ${ms} ms"
            record ensemble "$target" failover_ms "$ms" "round $round, killed node $leader"
        else
            log "ensemble/$target failover round $round: no write within 60 s"
            record ensemble "$target" failover_ms n/a "no write within 60 s"
        fi
        wait "$pid" 2>/dev/null || true
        unset "server_pid[ensemble/$target/$leader]"
        # Bring the killed node back and let it rejoin before the next round.
        start_node ensemble "$target" "$leader"
        port=$(($(target_offset "$target") + base_port + 10 + leader))
        deadline=$(($(date +%s) + start_timeout))
        until [[ $(srvr_mode "$port") == follower || $(srvr_mode "$port") == leader ]]; do
            if (($(date +%s) > deadline)); then
                log "ensemble/$target: node $leader did not rejoin; stopping failover rounds"
                return
            fi
            sleep 0.2
        done
    done
}

# CPU time (user + system, all threads) of the given processes, in seconds.
cpu_seconds() { # pids...
    local p
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done |
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%.3f\n", t / hz }'
}

# Writes "servers_cpu_s bench_cpu_s window_s" for the middle of a run's
# measured window (from 1 s after the warm-up to 1 s before the end), so the
# report can give CPU time per request: the load generator shares the cores
# with the servers, so a server that needs less CPU per request leaves more
# to the load generator, and throughput alone understates the difference.
sample_cpu() { # file bench_pid server_pids...
    local file=$1 bench=$2 s0 b0 t0 s1 b1 t1
    shift 2
    sleep "$(awk -v w="$warmup" 'BEGIN { print w + 1 }')"
    s0=$(cpu_seconds "$@"); b0=$(cpu_seconds "$bench"); t0=$(date +%s.%N)
    sleep "$(awk -v d="$duration" 'BEGIN { print (d > 3 ? d - 2 : d / 2) }')"
    s1=$(cpu_seconds "$@"); b1=$(cpu_seconds "$bench"); t1=$(date +%s.%N)
    kill -0 "$bench" 2>/dev/null || return 0 # ended early: no figure
    awk -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%.3f %.3f %.3f\n", s1 - s0, b1 - b0, t1 - t0 }' >"$file"
}

# One `rzk bench` run; its JSON lines go to $out/DIR/NAME.json (removed when
# the run fails, so the report never reads half a run), its table to NAME.txt,
# the CPU sample to NAME.cpu.
run_bench() { # dir name mode target workload clients [extra bench args...]
    local dir=$1 name=$2 mode=$3 target=$4 workload=$5 clients=$6 bench sampler
    shift 6
    ${bench_on_cpus[@]+"${bench_on_cpus[@]}"} "$rzk_bin" bench --servers "$(connect_string "$mode" "$target")" --clients "$clients" \
        --duration "$duration" --warmup "$warmup" --value-size "$value_size" \
        --workload "$workload" --json "$out/$dir/$name.json" --quiet "$@" \
        >"$out/$dir/$name.txt" 2>&1 &
    bench=$!
    # shellcheck disable=SC2046 # one pid per word
    sample_cpu "$out/$dir/$name.cpu" "$bench" $(pids_of "$mode" "$target") &
    sampler=$!
    if ! wait "$bench"; then
        log "$mode/$target: $workload with $clients clients $* failed (see $dir/$name.txt)"
        rm -f "$out/$dir/$name.json"
    fi
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
}

# The offered rate for the equal-load runs of a workload: BENCH_EQUAL_LOAD_PCT
# of the lower closed-loop throughput of the two servers at `clients`.
equal_rate() { # mode workload clients
    python3 - "$out/runs" "$1" "${2//:/}" "$3" "$equal_load_pct" $targets <<'EOF'
import json, os, sys
runs, mode, workload, clients, pct = sys.argv[1:6]
rates = []
for target in sys.argv[6:]:
    path = os.path.join(runs, f"{mode}_{target}_{workload}_c{clients}.json")
    if not os.path.exists(path):
        sys.exit(1)
    with open(path) as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    total = next(line for line in lines if line.get("type") == "total")
    rates.append(total["throughput"])
rate = int(min(rates) * float(pct) / 100)
if rate <= 0:
    sys.exit(1)
print(rate)
EOF
}

# ---------------------------------------------------------------- the run
run_index=0
for mode in $modes; do
    log "=== $mode ==="
    for target in $targets; do start_target "$mode" "$target"; done
    for clients in $clients_list; do
        for workload in $workloads; do
            order=$targets
            if ((run_index % 2 == 1)); then order=$(echo "$targets" | tr ' ' '\n' | tac | tr '\n' ' '); fi
            run_index=$((run_index + 1))
            for target in $order; do
                [[ -n ${up["$mode/$target"]:-} ]] || continue
                log "$mode/$target: $workload, $clients clients"
                run_bench runs "${mode}_${target}_${workload//:/}_c${clients}" "$mode" "$target" \
                    "$workload" "$clients"
            done
        done
    done
    # Latency at equal load. Closed loop puts each server at its own maximum,
    # so the faster one is measured under more load; here both get the same
    # offered rate, open loop (a stall counts from the intended send time).
    if ((equal_load_pct > 0)); then
        headline=$(tr ' ' '\n' <<<"$clients_list" | sort -n | tail -1)
        for workload in $workloads; do
            rate=$(equal_rate "$mode" "$workload" "$headline") || continue
            for target in $targets; do
                [[ -n ${up["$mode/$target"]:-} ]] || continue
                log "$mode/$target: $workload at $rate ops/s offered, $equal_load_clients clients"
                run_bench rate "${mode}_${target}_${workload//:/}_r${rate}" "$mode" "$target" \
                    "$workload" "$equal_load_clients" --rate "$rate"
            done
        done
    fi
    for target in $targets; do
        [[ -n ${up["$mode/$target"]:-} ]] && record_rss "$mode" "$target"
    done
    if [[ $mode == ensemble ]]; then
        for target in $targets; do
            if [[ -n ${up["$mode/$target"]:-} ]]; then
                failover "$target" 2>/dev/null
            else
                record ensemble "$target" failover_ms n/a "ensemble did not start"
            fi
        done
    fi
    for target in $targets; do stop_target "$mode" "$target"; done 2>/dev/null
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
rzk_commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
java_version=$(java -version 2>&1 | head -1)
python3 - "$out" "$duration" "$warmup" "$clients_list" "$value_size" "$zk_heap" "$base_port" \
    "$load_before" "$load_after" "$rzk_commit" "$java_version" "$(nproc)" "$rzk_stub" "$failover_rounds" "${server_cpus:-}" "${bench_cpus:-}" \
    <<'EOF' >"$out/params.json"
import json, sys
(out, duration, warmup, clients, value_size, heap, base,
 load_before, load_after, commit, java, cpus, stub, rounds, server_cpus, bench_cpus) = sys.argv[1:]
params = {"duration_s": float(duration), "warmup_s": float(warmup),
          "clients": [int(c) for c in clients.split()], "value_size": int(value_size),
          "zk_heap": heap, "base_port": int(base), "cpus": int(cpus),
          "loadavg_before": load_before, "loadavg_after": load_after,
          "rzk_commit": commit, "java": java, "failover_rounds": int(rounds)}
if stub:
    params["rzk_stub"] = stub
if server_cpus:
    params["pinned"] = {"server_cpus": server_cpus, "bench_cpus": bench_cpus}
print(json.dumps(params))
EOF
python3 "$here/report.py" "$out"
