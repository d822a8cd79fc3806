#!/usr/bin/env bash
# Installs what the test suites need on a fresh machine (Debian 12 + Rust +
# Python 3.11): Apache ZooKeeper 3.8 (the differential oracle and the source
# of zkCli.sh), tmux (the interactive CLI test). Idempotent; needs root.
set -euo pipefail
need=()
for pkg in zookeeper tmux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}" default-jre-headless
fi
