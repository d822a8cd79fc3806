"""Four-letter words on the client port, checked for the structure tools parse."""

import re
import socket

import pytest

import zkraw
from zkraw import ZkRaw
from zkserver import HOST, ZkServer


def four(server, word, timeout=15.0):
    s = socket.create_connection((HOST, server.port), timeout=timeout)
    try:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.decode()
    finally:
        s.close()


@pytest.fixture(scope="module")
def fl_server():
    s = ZkServer(cfg={"4lw.commands.whitelist": "*"})
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


@pytest.fixture
def client(fl_server):
    c = ZkRaw(HOST, fl_server.port)
    yield c
    c.close()


SRVR_PREFIXES = ["Zookeeper version: ", "Latency min/avg/max: ", "Received: ", "Sent: ", "Connections: ",
                 "Outstanding: ", "Zxid: 0x", "Mode: standalone", "Node count: "]


def parse_srvr(text):
    lines = [line for line in text.splitlines() if line]
    out = {}
    for line in lines:
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k] = v
    return lines, out


def test_ruok(fl_server):
    assert four(fl_server, "ruok") == "imok"


def test_srvr(fl_server, client):
    text = four(fl_server, "srvr")
    lines, kv = parse_srvr(text)
    assert len(lines) == len(SRVR_PREFIXES)
    for line, prefix in zip(lines, SRVR_PREFIXES):
        assert line.startswith(prefix), (line, prefix)
    assert re.fullmatch(r"\d+/[\d.]+/\d+", kv["Latency min/avg/max"])
    for k in ("Received", "Sent", "Connections", "Outstanding", "Node count"):
        assert re.fullmatch(r"\d+", kv[k]), k
    assert int(kv["Connections"]) >= 1
    before = int(kv["Node count"])
    err, path, st = client.create("/fl-srvr", b"")
    assert err == 0
    _, kv2 = parse_srvr(four(fl_server, "srvr"))
    assert int(kv2["Node count"]) == before + 1
    assert int(kv2["Zxid"], 16) >= st["czxid"]


def test_stat_lists_clients(fl_server, client):
    text = four(fl_server, "stat")
    lines = text.splitlines()
    assert lines[0].startswith("Zookeeper version: ")
    assert lines[1] == "Clients:"
    port = client.sock.getsockname()[1]
    assert any(line.startswith(f" /127.0.0.1:{port}[") for line in lines), text
    for prefix in SRVR_PREFIXES[1:]:
        assert any(line.startswith(prefix) for line in lines), prefix


def test_mntr(fl_server, client):
    text = four(fl_server, "mntr")
    metrics = {}
    for line in text.splitlines():
        if not line:
            continue
        key, value = line.split("\t")
        assert re.fullmatch(r"zk_\S+", key), line  # per-namespace keys embed node names
        metrics[key] = value
    assert metrics["zk_server_state"] == "standalone"
    for key in ("zk_version", "zk_avg_latency", "zk_max_latency", "zk_min_latency", "zk_packets_received",
                "zk_packets_sent", "zk_num_alive_connections", "zk_outstanding_requests", "zk_znode_count",
                "zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size",
                "zk_open_file_descriptor_count", "zk_max_file_descriptor_count"):
        assert key in metrics, key
    for key in ("zk_znode_count", "zk_watch_count", "zk_ephemerals_count", "zk_num_alive_connections"):
        assert re.fullmatch(r"\d+", metrics[key]), key
    _, kv = parse_srvr(four(fl_server, "srvr"))
    assert metrics["zk_znode_count"] == kv["Node count"]
    before = int(metrics["zk_ephemerals_count"])
    assert client.create("/fl-mntr-e", b"", flags=zkraw.EPHEMERAL)[0] == 0
    after = dict(line.split("\t") for line in four(fl_server, "mntr").splitlines() if line)
    assert int(after["zk_ephemerals_count"]) == before + 1


def test_conf(fl_server):
    kv = dict(line.split("=", 1) for line in four(fl_server, "conf").splitlines() if "=" in line)
    assert kv["clientPort"] == str(fl_server.port)
    assert kv["tickTime"] == "200"
    assert kv["maxClientCnxns"] == "0"
    assert kv["minSessionTimeout"] == "1000" and kv["maxSessionTimeout"] == "30000"
    assert kv["dataDir"].endswith("version-2") and kv["dataLogDir"].endswith("version-2")
    assert kv["serverId"] == "0"


def test_cons(fl_server, client):
    text = four(fl_server, "cons")
    port = client.sock.getsockname()[1]
    line = next(line for line in text.splitlines() if line.startswith(f" /127.0.0.1:{port}["))
    assert f"sid=0x{client.session_id:x}" in line
    assert "queued=" in line and "recved=" in line and "sent=" in line


def test_envi(fl_server):
    lines = four(fl_server, "envi").splitlines()
    assert lines[0] == "Environment:"
    keys = {line.split("=", 1)[0] for line in lines[1:] if "=" in line}
    assert {"zookeeper.version", "host.name"} <= keys


def test_watch_words(fl_server, client):
    path = "/fl-watch"
    assert client.create(path, b"")[0] == 0
    assert client.get_data(path, watch=True)[0] == 0
    m = re.fullmatch(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n", four(fl_server, "wchs"))
    assert m and int(m.group(1)) >= 1 and int(m.group(2)) >= 1 and int(m.group(3)) >= 1
    sid = f"0x{client.session_id:x}"
    wchc = four(fl_server, "wchc").splitlines()
    i = wchc.index(sid)
    assert f"\t{path}" in wchc[i + 1:]
    wchp = four(fl_server, "wchp").splitlines()
    i = wchp.index(path)
    assert wchp[i + 1] == f"\t{sid}"


def test_dump(fl_server, client):
    assert client.create("/fl-dump", b"", flags=zkraw.EPHEMERAL)[0] == 0
    text = four(fl_server, "dump")
    lines = text.splitlines()
    assert lines[0] == "SessionTracker dump:"
    assert "ephemeral nodes dump:" in lines
    sid = f"0x{client.session_id:x}"
    i = lines.index(sid + ":")
    assert "\t/fl-dump" in lines[i + 1:]


def test_dirs_isro(fl_server):
    lines = four(fl_server, "dirs").splitlines()
    assert re.fullmatch(r"datadir_size: \d+", lines[0]) and re.fullmatch(r"logdir_size: \d+", lines[1])
    assert four(fl_server, "isro") == "rw"


def test_resets(fl_server, client):
    for _ in range(5):
        client.exists("/")
    _, before = parse_srvr(four(fl_server, "srvr"))
    assert four(fl_server, "crst") == "Connection stats reset.\n"
    assert four(fl_server, "srst") == "Server stats reset.\n"
    _, after = parse_srvr(four(fl_server, "srvr"))
    assert int(after["Received"]) < int(before["Received"])


def test_unknown_word_closes(fl_server):
    assert four(fl_server, "xxxx") == ""
    assert four(fl_server, "ruok") == "imok"


def test_whitelist_enforced(make_server):
    s = make_server(cfg={"4lw.commands.whitelist": "srvr, ruok"})
    assert four(s, "ruok") == "imok"
    assert four(s, "srvr").startswith("Zookeeper version: ")
    for word in ("mntr", "conf", "stat", "dump", "envi"):
        assert four(s, word) == f"{word} is not executed because it is not in the whitelist.\n"
