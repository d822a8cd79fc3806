"""Differential test: one scripted sequence against Apache ZooKeeper and the target.

The script (~100 operations, every kind, many failing on purpose) runs through
kazoo (plus the raw client for what kazoo 2.11 cannot send) against Apache
ZooKeeper 3.8 and then against the target (rzk, or Apache again when
RZK_TEST_TARGET=apache). Results are normalised (no zxids, times or session
ids; children sorted) and compared operation by operation.
"""

import json

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import ACL, Id, Permissions, make_digest_acl

import zkraw
from conftest import CONFORMANCE_CFG, SUPER_PASSWORD, wait_for
from zkraw import ZkRaw
from zkserver import HOST, ZkServer, target


def norm_stat(st):
    if st is None:
        return None
    if isinstance(st, dict):
        g = st.get
    else:
        def g(k):
            return getattr(st, k)
    return {
        "version": g("version"),
        "cversion": g("cversion"),
        "aversion": g("aversion"),
        "dataLength": g("dataLength"),
        "numChildren": g("numChildren"),
        "ephemeral": g("ephemeralOwner") != 0,
        "modified": g("mzxid") != g("czxid"),
        "pzxid_is_czxid": g("pzxid") == g("czxid"),
        "mtime_ge_ctime": g("mtime") >= g("ctime"),
    }


def norm(v):
    if isinstance(v, BaseException):
        return {"error": type(v).__name__}
    if hasattr(v, "czxid"):
        return norm_stat(v)
    if isinstance(v, dict) and "czxid" in v:
        return norm_stat(v)
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, ACL):
        return [v.perms, v.id.scheme, v.id.id]
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


class Ctx:
    def __init__(self, server):
        self.server = server
        self.k = KazooClient(hosts=server.hosts, timeout=15.0)
        self.k.start(timeout=30)
        self.k2 = KazooClient(hosts=server.hosts, timeout=15.0, auth_data=[("digest", "dan:pw")])
        self.k2.start(timeout=30)
        self.r = ZkRaw(HOST, server.port, timeout_ms=20000)
        self.w = ZkRaw(HOST, server.port, timeout_ms=20000)  # watcher

    def events(self):
        """Round-trip on the watcher socket, then return and clear its events."""
        self.w.exists("/")
        ev = self.w.events[:]
        self.w.events.clear()
        return ev

    def close(self):
        for c in (self.k, self.k2):
            c.stop()
            c.close()
        self.r.close()
        self.w.close()


def script():
    """Yields (label, fn(ctx)) pairs."""
    ops = []

    def op(label, fn):
        ops.append((label, fn))

    D = "/diff"
    op("create root", lambda c: c.k.create(D, b"root"))
    op("create root again", lambda c: c.k.create(D, b"x"))
    op("get root", lambda c: c.k.get(D))
    op("set v0", lambda c: c.k.set(D, b"v1", version=0))
    op("set stale version", lambda c: c.k.set(D, b"v2", version=0))
    op("set any version", lambda c: c.k.set(D, b"v2"))
    op("get after sets", lambda c: c.k.get(D))
    for name in "abc":
        op(f"create {name}", lambda c, n=name: c.k.create(f"{D}/{n}", n.encode()))
    op("children", lambda c: sorted(c.k.get_children(D)))
    op("get root stat", lambda c: c.k.exists(D))
    for i in range(3):
        op(f"create seq {i}", lambda c: c.k.create(D + "/s-", b"", sequence=True))
    op("delete seq", lambda c: c.k.delete(D + "/s-0000000004"))
    op("create seq after delete", lambda c: c.k.create(D + "/s-", b"", sequence=True))
    op("create empty-prefix seq", lambda c: c.k.create(D + "/", b"", sequence=True))
    op("create ephemeral", lambda c: c.k.create(D + "/e", b"eph", ephemeral=True))
    op("stat ephemeral", lambda c: c.k.exists(D + "/e"))
    op("child of ephemeral", lambda c: c.k.create(D + "/e/x"))
    op("create ephemeral seq", lambda c: c.k.create(D + "/es-", ephemeral=True, sequence=True))
    op("delete non-empty", lambda c: c.k.delete(D))
    op("delete bad version", lambda c: c.k.delete(D + "/a", version=5))
    op("delete good version", lambda c: c.k.delete(D + "/a", version=0))
    op("delete missing", lambda c: c.k.delete(D + "/a"))
    op("exists missing", lambda c: c.k.exists(D + "/a"))
    op("exists b", lambda c: c.k.exists(D + "/b"))
    op("get missing", lambda c: c.k.get("/nope"))
    op("set missing", lambda c: c.k.set("/nope", b""))
    op("create without parent", lambda c: c.k.create("/nope/child"))
    op("children missing", lambda c: c.k.get_children("/nope"))
    op("root stat after churn", lambda c: c.k.exists(D))
    op("children after churn", lambda c: sorted(c.k.get_children(D)))
    # data
    op("binary data", lambda c: c.k.set(D + "/b", bytes(range(256)) * 8))
    op("get binary", lambda c: c.k.get(D + "/b"))
    op("empty data", lambda c: c.k.set(D + "/b", b""))
    op("get empty", lambda c: c.k.get(D + "/b"))
    # ACLs
    op("get acl", lambda c: c.k.get_acls(D))
    op("set acl v0", lambda c: c.k.set_acls(D, [ACL(Permissions.ALL, Id("world", "anyone"))], version=0))
    op("set acl stale", lambda c: c.k.set_acls(D, [ACL(Permissions.ALL, Id("world", "anyone"))], version=0))
    op("create digest node", lambda c: c.k.create(D + "/secret", b"s", acl=[make_digest_acl("dan", "pw", all=True)]))
    op("get digest anon", lambda c: c.k.get(D + "/secret"))
    op("get digest authed", lambda c: c.k2.get(D + "/secret"))
    op("acl digest authed", lambda c: c.k2.get_acls(D + "/secret"))
    op("create read-only", lambda c: c.k.create(D + "/ro", b"r", acl=[ACL(Permissions.READ, Id("world", "anyone"))]))
    op("write read-only", lambda c: c.k.set(D + "/ro", b"w"))
    op("child of read-only", lambda c: c.k.create(D + "/ro/x"))
    op("invalid acl scheme", lambda c: c.k.create(D + "/bad", acl=[ACL(31, Id("foo", "x"))]))
    op("invalid digest id", lambda c: c.k.create(D + "/bad", acl=[ACL(31, Id("digest", "nocolon"))]))
    op("auth acl without auth", lambda c: c.k.create(D + "/bad", acl=[ACL(31, Id("auth", ""))]))
    op("auth acl with auth", lambda c: c.k2.create(D + "/authed", acl=[ACL(31, Id("auth", ""))]))
    op("acl of auth node", lambda c: c.k2.get_acls(D + "/authed"))
    op("ip acl", lambda c: c.k.create(D + "/ip", acl=[ACL(Permissions.READ, Id("ip", "127.0.0.1"))]))
    op("get ip acl", lambda c: c.k.get(D + "/ip"))
    op("ip acl other net", lambda c: c.k.create(D + "/ip2", acl=[ACL(31, Id("ip", "10.0.0.0/8"))]))
    op("get ip other net", lambda c: c.k.get(D + "/ip2"))

    # transactions
    def txn_ok(c):
        t = c.k.transaction()
        t.create(D + "/t1", b"1")
        t.create(D + "/t2", b"2")
        t.set_data(D + "/t1", b"11", version=0)
        t.check(D + "/t2", 0)
        t.delete(D + "/t2")
        return t.commit()

    def txn_fail(c):
        t = c.k.transaction()
        t.create(D + "/t3", b"3")
        t.delete(D + "/nope")
        t.set_data(D + "/t1", b"x")
        return t.commit()

    op("txn ok", txn_ok)
    op("txn fail", txn_fail)
    op("after failed txn", lambda c: c.k.exists(D + "/t3"))
    op("raw multi seq", lambda c: c.r.multi([("create", D + "/m-", b"", zkraw.PERSISTENT_SEQUENTIAL),
                                             ("check", D, 2), ("set", D + "/t1", b"m", 1)]))
    op("raw multi fail", lambda c: c.r.multi([("check", D, 1), ("create", D + "/b", b"", 0),
                                              ("delete", D + "/c", -1)]))
    op("multiRead", lambda c: c.r.multi_read([("get", D + "/t1"), ("children", D + "/ro"), ("get", "/nope"),
                                              ("children", "/nope")]))
    # container and TTL
    op("create container", lambda c: c.r.create(D + "/cont", b"", flags=zkraw.CONTAINER))
    op("container child", lambda c: c.r.create(D + "/cont/x", b""))
    op("delete container child", lambda c: c.r.delete(D + "/cont/x"))

    def container_gone(c):
        wait_for(lambda: c.k.exists(D + "/cont") is None, timeout=15, msg="container reaped")
        return "gone"

    op("container reaped", container_gone)
    op("create ttl", lambda c: c.r.create(D + "/ttl", b"t", flags=zkraw.PERSISTENT_WITH_TTL, ttl=200))
    op("create ttl zero", lambda c: c.r.create(D + "/ttl0", b"", flags=zkraw.PERSISTENT_WITH_TTL, ttl=0))
    op("ttl on plain mode", lambda c: c.r.create(D + "/ttl1", b"", flags=zkraw.PERSISTENT, ttl=100))

    def ttl_gone(c):
        wait_for(lambda: c.k.exists(D + "/ttl") is None, timeout=15, msg="ttl reaped")
        return "gone"

    op("ttl reaped", ttl_gone)
    # bad paths
    for p in ["a", D + "/", D + "//x", D + "/./x", D + "/x\x00", "", D + "/.", D + "/.."]:
        op(f"create bad path {p!r}", lambda c, p=p: c.r.create(p, b"")[0])
        op(f"exists bad path {p!r}", lambda c, p=p: c.r.exists(p)[0])
    op("delete root", lambda c: c.r.delete("/"))
    # introspection
    op("getEphemerals", lambda c: sorted(c.r.get_ephemerals(D)[1] or []))
    op("raw ephemeral", lambda c: c.r.create(D + "/re", b"", flags=zkraw.EPHEMERAL)[0])
    op("getEphemerals mine", lambda c: c.r.get_ephemerals(D))
    op("getAllChildrenNumber", lambda c: c.r.get_all_children_number(D))
    op("whoAmI", lambda c: sorted(c.r.who_am_i()[1]))
    op("sync", lambda c: c.k.sync(D))
    op("zookeeper children", lambda c: sorted(c.k.get_children("/zookeeper")))
    op("zookeeper config", lambda c: c.k.get("/zookeeper/config")[0])
    op("zookeeper stat", lambda c: c.k.exists("/zookeeper"))

    # watches, observed on the raw watcher's socket
    def watch_setup(c):
        return [c.w.get_data(D + "/b", watch=True)[0], c.w.get_children(D, watch=True)[0],
                c.w.exists(D + "/new", watch=True)[0], c.w.exists(D + "/c", watch=True)[0]]

    op("set watches", watch_setup)
    op("trigger: set b", lambda c: c.k.set(D + "/b", b"bb"))
    op("trigger: create new", lambda c: c.k.create(D + "/new"))
    op("trigger: delete c", lambda c: c.k.delete(D + "/c"))
    op("trigger: set b again", lambda c: c.k.set(D + "/b", b"bbb"))
    op("events", lambda c: c.events())
    op("add persistent", lambda c: c.w.add_watch(D + "/p", zkraw.ADD_WATCH_PERSISTENT))
    op("add recursive", lambda c: c.w.add_watch(D + "/q", zkraw.ADD_WATCH_PERSISTENT_RECURSIVE))
    op("p create", lambda c: c.k.create(D + "/p/x", makepath=True))
    op("p set", lambda c: c.k.set(D + "/p", b"1"))
    op("q create deep", lambda c: c.k.create(D + "/q/x/y", makepath=True))
    op("q set deep", lambda c: c.k.set(D + "/q/x/y", b"1"))
    op("q delete deep", lambda c: c.k.delete(D + "/q/x/y"))
    op("persistent events", lambda c: c.events())
    op("remove watches", lambda c: c.w.remove_watches(D + "/p", 3))
    op("remove missing watch", lambda c: c.w.remove_watches(D + "/zzz", 3))

    # session end removes ephemerals
    def other_session(c):
        k3 = KazooClient(hosts=c.server.hosts, timeout=15.0)
        k3.start(timeout=30)
        k3.create(D + "/k3e", ephemeral=True)
        seen = c.k.exists(D + "/k3e") is not None
        k3.stop()
        k3.close()
        wait_for(lambda: c.k.exists(D + "/k3e") is None, timeout=15, msg="ephemeral removed on close")
        return seen

    op("other session ephemeral", other_session)

    def super_user(c):
        su = KazooClient(hosts=c.server.hosts, timeout=15.0, auth_data=[("digest", "super:" + SUPER_PASSWORD)])
        su.start(timeout=30)
        try:
            return [su.get(D + "/secret")[0], su.set(D + "/ro", b"super")]
        finally:
            su.stop()
            su.close()

    op("super user", super_user)
    op("final tree", lambda c: sorted(c.k.get_children(D)))
    op("final root stat", lambda c: c.k.exists(D))
    op("delete recursive", lambda c: c.k2.delete(D + "/q", recursive=True))
    op("final children", lambda c: sorted(c.k.get_children(D)))
    return ops


def run_script(server):
    ctx = Ctx(server)
    results = []
    try:
        for label, fn in script():
            try:
                v = fn(ctx)
            except KazooException as e:
                v = e
            results.append((label, json.loads(json.dumps(norm(v), default=str))))
    finally:
        ctx.close()
    return results


def test_differential():
    cfg = dict(CONFORMANCE_CFG)
    cfg["extendedTypesEnabled"] = "true"
    reference = ZkServer(kind="apache", cfg=cfg)
    candidate = ZkServer(kind=target(), cfg=cfg)
    try:
        reference.start()
        expected = run_script(reference)
        reference.cleanup()
        candidate.start()
        actual = run_script(candidate)
    finally:
        reference.cleanup()
        candidate.cleanup()
    assert len(expected) >= 100
    mismatches = [
        f"#{i} {label}: apache={want!r} {candidate.kind}={got!r}"
        for i, ((label, want), (_, got)) in enumerate(zip(expected, actual))
        if want != got
    ]
    assert not mismatches, "\n".join(mismatches)
    # the script itself must exercise failures, not only successes
    errors = [label for label, v in expected if isinstance(v, dict) and "error" in v]
    assert len(errors) >= 15, errors
