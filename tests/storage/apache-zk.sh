#!/usr/bin/env bash
# Runs Apache ZooKeeper 3.8 standalone from Debian's `zookeeper` package, in
# the foreground, on loopback only. Used by hand and as the reference for the
# command line in tests/storage_compat.rs.
#
#   tests/storage/apache-zk.sh DATA_DIR PORT [DATA_LOG_DIR]
#
# Needs: apt-get install zookeeper (pulls in a JRE and libslf4j-java).
set -euo pipefail
data_dir=$(realpath -m "${1:?data dir}")
port=${2:?client port}
log_dir=$(realpath -m "${3:-$data_dir}")
mkdir -p "$data_dir" "$log_dir"
# ZooKeeper only looks inside version-2/, so the config can live beside it.
cfg=$data_dir/zoo.cfg
cat > "$cfg" <<CFG
tickTime=2000
dataDir=$data_dir
dataLogDir=$log_dir
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
CFG
# zookeeper.jar's manifest Class-Path names its dependencies in /usr/share/java;
# slf4j-simple is only a logging binding (stderr, INFO).
exec java -Dzookeeper.admin.enableServer=false \
  -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
