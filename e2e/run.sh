#!/usr/bin/env bash
# End-to-end suite of the rzk operator on a kind cluster. See e2e/README.md.
#
# Creates a kind cluster, builds and loads the rzk image, installs the operator with Helm,
# applies a 3-member ZookeeperCluster and, while a writer pod writes continuously:
#   1. changes the image tag, 2. changes a zoo.cfg key, 3. scales 3 -> 5 -> 3,
#   4. deletes the leader pod;
# then asserts that no acknowledged write was lost and that the cluster never reported
# Available=False during the operator-driven steps (1-3).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLUSTER="${KIND_CLUSTER:-rzk-e2e}"
NS="${E2E_NAMESPACE:-rzk-e2e}"
ZK=e2e
TIMEOUT="${E2E_TIMEOUT:-600}"
WRITER_IMAGE="${WRITER_IMAGE:-python:3.12-slim}"

log() { printf '\n=== %s: %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

for tool in kind kubectl helm docker; do
    command -v "$tool" >/dev/null || die "$tool not found (see e2e/README.md)"
done

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        log "failure: collecting state"
        kubectl -n "$NS" get zk,sts,pods,pvc -o wide || true
        kubectl -n "$NS" get events --sort-by=.lastTimestamp | tail -n 40 || true
        kubectl -n rzk-system logs deploy/rzk-operator --tail=100 || true
    fi
    if [ -z "${KEEP_CLUSTER:-}" ]; then
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT

log "kind cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s

log "build and load the rzk image (two tags: the image change in step 1 is a tag change)"
docker build -t rzk:e2e-a "$ROOT"
docker tag rzk:e2e-a rzk:e2e-b
kind load docker-image rzk:e2e-a rzk:e2e-b --name "$CLUSTER"

log "install the operator"
kubectl apply --server-side -f "$ROOT/crds/"
helm upgrade --install rzk-operator "$ROOT/charts/rzk-operator" \
    --namespace rzk-system --create-namespace \
    --set image.tag=e2e-a --set image.pullPolicy=Never --wait --timeout 5m

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -

log "apply a 3-member ZookeeperCluster"
cat <<YAML | kubectl apply -f -
apiVersion: rzk.dev/v1alpha1
kind: ZookeeperCluster
metadata:
  name: $ZK
  namespace: $NS
spec:
  replicas: 3
  image: rzk:e2e-a
  imagePullPolicy: Never
  storage:
    size: 1Gi
    reclaimPolicy: Delete
YAML

zkget() { kubectl -n "$NS" get zk "$ZK" -o jsonpath="$1"; }

# Wait until the cluster is Running with N ready members and every pod on the current hash.
wait_running() {
    local want="$1" deadline=$((SECONDS + TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        local phase ready hash stale
        phase="$(zkget '{.status.phase}' 2>/dev/null || true)"
        ready="$(zkget '{.status.readyReplicas}' 2>/dev/null || true)"
        hash="$(zkget '{.status.currentHash}' 2>/dev/null || true)"
        stale="$(kubectl -n "$NS" get pods -l app.kubernetes.io/instance=$ZK \
            -o jsonpath='{range .items[*]}{.metadata.annotations.rzk\.dev/config-hash}{"\n"}{end}' \
            | grep -vcx "$hash" || true)"
        if [ "$phase" = Running ] && [ "$ready" = "$want" ] && [ "$stale" = 0 ]; then
            return 0
        fi
        sleep 3
    done
    die "cluster not Running with $want ready members after ${TIMEOUT}s (phase=$phase ready=$ready)"
}

wait_running 3
HOSTS="$(zkget '{.status.connectionString}')"

log "start the writer"
kubectl -n "$NS" create configmap e2e-writer --from-file="$ROOT/e2e/writer.py" \
    --dry-run=client -o yaml | kubectl apply -f -
cat <<YAML | kubectl apply -f -
apiVersion: v1
kind: Pod
metadata:
  name: e2e-writer
  namespace: $NS
spec:
  restartPolicy: Never
  containers:
    - name: writer
      image: $WRITER_IMAGE
      command: ["sh", "-c", "pip install --quiet kazoo && python /w/writer.py write '$HOSTS' /tmp/stop"]
      volumeMounts: [{name: w, mountPath: /w}]
  volumes: [{name: w, configMap: {name: e2e-writer}}]
YAML
kubectl -n "$NS" wait --for=condition=Ready pod/e2e-writer --timeout=300s
until kubectl -n "$NS" logs e2e-writer | grep -q '^ACK '; do sleep 2; done

# Record Available in the background; the operator-driven steps must never lose it.
AVAIL_LOG="$(mktemp)"
( while true; do
    echo "$(date +%s) $(zkget '{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" >> "$AVAIL_LOG"
    sleep 2
  done ) &
WATCHER=$!

log "step 1: image tag change (rolling restart, leader last)"
kubectl -n "$NS" patch zk "$ZK" --type merge -p '{"spec":{"image":"rzk:e2e-b"}}'
sleep 5; wait_running 3

log "step 2: zoo.cfg key change"
kubectl -n "$NS" patch zk "$ZK" --type merge -p '{"spec":{"config":{"tickTime":"2500"}}}'
sleep 5; wait_running 3

log "step 3: scale 3 -> 5 -> 3"
kubectl -n "$NS" patch zk "$ZK" --type merge -p '{"spec":{"replicas":5}}'
sleep 5; wait_running 5
kubectl -n "$NS" patch zk "$ZK" --type merge -p '{"spec":{"replicas":3}}'
sleep 5; wait_running 3
[ "$(kubectl -n "$NS" get pvc -l app.kubernetes.io/instance=$ZK -o name | wc -l)" = 3 ] \
    || die "PVCs of removed members were not deleted (reclaimPolicy Delete)"

kill "$WATCHER" 2>/dev/null || true
if grep -q ' False$' "$AVAIL_LOG"; then
    die "Available was False during an operator-driven step: $(grep ' False$' "$AVAIL_LOG" | head -n 3)"
fi

log "step 4: delete the leader pod"
LEADER="$(zkget '{.status.leader}')"
kubectl -n "$NS" delete pod "$LEADER" --wait=false
sleep 5; wait_running 3

log "stop the writer and check every acknowledged write"
kubectl -n "$NS" exec e2e-writer -- touch /tmp/stop
kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/e2e-writer --timeout=120s
kubectl -n "$NS" logs e2e-writer > "$AVAIL_LOG.writer"
grep '^GAP ' "$AVAIL_LOG.writer" || true
kubectl -n "$NS" create configmap e2e-acks --from-file=acks="$AVAIL_LOG.writer" \
    --dry-run=client -o yaml | kubectl apply -f -
cat <<YAML | kubectl apply -f -
apiVersion: v1
kind: Pod
metadata:
  name: e2e-checker
  namespace: $NS
spec:
  restartPolicy: Never
  containers:
    - name: checker
      image: $WRITER_IMAGE
      command: ["sh", "-c", "pip install --quiet kazoo && python /w/writer.py check '$HOSTS' /acks/acks"]
      volumeMounts: [{name: w, mountPath: /w}, {name: acks, mountPath: /acks}]
  volumes:
    - {name: w, configMap: {name: e2e-writer}}
    - {name: acks, configMap: {name: e2e-acks}}
YAML
kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/e2e-checker --timeout=300s \
    || die "checker failed: $(kubectl -n "$NS" logs e2e-checker)"
kubectl -n "$NS" logs e2e-checker

log "PASS"
