#!/usr/bin/env bash
# Every test of issue 5 (metrics, admin API, logs, dashboard, image), from a
# fresh Debian bookworm machine with Rust and Docker:
#
#   tests/observe.sh            # all
#   tests/observe.sh --no-docker
#   RZK_BINARY=target/debug/rzk tests/observe.sh   # image from the debug build
#                                                  # (no release build; ~11 MB stripped)
#
# Installs (apt, as root, only what is missing):
#   zookeeper libservlet-api-java   Apache ZooKeeper 3.8 + Jetty's servlet API: the
#                                   AdminServer oracle, and zkCli for the image test
#   prometheus                      real Prometheus scraping rzk
#   debootstrap docker.io curl      the image's base, built locally (no registry)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
docker=1
[ "${1:-}" = --no-docker ] && docker=0

need=()
for pkg in zookeeper libservlet-api-java prometheus curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$docker" = 1 ]; then
  for pkg in debootstrap docker.io; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Unit tests of the metrics and admin modules, then the integration tests
# (real rzk server processes, Apache ZooKeeper, Prometheus).
cargo test --lib server::
cargo test --test observe_http --test observe_apache --test observe_prometheus -- --nocapture

if [ "$docker" = 1 ]; then
  tests/docker/build-image.sh
  tests/docker/ensemble-test.sh
fi
