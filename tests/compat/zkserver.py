"""Start and stop a ZooKeeper-compatible server for the compat tests.

The target is chosen with RZK_TEST_TARGET=apache|rzk (default apache).

* rzk: `$RZK_BIN server <dir>/zoo.cfg` (RZK_BIN defaults to target/debug/rzk at
  the repository root). rzk is expected to read every setting from zoo.cfg.
* apache: Apache ZooKeeper 3.8 from Debian's `zookeeper` package, started as

    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
         -Dzookeeper.admin.enableServer=false
         -Djute.maxbuffer=<N>                      (only when jute.maxbuffer is set)
         -Dznode.container.checkIntervalMs=<N>     (only when set)
         -Dznode.container.maxPerMinute=<N>        (only when set)
         -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
         org.apache.zookeeper.server.ZooKeeperServerMain <dir>/zoo.cfg

  Apache turns every zoo.cfg key it does not know into the system property
  "zookeeper.<key>", so 4lw.commands.whitelist, extendedTypesEnabled and
  DigestAuthenticationProvider.superDigest work from zoo.cfg. jute.maxbuffer
  and znode.container.* are read by Apache from system properties WITHOUT the
  "zookeeper." prefix, so for Apache they are also passed as -D flags. The
  zoo.cfg written is the same for both targets.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from zkraw import handshake_ok

HOST = "127.0.0.1"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APACHE_CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
APACHE_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
# zoo.cfg keys that Apache 3.8 only honours as plain (unprefixed) system properties.
APACHE_SYSPROP_KEYS = ("jute.maxbuffer", "znode.container.checkIntervalMs", "znode.container.maxPerMinute")

_live = set()


def target():
    t = os.environ.get("RZK_TEST_TARGET", "apache")
    if t not in ("apache", "rzk"):
        raise RuntimeError(f"RZK_TEST_TARGET must be apache or rzk, not {t!r}")
    return t


def rzk_bin():
    b = os.environ.get("RZK_BIN", "target/debug/rzk")
    return b if os.path.isabs(b) else os.path.join(REPO_ROOT, b)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


DEFAULT_CFG = {
    "tickTime": "200",
    "minSessionTimeout": "1000",
    "maxSessionTimeout": "30000",
    "maxClientCnxns": "0",
    "4lw.commands.whitelist": "*",
}


class ZkServer:
    """One server process on a free loopback port with its own data dir."""

    def __init__(self, kind=None, cfg=None, workdir=None):
        self.kind = kind or target()
        self.owns_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"zkcompat-{self.kind}-")
        self.port = free_port()
        self.cfg = dict(DEFAULT_CFG)
        self.cfg.update(cfg or {})
        self.proc = None
        self.log_path = os.path.join(self.workdir, f"server-{self.kind}.log")

    @property
    def data_dir(self):
        return self.cfg.get("dataDir", os.path.join(self.workdir, "data"))

    @property
    def hosts(self):
        return f"{HOST}:{self.port}"

    def write_cfg(self):
        cfg = dict(self.cfg)
        cfg.setdefault("dataDir", os.path.join(self.workdir, "data"))
        cfg["clientPort"] = str(self.port)
        cfg["clientPortAddress"] = HOST
        os.makedirs(cfg["dataDir"], exist_ok=True)
        if "dataLogDir" in cfg:
            os.makedirs(cfg["dataLogDir"], exist_ok=True)
        path = os.path.join(self.workdir, "zoo.cfg")
        with open(path, "w") as f:
            for k, v in cfg.items():
                f.write(f"{k}={v}\n")
        return path

    def command(self, cfg_path):
        if self.kind == "rzk":
            return [rzk_bin(), "server", cfg_path]
        cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Dzookeeper.admin.enableServer=false"]
        for key in APACHE_SYSPROP_KEYS:
            if key in self.cfg:
                cmd.append(f"-D{key}={self.cfg[key]}")
        cmd += ["-cp", APACHE_CLASSPATH, APACHE_MAIN, cfg_path]
        return cmd

    def start(self, timeout=60.0):
        cfg_path = self.write_cfg()
        cmd = self.command(cfg_path)
        if self.kind == "rzk" and not os.path.exists(cmd[0]):
            raise RuntimeError(f"rzk binary not found at {cmd[0]} (build it or set RZK_BIN)")
        log = open(self.log_path, "ab")
        log.write(("\n=== start: " + " ".join(cmd) + "\n").encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _live.add(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if handshake_ok(HOST, self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server not ready after {timeout}s:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        _live.discard(self)

    def stop(self):
        """Graceful stop (SIGTERM), escalating to SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        _live.discard(self)

    def restart(self, timeout=60.0):
        self.stop()
        return self.start(timeout)

    def cleanup(self):
        self.kill()
        if self.owns_workdir and os.environ.get("RZK_KEEP_DIRS") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


def kill_all():
    for s in list(_live):
        s.kill()
