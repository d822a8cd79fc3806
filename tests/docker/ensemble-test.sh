#!/usr/bin/env bash
# Runs the rzk image the way users do and checks it serves ZooKeeper clients.
#
#   tests/docker/build-image.sh && tests/docker/ensemble-test.sh
#
# 1. One container with the image's defaults (entrypoint `rzk server
#    /conf/zoo.cfg`): non-root, /data a volume, the documented ports exposed;
#    Apache's zkCli (Debian's `zookeeper` package, on the host) writes and
#    reads through the published client port; /health/live, /health/ready and
#    /metrics answer; the data survives a container restart.
# 2. Three containers as one ensemble (server.1..3, ids from the hostnames
#    zk-0..2 via --myid-from-hostname) on a private Docker network. While
#    `rzk server` has no replication the servers report Mode: standalone and
#    the quorum part (one leader, write/read across servers, stop the leader,
#    a new leader serves) is SKIPPED with a message; it runs as soon as they
#    report leader/follower.
# The host talks to the containers only through ports published on 127.0.0.1.
#
# Needs (Debian): docker.io, zookeeper (zkCli), curl. Env: RZK_IMAGE (default rzk:test).
set -euo pipefail
image=${RZK_IMAGE:-rzk:test}
zkcli=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
run=rzk-test-$$
net=$run-net
work=$(mktemp -d)
passed=0
failed=0

cleanup() {
  docker ps -aq --filter "label=rzk-test=$run" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  docker volume rm "$run-data" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

docker image inspect "$image" >/dev/null 2>&1 || { echo "no image $image: run tests/docker/build-image.sh" >&2; exit 1; }
[ -x "$zkcli" ] || { echo "$zkcli is missing: apt-get install zookeeper" >&2; exit 1; }

# A four-letter word through a published port.
fourlw() { # host:port word
  local host=${1%:*} port=${1##*:}
  timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port && printf '%s' '$2' >&3 && cat <&3" 2>/dev/null || true
}
published() { docker port "$1" "$2" | grep -m1 '^127\.0\.0\.1:' ; }
wait_serving() { # container host:port
  for _ in $(seq 1 150); do
    [ "$(fourlw "$2" ruok)" = imok ] && return 0
    if [ "$(docker inspect -f '{{.State.Running}}' "$1")" != true ]; then
      docker logs "$1" 2>&1 | tail -20; return 1
    fi
    sleep 0.2
  done
  docker logs "$1" 2>&1 | tail -20
  return 1
}
zk() { # host:port zkCli args...
  local server=$1; shift
  "$zkcli" -server "$server" "$@" 2>&1
}
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

docker network create "$net" >/dev/null

echo "== one container, image defaults"
c=$run-single
docker volume create --label "rzk-test=$run" "$run-data" >/dev/null
docker run -d --name "$c" --label "rzk-test=$run" --network "$net" -v "$run-data:/data" \
  -p 127.0.0.1::2181 -p 127.0.0.1::7000 -p 127.0.0.1::8080 "$image" >/dev/null
client=$(published "$c" 2181); metrics=$(published "$c" 7000); admin=$(published "$c" 8080)
check "container serves clients ($client)" wait_serving "$c" "$client"
check "runs as uid 1000, not root" test "$(docker exec "$c" id -u)" = 1000
check "entrypoint is rzk" test "$(docker inspect -f '{{json .Config.Entrypoint}}' "$image")" = '["/usr/local/bin/rzk"]'
check "default command serves /conf/zoo.cfg" test "$(docker inspect -f '{{json .Config.Cmd}}' "$image")" = '["server","/conf/zoo.cfg"]'
ports=$(docker inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$image")
for p in 2181 2888 3888 7000 8080; do
  check "port $p exposed" grep -q "$p/tcp" <<<"$ports"
done
check "/data is a volume" grep -q '"/data"' <<<"$(docker inspect -f '{{json .Config.Volumes}}' "$image")"
out=$(zk "$client" create /docker-test hello)
check "zkCli create" grep -q "Created /docker-test" <<<"$out"
out=$(zk "$client" get /docker-test)
check "zkCli get" grep -qx hello <<<"$out"
check "/health/live 200" test "$(http_status "http://$admin/health/live")" = 200
check "/health/ready 200" test "$(http_status "http://$admin/health/ready")" = 200
check "/metrics has znode_count" grep -q '^znode_count ' <<<"$(curl -s --max-time 5 "http://$metrics/metrics")"
check "admin ruok" grep -q '"error": null' <<<"$(curl -s --max-time 5 "http://$admin/commands/ruok")"
# A new container on the same volume finds the data: it lives in /data.
docker stop -t 10 "$c" >/dev/null
check "stops cleanly on SIGTERM" grep -q "shutting down" <<<"$(docker logs "$c" 2>&1)"
docker rm -f "$c" >/dev/null
c=$run-single2
docker run -d --name "$c" --label "rzk-test=$run" --network "$net" -v "$run-data:/data" \
  -p 127.0.0.1::2181 "$image" >/dev/null
client=$(published "$c" 2181)
check "a new container on the volume serves" wait_serving "$c" "$client"
out=$(zk "$client" get /docker-test)
check "data survives in the volume" grep -qx hello <<<"$out"
check "logs say it recovered the tree" grep -q "recovered data tree" <<<"$(docker logs "$c" 2>&1)"
docker rm -f "$c" >/dev/null

echo "== three containers, one ensemble"
cfg=$work/zoo.cfg
cat > "$cfg" <<'EOF'
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/data
clientPort=2181
clientPortAddress=0.0.0.0
4lw.commands.whitelist=srvr,ruok,mntr,stat
metricsProvider.httpPort=7000
admin.serverPort=8080
EOF
# RZK_REPLICATION=0 runs the three standalone (no quorum checks).
if [ "${RZK_REPLICATION:-1}" = 1 ]; then
  printf 'server.%s=zk-%s:2888:3888;2181\n' 1 0 2 1 3 2 >> "$cfg"
fi
chmod 644 "$cfg"
declare -A client_of
for i in 0 1 2; do
  c=$run-zk-$i
  docker run -d --name "$c" --hostname "zk-$i" --network-alias "zk-$i" --label "rzk-test=$run" \
    --network "$net" -p 127.0.0.1::2181 -p 127.0.0.1::8080 \
    -v "$cfg:/conf/zoo.cfg:ro" "$image" server /conf/zoo.cfg --myid-from-hostname >/dev/null
  client_of[$c]=$(published "$c" 2181)
done
modes=""
for i in 0 1 2; do
  c=$run-zk-$i
  check "zk-$i serves clients" wait_serving "$c" "${client_of[$c]}"
  check "zk-$i took id $((i + 1)) from its hostname" \
    test "$(docker exec "$c" cat /data/myid)" = "$((i + 1))"
  modes+="$(fourlw "${client_of[$c]}" srvr | sed -n 's/^Mode: //p') "
done
echo "modes: $modes"
if [ "${RZK_REPLICATION:-1}" != 1 ]; then
  echo "SKIP: 3-node quorum and leader-stop checks (RZK_REPLICATION=0: no server.N lines)"
else
  leader=""
  for _ in $(seq 1 150); do
    for i in 0 1 2; do
      c=$run-zk-$i
      [ "$(fourlw "${client_of[$c]}" srvr | sed -n 's/^Mode: //p')" = leader ] && leader=$c
    done
    [ -n "$leader" ] && break
    sleep 0.2
  done
  check "one server leads" test -n "$leader"
  followers=()
  for i in 0 1 2; do [ "$run-zk-$i" != "$leader" ] && followers+=("$run-zk-$i"); done
  out=$(zk "${client_of[${followers[0]}]}" create /ensemble one)
  check "write through a follower" grep -q "Created /ensemble" <<<"$out"
  out=$(zk "${client_of[$leader]}" sync /ensemble; zk "${client_of[$leader]}" get /ensemble)
  check "read it on the leader" grep -qx one <<<"$out"
  docker stop -t 10 "$leader" >/dev/null
  echo "stopped the leader $leader"
  new_leader=""
  for _ in $(seq 1 300); do
    for c in "${followers[@]}"; do
      [ "$(fourlw "${client_of[$c]}" srvr | sed -n 's/^Mode: //p')" = leader ] && new_leader=$c
    done
    [ -n "$new_leader" ] && break
    sleep 0.2
  done
  check "a new leader is elected among the other two" test -n "$new_leader"
  for c in "${followers[@]}"; do
    out=$(zk "${client_of[$c]}" get /ensemble)
    check "$c still serves the data" grep -qx one <<<"$out"
  done
  out=$(zk "${client_of[${followers[1]}]}" create /after-leader-stop two)
  check "writes go on with two of three" grep -q "Created /after-leader-stop" <<<"$out"
fi

size=$(docker image inspect "$image" --format '{{.Size}}')
echo "image $image: $size bytes ($((size / 1024 / 1024)) MiB)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
