#!/usr/bin/env bash
# Installs what the test suites need on a fresh machine (Debian 12 + Rust +
# Python 3.11): Apache ZooKeeper 3.8 (the differential oracle and the source
# of zkCli.sh), tmux (the interactive CLI test), Jetty's servlet API (Apache's
# AdminServer, the oracle of tests/observe_apache.rs), Prometheus (scrapes rzk
# in tests/observe_prometheus.rs), zookeeper-bin (Apache's C client, cli_mt),
# libcurator-recipes-java (Apache Curator 5, tests/compat/test_curator.py),
# debootstrap and curl (the locally built container base), iproute2 and
# iptables (network namespaces and partitions in tests/ensemble_faults.rs).
# Idempotent; needs root.
set -euo pipefail
need=()
for pkg in zookeeper zookeeper-bin libcurator-recipes-java tmux libservlet-api-java prometheus debootstrap curl iproute2 iptables; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}" default-jre-headless
fi
