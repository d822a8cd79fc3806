"""Apache's own zkCli.sh (Debian package `zookeeper`) as a black-box client.

One command per invocation: `zkCli.sh -server 127.0.0.1:PORT <cmd> <args>`.
zkCli prints results of reads on stdout and "Created ..."/errors on stderr.
"""

import re
import subprocess

import pytest

from kazoo.client import KazooClient

from conftest import wait_for

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CONNECTED = "WatchedEvent state:SyncConnected type:None path:null\n"


@pytest.fixture(scope="module")
def cli_server():
    from zkserver import ZkServer

    s = ZkServer(cfg={"extendedTypesEnabled": "true", "maxSessionTimeout": "2000"})
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


@pytest.fixture(scope="module")
def zk(cli_server):
    c = KazooClient(hosts=cli_server.hosts, timeout=10.0)
    c.start(timeout=30)
    yield c
    c.stop()
    c.close()


class Cli:
    def __init__(self, server):
        self.server = server

    def __call__(self, *args):
        p = subprocess.run([ZKCLI, "-server", self.server.hosts, *args], capture_output=True, text=True,
                           timeout=90, stdin=subprocess.DEVNULL)
        # zkCli's event thread prints the connected event while the main thread
        # prints the command's output: either may come first, so cut the
        # event block out instead of splitting on it.
        out = p.stdout.replace("\nWATCHER::\n\n" + CONNECTED, "", 1)
        if out.startswith("Connecting to "):
            out = out.split("\n", 1)[1] if "\n" in out else ""
        err = "\n".join(line for line in p.stderr.splitlines() if not line.startswith("SLF4J"))
        return p.returncode, out, err.strip()


@pytest.fixture
def cli(cli_server):
    return Cli(cli_server)


STAT_KEYS = ["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion", "aclVersion",
             "ephemeralOwner", "dataLength", "numChildren"]


def parse_stat(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+) = (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_create_get_set_stat(cli, zk):
    assert cli("create", "/cli1", "hello") == (0, "", "Created /cli1")
    assert zk.get("/cli1")[0] == b"hello"
    rc, out, _ = cli("get", "/cli1")
    assert rc == 0 and out == "hello\n"
    rc, out, _ = cli("get", "-s", "/cli1")
    lines = out.splitlines()
    assert lines[0] == "hello"
    st = parse_stat(out)
    assert list(st) == STAT_KEYS
    assert st["cZxid"] == st["mZxid"] == st["pZxid"] and st["cZxid"].startswith("0x")
    assert (st["dataVersion"], st["dataLength"], st["numChildren"], st["ephemeralOwner"]) == ("0", "5", "0", "0x0")
    assert cli("set", "/cli1", "world")[0] == 0
    assert zk.get("/cli1")[0] == b"world"
    rc, out, _ = cli("set", "-s", "/cli1", "again")
    st = parse_stat(out)
    assert rc == 0 and st["dataVersion"] == "2" and st["dataLength"] == "5"
    assert int(st["mZxid"], 16) > int(st["cZxid"], 16)
    rc, out, _ = cli("stat", "/cli1")
    assert rc == 0 and parse_stat(out)["dataVersion"] == "2"


def test_errors(cli, zk):
    zk.create("/cli2/child", makepath=True)
    assert cli("create", "/cli2", "x") == (1, "", "Node already exists: /cli2")
    assert cli("get", "/cli-nope") == (1, "", "Node does not exist: /cli-nope")
    assert cli("stat", "/cli-nope") == (1, "", "Node does not exist: /cli-nope")
    assert cli("ls", "/cli-nope") == (1, "", "Node does not exist: /cli-nope")
    assert cli("delete", "/cli2") == (1, "", "Node not empty: /cli2")
    assert cli("set", "-v", "5", "/cli2", "x") == (1, "", "version No is not valid : /cli2")
    assert cli("delete", "-v", "3", "/cli2/child") == (1, "", "version No is not valid : /cli2/child")
    assert cli("create", "/cli-nope/x") == (1, "", "Node does not exist: /cli-nope/x")


def test_ls_and_sequential_ephemeral(cli, zk):
    zk.create("/cli3")
    rc, _, err = cli("create", "-s", "/cli3/s-", "x")
    assert rc == 0 and err == "Created /cli3/s-0000000000"
    rc, _, err = cli("create", "-e", "/cli3/e", "x")
    assert rc == 0 and err == "Created /cli3/e"
    # zkCli exits without closing its session: the ephemeral lives until the
    # session expires (maxSessionTimeout is 2 s on this server)
    assert zk.exists("/cli3/e").ephemeralOwner != 0
    wait_for(lambda: zk.exists("/cli3/e") is None, timeout=30, msg="zkCli ephemeral expired")
    zk.create("/cli3/k/deep", makepath=True)
    rc, out, _ = cli("ls", "/cli3")
    assert rc == 0 and out == "[k, s-0000000000]\n"
    rc, out, _ = cli("ls", "-s", "/cli3")
    assert out.splitlines()[0] == "[k, s-0000000000]"
    assert parse_stat(out)["numChildren"] == "2" and parse_stat(out)["cversion"] == "4"
    rc, out, _ = cli("ls", "-R", "/cli3")
    assert rc == 0 and out.splitlines() == ["/cli3", "/cli3/k", "/cli3/s-0000000000", "/cli3/k/deep"]
    rc, out, _ = cli("ls", "/")
    names = out.strip().strip("[]").split(", ")
    assert "zookeeper" in names and "cli3" in names
    assert cli("getAllChildrenNumber", "/cli3") == (0, "3\n", "")


def test_delete_and_deleteall(cli, zk):
    zk.create("/cli4/a/b", makepath=True)
    zk.create("/cli4/c")
    assert cli("delete", "/cli4/c")[0] == 0
    assert zk.exists("/cli4/c") is None
    assert cli("deleteall", "/cli4")[0] == 0
    assert zk.exists("/cli4") is None


def test_acls(cli, zk):
    zk.create("/cli5")
    rc, out, _ = cli("getAcl", "/cli5")
    assert rc == 0 and out == "'world,'anyone\n: cdrwa\n"
    assert cli("setAcl", "/cli5", "world:anyone:r")[0] == 0
    acls, st = zk.get_acls("/cli5")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(1, "world", "anyone")] and st.aversion == 1
    assert cli("set", "/cli5", "x") == (1, "", "Insufficient permission : /cli5")
    zk.create("/cli6")
    assert cli("setAcl", "/cli6", "digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa")[0] == 0
    assert cli("get", "/cli6") == (1, "", "Insufficient permission : /cli6")
    assert cli("getAcl", "/cli6") == (1, "", "Insufficient permission : /cli6")
    rc, out, _ = cli("getAcl", "-s", "/zookeeper")
    assert out.splitlines()[:2] == ["'world,'anyone", ": cdrwa"]
    st = parse_stat(out)
    assert st["cZxid"] == "0x0" and st["numChildren"] == "2"


def test_misc_commands(cli, zk):
    zk.create("/cli7")
    assert cli("sync", "/cli7") == (0, "Sync is OK\n", "")
    assert cli("getEphemerals", "/cli7") == (0, "[]\n", "")
    assert cli("whoami") == (0, "Auth scheme: User\nip: 127.0.0.1\n", "")
    assert cli("config") == (0, "\n", "")
    assert cli("create", "-c", "/cli7/cont") == (0, "", "Created /cli7/cont")
    assert cli("create", "-t", "100000", "/cli7/ttl", "d") == (0, "", "Created /cli7/ttl")
    assert zk.get("/cli7/ttl")[0] == b"d"
    rc, _, err = cli("create", "bad")
    assert rc == 1 and err == "Path must start with / character"
