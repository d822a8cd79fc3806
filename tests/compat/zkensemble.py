"""A 3-node ZooKeeper-compatible ensemble on 127.0.0.1 for the compat tests.

Target as in zkserver.py: RZK_TEST_TARGET=apache|rzk (default apache), RZK_BIN.
Every node is a real process with its own data dir (holding `myid`) and its
own zoo.cfg; all ports are free loopback ports picked at start.

* apache: Apache ZooKeeper 3.8 (Debian's `zookeeper`), one JVM per node:

    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
         -Dzookeeper.admin.enableServer=false
         -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
         org.apache.zookeeper.server.quorum.QuorumPeerMain <node>/zoo.cfg

* rzk: `$RZK_BIN server <node>/zoo.cfg`.

The zoo.cfg is the same for both targets, e.g. for node 2:

    tickTime=200 initLimit=20 syncLimit=10 (one key per line)
    dataDir=<node>/data            (data/myid holds "2")
    clientPort=<c2>  clientPortAddress=127.0.0.1
    server.1=127.0.0.1:<q1>:<e1>;127.0.0.1:<c1>
    server.2=127.0.0.1:<q2>:<e2>;127.0.0.1:<c2>
    server.3=127.0.0.1:<q3>:<e3>;127.0.0.1:<c3>
    admin.enableServer=false  metricsProvider.httpPort=0
    4lw.commands.whitelist=*

(Apache hands `metricsProvider.*` keys to its metrics provider, the default one
ignores them; rzk reads httpPort=0 as "any free port".)

The roles are read with the `srvr` four-letter word (`Mode: leader|follower`),
and a healthy ensemble is one leader whose `mntr` reports
zk_synced_followers >= 2 plus every node serving a session handshake.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import zkserver
from zkraw import handshake_ok
from zkserver import APACHE_CLASSPATH, HOST, free_port, rzk_bin, target

APACHE_QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

ENSEMBLE_CFG = {
    "tickTime": "200",
    "initLimit": "20",
    "syncLimit": "10",
    "minSessionTimeout": "1000",
    "maxSessionTimeout": "60000",
    "maxClientCnxns": "0",
    "4lw.commands.whitelist": "*",
    "admin.enableServer": "false",
    "metricsProvider.httpPort": "0",
}


def four_letter(port, word, timeout=3.0):
    """Sends a four-letter word, returns the reply ("" when the node is down)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(word.encode())
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return reply.decode(errors="replace")
    except OSError:
        return ""


def srvr_mode(port):
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            out[k] = v.strip()
    return out


class Node:
    def __init__(self, ensemble, sid):
        self.ensemble = ensemble
        self.sid = sid
        self.dir = os.path.join(ensemble.workdir, f"n{sid}")
        self.client_port = free_port()
        self.quorum_port = free_port()
        self.election_port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, f"server-{ensemble.kind}.log")

    @property
    def hosts(self):
        return f"{HOST}:{self.client_port}"

    def write_cfg(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{self.sid}\n")
        cfg = dict(self.ensemble.cfg)
        cfg["dataDir"] = data
        cfg["clientPort"] = str(self.client_port)
        cfg["clientPortAddress"] = HOST
        for n in self.ensemble.nodes:
            cfg[f"server.{n.sid}"] = f"{HOST}:{n.quorum_port}:{n.election_port};{HOST}:{n.client_port}"
        path = os.path.join(self.dir, "zoo.cfg")
        with open(path, "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        return path

    def command(self, cfg_path):
        if self.ensemble.kind == "rzk":
            return [rzk_bin(), "server", cfg_path]
        return ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.admin.enableServer=false",
                "-cp", APACHE_CLASSPATH, APACHE_QUORUM_MAIN, cfg_path]

    def start(self):
        """Launches the process; does not wait (a lone node cannot serve)."""
        if self.alive():
            return
        cmd = self.command(self.write_cfg())
        if self.ensemble.kind == "rzk" and not os.path.exists(cmd[0]):
            raise RuntimeError(f"rzk binary not found at {cmd[0]} (build it or set RZK_BIN)")
        log = open(self.log_path, "ab")
        log.write(("\n=== start: " + " ".join(cmd) + "\n").encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        zkserver._live.add(self)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        zkserver._live.discard(self)

    def mode(self):
        return srvr_mode(self.client_port) if self.alive() else None

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


class ZkEnsemble:
    """Three nodes of one kind; `hosts` is the all-servers connect string."""

    def __init__(self, kind=None, cfg=None, size=3):
        self.kind = kind or target()
        self.workdir = tempfile.mkdtemp(prefix=f"zkensemble-{self.kind}-")
        self.cfg = dict(ENSEMBLE_CFG)
        self.cfg.update(cfg or {})
        self.nodes = []
        for sid in range(1, size + 1):
            self.nodes.append(Node(self, sid))

    @property
    def hosts(self):
        return ",".join(n.hosts for n in self.nodes)

    def hosts_starting_with(self, node):
        """All servers, `node` first (for clients made with randomize_hosts=False)."""
        return ",".join([node.hosts] + [n.hosts for n in self.nodes if n is not node])

    def node(self, sid):
        return self.nodes[sid - 1]

    def start(self, timeout=90.0):
        for n in self.nodes:
            n.start()
        return self.wait_healthy(timeout)

    def leader(self):
        """The node reporting `Mode: leader`, or None."""
        leaders = [n for n in self.nodes if n.mode() == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def followers(self):
        return [n for n in self.nodes if n.mode() == "follower"]

    def _check_alive(self):
        for n in self.nodes:
            if n.proc is not None and not n.alive() and n in zkserver._live:
                raise RuntimeError(f"node {n.sid} exited with {n.proc.returncode}:\n{n.log_tail()}")

    def wait_healthy(self, timeout=90.0):
        """Every node running; one leader with all others synced; all serve sessions."""
        deadline = time.monotonic() + timeout
        want = len(self.nodes) - 1
        while time.monotonic() < deadline:
            self._check_alive()
            leader = self.leader()
            if leader is not None and len(self.followers()) == want:
                synced = mntr(leader.client_port).get("zk_synced_followers")
                if synced is not None and int(synced) >= want and \
                        all(handshake_ok(HOST, n.client_port) for n in self.nodes):
                    return leader
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} ensemble not healthy after {timeout}s: {self.describe()}")

    def wait_new_leader(self, old, timeout=60.0):
        """After `old` died: a leader among the survivors serving sessions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader is not old and handshake_ok(HOST, leader.client_port):
                return leader
            time.sleep(0.05)
        raise RuntimeError(f"no new leader after {timeout}s: {self.describe()}")

    def heal(self, timeout=90.0):
        """Restarts dead nodes and waits until the ensemble is whole again."""
        for n in self.nodes:
            if not n.alive():
                n.start()
        return self.wait_healthy(timeout)

    def kill_leader(self):
        leader = self.leader()
        if leader is None:
            raise RuntimeError(f"no leader to kill: {self.describe()}")
        leader.kill()
        return leader

    def describe(self):
        parts = []
        for n in self.nodes:
            parts.append(f"node {n.sid} (client port {n.client_port}): "
                         f"{'running' if n.alive() else 'down'}, mode {n.mode()}")
        tails = "\n".join(f"--- node {n.sid} log ---\n{n.log_tail(1500)}" for n in self.nodes)
        return "; ".join(parts) + "\n" + tails

    def cleanup(self):
        for n in self.nodes:
            n.kill()
        if os.environ.get("RZK_KEEP_DIRS") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
