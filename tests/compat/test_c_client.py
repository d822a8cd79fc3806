"""Apache ZooKeeper's C client (Debian's zookeeper-bin `cli_mt`, built on
libzookeeper-mt) against the server: create (plain, sequential, ephemeral),
set, get, ls, exists, delete, and the error codes it reports."""

import os
import subprocess
import time

import pytest

CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CLI_MT) and os.environ.get("RZK_REQUIRE_ZOOKEEPER") != "1",
    reason="zookeeper-bin (the C client) is not installed",
)


def run_cli(hosts, commands):
    """Feeds commands one by one (cli_mt answers asynchronously) and returns
    everything it printed."""
    p = subprocess.Popen([CLI_MT, hosts], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        for c in commands:
            p.stdin.write(c + "\n")
            p.stdin.flush()
            time.sleep(0.3)
        p.stdin.write("quit\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    return out


def test_c_client_crud(server):
    out = run_cli(server.hosts, [
        "create /cc",
        "set /cc hello",
        "get /cc",
        "create +s /cc/seq-",
        "create +e /cc/eph",
        "ls /cc",
        "exists /cc-nope",
        "delete /cc",
        "delete /cc/seq-0000000000",
        "delete /cc/eph",
        "delete /cc",
        "exists /cc",
    ])
    assert "CONNECTED_STATE" in out, out
    assert "[/cc]: rc = 0\n\tname = /cc" in out, out
    assert " value_len = 5\nhello\n" in out, out
    assert "name = /cc/seq-0000000000" in out, out
    assert "name = /cc/eph" in out, out
    assert "/cc: rc = 0\n\teph\n\tseq-0000000000\n" in out or "/cc: rc = 0\n\tseq-0000000000\n\teph\n" in out, out
    assert "Error -101 for /cc-nope" in out, out
    assert "/cc: rc = -111" in out, out  # not empty
    assert "Error -101 for /cc" in out, out  # gone at the end
