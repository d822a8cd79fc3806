"""Real clients against a 3-node ensemble, through leader crashes.

kazoo and Apache Curator connect with the all-servers connect string; each test
SIGKILLs the ensemble's leader (found with `srvr`) while the clients hold
sessions, ephemerals, watches, locks and elections, and checks that all of it
survives the fail-over and that writes resume. The killed node is restarted
before the next test and must catch up. The ensemble is tests/compat/zkensemble.py
(RZK_TEST_TARGET=apache|rzk as for the other suites).
"""

import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError
from kazoo.protocol.states import EventType
from kazoo.retry import KazooRetry

from conftest import wait_for
from zkensemble import ZkEnsemble

# Generous bounds: CI machines are noisy and three JVMs share two cores.
FAILOVER_TIMEOUT = 60.0
SESSION_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def ensemble():
    e = ZkEnsemble()
    try:
        e.start()
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def ens(ensemble):
    """The module's ensemble, whole again (all nodes up, followers synced)."""
    ensemble.heal()
    return ensemble


@pytest.fixture
def clients():
    """Factory: kazoo clients with the given connect string; all closed at teardown."""
    made = []

    def make(hosts, randomize=False):
        c = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, randomize_hosts=randomize,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5))
        c.states = []
        c.add_listener(c.states.append)
        c.start(timeout=30)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.stop()
            c.close()
        except Exception:  # noqa: BLE001 - teardown must go on
            pass


def retry(op, timeout=FAILOVER_TIMEOUT, ok_exists=False):
    """Runs op() until it succeeds; connection losses during a fail-over are expected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return op()
        except NodeExistsError:
            if ok_exists:  # a create cut off by the crash may have landed
                return None
            raise
        except KazooException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def session_kept(c, session_id):
    assert c.client_id[0] == session_id, "session changed"
    assert KazooState.LOST not in c.states, f"session lost: {c.states}"


def wait_connected(c, timeout=FAILOVER_TIMEOUT):
    wait_for(lambda: c.state == KazooState.CONNECTED, timeout=timeout, msg="client reconnected")


def on_node(clients, node):
    """A client bound to one server only (to read what that node holds)."""
    c = clients(node.hosts)
    c.sync("/")
    return c


def test_crud_through_all_servers(ens, clients, base):
    c = clients(ens.hosts, randomize=True)
    c.create(base, b"v0")
    assert c.get(base)[0] == b"v0"
    stat = c.set(base, b"v1", version=0)
    assert stat.version == 1
    c.create(f"{base}/child", b"x")
    for node in ens.nodes:
        r = on_node(clients, node)
        data, st = r.get(base)
        assert (data, st.version) == (b"v1", 1), f"node {node.sid}"
        assert r.get_children(base) == ["child"]
    c.delete(base, recursive=True)
    assert c.exists(base) is None


def test_sessions_ephemerals_watches_survive_leader_kill(ens, clients, base):
    """kazoo drops its one-shot watches when a connection breaks (it fires
    them with a NONE event) and its DataWatch/ChildrenWatch recipes set them
    again on reconnection; those are what applications use, so those are
    checked here. The Java client's automatic re-registration (SetWatches) is
    checked in the Curator test below."""
    leader = ens.leader()
    follower = ens.followers()[0]
    # One client starts on the leader (its server dies), one on a follower
    # (its server loses the leader); both have every server in the string.
    watched = {"on_leader": clients(ens.hosts_starting_with(leader)),
               "on_follower": clients(ens.hosts_starting_with(follower))}
    writer = clients(ens.hosts_starting_with(follower))
    writer.create(base, b"")
    seen = {}
    sessions = {}
    for name, c in watched.items():
        sessions[name] = c.client_id[0]
        c.create(f"{base}/eph-{name}", b"e", ephemeral=True)
        c.create(f"{base}/data-{name}", b"v0")
        c.create(f"{base}/kids-{name}", b"")
        sv = seen[name] = {"data": [], "new": [], "kids": []}
        c.DataWatch(f"{base}/data-{name}",
                    lambda data, stat, event, sv=sv: sv["data"].append((data, event and event.type)))
        c.DataWatch(f"{base}/new-{name}",
                    lambda data, stat, event, sv=sv: sv["new"].append((data, event and event.type)))
        c.ChildrenWatch(f"{base}/kids-{name}", lambda kids, sv=sv: sv["kids"].append(list(kids)))
        wait_for(lambda sv=sv: sv["data"] and sv["new"] and sv["kids"], msg="watches set")
        assert sv["data"] == [(b"v0", None)] and sv["new"] == [(None, None)] and sv["kids"] == [[]]
    writer_session = writer.client_id[0]

    t0 = time.monotonic()
    killed = ens.kill_leader()
    assert killed is leader
    for name in watched:
        retry(lambda: writer.set(f"{base}/data-{name}", b"v1"))
    assert time.monotonic() - t0 < FAILOVER_TIMEOUT
    for name in watched:
        retry(lambda: writer.create(f"{base}/new-{name}", b"n"), ok_exists=True)
        retry(lambda: writer.create(f"{base}/kids-{name}/c", b""), ok_exists=True)

    new_leader = ens.wait_new_leader(killed)
    assert new_leader is not killed
    for name, c in watched.items():
        wait_connected(c)
        sv = seen[name]
        wait_for(lambda: sv["data"][-1][0] == b"v1" and sv["new"][-1][0] == b"n" and sv["kids"][-1] == ["c"],
                 timeout=30, msg=f"{name}: watches set before the crash see the changes after it")
        session_kept(c, sessions[name])
        # Its ephemeral is still there, seen from another session.
        assert retry(lambda: writer.exists(f"{base}/eph-{name}")).ephemeralOwner == sessions[name]
    # Now that every watch is set again, a change is a plain watch notification.
    for name in watched:
        retry(lambda: writer.set(f"{base}/data-{name}", b"v2"))
    for name, c in watched.items():
        sv = seen[name]
        wait_for(lambda: sv["data"][-1] == (b"v2", EventType.CHANGED), timeout=30,
                 msg=f"{name}: data watch fires after the fail-over")
        # And the client writes again itself.
        retry(lambda: c.set(f"{base}/data-{name}", b"v3"))
        wait_for(lambda: sv["data"][-1] == (b"v3", EventType.CHANGED), timeout=30, msg=f"{name}: own change seen")
    session_kept(writer, writer_session)
    assert KazooState.SUSPENDED in watched["on_leader"].states

    # The killed leader comes back as a follower and catches up.
    ens.heal()
    assert killed.mode() == "follower"
    r = on_node(clients, killed)
    for name in watched:
        assert r.get(f"{base}/data-{name}")[0] == b"v3"
        assert r.exists(f"{base}/eph-{name}").ephemeralOwner == sessions[name]
        assert r.exists(f"{base}/new-{name}") is not None
        assert r.get_children(f"{base}/kids-{name}") == ["c"]


def test_writes_resume_after_leader_kill(ens, clients, base):
    """A writer loops through the crash; every acknowledged write survives."""
    c = clients(ens.hosts, randomize=True)
    session = c.client_id[0]
    c.create(base, b"")
    for i in range(20):
        c.create(f"{base}/before-{i:02}", str(i).encode())
    c.create(f"{base}/seq", b"0")
    acked = []
    attempted = [0]
    stop = threading.Event()
    after_kill = threading.Event()
    acked_after_kill = []
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            attempted[0] = i
            try:
                c.set(f"{base}/seq", str(i).encode())
                acked.append(i)
                if after_kill.is_set():
                    acked_after_kill.append((time.monotonic(), i))
            except KazooException as e:
                errors.append(type(e).__name__)
                time.sleep(0.02)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    wait_for(lambda: len(acked) >= 20, timeout=30, msg="writes before the crash")
    killed = ens.leader()
    t0 = time.monotonic()
    after_kill.set()
    ens.kill_leader()
    wait_for(lambda: len(acked_after_kill) >= 20, timeout=FAILOVER_TIMEOUT, msg="writes after the crash")
    stop.set()
    t.join(timeout=30)
    resumed_after = acked_after_kill[0][0] - t0
    assert resumed_after < FAILOVER_TIMEOUT
    session_kept(c, session)
    value = int(retry(lambda: c.get(f"{base}/seq"))[0])
    # The last acknowledged write is there (a later, cut-off one may be too).
    assert acked[-1] <= value <= attempted[0]
    assert sorted(c.get_children(base)) == sorted([f"before-{i:02}" for i in range(20)] + ["seq"])
    for i in range(20):
        assert c.get(f"{base}/before-{i:02}")[0] == str(i).encode()
    ens.heal()
    r = on_node(clients, killed)
    assert int(r.get(f"{base}/seq")[0]) == value
    assert len(r.get_children(base)) == 21


def test_lock_recipe_across_leader_kill(ens, clients, base):
    leader = ens.leader()
    follower = ens.followers()[0]
    holder_client = clients(ens.hosts_starting_with(follower))
    waiter_client = clients(ens.hosts_starting_with(leader))
    holder = holder_client.Lock(f"{base}/lock", "holder")
    waiter = waiter_client.Lock(f"{base}/lock", "waiter")
    assert holder.acquire(timeout=20)
    got = threading.Event()
    failed = []

    def wait_lock():
        try:
            if waiter.acquire(timeout=120):
                got.set()
        except Exception as e:  # noqa: BLE001 - reported below
            failed.append(repr(e))

    t = threading.Thread(target=wait_lock, daemon=True)
    t.start()
    wait_for(lambda: holder.contenders() == ["holder", "waiter"], timeout=20, msg="waiter queued")
    sessions = (holder_client.client_id[0], waiter_client.client_id[0])

    killed = ens.kill_leader()
    ens.wait_new_leader(killed)
    wait_connected(holder_client)
    wait_connected(waiter_client)
    # The lock is still held, the waiter still queued, nobody got it twice.
    assert retry(holder.contenders) == ["holder", "waiter"]
    assert holder.is_acquired
    assert not got.is_set() and not failed, failed
    session_kept(holder_client, sessions[0])
    session_kept(waiter_client, sessions[1])
    retry(holder.release)
    assert got.wait(30), f"waiter never got the lock: {failed}"
    assert retry(waiter.contenders) == ["waiter"]
    retry(waiter.release)
    t.join(timeout=10)


def test_election_recipe_across_leader_kill(ens, clients, base):
    leader = ens.leader()
    follower = ens.followers()[0]
    # The elected client sits on the server that will die.
    one = clients(ens.hosts_starting_with(leader))
    two = clients(ens.hosts_starting_with(follower))
    elected = []
    release = {"one": threading.Event(), "two": threading.Event()}

    def lead(name):
        elected.append(name)
        release[name].wait(120)

    elections = {"one": one.Election(f"{base}/election", "one"),
                 "two": two.Election(f"{base}/election", "two")}
    threads = {}
    for name in ("one", "two"):
        threads[name] = threading.Thread(target=elections[name].run, args=(lead, name), daemon=True)
        threads[name].start()
        if name == "one":
            wait_for(lambda: elected == ["one"], timeout=20, msg="first candidate elected")
    wait_for(lambda: elections["one"].contenders() == ["one", "two"], timeout=20, msg="both candidates")
    sessions = (one.client_id[0], two.client_id[0])

    killed = ens.kill_leader()
    ens.wait_new_leader(killed)
    wait_connected(one)
    wait_connected(two)
    assert retry(elections["two"].contenders) == ["one", "two"]
    assert elected == ["one"]
    session_kept(one, sessions[0])
    session_kept(two, sessions[1])

    release["one"].set()
    wait_for(lambda: elected == ["one", "two"], timeout=30, msg="second candidate elected after the fail-over")
    assert retry(elections["one"].contenders) == ["two"]
    release["two"].set()
    for t in threads.values():
        t.join(timeout=20)
    for e in elections.values():
        e.cancel()


RECIPES = "/usr/share/java/curator-recipes.jar"
CURATOR_SOURCE = os.path.join(os.path.dirname(__file__), "curator", "CuratorEnsemble.java")


@pytest.mark.skipif(
    not (os.path.exists(RECIPES) and shutil.which("javac")) and os.environ.get("RZK_REQUIRE_ZOOKEEPER") != "1",
    reason="Curator (libcurator-recipes-java) or javac is not installed",
)
def test_curator_lock_latch_counter_through_leader_kill(ens):
    classes = tempfile.mkdtemp(prefix="curator-ens-")
    try:
        subprocess.run(["javac", "-cp", RECIPES, "-d", classes, CURATOR_SOURCE], check=True, timeout=180)
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen(
                ["java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", f"{RECIPES}:{classes}", "CuratorEnsemble", ens.hosts],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
            lines = queue.Queue()
            reader = threading.Thread(target=lambda: [lines.put(x) for x in p.stdout] + [lines.put(None)], daemon=True)
            reader.start()
            out = []
            killed = None
            deadline = time.monotonic() + 150
            try:
                while True:
                    line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
                    if line is None:
                        break
                    out.append(line)
                    if line.strip() == "KILL-LEADER":
                        killed = ens.kill_leader()
                        p.stdin.write("killed\n")
                        p.stdin.flush()
                rc = p.wait(timeout=30)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            err.seek(0)
            text = "".join(out)
            print(text)
            assert rc == 0 and "ALL OK" in text, text + err.read().decode(errors="replace")[-3000:]
            assert killed is not None
    finally:
        shutil.rmtree(classes, ignore_errors=True)
